"""Data-quality gates: a Great Expectations checkpoint between every stage.

``run_gate(stage, run_date)`` validates one stage's tables where they live (SQL pushed down to
DuckDB: the warehouse file opened read-only, Parquet through ``read_parquet``), writes a
self-contained HTML + JSON report under ``<data root>/reports/quality/`` and raises
:class:`GateFailed` (a :class:`~vigil.errors.UserError`) when a critical expectation fails, so the
DAG task fails and nothing downstream runs.

Stages and what they read (suites: ``expectations/<stage>/<table>.json``, one per guarded table):

- ``raw``: the lake partition of the run's day (``lake/events/dt=<day>/events.parquet``), the
  quarantine file and the run's ingest counts (quarantine rate vs ``VIGIL_MAX_QUARANTINE_RATE``).
- ``staging`` and ``marts``: dbt's tables and views in ``warehouse/vigil.duckdb``.
- ``features``: the feature marts exported to ``features/<table>.parquet`` (what Feast reads).
- ``training_set``: the examples training passes in (``frame=`` DataFrame or ``path=`` Parquet).

Suites are GX suite JSON with ``${name}`` placeholders filled per run (the run's day, freshness
bounds, the previous run's row count, thresholds); a placeholder that is a whole value keeps its
type. ``meta.vigil.generic`` names checks expanded from the table's actual columns (every feature
column varies; every other timestamp column is <= event_timestamp). Row counts of accepted runs are
kept in ``reports/quality/row_count_history.json`` for the volume check.

GX 1.24's SQL datasource returns empty results on duckdb-engine (GX #10738, #11579):
:func:`patch_gx_duckdb` applies the buffered-result workaround, for the ``duckdb`` dialect only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import math
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

STAGES = ("raw", "staging", "marts", "features", "training_set")
EXPECTATIONS_DIR = config.REPO_ROOT / "expectations"
SAMPLE_SIZE = 10  # unexpected values kept per failed expectation
HISTORY_KEEP = 90  # accepted row counts kept per table
FRESHNESS_AHEAD = dt.timedelta(days=2)  # latest event_timestamp may be at most day + 2 days
# A constant feature is an incident on a real table but normal on a toy sample (a 300-user,
# 3-day simulation has no blocks at all): below this many rows it is a warning.
CONSTANT_FEATURE_MIN_ROWS = 1000
_TOKEN = re.compile(r"\$\{(\w+)\}")
_NUMERIC_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN", "REAL",
)  # fmt: skip


class GateFailed(UserError):
    """A quality gate found critical failures; ``.result`` holds the :class:`GateResult`."""

    def __init__(self, result: GateResult):
        self.result = result
        shown = "; ".join(r.message for r in result.failures[:3])
        more = len(result.failures) - 3
        super().__init__(
            f"quality gate '{result.stage}' failed for {result.run_date}: "
            f"{len(result.failures)} check(s) failed: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + f". Fix the data (or the stage that produced it) and re-run; report: {result.report_path}"
        )


@dataclass
class CheckResult:
    """One expectation's outcome on one table."""

    table: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    check: str  # what it guards, e.g. non_negative, cumulative_never_decreases
    column: str | None
    success: bool
    severity: str  # critical fails the gate; warning is reported only
    unexpected_count: int | None
    unexpected_sample: list = field(default_factory=list)
    observed_value: Any = None
    message: str = ""


@dataclass
class GateResult:
    stage: str
    run_date: str
    success: bool
    results: list[CheckResult]
    tables: dict[str, dict] = field(default_factory=dict)  # table -> rows, location, note
    report_path: str | None = None  # the HTML report; the JSON sits next to it
    json_path: str | None = None
    seconds: float = 0.0
    summary: str = ""

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity != "critical"]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=_json_default))


# --------------------------------------------------------------------------------------------
# duckdb-engine workaround


def patch_gx_duckdb() -> bool:
    """Make GX's SQL execution engine buffer query results on DuckDB; idempotent.

    GX 1.24 ``SqlAlchemyExecutionEngine.execute_query`` returns the cursor result after the
    ``with engine.connect()`` block has closed the connection; duckdb-engine empties a result on
    close, so every metric fails with "list index out of range" (GX issues #10738, #11579). The
    replacement fetches the rows while the connection is open (``CursorResult.freeze()``) and
    returns an equivalent buffered result. Other dialects keep GX's own method. Returns True when
    this call installed the patch. tests/vigil/test_quality.py checks that the unpatched method
    still fails, so we notice when GX fixes it and this can go.
    """
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    current = SqlAlchemyExecutionEngine.execute_query
    if getattr(current, "_vigil_duckdb_buffered", False):
        return False
    original = current

    def execute_query(self, query):
        if self.dialect_name != "duckdb":
            return original(self, query)
        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            if not result.returns_rows:
                return result
            return result.freeze()()  # rows fetched before the connection closes

    execute_query._vigil_duckdb_buffered = True  # type: ignore[attr-defined]
    execute_query.__wrapped__ = original  # type: ignore[attr-defined]
    execute_query.__doc__ = original.__doc__
    SqlAlchemyExecutionEngine.execute_query = execute_query
    return True


def unpatched_execute_query():
    """GX's own ``execute_query`` (for the test that proves the bug still exists)."""
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    method = SqlAlchemyExecutionEngine.execute_query
    return getattr(method, "__wrapped__", method)


_CONTEXT = None


class _DuckDBConnections:
    """Every DBAPI connection SQLAlchemy opens while a gate runs, closed when it ends.

    GX builds several engines per datasource (its own and the execution engine's, sometimes again
    after rehydrating the datasource from its config) and keeps their pools alive; a pooled
    connection keeps the warehouse file open, so the next ``dbt build`` could not take its write
    lock, and a later read with a different configuration would fail. Closing what was opened,
    rather than hunting for the engines, is the reliable way to release the file.
    """

    def __init__(self):
        self.opened: list = []

    def _on_connect(self, dbapi_connection, connection_record):
        self.opened.append(dbapi_connection)

    def __enter__(self):
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.listen(Pool, "connect", self._on_connect)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.remove(Pool, "connect", self._on_connect)
        for connection in self.opened:
            try:
                connection.close()
            except Exception as error:  # noqa: BLE001 - any driver's close; already closed is fine
                log.debug("closing a GX connection: %s", error)
        self.opened.clear()
        return False


def gx_context():
    """The process's ephemeral GX context (importing GX costs ~7-12 s, so it is built once)."""
    global _CONTEXT
    if _CONTEXT is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        patch_gx_duckdb()
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _CONTEXT = context
    return _CONTEXT


# --------------------------------------------------------------------------------------------
# where a stage's tables live


@dataclass
class _Table:
    name: str
    suite: dict
    engine: str = "memory"  # "warehouse" (the DuckDB file, read-only) or "memory" (Parquet)
    query: str | None = None  # SQL selecting the batch; None when the table is missing
    location: str = ""
    missing: str | None = None  # why it cannot be validated (a critical failure)
    skip: str | None = None  # why it need not be validated (optional table absent)
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type
    rows: int | None = None  # counted up front only for suites with generic checks


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_config() -> dict:
    temp = config.paths().duckdb_temp
    temp.mkdir(parents=True, exist_ok=True)
    return {
        "memory_limit": config.duckdb_memory_limit(),
        "threads": config.duckdb_threads(),
        "temp_directory": str(temp),
    }


def _connect(engine: str):
    import duckdb

    if engine == "warehouse":
        return duckdb.connect(
            str(config.paths().warehouse), read_only=True, config=_duckdb_config()
        )
    return duckdb.connect(":memory:", config=_duckdb_config())


def _load_suites(stage: str) -> list[dict]:
    folder = EXPECTATIONS_DIR / stage
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UserError(f"no expectation suites in {folder}: the source tree is incomplete.")
    return [json.loads(f.read_text()) for f in files]


def _parquet_query(path: Path) -> str:
    target = f"{path}/**/*.parquet" if path.is_dir() else str(path)
    # a dt=YYYY-MM-DD folder must not turn into an extra column: the file's schema is the contract
    return f"select * from read_parquet({_sql_str(target)}, hive_partitioning = false)"


def _latest_lake_day() -> dt.date | None:
    days = []
    base = config.paths().lake_events
    if base.is_dir():
        for part in base.glob("dt=*"):
            try:
                days.append(dt.date.fromisoformat(part.name[3:]))
            except ValueError:
                continue
    return max(days) if days else None


def _resolve_day(run_date) -> dt.date:
    if run_date is None:
        return _latest_lake_day() or dt.datetime.now(dt.UTC).date()
    if isinstance(run_date, dt.datetime):
        return run_date.date()
    if isinstance(run_date, dt.date):
        return run_date
    try:
        return dt.date.fromisoformat(str(run_date))
    except ValueError:
        raise UserError(f"run date {run_date!r} is not a date: use YYYY-MM-DD.") from None


def _count_row(stream: str, counts: dict) -> dict:
    read, quarantined = int(counts["read"]), int(counts["quarantined"])
    return {
        "stream": stream,
        "rows_read": read,
        "loaded": int(counts.get("loaded", read - quarantined)),
        "quarantined": quarantined,
        "duplicates": int(counts.get("duplicates", 0)),
    }


def _ingest_counts(day: dt.date) -> tuple[str, list[dict]]:
    """The run day's ingest counts per stream (and in total).

    From the day's last line in ``lake/_state/ingest_log.jsonl`` (``vigil ingest --day``); without
    one (an ingest of every day), counted from the lake: rows whose source file is one of the
    day's raw event files, loaded vs quarantined. Per stream, so 30% garbage in one stream is not
    diluted by the others.
    """
    log_file = config.paths().ingest_state / "ingest_log.jsonl"
    entry = None
    if log_file.is_file():
        for line in log_file.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(item, dict):
                continue
            if any(
                str(item.get(k) or "")[:10] == day.isoformat()
                for k in ("day", "run_date", "date", "dt")
            ):
                entry = item
    if entry is not None:
        try:
            rows = [_count_row("all", entry)]
            for stream, counts in sorted((entry.get("streams") or {}).items()):
                rows.append(_count_row(stream, counts))
            return log_file.name, rows
        except (KeyError, TypeError, ValueError):
            log.warning(
                "ingest log line for %s has no read/quarantined counts; counting the lake", day
            )
    # Fallback: rows whose source file is the day's raw files, loaded vs quarantined.
    paths = config.paths()
    pattern = f"%dt={day.isoformat()}/%"
    parts = [
        paths.lake_events / f"dt={d.isoformat()}" / "events.parquet"
        for d in (day - dt.timedelta(days=1), day, day + dt.timedelta(days=1))
    ]
    parts = [p for p in parts if p.is_file()]
    quarantine = paths.quarantine / "quarantine.parquet"
    con = _connect("memory")
    try:
        loaded = 0
        if parts:
            files = "[" + ", ".join(_sql_str(str(p)) for p in parts) + "]"
            loaded = con.execute(
                f"select count(*) from read_parquet({files}, hive_partitioning = false) "
                "where source_file like ?",
                [pattern],
            ).fetchone()[0]
        quarantined = 0
        if quarantine.is_file():
            quarantined = con.execute(
                f"select count(*) from read_parquet({_sql_str(str(quarantine))}) "
                "where stream = 'events' and source_file like ?",
                [pattern],
            ).fetchone()[0]
    finally:
        con.close()
    counts = {"read": loaded + quarantined, "loaded": loaded, "quarantined": quarantined}
    return "counted from lake and quarantine", [_count_row("events", counts)]


def _warehouse_tables() -> dict[str, str]:
    """table name -> 'schema.table' in the warehouse (prefers schema main)."""
    con = _connect("warehouse")
    try:
        rows = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "order by table_schema = 'main' desc, table_schema"
        ).fetchall()
    finally:
        con.close()
    found: dict[str, str] = {}
    for schema, name in rows:
        found.setdefault(name, f"{_ident(schema)}.{_ident(name)}")
    return found


def _tables(stage: str, day: dt.date, frame=None, path=None) -> tuple[list[_Table], list[Path]]:
    """The stage's tables and the temporary files written for them (deleted after the run)."""
    paths = config.paths()
    tables: list[_Table] = []
    in_warehouse: dict[str, str] | None = None
    work_files: list[Path] = []
    for suite in _load_suites(stage):
        meta = suite.get("meta", {}).get("vigil", {})
        name = meta.get("table") or suite["name"].split(".")[-1]
        where = meta.get("location")
        t = _Table(name=name, suite=suite)
        if where == "lake_events_day":
            f = paths.lake_events / f"dt={day.isoformat()}" / "events.parquet"
            t.location = str(f)
            if f.is_file():
                t.query = _parquet_query(f)
            else:
                t.missing = f"no lake partition for {day} ({f} does not exist): the day is empty"
        elif where == "lake_quarantine":
            f = paths.quarantine / "quarantine.parquet"
            t.location = str(f)
            if f.is_file():
                t.query = _parquet_query(f)
            else:
                t.skip = "no quarantine file: nothing was quarantined"
        elif where == "ingest_run":
            source, rows = _ingest_counts(day)
            t.location = f"ingest of {day} ({source})"
            values = ", ".join(
                f"({_sql_str(r['stream'])}, {r['rows_read']}, {r['loaded']}, {r['quarantined']}, "
                f"{r['duplicates']}, "
                f"{(r['quarantined'] / r['rows_read'] if r['rows_read'] else 0.0)!r}::double)"
                for r in rows
            )
            t.query = (
                f"select * from (values {values}) as ingest_run"
                "(stream, rows_read, loaded, quarantined, duplicates, quarantine_rate)"
            )
        elif where == "warehouse":
            t.engine = "warehouse"
            t.location = f"{paths.warehouse}:{name}"
            if in_warehouse is None:
                in_warehouse = _warehouse_tables() if paths.warehouse.is_file() else {}
            if not paths.warehouse.is_file():
                t.missing = (
                    f"warehouse {paths.warehouse} does not exist: run `vigil dbt {stage}` first"
                )
            elif name not in in_warehouse:
                t.missing = f"table {name} is not in the warehouse {paths.warehouse}: run `vigil dbt {stage}`"
            else:
                t.query = f"select * from {in_warehouse[name]}"
                if meta.get("day_column"):
                    t.query += (
                        f" where {_ident(meta['day_column'])} = date {_sql_str(day.isoformat())}"
                    )
        elif where == "features":
            candidates = [paths.features / f"{name}.parquet", paths.features / name]
            found = next((c for c in candidates if c.exists()), None)
            t.location = str(found or candidates[0])
            if found is None:
                t.missing = (
                    f"feature file {candidates[0]} does not exist: run `vigil dbt marts` first"
                )
            else:
                t.query = _parquet_query(found)
        elif where == "training_set":
            if frame is not None:
                work = paths.reports / "quality" / "_work"
                work.mkdir(parents=True, exist_ok=True)
                f = work / f"training_set_{uuid.uuid4().hex[:8]}.parquet"
                frame.to_parquet(f, index=False)
                work_files.append(f)
                t.location = f"DataFrame ({len(frame)} rows)"
                t.query = _parquet_query(f)
            elif path is not None:
                t.location = str(path)
                if Path(path).exists():
                    t.query = _parquet_query(Path(path))
                else:
                    t.missing = f"training set {path} does not exist"
            else:
                raise UserError(
                    "the training_set gate needs the examples: pass frame= (a DataFrame) or "
                    "path= (a Parquet file), or `vigil validate training_set --path FILE`."
                )
        else:
            raise UserError(f"suite {suite['name']} has an unknown location {where!r}.")
        tables.append(t)
    return tables, work_files


def _describe(tables: list[_Table]) -> None:
    """Fill each table's columns (name -> type) from DuckDB without reading the data."""
    for engine in ("warehouse", "memory"):
        todo = [t for t in tables if t.engine == engine and t.query]
        if not todo:
            continue
        import duckdb

        con = _connect(engine)
        try:
            for t in todo:
                try:
                    rows = con.execute(f"describe {t.query}").fetchall()
                    t.columns = {r[0]: str(r[1]) for r in rows}
                    if t.suite.get("meta", {}).get("vigil", {}).get("generic"):
                        t.rows = con.execute(f"select count(*) from ({t.query})").fetchone()[0]
                except duckdb.Error as exc:  # unreadable file / broken view: a failure, not a crash
                    t.missing = f"cannot read {t.location}: {_first_line(exc)}"
                    t.query = None
        finally:
            con.close()


# --------------------------------------------------------------------------------------------
# suites: placeholders, generic checks, volume history


def _history_file() -> Path:
    return config.paths().reports / "quality" / "row_count_history.json"


def _read_history() -> dict:
    f = _history_file()
    if f.is_file():
        try:
            return json.loads(f.read_text())
        except json.JSONDecodeError:
            log.warning("row count history %s is not JSON: starting a new one", f)
    return {}


def _previous_rows(history: dict, key: str, day: dt.date) -> dict | None:
    earlier = [e for e in history.get(key, []) if e["run_date"] < day.isoformat()]
    return max(earlier, key=lambda e: e["run_date"]) if earlier else None


def _record_history(stage: str, day: dt.date, tables: dict[str, dict]) -> None:
    history = _read_history()
    for table, info in tables.items():
        if info.get("rows") is None:
            continue
        key = f"{stage}/{table}"
        entries = [e for e in history.get(key, []) if e["run_date"] != day.isoformat()]
        entries.append({"run_date": day.isoformat(), "rows": int(info["rows"])})
        history[key] = sorted(entries, key=lambda e: e["run_date"])[-HISTORY_KEEP:]
    f = _history_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(history, indent=1, sort_keys=True))
    tmp.replace(f)


def _sql_text(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _substitute(value, params: dict):
    if isinstance(value, str):
        whole = _TOKEN.fullmatch(value)
        if whole:
            return params[whole.group(1)]
        return _TOKEN.sub(lambda m: _sql_text(params[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def _generic(meta: dict, columns: dict[str, str], rows: int | None) -> list[dict]:
    out = []
    generic = meta.get("generic", [])
    not_features = set(meta.get("keys", [])) | set(meta.get("not_features", []))
    if "feature_not_null_or_constant" in generic:
        constant_severity = "critical" if (rows or 0) >= CONSTANT_FEATURE_MIN_ROWS else "warning"
        for col, typ in columns.items():
            if col in not_features or not typ.upper().startswith(_NUMERIC_TYPES):
                continue
            out.append(
                {
                    "type": "expect_column_unique_value_count_to_be_between",
                    "kwargs": {"column": col, "min_value": 1, "max_value": None},
                    "meta": {"check": "feature_not_entirely_null"},
                    "description": f"{col} has at least one value",
                }
            )
            out.append(
                {
                    "type": "expect_column_unique_value_count_to_be_between",
                    "kwargs": {"column": col, "min_value": 2, "max_value": None},
                    "meta": {"check": "feature_not_constant"},
                    "severity": constant_severity,
                    "description": f"{col} takes at least 2 distinct values",
                }
            )
    if "timestamps_not_after_event_timestamp" in generic and "event_timestamp" in columns:
        skip = {"event_timestamp", *meta.get("timestamp_exclude", [])}
        for col, typ in columns.items():
            if col in skip or not typ.upper().startswith("TIMESTAMP"):
                continue
            out.append(
                {
                    "type": "expect_column_pair_values_a_to_be_greater_than_b",
                    "kwargs": {
                        "column_A": "event_timestamp",
                        "column_B": col,
                        "or_equal": True,
                        "ignore_row_if": "either_value_is_missing",
                    },
                    "meta": {"check": "no_timestamp_after_event_timestamp"},
                    "description": f"{col} <= event_timestamp (no value from the row's future)",
                }
            )
    return out


def _expectations(stage: str, t: _Table, base: dict, history: dict, day: dt.date) -> list[dict]:
    meta = t.suite.get("meta", {}).get("vigil", {})
    params = {**base, **meta.get("params", {})}
    previous = _previous_rows(history, f"{stage}/{t.name}", day)
    tolerance = params["row_count_tolerance"]
    out = []
    for exp in [*t.suite.get("expectations", []), *_generic(meta, t.columns, t.rows)]:
        if exp.get("meta", {}).get("check") == "volume_vs_previous_run":
            if not previous or not previous["rows"]:
                continue  # first run: nothing to compare with
            p = previous["rows"]
            params = {
                **params,
                "row_count_min": math.floor(p / tolerance),
                "row_count_max": math.ceil(p * tolerance),
            }
            exp = {**exp, "meta": {**exp.get("meta", {}), "previous": previous}}
        try:
            out.append(_substitute(exp, params))
        except KeyError as exc:
            raise UserError(
                f"suite {t.suite['name']}: unknown placeholder ${{{exc.args[0]}}}."
            ) from None
    return out


# --------------------------------------------------------------------------------------------
# results


def _json_default(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _plain(value):
    return json.loads(json.dumps(value, default=_json_default))


def _first_line(exc) -> str:
    text = str(exc).strip()
    # GX wraps driver errors; the useful part is the DuckDB message (e.g. Binder Error: ...)
    for marker in (
        "Binder Error",
        "Catalog Error",
        "Conversion Error",
        "Invalid Input Error",
        "IO Error",
    ):
        if marker in text:
            text = text[text.index(marker) :]
            break
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _column_of(kwargs: dict, meta: dict) -> str | None:
    if kwargs.get("column"):
        return kwargs["column"]
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return meta.get("column")


def _exception_message(info: dict) -> str | None:
    if not info:
        return None
    items = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    for item in items:
        if item.get("raised_exception") or item.get("exception_message"):
            return _first_line(item.get("exception_message") or "exception")
    return None


def _expected_range(kwargs: dict) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    return f"[{'-inf' if lo is None else _sql_text(lo)}, {'+inf' if hi is None else _sql_text(hi)}]"


def _expected_text(kind: str, kwargs: dict) -> str:
    if kind == "expect_column_values_to_be_between":
        return f" outside {_expected_range(kwargs)}"
    if kind == "expect_column_values_to_be_in_set":
        values = list(kwargs.get("value_set") or [])
        return f" not in {values[:12]}{'...' if len(values) > 12 else ''}"
    if kind == "expect_column_value_lengths_to_be_between":
        return f" with length outside {_expected_range(kwargs)}"
    if kind == "expect_column_values_to_not_be_null" and kwargs.get("mostly", 1) < 1:
        return f" null (at most {1 - kwargs['mostly']:.0%} allowed)"
    return ""


def _check_result(table: str, res) -> CheckResult:
    cfg = res.expectation_config
    kwargs, meta = dict(cfg.kwargs), dict(cfg.meta or {})
    kind = cfg.type
    check = meta.get("check", kind)
    column = _column_of(kwargs, meta)
    severity = getattr(cfg.severity, "value", str(cfg.severity or "critical"))
    result = dict(res.result or {})
    where = f"{table}.{column}" if column else table
    head = f"{where}: {check} ({kind})"
    error = _exception_message(res.exception_info or {})
    count: int | None = result.get("unexpected_count")
    sample: list = []
    observed = result.get("observed_value")
    if error:
        ok, count = False, None
        message = f"{head} could not be evaluated: {error}"
    else:
        ok = bool(res.success)
        if "partial_unexpected_list" in result:
            seen = []
            for v in result["partial_unexpected_list"]:
                v = _plain(v)
                if v not in seen:
                    seen.append(v)
            sample = seen[:SAMPLE_SIZE]
        if kind == "expect_table_columns_to_match_set":
            mismatch = (result.get("details") or {}).get("mismatched") or {}
            missing, extra = mismatch.get("missing", []), mismatch.get("unexpected", [])
            count = len(missing) + len(extra) if not ok else 0
            sample = [f"missing: {c}" for c in missing] + [f"unexpected: {c}" for c in extra]
            message = f"{head}: " + (
                ", ".join(sample) + f" (columns found: {', '.join(map(str, observed or []))})"
                if not ok
                else "ok"
            )
        elif kind == "unexpected_rows_expectation":
            count = int(observed or 0)
            message = f"{head}: " + (
                f"{count} unexpected row(s) — {cfg.description or ''}" if not ok else "ok"
            )
        elif count is not None:
            total = result.get("element_count")
            message = f"{head}: " + (
                f"{count} unexpected value(s) of {total}{_expected_text(kind, kwargs)}, "
                f"e.g. {json.dumps(sample, default=str)}"
                if not ok
                else "ok"
            )
        else:
            if not ok:
                count = 1
                sample = [_plain(observed)]
            prev = meta.get("previous")
            extra = f" (previous run {prev['run_date']}: {prev['rows']} rows)" if prev else ""
            message = f"{head}: " + (
                f"observed {_plain(observed)}, expected {_expected_range(kwargs)}{extra}"
                if not ok
                else f"ok (observed {_plain(observed)})"
            )
    return CheckResult(
        table=table,
        expectation=kind,
        check=check,
        column=column,
        success=ok,
        severity=severity,
        unexpected_count=count if not ok else 0,
        unexpected_sample=sample if not ok else [],
        observed_value=_plain(observed),
        message=message,
    )


def _sample_rows(t: _Table, query: str) -> list:
    """A few rows of a failed UnexpectedRowsExpectation (GX's SUMMARY format carries none)."""
    import duckdb

    sql = query.replace("{batch}", f"({t.query}) as batch")
    con = _connect(t.engine)
    try:
        cur = con.execute(f"select * from ({sql}) as unexpected limit {SAMPLE_SIZE}")
        names = [d[0] for d in cur.description]
        return [_plain(dict(zip(names, row))) for row in cur.fetchall()]
    except duckdb.Error as exc:
        return [f"(sample unavailable: {_first_line(exc)})"]
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# the gate


def run_gate(
    stage: str,
    run_date: str | dt.date | None = None,
    raise_on_failure: bool = True,
    *,
    frame=None,
    path: str | Path | None = None,
) -> GateResult:
    """Validate one stage's tables; write the report; raise GateFailed on a critical failure.

    ``run_date`` (YYYY-MM-DD) is the day the pipeline processed: the raw gate reads that lake
    partition, freshness and volume checks compare against it. Default: the latest lake day.
    ``frame`` / ``path`` give the training_set gate its examples.
    """
    if stage not in STAGES:
        raise UserError(f"unknown quality stage {stage!r}: choose one of {', '.join(STAGES)}.")
    started = time.monotonic()
    day = _resolve_day(run_date)
    day_start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    base = {
        "day": day.isoformat(),
        "next_day": (day + dt.timedelta(days=1)).isoformat(),
        "day_start": day_start,
        "day_end": day_start + dt.timedelta(days=1),
        "fresh_min": day_start,
        "fresh_max": day_start + FRESHNESS_AHEAD,
        "quarantine_rate_max": config.quarantine_rate_threshold(),
        "row_count_tolerance": config.row_count_tolerance(),
    }
    from vigil.warehouse import lock as warehouse_lock
    # a stage whose tables live in the warehouse reads it while no Vigil process writes it
    reads_warehouse = any(
        s.get("meta", {}).get("vigil", {}).get("location") == "warehouse"
        for s in _load_suites(stage)
    )
    hold = warehouse_lock.access(exclusive=False, purpose=f"validate {stage}")
    with hold if reads_warehouse else contextlib.nullcontext():
        tables, work_files = _tables(stage, day, frame=frame, path=path)
        try:
            _describe(tables)
            results, info = _validate(stage, day, tables, base)
        finally:
            for f in work_files:
                f.unlink(missing_ok=True)
    success = not any(not r.success and r.severity == "critical" for r in results)
    gate = GateResult(
        stage=stage,
        run_date=day.isoformat(),
        success=success,
        results=sorted(results, key=lambda r: (r.success, r.severity != "critical", r.table)),
        tables=info,
        seconds=round(time.monotonic() - started, 2),
    )
    from vigil.quality.report import write_reports

    failed = len(gate.failures)
    report_dir = config.paths().reports / "quality"
    gate.summary = (
        f"gate {stage} {gate.run_date}: {'PASSED' if success else 'FAILED'} "
        f"({len(results) - failed}/{len(results)} checks passed on {len(info)} tables"
        + (f", {len(gate.warnings)} warnings" if gate.warnings else "")
        + f", {gate.seconds:.1f} s); report {report_dir / f'{stage}_{gate.run_date}.html'}"
    )
    write_reports(gate, report_dir)
    for r in gate.failures:
        log.error("quality %s: %s", stage, r.message)
    for r in gate.warnings:
        log.warning("quality %s (warning): %s", stage, r.message)
    log.info("%s", gate.summary)
    if success:
        _record_history(stage, day, info)
    elif raise_on_failure:
        raise GateFailed(gate)
    return gate


def _validate(stage: str, day: dt.date, tables: list[_Table], base: dict):
    import great_expectations as gx

    results: list[CheckResult] = []
    info: dict[str, dict] = {}
    for t in tables:
        info[t.name] = {"location": t.location, "rows": None, "note": t.missing or t.skip or ""}
        if t.missing:
            results.append(
                CheckResult(
                    table=t.name,
                    expectation="expect_table_row_count_to_be_between",
                    check="table_exists",
                    column=None,
                    success=False,
                    severity="critical",
                    unexpected_count=None,
                    message=f"{t.name}: table_exists: {t.missing}",
                )
            )
    todo = [t for t in tables if t.query]
    if not todo:
        return results, info
    history = _read_history()
    context = gx_context()
    run = f"{stage}_{uuid.uuid4().hex[:8]}"
    with _DuckDBConnections():
        raw = _run_checkpoint(context, gx, stage, day, todo, base, history, run)
    return _collect(raw, info, results)


def _run_checkpoint(context, gx, stage, day, todo, base, history, run):
    sources: dict[str, Any] = {}
    names = {"suites": [], "vds": [], "checkpoint": None}
    by_suite: dict[str, _Table] = {}
    try:
        vds = []
        for t in todo:
            if t.engine not in sources:
                cfg = _duckdb_config()
                if t.engine == "warehouse":
                    conn = f"duckdb:///{config.paths().warehouse}"
                    connect_args = {"read_only": True, "config": cfg}
                else:
                    conn, connect_args = "duckdb:///:memory:", {"config": cfg}
                sources[t.engine] = context.data_sources.add_sql(
                    name=f"{run}_{t.engine}",
                    connection_string=conn,
                    create_temp_table=False,
                    kwargs={"connect_args": connect_args},
                )
            asset = sources[t.engine].add_query_asset(name=t.name, query=t.query)
            batch = asset.add_batch_definition_whole_table("all")
            suite_name = f"{run}.{t.name}"
            suite = context.suites.add(
                gx.ExpectationSuite(
                    name=suite_name, expectations=_expectations(stage, t, base, history, day)
                )
            )
            names["suites"].append(suite_name)
            by_suite[suite_name] = t
            vd = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
            )
            names["vds"].append(suite_name)
            vds.append(vd)
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=run,
                validation_definitions=vds,
                actions=[],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
            )
        )
        names["checkpoint"] = run
        log.info("quality %s %s: validating %d tables", stage, day, len(todo))
        outcome = checkpoint.run()
        raw: list[tuple[_Table, Any]] = []
        for suite_result in outcome.run_results.values():
            t = by_suite[suite_result.suite_name]
            for res in suite_result.results:
                raw.append((t, res))
    finally:
        _cleanup(context, names, [s.name for s in sources.values()])
    return raw


def _collect(raw, info: dict, results: list[CheckResult]):
    for t, res in raw:
        r = _check_result(t.name, res)
        if not r.success and r.expectation == "unexpected_rows_expectation" and r.unexpected_count:
            r.unexpected_sample = _sample_rows(
                t, res.expectation_config.kwargs["unexpected_rows_query"]
            )
            r.message += f", e.g. {json.dumps(r.unexpected_sample[:3], default=str)}"
        if r.expectation == "expect_table_row_count_to_be_between" and isinstance(
            r.observed_value, int
        ):
            info[t.name]["rows"] = r.observed_value
        results.append(r)
    return results, info


def _cleanup(context, names: dict, sources: list[str]) -> None:
    for action in (
        lambda: names["checkpoint"] and context.checkpoints.delete(names["checkpoint"]),
        *[(lambda n=n: context.validation_definitions.delete(n)) for n in names["vds"]],
        *[(lambda n=n: context.suites.delete(n)) for n in names["suites"]],
        *[(lambda n=n: context.data_sources.delete(n)) for n in sources],
    ):
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - leftovers in the ephemeral context only cost memory
            log.debug("GX cleanup: %s", exc)


# --------------------------------------------------------------------------------------------
# CLI: vigil validate STAGE [--date YYYY-MM-DD] [--json] [--path FILE]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="which gate to run")
    parser.add_argument("--date", help="the run's day YYYY-MM-DD (default: the latest lake day)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--path", help="training_set only: the examples as a Parquet file")


def run(args: argparse.Namespace) -> int:
    result = run_gate(args.stage, run_date=args.date, raise_on_failure=False, path=args.path)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for r in result.failures:
            print(f"FAIL  {r.message}")
        for r in result.warnings:
            print(f"WARN  {r.message}")
        print(result.summary)
    return 0 if result.success else 1
