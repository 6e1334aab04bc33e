"""Point-in-time daily account features, one row per (user_id, day): dbt models over the lake.

A row for day D has ``event_timestamp`` = D + 1 day 00:00 UTC and counts only what happened
before it: events in the trailing window [D + 1 - ``window_days``, D + 1), fingerprint sightings
since the start of the lake. Columns (:data:`FEATURES`, defined once; Feast's ``account_features``
view and the ``accounts`` gate read this list):

- cadence: coefficient of variation of the gaps between consecutive events (machines: near 0,
  people: sessions seconds apart and hours between them, well above 1) and the entropy (bits) of
  the histogram of log2(gap seconds);
- hour-of-day entropy (bits, 24 bins; all-day schedules near log2(24) = 4.58);
- text and link duplication: the share of the account's posts and replies whose normalised text
  (lowercase, no links, mentions, digits or punctuation) or link another account also posted in
  the window;
- follow churn (follows + unfollows) / max(follows, 1);
- fingerprint sharing: other accounts seen with one of the account's device or network
  fingerprints (``devices.jsonl``), and device-only;
- target concentration: the share of replies and @mentions aimed at the top-3 targets;
- account age in days, and volumes (events, posts, active hours).
- features that need no history (action mix, session shape, login geography, fingerprint
  reputation from the enforcement log): :mod:`vigil.accounts.signup`;
- content reputation (does it post the texts, links and domains of accounts suspended for
  spam before the cut): :mod:`vigil.accounts.reputation`.

The SQL lives in dbt (issue 21): the account streams are the lake sources ``enforcement`` and
``devices`` (``dbt/models/staging/accounts``), the steps ``dbt/models/intermediate/accounts``
(``int_account_signup`` and ``int_account_reputation`` hold the two groups above) and the mart
``dbt/models/marts/accounts/account_features.sql``, all enabled by the ``accounts`` var. They are
built by the dbt stage ``accounts`` with the rules' labels, one dbt invocation (~5 s of start-up
each) for both in ``vigil_accounts``.
"""

from __future__ import annotations

import logging
import time

import pyarrow.compute as pc
import pyarrow.parquet as pq

from vigil import config
from vigil.accounts.reputation import REPUTATION_FEATURES
from vigil.accounts.signup import SIGNUP_FEATURES
from vigil.errors import UserError

log = logging.getLogger(__name__)

TABLE = "account_features"
WINDOW_DAYS = 7
# feature -> (type, description). Types: int (Int64), float (Float64).
FEATURES: dict[str, tuple[str, str]] = {
    "account_age_days": ("float", "days from created_at to event_timestamp"),
    "events_7d": ("int", "the account's events in the window"),
    "posts_7d": ("int", "posts and replies in the window"),
    "active_hours_7d": ("int", "distinct clock hours (UTC day-hours) with an event"),
    "gap_cv_7d": ("float", "coefficient of variation of inter-event gaps (0 when < 2 gaps)"),
    "gap_entropy_7d": ("float", "entropy (bits) of the histogram of floor(log2(gap s + 1))"),
    "hour_entropy_7d": ("float", "entropy (bits) of the hour-of-day histogram of events"),
    "dup_text_share_7d": ("float", "share of posts whose normalised text another account posted"),
    "dup_link_share_7d": ("float", "share of posts whose link another account posted"),
    "link_share_7d": ("float", "share of posts carrying a link"),
    "follow_churn_7d": ("float", "(follows + unfollows) / max(follows, 1)"),
    "fp_shared_accounts": ("int", "other accounts seen with one of its device or network fps"),
    "device_shared_accounts": ("int", "other accounts seen with one of its device fps"),
    "target_concentration_7d": ("float", "share of replies and mentions to its top-3 targets"),
    "targeted_actions_7d": ("int", "replies and mentions with a target"),
    **SIGNUP_FEATURES,
    **REPUTATION_FEATURES,
}
TTL_DAYS = 2


def build(window_days: int = WINDOW_DAYS) -> dict:
    """Build the features with dbt and export ``features/account_features.parquet``.

    One ``dbt build`` of the ``accounts`` stage (:mod:`vigil.warehouse.dbt`): the account
    streams' staging views, ``models/intermediate/accounts`` and the ``account_features`` mart,
    together with the rules' labels (``user_labels``, also exported), then their dbt tests.
    """
    from vigil.warehouse import dbt as warehouse

    started = time.perf_counter()
    paths = config.paths()
    missing = [
        p
        for p in (
            paths.lake_devices / "devices.parquet",
            paths.lake_enforcement / "enforcement.parquet",
        )
        if not p.exists()
    ]
    if missing:
        raise UserError(
            f"the lake has no {' or '.join(map(str, missing))}: ingest an accounts world "
            "(`vigil simulate-accounts --raw RAW` then `vigil ingest --raw RAW`)."
        )
    summary = warehouse.build("accounts", extra_vars={"account_window_days": int(window_days)})
    dest = paths.features / f"{TABLE}.parquet"
    users = pq.read_table(dest, columns=["user_id"])["user_id"]
    result = {
        "rows": summary["exported"][TABLE],
        "users": len(pc.unique(users)),
        "path": str(dest),
        "labels_rows": summary["exported"]["user_labels"],
        "dbt_models": summary.get("models"),
        "dbt_tests": summary.get("tests"),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info(
        "accounts: %d feature rows for %d users in %.1f s (dbt)",
        result["rows"],
        result["users"],
        result["seconds"],
    )
    return result
