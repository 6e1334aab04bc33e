"""The daily account-integrity steps the ``vigil_accounts`` DAG calls, one function per task.

ingest (the raw folder, account streams included) -> features -> the ``accounts`` gate -> train
the bot model -> score. Each returns a small JSON-able dict (XCom). Idempotent: ingest skips
unchanged files, features and scores are rewritten whole, training is seeded.
"""

from __future__ import annotations

from pathlib import Path


def ingest(raw_dir: str | Path | None = None) -> dict:
    from vigil import config
    from vigil.lake.ingest import ingest as lake_ingest

    raw = Path(raw_dir) if raw_dir else config.paths().home / "raw_accounts"
    result = lake_ingest(raw)
    return {"raw": str(raw), "streams": result["streams"], "seconds": result["seconds"]}


def labels() -> dict:
    """The rules' labels and reviewers' verdicts (ingested with the raw folder) -> dbt's
    active_labels and user_labels (their dbt tests gate the build) -> features/user_labels.parquet,
    which the review step reads (accounts a rule suspended leave the queue)."""
    from vigil.warehouse import dbt as warehouse

    summary = warehouse.build("labels")
    return {
        "models": summary.get("models"),
        "tests": summary.get("tests"),
        "exported": summary.get("exported"),
        "seconds": summary.get("seconds"),
    }


def features(window_days: int = 7) -> dict:
    from vigil.accounts import features as account_features

    return account_features.build(window_days=window_days)


def gate() -> dict:
    from vigil.quality.gate import run_gate

    r = run_gate("accounts")  # raises GateFailed (a UserError) on a critical failure
    return {"success": r.success, "checks": len(r.results), "report": r.report_path}


def train(seed: int = 0) -> dict:
    from vigil.accounts import bots

    out = {}
    for mode in ("behavior", "profile"):
        b = bots.train(bots.BotConfig(seed=seed, mode=mode))
        out[mode] = b["metrics"] | {"path": b.get("path")}
    return out


def score() -> dict:
    from vigil.accounts import bots

    return bots.score_lake("behavior")
