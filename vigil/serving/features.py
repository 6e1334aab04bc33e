"""Feast: the contract between the data and the models.

The definitions live in ``feature_repo/`` (entities -> data sources -> feature views -> feature
services). The Feast repo that runs them lives under the data root, ``$VIGIL_HOME/feast``: its
``feature_store.yaml`` is rendered from ``feature_repo/feature_store.yaml.template`` with absolute
paths, the DuckDB offline store, and the online store selected by ``VIGIL_ONLINE_STORE``
(``sqlite`` default, ``redis`` at ``VIGIL_REDIS_URL``). The source tree is never written to.

Training reads features only through :func:`historical_features` (Feast's point-in-time join);
scoring reads them online (:func:`online_features` or ``vigil features serve``). Feature names are
always the full ``<view>__<feature>`` names, online and offline, so a model trained on a column
finds the same column when it is served.

    vigil features apply                    # render feature_store.yaml, register the definitions
    vigil features materialize [--full]     # offline -> online (whole history first, then incremental;
                                            # --engine feast: Feast's own writer, see vigil.serving.materialize)
    vigil features get --post-id 42         # the online feature vector of a post (and its author)
    vigil features serve [--port 6566]      # HTTP feature server on 127.0.0.1: reads; writes
                                            # need VIGIL_FEATURES_TOKEN (vigil.serving.server; the CLI in vigil.serving.cli)
"""

from __future__ import annotations

import importlib
import logging
import string
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil import config
from vigil.errors import UserError
from vigil.serving import services
from vigil.serving.feast_writes import atomic_registry_writes as _atomic_registry_writes
from vigil.serving.feast_writes import writing as _writing

if TYPE_CHECKING:  # heavy imports stay inside functions
    import pandas as pd
    from feast import FeatureStore

log = logging.getLogger(__name__)

REPO_DIR = config.REPO_ROOT / "feature_repo"
TEMPLATE = REPO_DIR / "feature_store.yaml.template"
# Definition modules, imported in this order (Feast style: entities -> sources -> views -> services).
DEFINITION_MODULES = ("entities", "data_sources", "feature_views", "feature_services")

# feature view -> (entity join key, source table under paths().features)
VIEWS: dict[str, tuple[str, str]] = {
    "user_activity": ("user_id", "user_activity"),
    "creator_context": ("user_id", "creator_context"),
    "post_behavior": ("post_id", "post_behavior"),
}
# Views materialized when their source exists (a lake without the logs they come from has none
# yet); absent, they are skipped with a log line.
OPTIONAL_VIEWS: dict[str, tuple[str, str]] = {
    "user_labels": ("user_id", "user_labels"),  # active labels per user (issue 21)
    # GraphSAGE embeddings, written by `vigil graph embed` (vigil.graph.publish; issue 26)
    "user_graph_embedding": ("user_id", "user_graph_embedding"),
}
PUSH_SOURCES = {"user_activity": "user_activity_push", "creator_context": "creator_context_push"}

# What each service's models read, as ``view:feature`` refs (defined once in vigil.serving.services).
FEATURE_SERVICES: dict[str, tuple[str, ...]] = {
    name: services.refs(name) for name in services.SERVICES
}
MODERATION_V1_FEATURES: tuple[str, ...] = FEATURE_SERVICES["moderation_v1"]


def column_name(ref: str) -> str:
    """The column a feature ref becomes (full feature names): ``view:feat`` -> ``view__feat``."""
    return ref.replace(":", "__", 1)


def feature_columns(feature_service: str = "moderation_v1") -> list[str]:
    """The feature columns :func:`historical_features` and :func:`online_features` return."""
    try:
        return [column_name(r) for r in FEATURE_SERVICES[feature_service]]
    except KeyError:
        raise UserError(
            f"unknown feature service {feature_service!r}: choose one of {', '.join(FEATURE_SERVICES)}."
        ) from None


# --------------------------------------------------------------------------------------------
# Configuration and definitions
# --------------------------------------------------------------------------------------------


def repo_path() -> Path:
    """The Feast repo under the data root (feature_store.yaml, registry, SQLite online store)."""
    return config.paths().feast


def render_config() -> str:
    """feature_store.yaml for the current settings, with absolute paths."""
    feast_dir = repo_path()
    kind = config.online_store()
    if kind == "sqlite":
        online = f"  type: sqlite\n  path: {feast_dir / 'online_store.db'}"
    else:
        online = f'  type: redis\n  connection_string: "{config.redis_url()}"'
    return string.Template(TEMPLATE.read_text()).substitute(
        project=config.feast_project(),
        registry_path=str(feast_dir / "registry.db"),
        online_store=online,
    )


def write_config() -> Path:
    """Render feature_store.yaml into the data root (only rewritten when it changes)."""
    target = repo_path() / "feature_store.yaml"
    text = render_config()
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        log.info("feast: wrote %s (online store: %s)", target, config.online_store())
    return target


def definitions() -> list[Any]:
    """Fresh Feast objects from ``feature_repo/``, source paths resolved from today's data root.

    The modules import each other by their plain names (as ``feast apply`` does, with the repo on
    sys.path); they are executed anew on every call, so a changed VIGIL_HOME is honoured.
    """
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    saved = {name: sys.modules.pop(name) for name in DEFINITION_MODULES if name in sys.modules}
    sys.path.insert(0, str(REPO_DIR))
    objects: list[Any] = []
    try:
        for name in DEFINITION_MODULES:
            module = importlib.import_module(name)
            for attr in vars(module).values():
                if isinstance(attr, (Entity, DataSource, FeatureView, FeatureService)) and not any(
                    attr is o for o in objects
                ):
                    objects.append(attr)
    finally:
        sys.path.remove(str(REPO_DIR))
        for name in DEFINITION_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return objects


def _damaged_files_are_errors(func):
    """A damaged Feast registry or SQLite online store ends in one error naming the file and
    the commands that rebuild it, instead of protobuf's or sqlite3's traceback."""
    import functools

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        import sqlite3

        from google.protobuf.message import DecodeError

        try:
            return func(*args, **kwargs)
        except DecodeError as exc:
            registry = repo_path() / "registry.db"
            raise UserError(
                f"the Feast registry {registry} is damaged ({first_line(exc)}): delete it, then "
                "run `vigil features apply` and `vigil features materialize --full`."
            ) from None
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, missing table: not damage
                raise
            online = repo_path() / "online_store.db"
            raise UserError(
                f"the online store {online} is damaged ({first_line(exc)}): delete it, then "
                "run `vigil features apply` and `vigil features materialize --full`."
            ) from None

    return guarded


def first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


_STORES: dict[tuple, FeatureStore] = {}


def store() -> FeatureStore:
    """The FeatureStore for the current data root and settings (cached per settings)."""
    from feast import FeatureStore

    write_config()
    # Feast logs "Registry cache expired, so refreshing" at INFO on nearly every call.
    logging.getLogger("feast.infra.registry.registry").setLevel(logging.WARNING)
    key = (str(repo_path()), config.online_store(), config.redis_url(), config.feast_project())
    _atomic_registry_writes()
    if key not in _STORES:
        _STORES[key] = FeatureStore(repo_path=str(repo_path()))
    return _STORES[key]


@_damaged_files_are_errors
def apply() -> dict:
    """Register entities, sources, views and services; warn about mart columns that do not fit."""
    with _writing("features apply"):
        return _apply()


def _apply() -> dict:
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    fs = store()
    objects = definitions()
    fs.apply(objects)
    counts = {
        "entities": sum(isinstance(o, Entity) for o in objects),
        "data_sources": sum(isinstance(o, DataSource) for o in objects),
        "feature_views": sum(isinstance(o, FeatureView) for o in objects),
        "feature_services": sum(isinstance(o, FeatureService) for o in objects),
    }
    log.info(
        "feast: applied project %s to %s: %s",
        fs.project,
        repo_path(),
        ", ".join(f"{v} {k}" for k, v in counts.items()),
    )
    for view in (o for o in objects if isinstance(o, FeatureView)):
        _check_source_schema(view)
    return {"project": fs.project, "repo": str(repo_path()), **counts}


# Views published by `vigil notes run` (vigil.notes.features), not by dbt.
_NOTES_VIEWS = ("note_status", "post_best_note", "contributor_reputation")


def _check_source_schema(view) -> None:
    """Log (not fail) when a mart is missing columns the view declares: apply needs no data."""
    import pyarrow.parquet as pq

    path = Path(view.batch_source.path)
    if not path.exists():
        log.warning(
            "feast: %s: source %s does not exist yet (run `%s`)",
            view.name,
            path,
            "vigil notes run" if view.name in _NOTES_VIEWS else "vigil dbt marts",
        )
        return
    import pyarrow as pa

    schema = pq.read_schema(path)
    wanted = {f.name for f in view.features} | {*view.join_keys, "event_timestamp"}
    missing = sorted(wanted - set(schema.names))
    if missing:
        log.warning("feast: %s: %s lacks columns %s", view.name, path, ", ".join(missing))
    # Materialization converts values to the declared type: an Int64 field expects integers.
    wrong = [
        f"{f.name} ({schema.field(f.name).type})"
        for f in view.features
        if f.name in schema.names
        and str(f.dtype) == "Int64"
        and not pa.types.is_integer(schema.field(f.name).type)
    ]
    if wrong:
        log.warning(
            "feast: %s: declared Int64 but %s holds %s", view.name, path.name, ", ".join(wrong)
        )


def _require_applied(fs) -> None:
    names = {fv.name for fv in fs.list_feature_views()}
    if not set(VIEWS) <= names:
        raise UserError(
            f"the feature store at {repo_path()} has no feature views yet: run `vigil features apply` first."
        )


# --------------------------------------------------------------------------------------------
# Materialization
# --------------------------------------------------------------------------------------------


def _source_path(view: str) -> Path:
    return config.paths().features / f"{(VIEWS | OPTIONAL_VIEWS)[view][1]}.parquet"


def _source_stats(view: str, start: datetime | None = None, end: datetime | None = None) -> dict:
    """Rows, distinct entities and the event_timestamp range of a source in [start, end]."""
    import duckdb

    path = _source_path(view)
    if not path.exists():
        raise UserError(
            f"feature mart {path} not found: run `vigil dbt marts` (or `make run`) first."
        )
    key = (VIEWS | OPTIONAL_VIEWS)[view][0]
    where, params = [], []
    if start is not None:
        where.append("event_timestamp >= ?")
        params.append(start)
    if end is not None:
        where.append("event_timestamp <= ?")
        params.append(end)
    sql = (
        f"select count(*), count(distinct {key}), min(event_timestamp), max(event_timestamp) "
        f"from read_parquet(?)" + (f" where {' and '.join(where)}" if where else "")
    )
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        rows, entities, lo, hi = con.execute(sql, [str(path), *params]).fetchone()
    finally:
        con.close()
    return {"rows": int(rows), "entities": int(entities), "min": _utc(lo), "max": _utc(hi)}


def _utc(ts) -> datetime | None:
    if ts is None:
        return None
    ts = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@_damaged_files_are_errors
def materialize(full: bool = False, engine: str = "bulk") -> dict:
    """Copy the latest feature values from the offline store into the online store (one
    writer at a time: see :func:`_materialize`)."""
    if engine not in ENGINES:
        raise UserError(
            f"unknown materialization engine {engine!r}: use one of {', '.join(ENGINES)}."
        )
    from vigil.serving.online_check import check_online_store

    with _writing("features materialize"):
        check_online_store()  # SQLite: a damaged file is one error, not a write into it
        return _materialize(full, engine)


# bulk: vigil.serving.materialize (Feast's semantics and layout, written in batches);
# feast: FeatureStore.materialize (Feast's local engine, one row at a time), kept as reference.
ENGINES = ("bulk", "feast")


def _materialize(full: bool = False, engine: str = "bulk") -> dict:
    """Copy the latest feature values from the offline store into the online store.

    Per feature view: the first run (or ``full=True``) covers the whole history, from the earliest
    ``event_timestamp`` in its source to the latest; later runs cover only rows newer than the end
    of the previous run. A run with nothing new does nothing. Returns, per view, the interval and
    the source rows and entities it covered.
    """
    fs = store()
    _require_applied(fs)
    one_us = timedelta(microseconds=1)
    result: dict[str, Any] = {"views": {}, "rows": 0, "entities": 0}
    started = time.perf_counter()
    views = list(VIEWS) + [v for v in OPTIONAL_VIEWS if _source_path(v).exists()]
    for i, view in enumerate(views, start=1):
        last_end = None if full else _utc(fs.get_feature_view(view).most_recent_end_time)
        whole = _source_stats(view)
        if whole["rows"] == 0:
            log.info("feast: [%d/%d] %s: source is empty, nothing to do", i, len(views), view)
            result["views"][view] = {"rows": 0, "entities": 0, "skipped": True}
            continue
        start = whole["min"] if last_end is None else last_end + one_us
        end = whole["max"]
        if start > end:
            log.info(
                "feast: [%d/%d] %s: up to date (materialized to %s), nothing to do",
                i,
                len(views),
                view,
                last_end.isoformat(),
            )
            result["views"][view] = {
                "rows": 0,
                "entities": 0,
                "skipped": True,
                "end": last_end.isoformat(),
            }
            continue
        part = _source_stats(view, start, end) if last_end is not None else whole
        log.info(
            "feast: [%d/%d] %s: materializing %d rows (%d entities) from %s to %s (%s)",
            i,
            len(views),
            view,
            part["rows"],
            part["entities"],
            start.isoformat(),
            end.isoformat(),
            "incremental" if last_end is not None else "whole history",
        )
        t0 = time.perf_counter()
        detail = _materialize_view(fs, view, start, end, engine)
        result["views"][view] = {
            **detail,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "rows": part["rows"],
            "entities": part["entities"],
            "incremental": last_end is not None,
            "skipped": False,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        result["rows"] += part["rows"]
        result["entities"] += part["entities"]
    if engine == "bulk":
        from vigil.serving import materialize as bulk

        bulk.after_views(fs, [v for v, d in result["views"].items() if not d.get("skipped")])
    result["engine"] = engine
    result["seconds"] = round(time.perf_counter() - started, 3)
    log.info(
        "feast: materialized %d rows for %d entity keys in %.1f s",
        result["rows"],
        result["entities"],
        result["seconds"],
    )
    return result


def _materialize_view(fs, view: str, start: datetime, end: datetime, engine: str) -> dict:
    if engine == "feast":
        fs.materialize(start_date=start, end_date=end, feature_views=[view])
        return {}
    from vigil.serving import materialize as bulk

    return bulk.materialize_view(fs, fs.get_feature_view(view), start, end)


# --------------------------------------------------------------------------------------------
# Reads and writes
# --------------------------------------------------------------------------------------------


@_damaged_files_are_errors
def historical_features(
    entity_df: pd.DataFrame,
    feature_service: str = "moderation_v1",
    full_feature_names: bool = True,
) -> pd.DataFrame:
    """Point-in-time correct features for each row of ``entity_df``.

    ``entity_df`` has ``event_timestamp`` (tz-aware UTC, the moment to look from) and the join keys
    the service needs (``post_id``, ``user_id``; for moderation_v1 ``user_id`` is the post's
    author). Each row gets, per view, the row with the latest ``event_timestamp <= t`` within the
    view's ttl, or nulls when there is none; no row is dropped. Extra columns are kept. Feature
    columns are ``<view>__<feature>`` (see :func:`feature_columns`).
    """
    import pandas as pd

    if "event_timestamp" not in entity_df.columns:
        raise UserError("entity_df needs an event_timestamp column (UTC) to look features up from.")
    fs = store()
    _require_applied(fs)
    frame = entity_df.copy()
    ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["event_timestamp"] = ts.dt.as_unit("us")
    service = fs.get_feature_service(feature_service)
    t0 = time.perf_counter()
    out = fs.get_historical_features(
        entity_df=frame, features=service, full_feature_names=full_feature_names
    ).to_df()
    log.info(
        "feast: %d point-in-time rows from %s in %.2f s",
        len(out),
        feature_service,
        time.perf_counter() - t0,
    )
    return out


def _view_features(fs, view: str) -> list[str]:
    return [f"{view}:{f.name}" for f in fs.get_feature_view(view).features]


@_damaged_files_are_errors
def online_features(post_id: int | None = None, user_id: int | None = None) -> dict:
    """The online feature vector of a post and/or a user, as one flat dict.

    With ``post_id`` alone, the user features are those of the post's author (``author_id`` from
    post_behavior), which is what the moderation model reads. Keys are full feature names
    (``post_behavior__views``); a value is None when the store has nothing for that entity.
    """
    if post_id is None and user_id is None:
        raise UserError("give a post id, a user id, or both.")
    fs = store()
    _require_applied(fs)
    out: dict[str, Any] = {}
    if post_id is not None:
        out["post_id"] = int(post_id)
        out.update(_read_online(fs, ["post_behavior"], {"post_id": int(post_id)}))
        if user_id is None and out.get("post_behavior__author_id") is not None:
            user_id = int(out["post_behavior__author_id"])
    if user_id is not None:
        out["user_id"] = int(user_id)
        out.update(
            _read_online(fs, ["creator_context", "user_activity"], {"user_id": int(user_id)})
        )
    return out


def _read_online(fs, views: list[str], entity: dict) -> dict:
    refs = [ref for view in views for ref in _view_features(fs, view)]
    values = fs.get_online_features(
        features=refs, entity_rows=[entity], full_feature_names=True
    ).to_dict()
    return {column_name(ref): values[column_name(ref)][0] for ref in refs}


@_damaged_files_are_errors
def push(view: str, df: pd.DataFrame, to: str = "online") -> int:
    """Write fresh rows of ``user_activity`` or ``creator_context`` through its push source.

    ``df`` has the view's join key, ``event_timestamp`` and its features; ``to`` is ``online``,
    ``offline`` or ``online_and_offline``. Returns the number of rows pushed.
    """
    from feast.data_source import PushMode

    if view not in PUSH_SOURCES:
        raise UserError(f"{view} has no push source: use one of {', '.join(PUSH_SOURCES)}.")
    modes = {
        "online": PushMode.ONLINE,
        "offline": PushMode.OFFLINE,
        "online_and_offline": PushMode.ONLINE_AND_OFFLINE,
    }
    fs = store()
    fs.push(PUSH_SOURCES[view], df, to=modes[to])
    log.info("feast: pushed %d rows to %s (%s)", len(df), view, to)
    return len(df)


def require_found(vector: dict) -> dict:
    """Refuse a vector whose post or user the online store does not know (all values null)."""
    for key, views in (
        ("post_id", ("post_behavior__",)),
        ("user_id", ("creator_context__", "user_activity__")),
    ):
        if key not in vector:
            continue
        values = [v for name, v in vector.items() if name.startswith(views)]
        if all(v is None for v in values):
            kind = key.removesuffix("_id")
            raise UserError(
                f"{kind} {vector[key]} not found in the online store: check the id, or run "
                "`vigil features materialize` if it is new."
            )
    return vector
