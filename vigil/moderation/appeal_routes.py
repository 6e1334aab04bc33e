"""The scoring service's appeal endpoints (see :mod:`vigil.moderation.appeals`).

Refusals, each one 4xx with a sentence naming the fix: unknown post (404), a post whose latest
decision is not a removal (409), an author who did not write the post (403), a second appeal on
the same post (409), a malformed body (400/422), a verdict on an appeal already decided (409).
"""

from __future__ import annotations

import json
import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from vigil.moderation.appeals import MAX_REASON_CHARS, OUTCOMES, QUEUE, STATUSES, request_review

log = logging.getLogger(__name__)

APPEAL_EXAMPLE = '{"post_id": 42, "author_id": 7, "reason": "this is satire"}'
VERDICT_EXAMPLE = '{"outcome": "reverse", "reviewer": "alice"}'


class AppealRequest(BaseModel):
    post_id: int = Field(..., ge=0, description="the removed post")
    author_id: int = Field(..., ge=0, description="its author (only the author can appeal)")
    reason: str = Field("", description=f"why the removal is wrong (<= {MAX_REASON_CHARS} chars)")


class VerdictRequest(BaseModel):
    outcome: str = Field(..., description="reverse (restore the post) or uphold")
    reviewer: str = Field(..., min_length=1, max_length=128, description="who decided")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _body(raw: bytes, model: type[BaseModel], example: str):
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, f"the body is not JSON: send JSON like {example}.")
    if not isinstance(data, dict):
        return _error(422, f"the body must be a JSON object like {example}.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = [
            f"{'.'.join(str(x) for x in e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:3]
        ]
        return _error(422, f"malformed request ({'; '.join(parts)}): send JSON like {example}.")


def file_appeal(parts, body: AppealRequest) -> JSONResponse | dict:
    """Check the appeal against the decision log and the posts, then store and queue it."""
    if len(body.reason) > MAX_REASON_CHARS:
        return _error(
            413,
            f"reason is {len(body.reason)} characters, over the limit of {MAX_REASON_CHARS}: "
            "shorten it.",
        )
    history = parts.decisions.history(body.post_id)
    post = parts.posts.get(body.post_id)
    if not history and post is None:
        return _error(404, f"post {body.post_id} not found: check the id of the removed post.")
    latest = history[-1] if history else None
    if latest is None or latest["decision"] != "remove":
        state = "has no decision yet" if latest is None else f"is {latest['decision']}ed"
        return _error(
            409,
            f"post {body.post_id} was not removed (it {state}): only removals can be appealed.",
        )
    author = post.author_id if post is not None else latest.get("author_id")
    if author is not None and author != body.author_id:
        return _error(
            403,
            f"author {body.author_id} did not write post {body.post_id}: only its author can "
            "appeal.",
        )
    earlier = parts.appeals.for_post(body.post_id)
    if earlier is not None:
        return _error(
            409,
            f"post {body.post_id} already has appeal {earlier['appeal_id']} "
            f"({earlier['status']}): follow it with GET /v1/appeals/{earlier['appeal_id']}.",
        )
    try:
        appeal = parts.appeals.create(
            {
                "post_id": body.post_id,
                "author_id": body.author_id,
                "reason": body.reason,
                "model_id": latest.get("model_id"),
                "removal_probability": latest.get("probability"),
                "removed_at": latest.get("decided_at"),
                "harm_type": latest.get("harm_type") or "unknown",
                "author_age_bucket": latest.get("author_age_bucket") or "unknown",
            }
        )
    except sqlite3.IntegrityError:  # a concurrent appeal on the same post won
        return _error(409, f"post {body.post_id} already has an appeal: GET /v1/appeals.")
    request_review(appeal)
    parts.metrics.decisions.labels("appeal", "appeal_filed").inc()
    return appeal


def apply_verdict(parts, appeal: dict, status: str, reviewer: str) -> dict:
    """Decide a pending appeal; a reversal restores the post (a new allow decision)."""
    decided = parts.appeals.decide(appeal["appeal_id"], status, reviewer)
    if status == "reversed":
        parts.decisions.append(
            {
                "post_id": appeal["post_id"],
                "model_id": appeal["model_id"],
                "probability": appeal["removal_probability"],
                "decision": "allow",
                "trigger": "appeal_reversed",
                "author_id": appeal["author_id"],
                "harm_type": appeal["harm_type"],
                "author_age_bucket": appeal["author_age_bucket"],
            }
        )
    parts.metrics.decisions.labels("appeal", f"appeal_{status}").inc()
    log.info(
        "appeal %d on post %d %s by %s", appeal["appeal_id"], appeal["post_id"], status, reviewer
    )
    return decided


def add_appeal_routes(app: FastAPI, parts) -> None:
    @app.post("/v1/appeals", status_code=201)
    async def appeal(request: Request):
        body = _body(await request.body(), AppealRequest, APPEAL_EXAMPLE)
        if isinstance(body, JSONResponse):
            return body
        out = file_appeal(parts, body)
        return out if isinstance(out, JSONResponse) else JSONResponse(out, status_code=201)

    @app.get("/v1/appeals")
    async def appeals(status: str | None = None):
        if status is not None and status not in STATUSES:
            return _error(422, f"status {status!r} is not one of {', '.join(STATUSES)}.")
        return {"appeals": parts.appeals.list(status), "queue": QUEUE}

    @app.post("/v1/appeals/sync")
    async def sync():
        from vigil.moderation.appeals import pending_verdicts

        decided = [
            apply_verdict(parts, a, s, a["reviewer"]) for a, s in pending_verdicts(parts.appeals)
        ]
        return {"decided": decided, "pending": len(parts.appeals.list("pending"))}

    @app.get("/v1/appeals/{appeal_id}")
    async def get_appeal(appeal_id: int):
        found = parts.appeals.get(appeal_id)
        if found is None:
            return _error(404, f"appeal {appeal_id} not found: list them with GET /v1/appeals.")
        return found

    @app.post("/v1/appeals/{appeal_id}/verdict")
    async def verdict(appeal_id: int, request: Request):
        body = _body(await request.body(), VerdictRequest, VERDICT_EXAMPLE)
        if isinstance(body, JSONResponse):
            return body
        if body.outcome not in OUTCOMES:
            return _error(
                422, f"outcome {body.outcome!r} is not reverse or uphold: send {VERDICT_EXAMPLE}."
            )
        found = parts.appeals.get(appeal_id)
        if found is None:
            return _error(404, f"appeal {appeal_id} not found: list them with GET /v1/appeals.")
        if found["status"] != "pending":
            return _error(
                409, f"appeal {appeal_id} is already {found['status']}: a verdict is final."
            )
        return apply_verdict(parts, found, OUTCOMES[body.outcome], body.reviewer)
