"""int_user_active_minutes_daily on DuckDB: one row per (user, UTC day) with the number of distinct
minutes in which the user did anything; incremental by day (delete+insert on activity_date).

Same contract and day-selection rule as the SQL model of the same name one folder up (the
definition on Spark, enabled here with --vars '{uam_daily_engine: sql}'); the per-day counting runs
over the lake's (user_id, event_ts) order in numpy (polars' hash aggregation for a day whose file
is not sorted), or in DuckDB when a day would not fit half of memory_limit (vigil/uam/daily.py;
why: docs/decisions.md).
"""

import os
from pathlib import Path


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        unique_key=["activity_date"],
        on_schema_change="fail",
    )
    from vigil.uam import daily as uam_daily
    dbt.ref("stg_lake__event_activity")  # lineage: the lake's activity stream, read per day below
    partitions = dbt.ref("stg_lake__event_partitions")
    session.register("__vigil_event_partitions", partitions)
    this, days_table = dbt.this, f"{dbt.this.identifier}__days"
    have_days_table = session.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? and table_name = ?",
        [this.schema, days_table],
    ).fetchall()[0][0]
    days = uam_daily.days_to_process(
        session,
        "__vigil_event_partitions",
        str(this) if dbt.is_incremental else None,
        f'"{this.schema}"."{days_table}"' if have_days_table else None,
    )
    lake = Path(
        os.environ.get("VIGIL_DBT_LAKE") or Path(os.environ.get("VIGIL_HOME", "data")) / "lake"
    )
    engine, rows = uam_daily.daily_counts(session, lake, days, dbt.config.get("uam_daily_engine"))
    print(
        f"int_user_active_minutes_daily: {len(days)} day(s) to "
        + ("(re)process" if dbt.is_incremental else "compute (full refresh)")
        + f" with {engine}: "
        + ", ".join(day for day, _ in days),
        flush=True,
    )
    return rows
