"""``vigil serve``: the scoring service on 127.0.0.1 (beyond loopback only with a token)."""

from __future__ import annotations

import argparse
import gc
import logging

from training.online import HEAVY_POLICIES
from vigil import config
from vigil.errors import UserError
from vigil.serving.server import is_loopback

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address (beyond loopback: token)")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument(
        "--heavy",
        choices=HEAVY_POLICIES,
        default="cascade",
        help="heavy-model budget: above the cascade threshold (default), always, never",
    )
    parser.add_argument(
        "--heavy-budget",
        type=int,
        default=None,
        help="spare heavy calls (off by default; with --spare-floor): heavy calls a UTC day "
        "(VIGIL_SERVE_HEAVY_BUDGET)",
    )
    parser.add_argument(
        "--spare-floor",
        type=float,
        default=None,
        help="spare heavy calls: re-score requests with student >= F x tau may use the day's "
        "unused calls (VIGIL_SERVE_SPARE_FLOOR, e.g. 0.5)",
    )
    parser.add_argument(
        "--skip-removed",
        action="store_true",
        help="answer a re-score request for a post already removed with that removal, without "
        "scoring it again (no heavy call; as the re-scoring replay does); off by default",
    )
    parser.add_argument("--model-id", default=None, help="serve this model instead of the champion")
    parser.add_argument(
        "--candidate", default=None, help="online evaluation: a candidate model beside the champion"
    )
    parser.add_argument(
        "--arms",
        choices=("shadow", "hash"),
        default="shadow",
        help="shadow: the champion acts, the candidate is logged (trigger shadow); hash: each "
        "post decided by its arm's model (salted hash of the post id)",
    )
    parser.add_argument("--salt", default="vigil-online-eval", help="the arm hash's salt")
    parser.add_argument("--candidate-share", type=float, default=0.5, help="hash arms")


def check_bind(host: str, port: int) -> None:
    """Refuse, in one sentence, a port out of range or in use and a public address without a token."""
    import socket

    if not 1 <= port <= 65535:
        raise UserError(f"port {port} is not a TCP port: pass --port between 1 and 65535.")
    if not is_loopback(host) and not config.serve_token():
        raise UserError(
            f"serving on {host} (beyond 127.0.0.1) needs a token: set VIGIL_SERVE_TOKEN "
            "or drop --host."
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"port {port} on {host} is in use or not available ({exc.strerror}): "
                "stop what runs there or pass another --port."
            ) from None


def serve(
    host: str = "127.0.0.1",
    port: int = 8700,
    heavy: str = "cascade",
    model_id=None,
    **arms,
) -> None:
    import uvicorn

    from vigil.moderation.service import build, create_app

    check_bind(host, port)
    parts = build(heavy=heavy, model_id=model_id, **arms)
    if parts.model.spare is not None:
        log.info(
            "serve: spare heavy calls: budget %d a day, floor %.2f x tau",
            parts.model.spare.budget,
            parts.model.spare.floor,
        )
    app = create_app(parts)
    # The model, the posts index and Feast's registry are ~0.6 M long-lived objects: a full
    # garbage collection walking them stalls every request for seconds on a loaded machine.
    # Frozen, collections only walk what requests allocate.
    gc.collect()
    gc.freeze()
    log.info(
        "serve: model %s on http://%s:%d (%s online store, heavy model: %s, %s)",
        parts.model.model_id,
        host,
        port,
        parts.reader.store_kind,
        heavy,
        "token required" if parts.token else "no token, loopback only",
    )
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        parts.decisions.close()
        log.info("serve: stopped after %d decisions", parts.decisions.written)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.candidate_share < 1:
        raise UserError(
            f"--candidate-share {args.candidate_share} must be between 0 and 1 (e.g. 0.5)."
        )
    spare = spare_setting(args.heavy_budget, args.spare_floor)
    serve(
        host=args.host,
        port=args.port,
        heavy=args.heavy,
        model_id=args.model_id,
        candidate_id=args.candidate,
        arms=args.arms,
        salt=args.salt,
        candidate_share=args.candidate_share,
        spare=spare,
        skip_removed=args.skip_removed,
    )
    return 0


def spare_setting(budget: int | None, floor: float | None) -> tuple[int, float] | None:
    """(budget, floor) of the spare heavy calls from the flags, else the settings; None: off."""
    if budget is None and floor is None:
        try:
            return config.serve_spare_heavy()
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if budget is None or floor is None:
        raise UserError(
            "spare heavy calls need both --heavy-budget and --spare-floor (or neither)."
        )
    if budget < 1 or not 0 < floor < 1:
        raise UserError(
            f"--heavy-budget {budget} must be >= 1 and --spare-floor {floor} between 0 and 1."
        )
    return budget, floor
