"""``vigil rank --user-id N``: a user's home timeline with reasons (and ``--explore``: trends).

Reads the lake (``vigil ingest`` a ``vigil simulate-discovery`` world first). Fits the topic
model when none is saved under ``$VIGIL_HOME/models/topics`` (``--refit`` fits a new version),
trains the ranker on the views before the ranking time, then ranks the user's candidates.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime

import numpy as np

from vigil.errors import UserError

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user-id", type=int, required=True, help="whose timeline")
    parser.add_argument("--at", default=None,
                        help="ranking time, ISO-8601 UTC (default: the lake's last event)")  # fmt: skip
    parser.add_argument("--top", type=int, default=10, help="posts to show (default 10)")
    parser.add_argument("--explore", action="store_true", help="also print the Explore trends")
    parser.add_argument("--refit", action="store_true", help="fit a new topic model version")


def _time(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--at {value!r} is not a time: use e.g. 2026-10-06T12:00:00Z.") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def run(args: argparse.Namespace) -> int:
    from vigil.ranking import data, harm, rank, topics, trends
    from vigil.ranking.features import FEATURES, FeatureContext, build

    view = data.load()
    t = _time(args.at, view.end_ms)
    if args.user_id not in set(view.users["user_id"].tolist()):
        raise UserError(f"--user-id {args.user_id} is not in the lake's users: pick another.")
    model = None if args.refit else topics.load_latest()
    if model is None:
        before = view.posts[view.posts["created_ms"] < t]
        model = topics.fit(before["text"])
        topics.save(model, {"posts": len(before), "before_ms": t})
    ctx = FeatureContext(view, model.transform(view.posts["text"]))
    harm.attach(ctx)
    ranker = rank.train(ctx, view.start_ms + data.DAY, t)
    rows = rank.candidates(ctx, args.user_id, t)
    if len(rows) == 0:
        print(f"user {args.user_id}: no candidate posts in the 48 hours before {args.at or 'now'}")
        return 0
    X = build(ctx, np.full(len(rows), args.user_id), rows, np.full(len(rows), t))
    s = rank.predict(ranker, X)
    risk = harm.rerank_harm(ctx, rows, t, X[:, FEATURES.index("harm_prob")])
    camps = rank.follow_camps(ctx)
    top = rank.rerank(ctx, rows, s, risk, camps, rank.user_lean(ctx, camps, args.user_id),
                      k=args.top)  # fmt: skip
    words = model.meta["top_words"]
    print(f"home timeline of user {args.user_id} ({len(rows)} candidates, topic model "
          f"{model.meta.get('version', 'unsaved')})")  # fmt: skip
    for n, i in enumerate(top, 1):
        f = dict(zip(FEATURES, X[i].tolist(), strict=True))
        why = [(f"topic '{' '.join(words[ctx.main_topic[rows[i]]][:3])}' "
               f"(interest {f['user_topic_interest']:.2f}, similarity {f['topic_sim']:.2f})")]  # fmt: skip
        why.append("followed author" if f["follows"] else "out of network")
        if f["topic_velocity"] > 2:
            why.append(f"trending x{f['topic_velocity']:.1f}")
        why.append(f"{f['age_hours']:.1f} h old")
        if risk[i] > 0.05:
            why.append(f"harm {risk[i]:.2f} (demoted)")
        post = view.posts.iloc[rows[i]]
        print(
            f"{n:>2}. post {post.post_id} by {post.author_id}  score {s[i]:+.2f}  "
            f"{post.text[:60]!r}\n    " + "; ".join(why)
        )
    if args.explore:
        found = trends.detect(view.posts["created_ms"].to_numpy(), ctx.topic_vec,
                              view.posts["region"].to_numpy(), view.start_ms)  # fmt: skip
        found = [tr for tr in found if tr.detected_ms <= t]
        snap = ctx.snapshot(int((t - ctx.origin) // data.DAY * data.DAY + ctx.origin))
        region = str(ctx.view.users.set_index("user_id")["region"].get(args.user_id))
        print("explore:")
        for tr in trends.explore(found, t, snap.interest[args.user_id], region):
            print(
                f"  {' / '.join(' '.join(words[c][:2]) for c in sorted(tr.topics))} "
                f"({tr.region or 'worldwide'}, {tr.posts} posts)"
            )
    return 0
