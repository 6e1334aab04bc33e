"""Re-running the posts-side marts changes nothing (docs/warehouse.md "Reproducible builds").

The cause this guards against: DuckDB's parallel hash aggregation adds a group's doubles in an
order set by thread scheduling, so ``sum()`` of a DOUBLE expression came out different in the last
bit from one build to the next. On a 3,000-user world with post topics two builds gave 1,932
``user_topic_interest.interest`` and 934 ``user_author_affinity.affinity`` values that differed
(<= 6.9e-16 relative). The models now add with ``vigil.ordered_sum`` (dbt/macros/reproducible.sql).

Here the two models' SQL, compiled by dbt, runs on a hand-made table (600,000 engagement rows, so
DuckDB splits every group across threads) at 1 and at 4 threads: the reference is the other run,
so the bits must agree exactly. The same SQL with the old ``sum()`` put back must differ, or the
table could not catch the hazard. And the feature export writes every table sorted by its key
(DuckDB's own row order differed between two builds).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from vigil import config
from vigil.ranking import feature_tables
from vigil.warehouse import dbt as warehouse

pytestmark = pytest.mark.dbt

MODELS = {
    "user_topic_interest": (["user_id", "topic_id", "event_timestamp"], ["interest"]),
    "user_author_affinity": (["user_id", "author_id", "event_timestamp"], ["affinity"]),
}
LABEL_MODELS = ("stg_lake__labels", "post_labels")
ORDERED = "list_sum(list_sort(list(cast("
ORDERED_END = " as double))))"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The two models' SQL as dbt compiles it (post topics present, so the full SQL)."""
    home = tmp_path_factory.mktemp("marts-reproducible")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(home))
    try:
        feature_tables.write_post_topics([1, 2], np.array([[0.5, 0.5], [1.0, 0.0]]), "v0")
        warehouse.run_dbt("compile", [*MODELS, *LABEL_MODELS])
        base = warehouse.dbt_dirs()["target"] / "compiled" / "vigil" / "models"
        return {m: next(base.glob(f"**/{m}.sql")).read_text() for m in [*MODELS, *LABEL_MODELS]}
    finally:
        mp.undo()


@functools.cache
def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n, posts, topics = 600_000, 2_000, 4
    event_at = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 10 * 86_400_000, n), unit="ms"
    )
    post_id = rng.integers(0, posts, n)
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, n),
            "post_id": post_id,
            "target_user_id": post_id % 25,
            "action": rng.choice(["like", "reply", "share"], n),
            "event_at": event_at,
            "event_date": event_at.tz_convert("UTC").date,
        }
    )
    weights = rng.dirichlet(np.ones(topics), posts)
    post_topics = pd.DataFrame(
        {
            "post_id": np.repeat(np.arange(posts), topics),
            "topic_id": np.tile(np.arange(topics), posts),
            "topic_weight": weights.reshape(-1),
        }
    )
    return events, post_topics


def _inputs(con) -> None:
    """Hand-made upstream tables under the names the compiled SQL reads (vigil.main.*)."""
    events, post_topics = _frames()
    con.register("events_df", events)
    con.register("post_topics_df", post_topics)
    con.execute("attach ':memory:' as vigil")
    con.execute("use vigil")
    con.execute("set TimeZone = 'UTC'")
    con.execute(
        "create table main.stg_lake__events as select user_id, post_id, target_user_id, action, "
        "cast(event_at as timestamptz) as event_at, cast(event_date as date) as event_date "
        "from events_df"
    )
    con.execute("create table main.post_topics as select * from post_topics_df")
    con.execute("create table main.int_posts_created as select range as post_id from range(2000)")
    con.execute(
        "create table main.int_calendar_days as select cast(d as date) as calendar_date "
        "from range(date '2026-10-01', date '2026-10-11', interval 1 day) as t(d)"
    )


def _run(sql: str, model: str, threads: int) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    try:
        _inputs(con)
        con.execute(f"set threads = {threads}")
        df = con.sql(f"select * from ({sql}) as m").df()
    finally:
        con.close()
    key, columns = MODELS[model]
    return df.sort_values(key).reset_index(drop=True)[key + columns]


def _as_plain_sum(sql: str) -> str:
    """The model as it was before the fix: list_sum(list_sort(list(cast(x as double)))) -> sum(x)."""
    assert sql.count(ORDERED) == 2 and sql.count(ORDERED_END) == 2
    return sql.replace(ORDERED, "sum((").replace(ORDERED_END, "))")


@pytest.mark.parametrize("model", list(MODELS))
def test_float_sums_do_not_depend_on_duckdbs_thread_count(compiled, model):
    one, four = _run(compiled[model], model, 1), _run(compiled[model], model, 4)
    assert len(one) > 1000
    pd.testing.assert_frame_equal(one, four, check_exact=True)


@pytest.mark.parametrize("model", list(MODELS))
def test_the_old_plain_sum_does_differ_on_this_table(compiled, model):
    """The hand-made table is large enough to expose the hazard: plain sum() of the same doubles
    gives other bits at 1 and at 4 threads (how the models were before the fix)."""
    sql = _as_plain_sum(compiled[model])
    one, four = _run(sql, model, 1), _run(sql, model, 4)
    _, columns = MODELS[model]
    assert (one[columns[0]] != four[columns[0]]).any()
    # the same values up to rounding: only the order of the additions moved
    np.testing.assert_allclose(one[columns[0]], four[columns[0]], rtol=1e-13)


def test_every_exported_table_is_written_in_key_order(tmp_path, monkeypatch):
    assert set(warehouse.EXPORTED_TABLES) <= set(warehouse.EXPORT_ORDER)
    import duckdb

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    paths = config.paths()
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(paths.warehouse))
    # rows inserted out of key order; (post_id, event_timestamp) is post_behavior's key
    con.execute(
        "create table main.post_behavior as select (i * 7919) % 5000 as post_id, "
        "timestamptz '2026-10-01 00:00:00+00' + to_hours((i * 31) % 3) as event_timestamp "
        "from range(15000) as t(i)"
    )
    con.close()
    warehouse.export_features(("post_behavior",))
    got = pq.read_table(paths.features / "post_behavior.parquet").to_pandas()
    want = got.sort_values(["post_id", "event_timestamp"]).reset_index(drop=True)
    assert len(got) == 15000
    pd.testing.assert_frame_equal(got, want)


def _tied_labels(seed: int) -> pd.DataFrame:
    """Four labels per post at the same second with the same (empty) harm types, differing in
    queue, verdict and weight: which one is the post's label must not depend on the rows' order."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "post_id": np.repeat(np.arange(3_000), 4),
            "is_harmful": np.tile([True, False, True, False], 3_000),
            "harm_types": "",
            "labeled_at": pd.Timestamp("2026-10-02 12:00", tz="UTC"),
            "queue": np.tile(["reports", "reports", "reports", "spam"], 3_000),
            "sampling_weight": np.tile([1.0, 2.0, 3.0, 9.0], 3_000),
        }
    )
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def _labels_run(compiled: dict, model: str, seed: int) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set threads = 4")
        con.register("labels_df", _tied_labels(seed))
        staging = re.sub(r"read_parquet\('[^']*labels\.parquet'\)", "labels_df", compiled[model])
        if model == "post_labels":
            # its inputs: the tied rows as staged labels (no dedupe), no appeal, every post known
            con.execute("attach ':memory:' as vigil")
            con.execute("use vigil")
            con.execute(
                "create table main.stg_lake__labels as select post_id, is_harmful, harm_types, "
                "labeled_at, queue as label_queue, sampling_weight from labels_df"
            )
            con.execute(
                "create table main.stg_lake__appeal_labels as select * from main.stg_lake__labels "
                "where false"
            )
            con.execute(
                "create table main.int_posts_created as select range as post_id from range(3000)"
            )
        else:
            assert staging != compiled[model]  # the source was swapped for the hand-made rows
        df = con.sql(f"select * from ({staging}) as m").df()
    finally:
        con.close()
    return df.sort_values("post_id").reset_index(drop=True)


@pytest.mark.parametrize("model", LABEL_MODELS)
def test_a_tied_latest_label_is_picked_by_value_not_by_row_order(compiled, model):
    a, b = _labels_run(compiled, model, 1), _labels_run(compiled, model, 2)
    assert len(a) == 3_000
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the tie-breakers by hand: queue 'reports' before 'spam', then harmful first, then the
    # larger weight: the third label (reports, harmful, 3.0) of every post
    queue = "queue" if model == "post_labels" else "label_queue"
    picked = set(zip(a[queue], a["is_harmful"], a["sampling_weight"], strict=True))
    assert picked == {("reports", True, 3.0)}
