"""``vigil schedule``: serve the API, publish due posts, make tokens, record verdicts."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default=None, help="store URL (default: VIGIL_SCHEDULE_DB or SQLite)"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    serve = sub.add_parser("serve", help="the API on 127.0.0.1 (OpenAPI at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="address (beyond loopback: tokens)")
    serve.add_argument("--port", type=int, default=8710)
    publish = sub.add_parser("publish", help="publish due posts into the raw log")
    publish.add_argument("--once", action="store_true", help="publish what is due now and exit")
    publish.add_argument(
        "--raw", type=Path, default=None, help="raw log folder (default: data/raw)"
    )
    publish.add_argument("--batch-size", type=int, default=500)
    publish.add_argument("--lease-seconds", type=float, default=30.0)
    publish.add_argument("--late-after-seconds", type=float, default=60.0)
    publish.add_argument("--poll-seconds", type=float, default=0.05)
    publish.add_argument(
        "--pause-after-write-seconds", type=float, default=0.0, help=argparse.SUPPRESS
    )  # fault injection for the kill test
    publish.add_argument("--no-model", action="store_true", help="allow all (no model check)")
    token = sub.add_parser("token", help="make a bearer token for a user (printed once)")
    token.add_argument("--user", type=int, required=True)
    verdict = sub.add_parser("verdict", help="a moderator's verdict on a post in review")
    verdict.add_argument("post_id", type=int)
    verdict.add_argument("--harmful", action=argparse.BooleanOptionalAction, required=True)
    verdict.add_argument("--reviewer", default="moderator")
    sub.add_parser("migrate", help="create or upgrade the store's tables")
    sub.add_parser("status", help="posts per status")


def _moderator(no_model: bool = False):
    from vigil.schedule import moderation

    return moderation.NoModel() if no_model else moderation.load()


def _check_port(host: str, port: int) -> None:
    import socket

    if not 1 <= port <= 65535:
        raise UserError(f"port {port} is not a TCP port: pass --port between 1 and 65535.")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"port {port} on {host} is in use or not available ({exc.strerror}): "
                "stop what runs there or pass another --port."
            ) from None


def serve(db: str | None, host: str, port: int) -> None:
    import uvicorn

    from vigil.schedule.api import Parts, create_app
    from vigil.schedule.moderation import DecisionLog
    from vigil.schedule.store import open_store
    from vigil.serving.server import is_loopback

    store = open_store(db)
    if not is_loopback(host) and store.token_count() == 0:
        raise UserError(
            f"serving on {host} (beyond 127.0.0.1) needs per-user tokens: make one with "
            "`vigil schedule token --user ID` or drop --host."
        )
    _check_port(host, port)
    decisions = DecisionLog()
    parts = Parts(store, _moderator(), decisions, config.schedule_limits())
    log.info(
        "schedule serve: http://%s:%d (docs at /docs), store %s, model %s, %d tokens",
        host, port, store.describe(), parts.moderator.model_id, store.token_count(),
    )  # fmt: skip
    try:
        uvicorn.run(create_app(parts), host=host, port=port, access_log=False, log_level="warning")
    finally:
        decisions.close()
        log.info("schedule serve: stopped after %d decisions", decisions.written)


def publish(args: argparse.Namespace) -> dict:
    from vigil.schedule.moderation import DecisionLog
    from vigil.schedule.publisher import Publisher, _summary
    from vigil.schedule.store import open_store

    if args.batch_size < 1 or args.lease_seconds <= 0:
        raise UserError("--batch-size must be >= 1 and --lease-seconds > 0.")
    store = open_store(args.db)
    raw = (args.raw or config.paths().raw).resolve()
    decisions = DecisionLog()
    publisher = Publisher(
        store,
        raw,
        _moderator(args.no_model),
        decisions,
        batch_size=args.batch_size,
        lease_ms=int(args.lease_seconds * 1000),
        late_after_ms=int(args.late_after_seconds * 1000),
        pause_after_write_s=args.pause_after_write_seconds,
    )
    log.info("schedule publish: %s -> %s (%s)", store.describe(), raw, publisher.owner)
    try:
        counts = publisher.run_once() if args.once else publisher.run(args.poll_seconds)
    finally:
        decisions.close()
    log.info("schedule publish: %s", _summary(counts))
    return counts


def run(args: argparse.Namespace) -> int:
    from vigil.schedule.store import open_store

    if args.action == "serve":
        serve(args.db, args.host, args.port)
    elif args.action == "publish":
        publish(args)
    elif args.action == "token":
        if args.user < 1:
            raise UserError(f"--user {args.user} is not a user id: pass a positive integer.")
        print(open_store(args.db).add_token(args.user))
    elif args.action == "verdict":
        row = open_store(args.db).set_verdict(args.post_id, args.harmful, args.reviewer)
        log.info("schedule verdict: post %d is now %s", row["id"], row["status"])
    elif args.action == "migrate":
        store = open_store(args.db, migrate=False)
        applied = store.migrate()
        log.info("schedule migrate: %s applied %s", store.describe(), applied or "nothing new")
    elif args.action == "status":
        print(json.dumps(open_store(args.db).counts(), sort_keys=True))
    return 0
