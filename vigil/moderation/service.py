"""The scoring service's ASGI app (FastAPI): score posts online with the champion's cascade.

    POST /v1/score                {"post_id": 42} or {"text": "...", "author_id": 7[, "post_id": 9001]}
                                  -> probability, student, decision, model_id, features used
    GET  /v1/decisions/{post_id}  the post's latest decision and its earlier ones
    GET  /v1/features/{post_id}   the online features of the post and its author
    POST /v1/appeals              {"post_id": 42, "author_id": 7, "reason": "..."}: the author of a
                                  removed post appeals (vigil.moderation.appeals)
    GET  /v1/appeals/{appeal_id}  an appeal and its status; GET /v1/appeals?status=pending lists
    POST /v1/appeals/{appeal_id}/verdict  {"outcome": "reverse" | "uphold", "reviewer": "..."}
    POST /v1/appeals/sync         apply the moderators' verdict files to pending appeals
    GET  /healthz                 model, online store, posts known (always open)
    GET  /metrics                 Prometheus text format
    GET  /docs, /openapi.json     OpenAPI

With a token configured (``VIGIL_SERVE_TOKEN``) every endpoint but ``/healthz`` needs
``Authorization: Bearer <token>``. Bad input gets one 4xx with a ``detail`` sentence naming the
problem and the fix; the service answers 500 (and logs) rather than dying on anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from vigil.errors import UserError

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 10_000
MAX_BODY_BYTES = 256_000  # beyond any valid request: refused before parsing
OPEN_PATHS = frozenset({"/healthz"})


class ScoreRequest(BaseModel):
    post_id: int | None = Field(None, ge=0, description="a known post, or the id of a new one")
    text: str | None = Field(None, description=f"a new post's text (<= {MAX_TEXT_CHARS} chars)")
    author_id: int | None = Field(None, ge=0, description="a new post's author")
    trigger: str = Field("request", max_length=64, description="why it is scored (logged)")
    at_ms: int | None = Field(
        None,
        ge=0,
        description="the trigger's event time, ms since the epoch (the stream sends it): logged as "
        "the decision's event_at and the day of the spare heavy calls; default: now",
    )


@dataclass
class Components:
    """What the app serves with; built by :func:`build` (tests and benches may build their own)."""

    reader: Any  # vigil.serving.online.OnlineReader
    model: Any  # training.online.OnlineModel
    posts: Any  # vigil.moderation.posts.PostIndex
    decisions: Any  # vigil.moderation.decisions.DecisionLog
    metrics: Any  # vigil.moderation.metrics.Metrics
    token: str | None = None
    appeals: Any = None  # vigil.moderation.appeals.AppealStore (None: no appeal endpoints)
    # Online evaluation (vigil.evaluation): a candidate model beside the champion. ``hash``: each
    # known post is decided by its arm's model (salted hash of the post id); ``shadow``: the
    # champion decides, the candidate scores every post too and its row is logged with trigger
    # ``shadow`` (kept out of GET /v1/decisions).
    candidate: Any = None
    arms: str = "shadow"
    salt: str = "vigil-online-eval"
    candidate_share: float = 0.5
    # a re-score request for a post whose latest logged decision is a removal is
    # answered with it, not scored again (no heavy call): what the re-scoring replay does (issue
    # 22); on by default (`vigil serve --no-skip-removed`: off)
    skip_removed: bool = True


def build(
    heavy: str = "cascade",
    model_id: str | None = None,
    candidate_id: str | None = None,
    arms: str = "shadow",
    salt: str = "vigil-online-eval",
    candidate_share: float = 0.5,
    spare: tuple[int, float] | None = None,
    skip_removed: bool = True,
) -> Components:
    """Load the champion through the model registry, warm the online store reader, the posts and
    the decision log. ``spare`` = (daily heavy-call budget, floor): the champion's spare heavy
    calls (:class:`training.online.SpareCalls`; None: off)."""
    from training.online import OnlineModel, SpareCalls
    from vigil import config
    from vigil.moderation.decisions import DecisionLog
    from vigil.moderation.metrics import Metrics
    from vigil.moderation.posts import PostIndex
    from vigil.serving.online import OnlineReader

    if spare is not None and heavy != "cascade":
        raise UserError(
            f"spare heavy calls spend the cascade's unused calls: drop them or use --heavy "
            f"cascade (not {heavy})."
        )
    model = OnlineModel(model_id, heavy=heavy, spare=None if spare is None else SpareCalls(*spare))
    reader = OnlineReader(model.cfg.feature_service)
    missing = sorted(set(model.feature_columns) - set(reader.columns))
    if missing:
        raise UserError(
            f"model {model.model_id} reads features the feature service {reader.feature_service} "
            f"does not serve ({', '.join(missing[:5])}): retrain with `vigil train`."
        )
    if heavy != "never":
        import torch

        # One post at a time: intra-op threads only contend (3.6 vs 4.5 ms a heavy score here).
        torch.set_num_threads(1)
    _check_head(model, reader)
    model.warm()
    candidate = None
    if candidate_id:
        candidate = OnlineModel(candidate_id, heavy=heavy)
        lacking = sorted(set(candidate.feature_columns) - set(reader.columns))
        if lacking:
            raise UserError(
                f"candidate {candidate.model_id} reads features the feature service "
                f"{reader.feature_service} does not serve ({', '.join(lacking[:5])}): pick a "
                "candidate trained on the same feature service."
            )
        _check_head(candidate, reader)
        candidate.warm()
    from vigil.moderation.appeals import AppealStore

    return Components(
        reader,
        model,
        PostIndex(),
        DecisionLog(),
        Metrics(),
        config.serve_token(),
        AppealStore(),
        candidate,
        arms,
        salt,
        candidate_share,
        skip_removed,
    )


def _check_head(model, reader) -> None:
    """A re-score head whose counters the feature service does not serve is not used (logged)."""
    missing = sorted(set(model.head_columns) - set(reader.columns))
    if model.head is not None and missing:
        log.warning(
            "model %s: its re-score head reads %s, which the feature service %s does not serve: "
            "the head is not used",
            model.model_id,
            ", ".join(missing),
            reader.feature_service,
        )
        model.head, model.head_columns = None, []


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _parse(raw: bytes) -> ScoreRequest | JSONResponse:
    """The request body as JSON whatever its content type (curl -d sends a form type)."""
    from pydantic import ValidationError

    if len(raw) > MAX_BODY_BYTES:
        return _error(
            413, f"request body is {len(raw)} bytes, over {MAX_BODY_BYTES}: send a shorter text."
        )
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(
            400,
            f"the body is not JSON ({exc.__class__.__name__}: {str(exc)[:80]}): send JSON like "
            '{"post_id": 42} or {"text": "...", "author_id": 7}.',
        )
    if not isinstance(data, dict):
        return _error(
            422,
            'the body must be a JSON object like {"post_id": 42} or {"text": "...", "author_id": 7}.',
        )
    try:
        return ScoreRequest.model_validate(data)
    except ValidationError as exc:
        return _error(422, _validation_detail(exc))


def _validation_detail(exc) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return (
        "malformed request (" + "; ".join(parts) + "): send JSON like "
        '{"post_id": 42} or {"text": "...", "author_id": 7}.'
    )


def create_app(parts: Components) -> FastAPI:
    app = FastAPI(
        title="Vigil scoring service",
        version="1",
        description="Harmful-content decisions online: the champion's cascade on Feast features.",
    )
    app.state.parts = parts
    metrics = parts.metrics
    metrics.model_info.labels(parts.model.model_id).set(1)

    app.add_middleware(GateAndMeasure, parts=parts)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError):
        return _error(422, _validation_detail(exc))

    @app.post(
        "/v1/score",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ScoreRequest.model_json_schema()}},
            }
        },
    )
    async def score(request: Request):
        body = _parse(await request.body())
        if isinstance(body, JSONResponse):
            return body
        return _score(parts, body)

    @app.get("/v1/decisions/{post_id}")
    async def decisions(post_id: int):
        history = parts.decisions.history(post_id)
        if not history:
            return _error(404, f"no decision for post {post_id} yet: score it with POST /v1/score.")
        return {"post_id": post_id, "latest": history[-1], "history": history}

    @app.get("/v1/features/{post_id}")
    async def online_features(post_id: int):
        """The post's and its author's online features (the service's feature service)."""
        post = parts.posts.get(post_id)
        vector = parts.reader.read(post_id=post_id, user_id=post.author_id if post else None)
        if post is None and all(vector[c] is None for c in parts.reader.columns):
            return _error(404, f"post {post_id} not found in the posts mart or the online store.")
        return {k: _finite(v) for k, v in vector.items()}

    if parts.appeals is not None:
        from vigil.moderation.appeal_routes import add_appeal_routes

        add_appeal_routes(app, parts)

    from vigil.serving.timeline import add_timeline_routes  # GET /v1/timeline/{user_id}

    add_timeline_routes(app)

    @app.get("/healthz")
    async def healthz():
        return {
            "status": "ok",
            "model_id": parts.model.model_id,
            "heavy": parts.model.heavy,
            "online_store": parts.reader.store_kind,
            "feature_service": parts.reader.feature_service,
            "posts": len(parts.posts),
        }

    @app.get("/metrics")
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


class GateAndMeasure:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware costs ~0.5 ms a request): the token
    check, then the request count and latency by endpoint and status."""

    def __init__(self, app, parts: Components) -> None:
        self.app = app
        self.parts = parts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        refusal = _refusal(self.parts.token, path, authorization)
        status = [500]
        if refusal is not None:
            status[0] = refusal.status_code
            await refusal(scope, receive, send)
        else:

            async def send_and_note(message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_and_note)
            except Exception:  # answered 500 by Starlette already; the service keeps serving
                log.exception("serve: %s %s failed", scope.get("method"), path)
        metrics = self.parts.metrics
        endpoint = _endpoint(path)
        metrics.requests.labels(endpoint, str(status[0])).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


KNOWN_PATHS = frozenset({"/v1/score", "/healthz", "/metrics", "/docs", "/openapi.json"})


def _endpoint(path: str) -> str:
    """The metric label for a path: a route's template, never the raw path (unbounded)."""
    for prefix in ("/v1/decisions/", "/v1/features/"):
        if path.startswith(prefix):
            return prefix + "{post_id}"
    if path.startswith("/v1/appeals"):
        return _appeal_endpoint(path)
    return path if path in KNOWN_PATHS else "other"


def _appeal_endpoint(path: str) -> str:
    if path in ("/v1/appeals", "/v1/appeals/sync"):
        return path
    return "/v1/appeals/{appeal_id}" + ("/verdict" if path.endswith("/verdict") else "")


def _refusal(token: str | None, path: str, authorization: str) -> JSONResponse | None:
    if not token or path in OPEN_PATHS:
        return None
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        response = _error(401, "this service needs Authorization: Bearer <VIGIL_SERVE_TOKEN>.")
        response.headers["www-authenticate"] = "Bearer"
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return _error(403, "wrong token: use the service's VIGIL_SERVE_TOKEN.")
    return None


def _resolve(parts: Components, body: ScoreRequest) -> tuple[int | None, int, str] | JSONResponse:
    """(post id, author id, text) for the request, or the 4xx answer."""
    if body.text is not None:
        if len(body.text) > MAX_TEXT_CHARS:
            return _error(
                413,
                f"text is {len(body.text)} characters, over the limit of {MAX_TEXT_CHARS}: "
                "send at most that many.",
            )
        if body.author_id is None:
            return _error(422, "a new post needs author_id with its text.")
        return body.post_id, body.author_id, body.text
    if body.post_id is None:
        return _error(
            422,
            'give a post_id (a known post) or text and author_id (a new post): {"post_id": 42}.',
        )
    post = parts.posts.get(body.post_id)
    if post is None:
        return _error(
            404,
            f"post {body.post_id} not found: check the id, or send text and author_id to score a "
            "new post.",
        )
    return post.post_id, post.author_id, post.text


def _score(parts: Components, body: ScoreRequest):
    resolved = _resolve(parts, body)
    if isinstance(resolved, JSONResponse):
        return resolved
    post_id, author_id, text = resolved
    removed = _removed(parts, post_id, body.trigger)
    if removed is not None:
        return removed
    at = None if body.at_ms is None else datetime.fromtimestamp(body.at_ms / 1000, UTC)
    started = time.perf_counter()
    known = body.text is None
    vector = parts.reader.read(post_id=post_id if known else None, user_id=author_id)
    parts.metrics.feature_read.observe(time.perf_counter() - started)
    acting, arm = _acting(parts, post_id)
    used = {c: vector.get(c) for c in [*acting.feature_columns, *acting.head_columns]}
    hits = acting.embeddings.hits
    result = acting.score(text, used, body.trigger, at)
    if result["routed_to_heavy"]:
        parts.metrics.heavy_calls.inc()
        cache = "hit" if acting.embeddings.hits > hits else "miss"
        parts.metrics.embedding_cache.labels(cache).inc()
    content_hash = hashlib.sha256(text.encode()).hexdigest()
    record = parts.decisions.append(
        {
            **result,
            "post_id": post_id,
            "trigger": body.trigger,
            "event_at": None if at is None else at.isoformat(),
            "content_hash": content_hash,
            "author_id": author_id,
            **_slices(result, vector),
        }
    )
    parts.metrics.decisions.labels(result["decision"], body.trigger).inc()
    if parts.candidate is not None and parts.arms == "shadow":
        _shadow(parts, text, vector, post_id, author_id, content_hash, body.trigger)
    return {
        "post_id": post_id,
        "author_id": author_id,
        "decision": result["decision"],
        "probability": result["probability"],
        "student": result["student"],
        "routed_to_heavy": result["routed_to_heavy"],
        "spare": result.get("spare", False),
        "head": result["head"],
        "path": result["path"],
        "harm_type_scores": result["harm_type_scores"],
        "thresholds": {
            "remove": _finite(acting.threshold),
            "cascade_tau": _finite(acting.tau),
            "head": _finite(acting.head.threshold) if acting.head is not None else None,
        },
        "arm": arm,
        "model_id": result["model_id"],
        "features": {c: _finite(v) for c, v in used.items()},
        "decided_at": record["decided_at"],
        "event_at": record["event_at"],
        "trigger": body.trigger,
    }


def _removed(parts: Components, post_id: int | None, trigger: str) -> dict | None:
    """With ``skip_removed``, a re-score request (the stream's trigger) for a post whose latest
    decision is a removal: the post is gone, so it is not scored again (no heavy call, no new decision): the answer is
    that decision with ``rescored: false``. None: score it (a reversed appeal's ``allow`` is the
    latest decision then, and the post is re-scored again)."""
    from training.rescore_head import is_rescore_trigger

    if not parts.skip_removed or post_id is None or not is_rescore_trigger(trigger):
        return None
    history = parts.decisions.history(post_id)
    if not history or history[-1].get("decision") != "remove":
        return None
    latest = history[-1]
    return {
        "post_id": post_id,
        "decision": "remove",
        "rescored": False,
        "model_id": latest.get("model_id"),
        "decided_at": latest.get("decided_at"),
        "event_at": latest.get("event_at"),
        "trigger": trigger,
    }


def _acting(parts: Components, post_id: int | None) -> tuple[Any, str]:
    """The model that decides this post and its arm (hash arms: by the post id; a new post
    without an id, and every post in shadow mode, goes to the control)."""
    if parts.candidate is None or parts.arms != "hash" or post_id is None:
        return parts.model, "control"
    from vigil.evaluation.sampling import arm_of

    arm = str(arm_of([post_id], parts.salt, parts.candidate_share)[0])
    return (parts.candidate if arm == "candidate" else parts.model), arm


def _shadow(
    parts: Components, text: str, vector: dict, post_id, author_id, content_hash, trigger: str
) -> None:
    """The candidate's would-be decision (at the same moment: its re-score head too), logged
    (trigger ``shadow``) but not acted on."""
    model = parts.candidate
    used = {c: vector.get(c) for c in [*model.feature_columns, *model.head_columns]}
    result = model.score(text, used, trigger)
    parts.decisions.append(
        {
            **result,
            "post_id": post_id,
            "trigger": "shadow",
            "content_hash": content_hash,
            "author_id": author_id,
            **_slices(result, vector),
        },
        remember=False,
    )


def _slices(result: dict, vector: dict) -> dict:
    """The appeals report's slices of a decision: predicted harm type, author age bucket."""
    from vigil.contracts import HARM_TYPES
    from vigil.moderation.appeals import AGE_FEATURE, age_bucket, predicted_harm_type

    return {
        "harm_type": predicted_harm_type(result.get("harm_type_scores"), HARM_TYPES),
        "author_age_bucket": age_bucket(vector.get(AGE_FEATURE)),
    }


def _finite(value):
    """JSON has no NaN or infinity: a missing feature or an unset threshold is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
