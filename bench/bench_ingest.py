"""Simulate and ingest throughput at ~10M events (``make bench``), with peak memory.

1. Calibrate: a small simulation (1,000 users, the same days) gives events per user-day; the
   benchmark picks ``--users`` so that ``--days`` days come to about ``--events`` events.
2. ``simulate`` that world into a temp dir; time it (events/s).
3. ``ingest`` it into an empty lake; time it (events/s = raw event lines / wall seconds).
4. Re-ingest the same input (the idempotent no-op: every row a duplicate) and time it: with the
   manifest (unchanged files skipped, the default) and without it (every file read again).
   The floor of a first ingest, side by side: a plain ``pyarrow.json.read_json`` of the same hour
   files (pyarrow stops at the first bad line: a file with one is read again in halves around it).
5. Baseline, side by side: one day ingested by the exact per-line Python path
   (``ingest(fast=False)``: ``json.loads`` + the validator per line) against the default bulk
   path on the same day; the ratio is the bulk path's speed-up.

Each stage runs in its own process so its peak RSS is its own.

``--rounds N`` measures the first ingest against its floor and against the re-ingest: simulate
once, then N rounds of (first ingest into an empty lake, re-ingest of the same unchanged input
into that lake, the same with ``verify=True`` (``vigil ingest --verify``: every file hashed),
pyarrow read of the same files), interleaved so that all see the same machine load; each round's
wall and CPU seconds, the load average before it, how many files the re-ingest hashed and
whether it imported pyarrow, and the best of the rounds. Files the simulation wrote less than
2 s before the first ingest hashed them are hashed again by the re-ingest (the manifest's racy
rule, :mod:`vigil.lake.manifest`).

    python -m bench ingest                      # ~10M events, 30 days
    python -m bench ingest --events 200000      # quick check
    python -m bench ingest --users 1500 --days 30 --rounds 3   # first ingest vs floor, re-ingest
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CAL_USERS = 1000

_CHILD = r"""
import json, os, resource, sys, time, logging
logging.basicConfig(level=logging.WARNING)
spec = json.loads(sys.argv[1])
os.environ["VIGIL_HOME"] = spec["home"]
t0 = time.perf_counter()
if spec["stage"] == "simulate":
    from sim.world import simulate
    out = simulate(spec["raw"], users=spec["users"], days=spec["days"], seed=spec["seed"],
                   progress=False)
elif spec["stage"] == "pyarrow":
    import pyarrow as pa, pyarrow.json as pj
    from pathlib import Path
    def rows_of(lines):  # pyarrow stops at a bad line: read the halves around it
        try:
            return pj.read_json(pa.BufferReader(b"\n".join(lines))).num_rows
        except pa.ArrowInvalid:
            if len(lines) <= 1:
                return 0
            return rows_of(lines[: len(lines) // 2]) + rows_of(lines[len(lines) // 2 :])
    rows = 0
    for f in sorted(Path(spec["raw"]).glob("events/dt=*/hour=*.jsonl")):
        try:
            rows += pj.read_json(f).num_rows
        except pa.ArrowInvalid:
            rows += rows_of(f.read_bytes().splitlines())
    out = {"rows": rows}
else:
    from vigil.lake.ingest import ingest
    if spec.get("no_rule_logs"):  # diagnosis only: the rules-log step left out
        import vigil.lake.ingest
        vigil.lake.ingest.ingest_rule_logs = lambda *args: {}
    out = ingest(spec["raw"], day=spec.get("day"), fast=spec.get("fast", True),
                 manifest=spec.get("manifest", True), verify=spec.get("verify", False))
seconds = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cpu = time.process_time()
print(json.dumps({"result": out, "seconds": seconds, "peak_rss_mb": rss, "cpu_seconds": cpu,
                  "pyarrow_imported": "pyarrow" in sys.modules}, default=str))
"""


def _stage(**spec) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        check=False,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench stage {spec['stage']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _events_per_user_day(work: Path, days: int, seed: int) -> float:
    cal_days = days  # activity grows over the period: calibrate on the full span
    run = _stage(
        stage="simulate",
        raw=str(work / "calibrate"),
        home=str(work / "home-cal"),
        users=CAL_USERS,
        days=cal_days,
        seed=seed,
    )
    shutil.rmtree(work / "calibrate", ignore_errors=True)
    return run["result"]["events"] / (CAL_USERS * cal_days)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--events", type=int, default=10_000_000, help="target events (default 10M)"
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--users", type=int, default=None, help="skip calibration: simulate N users"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="default: a temp dir, removed after"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="only first ingest vs the pyarrow floor, interleaved N times (see above)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-ingest-", dir=args.workdir))
    if args.rounds > 0:
        try:
            return _interleaved(args, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    try:
        run = _run_stages(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _print_report(args, run)
    sim, first, again = run["sim"], run["first"], run["again"]
    fast_day, slow_day = run["fast_day"], run["slow_day"]
    r = first["result"]
    ev = r["streams"]["events"]
    day_lines = fast_day["result"]["streams"]["events"]["read"]
    events = sim["result"]["events"]
    return {
        "users": run["users"],
        "days": args.days,
        "events": events,
        "simulate_events_per_s": events / sim["seconds"],
        "ingest_events_per_s": ev["read"] / first["seconds"],
        "reingest_events_per_s": ev["read"] / again["seconds"],
        "reingest_every_file_events_per_s": ev["read"] / run["again_full"]["seconds"],
        "pyarrow_read_events_per_s": ev["read"] / run["peer"]["seconds"],
        "first_vs_pyarrow": first["seconds"] / run["peer"]["seconds"],
        "first_vs_reingest": first["seconds"] / again["seconds"],
        "baseline_events_per_s": day_lines / slow_day["seconds"],
        "bulk_day_events_per_s": day_lines / fast_day["seconds"],
        "bulk_vs_baseline": slow_day["seconds"] / fast_day["seconds"],
        "simulate_peak_rss_mb": sim["peak_rss_mb"],
        "ingest_peak_rss_mb": first["peak_rss_mb"],
        "lake_mb": run["lake_mb"],
        "raw_mb": run["raw_mb"],
        "counts": {k: r[k] for k in ("read", "loaded", "quarantined", "duplicates")},
    }


def _run_stages(args: argparse.Namespace, work: Path) -> dict:
    """Calibrate (unless ``--users``), simulate, ingest, re-ingest, then one day by the bulk and
    the per-line paths, each stage in its own process; returns every stage's measurement."""
    raw, home = work / "raw", work / "home"
    users = args.users
    if users is None:
        rate = _events_per_user_day(work, args.days, args.seed)
        users = max(50, math.ceil(args.events / (rate * args.days)))
        print(f"calibration: {rate:.1f} events per user-day -> --users {users:,}", flush=True)
    sim = _stage(
        stage="simulate", raw=str(raw), home=str(home), users=users, days=args.days, seed=args.seed
    )
    events = sim["result"]["events"]
    lines = sim["result"]["lines"]
    print(f"simulated {events:,} events ({lines:,} lines) in {sim['seconds']:.1f} s", flush=True)
    first = _stage(stage="ingest", raw=str(raw), home=str(home))
    print(f"ingested in {first['seconds']:.1f} s", flush=True)
    again = _stage(stage="ingest", raw=str(raw), home=str(home))
    assert again["result"]["loaded"] == 0, again["result"]
    again_full = _stage(stage="ingest", raw=str(raw), home=str(home), manifest=False)
    assert again_full["result"]["loaded"] == 0, again_full["result"]
    peer = _stage(stage="pyarrow", raw=str(raw), home=str(home))
    # Baseline vs bulk path on the same single day, each into an empty lake.
    day = sorted(p.name[3:] for p in (raw / "events").iterdir())[
        len(list((raw / "events").iterdir())) // 2
    ]
    fast_day = _stage(stage="ingest", raw=str(raw), home=str(work / "home-fast"), day=day)
    slow_day = _stage(
        stage="ingest", raw=str(raw), home=str(work / "home-slow"), day=day, fast=False
    )
    counts = ("read", "loaded", "quarantined", "duplicates")
    assert {k: fast_day["result"][k] for k in counts} == {k: slow_day["result"][k] for k in counts}
    return {
        "users": users,
        "sim": sim,
        "first": first,
        "again": again,
        "again_full": again_full,
        "peer": peer,
        "day": day,
        "fast_day": fast_day,
        "slow_day": slow_day,
        "lake_mb": _mb(home / "lake"),
        "raw_mb": _mb(raw / "events"),
    }


def _interleaved(args: argparse.Namespace, work: Path) -> dict:
    """Simulate once, then ``args.rounds`` rounds of (first ingest into an empty lake, floor)."""
    import os

    raw = work / "raw"
    users = args.users or 1500
    sim = _stage(
        stage="simulate",
        raw=str(raw),
        home=str(work / "home-sim"),
        users=users,
        days=args.days,
        seed=args.seed,
    )
    print(
        f"simulated {users:,} users x {args.days} days: {sim['result']['lines']:,} lines, "
        f"{_mb(raw / 'events'):,.0f} MB of hour files",
        flush=True,
    )
    print(
        f"{'round':<6} {'load 1m':>8} {'ingest wall/cpu s':>18} {'floor wall/cpu s':>17} "
        f"{'ratio wall/cpu':>15} {'re-ingest wall/cpu s':>21} {'first/re-ingest wall':>21} "
        f"{'--verify wall/cpu s':>20}"
    )
    rounds = []
    for i in range(1, args.rounds + 1):
        load = os.getloadavg()[0]
        home = work / f"home-{i}"
        first = _stage(stage="ingest", raw=str(raw), home=str(home))
        again = _stage(stage="ingest", raw=str(raw), home=str(home))
        assert again["result"]["loaded"] == 0, again["result"]
        verify = _stage(stage="ingest", raw=str(raw), home=str(home), verify=True)
        floor = _stage(stage="pyarrow", raw=str(raw), home=str(home))
        shutil.rmtree(home, ignore_errors=True)
        r = {
            "load": load,
            "ingest_wall": first["seconds"],
            "ingest_cpu": first["cpu_seconds"],
            "floor_wall": floor["seconds"],
            "floor_cpu": floor["cpu_seconds"],
            "again_wall": again["seconds"],
            "again_cpu": again["cpu_seconds"],
            "again_hashed": again["result"]["hashed_files"],
            "again_pyarrow": again["pyarrow_imported"],
            "verify_wall": verify["seconds"],
            "verify_cpu": verify["cpu_seconds"],
        }
        r["ratio_wall"] = r["ingest_wall"] / r["floor_wall"]
        r["ratio_cpu"] = r["ingest_cpu"] / r["floor_cpu"]
        r["first_vs_again_wall"] = r["ingest_wall"] / r["again_wall"]
        rounds.append(r)
        print(
            f"{i:<6} {load:>8.2f} {r['ingest_wall']:>9.2f}/{r['ingest_cpu']:<8.2f} "
            f"{r['floor_wall']:>8.2f}/{r['floor_cpu']:<8.2f} "
            f"{r['ratio_wall']:>7.2f}x/{r['ratio_cpu']:.2f}x "
            f"{r['again_wall']:>12.3f}/{r['again_cpu']:<8.3f} {r['first_vs_again_wall']:>20.1f}x "
            f"{r['verify_wall']:>10.3f}/{r['verify_cpu']:.3f}  (re-ingest: {r['again_hashed']} "
            f"files hashed, pyarrow imported: {r['again_pyarrow']})",
            flush=True,
        )
    best = {k: min(r[k] for r in rounds) for k in rounds[0] if k not in ("load", "again_pyarrow")}
    worst_again = min(r["first_vs_again_wall"] for r in rounds)
    print(
        f"best of {args.rounds}: first ingest {best['ingest_wall']:.2f} s wall / "
        f"{best['ingest_cpu']:.2f} s CPU, floor {best['floor_wall']:.2f} / {best['floor_cpu']:.2f}; "
        f"best round ratio {best['ratio_wall']:.2f}x wall, {best['ratio_cpu']:.2f}x CPU "
        f"(target <= 2x); ratio of the bests {best['ingest_wall'] / best['floor_wall']:.2f}x wall, "
        f"{best['ingest_cpu'] / best['floor_cpu']:.2f}x CPU; first ingest / re-ingest of unchanged "
        f"input: lowest round {worst_again:.1f}x wall, ratio of the bests "
        f"{best['ingest_wall'] / best['again_wall']:.1f}x (target >= 10x)"
    )
    return {
        "users": users,
        "days": args.days,
        "lines": sim["result"]["lines"],
        "rounds": rounds,
        "best": best,
    }


def _mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _print_report(args: argparse.Namespace, run: dict) -> None:
    sim, first, again = run["sim"], run["first"], run["again"]
    fast_day, slow_day = run["fast_day"], run["slow_day"]
    events = sim["result"]["events"]
    r = first["result"]
    day_lines = fast_day["result"]["streams"]["events"]["read"]
    rows = [
        ("simulate", events, sim),
        ("ingest (bulk, default)", r["streams"]["events"]["read"], first),
        ("re-ingest, manifest (default)", again["result"]["streams"]["events"]["read"], again),
        (
            "re-ingest, every file read",
            run["again_full"]["result"]["streams"]["events"]["read"],
            run["again_full"],
        ),
        ("floor: pyarrow.json.read_json", r["streams"]["events"]["read"], run["peer"]),
        (f"1 day bulk ({run['day']})", day_lines, fast_day),
        ("1 day per-line baseline", day_lines, slow_day),
    ]
    print()
    print(
        f"ingest benchmark: {run['users']:,} users x {args.days} days = {events:,} events, "
        f"raw events {run['raw_mb']:,.0f} MB -> lake {run['lake_mb']:,.0f} MB"
    )
    print(
        f"{'stage':<28} {'events':>12} {'wall s':>8} {'cpu s':>8} {'events/s':>12} {'peak RSS MB':>12}"
    )
    for name, n, st in rows:
        wall, cpu, rss = st["seconds"], st["cpu_seconds"], st["peak_rss_mb"]
        print(f"{name:<28} {n:>12,} {wall:>8.1f} {cpu:>8.1f} {n / wall:>12,.0f} {rss:>12,.0f}")
    print(
        f"first ingest vs pyarrow read of the same files: "
        f"{first['seconds'] / run['peer']['seconds']:.1f}x its time; re-ingest with the manifest "
        f"{first['seconds'] / again['seconds']:.0f}x faster than the first ingest "
        f"(every file read again: {first['seconds'] / run['again_full']['seconds']:.1f}x)"
    )
    speedup = slow_day["seconds"] / fast_day["seconds"]
    print(f"bulk path vs per-line baseline on one day: {speedup:.1f}x faster")
    print(
        f"ingest counts: read {r['read']:,}, loaded {r['loaded']:,}, quarantined {r['quarantined']:,}, "
        f"duplicates {r['duplicates']:,}"
    )


if __name__ == "__main__":
    main()
