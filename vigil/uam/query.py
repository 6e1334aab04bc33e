"""User Active Minutes: ``vigil uam --interval S [--as-of YYYY-MM-DD] [--json]``.

A user's UAM is the number of distinct UTC minutes in which they did anything, over the 30 days
ending on ``as_of``. The histogram counts users per bucket [k*S, (k+1)*S). ``histogram()`` builds
the warehouse first when it is missing or the lake changed since the last build, and otherwise
only reads it: the answer is computed in a query for the S and the day asked, from
``user_active_minutes`` when that table's own ``as_of`` column is the day asked, else from the
daily rows (``int_user_active_minutes_daily``). A query never rewrites the tables that the gates
and Feast read, and never trusts a bucket width it did not apply itself.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date, timedelta

from vigil.errors import UserError
from vigil.warehouse import dbt as warehouse
from vigil.warehouse import lock as warehouse_lock

log = logging.getLogger(__name__)

WINDOW_DAYS = 30
# every minute of the window in one bucket: any wider interval gives the same single bucket
MAX_INTERVAL = WINDOW_DAYS * 24 * 60
# the text form prints at most this many populated buckets, then one tail line
MAX_ROWS = 30
TAIL_SHARE = 0.99


def _interval(value: object) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise UserError(
            f"--interval {value!r} is not a positive whole number of minutes: use e.g. 5."
        )
    if int(text) > MAX_INTERVAL:
        raise UserError(
            f"--interval {text} is wider than the {WINDOW_DAYS}-day window: use at most "
            f"{MAX_INTERVAL:,} minutes."
        )
    return int(text)


def _day(value: object) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"--as-of {value!r} is not a date: use YYYY-MM-DD.") from None


def histogram(interval: int, as_of: str | None = None) -> dict:
    """The ``vigil uam --json`` object: {"interval_minutes", "as_of", "buckets": [{lower, upper, users}]}.

    Buckets run from 0 to the highest non-empty one, empty ones included (``users`` 0).
    """
    interval = _interval(interval)
    day = _day(as_of) if as_of is not None else None
    state = warehouse.read_state()
    if not state or state.get("lake") != warehouse.lake_fingerprint():
        log.info("uam: the warehouse is missing or older than the lake: building it")
        warehouse.build("all")
    with warehouse_lock.reading("vigil uam") as con:
        first, last = con.execute(
            "select min(event_date), max(event_date) from stg_lake__event_partitions"
        ).fetchone()
        day = day or last
        if first is None or not first <= day <= last:
            span = f"{first} to {last}" if first is not None else "no days"
            raise UserError(
                f"--as-of {day} is outside the data ({span}): choose a day in that range."
            )
        counts = _bucket_counts(con, interval, day)
    top = max(counts, default=-1)
    return {
        "interval_minutes": interval,
        "as_of": day.isoformat(),
        "buckets": [
            {"lower": k * interval, "upper": (k + 1) * interval, "users": counts.get(k, 0)}
            for k in range(top + 1)
        ],
    }


def _bucket_counts(con, interval: int, day: date) -> dict[int, int]:
    """Users per bucket index for the 30 days ending ``day``: {k: users with k*S <= UAM < (k+1)*S}."""
    built_for = con.execute("select max(as_of) from user_active_minutes").fetchone()[0]
    if built_for == day:  # the mart's rows carry their window's end: exactly this window
        per_user = "select uam from user_active_minutes"
        params: list = []
    else:
        log.info("uam: summing the daily rows for the window ending %s", day)
        per_user = (
            "select sum(active_minutes) as uam from int_user_active_minutes_daily "
            "where activity_date between ? and ? group by user_id"
        )
        params = [day - timedelta(days=WINDOW_DAYS - 1), day]
    rows = con.execute(
        f"select uam // ? as bucket, count(*) from ({per_user}) where uam > 0 group by 1",
        [interval, *params],
    ).fetchall()
    return {int(k): int(n) for k, n in rows}


def split_tail(buckets: list[dict]) -> tuple[list[dict], list[dict]]:
    """The populated buckets a person reads (up to the one that brings the users seen to 99%, at
    most ``MAX_ROWS``) and the populated ones after them, summed up as a tail line."""
    populated = [b for b in buckets if b["users"]]
    total = sum(b["users"] for b in populated)
    shown, seen = 0, 0
    for b in populated:
        if shown == MAX_ROWS or (shown and seen >= TAIL_SHARE * total):
            break
        shown, seen = shown + 1, seen + b["users"]
    return populated[:shown], populated[shown:]


def tail_line(rest: list[dict]) -> str:
    """E.g. "412 users at or above 1,500 min (highest bucket [2,880, 2,940))"."""
    users = sum(b["users"] for b in rest)
    return (
        f"{users:,} users at or above {rest[0]['lower']:,} min "
        f"(highest bucket [{rest[-1]['lower']:,}, {rest[-1]['upper']:,}))"
    )


def compact_lines(result: dict) -> list[str]:
    """The histogram for a person: :func:`split_tail`'s buckets, a tail line, a total line."""
    shown, rest = split_tail(result["buckets"])
    lines = [
        (
            f"User Active Minutes, 30 days ending {result['as_of']} (UTC), "
            f"buckets of {result['interval_minutes']} min"
        ),
        f"{'UAM':>17}  {'users':>10}",
    ]
    lines += [f"  [{b['lower']:>6,}, {b['upper']:>6,})  {b['users']:>10,}" for b in shown]
    if rest:
        lines.append(f"  {tail_line(rest)}")
    empty = len(result["buckets"]) - len(shown) - len(rest)
    if empty:
        lines.append(f"  ({empty:,} empty buckets not shown; --json lists every bucket)")
    lines.append(f"{'total':>17}  {sum(b['users'] for b in shown + rest):>10,}")
    return lines


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        required=True,
        metavar="S",
        help=f"bucket width in minutes (whole number, 1 to {MAX_INTERVAL:,})",
    )
    parser.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="last day of the 30-day window (default: latest lake day)",
    )
    parser.add_argument("--json", action="store_true", help="print every bucket as JSON")


def run(args: argparse.Namespace) -> int:
    result = histogram(args.interval, as_of=args.as_of)
    if args.json:
        print(json.dumps(result))
        return 0
    print("\n".join(compact_lines(result)))
    return 0
