"""``vigil accounts features|train|score``: account features and bot detection (issue 21 part A;
docs/accounts.md).

- ``features``: the daily point-in-time account features from the lake ->
  ``features/account_features.parquet`` (:mod:`vigil.accounts.features`);
- ``train``: the bot model (and ``--mode profile``, the baseline) on the platform's labels ->
  ``models/accounts_bots/<mode>/model.joblib`` + ``model.json`` (:mod:`vigil.accounts.bots`);
- ``score``: every feature row scored -> ``features/account_bot_scores.parquet``.
"""

from __future__ import annotations

import argparse
import json

ACTIONS = ("features", "train", "score")


def add_parsers(sub) -> None:
    """Add this module's actions to ``vigil accounts``'s subparsers."""
    p = sub.add_parser("features", help="daily point-in-time account features from the lake")
    p.add_argument("--window-days", type=int, default=7, help="trailing window (default 7)")
    p = sub.add_parser("train", help="train the calibrated bot model on the platform's labels")
    p.add_argument("--mode", choices=("behavior", "profile"), default="behavior")
    p.add_argument("--seed", type=int, default=0, help="split and model seed (default 0)")
    p.add_argument("--target-precision", type=float, default=0.95, help="guardrail (default 0.95)")
    p.add_argument(
        "--labeled-cuts",
        action="store_true",
        help="threshold only on a P(bot) level where validation holds a labeled account (off)",
    )
    p.add_argument(
        "--low-evidence-events",
        type=int,
        default=0,
        metavar="N",
        help="separate calibration for rows with fewer than N events (default 0: off)",
    )
    p = sub.add_parser("score", help="score every account-day with the trained bot model")
    p.add_argument("--mode", choices=("behavior", "profile"), default="behavior")


def run(args: argparse.Namespace) -> int:
    from vigil.errors import UserError

    if args.action == "features":
        from vigil.accounts import features

        if args.window_days < 1:
            raise UserError(f"--window-days {args.window_days}: use 1 or more.")
        r = features.build(window_days=args.window_days)
        print(f"Account features: {r['rows']:,} rows for {r['users']:,} accounts -> {r['path']}")
        return 0
    from vigil.accounts import bots

    if args.action == "train":
        if not 0 < args.target_precision < 1:
            raise UserError(f"--target-precision {args.target_precision}: use a value in (0, 1).")
        if args.low_evidence_events < 0:
            raise UserError(f"--low-evidence-events {args.low_evidence_events}: use 0 or more.")
        cfg = bots.BotConfig(
            seed=args.seed,
            mode=args.mode,
            target_precision=args.target_precision,
            labeled_cuts=args.labeled_cuts,
            low_evidence_events=args.low_evidence_events,
        )
        b = bots.train(cfg)
        print(f"Bot model ({args.mode}) -> {b['path']} in {b['seconds']}s")
        print(json.dumps(b["metrics"], indent=1))
        return 0
    r = bots.score_lake(args.mode)
    print(
        f"Scored {r['rows']:,} account-days -> {r['path']}; latest day: "
        f"{r['flagged_latest_day']} of {r['accounts_latest_day']} accounts flagged "
        f"(threshold {r['threshold']:.3f})"
    )
    return 0
