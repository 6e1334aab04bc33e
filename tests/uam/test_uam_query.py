"""`vigil uam` answers from data whose window and width it states, and never rewrites the tables
that gates and Feast read (issue 19, items 1, 4 and 9).

The lake is small enough to count by hand: users' distinct active minutes per day are
    user 1: 2026-10-01 three minutes (10:00-10:02), 2026-10-03 one minute
    user 2: 2026-10-02 nine minutes (10:00-10:08, minute 10:00 twice)
    user 3: 2026-10-03 one minute
so over the 30 days ending 2026-10-03 UAM is {1: 4, 2: 9, 3: 1}, and ending 2026-10-02 {1: 3, 2: 9}.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from lakefiles import event, write_lake

from vigil import cli, config
from vigil.errors import UserError
from vigil.uam import query as uam
from vigil.warehouse import dbt as warehouse

EVENTS = (
    [event(f"2026-10-01T10:0{m}:00Z", 1) for m in range(3)]
    + [event("2026-10-03T10:00:30Z", 1)]
    + [event(f"2026-10-02T10:0{m}:00Z", 2) for m in range(9)]
    + [event("2026-10-02T10:00:45Z", 2)]
    + [event("2026-10-03T23:59:59Z", 3)]
)


def _buckets(width: int, counts: list[int]) -> list[dict]:
    return [
        {"lower": k * width, "upper": (k + 1) * width, "users": n} for k, n in enumerate(counts)
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("uam-query")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(home))
    try:
        write_lake(config.paths().lake, EVENTS)
        warehouse.build("all")
    finally:
        mp.undo()
    return home


@pytest.fixture
def in_home(home, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(home))
    return home


def _shared_tables() -> dict:
    con = duckdb.connect(str(config.paths().warehouse), read_only=True)
    try:
        return {
            "user_active_minutes": sorted(
                con.execute("select user_id, as_of, uam from user_active_minutes").fetchall()
            ),
            "uam_histogram": con.execute(
                "select lower, upper, users from uam_histogram order by lower"
            ).fetchall(),
        }
    finally:
        con.close()


def test_defaults_and_other_widths_match_hand_counts(in_home):
    # UAM {1: 4, 2: 9, 3: 1} ending on the lake's last day
    assert uam.histogram(1) == {
        "interval_minutes": 1,
        "as_of": "2026-10-03",
        "buckets": _buckets(1, [0, 1, 0, 0, 1, 0, 0, 0, 0, 1]),
    }
    assert uam.histogram(7)["buckets"] == _buckets(7, [2, 1])
    # UAM {1: 3, 2: 9} ending 2026-10-02
    got = uam.histogram(5, as_of="2026-10-02")
    assert got["as_of"] == "2026-10-02" and got["buckets"] == _buckets(5, [1, 1])


def test_a_histogram_built_for_another_width_does_not_answer_for_this_one(in_home):
    # The race of issue 19 item 1, as it leaves the warehouse: a `vigil uam --interval 7` rebuilt
    # the UAM marts with 7-minute buckets, then a concurrent `dbt marts` recorded interval 1.
    before = _shared_tables()
    warehouse.run_dbt("build", ["uam_histogram"], dbt_vars={"uam_interval": 7})
    try:
        assert uam.histogram(1)["buckets"] == _buckets(1, [0, 1, 0, 0, 1, 0, 0, 0, 0, 1])
    finally:
        warehouse.run_dbt("build", ["uam_histogram"])
    assert _shared_tables() == before


def test_an_as_of_outside_the_data_is_an_error_naming_its_range(in_home):
    before = _shared_tables()
    with pytest.raises(UserError, match=r"2026-10-01 to 2026-10-03"):
        uam.histogram(5, as_of="2030-01-01")
    with pytest.raises(UserError, match=r"2026-10-01 to 2026-10-03"):
        uam.histogram(5, as_of="2026-09-30")
    assert _shared_tables() == before


def test_reading_another_interval_or_day_leaves_the_shared_tables_alone(in_home):
    before = _shared_tables()
    assert before["uam_histogram"] == [
        (k, k + 1, n) for k, n in enumerate([0, 1, 0, 0, 1, 0, 0, 0, 0, 1])
    ]
    uam.histogram(5, as_of="2026-10-01")
    uam.histogram(3)
    assert _shared_tables() == before


def test_a_huge_interval_is_one_clear_error(in_home, capsys):
    assert cli.main(["uam", "--interval", "99999999999999999999"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--interval" in err[0] and "Traceback" not in err[0]
    # the widest useful bucket: every minute of 30 days in one bucket
    assert uam.histogram(43_200)["buckets"] == [{"lower": 0, "upper": 43_200, "users": 3}]


def test_text_output_shows_populated_buckets_and_json_stays_complete(in_home, capsys):
    capsys.readouterr()
    assert cli.main(["uam", "--interval", "1"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.strip().startswith("[")]
    assert len(rows) == 3  # buckets [1,2), [4,5), [9,10): the seven empty ones are not printed
    assert "total" in out and " 3" in out.splitlines()[-1]
    assert cli.main(["uam", "--interval", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["buckets"]) == 10


def test_the_compact_form_keeps_99_percent_of_users_and_sums_the_tail():
    # 100 users in 10-minute buckets: 50 + 30 + 15 + 4 = 99 users reach 99%, 1 user is the tail
    buckets = _buckets(10, [0, 50, 0, 30, 15, 4, 0, 1])
    shown, rest = uam.split_tail(buckets)
    assert [b["lower"] for b in shown] == [10, 30, 40, 50]
    assert rest == [{"lower": 70, "upper": 80, "users": 1}]
    assert uam.tail_line(rest) == "1 users at or above 70 min (highest bucket [70, 80))"
    # 40 buckets of one user each: at most MAX_ROWS rows, the other 10 users in the tail
    shown, rest = uam.split_tail(_buckets(1, [1] * 40))
    assert len(shown) == uam.MAX_ROWS == 30 and sum(b["users"] for b in rest) == 10
    assert uam.tail_line(rest).startswith("10 users at or above 30 min")
