"""``vigil features``: apply, materialize, serve and get, over :mod:`.features` and :mod:`.server`."""

from __future__ import annotations

import argparse
import json

from vigil.serving import features, server


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("apply", help="render feature_store.yaml and register the definitions")
    mat = sub.add_parser("materialize", help="offline -> online (whole history, then incremental)")
    mat.add_argument("--full", action="store_true", help="redo the whole history")
    mat.add_argument(
        "--engine",
        choices=features.ENGINES,
        default="bulk",
        help="bulk: batched writes in Feast's layout (default); feast: Feast's own materialize",
    )
    srv = sub.add_parser("serve", help="Feast's HTTP feature server (reads; writes need a token)")
    srv.add_argument("--port", type=int, default=6566)
    srv.add_argument(
        "--host", default="127.0.0.1", help="address to bind (beyond loopback needs a token)"
    )
    srv.add_argument("--workers", type=int, default=1)
    get = sub.add_parser("get", help="print the online features of a post and/or user as JSON")
    get.add_argument("--post-id", type=int)
    get.add_argument("--user-id", type=int)


def run(args: argparse.Namespace) -> int:
    if args.action == "apply":
        print(json.dumps(features.apply(), indent=2))
    elif args.action == "materialize":
        print(
            json.dumps(
                features.materialize(full=args.full, engine=args.engine), indent=2, default=str
            )
        )
    elif args.action == "serve":
        server.serve(port=args.port, host=args.host, workers=args.workers)
    elif args.action == "get":
        print(
            json.dumps(
                features.require_found(
                    features.online_features(post_id=args.post_id, user_id=args.user_id)
                ),
                indent=2,
                default=str,
            )
        )
    return 0
