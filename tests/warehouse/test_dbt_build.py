"""User Active Minutes through the real pipeline: lake Parquet -> dbt (DuckDB) -> `vigil uam`.

Expected values come from outside the code under test: LeetCode 1817's published examples and an
independent brute-force count over the lake files. Each dbt invocation costs seconds, so the
warehouses are built once per module and shared by the tests that only read them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from lakefiles import event, random_views, write_lake

from vigil import cli, config
from vigil.errors import UserError
from vigil.uam import query as uam
from vigil.warehouse import dbt as warehouse


def _build_home(tmp_path_factory, name: str):
    home = tmp_path_factory.mktemp(name)
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(home))
    return home, mp


def _uam_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert cli.main(["uam", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------------------------
# (1) LeetCode 1817 "Finding the Users Active Minutes", published examples.
#
# LeetCode gives logs [user, minute] and k, and answer[j] (1-indexed, j = 1..k) = number of users
# whose UAM is exactly j. Our histogram with S = 1 has buckets [u, u+1), i.e. exactly UAM = u,
# starting at u = 0 (always 0 users: inactive users are not counted) and stopping at the highest
# non-empty bucket. So LeetCode's answer[j] (1-indexed) = our bucket with lower == j, or 0 when
# that bucket is beyond our last one. Lake contract: user ids must be > 0, so LeetCode user u
# becomes user u + 1; minute m becomes the timestamp DAY 00:00 UTC + m minutes.
# Both examples live in one lake, 45 days apart, so the 30-day windows ending on each day see
# only their own example.
LEETCODE = {
    "2026-10-01": ([[0, 5], [1, 2], [0, 2], [0, 5], [1, 3]], 5, [0, 2, 0, 0, 0]),
    "2026-11-15": ([[1, 1], [2, 2], [2, 3]], 4, [1, 1, 0, 0]),
}


@pytest.fixture(scope="module")
def leetcode_home(tmp_path_factory):
    home, mp = _build_home(tmp_path_factory, "uam-leetcode")
    events = []
    for day, (logs, _, _) in LEETCODE.items():
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        events += [
            event(start + timedelta(minutes=m), user + 1, "view", post_id=1) for user, m in logs
        ]
    write_lake(config.paths().lake, events)
    mp.undo()
    return home


@pytest.mark.parametrize("day", list(LEETCODE))
def test_leetcode_1817_examples(leetcode_home, monkeypatch, capsys, day):
    monkeypatch.setenv("VIGIL_HOME", str(leetcode_home))
    _logs, k, expected = LEETCODE[day]
    result = _uam_json(capsys, "--interval", "1", "--as-of", day)
    assert result["interval_minutes"] == 1 and result["as_of"] == day
    users_by_lower = {b["lower"]: b["users"] for b in result["buckets"]}
    for b in result["buckets"]:
        assert b["upper"] == b["lower"] + 1
    assert users_by_lower[0] == 0
    answer = [users_by_lower.get(j, 0) for j in range(1, k + 1)]
    assert answer == expected


def test_interval_must_be_a_positive_integer(leetcode_home, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(leetcode_home))
    with pytest.raises(UserError, match="positive"):
        uam.histogram(0)
    # the dbt var is validated by dbt itself too (for runs outside vigil uam)
    with pytest.raises(UserError, match="uam_interval must be a positive integer"):
        warehouse.run_dbt("build", ["uam_histogram"], dbt_vars={"uam_interval": "5m"})


# ---------------------------------------------------------------------------------------------
# (2) Simulated world vs an independent brute force over the lake files


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory):
    from sim.world import simulate
    from vigil.lake.ingest import ingest

    home, mp = _build_home(tmp_path_factory, "uam-sim")
    try:
        simulate(config.paths().raw, users=300, days=4, start=date(2026, 10, 1), seed=11)
        ingest(config.paths().raw)
        summary = warehouse.build("all")
    finally:
        mp.undo()
    return home, summary


def brute_force_uam(lake: Path, as_of: date) -> dict[int, int]:
    """UAM per user straight from the lake Parquet files, with Python sets."""
    first = as_of - timedelta(days=29)
    minutes: dict[int, set] = defaultdict(set)
    for f in sorted((lake / "events").glob("dt=*/events.parquet")):
        table = pq.read_table(f, columns=["user_id", "event_ts"])
        for user, ts in zip(table["user_id"].to_pylist(), table["event_ts"].to_pylist()):
            ts = ts.astimezone(UTC)
            if first <= ts.date() <= as_of:
                minutes[user].add(ts.replace(second=0, microsecond=0))
    return {user: len(m) for user, m in minutes.items() if m}


def brute_force_histogram(per_user: dict[int, int], interval: int) -> list[dict]:
    top = max(per_user.values()) // interval
    counts = [0] * (top + 1)
    for value in per_user.values():
        counts[value // interval] += 1
    return [
        {"lower": k * interval, "upper": (k + 1) * interval, "users": n}
        for k, n in enumerate(counts)
    ]


def test_dbt_build_all_is_green_and_exports_features(sim_home):
    home, summary = sim_home
    assert not summary["errors"] and not summary["failures"]
    # every model of the `all` selector, listed by hand from the project's models/ folders
    expected = {
        "stg_lake__events",
        "stg_lake__event_activity",
        "stg_lake__event_partitions",
        "stg_lake__labels",
        "stg_lake__users",
        "stg_lake__decisions",
        "stg_lake__appeal_labels",
        "int_calendar_days",
        "int_posts_created",
        "int_user_login_countries_daily",
        "int_user_active_minutes_daily",
        "int_post_events_attributed",
        "int_creator_received_daily",
        "int_post_activity_hourly",
        "post_labels",
        "posts",
        "user_activity",
        "user_active_minutes",
        "uam_histogram",
        "post_behavior",
        "creator_context",
        # the rules' effects and the account verdicts (issue 21)
        "stg_lake__rule_effects",
        "stg_lake__account_verdicts",
        "active_labels",
        "user_labels",
        # the ranking features (issue 23): built empty without the topic step's post topics
        "stg_lake__post_topics",
        "post_topics",
        "user_topic_interest",
        "user_author_affinity",
        "topic_velocity",
    }
    assert set(summary["nodes"]) == expected and summary["models"] == len(expected)
    # 5 unit tests on DuckDB: the SQL daily UAM model's runs on Spark or with uam_daily_engine=sql
    assert summary["tests"] >= 50 and summary["unit_tests"] >= 5
    for table in ("post_topics", "user_topic_interest", "user_author_affinity", "topic_velocity"):
        assert summary["exported"][table] == 0, table  # no topic model ran on this world
    for table in warehouse.EXPORTED_TABLES:
        schema = pq.read_schema(home / "features" / f"{table}.parquet")
        for name in ("event_timestamp", "created_at", "labeled_at"):
            if name in schema.names:
                assert str(schema.field(name).type) == "timestamp[us, tz=UTC]", (table, name)


def test_sim_user_active_minutes_match_brute_force(sim_home, monkeypatch):
    home, _ = sim_home
    monkeypatch.setenv("VIGIL_HOME", str(home))
    last_day = max(
        date.fromisoformat(p.parent.name[3:]) for p in (home / "lake/events").glob("dt=*/*")
    )
    expected = brute_force_uam(home / "lake", last_day)
    con = duckdb.connect(str(home / "warehouse/vigil.duckdb"), read_only=True)
    got = dict(con.execute("select user_id, uam from user_active_minutes").fetchall())
    con.close()
    assert len(expected) > 100
    assert got == expected


@pytest.mark.parametrize("interval,as_of_offset", [(1, 0), (7, 0), (5, -1)])
def test_sim_histogram_matches_brute_force(sim_home, monkeypatch, capsys, interval, as_of_offset):
    home, _ = sim_home
    monkeypatch.setenv("VIGIL_HOME", str(home))
    last_day = max(
        date.fromisoformat(p.parent.name[3:]) for p in (home / "lake/events").glob("dt=*/*")
    )
    as_of = last_day + timedelta(days=as_of_offset)
    result = _uam_json(capsys, "--interval", str(interval), "--as-of", as_of.isoformat())
    assert result["as_of"] == as_of.isoformat()
    assert result["buckets"] == brute_force_histogram(
        brute_force_uam(home / "lake", as_of), interval
    )


# ---------------------------------------------------------------------------------------------
# (3) Incremental idempotency: a late event for an old day is counted once, a rerun changes nothing


def _daily(home: Path) -> dict:
    con = duckdb.connect(str(home / "warehouse/vigil.duckdb"), read_only=True)
    rows = con.execute(
        "select user_id, activity_date, active_minutes, partition_rows from int_user_active_minutes_daily"
    ).fetchall()
    con.close()
    return {(u, str(d)): (m, n) for u, d, m, n in rows}


def test_late_event_reprocesses_only_its_day(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    lake = config.paths().lake
    days = ["2026-10-01", "2026-10-02", "2026-10-03"]
    events = {
        d: [event(f"{d}T10:0{i}:00Z", u, "view", post_id=1) for u in (1, 2) for i in range(3)]
        for d in days
    }
    write_lake(lake, [e for d in days for e in events[d]])
    warehouse.build("all")
    before = _daily(tmp_path)
    assert before[(1, "2026-10-01")] == (3, 6)

    # a late delivery for the oldest day: one new minute (10:30) and one repeat of 10:01,
    # appended to that day's partition as ingest does
    late = [
        event("2026-10-01T10:30:15Z", 1, "like", post_id=1),
        event("2026-10-01T10:01:40Z", 1, "view", post_id=1),
    ]
    from lakefiles import write_events

    write_events(lake, events["2026-10-01"] + late)
    summary = warehouse.build("marts")
    after = _daily(tmp_path)
    assert after[(1, "2026-10-01")] == (4, 8)  # 3 minutes + 10:30, not double counted
    for key, (minutes, partition_rows) in before.items():
        if key == (1, "2026-10-01"):
            continue
        # other users' rows of the re-processed day are rewritten with the same counts
        assert after[key] == (minutes, 8 if key[1] == "2026-10-01" else partition_rows)
    assert set(after) == set(before)
    assert summary["nodes"]["int_user_active_minutes_daily"]["rows"] == len(before)
    assert uam.histogram(1)["buckets"][-1] == {"lower": 10, "upper": 11, "users": 1}

    warehouse.build("marts")  # nothing new in the lake: same table
    assert _daily(tmp_path) == after
    log_text = (warehouse.dbt_dirs()["logs"] / "last_stdout.log").read_text()
    assert "int_user_active_minutes_daily: 0 day(s) to (re)process" in log_text


# ---------------------------------------------------------------------------------------------
# (5) Spark parity: the same models on dbt-spark (session) give the same histogram as DuckDB,
# also after an incremental run that overwrites a re-processed day partition.


def _spark_table(table: str) -> list[tuple]:
    location = warehouse.dbt_dirs("spark")["spark"] / "spark-warehouse" / "vigil.db" / table
    con = duckdb.connect()
    rows = con.execute(
        f"select lower, upper, users from read_parquet('{location}/**/*.parquet') order by lower"
    ).fetchall()
    con.close()
    return rows


def _duckdb_table(table: str) -> list[tuple]:
    con = duckdb.connect(str(config.paths().warehouse), read_only=True)
    rows = con.execute(f"select lower, upper, users from {table} order by lower").fetchall()
    con.close()
    return rows


@pytest.mark.slow
def test_spark_and_duckdb_give_the_same_histogram(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    lake = config.paths().lake
    days = ["2026-10-01", "2026-10-02", "2026-10-03"]
    events = random_views(5, days)
    write_lake(lake, events)
    dbt_vars = {"uam_interval": 3}
    uam_models = ["+uam_histogram"]

    warehouse.run_dbt("run", uam_models, dbt_vars=dbt_vars)
    warehouse.run_dbt("run", uam_models, target="spark", dbt_vars=dbt_vars)
    expected = _duckdb_table("uam_histogram")
    assert sum(users for _, _, users in expected) == len({e["user_id"] for e in events})
    assert _spark_table("uam_histogram") == expected

    # late events for day 1 and a new day 4: incremental runs (delete+insert / insert_overwrite)
    from lakefiles import write_events

    late = random_views(6, ["2026-10-01", "2026-10-04"], per_day=60)
    write_events(
        lake,
        [e for e in events if e["event_ts"].date().isoformat() == "2026-10-01"]
        + [e for e in late if e["event_ts"].date().isoformat() == "2026-10-01"],
    )
    write_events(lake, [e for e in late if e["event_ts"].date().isoformat() == "2026-10-04"])
    warehouse.run_dbt("run", uam_models, dbt_vars=dbt_vars)
    warehouse.run_dbt("run", uam_models, target="spark", dbt_vars=dbt_vars)
    after = _duckdb_table("uam_histogram")
    truth = brute_force_histogram(brute_force_uam(lake, date(2026, 10, 4)), 3)
    assert after == [(b["lower"], b["upper"], b["users"]) for b in truth]
    assert _spark_table("uam_histogram") == after
