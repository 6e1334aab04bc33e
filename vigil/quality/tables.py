"""Where a stage's tables live: the suites' ``meta.vigil.location`` resolved to SQL over the
warehouse (read-only), lake Parquet, the ingest counts or a training set; columns described
without reading the data."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.lake.store import check_readable
from vigil.quality.results import SAMPLE_SIZE, first_line, plain

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = config.REPO_ROOT / "expectations"


@dataclass
class Table:
    name: str
    suite: dict
    engine: str = "memory"  # "warehouse" (the DuckDB file, read-only) or "memory" (Parquet)
    query: str | None = None  # SQL selecting the batch; None when the table is missing
    location: str = ""
    missing: str | None = None  # why it cannot be validated (a critical failure)
    skip: str | None = None  # why it need not be validated (optional table absent)
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type
    rows: int | None = None  # counted up front only for suites with generic checks


def sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_config() -> dict:
    temp = config.paths().duckdb_temp
    temp.mkdir(parents=True, exist_ok=True)
    return {
        "memory_limit": config.duckdb_memory_limit(),
        "threads": config.duckdb_threads(),
        "temp_directory": str(temp),
    }


def connect(engine: str):
    import duckdb

    if engine == "warehouse":
        return duckdb.connect(str(config.paths().warehouse), read_only=True, config=duckdb_config())
    return duckdb.connect(":memory:", config=duckdb_config())


def load_suites(stage: str) -> list[dict]:
    folder = EXPECTATIONS_DIR / stage
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UserError(f"no expectation suites in {folder}: the source tree is incomplete.")
    return [json.loads(f.read_text()) for f in files]


def _parquet_query(path: Path) -> str:
    target = f"{path}/**/*.parquet" if path.is_dir() else str(path)
    # a dt=YYYY-MM-DD folder must not turn into an extra column: the file's schema is the contract
    return f"select * from read_parquet({sql_str(target)}, hive_partitioning = false)"


def _with_added_event_columns(query: str, path: Path) -> str:
    """A partition written before an event column was added (``ADDED_EVENT_COLUMNS``) reads it
    as null, as the lake's own reader does (vigil.lake.store.read_parquet)."""
    import pyarrow.parquet as pq

    from vigil.contracts import ADDED_EVENT_COLUMNS

    names = set(pq.read_schema(path).names)
    extra = [c for c in ADDED_EVENT_COLUMNS if c not in names]
    if not extra:
        return query
    nulls = ", ".join(f"cast(null as varchar) as {c}" for c in extra)
    return f"select *, {nulls} from ({query})"


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


def resolve_day(run_date) -> dt.date:
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
    check_readable([*parts, *([quarantine] if quarantine.is_file() else [])])
    con = connect("memory")
    try:
        loaded = 0
        if parts:
            files = "[" + ", ".join(sql_str(str(p)) for p in parts) + "]"
            loaded = con.execute(
                f"select count(*) from read_parquet({files}, hive_partitioning = false) "
                "where source_file like ?",
                [pattern],
            ).fetchone()[0]
        quarantined = 0
        if quarantine.is_file():
            quarantined = con.execute(
                f"select count(*) from read_parquet({sql_str(str(quarantine))}) "
                "where stream = 'events' and source_file like ?",
                [pattern],
            ).fetchone()[0]
    finally:
        con.close()
    counts = {"read": loaded + quarantined, "loaded": loaded, "quarantined": quarantined}
    return "counted from lake and quarantine", [_count_row("events", counts)]


def _warehouse_tables() -> dict[str, str]:
    """table name -> 'schema.table' in the warehouse (prefers schema main)."""
    con = connect("warehouse")
    try:
        rows = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "order by table_schema = 'main' desc, table_schema"
        ).fetchall()
    finally:
        con.close()
    found: dict[str, str] = {}
    for schema, name in rows:
        found.setdefault(name, f"{ident(schema)}.{ident(name)}")
    return found


def find_tables(stage: str, day: dt.date, frame=None, path=None) -> tuple[list[Table], list[Path]]:
    """The stage's tables and the temporary files written for them (deleted after the run)."""
    paths = config.paths()
    tables: list[Table] = []
    in_warehouse: dict[str, str] = {}
    work_files: list[Path] = []
    for suite in load_suites(stage):
        meta = suite.get("meta", {}).get("vigil", {})
        name = meta.get("table") or suite["name"].split(".")[-1]
        where = meta.get("location")
        t = Table(name=name, suite=suite)
        if where == "lake_events_day":
            f = paths.lake_events / f"dt={day.isoformat()}" / "events.parquet"
            _parquet_table(
                t, f, missing=f"no lake partition for {day} ({f} does not exist): the day is empty"
            )
            if t.query:
                t.query = _with_added_event_columns(t.query, f)
        elif where == "lake_quarantine":
            f = paths.quarantine / "quarantine.parquet"
            _parquet_table(t, f, skip="no quarantine file: nothing was quarantined")
        elif where == "ingest_run":
            _ingest_run_table(t, day)
        elif where == "lake":
            # a whole lake table (the service logs: decisions, appeal labels); `vigil ingest`
            # writes an empty one when there is nothing to load, so absent means not ingested
            f = paths.lake / meta["path"]
            _parquet_table(t, f, missing=f"{f} does not exist: run `vigil ingest` first")
        elif where == "warehouse":
            if not in_warehouse and paths.warehouse.is_file():
                in_warehouse = _warehouse_tables()
            _warehouse_table(t, stage, day, meta, in_warehouse)
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
        elif where in ("notes_lake", "notes_scores"):
            # Community Notes: lake/notes/<table>.parquet, notes/scores/<table>.parquet (vigil.notes)
            folder = (
                paths.lake / "notes" if where == "notes_lake" else paths.home / "notes" / "scores"
            )
            f = folder / f"{name}.parquet"
            if meta.get("optional"):
                _parquet_table(t, f, skip=f"{f} does not exist: nothing to check")
            else:
                _parquet_table(t, f, missing=f"{f} does not exist: run `vigil notes run` first")
        elif where == "training_set":
            _training_set(t, frame, path, work_files)
        elif where == "ranking_output":
            _ranking_table(t, path, meta)
        else:
            raise UserError(f"suite {suite['name']} has an unknown location {where!r}.")
        tables.append(t)
    return tables, work_files


def _parquet_table(
    t: Table, f: Path, *, missing: str | None = None, skip: str | None = None
) -> None:
    """A table read from one Parquet file (its pages verified first); absent: missing or skipped."""
    t.location = str(f)
    if f.is_file():
        check_readable([f])
        t.query = _parquet_query(f)
    elif skip is not None:
        t.skip = skip
    else:
        t.missing = missing


def _ingest_run_table(t: Table, day: dt.date) -> None:
    """The ingest run's counts per stream for ``day``, as a VALUES table."""
    source, rows = _ingest_counts(day)
    t.location = f"ingest of {day} ({source})"
    values = ", ".join(
        f"({sql_str(r['stream'])}, {r['rows_read']}, {r['loaded']}, {r['quarantined']}, "
        f"{r['duplicates']}, "
        f"{(r['quarantined'] / r['rows_read'] if r['rows_read'] else 0.0)!r}::double)"
        for r in rows
    )
    t.query = (
        f"select * from (values {values}) as ingest_run"
        "(stream, rows_read, loaded, quarantined, duplicates, quarantine_rate)"
    )


def _warehouse_table(
    t: Table, stage: str, day: dt.date, meta: dict, in_warehouse: dict[str, str]
) -> None:
    """A warehouse table, filtered to ``day`` when its suite names a day column."""
    paths = config.paths()
    t.engine = "warehouse"
    t.location = f"{paths.warehouse}:{t.name}"
    if not paths.warehouse.is_file():
        t.missing = f"warehouse {paths.warehouse} does not exist: run `vigil dbt {stage}` first"
    elif t.name not in in_warehouse:
        t.missing = (
            f"table {t.name} is not in the warehouse {paths.warehouse}: run `vigil dbt {stage}`"
        )
    else:
        t.query = f"select * from {in_warehouse[t.name]}"
        if meta.get("day_column"):
            t.query += f" where {ident(meta['day_column'])} = date {sql_str(day.isoformat())}"


def _ranking_table(t: Table, path, meta: dict) -> None:
    """A ranking output (:mod:`vigil.ranking.pipeline`): ``<path>/<table>.parquet``. With
    ``join_removals``, each row also gets ``removed_at``: when moderation removed its post (the
    lake's ``is_harmful`` labels; null when never), so a suite can check nothing removed was shown."""
    if path is None:
        raise UserError(
            "the ranking gates check one run's output folder: pass path= (e.g. "
            "`vigil validate ranking_home --path $VIGIL_HOME/ranking/home/dt=D`)."
        )
    f = Path(path) / f"{t.name}.parquet"
    _parquet_table(t, f, missing=f"{f} does not exist: run the ranking pipeline first")
    if t.query is None or not meta.get("join_removals"):
        return
    labels = config.paths().lake / "labels" / "labels.parquet"
    if labels.is_file():
        removals = (
            "select post_id, min(labeled_at) as removed_at from "
            f"read_parquet({sql_str(str(labels))}) where is_harmful group by post_id"
        )
        t.query = (
            f"select b.*, r.removed_at from ({t.query}) b left join ({removals}) r using (post_id)"
        )
    else:
        t.query = f"select *, null::timestamptz as removed_at from ({t.query})"


def _training_set(t: Table, frame, path, work_files: list[Path]) -> None:
    """The training_set gate's examples: a DataFrame written to a work file, or a Parquet path."""
    paths = config.paths()
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


def describe(tables: list[Table]) -> None:
    """Fill each table's columns (name -> type) from DuckDB without reading the data."""
    for engine in ("warehouse", "memory"):
        todo = [t for t in tables if t.engine == engine and t.query]
        if not todo:
            continue
        import duckdb

        con = connect(engine)
        try:
            for t in todo:
                try:
                    rows = con.execute(f"describe {t.query}").fetchall()
                    t.columns = {r[0]: str(r[1]) for r in rows}
                    if t.suite.get("meta", {}).get("vigil", {}).get("generic"):
                        t.rows = con.execute(f"select count(*) from ({t.query})").fetchone()[0]
                except duckdb.Error as exc:  # unreadable file / broken view: a failure, not a crash
                    t.missing = f"cannot read {t.location}: {first_line(exc)}"
                    t.query = None
        finally:
            con.close()


def sample_rows(t: Table, query: str) -> list:
    """A few rows of a failed UnexpectedRowsExpectation (GX's SUMMARY format carries none)."""
    import duckdb

    sql = query.replace("{batch}", f"({t.query}) as batch")
    con = connect(t.engine)
    try:
        cur = con.execute(f"select * from ({sql}) as unexpected limit {SAMPLE_SIZE}")
        names = [d[0] for d in cur.description]
        return [plain(dict(zip(names, row))) for row in cur.fetchall()]
    except duckdb.Error as exc:
        return [f"(sample unavailable: {first_line(exc)})"]
    finally:
        con.close()
