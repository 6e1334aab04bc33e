"""User Active Minutes: ``vigil uam --interval S [--as-of YYYY-MM-DD] [--json]``.

A user's UAM is the number of distinct UTC minutes in which they did anything, over the 30 days
ending on ``as_of``. The histogram counts users per bucket [k*S, (k+1)*S) (dbt model
``uam_histogram``). ``histogram()`` builds the warehouse first when it is missing or the lake
changed since the last build, re-runs only the two UAM marts when S or as_of changed, and otherwise
just reads the warehouse (read-only, so it never blocks on another reader).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date

from vigil.errors import UserError
from vigil.warehouse import dbt as warehouse
from vigil.warehouse import lock as warehouse_lock

log = logging.getLogger(__name__)

UAM_MODELS = ["user_active_minutes", "uam_histogram"]


def _interval(value: object) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise UserError(
            f"--interval {value!r} is not a positive whole number of minutes: use e.g. 5."
        )
    return int(text)


def histogram(interval: int, as_of: str | None = None) -> dict:
    """The ``vigil uam --json`` object: {"interval_minutes", "as_of", "buckets": [{lower, upper, users}]}."""
    interval = _interval(interval)
    if as_of is not None:
        try:
            as_of = date.fromisoformat(str(as_of)).isoformat()
        except ValueError:
            raise UserError(f"--as-of {as_of!r} is not a date: use YYYY-MM-DD.") from None
    wanted = {"as_of": as_of, "interval": interval}
    state = warehouse.read_state()
    if not state or state.get("lake") != warehouse.lake_fingerprint():
        log.info("uam: the warehouse is missing or older than the lake: building it")
        warehouse.build("all", as_of=as_of, extra_vars={"uam_interval": interval})
    elif state.get("uam") != wanted:
        dbt_vars: dict = {"uam_interval": interval}
        if as_of:
            dbt_vars["as_of"] = as_of
        warehouse.run_dbt("build", UAM_MODELS, dbt_vars=dbt_vars, label="dbt build uam")
        warehouse.update_state(uam=wanted)
    else:
        log.info("uam: warehouse up to date for interval %d, as_of %s", interval, as_of or "latest")
    return _read_histogram(interval, as_of)


def _read_histogram(interval: int, as_of: str | None) -> dict:
    with warehouse_lock.reading("vigil uam") as con:
        rows = con.execute(
            "select lower, upper, users from uam_histogram order by lower"
        ).fetchall()
        window_end = con.execute("select max(as_of) from user_active_minutes").fetchone()[0]
        if window_end is None and as_of is None:  # nobody active: report the lake's last day
            window_end = con.execute(
                "select max(event_date) from stg_lake__event_partitions"
            ).fetchone()[0]
    return {
        "interval_minutes": interval,
        "as_of": str(window_end) if window_end is not None else as_of,
        "buckets": [{"lower": lo, "upper": hi, "users": n} for lo, hi, n in rows],
    }


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", required=True, metavar="S", help="bucket width in minutes (positive integer)"
    )
    parser.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="last day of the 30-day window (default: latest lake day)",
    )
    parser.add_argument("--json", action="store_true", help="print the histogram as JSON")


def run(args: argparse.Namespace) -> int:
    result = histogram(args.interval, as_of=args.as_of)
    if args.json:
        print(json.dumps(result))
        return 0
    total = sum(b["users"] for b in result["buckets"])
    print(
        f"User Active Minutes, 30 days ending {result['as_of']} (UTC), buckets of {result['interval_minutes']} min"
    )
    print(f"{'UAM':>17}  {'users':>10}")
    for b in result["buckets"]:
        print(f"  [{b['lower']:>6}, {b['upper']:>6})  {b['users']:>10,}")
    print(f"{'total':>17}  {total:>10,}")
    return 0
