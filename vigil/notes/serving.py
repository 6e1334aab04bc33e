"""The notes views in Feast: register, materialize, read online.

The views are defined in ``feature_repo/`` from :mod:`vigil.notes.features` and registered with
every other definition by :func:`vigil.serving.features.apply`. Each notes table is small (one row
per note, post with notes, or contributor, per change), so every publish materializes its whole
history, oldest to newest; the online store then holds each entity's latest row.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from vigil import config
from vigil.errors import UserError
from vigil.notes import features as note_features

log = logging.getLogger(__name__)


def apply_and_materialize() -> dict:
    from vigil.serving import features

    applied = features.apply()
    return {"applied": applied, **materialize()}


def materialize() -> dict:
    from vigil.serving import features

    guarded = features._damaged_files_are_errors(_materialize)  # one error for damaged stores
    with features._writing("notes materialize"):
        return guarded()


def _materialize() -> dict:
    import duckdb

    from vigil.serving import features

    fs = features.store()
    started = time.perf_counter()
    result: dict[str, Any] = {"views": {}, "rows": 0}
    for view in note_features.VIEWS:
        path = config.paths().features / f"{view}.parquet"
        if not path.is_file():
            raise UserError(f"{path} does not exist: run `vigil notes run` first.")
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            rows, lo, hi = con.execute(
                "select count(*), min(event_timestamp), max(event_timestamp) from read_parquet(?)",
                [str(path)],
            ).fetchone()
        finally:
            con.close()
        if not rows:
            result["views"][view] = {"rows": 0, "skipped": True}
            continue
        start, end = features._utc(lo), features._utc(hi)
        fs.materialize(start_date=start, end_date=end, feature_views=[view])
        result["views"][view] = {
            "rows": int(rows),
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        result["rows"] += int(rows)
    result["seconds"] = round(time.perf_counter() - started, 2)
    log.info(
        "feast: materialized the notes views (%s) in %.1f s",
        ", ".join(f"{v} {r['rows']} rows" for v, r in result["views"].items()),
        result["seconds"],
    )
    return result


def online(post_id: int | None = None, note_id: int | None = None) -> dict:
    """The online values of a post's shown note (``post_id``) or of one note (``note_id``)."""
    from vigil.serving import features

    if (post_id is None) == (note_id is None):
        raise UserError("give a post id or a note id.")
    fs = features.store()
    out: dict[str, Any] = {}
    if post_id is not None:
        out["post_id"] = int(post_id)
        out.update(_read(fs, "post_best_note", {"post_id": int(post_id)}))
        if not out.get("shown_note_id"):  # 0 (no helpful note) or no row (no notes)
            out["shown_note_id"] = None
            return out
        note_id = out["shown_note_id"]
    out["note_id"] = int(note_id)
    out.update(_read(fs, "note_status", {"note_id": int(note_id)}))
    return out


def _read(fs, view: str, entity: dict) -> dict:
    refs = [f"{view}:{name}" for name in note_features.feature_names(view)]
    try:
        values = fs.get_online_features(features=refs, entity_rows=[entity]).to_dict()
    except Exception as exc:
        if "not found" in str(exc).lower() or "FeatureViewNotFound" in type(exc).__name__:
            raise UserError(
                f"the feature store has no {view} view: run `vigil notes run` first."
            ) from None
        raise
    return {name: values[name][0] for name in note_features.feature_names(view)}
