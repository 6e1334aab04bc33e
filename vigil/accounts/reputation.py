"""Content reputation: does an account post what suspended spam accounts posted before it?

A new account's first posts say little through cadence (a handful of gaps), and a short post
looks the same from a bot and a person ("wow <link>", "check my profile <link>"). What tells
them apart from the first post on is *whose* content it repeats. The enforcement log (the
platform's own record, never truth) says which accounts were suspended for ``bot`` or ``spam``;
an item (a normalised text or a link) becomes *bad* once such an account posted it and was
suspended, both before the cut. Per (user_id, day), over the window's posts and replies:

- ``text_bad_share_7d``: the share whose normalised text (as in ``dup_text_share_7d``) another
  account posted and was then suspended for bot or spam, both before the cut;
- ``link_bad_share_7d``: the same for the link (exact URL), over the posts with a link;
- ``domain_bad_rate_7d``: over the posts with a link, the mean share of the link's domain's
  other posters (every other account that posted that domain before the cut) suspended for bot
  or spam before the cut (0 when nobody else posted it): a spam domain scores near its farms'
  suspension rate, a news site near 0.

The account itself never counts as its own evidence (an item it posted before its own
suspension is not bad for it). Like the rest of :mod:`vigil.accounts.features`, a row sees only
posts and suspensions before its ``event_timestamp``. The SQL is the dbt model
``dbt/models/intermediate/accounts/int_account_reputation.sql`` (normalised text, link and domain:
the macros of ``dbt/macros/accounts.sql``).
"""

from __future__ import annotations

# feature -> (type, description), appended to features.FEATURES
REPUTATION_FEATURES: dict[str, tuple[str, str]] = {
    "text_bad_share_7d": ("float", "share of posts whose text a suspended spam account posted"),
    "link_bad_share_7d": (
        "float",
        "share of link posts whose link a suspended spam account posted",
    ),
    "domain_bad_rate_7d": ("float", "mean share of the link domain's posters suspended for spam"),
}
