"""The scheduled-posts API (FastAPI; OpenAPI at /docs and /openapi.json).

Every ``/v1`` route needs ``Authorization: Bearer <token>``; the token names the user
(``vigil schedule token --user ID`` makes one). A user sees only their own posts: another user's
post is 404, as a missing one. Refusals are one JSON object ``{"error": "..."}`` naming the
problem and the fix; a refused request changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vigil.schedule.moderation import POST_ID_BASE, Check, DecisionLog, Moderator
from vigil.schedule.store import EDITABLE, ScheduleError, Store, now_ms

MIN_AHEAD_MS = 5 * 60_000
MAX_AHEAD_MS = 365 * 86_400_000
MAX_TEXT = 5000
STATUSES = ("pending", "claimed", "published", "held", "review", "cancelled")


class NewPost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="the post, 1 to 5,000 characters")
    scheduled_at: datetime = Field(description="ISO 8601 with a time zone, 5 min to 1 year ahead")


class PostEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    scheduled_at: datetime | None = None


@dataclass
class Parts:
    store: Store
    moderator: Moderator
    decisions: DecisionLog | None
    limits: tuple[int, int]
    review_window_ms: int = 3_600_000


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A post as the API shows it."""
    return {
        "id": int(row["id"]),
        "status": row["status"],
        "text": row["text"],
        "scheduled_at": _iso(row["scheduled_at"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "reason": row["reason"],
        "review_deadline": _iso(row["review_deadline"]),
        "score_at_create": row["score_create"],
        "score_at_publish": row["score_publish"],
        "model_id": row["model_id"],
        "published_at": _iso(row["published_at"]),
        "late": bool(row["late"]),
        "post_id": POST_ID_BASE + int(row["id"]) if row["status"] == "published" else None,
    }


def check_time(at: datetime, now: int) -> int:
    if at.tzinfo is None:
        raise Refused(422, "scheduled_at has no time zone: send ISO 8601 with one, e.g. ...Z.")
    ms = int(at.timestamp() * 1000)
    if ms <= now:
        raise Refused(
            422,
            f"scheduled_at {at.isoformat()} is in the past (now {_iso(now)}): pick a time at "
            "least 5 minutes in the future.",
        )
    if ms < now + MIN_AHEAD_MS:
        raise Refused(
            422,
            f"scheduled_at {at.isoformat()} is less than 5 minutes ahead (now "
            f"{_iso(now)}): pick a time at least 5 minutes in the future.",
        )
    if ms > now + MAX_AHEAD_MS:
        raise Refused(
            422, f"scheduled_at {at.isoformat()} is more than a year ahead: pick an earlier time."
        )
    return ms


def check_text(text: str) -> str:
    if not text.strip():
        raise Refused(422, "text is empty: send the post's text (1 to 5,000 characters).")
    if len(text) > MAX_TEXT:
        raise Refused(422, f"text has {len(text)} characters: shorten it to at most {MAX_TEXT}.")
    return text


def moderated(parts: Parts, text: str, at: int, check: Check) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "text": text,
        "scheduled_at": at,
        "status": "pending",
        "reason": check.reason,
        "score_create": check.probability,
        "model_id": check.model_id,
        "review_deadline": None,
    }
    if check.decision == "remove":
        fields["status"] = "held"
    elif check.decision == "review":
        fields["status"] = "review"
        fields["review_deadline"] = at + parts.review_window_ms
    return fields


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    if first.get("type") == "json_invalid":
        return 'the body is not valid JSON: send an object like {"text": ..., "scheduled_at": ...}.'
    if first.get("type") == "extra_forbidden":
        return f"unknown field {where!r}: send only text and scheduled_at."
    if first.get("type") == "missing":
        return f"{where} is missing: send text and scheduled_at (ISO 8601 with a time zone)."
    return f"{where}: {first.get('msg', 'invalid')}; send text and scheduled_at (ISO 8601)."


def create_app(parts: Parts) -> FastAPI:
    """The app: error handlers, the collection routes and the routes of one post."""
    app = FastAPI(
        title="vigil schedule",
        version="1",
        description="Scheduled posts: checked by the moderation model, published exactly once.",
    )
    _add_error_handlers(app)
    _add_collection_routes(app, parts)
    _add_post_routes(app, parts)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True, "model_id": parts.moderator.model_id}

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(ScheduleError)
    async def _store_refused(request: Request, exc: ScheduleError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)


def _user(parts: Parts, authorization: str | None) -> int:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "missing bearer token: send 'Authorization: Bearer <token>'.")
    found = parts.store.user_for(token.strip())
    if found is None:
        raise Refused(401, "unknown token: ask for one with `vigil schedule token --user ID`.")
    return found


def _check(parts: Parts, post_id: int, uid: int, text: str, trigger: str) -> Check:
    result = parts.moderator.check(text, uid)
    if parts.decisions is not None:
        parts.decisions.append(post_id, text, result, trigger)
    return result


def _add_collection_routes(app: FastAPI, parts: Parts) -> None:
    @app.post("/v1/posts", status_code=201, summary="schedule a post")
    def create(
        body: NewPost,
        authorization: str | None = Header(default=None),
        idempotency_key: str | None = Header(default=None, max_length=200),
    ):
        uid = _user(parts, authorization)
        now = now_ms()
        text, at = check_text(body.text), check_time(body.scheduled_at, now)
        idem = None
        if idempotency_key is not None:
            digest = hashlib.sha256(json.dumps([text, at]).encode()).hexdigest()
            idem = (idempotency_key, digest)
        result = parts.moderator.check(text, uid)
        row, created = parts.store.create(
            uid, moderated(parts, text, at, result), parts.limits, idem
        )
        if created and parts.decisions is not None:
            parts.decisions.append(row["id"], text, result, "schedule_create")
        return JSONResponse(public(row), status_code=201 if created else 200)

    @app.get("/v1/posts", summary="list your scheduled posts")
    def list_posts(
        status: str | None = None, limit: int = 100, authorization: str | None = Header(None)
    ):
        uid = _user(parts, authorization)
        if status is not None and status not in STATUSES:
            raise Refused(422, f"status {status!r} is unknown: use one of {', '.join(STATUSES)}.")
        if not 1 <= limit <= 1000:
            raise Refused(422, f"limit {limit} is out of range: use 1 to 1000.")
        return {"posts": [public(r) for r in parts.store.list(uid, status, limit)]}


def _add_post_routes(app: FastAPI, parts: Parts) -> None:
    @app.get("/v1/posts/{post_id}", summary="one of your posts (with the reason if held)")
    def get_post(post_id: int, authorization: str | None = Header(None)):
        return public(parts.store.get(_user(parts, authorization), post_id))

    @app.patch("/v1/posts/{post_id}", summary="edit text and/or time (checked again)")
    def edit_post(post_id: int, body: PostEdit, authorization: str | None = Header(None)):
        uid = _user(parts, authorization)
        if body.text is None and body.scheduled_at is None:
            raise Refused(422, "nothing to change: send text and/or scheduled_at.")
        row = parts.store.get(uid, post_id)
        if row["status"] not in EDITABLE:
            raise Refused(
                409,
                f"post {post_id} is {row['status']} and can no longer be edited: "
                "schedule a new post instead.",
            )
        now = now_ms()
        text = check_text(body.text) if body.text is not None else row["text"]
        if body.scheduled_at is not None:
            at = check_time(body.scheduled_at, now)
        else:
            at = int(row["scheduled_at"])
        result = _check(parts, post_id, uid, text, "schedule_edit")
        return public(
            parts.store.edit(uid, post_id, moderated(parts, text, at, result), parts.limits)
        )

    @app.delete("/v1/posts/{post_id}", summary="cancel a post before it is published")
    def cancel_post(post_id: int, authorization: str | None = Header(None)):
        return public(parts.store.cancel(_user(parts, authorization), post_id))
