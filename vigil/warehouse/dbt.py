"""The dbt warehouse: one ``dbt build`` per stage, then the feature marts exported to Parquet.

``build(stage)`` runs dbt once (a dbt invocation costs ~4-5 s before any model runs, so never
once per model), in a subprocess so dbt's global state and logging stay out of the caller
(Airflow tasks, tests). Paths come from :mod:`vigil.config` and reach ``dbt/profiles.yml`` and the
lake sources as ``VIGIL_DBT_*`` environment variables; dbt's target/ and logs/ go under the data
root, never into the source tree.

Stages: ``staging`` (views over the lake), ``marts`` (intermediate + marts, then the Parquet export
of the feature marts) and ``all``. Targets: ``duckdb`` (the warehouse file) and ``spark``
(dbt-spark session, for parity checks; nothing is exported from it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vigil import config
from vigil.errors import UserError
from vigil.warehouse.lock import access, damaged_warehouse, damaged_warehouse_sentence, reading

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = config.REPO_ROOT / "dbt"
STAGES: dict[str, list[str]] = {
    "staging": ["path:models/staging"],
    "marts": ["path:models/intermediate", "path:models/marts"],
    "all": ["path:models"],
    # the rules' labels alone (issue 21): their staging views, active_labels and user_labels
    # (vigil_accounts' labels task; vigil_daily builds them with the other marts)
    "labels": ["+user_labels"],
    # an accounts world (issue 21): the labels and the account features (models/*/accounts,
    # enabled by the `accounts` var) in one invocation (vigil_accounts' features task)
    "accounts": ["+user_labels", "+account_features"],
}
# stages that need dbt vars set: the optional models they build are off by default
STAGE_VARS: dict[str, dict[str, Any]] = {"accounts": {"accounts": True}}
# what each stage exports to features/ after a successful DuckDB build (marts/all: EXPORTED_TABLES)
STAGE_EXPORTS: dict[str, tuple[str, ...]] = {
    "labels": ("user_labels",),
    "accounts": ("user_labels", "account_features"),
}
TARGETS = ("duckdb", "spark")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Feature marts (and the training tables) exported for Feast and training: features/<table>.parquet
EXPORTED_TABLES = (
    "user_activity",
    "creator_context",
    "post_behavior",
    "posts",
    "post_labels",
    "user_labels",  # active labels per user (rules' effects, reviewers' verdicts; issue 21)
    # the ranking features (issue 23; vigil/ranking/feature_tables.py): empty without post topics
    "post_topics",
    "user_topic_interest",
    "user_author_affinity",
    "topic_velocity",
)
# exported in this order, each table by its grain's key (DuckDB's own order, which
# preserve_insertion_order = false leaves unspecified, differed between two builds of one world:
# docs/warehouse.md "Reproducible builds"), so the same build writes the same bytes
EXPORT_ORDER: dict[str, str] = {
    "user_activity": "user_id, event_timestamp",
    "creator_context": "user_id, event_timestamp",
    "post_behavior": "post_id, event_timestamp",
    "posts": "post_id",
    "post_labels": "post_id",
    "user_labels": "user_id, event_timestamp",
    "post_topics": "post_id, topic_id",
    "user_topic_interest": "user_id, topic_id, event_timestamp",
    "user_author_affinity": "user_id, author_id, event_timestamp",
    "topic_velocity": "topic_id, event_timestamp",
    "account_features": "user_id, event_timestamp",
}


# ---------------------------------------------------------------------------------------------
# dbt invocation


def dbt_dirs(target: str = "duckdb") -> dict[str, Path]:
    """Where a target's dbt artifacts, logs and (Spark) metastore live under the data root."""
    base = config.paths().home / "dbt" / target
    return {"target": base / "target", "logs": base / "logs", "spark": base / "spark"}


def dbt_env(target: str = "duckdb") -> dict[str, str]:
    """Environment for a dbt subprocess: data-root paths and DuckDB settings from vigil.config."""
    paths = config.paths()
    dirs = dbt_dirs(target)
    env = config.env_snapshot()
    env.update(
        {
            "VIGIL_DBT_WAREHOUSE": str(paths.warehouse),
            "VIGIL_DBT_LAKE": str(paths.lake),
            "VIGIL_DBT_TEMP": str(paths.duckdb_temp),
            "VIGIL_DBT_MEMORY_LIMIT": config.duckdb_memory_limit(),
            "VIGIL_DBT_THREADS": str(config.duckdb_threads()),
            "VIGIL_DBT_SPARK_DIR": str(dirs["spark"]),
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
            "DBT_TARGET_PATH": str(dirs["target"]),
            "DBT_LOG_PATH": str(dirs["logs"]),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_PARTIAL_PARSE": "True",
            "DBT_USE_COLORS": "False",
            # a stage runs only the tests whose parents are all built by it or an earlier stage
            # (dbt's default "eager" would run marts' relationship tests during `staging` and
            # fail on a fresh warehouse)
            "DBT_INDIRECT_SELECTION": "buildable",
        }
    )
    if target == "spark":
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def _dbt_executable() -> list[str]:
    exe = Path(sys.executable).with_name("dbt")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dbt")
    if found:
        return [found]
    raise UserError("dbt is not installed in this environment: run `make setup`.")


def run_dbt(
    command: str,
    select: list[str],
    *,
    target: str = "duckdb",
    dbt_vars: dict[str, Any] | None = None,
    full_refresh: bool = False,
    label: str | None = None,
) -> dict:
    """Run ONE dbt command (``build``/``run``/``test``) over ``select``; return its summary.

    Raises :class:`UserError` with dbt's error summary when any node errors or fails.
    """
    if target not in TARGETS:
        raise UserError(f"unknown dbt target {target!r}: use one of {', '.join(TARGETS)}.")
    paths = config.paths()
    dirs = dbt_dirs(target)
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    paths.duckdb_temp.mkdir(parents=True, exist_ok=True)
    run_results = dirs["target"] / "run_results.json"
    run_results.unlink(missing_ok=True)

    args = [
        *_dbt_executable(),
        command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", target,
        "--target-path", str(dirs["target"]),
        "--log-path", str(dirs["logs"]),
        "--select", *select,
    ]  # fmt: skip
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    if full_refresh:
        args.append("--full-refresh")
    label = label or f"dbt {command} {' '.join(select)}"
    log.info("%s (target %s%s)", label, target, ", full refresh" if full_refresh else "")
    started = time.perf_counter()
    # Spark keeps its Derby metastore and spark-warehouse/ in the working directory.
    cwd = dirs["spark"] if target == "spark" else dirs["target"].parent
    with access(exclusive=True, purpose=label) if target == "duckdb" else contextlib.nullcontext():
        returncode, output = _run_child(args, cwd=cwd, env=dbt_env(target), label=label)
    seconds = time.perf_counter() - started
    (dirs["logs"] / "last_stdout.log").write_text(output)
    summary = summarize_run_results(run_results)
    summary.update({"seconds": round(seconds, 2), "target": target, "returncode": returncode})
    if returncode != 0 or summary["errors"] or summary["failures"]:
        raise UserError(_failure_sentence(label, summary, output, dirs["logs"]))
    log.info(
        "%s: %d models, %d tests, %d unit tests passed (%d warnings), %s rows, %.1f s",
        label,
        summary["models"],
        summary["tests"],
        summary["unit_tests"],
        summary["warnings"],
        f"{summary['rows']:,}",
        seconds,
    )
    return summary


# dbt's console line for a finished node: "12:00:01  3 of 19 OK created sql table model
# main.users ..... [OK in 0.12s]" (tests: "PASS not_null_x", "FAIL 2 unique_y", "ERROR creating ...")
NODE_DONE = re.compile(
    r"^\d\d:\d\d:\d\d\s+(?P<index>\d+) of (?P<total>\d+) "
    r"(?P<status>OK|PASS|WARN|FAIL|ERROR|SKIP)\b(?P<what>.*?)\s*\.*\s*"
    r"\[(?P<result>[^\]]*?)(?: in (?P<seconds>[\d.]+)s)?\]\s*$"
)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: ask the kernel to SIGKILL it when its parent dies, so a dbt run
    never outlives the process that holds the warehouse lock for it (a ``kill -9`` of ``vigil dbt``
    would otherwise leave dbt writing with the lock released)."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _run_child(args: list[str], *, cwd: Path, env: dict[str, str], label: str) -> tuple[int, str]:
    """Run dbt, logging each model as it finishes (and any test that fails) while it runs;
    return (exit code, everything it printed). The child dies with this process (Linux)."""
    parent = os.getpid()
    preexec = (lambda: _die_with_parent(parent)) if sys.platform == "linux" else None
    lines: list[str] = []
    with subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        preexec_fn=preexec,  # noqa: PLW1509 - only prctl + getppid, no locks taken
    ) as proc:
        for line in proc.stdout:
            lines.append(line)
            _log_progress(label, ANSI.sub("", line.rstrip()))
        returncode = proc.wait()
    return returncode, "".join(lines)


def _log_progress(label: str, line: str) -> None:
    match = NODE_DONE.match(line)
    if not match:
        return
    status, what = match["status"], " ".join(match["what"].split())
    name = what.rsplit(" ", 1)[-1].rsplit(".", 1)[-1] if what else "?"
    seconds = f"{float(match['seconds']):.1f} s" if match["seconds"] else match["result"]
    where = f"{match['index']}/{match['total']}"
    if " model " in f" {what} ":
        log.info("%s: %s model %s %s (%s)", label, where, name, status, seconds)
    elif status in ("FAIL", "ERROR", "WARN"):
        log.info("%s: %s %s %s (%s)", label, where, status, what, seconds)
    else:
        log.debug("%s: %s %s %s (%s)", label, where, status, what, seconds)


def summarize_run_results(path: Path) -> dict:
    """Counts per node kind and status from dbt's run_results.json (empty if dbt never ran)."""
    summary: dict[str, Any] = {
        "models": 0,
        "tests": 0,
        "unit_tests": 0,
        "warnings": 0,
        "errors": [],
        "failures": [],
        "rows": 0,
        "nodes": {},
    }
    if not path.exists():
        return summary
    data = json.loads(path.read_text())
    for result in data.get("results", []):
        uid = result["unique_id"]
        kind, name = uid.split(".")[0], uid.split(".")[-1]
        status = result.get("status")
        rows = (result.get("adapter_response") or {}).get("rows_affected")
        if status in ("error", "fail", "runtime error"):
            target = summary["errors"] if status != "fail" else summary["failures"]
            message = " ".join((result.get("message") or status).split())
            target.append(f"{name}: {message[:400]}")
            continue
        if status == "warn":
            summary["warnings"] += 1
        if status == "skipped":
            continue
        if kind == "model":
            summary["models"] += 1
            summary["rows"] += int(rows or 0) if isinstance(rows, int) else 0
            summary["nodes"][name] = {
                "status": status,
                "rows": rows,
                "seconds": round(result.get("execution_time", 0.0), 2),
            }
        elif kind == "test":
            summary["tests"] += 1
        elif kind == "unit_test":
            summary["unit_tests"] += 1
    return summary


def _failure_sentence(label: str, summary: dict, output: str, log_dir: Path) -> str:
    if damaged_warehouse(output):
        return f"{label} failed: {damaged_warehouse_sentence(output)}"
    problems = summary["errors"] + summary["failures"]
    if not problems:  # dbt stopped before running nodes (parse/compile/connection error)
        lines = [
            re.sub(r"^\d\d:\d\d:\d\d\s+", "", ANSI.sub("", ln)).strip()
            for ln in output.splitlines()
        ]
        lines = [ln for ln in lines if ln and not ln.startswith(("{", "WARN", "26/"))]
        marker = next((i for i, ln in enumerate(lines) if "Encountered an error" in ln), None)
        if marker is not None:
            problems = [" ".join(lines[marker + 1 : marker + 5])]
        else:
            interesting = [ln for ln in lines if "error" in ln.lower()]
            problems = (interesting or lines)[-3:] or ["dbt exited without output"]
    text = "; ".join(p[:300] for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    hint = ""
    if "Could not set lock" in output:
        hint = " Another process holds the warehouse open for writing: wait for it and retry."
    return f"{label} failed: {text}{more}.{hint} Full log: {log_dir}/last_stdout.log"


# ---------------------------------------------------------------------------------------------
# stages


def build(
    stage: str,
    as_of: str | None = None,
    full_refresh: bool = False,
    *,
    target: str = "duckdb",
    extra_vars: dict[str, Any] | None = None,
) -> dict:
    """One ``dbt build`` for ``stage`` (staging | marts | all | labels | accounts); marts/all
    also export features, labels exports user_labels, accounts user_labels and account_features.

    ``as_of`` (YYYY-MM-DD) is the last day of the 30-day UAM window (default: latest lake day).
    Returns the run summary (models/tests passed, rows, seconds, exported files).
    """
    if stage not in STAGES:
        raise UserError(f"unknown dbt stage {stage!r}: use one of {', '.join(STAGES)}.")
    if stage == "accounts" and target != "duckdb":
        raise UserError(
            "the account features' dbt models are DuckDB SQL: build the accounts stage with "
            "--target duckdb (or the labels stage alone on Spark)."
        )
    _check_lake()
    dbt_vars: dict[str, Any] = STAGE_VARS.get(stage, {}) | dict(extra_vars or {})
    if as_of:
        dbt_vars["as_of"] = _valid_day(as_of)
    started = time.perf_counter()
    # One hold for the build, the export and the build state: the state always describes the
    # tables it was written with, and no other writer slips in between.
    hold = access(exclusive=True, purpose=f"dbt build {stage}")
    with hold if target == "duckdb" else contextlib.nullcontext():
        fingerprint = lake_fingerprint()
        check_lake_pages()
        summary = run_dbt(
            "build",
            STAGES[stage],
            target=target,
            dbt_vars=dbt_vars,
            full_refresh=full_refresh,
            label=f"dbt build {stage}",
        )
        summary["stage"] = stage
        if target == "duckdb":
            _add_table_rows(summary)
        if target == "duckdb" and stage in ("marts", "all"):
            summary["exported"] = export_features()
            _write_state({"lake": fingerprint, "built_at": time.time()})
        elif target == "duckdb" and stage in STAGE_EXPORTS:
            summary["exported"] = export_features(STAGE_EXPORTS[stage])
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _add_table_rows(summary: dict) -> None:
    """dbt-duckdb reports no rows_affected: read the built tables' row counts from DuckDB."""
    with reading("count built rows") as con:
        sizes = dict(
            con.execute("select table_name, estimated_size from duckdb_tables()").fetchall()
        )
    for name, node in summary["nodes"].items():
        if node["rows"] is None and name in sizes:
            node["rows"] = int(sizes[name])
    summary["rows"] = sum(int(n["rows"] or 0) for n in summary["nodes"].values())


def export_features(tables: tuple[str, ...] = EXPORTED_TABLES) -> dict[str, int]:
    """COPY the feature marts to ``features/<table>.parquet`` (timestamps as timestamp[us, UTC]).

    Done here after a successful build rather than with dbt-duckdb's ``external`` materialization
    so a table whose tests fail is never published; each file is written beside its final name
    and renamed, so Feast never reads half a file.
    """

    out_dir = config.paths().features
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with reading("export features") as con:
        con.execute("set TimeZone = 'UTC'")
        for table in tables:
            final = out_dir / f"{table}.parquet"
            partial = out_dir / f".{table}.parquet.partial"
            order = f" order by {EXPORT_ORDER[table]}"  # every exported table has its key
            con.execute(
                f"copy (select * from main.{table}{order}) to '{partial}' "
                "(format parquet, compression zstd, row_group_size 122880)"
            )
            os.replace(partial, final)
            counts[table] = con.execute(f"select count(*) from main.{table}").fetchone()[0]
    log.info(
        "exported %d feature tables to %s: %s",
        len(counts),
        out_dir,
        ", ".join(f"{t}={n:,}" for t, n in counts.items()),
    )
    return counts


# ---------------------------------------------------------------------------------------------
# build state (lets `vigil uam` skip dbt when the lake has not changed since the last build)


def _state_path() -> Path:
    return config.paths().warehouse.parent / "build_state.json"


def read_state() -> dict:
    path = _state_path()
    if not path.exists() or not config.paths().warehouse.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}


def _write_state(state: dict) -> None:
    path = _state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)


def _lake_files() -> list[Path]:
    """The lake files dbt reads: the day partitions, the users and labels snapshots, the
    scoring service's logs (decisions, appeal labels), the rules' effects and the account
    verdicts."""
    from vigil.lake import post_topics, rule_logs
    from vigil.lake.service_logs import lake_files

    paths = config.paths()
    files = sorted(paths.lake_events.glob("dt=*/events.parquet"))
    files += [
        p
        for p in (
            paths.lake_users / "users.parquet",
            paths.lake_labels / "labels.parquet",
            *lake_files(paths),
            *rule_logs.lake_files(paths),
            post_topics.path(paths),
        )
        if p.exists()
    ]
    return files


def lake_fingerprint() -> dict:
    """Files, bytes and newest mtime of the lake's events/users/labels: changes when ingest writes."""
    files = _lake_files()
    stats = [p.stat() for p in files]
    return {
        "files": len(files),
        "bytes": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


def check_lake_pages() -> int:
    """Read every page of the lake files written since the last build (all of them when there
    is none) and verify its checksum: DuckDB and Spark do not, so a changed byte would otherwise
    reach the warehouse as other values. A damaged file is one error naming it and the fix.
    Returns how many files were checked."""
    from vigil.lake.store import check_readable

    since = int((read_state().get("lake") or {}).get("mtime_ns") or 0)
    files = [p for p in _lake_files() if p.stat().st_mtime_ns > since]
    started = time.perf_counter()
    check_readable(files)
    if files:
        log.info(
            "dbt: checked every page of %d lake file(s) written since the last build in %.1f s",
            len(files),
            time.perf_counter() - started,
        )
    return len(files)


def _check_lake() -> None:
    from vigil.lake import post_topics, rule_logs
    from vigil.lake.service_logs import ensure_lake_files

    paths = config.paths()
    ensure_lake_files(paths)
    rule_logs.ensure_lake_files(paths)
    post_topics.ensure_lake_file(paths)
    missing = [
        str(p)
        for p in (paths.lake_users / "users.parquet", paths.lake_labels / "labels.parquet")
        if not p.exists()
    ]
    if not any(paths.lake_events.glob("dt=*/events.parquet")):
        missing.insert(0, f"{paths.lake_events}/dt=*/events.parquet")
    if missing:
        raise UserError(
            f"the lake is incomplete (missing {', '.join(missing)}): run `vigil ingest` first."
        )


def _valid_day(value: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise UserError(f"--as-of {value!r} is not a date: use YYYY-MM-DD.") from None


# ---------------------------------------------------------------------------------------------
# CLI: vigil dbt STAGE [--as-of DAY] [--full-refresh] [--target duckdb|spark]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stage",
        choices=list(STAGES),
        help="staging, marts (+export), all, labels (the rules' labels + user_labels export), "
        "or accounts (labels + the account features, on an accounts world)",
    )
    parser.add_argument("--as-of", help="last day (YYYY-MM-DD) of the 30-day UAM window")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    parser.add_argument("--target", choices=TARGETS, default="duckdb", help="dbt target")


def run(args: argparse.Namespace) -> int:
    summary = build(
        args.stage, as_of=args.as_of, full_refresh=args.full_refresh, target=args.target
    )
    print(
        f"dbt build {args.stage}: {summary['models']} models, {summary['tests']} tests, "
        f"{summary['unit_tests']} unit tests passed ({summary['warnings']} warnings) "
        f"in {summary['seconds']:.1f} s"
    )
    for name, node in sorted(summary["nodes"].items()):
        rows = node["rows"] if node["rows"] is not None else "-"
        print(f"  {name:<36} {node['status']:<8} rows={rows:<10} {node['seconds']:.2f} s")
    for table, rows in summary.get("exported", {}).items():
        print(f"  exported features/{table}.parquet ({rows:,} rows)")
    return 0
