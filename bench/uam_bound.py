"""The ``no-dbt bound`` of ``python -m bench uam``: Vigil's UAM full recompute and one-new-day
update hand-written with the same kernel (vigil/uam_daily.py) and the same SQL steps as the dbt
models, in one fresh process with no dbt at all, timing the imports, the full recompute and the
incremental update apart. It answers one question: what ratio does the incremental design allow
once dbt's per-node machinery is gone?

    python bench/uam_bound.py LAKE DB DAYS_JSON NEW_DAY NEW_ROWS EXPIRED_DAY MEMORY_LIMIT THREADS

Prints one JSON line: {"imports", "full", "inc" (seconds), "histogram": [[lower, users], ...]}.
"""

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> dict:
    t0 = time.perf_counter()
    # what the dbt Python model imports in a fresh process (numpy and pyarrow.parquet: the kernel)
    import duckdb
    import numpy  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from vigil import uam_daily

    imports = time.perf_counter() - t0
    lake, db, days, new_day, new_rows, expired, memory_limit, threads = argv
    days = [tuple(d) for d in json.loads(days)]
    con = duckdb.connect(db, config={"memory_limit": memory_limit, "threads": int(threads)})
    hist = (
        "create or replace table hist as select uam as lower, count(*) as users from uam group by 1"
    )
    t0 = time.perf_counter()
    con.register("d", uam_daily.daily_sorted(Path(lake), days))
    con.execute("create table daily as select * from d")
    con.unregister("d")
    con.execute(
        "create table uam as select user_id, sum(active_minutes) as uam from daily group by 1"
    )
    con.execute(hist)
    con.execute("checkpoint")
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    con.register("d", uam_daily.daily_sorted(Path(lake), [(new_day, int(new_rows))]))
    con.execute("insert into daily select * from d")
    con.unregister("d")
    con.execute(
        "create or replace table uam as select user_id, sum(m) as uam from ("
        " select user_id, uam as m from uam"
        f" union all select user_id, -active_minutes from daily where activity_date = date '{expired}'"
        f" union all select user_id, active_minutes from daily where activity_date = date '{new_day}'"
        ") group by 1 having sum(m) > 0"
    )
    con.execute(hist)
    con.execute("checkpoint")
    inc = time.perf_counter() - t0
    rows = con.execute("select lower, users from hist order by 1").fetchall()
    return {"imports": imports, "full": full, "inc": inc, "histogram": rows}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
