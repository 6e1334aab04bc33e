"""Rules engine in the stream processor (issue 21): throughput with 20 rules on vs off, and
with the rules' counters in Redis (``--rules-counters redis``) vs in process.

On one core (the process pinned to one CPU), over the same raw lines of a simulated accounts
world (links, campaigns, bots), the stream's core path -- parse and validate a chunk of lines,
dedupe, apply, SQLite checkpoints every 1 s -- runs side by side with and without a 20-rule set
attached (:mod:`vigil.stream.rules`: counters, labels, effects committed in the checkpoint).
Paths are interleaved ``--repeats`` times and each keeps its best round (the machine is shared).

With Redis at ``VIGIL_REDIS_URL`` (skipped when it is not reachable), a third path runs the same
20 rules with their counters in Redis (:class:`vigil.rules.redis_counters.RedisCounters`, the
stream's settings: written every 20k events and at each checkpoint; keys under
``vigil-rules:bench:<run>:``, deleted after each round); its CPU time adds the Redis server's
(``INFO cpu``, the server is not pinned). The load average before and after is reported (wall
rates on a shared machine count the other processes' turns).

The rules: the default rules (vigil/rules/default_rules.yaml, 6 since ``shared_device``: 21 in
all, printed as such) and 15 more over users, posts, links and targets, windows from 1 minute to
1 day, live and shadow (:func:`rules_text`).

    python -m bench rules [--users 3000] [--days 14] [--seed 21] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CHUNK = 5000

EXTRA_RULES = [
    # (name, when, expr, effect)
    ("user_posts_1m", "post", 'count("user", "1m") >= 5', "{do: throttle, entity: user}"),
    ("user_posts_1h", "post", 'count("user", "1h") >= 40', "{do: review, entity: user}"),
    ("user_posts_1d", "post", 'count("user", "1d") >= 300', "{do: review, entity: user}"),
    ("user_replies_10m", "reply", 'count("user", "10m") >= 10', "{do: throttle, entity: user}"),
    (
        "reply_targets",
        "reply",
        'distinct("user", "post", "1h") >= 20',
        "{do: review, entity: user}",
    ),
    ("likes_burst", "like", 'count("user", "5m") >= 30', "{do: throttle, entity: user}"),
    ("post_views", "view", 'count("post", "1h") >= 500', "{do: review, entity: post}"),
    ("post_likers", "like", 'distinct("post", "user", "10m") >= 50', "{do: review, entity: post}"),
    ("link_posts_1h", "post", 'count("link", "1h") >= 30', "{do: review, entity: link}"),
    (
        "link_repeat_user",
        "post",
        'distinct("user", "link", "1d") >= 10',
        "{do: review, entity: user}",
    ),
    ("follows_1h", "follow", 'count("user", "1h") >= 50', "{do: review, entity: user}"),
    ("unfollows_1h", "unfollow", 'count("user", "1h") >= 50', "{do: review, entity: user}"),
    (
        "target_follows",
        "follow",
        'distinct("target", "user", "1h") >= 40',
        "{do: review, entity: target}",
    ),
    (
        "long_text_links",
        "post",
        "len(text) > 200 and link is not None",
        "{do: review, entity: user}",
    ),
    (
        "free_prize",
        "post",
        'contains(text, "free") and count("user", "10m") >= 3',
        "{do: review, entity: user}",
    ),
]


def rules_text() -> str:
    """The default rules file (without its tests) plus the 15 rules above: 20 rules."""
    base = (REPO / "vigil" / "rules" / "default_rules.yaml").read_text().split("\ntests:")[0]
    extra = []
    for i, (name, when, expr, effect) in enumerate(EXTRA_RULES):
        mode = "shadow" if i % 2 else "live"
        extra.append(
            f"  - name: {name}\n    version: 1\n    when: {when}\n    mode: {mode}\n"
            f"    expr: {expr}\n    effects:\n      - {effect}\n"
        )
    return base.rstrip("\n") + "\n" + "".join(extra)


def _lines(raw: Path) -> list[tuple[str, bytes]]:
    out = []
    for f in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        rel = str(f.relative_to(raw))
        out.extend((rel, line) for line in f.read_bytes().split(b"\n")[:-1])
    return out


def _redis():
    """A client of the Redis at VIGIL_REDIS_URL, or None (the Redis path is then skipped)."""
    from vigil.errors import UserError
    from vigil.stream.sources import redis_client

    try:
        return redis_client()
    except UserError as exc:
        log.warning("bench rules: no Redis path (%s)", exc)
        return None


def _redis_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _drop_keys(client, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i : i + 1000])


def _redis_summary(best: dict, best_cpu: dict, effects: dict) -> dict:
    """The Redis path against the in-process one (empty without Redis)."""
    if "stream_core_20_rules_redis" not in best:
        return {}
    r, m = best["stream_core_20_rules_redis"], best["stream_core_20_rules"]
    rc, mc = best_cpu["stream_core_20_rules_redis"], best_cpu["stream_core_20_rules"]
    return {
        "ratio_redis_vs_memory": round(r / m, 3),
        "ratio_redis_vs_memory_cpu": round(rc / mc, 3),
        "redis_calls": effects.get("redis_calls"),
        # the same effects log, byte for byte, with the counters in Redis
        "redis_effects_equal": effects.get("redis") == effects.get("memory"),
    }


def _time_paths(paths: dict, n: int, repeats: int, server_cpu: dict) -> tuple[dict, dict]:
    """Each path's best events/s over ``repeats`` interleaved rounds: of wall time, and of CPU
    time (this process's plus the Redis server's that the path reports in ``server_cpu``)."""
    best = dict.fromkeys(paths, 0.0)
    best_cpu = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, fn in paths.items():
            t, c = time.perf_counter(), time.process_time()
            server_cpu["last"] = 0.0
            fn()
            best[name] = max(best[name], n / (time.perf_counter() - t))
            cpu = time.process_time() - c + server_cpu["last"]
            best_cpu[name] = max(best_cpu[name], n / cpu)
    return best, best_cpu


def bench_rules(raw: Path, rules: Path, work: Path, repeats: int) -> dict:
    from vigil.stream.events import file_limit_us
    from vigil.stream.rules import RulesFeed
    from vigil.stream.state import StreamState

    lines = _lines(raw)
    limits = [file_limit_us(rel) for rel, _ in lines]
    chunks = [
        ([x for _, x in lines[i : i + CHUNK]], limits[i : i + CHUNK])
        for i in range(0, len(lines), CHUNK)
    ]
    effects = {}
    client = _redis()
    server_cpu = {}

    def run(with_rules: bool, in_redis: bool = False) -> None:
        path = work / f"s-{with_rules}-{in_redis}-{time.monotonic_ns()}.sqlite"
        state = StreamState(path)
        feed = counters = None
        if in_redis:
            from vigil.rules.redis_counters import RedisCounters

            counters = RedisCounters(client, f"vigil-rules:bench:{path.stem}:", defer_prune=True)
            cpu0 = _redis_cpu(client)
        if with_rules:
            feed = RulesFeed(
                state.con, rules, path.with_suffix(".effects.jsonl"), counters=counters
            )
            feed.attach(state)
        last = time.perf_counter()
        for i, (chunk, lims) in enumerate(chunks):
            if feed is not None:
                feed.maybe_reload()
            state.apply_lines(chunk, lims)
            if time.perf_counter() - last >= 1.0:
                state.checkpoint({"bench": str(i)})
                if feed is not None:
                    feed.export()
                last = time.perf_counter()
        state.checkpoint({"bench": str(len(chunks))})
        if feed is not None:
            feed.export()
            key = "redis" if in_redis else "memory"
            effects[key] = feed.effects_log.read_bytes()
            if not in_redis:
                effects.update(feed.summary())
                effects["rules_evaluated"] = feed.engine.evaluated
        state.close()
        if in_redis:
            server_cpu["last"] = _redis_cpu(client) - cpu0
            effects["redis_calls"] = counters.calls
            _drop_keys(client, counters.prefix)

    paths = {"stream_core": lambda: run(False), "stream_core_20_rules": lambda: run(True)}
    if client is not None:
        paths["stream_core_20_rules_redis"] = lambda: run(True, in_redis=True)
    best, best_cpu = _time_paths(paths, len(lines), repeats, server_cpu)
    return {
        **_redis_summary(best, best_cpu, effects),
        "lines": len(lines),
        "repeats": repeats,
        **{k: round(v, 1) for k, v in best.items()},
        # events per second of CPU time on the one core: what a machine shared by other
        # processes still measures (wall time there counts the others' turns too)
        **{f"{k}_cpu": round(v, 1) for k, v in best_cpu.items()},
        "ratio_rules_vs_core": round(best["stream_core_20_rules"] / best["stream_core"], 3),
        "ratio_rules_vs_core_cpu": round(
            best_cpu["stream_core_20_rules"] / best_cpu["stream_core"], 3
        ),
        "rules": len(effects.get("rules", [])),
        "rules_evaluated": effects.get("rules_evaluated"),
        "effects": effects.get("effects_total"),
        "effects_by_rule": effects.get("effects_by_rule"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench rules", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from sim.accounts import simulate_accounts
    from sim.accounts_params import AccountsParams

    root = Path(tempfile.mkdtemp(prefix="vigil-bench-rules-"))
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})  # one core
        raw = root / "raw"
        params = replace(AccountsParams(), seed=args.seed, users=args.users, days=args.days)
        simulate_accounts(raw, params)
        rules = root / "rules20.yaml"
        rules.write_text(rules_text())
        load_before = os.getloadavg()
        result = {"params": vars(args), **bench_rules(raw, rules, root, args.repeats)}
        result["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
        shutil.rmtree(root, ignore_errors=True)
    r = result
    print(
        f"\nStream with rules, one core ({r['lines']:,} accounts-world lines, best of "
        f"{r['repeats']} interleaved rounds; events/s of wall time, of CPU time):\n"
        f"  stream core            {r['stream_core']:>10,.0f} {r['stream_core_cpu']:>10,.0f}\n"
        f"  stream core + {r['rules']} rules  {r['stream_core_20_rules']:>10,.0f} "
        f"{r['stream_core_20_rules_cpu']:>10,.0f}  ({r['ratio_rules_vs_core']:.2f}x / "
        f"{r['ratio_rules_vs_core_cpu']:.2f}x the core)\n"
        f"  rule evaluations {r['rules_evaluated']:,}, effects {r['effects']:,}"
    )
    if "ratio_redis_vs_memory" in r:
        print(
            f"  + counters in Redis    {r['stream_core_20_rules_redis']:>10,.0f} "
            f"{r['stream_core_20_rules_redis_cpu']:>10,.0f}  ({r['ratio_redis_vs_memory']:.3f}x / "
            f"{r['ratio_redis_vs_memory_cpu']:.3f}x in process; CPU incl. the Redis server; "
            f"{r['redis_calls']:,} flushes; same effects: {r['redis_effects_equal']})"
        )
    la = r["load_average"]
    print(f"  load average 1/5/15 min: before {la[0]}/{la[1]}/{la[2]}, after {la[3]}/{la[4]}/{la[5]}")
    return result
