"""`python -m bench uam` runs end to end on a small lake, and its table-by-table check between two
warehouses (what stops the bench when `vigil uam-update` and dbt disagree) sees a difference."""

from __future__ import annotations

import duckdb
import pytest

from bench import bench_uam, uam_contenders

TABLES = """
create table int_user_active_minutes_daily as
    select * from (values (1, 3, 10, date '2026-10-30'), (2, 1, 10, date '2026-10-30'))
    as t(user_id, active_minutes, partition_rows, activity_date);
create table int_user_active_minutes_daily__days as
    select date '2026-10-30' as activity_date, 10 as partition_rows, now() as written_at;
create table user_active_minutes as
    select * from (values (1, date '2026-10-30', 3), (2, date '2026-10-30', 1)) as t(user_id, as_of, uam);
create table user_active_minutes__state as select date '2026-10-30' as as_of, now() as built_at;
create table uam_histogram as
    select * from (values (0, 1, 0), (1, 2, 1), (2, 3, 0), (3, 4, 1)) as t(lower, upper, users);
"""


def _warehouse(path, *changes: str):
    con = duckdb.connect(str(path))
    con.execute(TABLES)
    for sql in changes:
        con.execute(sql)
    con.close()
    return path


def test_table_differences_names_each_differing_table(tmp_path):
    a = _warehouse(tmp_path / "a.duckdb")
    # written_at and built_at are write times: not compared
    b = _warehouse(
        tmp_path / "b.duckdb",
        "update int_user_active_minutes_daily__days set written_at = now() + interval 1 day",
        "update user_active_minutes__state set built_at = now() + interval 1 day",
    )
    assert uam_contenders._table_differences(a, b) == []
    c = _warehouse(
        tmp_path / "c.duckdb",
        "update user_active_minutes set uam = 4 where user_id = 1",
        "delete from uam_histogram where lower = 2",
    )
    # one row changed = one row missing from each side; one row deleted = one row missing
    assert uam_contenders._table_differences(a, c) == [
        "user_active_minutes (2 rows)",
        "uam_histogram (1 rows)",
    ]


@pytest.mark.slow
def test_bench_uam_runs_dbt_and_uam_update_on_a_small_lake(tmp_path):
    out = bench_uam.main(
        ["--events", "60000", "--only", "polars,dbt,inc,update", "--dir", str(tmp_path / "b")]
    )
    assert out["agree"] == {"polars lazy": True, "vigil dbt": True}
    assert out["sample_check"]["users"] > 0 and out["sample_check"]["mismatches"] == 0
    # the bench itself stops unless both uam-update runs leave dbt's +1 day tables
    update = out["uam_update"]
    fresh, first, later = update["fresh"], update["resident"], update["resident_next_day"]
    assert 0 < fresh["update_seconds"] < fresh["seconds"]
    assert set(first["timings"]) >= {"connect", "plan", "count", "window", "histogram", "close"}
    assert (first["day"], later["day"]) == ("2026-10-31", "2026-11-01")
    # the second day was recounted by polars from the files, user by user
    assert later["sample_check"]["users"] > 0 and later["sample_check"]["mismatches"] == 0
    assert not (tmp_path / "b").exists()  # cleaned up without --keep
