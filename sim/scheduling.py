"""`vigil simulate-schedule`: scheduled posts in a simulated world (issue 24).

After `vigil simulate`, a seeded share of the world's users schedule posts, and Vigil's own
publisher (:class:`vigil.schedule.publisher.Publisher`, on the world's clock) writes them into
the world's raw hour files, so ingest, the features and the account models see them like any
post. Three habits, as the truth (``_truth/scheduled.jsonl``: user, habit, time) records:

- **people** (ordinary users): on some days one post in their local morning (07:00-09:59 in
  their home country's UTC offset), at a random second;
- **bots** (spam-bot accounts that schedule): an exact cron-like cadence, every ``period`` hours
  at a fixed minute, second 0, millisecond 0;
- **campaigns**: groups of bot accounts posting the same slogan at the top of the same hours
  (HH:00:00.000).

Deterministic per seed. A world is scheduled once: a second run is refused (re-simulate first).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from sim.params import COUNTRIES
from vigil.errors import UserError

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
OFFSET = {code: offset for code, _, offset in COUNTRIES}
TOPICS = ["coffee", "the commute", "my run", "the news", "the weather", "breakfast", "work"]
ITEMS = ["watches", "followers", "crypto tips", "pills", "gift cards"]
SLOGANS = ["Vote for change!", "Boycott the brand!", "Share before they delete it!"]


def _read_jsonl(path: Path) -> list[dict]:
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def world_days(raw: Path) -> tuple[date, int]:
    days = sorted(p.name.removeprefix("dt=") for p in (raw / "events").glob("dt=*"))
    if not days:
        raise UserError(
            f"{raw} has no events/dt=*/ folders: run `vigil simulate --out {raw}` first."
        )
    start = date.fromisoformat(days[0])
    return start, (date.fromisoformat(days[-1]) - start).days + 1


def plan(raw: Path, seed: int = 24, share: float = 0.05, campaigns: int = 2) -> list[dict]:
    """The scheduled posts of the world in ``raw`` (users.jsonl + _truth/users.jsonl)."""
    rng = random.Random(seed)
    start, days = world_days(raw)
    t0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    users = {u["user_id"]: u for u in _read_jsonl(raw / "users.jsonl")}
    kinds = {u["user_id"]: u["kind"] for u in _read_jsonl(raw / "_truth" / "users.jsonl")}
    ordinary = sorted(u for u, k in kinds.items() if k == "ordinary")
    bots = sorted(u for u, k in kinds.items() if k == "spam_bot")
    posts: list[dict] = []
    for uid in rng.sample(ordinary, max(1, int(len(ordinary) * share))):
        offset = OFFSET.get(users[uid]["home_country"], 0)
        for day in range(days):
            if rng.random() < 0.6:
                local = rng.randrange(7 * 3600, 10 * 3600) * 1000 + rng.randrange(1000)
                at = t0 + day * DAY_MS + local - offset * HOUR_MS
                posts.append(_post(uid, "person", at, f"Morning thoughts on {rng.choice(TOPICS)}"))
    bots = rng.sample(bots, len(bots))
    n_camp = min(campaigns * 3, len(bots) // 2)
    in_campaigns, cron = bots[:n_camp], bots[n_camp:][: max(1, (len(bots) - n_camp) // 2)]
    for i, uid in enumerate(cron):
        period, minute = rng.choice([1, 2, 3, 4, 6]), rng.randrange(60)
        for at in range(t0 + minute * 60_000, t0 + days * DAY_MS, period * HOUR_MS):
            posts.append(
                _post(uid, "bot", at, f"Deal {i}: cheap {rng.choice(ITEMS)} at shop.example")
            )
    for c in range(campaigns):
        members = in_campaigns[c * 3 : (c + 1) * 3]
        hours = sorted(rng.sample(range(days * 24), min(days * 24, 6)))
        for uid in members:
            posts += [_post(uid, "campaign", t0 + h * HOUR_MS, SLOGANS[c % 3]) for h in hours]
    return [p for p in posts if t0 <= p["scheduled_at"] < t0 + days * DAY_MS]


def _post(user_id: int, habit: str, at: int, text: str) -> dict:
    return {"user_id": int(user_id), "habit": habit, "scheduled_at": int(at), "text": text}


def publish(raw: Path, posts: list[dict]) -> dict:
    """Schedule ``posts`` in a throwaway store and publish them on the world's clock."""
    from vigil.schedule.moderation import NoModel
    from vigil.schedule.publisher import Publisher
    from vigil.schedule.store import SQLiteStore

    truth = raw / "_truth" / "scheduled.jsonl"
    if truth.exists():
        raise UserError(
            f"{raw} already has scheduled posts ({truth}): re-run `vigil simulate` to start over."
        )
    with tempfile.TemporaryDirectory(prefix="sim-schedule-") as tmp:
        store = SQLiteStore(Path(tmp) / "schedule.sqlite3")
        store.migrate()
        store.add_many([(p["user_id"], p["text"], p["scheduled_at"]) for p in posts])
        clock = {"now": 0}
        publisher = Publisher(store, raw, NoModel(), batch_size=1000, clock=lambda: clock["now"])
        totals: dict[str, int] = {}
        for at in sorted({p["scheduled_at"] for p in posts}):
            clock["now"] = at
            for key, value in publisher.run_once().items():
                totals[key] = totals.get(key, 0) + value
        rows = store.all_posts()
        store.close()
    with truth.open("w") as handle:
        for row, post in zip(rows, posts, strict=True):
            handle.write(json.dumps({**post, "schedule_id": int(row["id"])}) + "\n")
    return totals


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", type=Path, default=None, help="the world (default: data/raw)")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--share", type=float, default=0.05, help="share of people who schedule")


def run(args: argparse.Namespace) -> int:
    from vigil import config

    raw = (args.raw or config.paths().raw).resolve()
    if not 0 < args.share <= 1:
        raise UserError(f"--share {args.share} is not a share: pass a number in (0, 1].")
    posts = plan(raw, args.seed, args.share)
    totals = publish(raw, posts)
    habits = {h: sum(p["habit"] == h for p in posts) for h in ("person", "bot", "campaign")}
    log.info(
        "simulate-schedule: %d posts scheduled (%s), %d written into %s",
        len(posts), ", ".join(f"{n} {h}" for h, n in habits.items()), totals.get("written", 0), raw,
    )  # fmt: skip
    return 0
