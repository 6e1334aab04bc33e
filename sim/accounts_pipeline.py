"""The account-integrity part of ``vigil pipeline`` (``make run``; issue 21).

The accounts world (:mod:`sim.accounts`: bots, evaders, campaigns, look-alikes) is another
population than the posts world, so it lives in its own data root beside it,
``<data root>/accounts_world`` (raw folder ``raw_accounts``, lake, features, models, stream
state, ``accounts/``), while its Airflow runs are recorded with the others (the Airflow UI of
``make airflow`` shows them).

1. :func:`start` (before ``vigil_daily``, overlapped with it): a subprocess with
   ``VIGIL_HOME=<accounts world>`` simulates the world (skipped when the marker says the folder
   already holds the same one) and runs the stream processor with the default rules over its raw
   files (``vigil stream --once --no-push --rules vigil/rules/default_rules.yaml``: what the live
   stream would have done; its checkpoint makes a re-run read nothing new). :func:`finish` waits
   for it and prints what it did.
2. :func:`run_dag`: ``airflow dags test vigil_accounts`` with ``{"data_root": <accounts world>}``:
   ingest (the raw folder and the rules' effects log) -> features (one dbt build: the account
   features and the rules' labels) -> gate -> bot model -> score -> review (evasion, clusters,
   queue). Unchanged steps reuse their last result.
3. :func:`print_summary`: bots flagged at the guardrail, evasion matches, clusters, the top of
   the account queue and the rules' effects, read back from the run's results and files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

ROOT_NAME = "accounts_world"
RAW_NAME = "raw_accounts"
MARKER = ".vigil-accounts-simulation.json"
RULES = Path(__file__).resolve().parents[1] / "vigil" / "rules" / "default_rules.yaml"
USERS = 1500  # big enough for the bot model (~50 labeled validation accounts), ~half the default
DAYS = 14


def accounts_params(args) -> dict:
    """The accounts world ``make run`` builds: 1,500 accounts x 14 days from the posts world's
    first day, the posts world's seed."""
    return {"users": USERS, "days": DAYS, "start": args.start, "seed": args.seed}


def world_root(home: Path) -> Path:
    return Path(home) / ROOT_NAME


def last_day(params: dict) -> str:
    return (date.fromisoformat(params["start"]) + timedelta(days=params["days"] - 1)).isoformat()


# -- in the subprocess: simulate + stream --------------------------------------------------------


def ensure_world(root: Path, params: dict, force: bool = False) -> dict:
    """Simulate into ``root/raw_accounts`` unless the marker says it holds this world. A new world
    replaces the whole accounts root: a lake, stream checkpoint or model of another world would
    mix with it."""
    marker = root / MARKER
    if not force and marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("params") == params and (root / RAW_NAME / "events").is_dir():
            return {"simulated": False, "counts": saved.get("counts", {})}
    from sim.accounts import simulate_accounts
    from sim.accounts_params import AccountsParams

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    world = replace(
        AccountsParams(),
        users=params["users"],
        days=params["days"],
        start=date.fromisoformat(params["start"]),
        seed=params["seed"],
    )
    counts = json.loads(json.dumps(simulate_accounts(root / RAW_NAME, world), default=str))
    marker.write_text(json.dumps({"params": params, "counts": counts}, indent=2))
    return {"simulated": True, "counts": counts}


def stream_rules(root: Path) -> dict:
    """The stream processor with the default rules over the world's raw files, from its
    checkpoint (``<root>/stream/state.sqlite``; effects log ``state.effects.jsonl``)."""
    from vigil.stream.processor import RunOptions, process

    result = process(
        RunOptions(source="files", raw_dir=root / RAW_NAME, once=True, push=False, rules_file=RULES)
    )
    # "read": lines read by this run (0 on a re-run: the checkpoint is at the end of the files)
    return {"applied": result.get("counters", {}).get("applied", 0), "read": result.get("read", 0)}


def prepare(root: Path, params: dict, force: bool = False) -> dict:
    t0 = time.monotonic()
    world = ensure_world(root, params, force)
    t1 = time.monotonic()
    stream = stream_rules(root)
    t2 = time.monotonic()
    world |= {"simulate_seconds": round(t1 - t0, 1), "stream_seconds": round(t2 - t1, 1)}
    return world | {"stream": stream}


# -- in vigil pipeline -----------------------------------------------------------------------------


@dataclass
class Prepared:
    root: Path
    proc: subprocess.Popen
    log: Path
    started: float  # wall clock (time.time()), to compare with the log's mtime


def start(home: Path, params: dict, force: bool = False) -> Prepared:
    """Start :func:`prepare` in a subprocess with ``VIGIL_HOME`` = the accounts world (a thread
    could not: the data root is the process's environment)."""
    root = world_root(home)
    log_path = Path(home) / "accounts_world.log"
    env = dict(os.environ, VIGIL_HOME=str(root))
    cmd = [sys.executable, "-m", "sim.accounts_pipeline", str(root), json.dumps(params)]
    cmd += ["--force"] if force else []
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    print(f"      accounts world: preparing in the background -> {root} (log: {log_path})")
    return Prepared(root, proc, log_path, time.time())


def finish(prep: Prepared) -> dict | None:
    """Wait for :func:`start`'s subprocess; its result (None when it failed)."""
    waited = time.monotonic()
    rc = prep.proc.wait()
    now = time.monotonic()
    # the subprocess's last write (its result line) is when it finished
    ready = prep.log.stat().st_mtime - prep.started if prep.log.exists() else 0.0
    lines = prep.log.read_text().splitlines() if prep.log.exists() else []
    result = None
    if rc == 0 and lines:
        try:
            result = json.loads(lines[-1])
        except ValueError:
            result = None
    if result is None:
        tail = " | ".join(lines[-3:])[:300]
        print(f"      accounts world: FAILED (exit {rc}; log {prep.log}): {tail}", flush=True)
        return None
    counts = result.get("counts", {})
    what = (
        f"simulated in {result['simulate_seconds']:.0f}s"
        if result.get("simulated")
        else "already simulated, skipped"
    )
    print(
        f"      accounts world: {counts.get('accounts', 0):,} accounts, "
        f"{counts.get('events', 0):,} events ({what}); stream + rules: "
        f"{result['stream']['read']:,} new lines in {result['stream_seconds']:.0f}s "
        f"({result['stream']['applied']:,} events applied in all); "
        f"ready {ready:.0f}s after start, waited {now - waited:.0f}s",
        flush=True,
    )
    return result | {"waited_seconds": round(now - waited, 1)}


def run_dag(dags_test, prep: Prepared | None, params: dict, env: dict) -> dict | None:
    """Wait for the world (:func:`finish`), then ``airflow dags test vigil_accounts`` on its
    data root. None when the world could not be prepared."""
    if prep is None or finish(prep) is None:
        return None
    t0 = time.monotonic()
    conf = {"data_root": str(prep.root), "raw_dir": str(prep.root / RAW_NAME)}
    run = dags_test("vigil_accounts", last_day(params), conf, env=env)
    status = "succeeded" if run["ok"] else "FAILED"
    print(
        f"      vigil_accounts {status} in {time.monotonic() - t0:.0f}s (log: {run['log']})",
        flush=True,
    )
    return run


# -- summary ----------------------------------------------------------------------------------------


def rule_effects(effects_log: Path) -> dict[str, dict]:
    """Per rule: mode, effects by kind, distinct entities acted on (from the effects log)."""
    out: dict[str, dict] = {}
    lines = effects_log.read_text().splitlines() if effects_log.exists() else []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        r = out.setdefault(e["rule"], {"mode": e["mode"], "effects": {}, "entities": set()})
        r["effects"][e["effect"]] = r["effects"].get(e["effect"], 0) + 1
        r["entities"].add((e["entity"], str(e["entity_id"])))
    return out


def _print_rules(root: Path) -> None:
    per_rule = rule_effects(root / "stream" / "state.effects.jsonl")
    if not per_rule:
        print("  rules: no effect logged")
    for name, r in sorted(per_rule.items()):
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(r["effects"].items()))
        print(f"  rule {name:<24} {r['mode']:<6} {kinds} on {len(r['entities']):,} entities")


def _print_bots(values: dict) -> None:
    train = values.get("train_bots") or {}
    behavior, profile = train.get("behavior") or {}, train.get("profile") or {}
    score = values.get("score_bots") or {}
    if not score:
        print("  bots: score_bots returned nothing")
        return
    print(
        f"  bots flagged at the guardrail  {score.get('flagged_latest_day', 0):>6,} of "
        f"{score.get('accounts_latest_day', 0):,} accounts on the last day (P(bot) >= "
        f"{score.get('threshold', 0):.3f})"
    )
    if behavior:
        print(
            f"  bot model (validation)        PR-AUC {behavior.get('validation_pr_auc', 0):.3f} "
            f"vs profile-only {profile.get('validation_pr_auc', 0):.3f}; est. precision "
            f"{behavior.get('validation_precision_at_threshold', 0):.3f}, recall "
            f"{behavior.get('validation_recall_at_threshold', 0):.3f} at the threshold"
        )


def _print_review(root: Path, values: dict) -> None:
    import pandas as pd

    from vigil.accounts import evasion

    out = root / "accounts"
    review = values.get("review") or {}
    m = out / "evasion_matches.parquet"
    best = evasion.best_matches(pd.read_parquet(m)) if m.exists() else None
    matched = int(best["is_match"].sum()) if best is not None and len(best) else 0
    print(
        f"  ban evasion                   {matched:>6,} of {review.get('new_accounts_ranked', 0):,}"
        " new accounts matched to a suspended account (top score >= the threshold)"
    )
    c = out / "clusters.parquet"
    clusters = pd.read_parquet(c) if c.exists() else pd.DataFrame()
    sizes = sorted(clusters.groupby("cluster_id")["size"].first().astype(int), reverse=True)
    sizes = sizes if len(clusters) else []
    print(f"  coordination clusters         {len(sizes):>6,} (sizes {sizes})")
    q = out / "review_queue.parquet"
    if not q.exists():
        print("  account queue: not written")
        return
    queue = pd.read_parquet(q)
    print(f"  account review queue          {len(queue):>6,} accounts; top 5 by expected harm:")
    for _, r in queue.head(5).iterrows():
        print(
            f"    #{int(r['position'])} user {int(r['user_id'])}: harm {r['expected_harm']:.1f} ="
            f" P(violation) {r['p_violation']:.2f} x reach {int(r['reach'])} (bot "
            f"{r['p_bot']:.2f}, evader {r['p_evader']:.2f}, cluster {r['p_cluster']:.2f})"
        )


def print_summary(run: dict | None, results: dict, root: Path, unavailable) -> None:
    """The accounts block of make run's summary, from vigil_accounts' results and its files."""
    states = results.get("states") or {}
    if run is None or states.get("review") != "success":
        unavailable(
            f"vigil_accounts did not finish (review task: {states.get('review') or 'not run'})"
        )
        return
    values = results.get("values") or {}
    _print_bots(values)
    _print_review(root, values)
    _print_rules(root)
    gate = values.get("validate_features") or {}
    print(
        f"  gate accounts                 {'passed' if gate.get('success') else 'FAILED'}"
        f" ({gate.get('checks', 0)} checks)"
    )
    reused = [t for t, v in sorted(values.items()) if isinstance(v, dict) and v.get("reused")]
    print(f"  steps reused (inputs unchanged): {', '.join(reused) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.accounts_pipeline", description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("params", help="JSON: users, days, start, seed")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    result = prepare(args.root.resolve(), json.loads(args.params), args.force)
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
