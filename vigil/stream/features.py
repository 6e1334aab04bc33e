"""A user's day records and the windowed features computed from them.

Shared by the stream state (push path), ``vigil stream --features`` and the checkpoint reader.
"""

from __future__ import annotations

import sys

from vigil.serving.services import MODERATION_V1

MINUTES_PER_DAY = 1440
BITMAP_BYTES = MINUTES_PER_DAY // 8  # 180
WINDOW_DAYS = 30
SHORT_WINDOW_DAYS = 7

# A day record is a list: [minute bitmap (int), reports, dislikes, blocks, mutes, shares, views,
# posts authored, login countries]. Lists beat objects on memory and speed here. Countries are
# one interned str of 2-letter codes ("US", "USDE") or None: a set would cost ~270 bytes.
TALLY_COLUMNS = ("reports", "dislikes", "blocks", "mutes", "shares", "views", "posts")
POSTS = 7
COUNTRIES = 8
# action done TO a user (the post's author, or the blocked/muted user) -> tally index
TARGET_TALLY = {"report": 1, "dislike": 2, "block": 3, "mute": 4, "share": 5, "view": 6}


USER_ACTIVITY_COLUMNS = ("uam_30d", "active_days_30d", "uam_1d")
# The creator features the stream keeps fresh: moderation_v1's, but those only the batch computes
# (account age, removals, the Bayesian rates need the whole history and the daily prior).
BATCH_ONLY_CREATOR_COLUMNS = (
    "account_age_days",
    "removals_total",
    "report_rate_bayes",
    "dislike_rate_bayes",
    "block_rate_bayes",
)
CREATOR_CONTEXT_COLUMNS = tuple(
    c for c in MODERATION_V1["creator_context"] if c not in BATCH_ONLY_CREATOR_COLUMNS
)


def features_of(days: dict[int, list], posts_total: int, last_day: int) -> dict[str, int]:
    """Windowed features over day records for the window ending with ``last_day`` (inclusive).

    The values are those of the batch row with ``event_timestamp = last_day + 1 day 00:00 UTC``.
    """
    uam30 = active = uam1 = 0
    t7 = [0] * 8
    t30 = [0] * 8
    countries: set[str] = set()
    first30 = last_day - (WINDOW_DAYS - 1)
    first7 = last_day - (SHORT_WINDOW_DAYS - 1)
    for day, rec in days.items():
        if day < first30 or day > last_day:
            continue
        bits = rec[0]
        if bits:
            n = bits.bit_count()
            uam30 += n
            active += 1
            if day == last_day:
                uam1 = n
        for i in range(1, 8):
            t30[i] += rec[i]
        if day >= first7:
            for i in range(1, 8):
                t7[i] += rec[i]
        codes = rec[COUNTRIES]
        if codes:
            countries.update(codes[i : i + 2] for i in range(0, len(codes), 2))
    return {
        "uam_30d": uam30,
        "active_days_30d": active,
        "uam_1d": uam1,
        "reports_received_7d": t7[1],
        "reports_received_30d": t30[1],
        "dislikes_received_7d": t7[2],
        "dislikes_received_30d": t30[2],
        "blocks_received_7d": t7[3],
        "blocks_received_30d": t30[3],
        "mutes_received_7d": t7[4],
        "mutes_received_30d": t30[4],
        "shares_received_7d": t7[5],
        "shares_received_30d": t30[5],
        "views_received_30d": t30[6],
        "posts_authored_30d": t30[POSTS],
        "posts_authored_total": posts_total,
        "login_countries_30d": len(countries),
    }


def add_country(codes: str | None, country: str) -> str:
    """The record's login countries with ``country`` added (one interned str of 2-letter codes)."""
    if codes is None:
        return sys.intern(country)
    if any(codes[i : i + 2] == country for i in range(0, len(codes), 2)):
        return codes
    return sys.intern(codes + country)


def countries_text(codes: str | None) -> str | None:
    """The record's countries as the checkpoint stores them: sorted, comma-separated."""
    if not codes:
        return None
    return ",".join(sorted(codes[i : i + 2] for i in range(0, len(codes), 2)))
