"""``vigil stream``: keep every user's UAM and creator tallies current as events arrive.

Sources (:mod:`vigil.stream.sources`)
  files (default)  tail ``<raw>/events/dt=*/hour=*.jsonl`` as files appear and grow; the input
                   position is (file, byte offset) per file. Files are read in name order, each
                   to its last complete line, so a replay of the same files is deterministic.
  redis            (production profile, ``--source redis`` or ``VIGIL_STREAM_SOURCE=redis``)
                   Redis Streams at ``vigil.config.redis_url()``. Events are spread over
                   ``--partitions`` streams ``<key>:<p>`` by a hash of the user; consumer k of M
                   (``--consumer k --consumers M``) reads partitions p with p % M == k through
                   XREADGROUP in the consumer group ``vigil-stream``, so adding consumers scales
                   the processor out. An event that touches two users (an actor and the author of
                   the post acted on) is written to both users' partitions (in the target's as a
                   copy, skipped by a consumer that owns every partition); each consumer applies
                   only the parts for the users it owns.

State, exactly-once and memory: see :mod:`vigil.stream.state`. Every checkpoint commits state and
input position together; the changed users' features are then written to the Feast online store
(the views behind the push sources ``user_activity_push`` and ``creator_context_push``) by a
writer thread while processing goes on, and the lag from an event's arrival (file read, or XADD
time for Redis) to its written feature is recorded (:mod:`vigil.stream.push`).

``vigil stream --replay DIR --rate N`` feeds a source from simulated logs at N events/s
(:mod:`vigil.stream.replay`).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.stream.post_push import push_posts
from vigil.stream.push import FeastPusher
from vigil.stream.replay import replay
from vigil.stream.sources import DEFAULT_PARTITIONS, DEFAULT_STREAM_KEY, FileSource, RedisSource
from vigil.stream.state import StreamState, read_status

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# the processing loop


@dataclass
class RunOptions:
    source: str = "files"
    raw_dir: Path | None = None
    state_path: Path | None = None
    once: bool = False
    push: bool = True
    lateness_hours: float = 48.0
    memory_budget_mb: int = 2048
    checkpoint_seconds: float = 1.0
    checkpoint_events: int = 50_000
    poll_seconds: float = 0.2
    stream_key: str = DEFAULT_STREAM_KEY
    partitions: int = DEFAULT_PARTITIONS
    consumer: int = 0
    consumers: int = 1
    max_seconds: float | None = None
    rescore_url: str | None = None  # send re-score requests to `vigil serve` at this URL
    triggers_file: Path | None = None  # or append them to this JSONL file
    rules_file: Path | None = None  # run the rules engine (vigil.stream.rules) on applied events
    effects_log: Path | None = None  # its effects log (default: beside the state file)
    rules_counters: str = "memory"  # or "redis": the rules' counters in Redis (RedisCounters)
    rules_redis_prefix: str | None = None  # their key prefix (default vigil:rules:<state stem>:)
    post_counters: bool = False  # exact per-post counters, written to post_behavior online
    # issue 22: a ``creation`` request at each post's creation event (``vigil stream --rescore``
    # turns it and the post counters on: :func:`options_from_args`); for replays driving the
    # service, each checkpoint's requests answered before the next events (re-scores read the
    # counters as of their checkpoint) and the users' features left to the batch
    score_created: bool = False
    rescore_wait: bool = False
    push_users: bool = True
    stats: dict = field(default_factory=dict)


def default_state_path(opts: RunOptions) -> Path:
    base = config.paths().stream_state
    if opts.source == "redis":
        return base / f"state-redis-{opts.consumer}-of-{opts.consumers}.sqlite"
    return base / "state.sqlite"


def _open_source(opts: RunOptions) -> FileSource | RedisSource:
    """The event source ``opts`` names: the raw folder's hour files, or a Redis stream."""
    if opts.source == "files":
        raw_dir = Path(opts.raw_dir or config.paths().raw)
        if not (raw_dir / "events").is_dir() and opts.once:
            raise UserError(
                f"no events directory under {raw_dir}: run `vigil simulate` or pass --raw DIR."
            )
        return FileSource(raw_dir, final=opts.once)
    if opts.source == "redis":
        return RedisSource(opts.stream_key, opts.partitions, opts.consumer, opts.consumers)
    raise UserError(f"unknown source {opts.source!r}: use 'files' or 'redis'.")


def _log_checkpoint(n_ckpt: int, state: StreamState) -> None:
    c = state.counters
    log.info(
        "checkpoint %d: read %d applied %d bad %d duplicates %d too_late %d; %d users cached; "
        "watermark %s",
        n_ckpt,
        c["read"],
        c["applied"],
        c["bad"],
        c["duplicates"],
        c["too_late"],
        len(state.users),
        state.watermark_iso(),
    )


def _summary(
    state, state_path, pusher, elapsed: float, read0: int, n_ckpt: int, rules=None
) -> dict:
    """The run's figures; closes the state and writes them beside it (``.metrics.json``)."""
    read = state.counters["read"] - read0
    result = {
        "state": str(state_path),
        "seconds": round(elapsed, 3),
        "read": read,
        "events_per_s": round(read / elapsed, 1) if elapsed > 0 else None,
        "checkpoints": n_ckpt,
        "counters": dict(state.counters),
        "bad_reasons": dict(state.bad_reasons),
        "watermark": state.watermark_iso(),
        "users_cached": len(state.users),
        "bytes_per_user": round(state.bytes_per_user, 1),
    }
    if pusher is not None:
        result["rows_pushed"] = pusher.rows_pushed
        result["lag"] = pusher.lag_summary()
        log.info("push lag (arrival -> online): %s", result["lag"])
    if rules is not None:  # read from the state file: before it closes
        result["rules"] = rules.summary()
    state.close()
    metrics = Path(state_path).with_suffix(".metrics.json")
    metrics.write_text(json.dumps(result, indent=2))
    return result


def _start_triggers(opts: RunOptions, state: StreamState) -> tuple:
    """The re-score feed and its deliverer (:mod:`vigil.stream.rescore`), or (None, None)."""
    if opts.rescore_url is None and opts.triggers_file is None:
        return None, None
    from vigil.stream.rescore import Deliverer, RescoreFeed

    feed = RescoreFeed(state.con, creation=opts.score_created)
    feed.attach(state)
    if opts.rescore_url is not None:
        deliverer = Deliverer(
            url=opts.rescore_url, token=config.serve_token(), wait=opts.rescore_wait
        )
    else:
        deliverer = Deliverer(path=opts.triggers_file, wait=opts.rescore_wait)
    deliverer.submit(feed.committed())  # left in the outbox by a previous run: send again
    return feed, deliverer


def _rescore_summary(feed, deliverer, opts: RunOptions) -> dict:
    trig = feed.triggers
    out = {
        "target": opts.rescore_url or str(opts.triggers_file),
        "requests": trig.sent,
        "merged_triggers": trig.merged,
        "posts": len(trig.posts),
        **deliverer.counts,
    }
    log.info("re-score triggers: %s", out)
    return out


def _load_rules(opts: RunOptions):
    """The rules file, checked before anything is opened (a bad file: one clear error)."""
    if opts.rules_file is None:
        return None
    from vigil.rules.language import load_rules
    from vigil.stream.rules import FEATURE_NAMES

    return load_rules(opts.rules_file, FEATURE_NAMES)


def _start_rules(opts: RunOptions, state: StreamState, state_path: Path, ruleset):
    """The rules engine's feed (:mod:`vigil.stream.rules`), or None; effects committed by a run
    that died before writing them to the log are written first."""
    if ruleset is None:
        return None
    from vigil.stream.rules import RulesFeed, default_effects_log, default_verdicts

    effects_log = opts.effects_log or default_effects_log(state_path)
    counters = None
    if opts.rules_counters == "redis":
        from vigil.rules.redis_counters import RedisCounters
        from vigil.stream.sources import redis_client

        prefix = opts.rules_redis_prefix or f"vigil:rules:{Path(state_path).stem}:"
        counters = RedisCounters(redis_client(), prefix, defer_prune=True)
    elif opts.rules_counters != "memory":
        raise UserError(f"--rules-counters {opts.rules_counters!r}: use 'memory' or 'redis'.")
    feed = RulesFeed(
        state.con, opts.rules_file, effects_log, ruleset, default_verdicts(), counters=counters
    )
    feed.attach(state)
    feed.export()
    return feed


def _check_trigger_options(opts: RunOptions) -> None:
    if opts.rules_file is not None and opts.consumers > 1:
        # counters keyed by link, post or fingerprint span the partitions of many users
        raise UserError(
            f"--rules with --consumers {opts.consumers}: counters per link, post and fingerprint "
            "need every user's events; run the rules in one processor (--consumers 1)."
        )
    triggers_on = opts.rescore_url is not None or opts.triggers_file is not None
    if (triggers_on or opts.post_counters) and opts.consumers > 1:
        # partitions follow users (actor, author), not posts: one post's events would be
        # counted by several consumers, each seeing a part
        raise UserError(
            f"--rescore/--triggers/--post-counters with --consumers {opts.consumers}: a post's "
            "events are spread over the partitions of the users acting on it; run the triggers "
            "and post counters in one processor (--consumers 1)."
        )


def _start_post_counters(opts: RunOptions, state: StreamState) -> tuple:
    """The exact post counters (:mod:`vigil.stream.post_counters`) and their writer, or (None,
    None); posts committed by a run that died before writing them are written first."""
    if not opts.post_counters:
        return None, None
    from vigil.stream.post_counters import PostCounterFeed
    from vigil.stream.post_push import PostPusher

    feed = PostCounterFeed(state.con, track_push=opts.push)
    feed.attach(state)
    pusher = PostPusher() if opts.push else None
    push_posts(feed, pusher, state, feed.pending())
    return feed, pusher


def _push_leftovers(pusher: FeastPusher | None, state: StreamState) -> None:
    """Pushes lost in a crash after their checkpoint committed are written first."""
    if pusher is None:
        return
    leftover = state.pending_push()
    if leftover:
        pusher.push(state, leftover, [])
        state.clear_pushed(leftover)


def _open_state(opts: RunOptions, state_path: Path, owns, track_push: bool) -> StreamState:
    return StreamState(
        state_path,
        lateness_ms=int(opts.lateness_hours * 3_600_000),
        memory_budget_bytes=opts.memory_budget_mb << 20,
        owns=owns,
        track_push=track_push,
    )


# 83 lines: the loop and its checkpoint closure share the loop's counters; every step is a call
def process(opts: RunOptions) -> dict:
    """Run the stream processor until stopped (SIGINT/SIGTERM) or, with ``once``, until idle."""
    state_path = opts.state_path or default_state_path(opts)
    _check_trigger_options(opts)
    ruleset = _load_rules(opts)
    source = _open_source(opts)
    owns = source.owns if isinstance(source, RedisSource) else None
    pusher = FeastPusher() if opts.push and opts.push_users else None
    state = _open_state(opts, state_path, owns, pusher is not None)
    feed, deliverer = _start_triggers(opts, state)
    rules = _start_rules(opts, state, state_path, ruleset)
    posts, post_pusher = _start_post_counters(opts, state)
    stop = {"flag": False}

    def _stop(signum, frame):
        stop["flag"] = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.time()
    last_ckpt = time.time()
    since_ckpt = 0
    n_ckpt = 0
    read0 = state.counters["read"]
    _push_leftovers(pusher, state)

    def _checkpoint() -> None:
        nonlocal last_ckpt, since_ckpt, n_ckpt
        if pusher is not None:  # users written since the last checkpoint leave push_pending in it
            state.pushed.extend(pusher.take_done())
        if feed is not None:  # delivered requests leave the outbox in this checkpoint
            feed.delivered(deliverer.take_done())
        changed = state.checkpoint()
        source.committed()
        n_ckpt += 1
        if posts is not None:  # before the re-score requests: they read these counters
            push_posts(posts, post_pusher, state, posts.last_changed)
        if rules is not None:  # effects committed with their events: append them to the log
            rules.export()
        if feed is not None:  # requests committed with their events: deliver them now
            deliverer.submit(feed.committed())
        if pusher is not None:  # written by the pusher's thread while processing goes on
            arrivals, state.arrivals = state.arrivals, []
            pusher.submit(state.features_for(sorted(changed)), state.watermark_iso(), arrivals)
        last_ckpt = time.time()
        since_ckpt = 0
        _log_checkpoint(n_ckpt, state)

    try:
        while not stop["flag"]:
            if rules is not None:  # between batches: a changed rules file, new verdicts
                rules.maybe_reload()
                rules.read_verdicts()
            n = source.pump(state, min(opts.checkpoint_events, 20_000))
            since_ckpt += n
            now = time.time()
            if since_ckpt and (
                since_ckpt >= opts.checkpoint_events or now - last_ckpt >= opts.checkpoint_seconds
            ):
                _checkpoint()
            if opts.max_seconds is not None and now - started >= opts.max_seconds:
                break
            if n == 0:
                if opts.once:
                    break
                if opts.source == "files":
                    time.sleep(opts.poll_seconds)
        if since_ckpt or n_ckpt == 0:
            _checkpoint()
        if pusher is not None:
            state.clear_pushed(pusher.flush())
        if posts is not None:
            posts.clear_pushed()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _shut_down(source, pusher, feed, deliverer)
    result = _summary(state, state_path, pusher, time.time() - started, read0, n_ckpt, rules)
    if posts is not None:
        result["post_counters"] = _post_counter_summary(posts, post_pusher)
    if feed is not None:
        result["rescore"] = _rescore_summary(feed, deliverer, opts)
    opts.stats.update(result)
    return result


def _shut_down(source, pusher, feed, deliverer) -> None:
    source.close()
    if pusher is not None:
        pusher.close()
    if feed is not None:  # one more try for what failed; delivered ones leave the outbox
        feed.delivered(deliverer.close())
        feed.clear_delivered()


def _post_counter_summary(posts, post_pusher) -> dict:
    return {
        "posts": len(posts.counters.posts),
        "rows_pushed": post_pusher.rows_pushed if post_pusher is not None else 0,
    }


# ---------------------------------------------------------------------------------------------
# CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        choices=("files", "redis"),
        default=None,
        help="files: tail the raw events dir (default); redis: Redis Streams "
        "(production profile; default from VIGIL_STREAM_SOURCE)",
    )
    parser.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="raw dir to tail (files source) or to replay into (default: <data>/raw)",
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="checkpoint file (default: <data>/stream/)"
    )
    parser.add_argument("--once", action="store_true", help="stop when no new events are available")
    parser.add_argument(
        "--no-push", action="store_true", help="do not push to the Feast online store"
    )
    parser.add_argument(
        "--lateness-hours",
        type=float,
        default=None,
        help="apply events up to this far behind the newest one (default 48)",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=int,
        default=None,
        help="user state kept in memory; beyond it, records spill to SQLite (default 2048)",
    )
    parser.add_argument("--checkpoint-seconds", type=float, default=1.0)
    parser.add_argument("--checkpoint-events", type=int, default=50_000)
    parser.add_argument("--stream-key", default=DEFAULT_STREAM_KEY, help="Redis stream key prefix")
    parser.add_argument(
        "--partitions", type=int, default=DEFAULT_PARTITIONS, help="Redis partition streams"
    )
    parser.add_argument("--consumer", type=int, default=0, help="this consumer's index (0-based)")
    parser.add_argument("--consumers", type=int, default=1, help="consumers in the group")
    parser.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="DIR",
        help="feed the source from simulated logs in DIR instead of processing",
    )
    parser.add_argument("--rate", type=float, default=0.0, help="replay speed, events/s (0: max)")
    _add_action_options(parser)


def _add_action_options(parser: argparse.ArgumentParser) -> None:
    """What the processor does besides its tallies: re-score triggers, rules; and the queries."""
    parser.add_argument(
        "--rescore",
        metavar="URL",
        default=None,
        help="send re-score requests on triggers (reports, views, negative replies) to the "
        "`vigil serve` at URL (token from VIGIL_SERVE_TOKEN); off by default",
    )
    parser.add_argument(
        "--triggers",
        metavar="FILE",
        nargs="?",
        const="",
        default=None,
        help="append re-score requests to a JSONL file instead (default "
        "<data>/stream/rescore.jsonl); off by default",
    )
    parser.add_argument(
        "--post-counters",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep exact per-post counters and write them to the online store's post_behavior "
        "(what re-scores read); on by default with --rescore/--triggers, off without",
    )
    parser.add_argument(
        "--score-created",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --rescore/--triggers: also a 'creation' request at each post's creation event "
        "(the creation-time score); on by default with them (--no-score-created: triggers only)",
    )
    parser.add_argument(
        "--rescore-wait",
        action="store_true",
        help="with --rescore: wait for each checkpoint's requests to be answered before reading "
        "on (a replay device: a re-score reads the counters of its checkpoint; a live stream "
        "must not block on the service); off by default",
    )
    parser.add_argument(
        "--no-user-push",
        action="store_true",
        help="do not write the users' stream features online (with --post-counters: the posts' "
        "counters only; the users' features keep the batch values)",
    )
    parser.add_argument(
        "--rules",
        metavar="FILE",
        type=Path,
        default=None,
        help="run the rules in FILE (YAML, docs/rules.md) on every applied event; reloaded when "
        "the file changes; off by default",
    )
    parser.add_argument(
        "--effects-log",
        metavar="FILE",
        type=Path,
        default=None,
        help="the rules' effects log (JSON lines; default <state>.effects.jsonl)",
    )
    parser.add_argument(
        "--rules-counters",
        choices=("memory", "redis"),
        default=None,
        help="where the rules' windowed counters live: memory (in this processor and its "
        "checkpoint, default) or redis (VIGIL_REDIS_URL, shared; default from "
        "VIGIL_RULES_COUNTERS)",
    )
    parser.add_argument(
        "--rules-redis-prefix",
        default=None,
        help="key prefix of the rules' counters in Redis (default vigil:rules:<state stem>:)",
    )
    parser.add_argument(
        "--status", action="store_true", help="print the checkpoint's counters and exit"
    )
    parser.add_argument(
        "--features",
        metavar="YYYY-MM-DD",
        default=None,
        help="print every user's features for the window ending that day (JSON lines)",
    )


def _triggers_file(args: argparse.Namespace) -> Path | None:
    if args.triggers is None:
        return None
    if args.rescore is not None:
        raise UserError("give --rescore URL or --triggers FILE, not both.")
    return Path(args.triggers) if args.triggers else config.paths().stream_state / "rescore.jsonl"


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The processor's options from ``vigil stream``'s arguments. With ``--rescore URL`` or
    ``--triggers`` the exact post counters and the creation-time requests are on unless turned
    off (``--no-post-counters``, ``--no-score-created``): what the re-scoring figures measured
    (docs/rescoring.md). ``RunOptions`` itself keeps them off (the library's plain defaults)."""
    source = args.source or config.stream_source()
    try:
        rules_counters = args.rules_counters or config.rules_counters()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    triggers_file = _triggers_file(args)
    triggers_on = args.rescore is not None or triggers_file is not None
    if args.score_created and not triggers_on:
        raise UserError(
            "--score-created sends creation requests with the re-score requests: add --rescore "
            "URL or --triggers [FILE], or drop it."
        )
    return RunOptions(
        source=source,
        raw_dir=args.raw,
        state_path=args.state,
        once=args.once,
        push=not args.no_push,
        lateness_hours=args.lateness_hours
        if args.lateness_hours is not None
        else config.stream_lateness_hours(),
        memory_budget_mb=args.memory_budget_mb or config.stream_memory_budget_mb(),
        checkpoint_seconds=args.checkpoint_seconds,
        checkpoint_events=args.checkpoint_events,
        stream_key=args.stream_key,
        partitions=args.partitions,
        consumer=args.consumer,
        consumers=args.consumers,
        rescore_url=args.rescore,
        triggers_file=triggers_file,
        rules_file=args.rules,
        effects_log=args.effects_log,
        rules_counters=rules_counters,
        rules_redis_prefix=args.rules_redis_prefix,
        post_counters=triggers_on if args.post_counters is None else args.post_counters,
        score_created=triggers_on if args.score_created is None else args.score_created,
        rescore_wait=args.rescore_wait,
        push_users=not args.no_user_push,
    )


def run(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    source = opts.source
    state_path = opts.state_path or default_state_path(opts)
    if args.status or args.features:
        if not Path(state_path).exists():
            raise UserError(f"no stream state at {state_path}: run `vigil stream` first.")
        if args.status:
            print(json.dumps(read_status(state_path), indent=2))
        else:
            from datetime import date

            from vigil.stream.state import read_features

            try:
                last_day = date.fromisoformat(args.features)
            except ValueError:
                raise UserError(
                    f"--features {args.features!r}: give a date as YYYY-MM-DD."
                ) from None
            for uid, feats in sorted(read_features(state_path, last_day).items()):
                print(json.dumps({"user_id": uid, **feats}))
        return 0
    if args.replay is not None:
        result = replay(
            args.replay,
            args.rate,
            sink=source,
            target_dir=args.raw or config.paths().raw,
            stream_key=args.stream_key,
            partitions=args.partitions,
        )
    else:
        result = process(opts)
    print(json.dumps(result, indent=2))
    return 0


__all__ = ["RunOptions", "process", "replay"]
