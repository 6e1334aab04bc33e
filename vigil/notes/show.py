"""`vigil notes show NOTE_ID | --post-id POST_ID`: a note's status, scores and history, readable.

Reads the published feature tables (``features/note_status.parquet``, ``post_best_note.parquet``:
one row per change, so a note's rows are its status history as the pipeline saw it) and the last
run's ``note_status_history.tsv`` (the reference's first / latest non-NMR status and lock times).
``--online`` reads the current values through the Feast online store instead.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from vigil import config
from vigil.errors import UserError


def _when(millis) -> str:
    import pandas as pd

    if millis is None or pd.isna(millis):
        return "-"
    return datetime.fromtimestamp(float(millis) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(name: str):
    import pandas as pd

    path = config.paths().features / f"{name}.parquet"
    if not path.is_file():
        raise UserError(f"{path} does not exist: run `vigil notes run` first.")
    return pd.read_parquet(path)


def note_rows(note_id: int):
    rows = _table("note_status")
    rows = rows[rows["note_id"] == int(note_id)].sort_values("event_timestamp")
    if rows.empty:
        raise UserError(
            f"note {note_id} is not among the scored notes: check the id (`vigil notes show "
            "--post-id N` lists a post's shown note)."
        )
    return rows


def shown_note(post_id: int) -> dict | None:
    """The post's latest post_best_note row as a dict, or None when the post has no notes."""
    rows = _table("post_best_note")
    rows = rows[rows["post_id"] == int(post_id)].sort_values("event_timestamp")
    if rows.empty:
        return None
    return rows.iloc[-1].to_dict()


def describe_note(note_id: int) -> list[str]:
    import pandas as pd

    rows = note_rows(note_id)
    now = rows.iloc[-1]
    lines = [
        f"note {int(now['note_id'])} on post {now['post_id']}",
        f"  status              {now['status']}" + ("  (shown)" if now["is_shown"] else ""),
        f"  since               {_when(now['status_since_millis'])}",
        f"  note intercept      {now['note_intercept']:.3f}  (helpful across viewpoints at >= 0.40)",
        f"  note factor         {now['note_factor']:.3f}  (|factor| < 0.5 to be shown)",
        f"  first-round         {now['first_round_intercept']:.3f}",
        f"  ratings             {int(now['num_ratings'])}",
    ]
    history = _reference_history(int(note_id))
    if history is not None:
        lines.append(
            f"  first non-NMR       {history.get('firstNonNMRStatus') or '-'} at "
            f"{_when(history.get('timestampMillisOfFirstNonNMRStatus'))}; locked: "
            f"{history.get('lockedStatus') or 'no'}"
        )
    lines.append("  history (one row per change seen by the pipeline):")
    for _, row in rows.iterrows():
        at = pd.Timestamp(row["event_timestamp"]).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"    {at}  {row['status']:<28} intercept {row['note_intercept']:.3f}  "
            f"factor {row['note_factor']:+.3f}  ratings {int(row['num_ratings'])}"
        )
    return lines


def _reference_history(note_id: int) -> dict | None:
    import pandas as pd

    path = config.paths().home / "notes" / "state" / "note_status_history.parquet"
    if not path.is_file():
        return None
    frame = pd.read_parquet(path)
    match = frame[frame["noteId"] == note_id]
    if match.empty:
        return None
    return {k: (None if pd.isna(v) else v) for k, v in match.iloc[0].to_dict().items()}


def describe_post(post_id: int) -> list[str]:
    row = shown_note(post_id)
    if row is None:
        return [f"post {post_id}: no notes"]
    head = (
        f"post {post_id}: {int(row['notes_on_post'])} notes, "
        f"{int(row['helpful_notes_on_post'])} rated helpful"
    )
    if int(row["shown_note_id"]) == 0:
        return [head, "  no note is shown (none is CURRENTLY_RATED_HELPFUL)"]
    return [
        head,
        "  shown note:",
        *("  " + line for line in describe_note(int(row["shown_note_id"]))),
    ]


def describe_online(post_id: int | None, note_id: int | None) -> list[str]:
    from vigil.notes import serving

    values = serving.online(post_id=post_id, note_id=note_id)
    return [f"{key:<24} {value}" for key, value in values.items()]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("note_id", nargs="?", type=int, help="a noteId")
    parser.add_argument(
        "--post-id", "--post", dest="post_id", type=int, help="show the note shown on this post"
    )
    parser.add_argument(
        "--online", action="store_true", help="read the current values from the Feast online store"
    )


def run(args: argparse.Namespace) -> list[str]:
    if (args.note_id is None) == (args.post_id is None):
        raise UserError("give a note id or --post-id N (one of them).")
    if args.online:
        return describe_online(args.post_id, args.note_id)
    if args.post_id is not None:
        return describe_post(args.post_id)
    return describe_note(args.note_id)
