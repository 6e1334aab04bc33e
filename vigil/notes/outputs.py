"""What a notes pipeline run writes: the reference's output files and the feature tables.

``score_lake`` scores the lake's notes tables (through :func:`vigil.notes.scoring.score`, the
same public function ``vigil notes score`` calls) and writes the run's candidates to
``<data root>/notes/scores/``: the reference's TSV files (prescoring_note_model_output,
scored_notes, helpfulness_scores, note_status_history), colluding raters and reputation, the three
feature tables of :mod:`vigil.notes.features` as Parquet, and ``run.json`` (counts by status, the
top shown note). The ``notes_scores`` gate checks the candidates; ``publish_tables`` then merges
them into ``features/<table>.parquet``, which keeps one row per entity and change: a re-run on
the same input adds nothing, a note whose status changes gets a new row at the run's time.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from vigil import config
from vigil.errors import UserError
from vigil.notes import features
from vigil.notes import format as fmt

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
HISTORY_STATE = "note_status_history.parquet"


def scores_dir() -> Path:
    return config.paths().home / "notes" / "scores"


def state_dir() -> Path:
    return config.paths().home / "notes" / "state"


def _previous_history(lake_history: pd.DataFrame) -> pd.DataFrame | None:
    """The last published run's status history; before any, the download's own when it says
    anything (a note that ever left NEEDS_MORE_RATINGS). A history of nothing but
    NEEDS_MORE_RATINGS (a fresh world) counts as none: with it, the reference's stabilization
    would hold back every helpful note for one more run (30 minutes of stable scores)."""
    path = state_dir() / HISTORY_STATE
    if path.is_file():
        return pd.read_parquet(path)
    if len(lake_history) and lake_history["firstNonNMRStatus"].notna().any():
        return lake_history
    return None


def score_lake(seed: int = 0, solver: str = "als") -> dict:
    """Score the lake's notes tables; write the candidates to notes/scores/; return run.json."""
    from vigil.notes import files, io, lake, scoring
    from vigil.notes.config import ScoringConfig

    notes = lake.read_table("notes")
    ratings = lake.read_table("ratings")
    if ratings.empty or notes.empty:
        raise UserError(f"{lake.lake_dir()} holds no notes or no ratings: nothing to score.")
    now = int(max(ratings["createdAtMillis"].max(), notes["createdAtMillis"].max()))
    result = scoring.score(
        notes,
        ratings,
        ScoringConfig(),
        previous_history=_previous_history(lake.read_table("status_history")),
        solver=solver,
        seed=seed,
        now_millis=now,
    )
    out = scores_dir()
    out.mkdir(parents=True, exist_ok=True)
    for key, name in files.OUTPUT_FILES.items():
        frame = {
            "prescoring": result.prescoring_notes,
            "scored": result.scored_notes,
            "helpfulness": result.helpfulness_scores,
            "history": result.status_history,
        }[key]
        io.write_tsv(frame, out / name)
    result.status_history.to_parquet(out / HISTORY_STATE, index=False)
    extras = files.contributor_files(ratings, result, out)
    tables = feature_tables(notes, ratings, result, out, now)
    for table, frame in tables.items():
        _write_atomic(frame, out / f"{table}.parquet")
    summary = _summary(tables, result, extras, now, seed, solver)
    (out / RUN_FILE).write_text(json.dumps(summary, indent=2, default=str))
    log.info("%s", status_line(summary))
    return summary


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def feature_tables(notes, ratings, result, out: Path, now_millis: int) -> dict[str, pd.DataFrame]:
    """The three feature tables of one scoring run, every row at the run's time."""
    ts = pd.Timestamp(now_millis, unit="ms", tz="UTC")
    scored = result.scored_notes.merge(notes[["noteId", "tweetId"]], on="noteId", how="left").merge(
        result.prescoring_notes[["noteId", "internalNoteIntercept"]], on="noteId", how="left"
    )
    note_status = pd.DataFrame(
        {
            "note_id": scored["noteId"].astype("int64"),
            "event_timestamp": ts,
            "post_id": scored["tweetId"].astype("Int64"),
            "status": scored["finalRatingStatus"].astype(str),
            "is_shown": (scored["finalRatingStatus"] == fmt.CURRENTLY_RATED_HELPFUL).astype(
                "int64"
            ),
            "note_intercept": scored["coreNoteIntercept"].astype("float64"),
            "note_factor": scored["coreNoteFactor1"].astype("float64"),
            "first_round_intercept": scored["internalNoteIntercept"].astype("float64"),
            "num_ratings": scored["numRatings"].fillna(0).astype("int64"),
            "status_since_millis": scored["timestampMillisOfCurrentStatus"]
            .fillna(now_millis)
            .astype("int64"),
        }
    )
    return {
        "note_status": note_status[features.table_columns("note_status")],
        "post_best_note": _post_best_note(note_status, ts),
        "contributor_reputation": _contributors(notes, ratings, result, out, ts),
    }


def _post_best_note(note_status: pd.DataFrame, ts) -> pd.DataFrame:
    """Per post with notes: the shown (helpful) note with the highest intercept, if any."""
    on_post = note_status.dropna(subset=["post_id"])
    shown = on_post[on_post["is_shown"] == 1].sort_values(
        ["post_id", "note_intercept", "note_id"], ascending=[True, False, True]
    )
    best = shown.drop_duplicates("post_id")[["post_id", "note_id", "note_intercept"]]
    best = best.astype({"note_id": "Int64"})  # stays exact through the left merge
    per_post = on_post.groupby("post_id").agg(
        notes_on_post=("note_id", "size"), helpful_notes_on_post=("is_shown", "sum")
    )
    frame = per_post.reset_index().merge(best, on="post_id", how="left")
    return pd.DataFrame(
        {
            "post_id": frame["post_id"].astype("int64"),
            "event_timestamp": ts,
            # 0 = no note shown: a nullable id would pass through float64 (pandas, Feast) and
            # lose the low bits of a 19-digit note id
            "shown_note_id": frame["note_id"].fillna(0).astype("int64"),
            "shown_note_intercept": frame["note_intercept"].astype("float64"),
            "notes_on_post": frame["notes_on_post"].astype("int64"),
            "helpful_notes_on_post": frame["helpful_notes_on_post"].astype("int64"),
        }
    )[features.table_columns("post_best_note")]


def _contributors(notes, ratings, result, out: Path, ts) -> pd.DataFrame:
    rep = pd.read_csv(
        out / "contributor_reputation.tsv", sep="\t", dtype={"raterParticipantId": str}
    )
    colluding = pd.read_csv(
        out / "colluding_raters.tsv", sep="\t", dtype={"raterParticipantId": str}
    )
    helpfulness = result.helpfulness_scores.set_index("raterParticipantId")
    given = ratings["raterParticipantId"].value_counts()
    written = notes["noteAuthorParticipantId"].value_counts()
    ids = pd.Index(sorted(set(given.index) | set(written.index)), name="participant_id")
    above = helpfulness["aboveHelpfulnessThreshold"].reindex(ids)
    return pd.DataFrame(
        {
            "participant_id": ids.astype(str),
            "event_timestamp": ts,
            "reputation": rep.set_index("raterParticipantId")["reputation"]
            .reindex(ids)
            .astype("float64")
            .to_numpy(),
            "rater_agree_ratio": helpfulness["raterAgreeRatio"]
            .reindex(ids)
            .astype("float64")
            .to_numpy(),
            "is_helpful_rater": above.eq(True).astype("int64").to_numpy(),
            "is_colluding": ids.isin(set(colluding["raterParticipantId"])).astype("int64"),
            "ratings_given": given.reindex(ids).fillna(0).astype("int64").to_numpy(),
            "notes_written": written.reindex(ids).fillna(0).astype("int64").to_numpy(),
        }
    )[features.table_columns("contributor_reputation")]


def _summary(tables, result, extras, now_millis: int, seed: int, solver: str) -> dict:
    status = tables["note_status"]
    counts = {s: int((status["status"] == s).sum()) for s in fmt.STATUSES}
    shown = status[status["is_shown"] == 1].sort_values(
        ["note_intercept", "note_id"], ascending=[False, True]
    )
    top = None
    if len(shown):
        row = shown.iloc[0]
        top = {
            "note_id": int(row["note_id"]),
            "post_id": None if pd.isna(row["post_id"]) else int(row["post_id"]),
            "note_intercept": round(float(row["note_intercept"]), 4),
            "num_ratings": int(row["num_ratings"]),
        }
    return {
        "now_millis": now_millis,
        "seed": seed,
        "solver": solver,
        "notes": len(status),
        "statuses": counts,
        "posts_with_shown_note": int((tables["post_best_note"]["shown_note_id"] != 0).sum()),
        "top_shown_note": top,
        "counts": result.counts,
        "collusion": extras["collusion"],
        "reputation": extras["reputation"],
        "out": str(scores_dir()),
    }


def read_run() -> dict:
    path = scores_dir() / RUN_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist: run `vigil notes run` (or its score step) first.")
    return json.loads(path.read_text())


def candidate_statuses() -> dict[str, int]:
    return read_run()["statuses"]


def status_line(summary: dict) -> str:
    total = max(1, summary["notes"])
    parts = ", ".join(
        f"{name} {n} ({100 * n / total:.1f}%)" for name, n in summary["statuses"].items()
    )
    return f"scored {summary['notes']} notes: {parts}"


def publish_tables() -> dict[str, dict]:
    """Merge each candidate table into features/<table>.parquet, keeping one row per entity and
    change; copy the run's status history to notes/state for the next run."""
    import shutil

    out: dict[str, dict] = {}
    target_dir = config.paths().features
    target_dir.mkdir(parents=True, exist_ok=True)
    for table in features.VIEWS:
        candidate = scores_dir() / f"{table}.parquet"
        if not candidate.is_file():
            raise UserError(f"{candidate} does not exist: run the score step first.")
        new = pd.read_parquet(candidate)
        target = target_dir / f"{table}.parquet"
        old = pd.read_parquet(target) if target.is_file() else None
        merged = merge_changes(old, new, table)
        if old is None or not merged.equals(old):
            _write_atomic(merged, target)
        out[table] = {"rows": len(merged), "added": len(merged) - (0 if old is None else len(old))}
    state_dir().mkdir(parents=True, exist_ok=True)
    shutil.copyfile(scores_dir() / HISTORY_STATE, state_dir() / HISTORY_STATE)
    log.info(
        "notes: published %s to %s",
        ", ".join(f"{t} {v['rows']} rows (+{v['added']})" for t, v in out.items()),
        target_dir,
    )
    return out


def merge_changes(old: pd.DataFrame | None, new: pd.DataFrame, table: str) -> pd.DataFrame:
    """``old`` + ``new``, one row per key and change: a row equal in every feature to the key's
    previous row is dropped, and a key's row at a time already present is replaced only when it
    differs. Floats are compared to 9 significant digits (reputation is iterated to 1e-11)."""
    _, key, _, fields = features.VIEWS[table]
    merged = new if old is None else pd.concat([old, new], ignore_index=True)
    merged["_signature"] = _signature(merged, list(fields))
    merged = merged.drop_duplicates([key, "event_timestamp", "_signature"], keep="first")
    merged = merged.drop_duplicates([key, "event_timestamp"], keep="last")
    merged = merged.sort_values([key, "event_timestamp"], kind="stable").reset_index(drop=True)
    signature = merged.pop("_signature")
    changed = signature.ne(signature.groupby(merged[key]).shift()).to_numpy()
    return merged[changed].reset_index(drop=True)


def _signature(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    parts = []
    for col in columns:
        values = frame[col]
        if pd.api.types.is_float_dtype(values):
            values = values.map(lambda v: f"{v:.9g}")
        parts.append(values.astype(str))
    return pd.concat(parts, axis=1).agg("\x1f".join, axis=1)
