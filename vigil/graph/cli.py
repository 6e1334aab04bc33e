"""``vigil graph train|embed``: GraphSAGE user embeddings from the lake's social graph.

- ``train --day D``: the graph as of the end of day D, unsupervised GraphSAGE, model saved under
  ``<data root>/graph/``;
- ``embed --day D [--days N]``: with the saved model, the embedding of every user on each of the
  N days ending on D (each day's own graph), written to the ``user_graph_embedding`` Feast source
  (``<data root>/features/user_graph_embedding.parquet``).

Train on a day no later than the first day whose embeddings feed a model's training examples, so
the weights carry no later structure (docs/graph.md).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date, timedelta

from vigil.errors import UserError

log = logging.getLogger(__name__)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from exc


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = sub.add_parser("train", help="train GraphSAGE on the graph as of a day")
    train.add_argument("--day", type=_day, required=True, help="snapshot day, YYYY-MM-DD")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--seed", type=int, default=7)
    train.add_argument("--max-seconds", type=float, default=None, help="training time budget")
    embed = sub.add_parser("embed", help="publish daily embedding snapshots for Feast")
    embed.add_argument("--day", type=_day, required=True, help="last snapshot day")
    embed.add_argument("--days", type=int, default=1, help="how many days ending on --day")


def run(args: argparse.Namespace) -> int:
    from vigil.graph import edges, publish
    from vigil.graph.sage import SageConfig, train

    if args.action == "train":
        if args.epochs < 1:
            raise UserError(f"--epochs {args.epochs}: give at least 1.")
        ug = edges.load(args.day)
        cfg = SageConfig(epochs=args.epochs, seed=args.seed, max_seconds=args.max_seconds)
        emb = train(ug.graph, ug.features, cfg)
        publish.save(emb, args.day)
        out = {k: emb.stats[k] for k in ("nodes", "edges", "steps", "train_seconds")}
        print(json.dumps(out | {"model": str(publish.model_dir())}, indent=2))
        return 0
    if args.days < 1:
        raise UserError(f"--days {args.days}: give at least 1.")
    days = [args.day - timedelta(days=i) for i in range(args.days - 1, -1, -1)]
    print(json.dumps(publish.publish(days), indent=2, default=str))
    return 0
