"""Triggered re-scoring through the running service and the stream, graded on the truth (issue 22).

The replay (:mod:`sim.rescore_replay`) decides the triggered schedule offline with the same model
objects. This harness drives the real path instead, on a built world (``vigil pipeline``):

1. ``vigil serve --heavy-budget N`` (a subprocess: the champion, its re-score head; its defaults:
   removed posts skipped, the spare calls' floor 0.5) on a free 127.0.0.1 port, with a fresh
   decision log (an earlier one is moved aside to ``decisions.before-harness-<n>``);
2. the stream processor (:func:`vigil.stream.processor.process`, in this process, its options
   parsed from ``vigil stream``'s arguments) over the test days' raw event files, one day at a
   time, with ``--rescore URL`` and two replay devices, ``--rescore-wait --no-user-push``; by
   default ``--rescore`` sends a ``creation`` request at each post's creation event (the
   replay's creation moment) and keeps the exact post counters: the trigger requests, each
   carrying its event time (``at_ms``), the post's exact counters written to the online store
   before the requests that read them, and each checkpoint's requests answered before the
   stream reads on;
3. before each test day, the users' daily features (``creator_context``, ``user_activity``) are
   materialized to the online store as of that day's start, what the replay's point-in-time join
   reads at every moment of the day (rows are stamped at the next day's start); the stream does
   not overwrite them (``--no-user-push``);
4. the decision log is graded as the replay grades (:func:`sim.rescore_replay.prevented`): a test
   post removed at the ``event_at`` of its first ``remove`` gets none of its views after it;
   heavy calls a day by ``event_at``'s day. The replay's triggered schedule is run on the same
   world and the two are compared request by request and post by post.

Checkpoint granularity: the stream writes the counters at each checkpoint, so a request reads the
counts as of the checkpoint's last event; the file source reads whole chunks, so the harness reads
``--chunk-kb`` (default 16 KB, about a minute of events) at a time, one checkpoint each.

``python -m sim.rescore_service_harness --home H [--heavy-budget N] [--spare-floor F | --no-spare]
[--out F]`` (N by default: the replay's fixed schedule's heavy calls a day on exact counters,
whole part). Docs: docs/rescoring.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

USER_VIEWS = ("creator_context", "user_activity")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(
    port: int,
    budget: int | str | None,
    floor: float | None,
    model_id: str | None,
    skip_removed: bool = True,
) -> list[str]:
    """``vigil serve``'s command: its defaults (removed posts skipped, the spare floor 0.5 with
    a budget) plus only what differs from them."""
    cmd = [str(Path(sys.executable).parent / "vigil"), "serve", "--port", str(port)]
    if not skip_removed:
        cmd.append("--no-skip-removed")
    if budget is not None:
        cmd += ["--heavy-budget", str(budget)]
        if floor is not None:
            cmd += ["--spare-floor", str(floor)]
    if model_id:
        cmd += ["--model-id", model_id]
    return cmd


def start_service(
    home: Path,
    port: int,
    budget: int | None,
    floor: float | None,
    model_id: str | None,
    logf,
    skip_removed: bool = True,
) -> subprocess.Popen:
    cmd = serve_command(port, budget, floor, model_id, skip_removed)
    log.info("harness: %s", " ".join(cmd[1:]))
    env = os.environ | {"VIGIL_HOME": str(home)}
    env.pop("VIGIL_SERVE_TOKEN", None)
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vigil serve exited with {proc.returncode}: see {logf.name}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise RuntimeError("vigil serve did not answer /healthz within 300 s")


def stop_service(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def materialize_users(day_start: datetime) -> None:
    """The users' daily views' latest rows stamped at or before ``day_start`` into the online
    store (what the point-in-time join reads on that day)."""
    from vigil.serving import features
    from vigil.serving.materialize import materialize_view

    fs = features.store()
    for name in USER_VIEWS:
        materialize_view(fs, fs.get_feature_view(name), datetime(2000, 1, 1, tzinfo=UTC), day_start)


def link_day(raw: Path, run_raw: Path, day: str) -> None:
    """The day's hour files, linked into the harness's raw folder (the stream tails it)."""
    src = raw / "events" / f"dt={day}"
    dst = run_raw / "events" / f"dt={day}"
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("hour=*.jsonl")):
        target = dst / f.name
        if not target.exists():
            target.symlink_to(f.resolve())


def stream_args(run_raw: Path, state: Path, url: str, checkpoint_events: int) -> list[str]:
    """``vigil stream``'s arguments for a test day: ``--rescore URL`` with its defaults (the exact
    post counters and the creation requests on) and the replay devices only: the files read once,
    a checkpoint per chunk, each checkpoint's requests answered before reading on
    (``--rescore-wait``), the users' features left to the batch (``--no-user-push``)."""
    return [
        *("--source", "files", "--raw", str(run_raw), "--state", str(state), "--once"),
        *("--checkpoint-seconds", "1e9", "--checkpoint-events", str(checkpoint_events)),
        *("--lateness-hours", "48", "--rescore", url, "--rescore-wait", "--no-user-push"),
    ]


def stream_day(run_raw: Path, state: Path, url: str, checkpoint_events: int) -> dict:
    """The stream processor over the day's files, its options parsed as ``vigil stream``'s."""
    from vigil.stream import processor

    parser = argparse.ArgumentParser(prog="vigil stream")
    processor.configure_parser(parser)
    args = parser.parse_args(stream_args(run_raw, state, url, checkpoint_events))
    opts = processor.options_from_args(args)
    assert opts.post_counters and opts.score_created  # the defaults the figures need
    return processor.process(opts)


def read_decisions(directory: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(directory.glob("dt=*/decisions-*.jsonl")):
        with path.open() as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame[frame["trigger"] != "shadow"].copy()
    frame["event_at"] = pd.to_datetime(frame["event_at"], utc=True, format="ISO8601")
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True, format="ISO8601")
    return frame


def service_outcome(decisions: pd.DataFrame, test_posts: set[int]):
    """The replay's :class:`sim.rescore_replay.Outcome` of the service's decisions: the first
    removal's event time per post, heavy calls per ``event_at`` day (test posts' requests)."""
    from sim.rescore_replay import Outcome

    mine = decisions[decisions["post_id"].isin(test_posts)]
    removed = mine[mine["decision"] == "remove"].sort_values("event_at").drop_duplicates("post_id")
    removed_at = dict(zip(removed["post_id"].astype(int), removed["event_at"]))
    heavy = mine[mine["routed_to_heavy"].astype(bool)]
    calls = heavy["event_at"].dt.strftime("%Y-%m-%d").value_counts().to_dict()
    return Outcome(removed_at, {str(k): int(v) for k, v in calls.items()}, len(mine))


def _ms(values: pd.Series) -> list[int]:
    return ((values - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).tolist()


def compare_requests(decisions: pd.DataFrame, scored: pd.DataFrame, removed_at: dict) -> dict:
    """The service's (post, event time, trigger) of the test posts against the replay's moments
    up to each post's removal in the replay (the moments it scored)."""
    rem = scored["post_id"].map(pd.Series(removed_at, dtype="datetime64[ns, UTC]"))
    kept = scored[rem.isna() | (scored["scored_at"] <= rem)]
    a = set(
        zip(
            kept["post_id"].astype(int),
            _ms(kept["scored_at"]),
            kept["trigger"],
        )
    )
    mine = decisions[decisions["post_id"].isin(set(scored["post_id"]))]
    b = set(
        zip(
            mine["post_id"].astype(int),
            _ms(mine["event_at"]),
            mine["trigger"],
        )
    )
    return {
        "replay_moments": len(a),
        "service_requests": len(b),
        "both": len(a & b),
        "replay_only": len(a - b),
        "service_only": len(b - a),
        "replay_only_examples": sorted(a - b)[:5],
        "service_only_examples": sorted(b - a)[:5],
    }


def drive(
    home: Path,
    test_days: list[str],
    model_id: str,
    budget: int | None,
    floor: float | None,
    chunk_kb: int = 16,
    skip_removed: bool = True,
) -> tuple[Path, list[dict], float]:
    """Serve, stream the test days into the service, stop: (decision log, per-day stream
    figures, seconds). The world's earlier decision log is moved aside first."""
    from vigil.config import paths
    from vigil.stream import sources

    work = home / "harness"
    if work.exists():
        shutil.rmtree(work)
    run_raw = work / "raw"
    (run_raw / "events").mkdir(parents=True)
    decisions_dir = paths().decision_log
    if decisions_dir.exists():
        n = 1
        while (decisions_dir.parent / f"decisions.before-harness-{n}").exists():
            n += 1
        decisions_dir.rename(decisions_dir.parent / f"decisions.before-harness-{n}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sources.CHUNK_BYTES = chunk_kb << 10  # ~ a minute of events per checkpoint (module doc)
    started = time.time()
    stream_stats = []
    with (work / "serve.log").open("w") as logf:
        proc = start_service(home, port, budget, floor, model_id, logf, skip_removed)
        try:
            for day in test_days:
                t0 = time.time()
                materialize_users(datetime.fromisoformat(day).replace(tzinfo=UTC))
                link_day(paths().raw, run_raw, day)
                stats = stream_day(run_raw, work / "stream.sqlite", url, 1)
                rs = stats.get("rescore", {})
                stream_stats.append({"day": day, "seconds": round(time.time() - t0, 1), **rs})
                log.info("harness: %s streamed in %.0f s: %s", day, time.time() - t0, rs)
        finally:
            stop_service(proc)
            # the users' views back to the end of the data, as the pipeline left them
            last = datetime.fromisoformat(test_days[-1]).replace(tzinfo=UTC)
            materialize_users(last + timedelta(days=2))
    return decisions_dir, stream_stats, time.time() - started


def run(
    home: Path,
    budget: int | None,
    floor: float | None,
    model_id: str | None = None,
    chunk_kb: int = 16,
    replay: bool = True,
    skip_removed: bool = True,
    spare: bool = True,
) -> dict:
    """Drive the service on the world at ``home`` and grade it (module doc); with ``replay``,
    the replay's triggered schedule beside it, request by request and post by post. ``spare``:
    the spare heavy calls at ``floor`` (None: ``vigil serve``'s default, not passed) with the
    budget ``budget`` (None: the replay's fixed schedule's calls a day)."""
    from vigil.moderation.cli import SPARE_FLOOR

    replay_floor = (SPARE_FLOOR if floor is None else floor) if spare else None
    if not spare:
        budget, floor = None, None
    home = Path(home).resolve()
    os.environ["VIGIL_HOME"] = str(home)
    from sim import truth as sim_truth
    from sim.rescore_replay import prevented
    from training import registry
    from training.rescore_moments import read_events, read_posts
    from vigil.config import paths

    bundle = registry.load(model_id)
    test_days = [str(d) for d in bundle["meta"]["splits"]["test"]]
    reference = None
    if replay:  # first: with budget None, N is the replay's fixed schedule's calls a day
        reference = replay_reference(bundle["model_id"], replay_floor)
        if budget is None and spare:
            budget = int(reference[0]["spare"]["calls_per_day"])
    batch = None
    if budget == "auto":  # vigil serve --heavy-budget auto: the daily batch's calls a day
        from vigil.moderation.cli import batch_heavy_calls

        batch = batch_heavy_calls()
    decisions_dir, stream_stats, seconds = drive(
        home, test_days, bundle["model_id"], budget, floor, chunk_kb, skip_removed
    )
    decisions = read_decisions(decisions_dir)
    truth = sim_truth.posts(paths().raw, test_days)
    harmful = truth.set_index("post_id")["is_harmful"].astype(bool)
    posts, _ = read_posts()
    posts = posts[posts["created_at"].dt.strftime("%Y-%m-%d").isin(test_days)].copy()
    test_posts = set(posts["post_id"].astype(int))
    events = read_events(test_days)
    views = events[events["action"] == "view"][["post_id", "ts"]]
    outcome = service_outcome(decisions, test_posts)
    graded = prevented(outcome, views, harmful, posts)
    all_heavy = decisions[decisions["routed_to_heavy"].astype(bool)]
    lag = (decisions["decided_at"] - decisions["event_at"]).dt.total_seconds() / 86400
    out = {
        "home": str(home),
        "model_id": bundle["model_id"],
        "test_days": test_days,
        "heavy_budget": budget,
        "batch_heavy_calls": batch,
        "spare_floor": replay_floor,
        "skip_removed": skip_removed,
        # what ran: vigil serve's and vigil stream's arguments (ports, paths as placeholders)
        "serve_args": serve_command(0, budget, floor, model_id, skip_removed)[2:],
        "stream_args": stream_args(Path("RAW"), Path("STATE"), "URL", 1),
        "chunk_kb": chunk_kb,
        "service_seconds": round(seconds, 1),
        "stream": stream_stats,
        "decisions_without_event_time": int(decisions["event_at"].isna().sum()),
        "decided_at_minus_event_at_days_median": float(lag.median()),
        "service": graded,
        "service_spare_calls": int(decisions["spare"].fillna(False).astype(bool).sum()),
        # every request the service answered, older posts' re-scores too (the replay has none)
        "service_all_posts": {
            "decisions": len(decisions),
            "heavy_calls_per_day": len(all_heavy) / len(test_days),
            "other_posts_decisions": int((~decisions["post_id"].isin(test_posts)).sum()),
        },
    }
    if reference is not None:
        out.update(against_replay(reference, decisions, outcome, graded))
    return out


def replay_reference(model_id: str, floor) -> tuple[dict, dict]:
    """The replay's result and outcomes: triggered schedule on exact counters, the head, spare
    calls at ``floor`` (``python -m sim.rescore_replay --features exact --verdict head
    --spare-floor F``)."""
    from sim.rescore_replay import replay_world

    outcomes: dict = {}
    r = replay_world(
        model_id, exact=True, verdict="head", spare_floor=floor, budget="fixed", outcomes=outcomes
    )
    return r, outcomes


def against_replay(
    reference: tuple[dict, dict], decisions: pd.DataFrame, outcome, graded: dict
) -> dict:
    """How the service's requests and removals differ from the replay's triggered schedule."""
    r, outcomes = reference
    trig = outcomes["triggered"]
    a, b = trig.removed_at, outcome.removed_at
    both = set(a) & set(b)
    replay_share = r["triggered_final"]["harmful_views_prevented_share"]
    return {
        "replay": r["triggered_final"],
        "replay_fixed_exact_calls_per_day": r["fixed"]["heavy_calls_per_day"],
        "requests": compare_requests(decisions, outcomes["triggered_scored"], a),
        "removals": {
            "replay": len(a),
            "service": len(b),
            "both": len(both),
            "both_same_time": sum(1 for p in both if a[p] == b[p]),
            "service_earlier": sum(1 for p in both if b[p] < a[p]),
            "service_later": sum(1 for p in both if b[p] > a[p]),
            "replay_only": sorted(set(a) - set(b)),
            "service_only": sorted(set(b) - set(a)),
        },
        "difference_points": 100 * (graded["harmful_views_prevented_share"] - replay_share),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.rescore_service_harness", description=__doc__
    )
    parser.add_argument("--home", required=True, help="a built world's VIGIL_HOME")
    parser.add_argument(
        "--heavy-budget",
        type=lambda v: v if v == "auto" else int(v),
        default=None,
        metavar="N|auto",
        help="vigil serve's N a day (default: the replay's fixed schedule's heavy calls a day "
        "on exact counters, whole part; auto: vigil serve's, the daily batch's calls a day)",
    )
    parser.add_argument(
        "--spare-floor",
        type=float,
        default=None,
        help="passed to vigil serve (default: not passed, the service's 0.5)",
    )
    parser.add_argument("--no-spare", action="store_true", help="no budget: no spare calls")
    parser.add_argument("--model", default=None)
    parser.add_argument("--chunk-kb", type=int, default=16)
    parser.add_argument("--no-replay", action="store_true", help="skip the replay's comparison")
    parser.add_argument(
        "--rescore-removed",
        action="store_true",
        help="the service re-scores removed posts (vigil serve --no-skip-removed)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.no_spare and (args.heavy_budget is not None or args.spare_floor is not None):
        parser.error("--no-spare takes no --heavy-budget nor --spare-floor")
    if not args.no_spare and args.heavy_budget is None and args.no_replay:
        parser.error("without --heavy-budget N is taken from the replay: drop --no-replay")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("vigil.stream").setLevel(logging.WARNING)  # a line per checkpoint
    out = run(
        Path(args.home),
        args.heavy_budget,
        args.spare_floor,
        args.model,
        args.chunk_kb,
        replay=not args.no_replay,
        skip_removed=not args.rescore_removed,
        spare=not args.no_spare,
    )
    from sim.rescore_replay import write_json

    write_json(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
