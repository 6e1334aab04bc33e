"""User Active Minutes at scale: Vigil's dbt UAM models beside hand-written peers, in one run.

Generates N events (default 100M) of (user_id, event_ts) over 30 days as lake-layout Parquet
(``events/dt=YYYY-MM-DD/events.parquet``, sorted by user and time), quickly, with DuckDB itself.
Then times, each in its own process with the same DuckDB memory limit and threads:

- ``scan floor``   reading (user_id, event_ts) from every file (nothing can be faster);
- ``duckdb hand``  the best hand-written DuckDB query: distinct minutes per user over the 30-day
                   window, then the S=1 histogram;
- ``polars lazy``  the same with a polars lazy query;
- ``vigil dbt``    `dbt run` of Vigil's UAM models (staging views, int_user_active_minutes_daily
                   full refresh, user_active_minutes, uam_histogram): wall time including dbt's
                   ~5 s start-up, and the models' own time;
- ``dbt +1 day``   one new day of events, then the incremental run (only that day is computed),
                   beside the full recompute above.

Reports seconds, ratio to the fastest peer (duckdb hand / polars), events/s and peak RSS of the
process tree. All contenders must return the same histogram.

    python bench/bench_uam.py [--events 100000000] [--users N] [--dir PATH] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, timedelta
from pathlib import Path

START = date(2026, 10, 1)
DAYS = 30


def _peak_rss(proc: subprocess.Popen, stop: threading.Event, out: list[int]) -> None:
    import psutil

    try:
        root = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        return
    peak = 0
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out.append(peak)


def _measure(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Run a command; return (wall seconds, peak RSS bytes of its process tree, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=_peak_rss, args=(proc, stop, peak), daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return seconds, (peak[0] if peak else 0), stdout


def generate(events_dir: Path, events: int, users: int, days: list[date], seed: int = 7) -> None:
    """Per day: events/len(days) rows, users drawn with a skew (a few heavy users), random times."""
    import duckdb

    per_day = events // len(days)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'; set preserve_insertion_order = false")
    for i, day in enumerate(days):
        out = events_dir / f"dt={day.isoformat()}" / "events.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        base = f"{seed} * 1000003 + {i}"
        con.execute(
            f"""
            copy (
                select
                    cast(1 + floor({users} * pow((hash(n, {base}, 1) % 1000000007) / 1000000007.0, 2))
                         as bigint) as user_id,
                    cast(make_timestamp(epoch_us(timestamp '{day.isoformat()}')
                         + (hash(n, {base}, 2) % 86400000000)::bigint) as timestamptz) as event_ts
                from range({per_day}) as t(n)
                order by user_id, event_ts
            ) to '{out}' (format parquet, compression zstd, row_group_size 1000000)
            """
        )


def _python_snippet(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: events / 100")
    parser.add_argument("--dir", type=Path, default=None, help="default: <data root>/bench/uam")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    from vigil import config

    bench_home = (args.dir or config.paths().home / "bench" / "uam").resolve()
    users = args.users or max(args.events // 100, 10)
    memory_limit, threads = config.duckdb_memory_limit(), config.duckdb_threads()
    shutil.rmtree(bench_home, ignore_errors=True)
    events_dir = bench_home / "lake" / "events"
    days = [START + timedelta(days=d) for d in range(DAYS)]
    as_of = days[-1]

    t0 = time.perf_counter()
    generate(events_dir, args.events, users, days)
    gen_seconds = time.perf_counter() - t0
    n_events = (args.events // DAYS) * DAYS
    size = sum(f.stat().st_size for f in events_dir.rglob("*.parquet"))
    print(
        f"generated {n_events:,} events, {users:,} users, {DAYS} days, {size / 1e6:,.0f} MB "
        f"in {gen_seconds:.1f} s  (DuckDB memory_limit {memory_limit}, threads {threads})"
    )

    glob = f"{events_dir}/dt=*/events.parquet"
    duck_setup = (
        f"import duckdb, json; con = duckdb.connect(config={{'memory_limit': '{memory_limit}', "
        f"'threads': {threads}, 'temp_directory': '{bench_home}/tmp'}}); con.execute(\"set TimeZone = 'UTC'; set enable_progress_bar = false\")"
    )
    first = (as_of - timedelta(days=29)).isoformat()
    window = f"dt between date '{first}' and date '{as_of.isoformat()}'"
    peers = {
        "scan floor": _python_snippet(f"""
            {duck_setup}
            print(json.dumps(con.execute("select count(*), sum(user_id), max(event_ts)::varchar "
                "from read_parquet('{glob}', hive_partitioning = true) where {window}").fetchone()))
        """),
        "duckdb hand": _python_snippet(f"""
            {duck_setup}
            rows = con.execute('''
                with uam as (
                    select user_id, count(distinct epoch_us(event_ts) // 60000000) as uam
                    from read_parquet('{glob}', hive_partitioning = true)
                    where {window}
                    group by user_id
                )
                select uam as lower, count(*) as users from uam group by 1 order by 1
            ''').fetchall()
            print(json.dumps(rows))
        """),
        "polars lazy": _python_snippet(f"""
            import json, polars as pl
            from datetime import date
            lf = (pl.scan_parquet('{glob}', hive_partitioning=True)
                  .filter(pl.col('dt').is_between(date.fromisoformat('{first}'), date.fromisoformat('{as_of}')))
                  .group_by('user_id')
                  .agg((pl.col('event_ts').dt.epoch('us') // 60_000_000).n_unique().alias('uam'))
                  .group_by('uam').agg(pl.len().alias('users')).sort('uam'))
            print(json.dumps([list(r) for r in lf.collect().rows()]))
        """),
    }
    results: dict[str, dict] = {}
    histograms: dict[str, list] = {}
    for name, cmd in peers.items():
        seconds, peak, out = _measure(cmd)
        results[name] = {"seconds": seconds, "peak_mb": peak / 1e6}
        if name != "scan floor":
            histograms[name] = [tuple(r) for r in json.loads(out.strip().splitlines()[-1])]
        print(f"  {name:<12} {seconds:8.2f} s   peak {peak / 1e6:8,.0f} MB")

    # Vigil's dbt models, in a bench data root of their own (lake = the generated files)
    env = dict(os.environ, VIGIL_HOME=str(bench_home))
    select = [
        "stg_lake__event_activity",
        "stg_lake__event_partitions",
        "int_user_active_minutes_daily",
        "user_active_minutes",
        "uam_histogram",
    ]
    dbt_cmd = [
        sys.executable,
        "-c",
        textwrap.dedent(f"""
        import json, sys
        from vigil import warehouse
        s = warehouse.run_dbt("run", {select!r}, full_refresh="--full-refresh" in sys.argv,
                              dbt_vars={{"as_of": "{as_of}"}})
        print(json.dumps({{n: v["seconds"] for n, v in s["nodes"].items()}}))
    """),
    ]
    for name, extra in (("vigil dbt", ["--full-refresh"]), ("dbt no-op", [])):
        seconds, peak, out = _measure(dbt_cmd + extra, env=env)
        nodes = json.loads(out.strip().splitlines()[-1])
        model_seconds = sum(nodes.values())
        results[name] = {
            "seconds": seconds,
            "model_seconds": model_seconds,
            "peak_mb": peak / 1e6,
            "nodes": nodes,
        }
        print(
            f"  {name:<12} {seconds:8.2f} s   models {model_seconds:6.2f} s   peak {peak / 1e6:8,.0f} MB   "
            + ", ".join(f"{n} {v:.2f}" for n, v in nodes.items())
        )
    import duckdb

    con = duckdb.connect(str(bench_home / "warehouse" / "vigil.duckdb"), read_only=True)
    histograms["vigil dbt"] = [
        tuple(r)
        for r in con.execute(
            "select lower, users from uam_histogram where users > 0 order by lower"
        ).fetchall()
    ]
    con.close()

    # one more day, then the daily incremental run (as_of moves to the new day)
    new_day = days[-1] + timedelta(days=1)
    generate(events_dir, args.events // DAYS * 1, users, [new_day], seed=8)
    inc_cmd = [c.replace(f'"as_of": "{as_of}"', f'"as_of": "{new_day}"') for c in dbt_cmd]
    seconds, peak, out = _measure(inc_cmd, env=env)
    nodes = json.loads(out.strip().splitlines()[-1])
    model_seconds = sum(nodes.values())
    results["dbt +1 day"] = {
        "seconds": seconds,
        "model_seconds": model_seconds,
        "peak_mb": peak / 1e6,
        "nodes": nodes,
    }
    print(
        f"  {'dbt +1 day':<12} {seconds:8.2f} s   models {model_seconds:6.2f} s   peak {peak / 1e6:8,.0f} MB   "
        + ", ".join(f"{n} {v:.2f}" for n, v in nodes.items())
    )

    reference = histograms["duckdb hand"]
    agree = {name: h == reference for name, h in histograms.items()}
    fastest_peer = min(results["duckdb hand"]["seconds"], results["polars lazy"]["seconds"])
    print()
    print(f"UAM over {n_events:,} events (30-day window ending {as_of}), histogram S=1")
    print("(wall = whole process incl. dbt's start-up; models = dbt's own model timings)")
    print(
        f"{'contender':<14}{'wall s':>9}{'vs fastest':>12}{'models s':>10}{'vs fastest':>12}"
        f"{'events/s':>14}{'peak MB':>9}  same answer"
    )
    for name, r in results.items():
        r["ratio"] = r["seconds"] / fastest_peer
        r["events_per_s"] = n_events / r.get("model_seconds", r["seconds"])
        if "model_seconds" in r:
            r["model_ratio"] = r["model_seconds"] / fastest_peer
            model = f"{r['model_seconds']:>10.2f}{r['model_ratio']:>11.2f}x"
        else:
            model = f"{'-':>10}{'-':>12}"
        same = {True: "yes", False: "NO"}.get(agree.get(name), "-")
        print(
            f"{name:<14}{r['seconds']:>9.2f}{r['ratio']:>11.2f}x{model}{r['events_per_s']:>14,.0f}"
            f"{r['peak_mb']:>9,.0f}  {same}"
        )
    inc, full = results["dbt +1 day"], results["vigil dbt"]
    print(
        f"daily incremental (1 new day) {inc['model_seconds']:.2f} s of model time vs full recompute "
        f"{full['model_seconds']:.2f} s ({full['model_seconds'] / max(inc['model_seconds'], 1e-9):.1f}x less)"
    )
    if not args.keep:
        shutil.rmtree(bench_home, ignore_errors=True)
    return {
        "events": n_events,
        "users": users,
        "results": results,
        "agree": agree,
        "generate_seconds": gen_seconds,
    }


if __name__ == "__main__":
    main()
