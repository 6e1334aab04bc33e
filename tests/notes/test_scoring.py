"""The whole scorer on a generated world: the fast solver's statuses agree with the reference's
Adam, and `vigil notes score` writes the reference's files and columns."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from vigil.notes import cli, scoring
from vigil.notes import format as fmt
from vigil.notes.config import ScoringConfig
from vigil.notes.latent import latent_world


@pytest.fixture(scope="module")
def world():
    notes, ratings = latent_world(30_000, seed=5)
    ratings = ratings.assign(helpfulNum=ratings["helpfulnessLevel"].map(fmt.HELPFUL_NUM))
    return notes, ratings


@pytest.fixture(scope="module")
def results(world):
    notes, ratings = world
    now = int(ratings["createdAtMillis"].max())
    return {
        solver: scoring.score(
            notes, ratings, ScoringConfig(), solver=solver, seed=0, now_millis=now
        )
        for solver in ("als", "adam")
    }


def test_statuses_agree_between_the_fast_solver_and_adam(results):
    als = results["als"].scored_notes.set_index("noteId")
    adam = results["adam"].scored_notes.set_index("noteId").loc[als.index]
    agree = (als["finalRatingStatus"] == adam["finalRatingStatus"]).mean()
    assert agree >= 0.98, agree
    # Every status occurs, so the agreement is not only on one class.
    assert set(als["finalRatingStatus"]) == set(fmt.STATUSES)
    gap = (als["coreNoteIntercept"] - adam["coreNoteIntercept"]).abs().dropna()
    assert gap.quantile(0.99) <= 0.02


def test_first_round_parity_on_the_filtered_ratings(results):
    first = results["als"].prescoring_notes.merge(
        results["adam"].prescoring_notes, on="noteId", suffixes=("_als", "_adam")
    )
    gap = (first["internalNoteIntercept_als"] - first["internalNoteIntercept_adam"]).abs()
    assert (gap <= 0.02).mean() >= 0.99
    corr = np.corrcoef(first["internalNoteFactor1_als"], first["internalNoteFactor1_adam"])[0, 1]
    assert corr >= 0.99


def test_second_round_uses_only_raters_above_the_helpfulness_threshold(results, world):
    result = results["als"]
    scores = result.helpfulness_scores
    helpful = scores.loc[scores["aboveHelpfulnessThreshold"], "raterParticipantId"]
    assert 0 < len(helpful) < len(scores)
    assert (scores.loc[scores["aboveHelpfulnessThreshold"], "raterAgreeRatio"] >= 0.66).all()
    round2 = scores.dropna(subset=["coreRaterIntercept"])["raterParticipantId"]
    assert set(round2) <= set(helpful)
    assert result.counts["ratings_round2"] < result.counts["ratings_after_filters"]


def _write(frame: pd.DataFrame, name: str, path, extra: bool = False) -> None:
    frame = frame.copy()
    for col in fmt.column_names(name):
        if col not in frame:
            frame[col] = ""
    frame = frame[fmt.column_names(name)]
    if extra:
        frame["someFutureColumn"] = "x"
    frame.to_csv(path / name, sep="\t", index=False)


def test_cli_writes_the_reference_files_from_a_download_with_extra_columns(world, tmp_path):
    notes, ratings = world
    _write(notes, fmt.NOTES_FILE, tmp_path, extra=True)
    _write(ratings.drop(columns="helpfulNum"), fmt.RATINGS_FILE, tmp_path, extra=True)
    out = tmp_path / "out"
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(
        [
            "score",
            "--notes",
            str(tmp_path / fmt.NOTES_FILE),
            "--ratings",
            str(tmp_path / fmt.RATINGS_FILE),
            "--out",
            str(out),
        ]
    )
    assert cli.run(args) == 0
    prescoring = pd.read_csv(out / "prescoring_note_model_output.tsv", sep="\t")
    assert list(prescoring.columns[:3]) == [
        "noteId",
        "internalNoteIntercept",
        "internalNoteFactor1",
    ]
    scored = pd.read_csv(out / "scored_notes.tsv", sep="\t")
    assert {"noteId", "coreNoteIntercept", "coreNoteFactor1", "finalRatingStatus"} <= set(
        scored.columns
    )
    assert len(scored) == len(notes)
    helpfulness = pd.read_csv(out / "helpfulness_scores.tsv", sep="\t")
    assert {"raterParticipantId", "raterAgreeRatio", "aboveHelpfulnessThreshold"} <= set(
        helpfulness.columns
    )
    history = pd.read_csv(out / "note_status_history.tsv", sep="\t")
    assert list(history.columns) == fmt.column_names(fmt.STATUS_HISTORY_FILE)
    # A second run reads the first run's history back (the stabilization path).
    args2 = parser.parse_args(
        [
            "score",
            "--notes",
            str(tmp_path / fmt.NOTES_FILE),
            "--ratings",
            str(tmp_path / fmt.RATINGS_FILE),
            "--status",
            str(out / "note_status_history.tsv"),
            "--out",
            str(tmp_path / "out2"),
        ]
    )
    assert cli.run(args2) == 0
    again = pd.read_csv(tmp_path / "out2" / "scored_notes.tsv", sep="\t")
    # Same ratings, same seed: the CRH notes of run 1 stay CRH (they were CRH before).
    first_crh = set(
        scored.loc[scored["finalRatingStatus"] == fmt.CURRENTLY_RATED_HELPFUL, "noteId"]
    )
    second_crh = set(again.loc[again["finalRatingStatus"] == fmt.CURRENTLY_RATED_HELPFUL, "noteId"])
    assert first_crh and first_crh == second_crh
