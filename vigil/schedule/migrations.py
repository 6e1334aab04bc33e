"""The schedule store's tables, as numbered migrations per dialect.

A migration is applied once: the version is recorded in ``schedule_migrations`` in the same
transaction as its statements, and the whole run holds a lock (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: an advisory lock), so two processes starting together apply each version once.
Times are integer milliseconds since the epoch (UTC) in both dialects.
"""

from __future__ import annotations

_POSTS = """
CREATE TABLE scheduled_posts (
    id {id_type},
    user_id BIGINT NOT NULL,
    text TEXT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    score_create DOUBLE PRECISION,
    score_publish DOUBLE PRECISION,
    model_id TEXT,
    verdict TEXT,
    review_deadline BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    event_ts BIGINT,
    published_at BIGINT,
    late INTEGER NOT NULL DEFAULT 0
)
"""

_COMMON = [
    "CREATE INDEX scheduled_posts_due ON scheduled_posts (status, scheduled_at)",
    "CREATE INDEX scheduled_posts_user ON scheduled_posts (user_id, status, scheduled_at)",
    """CREATE TABLE schedule_tokens (
        token_sha256 TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    )""",
    """CREATE TABLE schedule_idempotency (
        user_id BIGINT NOT NULL,
        idem_key TEXT NOT NULL,
        request_sha256 TEXT NOT NULL,
        post_id BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, idem_key)
    )""",
]

# version -> statements, per dialect
MIGRATIONS: dict[str, list[tuple[int, list[str]]]] = {
    "sqlite": [(1, [_POSTS.format(id_type="INTEGER PRIMARY KEY AUTOINCREMENT"), *_COMMON])],
    "postgres": [(1, [_POSTS.format(id_type="BIGSERIAL PRIMARY KEY"), *_COMMON])],
}

LEDGER = (
    "CREATE TABLE IF NOT EXISTS schedule_migrations "
    "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
)


def latest(dialect: str) -> int:
    return max(version for version, _ in MIGRATIONS[dialect])
