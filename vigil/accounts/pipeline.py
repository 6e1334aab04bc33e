"""The daily account-integrity steps the ``vigil_accounts`` DAG calls, one function per task.

ingest (the raw folder, account streams included) -> features (one dbt build: the account
features and the rules' labels) -> the ``accounts`` gate -> train the bot model -> score ->
review. Each returns a small JSON-able dict (XCom). Idempotent: ingest skips unchanged files,
the other steps reuse their last result when their inputs, parameters and code are unchanged
(:mod:`vigil.accounts.reuse`; the result says ``reused``), and otherwise rewrite their outputs
whole (training is seeded). ``force=True`` recomputes.
"""

from __future__ import annotations

from pathlib import Path

from vigil import config
from vigil.accounts import reuse

REPO = config.REPO_ROOT


def _lake_inputs() -> list[Path]:
    p = config.paths()
    return [p.lake_events, p.lake_users, p.lake_enforcement, p.lake_devices]


def _verdicts() -> Path:
    return config.paths().home / "accounts" / "verdicts.jsonl"


def ingest(raw_dir: str | Path | None = None, force: bool = False) -> dict:
    """The raw folder, the rules' effects logs and the reviewers' verdicts -> the lake; skipped
    when none of those files changed since the last ingest (the lake already holds them)."""

    def load() -> dict:
        from vigil.lake.ingest import ingest as lake_ingest

        result = lake_ingest(raw)
        return {"raw": str(raw), "streams": result["streams"], "seconds": result["seconds"]}

    p = config.paths()
    raw = Path(raw_dir) if raw_dir else p.home / "raw_accounts"
    effects = sorted(p.stream_state.glob("*.effects.jsonl"))
    return reuse.run(
        "ingest",
        load,
        inputs=[raw, *effects, _verdicts()],
        outputs=[p.lake_events, p.lake_users],
        params={"raw": str(raw.resolve()), "effects_logs": [e.name for e in effects]},
        code=[REPO / "vigil" / "lake"],
        force=force,
    )


def features(window_days: int = 7, force: bool = False) -> dict:
    """One dbt build (stage ``accounts``): the point-in-time account features and the rules'
    labels and reviewers' verdicts (ingested with the raw folder) -> ``active_labels`` and
    ``user_labels``, their dbt tests the gate -> ``features/account_features.parquet`` (the gate,
    the bot model) and ``features/user_labels.parquet`` (the review step: accounts a rule
    suspended leave the queue)."""
    from vigil.accounts import features as account_features

    p = config.paths()
    return reuse.run(
        "features",
        lambda: account_features.build(window_days=window_days),
        inputs=_lake_inputs() + [p.lake_rule_effects, p.lake_account_verdicts],
        outputs=[
            p.features / "account_features.parquet",
            p.features / "user_labels.parquet",
            p.warehouse,
        ],
        params={"window_days": window_days},
        code=[REPO / "dbt" / d for d in ("models", "macros", "dbt_project.yml")]
        + [REPO / "vigil" / "warehouse"],
        force=force,
    )


def gate(force: bool = False) -> dict:
    def check() -> dict:
        from vigil.quality.gate import run_gate

        r = run_gate("accounts")  # raises GateFailed (a UserError) on a critical failure
        return {"success": r.success, "checks": len(r.results), "report": r.report_path}

    return reuse.run(
        "gate",
        check,
        inputs=[config.paths().features / "account_features.parquet"],
        code=[REPO / "expectations" / "accounts", REPO / "vigil" / "quality"],
        force=force,
    )


def train(seed: int = 0, force: bool = False) -> dict:
    def fit() -> dict:
        from vigil.accounts import bots

        out = {}
        for mode in ("behavior", "profile"):
            b = bots.train(bots.BotConfig(seed=seed, mode=mode))
            out[mode] = b["metrics"] | {"path": b.get("path")}
        return out

    p = config.paths()
    models = p.models / "accounts_bots"
    return reuse.run(
        "train",
        fit,
        inputs=[p.features / "account_features.parquet", p.lake_users, p.lake_enforcement]
        + [p.lake_labels, p.lake_events, _verdicts()],
        outputs=[models / mode / "model.joblib" for mode in ("behavior", "profile")],
        params={"seed": seed},
        force=force,
    )


def score(force: bool = False) -> dict:
    def run() -> dict:
        from vigil.accounts import bots

        return bots.score_lake("behavior")

    p = config.paths()
    return reuse.run(
        "score",
        run,
        inputs=[p.features / "account_features.parquet", p.models / "accounts_bots" / "behavior"],
        outputs=[p.features / "account_bot_scores.parquet"],
        force=force,
    )


def review(size: int = 100, force: bool = False) -> dict:
    """Ban evasion, clusters and the review queue (:func:`review_cli.daily_review`)."""
    from vigil.accounts import review_cli

    p = config.paths()
    out = p.home / "accounts"
    files = (review_cli.MATCHES_FILE, review_cli.CLUSTERS_FILE, review_cli.QUEUE_FILE)
    return reuse.run(
        "review",
        lambda: review_cli.daily_review(size),
        inputs=_lake_inputs()
        + [p.features / "account_bot_scores.parquet", p.features / "user_labels.parquet"]
        + [p.lake_labels, _verdicts()],
        outputs=[out / name for name in files],
        params={"size": size},
        force=force,
    )
