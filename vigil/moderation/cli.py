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

# The spare calls' floor when only a budget is given: the figures' (docs/rescoring.md; 0.75 gave
# the same on seeds 11 and 13).
SPARE_FLOOR = 0.5


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
        type=_budget,
        default=None,
        metavar="N|auto",
        help="heavy calls a UTC day (VIGIL_SERVE_HEAVY_BUDGET): with it, re-score requests "
        "below tau may spend the day's unused calls (spare calls); unset: none; auto: the daily "
        "batch's own heavy calls a day (vigil score's fixed schedule, its last 7 full days)",
    )
    parser.add_argument(
        "--spare-floor",
        type=float,
        default=None,
        help="spare heavy calls: re-score requests with student >= F x tau may use the day's "
        f"unused calls (VIGIL_SERVE_SPARE_FLOOR; default {SPARE_FLOOR} with a budget)",
    )
    parser.add_argument(
        "--skip-removed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="answer a re-score request for a post already removed with that removal, without "
        "scoring it again (no heavy call; as the re-scoring replay does); on by default, "
        "--no-skip-removed re-scores removed posts",
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


def _budget(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a whole number of heavy calls a day, or auto"
        ) from None


BATCH_DAYS = 7


def batch_heavy_calls(days: int = BATCH_DAYS) -> dict | None:
    """The daily batch's heavy calls a day: ``vigil score``'s scoring events routed to the heavy
    model (``scores/dt=*/scores.parquet``, every model), counted by the UTC day of ``scored_at``,
    averaged over the last ``days`` days before the latest one (the latest day's later ages are
    not scored yet). None: no scores."""
    import pandas as pd

    from vigil.config import paths

    files = sorted((paths().home / "scores").glob("dt=*/scores.parquet"))
    if not files:
        return None
    frame = pd.concat([pd.read_parquet(f, columns=["scored_at", "routed_to_heavy"]) for f in files])
    day = pd.to_datetime(frame["scored_at"], utc=True).dt.strftime("%Y-%m-%d")
    per_day = frame["routed_to_heavy"].astype(bool).groupby(day).sum().sort_index()
    rows = list(per_day.items())
    window = rows[-days - 1 : -1]
    if not window:
        return None
    calls = [int(c) for _, c in window]
    return {"days": [d for d, _ in window], "calls_per_day": sum(calls) / len(calls)}


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
    if spare is None:
        batch = batch_heavy_calls()
        log.info(
            "serve: no heavy budget, no spare heavy calls%s",
            ""
            if batch is None
            else f" (the daily batch spends {batch['calls_per_day']:.1f} heavy calls a day: "
            "--heavy-budget auto or N to spend what it leaves)",
        )
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
    """(budget, floor) of the spare heavy calls from the flags, else the settings; None: off (no
    budget). A budget alone takes the floor :data:`SPARE_FLOOR`."""
    if budget is None and floor is None:
        try:
            return config.serve_spare_heavy(default_floor=SPARE_FLOOR)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if budget is None:
        raise UserError(
            f"--spare-floor {floor} needs a budget: add --heavy-budget N (heavy calls a day) "
            "or drop it."
        )
    if floor is None:
        floor = SPARE_FLOOR
    if budget == "auto":
        batch = batch_heavy_calls()
        if batch is None:
            raise UserError(
                "--heavy-budget auto reads the daily batch's heavy calls (scores/dt=*/"
                "scores.parquet), and there are none for two days or more: run the batch "
                "(`make run` or `vigil score`) or give --heavy-budget N."
            )
        budget = int(batch["calls_per_day"])
        log.info(
            "serve: heavy budget %d a day: the batch's %.1f heavy calls a day over %s..%s",
            budget,
            batch["calls_per_day"],
            batch["days"][0],
            batch["days"][-1],
        )
    if budget < 1 or not 0 < floor < 1:
        raise UserError(
            f"--heavy-budget {budget} must be >= 1 and --spare-floor {floor} between 0 and 1."
        )
    return budget, floor
