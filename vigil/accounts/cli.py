"""``vigil accounts ACTION``: account integrity (issue 21; docs/accounts.md).

Actions come from the modules that own them; each module adds its subparsers and runs its
actions: :mod:`vigil.accounts.review_cli` (evasion, clusters, queue, show, verdict) and
:mod:`vigil.accounts.bots_cli` (features, train, score).
"""

from __future__ import annotations

import argparse

from vigil.accounts import bots_cli, review_cli


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    review_cli.add_parsers(sub)
    bots_cli.add_parsers(sub)


def run(args: argparse.Namespace) -> int:
    if args.action in review_cli.ACTIONS:
        return review_cli.run(args)
    if args.action in bots_cli.ACTIONS:
        return bots_cli.run(args)
    raise SystemExit(f"vigil accounts: unknown action {args.action!r}")
