"""The contenders of ``python -m bench uam`` (:mod:`bench.bench_uam`): how each is run and measured.

- measuring: a command in its own process, its wall time, the peak RSS of its process tree and the
  peak bytes DuckDB spilled to its temp directory (:func:`_measure`);
- the lake: N events of (user_id, event_ts) as lake-layout Parquet, written by DuckDB (:func:`generate`);
- the peers: the hand-written DuckDB, one-pass DuckDB and polars queries (:func:`peer_commands`);
- Vigil's dbt UAM models (:func:`dbt_command`) and ``vigil uam-update``, fresh and resident
  (:func:`run_update`);
- the checks: histograms, a user-by-user recount by polars, table-by-table warehouse comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass  # a spill file deleted while we walk
    return total


def _watch(
    proc: subprocess.Popen, temp_dir: Path | None, stop: threading.Event, out: list[int]
) -> None:
    """Sample the process tree's RSS and the temp directory's size until ``stop``; keep the peaks."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        return
    peak, peak_temp = 0, 0
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        if temp_dir is not None:
            peak_temp = max(peak_temp, _dir_bytes(temp_dir))
        time.sleep(0.05)
    out.extend([peak, peak_temp])


def _measure(
    cmd: list[str], env: dict | None = None, temp_dir: Path | None = None
) -> tuple[float, int, int, str]:
    """Run a command; return (wall s, peak RSS bytes of its process tree, peak bytes in
    ``temp_dir`` (DuckDB's spill files), stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(proc, temp_dir, stop, peak), daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return seconds, (peak[0] if peak else 0), (peak[1] if peak else 0), stdout


def generate(
    events_dir: Path,
    events: int,
    users: int,
    days: list[date],
    seed: int = 7,
    row_group_size: int = 1_000_000,
) -> None:
    """Per day: events/len(days) rows, users drawn with a skew (a few heavy users), random times."""
    import duckdb

    per_day = events // len(days)
    con = duckdb.connect()
    con.execute(
        "set TimeZone = 'UTC'; set preserve_insertion_order = false; set enable_progress_bar = false"
    )
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
            ) to '{out}' (format parquet, compression zstd, row_group_size {row_group_size})
            """
        )


def _python_snippet(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def _hand_duckdb_sql(events_dir: Path, days: list[date]) -> str:
    """The fastest hand-written DuckDB UAM found (same idea as the dbt model): per day partition,
    distinct minutes per user (a hash table the size of one day), UNION ALL, sum per user."""
    per_day = " union all ".join(
        f"select user_id, count(distinct epoch_us(event_ts) // 60000000) as minutes "
        f"from read_parquet('{events_dir}/dt={d.isoformat()}/events.parquet') group by user_id"
        for d in days
    )
    return f"""
                with daily as (
                    {per_day}
                ),
                uam as (select user_id, sum(minutes) as uam from daily group by user_id)
                select uam as lower, count(*) as users from uam group by 1 order by 1
    """


def _warehouse_histogram(bench_home: Path) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(bench_home / "warehouse" / "vigil.duckdb"), read_only=True)
    rows = con.execute(
        "select lower, users from uam_histogram where users > 0 order by lower"
    ).fetchall()
    con.close()
    return [tuple(r) for r in rows]


def _sample_check(events_dir: Path, warehouse: Path, first: date, as_of: date, modulo: int) -> dict:
    """Independent check of Vigil's user_active_minutes: for every user with user_id % modulo == 0,
    polars counts distinct minutes over the window straight from the Parquet files (no daily
    decomposition, another engine) and the rows must be equal, user for user."""
    import duckdb
    import polars as pl

    expected = dict(
        pl.scan_parquet(f"{events_dir}/dt=*/events.parquet", hive_partitioning=True)
        .filter(pl.col("dt").is_between(first, as_of) & (pl.col("user_id") % modulo == 0))
        .group_by("user_id")
        .agg((pl.col("event_ts").dt.epoch("us") // 60_000_000).n_unique().alias("uam"))
        .collect()
        .rows()
    )
    con = duckdb.connect(str(warehouse), read_only=True)
    got = dict(
        con.execute(
            f"select user_id, uam from user_active_minutes where user_id % {modulo} = 0"
        ).fetchall()
    )
    con.close()
    mismatches = sum(1 for u in expected.keys() | got.keys() if expected.get(u) != got.get(u))
    return {"users": len(expected), "mismatches": mismatches}


# the UAM tables compared between two warehouses (written_at/built_at are write times)
_UAM_TABLES = {
    "int_user_active_minutes_daily": "*",
    "int_user_active_minutes_daily__days": "activity_date, partition_rows",
    "user_active_minutes": "*",
    "user_active_minutes__state": "as_of",
    "uam_histogram": "*",
}


def _table_differences(a: Path, b: Path) -> list[str]:
    """Names of the UAM tables whose rows differ between warehouses ``a`` and ``b``."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only); attach '{b}' as b (read_only)")
    differ = []
    for table, cols in _UAM_TABLES.items():
        n = con.execute(
            f"select (select count(*) from (select {cols} from a.{table} except all "
            f"select {cols} from b.{table})) + (select count(*) from (select {cols} from b.{table} "
            f"except all select {cols} from a.{table}))"
        ).fetchone()[0]
        if n:
            differ.append(f"{table} ({n} rows)")
    con.close()
    return differ


def _read_json_line(proc: subprocess.Popen, what: str) -> tuple[dict, float]:
    """The watcher's next JSON line and when it arrived (perf_counter)."""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"uam-update --watch exited while {what}: {proc.stderr.read()[-2000:]}"
            )
        if line.startswith("{"):
            return json.loads(line), time.perf_counter()


def peer_commands(
    events_dir: Path, days: list[date], as_of: date, temp_dir: Path, memory_limit: str, threads: int
) -> dict[str, tuple[str, list[str]]]:
    """The peers (name -> (``--only`` key, command)), each a Python process printing one JSON line:
    the scan floor's count, or the S=1 histogram as [[lower, users], ...]."""
    glob = f"{events_dir}/dt=*/events.parquet"
    duck_setup = (
        f"import duckdb, json; con = duckdb.connect(config={{'memory_limit': '{memory_limit}', "
        f"'threads': {threads}, 'temp_directory': '{temp_dir}/peers'}}); "
        "con.execute(\"set TimeZone = 'UTC'; set preserve_insertion_order = false; "
        'set enable_progress_bar = false")'
    )
    first = (as_of - timedelta(days=29)).isoformat()
    window = f"dt between date '{first}' and date '{as_of.isoformat()}'"
    return {
        "scan floor": ("scan", _python_snippet(f"""
            {duck_setup}
            print(json.dumps(con.execute("select count(*), sum(user_id), max(event_ts)::varchar "
                "from read_parquet('{glob}', hive_partitioning = true) where {window}").fetchone()))
        """)),
        "duckdb hand": ("duckdb", _python_snippet(f"""
            {duck_setup}
            rows = con.execute({_hand_duckdb_sql(events_dir, days)!r}).fetchall()
            print(json.dumps(rows))
        """)),
        "duckdb 1-pass": ("duckdb1", _python_snippet(f"""
            {duck_setup}
            rows = con.execute(\'\'\'
                with uam as (
                    select user_id, count(distinct epoch_us(event_ts) // 60000000) as uam
                    from read_parquet('{glob}', hive_partitioning = true)
                    where {window}
                    group by user_id
                )
                select uam as lower, count(*) as users from uam group by 1 order by 1
            \'\'\').fetchall()
            print(json.dumps(rows))
        """)),
        "polars lazy": ("polars", _python_snippet(f"""
            import json, polars as pl
            from datetime import date
            lf = (pl.scan_parquet('{glob}', hive_partitioning=True)
                  .filter(pl.col('dt').is_between(date.fromisoformat('{first}'), date.fromisoformat('{as_of}')))
                  .group_by('user_id')
                  .agg((pl.col('event_ts').dt.epoch('us') // 60_000_000).n_unique().alias('uam'))
                  .group_by('uam').agg(pl.len().alias('users')).sort('uam'))
            print(json.dumps([list(r) for r in lf.collect().rows()]))
        """)),
    }  # fmt: skip


# the UAM models; the staging views over the lake belong to the staging stage and are built
# once before the timed runs (a view costs the same ~0.25 s of dbt bookkeeping in every run)
STAGING = ["stg_lake__event_activity", "stg_lake__event_partitions"]
UAM_MODELS = ["int_user_active_minutes_daily", "user_active_minutes", "uam_histogram"]


def dbt_command(as_of: date) -> list[str]:
    """A process that runs Vigil's UAM models for ``as_of`` and prints {model: seconds};
    ``--full-refresh`` and ``--engine=NAME`` (uam_daily_engine) are read from its arguments."""
    return [
        sys.executable,
        "-c",
        textwrap.dedent(f"""
        import json, sys
        from vigil.warehouse import dbt as warehouse
        engine = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--engine=")), "auto")
        s = warehouse.run_dbt("run", {UAM_MODELS!r}, full_refresh="--full-refresh" in sys.argv,
                              dbt_vars={{"as_of": "{as_of}", "uam_daily_engine": engine}})
        print(json.dumps({{n: v["seconds"] for n, v in s["nodes"].items()}}))
    """),
    ]


def run_update(
    bench_home: Path,
    env: dict,
    events_dir: Path,
    new_day: date,
    pre: Path,
    dbt_inc: Path,
    make_day: Callable[[Path, date], None],
    sample_modulo: int,
) -> dict:
    """The ``update`` contenders: the one-new-day update by ``vigil uam-update`` from the warehouse
    as the full refresh left it (``pre``): a fresh process, then the resident watcher, which then
    also applies a second new day (``make_day``), as a resident process does every day after its
    first. Both must leave dbt's +1 day tables (``dbt_inc``); the second day is checked against
    polars' recount of a sample of users."""
    warehouse_file = bench_home / "warehouse" / "vigil.duckdb"
    cli = [sys.executable, "-m", "vigil.cli", "uam-update", "--json"]
    out: dict = {"fresh": _update_fresh(cli, env, pre, warehouse_file, dbt_inc)}

    # resident: the watcher starts on the pre-day warehouse, then the day lands (a rename, as
    # ingest writes), then one more
    shutil.copyfile(pre, warehouse_file)
    second_day = new_day + timedelta(days=1)
    held = bench_home / "held" / "events"
    make_day(held, second_day)
    os.replace(events_dir / f"dt={new_day.isoformat()}", held / f"dt={new_day.isoformat()}")
    try:
        days = (new_day, second_day)
        runs = _update_resident(cli, env, events_dir, held, days, warehouse_file, dbt_inc)
    finally:
        shutil.rmtree(held.parent, ignore_errors=True)
    sample = _sample_check(
        events_dir, warehouse_file, second_day - timedelta(days=29), second_day, sample_modulo
    )
    shutil.rmtree(events_dir / f"dt={second_day.isoformat()}")  # the lake as the bench left it
    if sample["mismatches"]:
        raise SystemExit(f"bench uam: after {second_day}, uam-update differs from polars: {sample}")
    out["resident"], out["resident_next_day"] = runs
    out["resident_next_day"]["sample_check"] = sample
    _print_resident(runs, sample, second_day)
    return out


def _update_fresh(
    cli: list[str], env: dict, pre: Path, warehouse_file: Path, dbt_inc: Path
) -> dict:
    """``vigil uam-update`` as a fresh process on the pre-day warehouse (imports included)."""
    shutil.copyfile(pre, warehouse_file)
    seconds, peak, _temp, stdout = _measure(cli, env=env)
    fresh = json.loads(stdout.strip().splitlines()[-1])
    if fresh["kind"] != "delta" or _table_differences(warehouse_file, dbt_inc):
        raise SystemExit(f"bench uam: vigil uam-update (fresh) differs from dbt's +1 day: {fresh}")
    print(
        f"  {'uam-update':<13} {seconds:8.2f} s   update {fresh['seconds']:6.2f} s   peak "
        f"{peak / 1e6:8,.0f} MB   (a fresh process: "
        + ", ".join(f"{k} {v:.2f}" for k, v in fresh["timings"].items())
        + ")",
        flush=True,
    )
    return {
        "seconds": seconds,
        "update_seconds": fresh["seconds"],
        "timings": fresh["timings"],
        "peak_mb": peak / 1e6,
    }


def _update_resident(
    cli: list[str],
    env: dict,
    events_dir: Path,
    held: Path,
    days: tuple[date, date],
    warehouse_file: Path,
    dbt_inc: Path,
) -> list[dict]:
    """``vigil uam-update --watch`` started with nothing to do; each of ``days`` is moved from
    ``held`` into the lake and must be applied; the first must leave dbt's +1 day tables."""
    import psutil

    proc = subprocess.Popen(
        cli + ["--watch", "--poll", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    runs = []
    try:
        first, _ = _read_json_line(proc, "starting")
        if first["kind"] != "noop":
            raise SystemExit(f"bench uam: the watcher started with work to do: {first}")
        for day in days:
            landed = time.perf_counter()
            os.replace(held / f"dt={day.isoformat()}", events_dir / f"dt={day.isoformat()}")
            applied, arrived = _read_json_line(proc, f"applying {day}")
            rss = psutil.Process(proc.pid).memory_info().rss
            if applied["kind"] != "delta" or applied["days"] != [day.isoformat()]:
                raise SystemExit(f"bench uam: the watcher did not apply {day}: {applied}")
            if day == days[0] and _table_differences(warehouse_file, dbt_inc):
                raise SystemExit("bench uam: vigil uam-update --watch differs from dbt's +1 day")
            runs.append(
                {
                    "day": day.isoformat(),
                    "update_seconds": applied["seconds"],
                    "lag_seconds": arrived - landed,
                    "timings": applied["timings"],
                    "rss_mb": rss / 1e6,
                }
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    return runs


def _print_resident(runs: list[dict], sample: dict, second_day: date) -> None:
    for label, r in zip(("--watch", "--watch, next"), runs, strict=True):
        print(
            f"  {label:<13} {'':>8}     update {r['update_seconds']:6.2f} s   lag "
            f"{r['lag_seconds']:.2f} s from {r['day']}'s rename to its update reported   RSS "
            f"{r['rss_mb']:,.0f} MB   ("
            + ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items())
            + ")",
            flush=True,
        )
    print(
        f"  sample check after {second_day}: {sample['users']:,} users recounted by polars: "
        f"{sample['mismatches']} mismatches",
        flush=True,
    )
