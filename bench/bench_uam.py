"""User Active Minutes at scale: Vigil's dbt UAM models beside hand-written peers, in one run.

Generates N events (default 100M) of (user_id, event_ts) over 30 days as lake-layout Parquet
(``events/dt=YYYY-MM-DD/events.parquet``, sorted by user and time), quickly, with DuckDB itself.
Then times, each in its own process with the same DuckDB memory limit, threads and temp directory:

- ``scan floor``    reading (user_id, event_ts) from every file (nothing can be faster);
- ``duckdb hand``   the fastest hand-written DuckDB query found: per day file, distinct minutes
                    per user (a hash table the size of one day), UNION ALL, summed per user, then
                    the S=1 histogram (the same idea as the dbt model, without materializing);
- ``duckdb 1-pass`` the plain query: count(distinct minute) per user over the whole window;
- ``polars lazy``   the same with a polars lazy query (n_unique per user);
- ``vigil dbt``     `dbt run` of Vigil's UAM models (int_user_active_minutes_daily full refresh,
                    user_active_minutes, uam_histogram; the staging views are built before, untimed):
                    wall time including dbt's ~5 s start-up, and the models' own time; then a
                    rerun with nothing new. On DuckDB the daily model is the Python model
                    (per day: numpy over the lake's (user_id, event_ts) order, vigil/uam_daily.py);
- ``dbt SQL model`` (``dbtsql``) the same with the portable SQL daily model (as on Spark);
- ``dbt +1 day``    one new day of events, then the incremental run (only that day is computed),
                    beside the full recompute above;
- ``uam-update``     (``update``) the same new day applied by ``vigil uam-update`` (vigil/uam_update.py:
                    the dbt delta's rule and tables without dbt's per-run machinery) to the warehouse
                    as the full refresh left it: once as a fresh process (what a scheduled task pays,
                    imports included), once by the resident ``--watch`` process as the day lands.
                    Both must leave every UAM table equal to dbt's +1 day run.

Reports seconds, ratio to the fastest peer, events/s, peak RSS of the process tree and peak bytes
DuckDB spilled to its temp directory. All contenders must return the same histogram; Vigil's
user_active_minutes is also checked user by user against polars on a sample of users.

    python -m bench uam [--events 100000000] [--users N] [--memory-limit 1GB] [--threads 2]
                        [--only scan,duckdb,duckdb1,polars,dbt,dbtsql,inc,update] [--dir PATH]
                        [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from bench.uam_contenders import (
    STAGING,
    _measure,
    _sample_check,
    _warehouse_histogram,
    dbt_command,
    generate,
    peer_commands,
    run_update,
)

START = date(2026, 10, 1)
DAYS = 30
CONTENDERS = ("scan", "duckdb", "duckdb1", "polars", "dbt", "dbtsql", "inc", "update")


@dataclass
class _Run:
    """One bench run: its options, where it works, and what it has measured so far."""

    args: argparse.Namespace
    only: set[str]
    bench_home: Path
    users: int
    memory_limit: str
    threads: int
    days: list[date]
    results: dict[str, dict] = field(default_factory=dict)
    histograms: dict[str, list] = field(default_factory=dict)

    @property
    def events_dir(self) -> Path:
        return self.bench_home / "lake" / "events"

    @property
    def temp_dir(self) -> Path:
        return self.bench_home / "tmp"

    @property
    def as_of(self) -> date:
        return self.days[-1]

    @property
    def new_day(self) -> date:
        return self.days[-1] + timedelta(days=1)

    @property
    def env(self) -> dict:
        """Vigil's environment for the dbt and uam-update contenders: a bench data root of their
        own (lake = the generated files) and the same DuckDB limits as the peers."""
        return dict(
            os.environ,
            VIGIL_HOME=str(self.bench_home),
            VIGIL_DUCKDB_MEMORY_LIMIT=self.memory_limit,
            VIGIL_DUCKDB_THREADS=str(self.threads),
        )


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, set[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: events / 100")
    parser.add_argument("--dir", type=Path, default=None, help="default: <data root>/bench/uam")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse files generated earlier with the same options"
    )
    parser.add_argument(
        "--memory-limit", default=None, help="DuckDB memory_limit for every contender (e.g. 1GB)"
    )
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help="comma-separated subset of: "
        + ", ".join(CONTENDERS)
        + " (duckdb1 = one-pass count(distinct); dbtsql = the SQL daily model; inc = dbt +1 day,"
        " needs dbt; update = the same day by vigil uam-update, fresh and resident, needs inc)",
    )
    parser.add_argument(
        "--sample-modulo", type=int, default=101,
        help="check user_active_minutes of users with user_id %% M == 0 against polars",
    )  # fmt: skip
    parser.add_argument(
        "--inc-engine", default="auto", choices=("auto", "sorted", "polars", "duckdb"),
        help="uam_daily_engine of the one-new-day run",
    )  # fmt: skip
    args = parser.parse_args(argv)
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    unknown = only - set(CONTENDERS)
    if unknown:
        raise SystemExit(
            f"bench uam: unknown --only {sorted(unknown)}: use {', '.join(CONTENDERS)}"
        )
    return args, only


def main(argv: list[str] | None = None) -> dict:
    args, only = _parse_args(argv)
    from vigil import config

    run = _Run(
        args=args,
        only=only,
        bench_home=(args.dir or config.paths().home / "bench" / "uam").resolve(),
        users=args.users or max(args.events // 100, 10),
        memory_limit=args.memory_limit or config.duckdb_memory_limit(),
        threads=args.threads or config.duckdb_threads(),
        days=[START + timedelta(days=d) for d in range(DAYS)],
    )
    gen_seconds = _prepare_lake(run)
    n_events = (args.events // DAYS) * DAYS
    size = sum(f.stat().st_size for f in run.events_dir.rglob("*.parquet"))
    print(
        f"{n_events:,} events, {run.users:,} users, {DAYS} days, {size / 1e6:,.0f} MB of Parquet "
        f"({gen_seconds:.1f} s)  (DuckDB memory_limit {run.memory_limit}, threads {run.threads})",
        flush=True,
    )
    _run_peers(run)
    sample, update = None, None
    if "dbt" in only:
        sample = _run_dbt(run)
        if "inc" in only:
            update = _run_inc_and_update(run)
    shutil.rmtree(run.temp_dir, ignore_errors=True)

    agree = _print_report(run, n_events, update)
    try:
        load = os.getloadavg()
        print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    except OSError:
        load = None
    if not args.keep:
        shutil.rmtree(run.bench_home, ignore_errors=True)
    return {
        "events": n_events,
        "users": run.users,
        "parquet_mb": size / 1e6,
        "memory_limit": run.memory_limit,
        "results": run.results,
        "agree": agree,
        "sample_check": sample,
        "uam_update": update,
        "generate_seconds": gen_seconds,
        "load_average": load,
    }


def _prepare_lake(run: _Run) -> float:
    """Generate the lake (or, with ``--reuse``, keep one generated with the same options, minus
    what an earlier run added); return the seconds it took."""
    manifest = run.bench_home / "lake" / "bench_manifest.json"
    wanted = {"events": run.args.events, "users": run.users, "days": DAYS, "seed": 7}
    t0 = time.perf_counter()
    if run.args.reuse and manifest.exists() and json.loads(manifest.read_text()) == wanted:
        for stale in ("warehouse", "tmp", "dbt", "copies", "held"):
            shutil.rmtree(run.bench_home / stale, ignore_errors=True)
        for extra in (run.new_day, run.new_day + timedelta(days=1)):  # days a run adds to the lake
            shutil.rmtree(run.events_dir / f"dt={extra.isoformat()}", ignore_errors=True)
        print(f"reusing the lake in {run.bench_home / 'lake'}")
    else:
        shutil.rmtree(run.bench_home, ignore_errors=True)
        generate(run.events_dir, run.args.events, run.users, run.days)
        manifest.write_text(json.dumps(wanted))
    return time.perf_counter() - t0


def _run_peers(run: _Run) -> None:
    """The hand-written peers, each in its own process with an empty temp directory."""
    peers = peer_commands(
        run.events_dir, run.days, run.as_of, run.temp_dir, run.memory_limit, run.threads
    )
    for name, (key, cmd) in peers.items():
        if key not in run.only:
            continue
        shutil.rmtree(run.temp_dir, ignore_errors=True)
        (run.temp_dir / "peers").mkdir(parents=True)
        seconds, peak, temp_peak, out = _measure(cmd, temp_dir=run.temp_dir)
        run.results[name] = {"seconds": seconds, "peak_mb": peak / 1e6, "temp_mb": temp_peak / 1e6}
        if name != "scan floor":
            run.histograms[name] = [tuple(r) for r in json.loads(out.strip().splitlines()[-1])]
        print(
            f"  {name:<13} {seconds:8.2f} s   peak {peak / 1e6:8,.0f} MB   "
            f"temp {temp_peak / 1e6:8,.0f} MB",
            flush=True,
        )


def _run_dbt_contender(run: _Run, name: str, cmd: list[str]) -> None:
    shutil.rmtree(run.temp_dir, ignore_errors=True)
    seconds, peak, temp_peak, out = _measure(cmd, env=run.env, temp_dir=run.temp_dir)
    nodes = json.loads(out.strip().splitlines()[-1])
    model_seconds = sum(nodes.values())
    run.results[name] = {
        "seconds": seconds,
        "model_seconds": model_seconds,
        "peak_mb": peak / 1e6,
        "temp_mb": temp_peak / 1e6,
        "nodes": nodes,
    }
    print(
        f"  {name:<13} {seconds:8.2f} s   models {model_seconds:6.2f} s   peak "
        f"{peak / 1e6:8,.0f} MB   temp {temp_peak / 1e6:8,.0f} MB   "
        + ", ".join(f"{n} {v:.2f}" for n, v in nodes.items()),
        flush=True,
    )


def _run_dbt(run: _Run) -> dict:
    """Vigil's dbt UAM models: the SQL daily model (``dbtsql``), the full refresh, the rerun
    with nothing new; then a polars recount of a sample of users. Returns the sample check."""
    import duckdb

    staging_code = f"from vigil.warehouse import dbt; dbt.run_dbt('run', {STAGING!r})"
    staging_cmd = [sys.executable, "-c", staging_code]
    subprocess.run(staging_cmd, env=run.env, check=True, stdout=subprocess.DEVNULL)
    dbt_cmd = dbt_command(run.as_of)
    if "dbtsql" in run.only:
        # the portable SQL model (as on Spark) on DuckDB, for comparison
        _run_dbt_contender(run, "dbt SQL model", dbt_cmd + ["--full-refresh", "--engine=sql"])
        run.histograms["dbt SQL model"] = _warehouse_histogram(run.bench_home)
    for name, extra in (("vigil dbt", ["--full-refresh"]), ("dbt no-op", [])):
        _run_dbt_contender(run, name, dbt_cmd + extra)

    warehouse_file = run.bench_home / "warehouse" / "vigil.duckdb"
    run.histograms["vigil dbt"] = _warehouse_histogram(run.bench_home)
    con = duckdb.connect(str(warehouse_file), read_only=True)
    total_users = con.execute("select count(*) from user_active_minutes").fetchone()[0]
    con.close()
    modulo = run.args.sample_modulo
    first = run.as_of - timedelta(days=29)
    sample = _sample_check(run.events_dir, warehouse_file, first, run.as_of, modulo)
    sample["modulo"] = modulo
    print(
        f"  sample check: {sample['users']:,} users (user_id % {modulo} == 0) "
        f"recounted by polars from the Parquet files: {sample['mismatches']} mismatches; "
        f"{total_users:,} users in user_active_minutes",
        flush=True,
    )
    return sample


def _run_inc_and_update(run: _Run) -> dict | None:
    """One more day of events, dbt's incremental run for it (``inc``), and the same day applied
    by ``vigil uam-update`` (``update``) from the warehouse as the full refresh left it."""
    args, bench_home = run.args, run.bench_home
    warehouse_file = bench_home / "warehouse" / "vigil.duckdb"
    pre = bench_home / "copies" / "pre_inc.duckdb"
    if "update" in run.only:  # the warehouse as the full refresh left it, for uam-update
        pre.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(warehouse_file, pre)
    # one more day, then the daily incremental run (as_of moves to the new day)
    generate(run.events_dir, args.events // DAYS * 1, run.users, [run.new_day], seed=8)
    inc_cmd = dbt_command(run.new_day) + [f"--engine={args.inc_engine}"]
    _run_dbt_contender(run, "dbt +1 day", inc_cmd)
    if "update" not in run.only:
        return None
    dbt_inc = bench_home / "copies" / "dbt_inc.duckdb"
    shutil.copyfile(warehouse_file, dbt_inc)
    update = run_update(
        bench_home,
        run.env,
        run.events_dir,
        run.new_day,
        pre,
        dbt_inc,
        lambda into, day: generate(into, args.events // DAYS, run.users, [day], seed=9),
        args.sample_modulo,
    )
    shutil.rmtree(pre.parent)
    return update


def _print_report(run: _Run, n_events: int, update: dict | None) -> dict[str, bool]:
    """The table of contenders (and their ratios to the fastest peer, added to ``results``),
    then the incremental and uam-update summaries; returns which histograms agree."""
    results = run.results
    reference = next(iter(run.histograms.values()), None)
    agree = {name: h == reference for name, h in run.histograms.items()}
    peer_times = [
        results[n]["seconds"]
        for n in ("duckdb hand", "duckdb 1-pass", "polars lazy")
        if n in results
    ]
    fastest_peer = min(peer_times) if peer_times else None
    print()
    print(f"UAM over {n_events:,} events (30-day window ending {run.as_of}), histogram S=1")
    print("(wall = whole process incl. dbt's start-up; models = dbt's own model timings)")
    print(
        f"{'contender':<14}{'wall s':>9}{'vs fastest':>12}{'models s':>10}{'vs fastest':>12}"
        f"{'events/s':>14}{'peak MB':>9}{'temp MB':>9}  same answer"
    )
    for name, r in results.items():
        print(_table_row(name, r, n_events, fastest_peer, agree.get(name)))
    if "dbt +1 day" in results:
        _print_incremental(results)
    if update and "vigil dbt" in results:
        _print_update(results, update)
    return agree


def _table_row(name: str, r: dict, n_events: int, fastest_peer: float | None, same) -> str:
    """One contender's row; adds events_per_s (and the ratios to the fastest peer) to ``r``."""
    r["events_per_s"] = n_events / r.get("model_seconds", r["seconds"])
    ratio = "-"
    if fastest_peer:
        r["ratio"] = r["seconds"] / fastest_peer
        ratio = f"{r['ratio']:.2f}x"
    model = f"{'-':>10}{'-':>12}"
    if "model_seconds" in r:
        model = f"{r['model_seconds']:>10.2f}{'-':>12}"
        if fastest_peer:
            r["model_ratio"] = r["model_seconds"] / fastest_peer
            model = f"{r['model_seconds']:>10.2f}{r['model_ratio']:>11.2f}x"
    same_text = {True: "yes", False: "NO"}.get(same, "-")
    return (
        f"{name:<14}{r['seconds']:>9.2f}{ratio:>12}{model}{r['events_per_s']:>14,.0f}"
        f"{r['peak_mb']:>9,.0f}{r['temp_mb']:>9,.0f}  {same_text}"
    )


def _print_incremental(results: dict[str, dict]) -> None:
    inc, full = results["dbt +1 day"], results["vigil dbt"]
    print(
        f"daily incremental (1 new day) {inc['model_seconds']:.2f} s of model time vs full "
        f"recompute {full['model_seconds']:.2f} s "
        f"({full['model_seconds'] / max(inc['model_seconds'], 1e-9):.1f}x less); wall "
        f"{inc['seconds']:.2f} s vs {full['seconds']:.2f} s "
        f"({full['seconds'] / max(inc['seconds'], 1e-9):.1f}x less)"
    )
    noop = results.get("dbt no-op")
    if not noop:
        return
    # what the new day itself costs above the per-run floor (the rerun with nothing new:
    # Python model machinery, imports, dbt's bookkeeping, rewriting user_active_minutes)
    marginal = inc["model_seconds"] - noop["model_seconds"]
    print(
        f"  of which the per-run floor (rerun with nothing new) {noop['model_seconds']:.2f} s "
        f"and the new day itself {marginal:.2f} s "
        f"({full['model_seconds'] / max(marginal, 1e-9):.1f}x less than the full recompute)"
    )
    # 10x cheaper needs floor + day <= full / 10: a floor above that rules it out
    print(
        f"  the floor alone is {noop['model_seconds'] / full['model_seconds']:.0%} of the "
        f"full recompute (10x cheaper needs the whole run under 10%)"
    )


def _print_update(results: dict[str, dict], update: dict) -> None:
    full = results["vigil dbt"]["model_seconds"]
    fresh, first, later = update["fresh"], update["resident"], update["resident_next_day"]
    print(
        f"vigil uam-update, one new day vs the full recompute's {full:.2f} s of model time: "
        f"resident {first['update_seconds']:.2f} s for the first day after it started "
        f"({full / first['update_seconds']:.1f}x less), {later['update_seconds']:.2f} s for the "
        f"next ({full / later['update_seconds']:.1f}x less); a fresh process "
        f"{fresh['update_seconds']:.2f} s ({full / fresh['update_seconds']:.1f}x less), "
        f"{fresh['seconds']:.2f} s wall with imports against the full refresh's "
        f"{results['vigil dbt']['seconds']:.2f} s "
        f"({results['vigil dbt']['seconds'] / fresh['seconds']:.1f}x less)"
    )


if __name__ == "__main__":
    main()
