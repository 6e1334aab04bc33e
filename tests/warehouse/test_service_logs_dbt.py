"""The service logs through the real pipeline: hand-made data root -> `vigil ingest` -> dbt
(DuckDB, the staging and marts stages as `vigil dbt` runs them) -> the training set's labels.

Expected rows are worked out by hand from tests/support/servicelogs.py: post 10 was labeled
harmful from the reported queue, then its removal was appealed and reversed, so it is benign in
post_labels and in training; post 11's upheld appeal makes it harmful with the removal's type;
post 13 has only an appeal label; post 12 keeps its random-queue label; the appeal on post 99
(not in the lake) waits for its post.
"""

from __future__ import annotations

import duckdb
import pytest
import servicelogs as sl

from vigil import config
from vigil.lake.ingest import ingest
from vigil.warehouse import dbt as warehouse


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home = tmp_path_factory.mktemp("service-logs")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(home))
    try:
        ingest(sl.write_root(home))
        for stage in ("staging", "marts"):
            warehouse.build(stage)
        yield home
    finally:
        mp.undo()


def _rows(home, query: str) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse" / "vigil.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_staging_models_hold_the_valid_lines(built):
    decisions = _rows(
        built,
        "select decision_id, post_id, decision, decision_trigger, is_shadow, probability, "
        "student_score, removal_path, head_score from main.stg_lake__decisions order by decision_id",
    )
    assert decisions == [
        (f"{sl.DAY1_FILE}:1", 10, "remove", "created", False, 0.97, 0.93, "cascade", None),
        (f"{sl.DAY1_FILE}:2", 10, "remove", "shadow", True, 0.97, 0.93, "head", 0.88),
        # logged without path and head: null
        (f"{sl.DAY2_FILE}:1", 10, "allow", "appeal_reversed", False, None, None, None, None),
    ]
    appeals = _rows(
        built,
        "select appeal_id, post_id, is_harmful, harm_types, label_queue, model_id "
        "from main.stg_lake__appeal_labels order by appeal_id",
    )
    assert appeals == [
        (1, 10, False, "", "appeal", "m1"),
        (2, 11, True, "hate", "appeal", "m1"),
        (3, 13, False, "", "appeal", "m1"),
        (4, 99, False, "", "appeal", "m1"),
    ]


def test_post_labels_take_the_appeal_verdict_as_the_latest_label(built):
    rows = _rows(
        built,
        "select post_id, is_harmful, is_spam, is_hate, queue, sampling_weight "
        "from main.post_labels order by post_id",
    )
    assert rows == [
        (10, False, False, False, "appeal", 1.0),  # reported harmful, then reversed
        (11, True, False, True, "appeal", 1.0),  # reported spam, upheld as hate
        (12, False, False, False, "random", 40.0),  # no appeal
        (13, False, False, False, "appeal", 1.0),  # only the appeal
    ]


def test_a_reversed_appeal_is_a_benign_example_in_the_training_set(built, monkeypatch):
    from training import datasets

    monkeypatch.setenv("VIGIL_HOME", str(built))
    assert config.paths().home == built
    lab = datasets.labeled_posts(datasets._read_mart("post_labels"), datasets._read_mart("posts"))
    by_post = lab.set_index("post_id")
    assert sorted(by_post.index) == [10, 11, 12, 13]
    assert not by_post.at[10, "is_harmful"] and by_post.at[10, "queue"] == "appeal"
    assert by_post.at[11, "is_harmful"] and by_post.at[11, "is_hate"]
    assert by_post.at[10, "author_id"] == sl.POSTS[10]


def test_rebuild_after_an_unchanged_ingest_gives_the_same_rows(built, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(built))
    before = _rows(built, "select * from main.post_labels order by post_id")
    result = ingest(built / "raw")
    assert result["loaded"] == 0
    warehouse.build("marts")
    assert _rows(built, "select * from main.post_labels order by post_id") == before
