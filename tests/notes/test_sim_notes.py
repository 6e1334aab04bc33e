"""The simulated Community Notes world keeps the public download format and the issue's promises.

Expected values come from the format module's lists (the reference's columns and vocabularies),
the issue (two camps of unequal size, truth only under _truth/, bursts within minutes, new
contributors during the month) and the world's stated parameters, never from the files themselves.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.notes import simulate_notes
from vigil.cli import main as cli_main
from vigil.errors import UserError
from vigil.notes import format as fmt

START = date(2026, 10, 1)
START_MS = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp() * 1000)
DAYS = 10
END_MS = START_MS + DAYS * 86_400_000
SMALL = {"contributors": 400, "notes": 500, "ratings": 12_000, "days": DAYS, "colluders": 10}
TRUTH_COLUMNS = {
    "helpfulness",
    "slant",
    "is_colluder",
    "is_colluding",
    "camp",
    "leniency",
    "factor",
}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("notes-raw")
    simulate_notes(raw, seed=11, start=START, **SMALL)
    return raw


def test_the_four_files_have_the_download_columns_in_order(world):
    files = sorted(p.name for p in (world / "notes").iterdir())
    assert files == sorted(
        [fmt.NOTES_FILE, fmt.RATINGS_FILE, fmt.STATUS_HISTORY_FILE, fmt.ENROLLMENT_FILE]
    )
    for name in files:
        header = (world / "notes" / name).read_text().split("\n", 1)[0].split("\t")
        assert header == fmt.column_names(name), name


def test_values_parse_with_their_types_and_vocabularies(world):
    for name, columns in fmt.COLUMNS.items():
        df = _read(world / "notes" / name)
        assert len(df) > 0
        for col, kind in columns:
            values = df[col]
            if kind == "int64":
                assert values.str.fullmatch(r"-?\d+").all(), (name, col)
            elif kind == "int8" and col == "version":
                assert values.isin(["1", "2"]).all()  # the rating form's version
            elif kind == "int8":
                assert values.isin(["", "0", "1"]).all(), (name, col)
            elif kind == "float64":
                assert values.str.fullmatch(r"(-?\d+(\.\d+)?)?").all(), (name, col)
            elif kind == "text":
                assert not values.str.contains("\t").any()
        for col, vocabulary in fmt.VOCABULARIES[name].items():
            assert set(df[col]) <= {*vocabulary, ""}, (name, col, set(df[col]) - set(vocabulary))
        for col in fmt.REQUIRED_COLUMNS[name]:
            assert (df[col] != "").all(), (name, col)


def test_ratings_refer_to_notes_and_respect_time_and_authorship(world):
    notes = _read(world / "notes" / fmt.NOTES_FILE)
    ratings = _read(world / "notes" / fmt.RATINGS_FILE)
    assert abs(len(ratings) - SMALL["ratings"]) / SMALL["ratings"] < 0.1
    assert len(notes) == SMALL["notes"]
    assert notes["noteId"].is_unique
    merged = ratings.merge(notes, on="noteId", suffixes=("", "_note"), how="left")
    assert merged["createdAtMillis_note"].ne("").all()
    t_rating = merged["createdAtMillis"].astype("int64")
    t_note = merged["createdAtMillis_note"].astype("int64")
    assert (t_rating > t_note).all()
    assert t_rating.between(START_MS, END_MS - 1).all()
    assert (merged["raterParticipantId"] != merged["noteAuthorParticipantId"]).all()
    assert not ratings.duplicated(["noteId", "raterParticipantId"]).any()
    assert (ratings["ratedOnTweetId"] == merged["tweetId"]).all()
    assert ratings["raterParticipantId"].str.fullmatch(r"[0-9A-F]{64}").all()
    # tags follow the level: no helpful tag on a NOT_HELPFUL rating and vice versa
    helpful_tags = ratings[list(fmt.HELPFUL_TAGS)].astype(int).sum(axis=1)
    not_helpful_tags = ratings[list(fmt.NOT_HELPFUL_TAGS)].astype(int).sum(axis=1)
    assert (helpful_tags[ratings["helpfulnessLevel"] == fmt.NOT_HELPFUL] == 0).all()
    assert (not_helpful_tags[ratings["helpfulnessLevel"] == fmt.HELPFUL] == 0).all()
    assert set(ratings["helpfulnessLevel"]) == set(fmt.HELPFULNESS_LEVELS)


def test_truth_only_under_truth(world):
    for path in (world / "notes").iterdir():
        header = set(path.read_text().split("\n", 1)[0].split("\t"))
        assert header == set(fmt.column_names(path.name))
        assert not header & TRUTH_COLUMNS
    truth = sorted(p.name for p in (world / "_truth").iterdir())
    assert truth == ["notes_contributors.jsonl", "notes_notes.jsonl", "notes_summary.json"]


def test_camps_colluders_and_new_contributors_as_the_issue_describes(world):
    people = pd.read_json(world / "_truth" / "notes_contributors.jsonl", lines=True)
    enrollment = _read(world / "notes" / fmt.ENROLLMENT_FILE)
    assert len(people) == SMALL["contributors"] == len(enrollment)
    majority = (people["camp"] == 1).mean()
    assert 0.58 < majority < 0.72  # 65/35 drawn for 400 people: +-3.5 sd
    assert people["is_colluder"].sum() == SMALL["colluders"]
    assert (people.loc[people["is_colluder"], "camp"] == -1).all()
    joined = people["joined_at_ms"] >= START_MS
    assert 0.15 < joined.mean() < 0.35  # 25% by default
    state = enrollment.set_index("participantId")["enrollmentState"]
    assert (state[people.loc[~joined, "participantId"]] == "earnedIn").all()
    assert (state[people.loc[joined, "participantId"]] == "newUser").any()


def test_colluders_rate_their_group_s_notes_helpful_within_minutes(world):
    people = pd.read_json(world / "_truth" / "notes_contributors.jsonl", lines=True)
    truth = pd.read_json(world / "_truth" / "notes_notes.jsonl", lines=True, dtype={"noteId": str})
    ratings = _read(world / "notes" / fmt.RATINGS_FILE)
    notes = _read(world / "notes" / fmt.NOTES_FILE).set_index("noteId")
    members = set(people.loc[people["is_colluder"], "participantId"])
    group_notes = set(truth.loc[truth["is_colluding"], "noteId"])
    assert len(group_notes) >= 1.5 * SMALL["colluders"]
    burst = ratings[
        ratings["noteId"].isin(group_notes) & ratings["raterParticipantId"].isin(members)
    ]
    # a member who missed a burst (20%) may still rate the note later, like anyone
    assert (burst["helpfulnessLevel"] == fmt.HELPFUL).mean() > 0.9
    delay_min = (
        burst["createdAtMillis"].astype("int64")
        - notes.loc[burst["noteId"], "createdAtMillis"].astype("int64").to_numpy()
    ) / 60_000
    assert delay_min.quantile(0.9) < 30  # within minutes, unlike honest ratings (median ~3 h)
    per_note = burst.groupby("noteId").size()
    assert per_note.mean() > 0.6 * (SMALL["colluders"] - 1)  # 80% of the other members join


def test_ratings_follow_viewpoint_times_slant(world):
    """Strongly slanted notes split the camps in the slant's direction; neutral ones do not."""
    people = pd.read_json(world / "_truth" / "notes_contributors.jsonl", lines=True)
    truth = pd.read_json(world / "_truth" / "notes_notes.jsonl", lines=True, dtype={"noteId": str})
    ratings = _read(world / "notes" / fmt.RATINGS_FILE)
    r = ratings.merge(people, left_on="raterParticipantId", right_on="participantId").merge(
        truth, on="noteId"
    )
    r = r[~r["is_colluding"]]
    r["y"] = r["helpfulnessLevel"].map(fmt.HELPFUL_NUM)
    plus = r[r["slant"] > 0.35].groupby("camp")["y"].mean()
    minus = r[r["slant"] < -0.35].groupby("camp")["y"].mean()
    neutral = r[r["slant"].abs() < 0.05].groupby("camp")["y"].mean()
    # propensity gap between camps: 2 x |factor| ~1 x slant >= 0.35 -> well over 0.3 in rating
    assert plus[1] - plus[-1] > 0.3
    assert minus[-1] - minus[1] > 0.3
    assert abs(neutral[1] - neutral[-1]) < 0.1
    # more helpful notes are rated higher (true helpfulness enters the propensity directly)
    by_note = r.groupby("noteId").agg(y=("y", "mean"), h=("helpfulness", "first"), k=("y", "size"))
    by_note = by_note[by_note["k"] >= 10]
    assert by_note["y"].corr(by_note["h"], method="spearman") > 0.6


def _digest(raw: Path) -> str:
    h = hashlib.sha256()
    for path in sorted([*(raw / "notes").iterdir(), *(raw / "_truth").iterdir()]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_by_seed(tmp_path):
    sizes = {"contributors": 120, "notes": 150, "ratings": 2500, "days": 5, "colluders": 6}
    simulate_notes(tmp_path / "a", seed=5, **sizes)
    simulate_notes(tmp_path / "b", seed=5, **sizes)
    simulate_notes(tmp_path / "c", seed=6, **sizes)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    first = _digest(tmp_path / "a")
    simulate_notes(tmp_path / "a", seed=5, **sizes)  # a rerun replaces, never appends
    assert _digest(tmp_path / "a") == first


def test_notes_go_on_the_posts_world_s_posts(tmp_path):
    truth = tmp_path / "_truth"
    truth.mkdir()
    posts = [
        {"post_id": 1000 + i, "author_id": i, "created_at": "2026-10-01T00:00:00.000Z",
         "is_harmful": i % 4 == 0, "harm_types": ["spam"] if i % 4 == 0 else []}
        for i in range(40)
    ]  # fmt: skip
    (truth / "posts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in posts))
    simulate_notes(tmp_path, contributors=100, notes=200, ratings=2000, days=5, colluders=4)
    notes = _read(tmp_path / "notes" / fmt.NOTES_FILE)
    ids = notes["tweetId"].astype(int)
    assert set(ids) <= {p["post_id"] for p in posts}
    harmful = {p["post_id"] for p in posts if p["is_harmful"]}
    # half the notes on the 10 harmful posts (p = 0.5), not a quarter as uniform picks would give
    assert 0.38 < ids.isin(harmful).mean() < 0.62
    assert (truth / "posts.jsonl").exists()  # the posts world's truth is left alone


def test_bad_sizes_end_in_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="--contributors 10 is too small"):
        simulate_notes(tmp_path, contributors=10)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        simulate_notes(tmp_path / "file")
    with pytest.raises(UserError, match="--colluders 500"):
        simulate_notes(tmp_path, contributors=1000, colluders=500)


def test_cli_writes_the_world(tmp_path, capsys):
    rc = cli_main(
        ["simulate-notes", "--out", str(tmp_path), "--contributors", "100", "--notes", "120",
         "--ratings", "1500", "--days", "5", "--colluders", "4", "--seed", "2"]
    )  # fmt: skip
    assert rc == 0
    assert "ratings" in capsys.readouterr().out
    summary = json.loads((tmp_path / "_truth" / "notes_summary.json").read_text())
    ratings = _read(tmp_path / "notes" / fmt.RATINGS_FILE)
    assert summary["ratings"] == len(ratings)
    assert summary["notes"] == 120
    assert np.isclose(len(ratings), 1500, rtol=0.15)


def test_notes_score_names_the_colluders_and_lowers_their_reputation(world, tmp_path):
    """`vigil notes score` on the simulated download: the colluding raters it writes are the
    world's colluders (graded on truth here, on the simulator's side), and their reputation is
    below every-other-rater's median."""
    notes = world / "notes"
    rc = cli_main(
        ["notes", "score", "--notes", str(notes / fmt.NOTES_FILE),
         "--ratings", str(notes / fmt.RATINGS_FILE), "--out", str(tmp_path)]
    )  # fmt: skip
    assert rc == 0
    people = pd.read_json(world / "_truth" / "notes_contributors.jsonl", lines=True)
    colluders = set(people.loc[people["is_colluder"], "participantId"])
    found = set(_read(tmp_path / "colluding_raters.tsv")["raterParticipantId"])
    assert len(found & colluders) >= 0.9 * len(colluders)
    assert len(found & colluders) >= 0.9 * len(found)
    rep = pd.read_csv(
        tmp_path / "contributor_reputation.tsv", sep="\t", dtype={"raterParticipantId": str}
    )
    is_colluder = rep["raterParticipantId"].isin(colluders)
    assert rep.loc[is_colluder, "reputation"].max() < rep.loc[~is_colluder, "reputation"].median()
    run = json.loads((tmp_path / "scoring_run.json").read_text())
    assert run["collusion"]["raters_flagged"] == len(found)
