"""Read the four download files (vigil/notes/format.py), validated, with bad rows quarantined.

- Tab separated with a header row; columns are found by name, so extra trailing columns (the
  public files grow new ones over time) are ignored, as the reference drops them.
- A file that is not in the format (a required column missing, or a column whose values are
  mostly not of its type or vocabulary) stops the run with one UserError naming the file, the
  column and the fix.
- Single bad rows (a number that does not parse, a value outside the vocabulary, an empty id, a
  line with the wrong number of fields, a duplicate rating) are set aside with their reason and
  counted; ``write_quarantine`` writes them to ``<out>/quarantine.tsv``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.errors import UserError
from vigil.notes import format as fmt

log = logging.getLogger(__name__)

# A column with more bad values than this share is a format problem, not a few bad rows.
MAX_BAD_COLUMN_SHARE = 0.5
QUARANTINE_FILE = "quarantine.tsv"

# Columns each reader keeps (the rest of the file is not needed for scoring).
USED_COLUMNS: dict[str, tuple[str, ...]] = {
    fmt.NOTES_FILE: (
        "noteId",
        "noteAuthorParticipantId",
        "createdAtMillis",
        "tweetId",
        "classification",
    ),
    fmt.RATINGS_FILE: (
        "noteId",
        "raterParticipantId",
        "createdAtMillis",
        "helpful",
        "notHelpful",
        "helpfulnessLevel",
    ),
    fmt.STATUS_HISTORY_FILE: tuple(fmt.column_names(fmt.STATUS_HISTORY_FILE)),
    fmt.ENROLLMENT_FILE: ("participantId", "enrollmentState", "modelingPopulation"),
}
# Ids that must not be empty.
ID_COLUMNS = frozenset({"noteAuthorParticipantId", "raterParticipantId", "participantId"})


@dataclass
class Quarantine:
    """Rows set aside: one entry per row, with the file, its line number and the reason."""

    rows: list[dict[str, object]] = field(default_factory=list)

    def add(self, file: str, lines: np.ndarray, reason: str, raw: pd.Series | None = None) -> None:
        texts = raw.tolist() if raw is not None else [""] * len(lines)
        for line, text in zip(lines.tolist(), texts, strict=True):
            self.rows.append({"file": file, "line": int(line), "reason": reason, "raw": text})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            key = f"{row['file']}: {row['reason']}"
            out[key] = out.get(key, 0) + 1
        return out


def _read_header(path: Path, file_name: str) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass the path of the {file_name} download file.")
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    missing = [col for col in fmt.REQUIRED_COLUMNS[file_name] if col not in header]
    if missing and file_name == fmt.NOTES_FILE:
        alias = {"noteAuthorParticipantId": "participantId"}  # the docs' name for the author
        missing = [col for col in missing if alias.get(col) not in header]
    if missing:
        raise UserError(
            f"{path}: column {missing[0]!r} is missing (header has {len(header)} columns: "
            f"{', '.join(header[:6])}{', ...' if len(header) > 6 else ''}); the scorer needs a "
            f"tab-separated {file_name} with a header row naming {', '.join(fmt.REQUIRED_COLUMNS[file_name])} "
            "(the public Community Notes download format, docs/notes.md)."
        )
    return header


def _read_strings(path: Path, file_name: str, quarantine: Quarantine) -> pd.DataFrame:
    """All used columns as strings ('' when empty), plus `_line` (1-based line in the file)."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    header = _read_header(path, file_name)
    is_notes = file_name == fmt.NOTES_FILE
    if is_notes and "noteAuthorParticipantId" not in header and "participantId" in header:
        header = ["noteAuthorParticipantId" if h == "participantId" else h for h in header]
    wanted = [col for col in USED_COLUMNS[file_name] if col in header]
    bad_lines: list[tuple[int, str]] = []

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        bad_lines.append((row.number or 0, (row.text or "")[:500]))
        return "skip"

    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1),
        parse_options=pa_csv.ParseOptions(
            delimiter="\t", quote_char=False, invalid_row_handler=on_invalid
        ),
        convert_options=pa_csv.ConvertOptions(
            include_columns=wanted,
            column_types={col: pa.string() for col in wanted},
            strings_can_be_null=False,
        ),
    )
    frame = table.to_pandas()
    for col in USED_COLUMNS[file_name]:
        if col not in frame.columns:
            frame[col] = ""
    frame["_line"] = np.arange(2, len(frame) + 2)
    if bad_lines:
        # Rows skipped by the parser shift later line numbers; the count is what matters here.
        quarantine.add(
            file_name,
            np.array([n for n, _ in bad_lines]),
            f"wrong number of fields (expected {len(header)})",
            pd.Series([t for _, t in bad_lines]),
        )
    return frame


def _check_column(
    frame: pd.DataFrame, bad: pd.Series, path: Path, file_name: str, col: str, what: str
) -> None:
    """One UserError when most of a column is bad; otherwise the caller quarantines the rows."""
    n_bad = int(bad.sum())
    if len(frame) and n_bad > MAX_BAD_COLUMN_SHARE * len(frame):
        example = frame.loc[bad, col].iloc[0]
        raise UserError(
            f"{path}: column {col!r} holds {n_bad} of {len(frame)} values that are not {what} "
            f"(first: {example!r}); the file is not in the {file_name} download format: check "
            "that it is the right file, tab separated, with the reference's column names in its "
            "header (docs/notes.md)."
        )


def _set_aside(
    frame: pd.DataFrame, bad: pd.Series, file_name: str, reason: str, quarantine: Quarantine
) -> pd.DataFrame:
    if bad.any():
        raw = frame.loc[bad].drop(columns="_line").astype(str).agg("\t".join, axis=1)
        quarantine.add(file_name, frame.loc[bad, "_line"].to_numpy(), reason, raw)
        frame = frame.loc[~bad].copy()
    return frame


def _parse_one(value: str, integer: bool) -> float | int | None:
    try:
        return int(value) if integer else float(value)
    except ValueError:
        return None


def _numbers(text: pd.Series, kind: str) -> pd.Series:
    """Parse a column of number strings ('' = missing): nullable Int64 for whole-number kinds
    (exact: note ids pass 2**53), float64 otherwise; missing where empty or unparsable.

    Fast path: pyarrow's C++ cast of the whole column (about 0.1 s per million rows); only a
    column with a value that does not parse takes the per-value Python path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    integer = kind != "float64"
    arrow = pa.array(text.to_numpy(dtype=object), type=pa.string())
    arrow = pc.if_else(pc.equal(arrow, ""), pa.scalar(None, pa.string()), arrow)
    try:
        parsed = pc.cast(arrow, pa.int64() if integer else pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = [None if v == "" else _parse_one(v, integer) for v in text.tolist()]
        return pd.Series(values, index=text.index, dtype="Int64" if integer else "float64")
    if not integer:
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")
    mask = pc.is_null(parsed).to_numpy(zero_copy_only=False)
    data = pc.fill_null(parsed, 0).to_numpy(zero_copy_only=False)
    return pd.Series(pd.arrays.IntegerArray(data, mask), index=text.index)


def _typed(
    frame: pd.DataFrame,
    path: Path,
    file_name: str,
    quarantine: Quarantine,
    required: tuple[str, ...],
) -> pd.DataFrame:
    """Parse numbers and check vocabularies; bad rows of used columns go to quarantine."""
    types = dict(fmt.COLUMNS[file_name])
    vocab = fmt.VOCABULARIES[file_name]
    for col in USED_COLUMNS[file_name]:
        kind = types[col]
        text = frame[col]
        empty = text == ""
        if col in ID_COLUMNS:
            bad = empty
            what = "non-empty participant ids"
        elif kind in ("int64", "int8", "float64"):
            number = _numbers(text, kind)
            bad = number.isna() & ~empty
            if col in required:
                bad |= empty
            what = "whole numbers" if kind != "float64" else "numbers"
        elif col in vocab:
            bad = ~empty & ~text.isin(vocab[col])
            what = f"one of {', '.join(vocab[col])}"
        else:
            continue
        _check_column(frame, bad, path, file_name, col, what)
        frame = _set_aside(frame, bad, file_name, f"{col}: not {what}", quarantine)
        if kind in ("int64", "int8", "float64") and col not in ID_COLUMNS:
            frame[col] = number[~bad]
            if col in required:
                frame[col] = frame[col].astype(np.int64)
    return frame


def read_notes(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    name = fmt.NOTES_FILE
    frame = _read_strings(path, name, quarantine)
    frame = _typed(frame, path, name, quarantine, ("noteId", "createdAtMillis"))
    frame = _set_aside(frame, frame["noteId"].duplicated(), name, "duplicate noteId", quarantine)
    frame["classification"] = frame["classification"].mask(frame["classification"] == "")
    log.info("%s: %d notes read from %s", name, len(frame), path)
    return frame.drop(columns="_line").reset_index(drop=True)


def helpful_num(frame: pd.DataFrame) -> pd.Series:
    """process_data.compute_helpful_num: helpfulnessLevel, else the 2021 form's helpful/notHelpful."""
    value = pd.Series(np.nan, index=frame.index)
    value[frame["helpful"] == 1] = 1.0
    value[frame["notHelpful"] == 1] = 0.0
    for level, number in fmt.HELPFUL_NUM.items():
        value[frame["helpfulnessLevel"] == level] = number
    return value


def read_ratings(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    name = fmt.RATINGS_FILE
    frame = _read_strings(path, name, quarantine)
    frame = _typed(frame, path, name, quarantine, ("noteId", "createdAtMillis"))
    frame["helpfulNum"] = helpful_num(frame)
    frame = _set_aside(frame, frame["helpfulNum"].isna(), name, "no helpfulness answer", quarantine)
    dup = frame.duplicated(["raterParticipantId", "noteId"], keep="first")
    frame = _set_aside(frame, dup, name, "duplicate rating (same rater and note)", quarantine)
    log.info("%s: %d ratings read from %s", name, len(frame), path)
    keep = ["noteId", "raterParticipantId", "createdAtMillis", "helpfulnessLevel", "helpfulNum"]
    return frame[keep].reset_index(drop=True)


def read_status_history(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    name = fmt.STATUS_HISTORY_FILE
    frame = _read_strings(path, name, quarantine)
    frame = _typed(frame, path, name, quarantine, ("noteId", "createdAtMillis"))
    frame = _set_aside(frame, frame["noteId"].duplicated(), name, "duplicate noteId", quarantine)
    for col in fmt.STATUS_COLUMNS_WITH_STATUS_VALUES + ("currentDecidedBy",):
        frame[col] = frame[col].mask(frame[col] == "")
    log.info("%s: %d notes' status history read from %s", name, len(frame), path)
    return frame.drop(columns="_line").reset_index(drop=True)


def read_enrollment(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    name = fmt.ENROLLMENT_FILE
    frame = _read_strings(path, name, quarantine)
    frame = _typed(frame, path, name, quarantine, ())
    log.info("%s: %d contributors read from %s", name, len(frame), path)
    return frame.drop(columns="_line").reset_index(drop=True)


def write_quarantine(quarantine: Quarantine, out_dir: Path) -> Path:
    path = out_dir / QUARANTINE_FILE
    frame = pd.DataFrame(quarantine.rows, columns=["file", "line", "reason", "raw"])
    frame.to_csv(path, sep="\t", index=False)
    return path


def write_tsv(frame: pd.DataFrame, path: Path) -> None:
    """Tab separated with a header row, empty for missing values (the download files' style)."""
    frame.to_csv(path, sep="\t", index=False, na_rep="")
