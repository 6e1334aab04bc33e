"""The schedule store: one interface (:class:`Store`), two implementations.

:class:`SQLiteStore` (the embedded default, a WAL file under the data root) and
:class:`PostgresStore` (psycopg 3). Both run the same SQL, written with ``?`` placeholders; they
differ in how a transaction takes its lock (SQLite: ``BEGIN IMMEDIATE``, one writer at a time;
PostgreSQL: an advisory lock per user for the limit checks, ``FOR UPDATE SKIP LOCKED`` for claims).

States of a post: ``pending`` -> ``claimed`` (a publisher holds a lease) -> ``published``; or
``held`` (the model or a moderator said harmful; never published), ``review`` (in the review band,
waiting for a verdict until ``review_deadline``), ``cancelled`` (by its author).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vigil.errors import UserError
from vigil.schedule.migrations import LEDGER, MIGRATIONS

OPEN = ("pending", "claimed", "review")  # count against the pending limit
EDITABLE = ("pending", "review", "held")
DAY_MS = 86_400_000


class ScheduleError(UserError):
    """A request the store refuses; ``status`` is the HTTP status the API answers with."""

    status = 400


class NotFound(ScheduleError):
    status = 404


class Conflict(ScheduleError):
    status = 409


class LimitReached(ScheduleError):
    status = 429


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """The SQL both dialects share. Subclasses provide ``_connect``, ``_begin`` and ``_lock_user``."""

    dialect = ""
    claim_suffix = ""

    def __init__(self) -> None:
        self._local = threading.local()

    # ---- connection and transactions ------------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _sql(self, sql: str) -> str:
        return sql

    def _rows(self, cur) -> list[dict[str, Any]]:
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @contextmanager
    def transaction(self):
        conn = self._conn()
        cur = conn.cursor()
        self._begin(cur)
        try:
            yield _Exec(self, cur)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ---- migrations -----------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; returns the versions applied now."""
        applied_now = []
        with self.transaction() as tx:
            self._lock_migrations(tx)
            tx.run(LEDGER)
            done = {r["version"] for r in tx.all("SELECT version FROM schedule_migrations")}
            for version, statements in MIGRATIONS[self.dialect]:
                if version in done:
                    continue
                for statement in statements:
                    tx.run(statement)
                tx.run(
                    "INSERT INTO schedule_migrations (version, applied_at) VALUES (?, ?)",
                    (version, now_ms()),
                )
                applied_now.append(version)
        return applied_now

    def _lock_migrations(self, tx) -> None:
        """Nothing beyond the transaction's own lock (SQLite); PostgreSQL takes an advisory lock."""

    # ---- tokens ---------------------------------------------------------------------------
    def add_token(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO schedule_tokens (token_sha256, user_id, created_at) VALUES (?, ?, ?)",
                (token_digest(token), int(user_id), now_ms()),
            )
        return token

    def user_for(self, token: str) -> int | None:
        with self.transaction() as tx:
            row = tx.one(
                "SELECT user_id FROM schedule_tokens WHERE token_sha256 = ?", (token_digest(token),)
            )
        return None if row is None else int(row["user_id"])

    def token_count(self) -> int:
        with self.transaction() as tx:
            return int(tx.one("SELECT COUNT(*) AS n FROM schedule_tokens")["n"])

    # ---- the author's operations ----------------------------------------------------------
    def create(
        self,
        user_id: int,
        fields: dict[str, Any],
        limits: tuple[int, int],
        idempotency: tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Insert a post (``fields``: text, scheduled_at, status, reason, score_create, model_id,
        review_deadline) unless the idempotency key was seen: then (that post, False)."""
        now = now_ms()
        with self.transaction() as tx:
            self._lock_user(tx, user_id)
            if idempotency is not None:
                seen = tx.one(
                    "SELECT request_sha256, post_id FROM schedule_idempotency "
                    "WHERE user_id = ? AND idem_key = ?",
                    (user_id, idempotency[0]),
                )
                if seen is not None:
                    if seen["request_sha256"] != idempotency[1]:
                        raise Conflict(
                            f"Idempotency-Key {idempotency[0]!r} was used for another request: "
                            "send the same body again, or use a new key for a new post."
                        )
                    return self._get(tx, user_id, int(seen["post_id"])), False
            self._check_limits(tx, user_id, int(fields["scheduled_at"]), limits, None)
            columns = [
                "user_id", "text", "scheduled_at", "created_at", "updated_at", "status",
                "reason", "score_create", "model_id", "review_deadline",
            ]  # fmt: skip
            values = (user_id, *(fields.get(c) for c in columns[1:3]), now, now)
            values += tuple(fields.get(c) for c in columns[5:])
            row = tx.one(
                f"INSERT INTO scheduled_posts ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))}) RETURNING *",
                values,
            )
            if idempotency is not None:
                tx.run(
                    "INSERT INTO schedule_idempotency "
                    "(user_id, idem_key, request_sha256, post_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    (user_id, idempotency[0], idempotency[1], row["id"], now),
                )
        return row, True

    def add_many(self, posts: list[tuple[int, str, int]]) -> int:
        """Insert pending posts (user_id, text, scheduled_at ms) in one transaction, without the
        API's checks: for loading a backlog, the simulator and the benchmarks."""
        now = now_ms()
        with self.transaction() as tx:
            tx.cur.executemany(
                self._sql(
                    "INSERT INTO scheduled_posts (user_id, text, scheduled_at, created_at, "
                    "updated_at, status) VALUES (?, ?, ?, ?, ?, 'pending')"
                ),
                [(int(u), t, int(at), now, now) for u, t, at in posts],
            )
        return len(posts)

    def _check_limits(self, tx, user_id: int, at: int, limits: tuple[int, int], skip) -> None:
        max_pending, max_per_day = limits
        open_list = ", ".join(f"'{s}'" for s in OPEN)
        pending = tx.one(
            f"SELECT COUNT(*) AS n FROM scheduled_posts WHERE user_id = ? AND status IN ({open_list})"
            " AND id <> ?",
            (user_id, skip or -1),
        )["n"]
        if skip is None and pending >= max_pending:
            raise LimitReached(
                f"user {user_id} already has {pending} pending posts (limit {max_pending}): "
                "wait until some are published or cancel some."
            )
        start = at - at % DAY_MS
        day = tx.one(
            "SELECT COUNT(*) AS n FROM scheduled_posts WHERE user_id = ? AND scheduled_at >= ? "
            "AND scheduled_at < ? AND status <> 'cancelled' AND id <> ?",
            (user_id, start, start + DAY_MS, skip or -1),
        )["n"]
        if day >= max_per_day:
            raise LimitReached(
                f"user {user_id} already has {day} posts scheduled on that UTC day (limit "
                f"{max_per_day}): pick another day."
            )

    def _get(self, tx, user_id: int, post_id: int) -> dict[str, Any]:
        row = tx.one(
            "SELECT * FROM scheduled_posts WHERE id = ? AND user_id = ?", (post_id, user_id)
        )
        if row is None:
            raise NotFound(
                f"no scheduled post {post_id} for this user: list yours with GET /v1/posts."
            )
        return row

    def get(self, user_id: int, post_id: int) -> dict[str, Any]:
        with self.transaction() as tx:
            return self._get(tx, user_id, post_id)

    def list(self, user_id: int, status: str | None = None, limit: int = 100) -> list[dict]:
        sql = "SELECT * FROM scheduled_posts WHERE user_id = ?"
        params: tuple = (user_id,)
        if status is not None:
            sql, params = sql + " AND status = ?", (*params, status)
        with self.transaction() as tx:
            return tx.all(sql + " ORDER BY scheduled_at, id LIMIT ?", (*params, limit))

    def edit(self, user_id: int, post_id: int, fields: dict[str, Any], limits) -> dict[str, Any]:
        """Change text/scheduled_at (with the new moderation fields) of an editable post."""
        with self.transaction() as tx:
            self._lock_user(tx, user_id)
            row = self._get(tx, user_id, post_id)
            if row["status"] not in EDITABLE:
                raise Conflict(
                    f"post {post_id} is {row['status']} and can no longer be edited: "
                    "schedule a new post instead."
                )
            self._check_limits(tx, user_id, int(fields["scheduled_at"]), limits, post_id)
            names = sorted(fields)
            sets = ", ".join(f"{n} = ?" for n in names)
            return tx.one(
                f"UPDATE scheduled_posts SET {sets}, verdict = NULL, updated_at = ? "
                "WHERE id = ? RETURNING *",
                (*(fields[n] for n in names), now_ms(), post_id),
            )

    def cancel(self, user_id: int, post_id: int) -> dict[str, Any]:
        with self.transaction() as tx:
            row = self._get(tx, user_id, post_id)
            if row["status"] == "cancelled":
                return row
            if row["status"] not in EDITABLE:
                raise Conflict(f"post {post_id} is {row['status']} and can no longer be cancelled.")
            return tx.one(
                "UPDATE scheduled_posts SET status = 'cancelled', updated_at = ? "
                "WHERE id = ? RETURNING *",
                (now_ms(), post_id),
            )

    # ---- the publisher's operations -------------------------------------------------------
    def claim(self, owner: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due posts (pending and due, or claimed with an expired lease)."""
        with self.transaction() as tx:
            return tx.all(
                "UPDATE scheduled_posts SET status = 'claimed', lease_owner = ?, lease_until = ?, "
                "attempts = attempts + 1, event_ts = COALESCE(event_ts, ?), updated_at = ? "
                "WHERE id IN (SELECT id FROM scheduled_posts WHERE "
                "(status = 'pending' AND scheduled_at <= ?) OR "
                "(status = 'claimed' AND lease_until < ?) "
                f"ORDER BY scheduled_at, id LIMIT ?{self.claim_suffix}) RETURNING *",
                (owner, now + lease_ms, now, now, now, now, limit),
            )

    def claimed_owners(self) -> list[str]:
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT DISTINCT lease_owner FROM scheduled_posts WHERE status = 'claimed'"
            )
        return [r["lease_owner"] for r in rows if r["lease_owner"]]

    def release(self, owner: str) -> int:
        """End a dead publisher's leases now (its posts become claimable at once)."""
        with self.transaction() as tx:
            return tx.run(
                "UPDATE scheduled_posts SET lease_until = 0 "
                "WHERE status = 'claimed' AND lease_owner = ?",
                (owner,),
            )

    def settle(self, owner: str, outcomes: list[dict[str, Any]]) -> int:
        """Record each claimed post's outcome (published / held / review) if ``owner`` still holds
        its lease; returns how many rows changed."""
        now = now_ms()
        params = [
            (
                o["status"], o.get("reason"), o.get("score"), o.get("model_id"),
                o.get("review_deadline"), o.get("published_at"), int(o.get("late", 0)),
                now, o["id"], owner,
            )
            for o in outcomes
        ]  # fmt: skip
        if not params:
            return 0
        with self.transaction() as tx:
            # one executemany: psycopg pipelines it (one round trip, not one per post)
            tx.cur.executemany(
                self._sql(
                    "UPDATE scheduled_posts SET status = ?, reason = ?, score_publish = ?, "
                    "model_id = COALESCE(?, model_id), review_deadline = ?, published_at = ?, "
                    "late = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? "
                    "WHERE id = ? AND status = 'claimed' AND lease_owner = ?"
                ),
                params,
            )
            return int(tx.cur.rowcount)

    def expire_reviews(self, now: int) -> int:
        with self.transaction() as tx:
            return tx.run(
                "UPDATE scheduled_posts SET status = 'held', reason = ?, updated_at = ? "
                "WHERE status = 'review' AND review_deadline < ?",
                ("no moderator verdict before the review deadline; held", now, now),
            )

    def set_verdict(self, post_id: int, harmful: bool, reviewer: str) -> dict[str, Any]:
        """A moderator's verdict on a post in review: harmful -> held, else pending (publishable)."""
        with self.transaction() as tx:
            row = tx.one("SELECT * FROM scheduled_posts WHERE id = ?", (post_id,))
            if row is None or row["status"] != "review":
                state = "missing" if row is None else row["status"]
                raise Conflict(f"post {post_id} is {state}, not in review: no verdict to record.")
            status, reason = (
                ("held", f"removed by moderator {reviewer}") if harmful else ("pending", None)
            )
            return tx.one(
                "UPDATE scheduled_posts SET status = ?, reason = ?, verdict = ?, updated_at = ? "
                "WHERE id = ? RETURNING *",
                (status, reason, "remove" if harmful else "allow", now_ms(), post_id),
            )

    def counts(self) -> dict[str, int]:
        with self.transaction() as tx:
            rows = tx.all("SELECT status, COUNT(*) AS n FROM scheduled_posts GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    def all_posts(self) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return tx.all("SELECT * FROM scheduled_posts ORDER BY id")


class _Exec:
    """A transaction's cursor with the dialect's placeholders."""

    def __init__(self, store: Store, cur) -> None:
        self.store, self.cur = store, cur

    def run(self, sql: str, params: tuple = ()) -> int:
        self.cur.execute(self.store._sql(sql), params)
        return self.cur.rowcount

    def all(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        self.cur.execute(self.store._sql(sql), params)
        return self.store._rows(self.cur)

    def one(self, sql: str, params: tuple = ()) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _begin(self, cur) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def _lock_user(self, tx, user_id: int) -> None:
        """BEGIN IMMEDIATE already serializes writers."""

    def describe(self) -> str:
        return f"SQLite {self.path}"


class PostgresStore(Store):
    dialect = "postgres"
    claim_suffix = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url.replace("postgres://", "postgresql://", 1)
        ensure_database(self.url)

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise UserError(
                f"cannot reach the schedule database {self.url} ({exc}): start PostgreSQL or "
                "unset VIGIL_SCHEDULE_DB to use SQLite."
            ) from None

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _begin(self, cur) -> None:
        cur.execute("BEGIN")

    def _lock_user(self, tx, user_id: int) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?, ?)", (24, int(user_id) % 2_000_000_000))

    def _lock_migrations(self, tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?, ?)", (24, -1))

    def describe(self) -> str:
        return f"PostgreSQL {self.url}"


def ensure_database(url: str) -> bool:
    """Create the URL's database when the server does not have it yet; True if created."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(url)
    name = info.get("dbname") or "postgres"
    try:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.errors.DuplicateDatabase:
        return False
    except psycopg.OperationalError as exc:
        raise UserError(
            f"cannot reach PostgreSQL for the schedule store ({exc}): start it or unset "
            "VIGIL_SCHEDULE_DB to use SQLite."
        ) from None


def open_store(url: str | None = None, migrate: bool = True) -> Store:
    """The store at ``url`` (default: ``config.schedule_db()``), migrated to the latest version."""
    from vigil import config

    try:
        url = url or config.schedule_db()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise UserError(
            f"schedule store {url!r} is not supported: use postgresql://user@host:port/db or "
            "sqlite:///PATH."
        )
    store: Store
    if url.startswith("sqlite:///"):
        store = SQLiteStore(Path(url.removeprefix("sqlite:///")))
    else:
        store = PostgresStore(url)
    if migrate:
        store.migrate()
    return store
