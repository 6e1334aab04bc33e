"""`vigil notes run` end to end on a small simulated download: real dbt (DuckDB), real GX gates,
real Feast (SQLite online store).

What the numbers are checked against, from outside the pipeline: the download files themselves
(lines, distinct ids counted with pandas), and `vigil notes score` run directly on the same files
(the statuses the pipeline publishes must be the scorer's)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim.notes import simulate_notes
from vigil.notes import outputs, pipeline, status_gate
from vigil.notes.format import CURRENTLY_RATED_HELPFUL as CRH

WORLD = {"contributors": 400, "notes": 600, "ratings": 12_000, "days": 10, "colluders": 10}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import os

    base = tmp_path_factory.mktemp("notes-pipeline")
    raw = base / "raw"
    simulate_notes(raw, seed=3, posts=500, **WORLD)
    old = os.environ.get("VIGIL_HOME")
    os.environ["VIGIL_HOME"] = str(base / "vigil")
    try:
        steps = pipeline.run(raw)
        yield {"raw": raw, "home": base / "vigil", "steps": steps, "base": base}
    finally:
        if old is None:
            os.environ.pop("VIGIL_HOME", None)
        else:
            os.environ["VIGIL_HOME"] = old


def _tsv(raw, name: str) -> pd.DataFrame:
    return pd.read_csv(raw / "notes" / name, sep="\t", dtype=str, keep_default_na=False)


def _warehouse(home, sql: str):
    import duckdb

    con = duckdb.connect(str(home / "warehouse" / "vigil.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_gate_passes_and_marts_match_the_files(run):
    steps, raw = run["steps"], run["raw"]
    for gate in ("gate_raw", "gate_warehouse", "gate_scores"):
        assert steps[gate]["success"], steps[gate]
    notes = _tsv(raw, "notes-00000.tsv")
    ratings = _tsv(raw, "ratings-00000.tsv")
    enrolled = _tsv(raw, "userEnrollment-00000.tsv")
    assert steps["ingest"]["read"] == steps["ingest"]["loaded"]
    [(n_notes, n_tallied)] = _warehouse(run["home"], "select count(*), sum(ratings) from notes")
    assert n_notes == len(notes) and n_tallied == len(ratings)
    [(n_ratings,)] = _warehouse(run["home"], "select count(*) from note_ratings")
    assert n_ratings == len(ratings)
    people = set(notes["noteAuthorParticipantId"]) | set(ratings["raterParticipantId"])
    people |= set(enrolled["participantId"])
    [(n_people, written, given)] = _warehouse(
        run["home"], "select count(*), sum(notes_written), sum(ratings_given) from contributors"
    )
    assert (n_people, written, given) == (len(people), len(notes), len(ratings))


def test_published_statuses_are_the_scorers(run, tmp_path):
    from vigil.cli import main

    raw = run["raw"] / "notes"
    out = tmp_path / "direct"
    assert (
        main(
            [
                "notes",
                "score",
                "--notes",
                str(raw / "notes-00000.tsv"),
                "--ratings",
                str(raw / "ratings-00000.tsv"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    direct = pd.read_csv(out / "scored_notes.tsv", sep="\t").set_index("noteId")
    published = pd.read_parquet(run["home"] / "features" / "note_status.parquet")
    published = published.set_index("note_id")
    assert len(published) == len(direct)
    assert (published["status"] == direct.loc[published.index, "finalRatingStatus"]).all()
    counts = run["steps"]["score"]["statuses"]
    assert counts == direct["finalRatingStatus"].value_counts().reindex(counts).fillna(0).to_dict()
    assert counts[CRH] > 0  # the comparison is not vacuous


def test_feast_serves_the_note_shown_on_a_post(run):
    from vigil.notes import serving

    best = pd.read_parquet(run["home"] / "features" / "post_best_note.parquet")
    shown = best[best["shown_note_id"] != 0].sort_values("post_id").iloc[0]
    online = serving.online(post_id=int(shown["post_id"]))
    assert online["shown_note_id"] == int(shown["shown_note_id"])
    assert online["status"] == CRH and online["is_shown"] == 1
    status = pd.read_parquet(run["home"] / "features" / "note_status.parquet")
    row = status[status["note_id"] == int(shown["shown_note_id"])].iloc[-1]
    assert online["note_intercept"] == pytest.approx(row["note_intercept"])
    assert online["note_intercept"] >= 0.40 and abs(online["note_factor"]) < 0.5
    assert online["note_id"] == int(shown["shown_note_id"])  # all 19 digits
    hidden = best[best["shown_note_id"] == 0].iloc[0]
    assert serving.online(post_id=int(hidden["post_id"]))["shown_note_id"] is None


def test_show_prints_status_scores_and_history(run, capsys):
    from vigil.cli import main

    best = pd.read_parquet(run["home"] / "features" / "post_best_note.parquet")
    shown = best[best["shown_note_id"] != 0].iloc[0]
    assert main(["notes", "show", "--post-id", str(int(shown["post_id"]))]) == 0
    text = capsys.readouterr().out
    assert f"note {int(shown['shown_note_id'])} on post {int(shown['post_id'])}" in text
    assert "CURRENTLY_RATED_HELPFUL  (shown)" in text and "history" in text


def test_rerun_on_the_same_files_changes_nothing(run):
    # The first run scored without a status history; its history feeds every later run (the
    # reference's stabilization and lock), so the steady state starts at the second scoring.
    pipeline.score()
    pipeline.publish(materialize=False)
    before = {p.name: p.read_bytes() for p in (run["home"] / "features").glob("*.parquet")}
    assert pipeline.ingest(run["raw"])["unchanged"]
    pipeline.score()
    shift = pipeline.gate("scores")["status_shift"]
    assert shift["passed"] and shift["largest"] < 0.01
    published = pipeline.publish(materialize=False)
    assert all(t["added"] == 0 for t in published["tables"].values())
    after = {p.name: p.read_bytes() for p in (run["home"] / "features").glob("*.parquet")}
    assert after == before


def test_a_jumping_status_distribution_stops_the_run(run):
    from vigil.errors import UserError

    state = status_gate.state_path()
    saved = state.read_text()
    now = outputs.candidate_statuses()
    total = sum(now.values())
    # the "previous run": 40 points more notes needing ratings than now (hand-made)
    shifted = dict(now)
    moved = int(0.4 * total)
    shifted["NEEDS_MORE_RATINGS"] += moved
    shifted["CURRENTLY_RATED_NOT_HELPFUL"] = max(0, now["CURRENTLY_RATED_NOT_HELPFUL"] - moved)
    state.write_text(json.dumps({"counts": shifted, "published_at_millis": 1}))
    try:
        with pytest.raises(UserError, match="status distribution shifted by more than 10 points"):
            pipeline.gate("scores")
    finally:
        state.write_text(saved)


def test_run_summary_names_every_step(run, capsys):
    pipeline.print_run(run["steps"])
    text = capsys.readouterr().out
    counts = run["steps"]["score"]["statuses"]
    assert f"CURRENTLY_RATED_HELPFUL {counts[CRH]} (" in text
    for word in ("ingest:", "gate raw:", "gate warehouse:", "gate scores:", "dbt marts:", "feast:"):
        assert word in text, word
