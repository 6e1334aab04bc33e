"""Account features that need no history: what a day or two of a new account already shows.

A bot's second day gives the cadence features little to work on (a handful of gaps), and a new
human's first sessions can look like a new bot's. These features are informative from the first
session on, and, like the rest of :mod:`vigil.accounts.features`, a row for day D counts only
what happened before its ``event_timestamp`` (D + 1 00:00 UTC):

- **action mix** of the window's non-login events: the shares of follows, views and likes.
  People browse (views, likes); automated accounts post and follow and rarely just look;
- **session shape**: non-login events per login in the window (a login opens a session);
- **login geography**: the share of the window's logins whose country differs from the
  account's home country (a farm's accounts log in from the farm's country);
- **fingerprint reputation**: the other accounts that share one of the account's device or
  network fingerprints (both seen with it before the cut) and were suspended before the cut,
  for any reason and for ``bot``/``spam`` (the enforcement log, the platform's own record).
  A new account that logs in from a device a suspended bot used is known at its first login.

The SQL is the dbt model ``dbt/models/intermediate/accounts/int_account_signup.sql`` (bot
reasons: the macro ``account_bot_reasons``, ``bot`` and ``spam``).
"""

from __future__ import annotations

# feature -> (type, description), appended to features.FEATURES
SIGNUP_FEATURES: dict[str, tuple[str, str]] = {
    "follow_share_7d": ("float", "share of non-login events that are follows"),
    "view_share_7d": ("float", "share of non-login events that are views"),
    "like_share_7d": ("float", "share of non-login events that are likes"),
    "events_per_login_7d": ("float", "non-login events / max(logins, 1) in the window"),
    "login_abroad_share_7d": ("float", "share of logins from a country other than home"),
    "fp_suspended_accounts": ("int", "accounts sharing one of its fps, suspended before the cut"),
    "fp_bot_suspended_accounts": ("int", "the same, suspended for bot or spam"),
}
