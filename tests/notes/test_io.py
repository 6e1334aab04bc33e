"""Reading the download files: a malformed file is one clear error; bad rows are quarantined."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vigil.errors import UserError
from vigil.notes import format as fmt
from vigil.notes import io


def _ratings_file(
    path: Path, rows: list[dict], drop: str | None = None, extra: bool = False
) -> Path:
    cols = fmt.column_names(fmt.RATINGS_FILE)
    frame = pd.DataFrame([{c: row.get(c, "") for c in cols} for row in rows], columns=cols)
    if drop:
        frame = frame.drop(columns=drop)
    if extra:
        frame["aNewColumn"] = "whatever"
    file = path / fmt.RATINGS_FILE
    frame.to_csv(file, sep="\t", index=False)
    return file


def _rating(note: int, rater: str, level: str = fmt.HELPFUL, at: str = "1767225600000") -> dict:
    return {
        "noteId": str(note),
        "raterParticipantId": rater,
        "createdAtMillis": at,
        "helpfulnessLevel": level,
    }


def test_missing_required_column_names_the_file_the_column_and_the_fix(tmp_path):
    file = _ratings_file(tmp_path, [_rating(1, "a")], drop="helpfulnessLevel")
    with pytest.raises(UserError) as err:
        io.read_ratings(file, io.Quarantine())
    text = str(err.value)
    assert str(file) in text and "'helpfulnessLevel'" in text and "header row naming" in text


def test_a_column_of_unparsable_numbers_is_one_error(tmp_path):
    file = _ratings_file(tmp_path, [_rating(1, f"r{i}", at="yesterday") for i in range(5)])
    with pytest.raises(UserError) as err:
        io.read_ratings(file, io.Quarantine())
    assert "'createdAtMillis'" in str(err.value) and "whole numbers" in str(err.value)


def test_a_column_of_unknown_vocabulary_is_one_error(tmp_path):
    file = _ratings_file(tmp_path, [_rating(1, f"r{i}", level="YES") for i in range(5)])
    with pytest.raises(UserError) as err:
        io.read_ratings(file, io.Quarantine())
    assert "'helpfulnessLevel'" in str(err.value) and "SOMEWHAT_HELPFUL" in str(err.value)


def test_bad_rows_are_quarantined_with_their_reason_and_counted(tmp_path):
    rows = [_rating(1, f"r{i}") for i in range(10)]
    rows.append(_rating(2, "r0", level="MAYBE"))  # unknown level
    rows.append(_rating(3, "r0", at="12.5"))  # not a whole number
    rows.append(_rating(1, "r1", level=fmt.NOT_HELPFUL))  # duplicate of (r1, note 1)
    rows.append(_rating(4, "", level=fmt.HELPFUL))  # empty rater id
    rows.append({**_rating(5, "r2", level=""), "helpful": "1"})  # the 2021 form: helpful=1
    rows.append(_rating(6, "r3", level=""))  # no answer at all
    file = _ratings_file(tmp_path, rows, extra=True)
    with file.open("a") as handle:
        handle.write("7\tr4\tcut line\n")  # wrong number of fields
    quarantine = io.Quarantine()
    ratings = io.read_ratings(file, quarantine)
    assert len(ratings) == 11
    assert ratings.loc[ratings["noteId"] == 5, "helpfulNum"].tolist() == [1.0]
    # The duplicate keeps the first answer.
    assert ratings.loc[
        (ratings["noteId"] == 1) & (ratings["raterParticipantId"] == "r1"), "helpfulNum"
    ].tolist() == [1.0]
    reasons = {row["reason"] for row in quarantine.rows}
    assert len(quarantine.rows) == 6
    assert any(r.startswith("helpfulnessLevel") for r in reasons)
    assert any(r.startswith("createdAtMillis") for r in reasons)
    assert any(r.startswith("raterParticipantId") for r in reasons)
    assert any(r.startswith("wrong number of fields") for r in reasons)
    assert "duplicate rating (same rater and note)" in reasons
    assert "no helpfulness answer" in reasons
    out = io.write_quarantine(quarantine, tmp_path)
    assert len(pd.read_csv(out, sep="\t")) == 6


def test_notes_file_accepts_the_docs_participantId_header(tmp_path):
    file = tmp_path / fmt.NOTES_FILE
    file.write_text(
        "noteId\tparticipantId\tcreatedAtMillis\ttweetId\tclassification\n"
        f"1\ta\t1767225600000\t9\t{fmt.MISLEADING}\n"
        "2\tb\t1767225600000\t9\t\n"
    )
    notes = io.read_notes(file, io.Quarantine())
    assert notes["noteAuthorParticipantId"].tolist() == ["a", "b"]
    assert notes["classification"].isna().tolist() == [False, True]


def test_enrollment_file_keeps_its_participantId_column(tmp_path):
    # participantId is the enrollment file's own key: only the notes file's header may alias it
    file = tmp_path / fmt.ENROLLMENT_FILE
    file.write_text(
        "participantId\tenrollmentState\tsuccessfulRatingNeededToEarnIn\n"
        f"a\t{fmt.ENROLLMENT_STATES[0]}\t5\n"
        f"b\t{fmt.ENROLLMENT_STATES[-1]}\t5\n"
    )
    enrollment = io.read_enrollment(file, io.Quarantine())
    assert enrollment["participantId"].tolist() == ["a", "b"]
    assert enrollment["enrollmentState"].tolist() == [
        fmt.ENROLLMENT_STATES[0],
        fmt.ENROLLMENT_STATES[-1],
    ]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        io.read_notes(tmp_path / "nope.tsv", io.Quarantine())


def test_real_size_note_ids_are_read_exactly(tmp_path):
    """Public noteIds are past 2**53; a float on the way would change them."""
    big = 1_700_000_000_000_000_123
    file = _ratings_file(
        tmp_path, [_rating(big, f"r{i}") for i in range(3)] + [_rating(big + 1, "r0")]
    )
    ratings = io.read_ratings(file, io.Quarantine())
    assert ratings["noteId"].tolist() == [big, big, big, big + 1]
    assert ratings["noteId"].dtype == "int64"
    # The same on the per-value path, taken when one value in the column does not parse.
    file = _ratings_file(
        tmp_path, [_rating(big, f"r{i}") for i in range(3)] + [_rating(big + 1, "r0", at="soon")]
    )
    quarantine = io.Quarantine()
    ratings = io.read_ratings(file, quarantine)
    assert ratings["noteId"].tolist() == [big, big, big] and len(quarantine.rows) == 1
