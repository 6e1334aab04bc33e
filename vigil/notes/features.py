"""The notes feature tables and Feast views, defined once (plain Python, no heavy imports).

``vigil notes run`` writes each table to ``<data root>/features/<table>.parquet`` (one row per
entity and change, with the ``event_timestamp`` of the scoring run that produced it);
``feature_repo/`` builds the Feast entities, sources and views from this module, and the
``notes_scores`` gate checks the same columns. Types: ``int`` (Int64), ``float`` (Float64),
``string`` (String).
"""

from __future__ import annotations

# table -> (entity name, join key, key type, {feature: (type, description)})
VIEWS: dict[str, tuple[str, str, str, dict[str, tuple[str, str]]]] = {
    "note_status": (
        "note",
        "note_id",
        "int",
        {
            "post_id": ("int", "the post (tweetId) the note is on"),
            "status": (
                "string",
                "final status: CURRENTLY_RATED_HELPFUL / _NOT_HELPFUL / NEEDS_MORE_RATINGS",
            ),
            "is_shown": ("int", "1 when the status is CURRENTLY_RATED_HELPFUL"),
            "note_intercept": (
                "float",
                "final-round note intercept (helpfulness across viewpoints)",
            ),
            "note_factor": ("float", "final-round note factor (viewpoint slant)"),
            "first_round_intercept": ("float", "first-round (prescoring) note intercept"),
            "num_ratings": ("int", "ratings of the note"),
            "status_since_millis": ("int", "ms since epoch when the current status began"),
        },
    ),
    "post_best_note": (
        "post",
        "post_id",
        "int",
        {
            "shown_note_id": ("int", "the helpful note with the highest intercept; 0: none"),
            "shown_note_intercept": ("float", "that note's intercept"),
            "notes_on_post": ("int", "notes written on the post"),
            "helpful_notes_on_post": ("int", "notes on the post rated helpful"),
        },
    ),
    "contributor_reputation": (
        "contributor",
        "participant_id",
        "string",
        {
            "reputation": ("float", "propagated reputation (1 = average; flagged raters lower)"),
            "rater_agree_ratio": ("float", "share of ratings agreeing with the final statuses"),
            "is_helpful_rater": ("int", "1 when above the helpfulness threshold (round 2)"),
            "is_colluding": ("int", "1 when the collusion detector flagged the rater"),
            "ratings_given": ("int", "ratings the contributor made"),
            "notes_written": ("int", "notes the contributor wrote"),
        },
    ),
}

# How long an online or point-in-time read looks back for a row: a status holds until the
# next run changes it, so a year.
TTL_DAYS = 365


def table_columns(table: str) -> list[str]:
    """A table's columns in file order: key, event_timestamp, features."""
    _, key, _, fields = VIEWS[table]
    return [key, "event_timestamp", *fields]


def feature_names(table: str) -> list[str]:
    return list(VIEWS[table][3])
