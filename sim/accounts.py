"""`vigil simulate-accounts`: an accounts world for account integrity (issue 21).

A complete raw folder in the raw contract (docs/contracts.md section 1: hour files, users.jsonl,
labels.jsonl) that ``vigil ingest`` loads, plus two streams accounts need (section 1.1):
``enforcement.jsonl`` (suspensions: user, action, reason, time) and ``devices.jsonl`` (login
fingerprints: user, time, device and network fingerprint). The populations, with truth under
``_truth/accounts_*.jsonl`` only:

- **humans**: sessions drawn from a personal diurnal profile in their home time zone, a
  gamma-Poisson number of sessions a day (bursty days), events inside a session seconds apart;
  favourite topics, a signature closer, a few friends they reply to and mention;
- **heavy humans** (legitimate look-alikes): the same rhythm, several times the volume;
- **news accounts** (legitimate look-alikes): a post every 30 or 60 minutes in their local day,
  each with its own link, which humans then share;
- **friend groups** (legitimate look-alikes): friends posting the same link within hours;
- **bots** of a few farms: a scheduled cadence (a period with a few % jitter, all day or in a
  daily window, bursts), the farm's near-duplicate texts and links, follow churn, the farm's
  devices and networks; a share imitate human sessions instead (same content and churn);
- **abusive humans**: harass a few targets; the platform suspends most of them;
- **suspensions** (``enforcement.jsonl``): part of the bots (reason ``bot``) and the abusers
  (``harassment``); accounts stop after it;
- **evaders**: a suspended account re-registers (hours to a day or two later) with the old
  account's country, topics, signature, targets and habits; half of them log in, part of the
  time, with an old device or network fingerprint;
- **campaigns**: a farm's bots plus a few paid humans post the same or a paraphrased slogan with
  the campaign's link within minutes of a wave, and like and share each other's wave posts.

Deterministic per seed; ~3,000 accounts x 14 days in a few seconds.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from sim import vocabulary as V
from sim.accounts_activity import WorldActivity
from sim.accounts_output import WorldOutput
from sim.accounts_params import AccountsParams
from sim.accounts_text import BOT_EXTRA, CAMPAIGN_DOMAINS, DAY, HOUR, MIN, SLOGANS
from sim.params import COUNTRIES, DIURNAL, REMOTE_COUNTRIES

log = logging.getLogger(__name__)


@dataclass
class Account:
    uid: int
    kind: str  # human heavy_human news abusive_human bot mimic_bot
    created: int  # ms
    country: str
    offset_h: int
    handle: str
    peak_shift: float = 0.0
    rate: float = 1.0  # sessions a day
    topics: tuple = ()
    signature: str = ""
    friends: list = field(default_factory=list)
    targets: list = field(default_factory=list)  # harassment victims
    devices: list = field(default_factory=list)
    networks: list = field(default_factory=list)
    operator: int = -1
    period: float = 0.0  # minutes, scheduled accounts
    phase: float = 0.0
    window: tuple | None = None  # (start hour UTC, length h) for scheduled bots
    campaign: int = -1
    suspended_at: int = -1
    suspend_reason: str = ""
    evader_of: int = 0
    shares_fp: bool = False
    old_devices: list = field(default_factory=list)
    old_networks: list = field(default_factory=list)
    follows: list = field(default_factory=list)


def _fp(r: random.Random, prefix: str) -> str:
    return prefix + "".join(r.choice("0123456789abcdef") for _ in range(12))


class _World(WorldActivity, WorldOutput):
    def __init__(self, out: Path, p: AccountsParams):
        self.out, self.p = out, p
        self.t0 = (
            int(datetime(p.start.year, p.start.month, p.start.day, tzinfo=UTC).timestamp()) * 1000
        )
        self.t1 = self.t0 + p.days * DAY
        self.r = random.Random(p.seed)
        self.accounts: list[Account] = []
        self.events: list[tuple] = []  # (ts, uid, action, post_id, target, text, country)
        self.devices: list[tuple] = []  # (ts, uid, device_fp, network_fp)
        self.enforcement: list[tuple] = []  # (ts, uid, reason)
        self.operators: list[dict] = []
        self.campaigns: list[dict] = []
        self.friend_groups: list[list[int]] = []
        self.news_links: list[tuple[int, str]] = []  # (ts, link)
        self._cum: dict[int, list[float]] = {}  # uid -> cumulative diurnal weights
        weights = [w for _, w, _ in COUNTRIES]
        self.country_w = [w / sum(weights) for w in weights]

    # -- accounts -------------------------------------------------------------------------
    def _new(self, kind: str, created: int, country: tuple | None = None) -> Account:
        r = self.r
        if country is None:
            code, _, off = r.choices(COUNTRIES, self.country_w)[0]
        else:
            code, off = country
        uid = len(self.accounts) + 1
        if kind in ("bot",) and r.random() < 0.7:
            handle = "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) + str(
                r.randint(10_000_000, 99_999_999)
            )
        elif kind == "news":
            handle = f"{r.choice(V.HANDLE_NOUN)}_news{uid}"
        else:
            handle = f"{r.choice(V.HANDLE_ADJ)}_{r.choice(V.HANDLE_NOUN)}{r.randint(1, 9999)}"
        a = Account(uid, kind, created, code, off, handle)
        a.peak_shift = r.gauss(0, self.p.peak_shift_sd_h)
        a.rate = self.p.sessions_per_day * r.gammavariate(1.5, 1 / 1.5)
        a.topics = tuple(r.sample(V.TOPIC_NAMES, 2))
        a.signature = r.choice(V.CLOSERS[4:])
        self.accounts.append(a)
        return a

    def _populate(self) -> None:
        p, r = self.p, self.r
        n_bots = round(p.users * p.bot_share)
        n_news = max(1, round(p.users * p.news_share))
        n_heavy = round(p.users * p.heavy_share)
        n_abusive = round(p.users * p.abusive_share)
        n_human = p.users - n_bots - n_news - n_heavy - n_abusive
        for o in range(p.n_operators):
            self.operators.append(
                {
                    "devices": [_fp(r, "d") for _ in range(p.operator_devices)],
                    "networks": [_fp(r, "n") for _ in range(p.operator_networks)],
                    "links": [
                        f"https://{r.choice(V.SPAM_DOMAINS)}/{o}{r.randint(100, 999)}"
                        for _ in range(p.operator_links)
                    ],
                    "texts": r.sample(V.SPAM_TEMPLATES, p.operator_texts),
                    "country": r.choice(REMOTE_COUNTRIES + ["US", "IN", "BR"]),
                }
            )
        kinds = (
            ["human"] * n_human
            + ["heavy_human"] * n_heavy
            + ["news"] * n_news
            + ["abusive_human"] * n_abusive
        )
        r.shuffle(kinds)
        for kind in kinds:
            new = kind in ("human", "abusive_human") and r.random() < p.new_human_share
            created = (
                self.t0 + r.randrange(0, (p.days - 1) * DAY)
                if new
                else self.t0 - r.randrange(DAY, 900 * DAY)
            )
            a = self._new(kind, created)
            a.devices = [_fp(r, "d") for _ in range(r.choice((1, 1, 2, 3)))]
            a.networks = [_fp(r, "n") for _ in range(r.choice((1, 2, 2, 3)))]
            if kind == "heavy_human":
                a.rate *= p.heavy_factor
            if kind == "news":
                a.period = float(r.choice(p.news_period_min))
                a.phase = float(r.choice((0, 15, 30))) % a.period
        humans = [a for a in self.accounts if a.kind != "news"]
        for a in humans:
            a.friends = [f.uid for f in r.sample(humans, 6) if f.uid != a.uid][:5]
            if r.random() < p.p_household:
                other = r.choice(humans)
                other.networks.append(a.networks[0])
        for a in self.accounts:
            if a.kind == "abusive_human":
                a.targets = [f.uid for f in r.sample(humans, 3)]
        for _ in range(n_bots):
            mimic = r.random() < p.mimic_share
            o = r.randrange(p.n_operators)
            op = self.operators[o]
            new = r.random() < p.bot_new_share
            created = (
                self.t0 + r.randrange(0, (p.days - 2) * DAY)
                if new
                else self.t0 - r.randrange(2 * DAY, 200 * DAY)
            )
            country = None
            if r.random() < 0.5:
                code = op["country"]
                country = (code, {c: off for c, _, off in COUNTRIES}.get(code, 2))
            a = self._new("mimic_bot" if mimic else "bot", created, country)
            self._bot_habits(a, o)
        self._friend_groups()
        self._campaigns()
        self._suspensions()

    def _bot_habits(self, a: Account, o: int) -> None:
        p, r = self.p, self.r
        op = self.operators[o]
        a.operator = o
        a.devices = r.sample(op["devices"], 2)
        a.networks = r.sample(op["networks"], 2)
        if r.random() < 0.3:  # some bots rent their own residential fingerprint
            a.devices, a.networks = [_fp(r, "d")], [_fp(r, "n")]
        a.period = r.uniform(*p.bot_period_min)
        a.phase = r.uniform(0, a.period)
        if r.random() < p.p_bot_schedule:
            a.window = (r.randrange(24), r.randint(*p.bot_window_h))

    def _friend_groups(self) -> None:
        p, r = self.p, self.r
        humans = [a.uid for a in self.accounts if a.kind in ("human", "heavy_human")]
        for _ in range(p.friend_groups):
            group = r.sample(humans, r.randint(*p.friend_group_size))
            self.friend_groups.append(group)
            for u in group:
                acc = self.accounts[u - 1]
                acc.friends = list(dict.fromkeys([g for g in group if g != u] + acc.friends))[:6]

    def _campaigns(self) -> None:
        p, r = self.p, self.r
        humans = [a for a in self.accounts if a.kind == "human" and a.created < self.t0]
        for c in range(p.campaigns):
            o = c % p.n_operators
            start = self.t0 + r.randrange(2 * DAY, (p.days - 3) * DAY)
            members = []
            for _ in range(r.randint(*p.campaign_bots)):
                created = start - r.randrange(HOUR, 3 * DAY)
                a = self._new("bot", created)
                self._bot_habits(a, o)
                members.append(a)
            for a in r.sample(humans, r.randint(*p.campaign_humans)):
                if a.campaign < 0:
                    members.append(a)
            slogans = SLOGANS[c % len(SLOGANS)]
            link = f"https://{CAMPAIGN_DOMAINS[c % len(CAMPAIGN_DOMAINS)]}/c{c}{r.randint(10, 99)}"
            waves, t = [], start
            for _ in range(r.randint(*p.campaign_waves)):
                waves.append(t)
                t += r.randrange(3 * HOUR, 20 * HOUR)
            waves = [w for w in waves if w < self.t1 - HOUR]
            for a in members:
                a.campaign = c
            self.campaigns.append(
                {
                    "campaign_id": c,
                    "members": [a.uid for a in members],
                    "operator": o,
                    "link": link,
                    "slogans": list(slogans),
                    "waves": waves,
                    "n": r.randint(10, 99),
                }
            )

    def _suspensions(self) -> None:
        p, r = self.p, self.r
        for a in list(self.accounts):
            if a.kind in ("bot", "mimic_bot") and r.random() < p.p_bot_suspended:
                t = max(a.created, self.t0) + int(r.uniform(*p.bot_suspend_after_days) * DAY)
                reason = "bot"
            elif a.kind == "abusive_human" and r.random() < p.p_abusive_suspended:
                t = self.t0 + int(r.uniform(*p.abusive_suspend_window) * p.days * DAY)
                t = max(t, a.created + DAY)
                reason = "harassment"
            else:
                continue
            if t >= self.t1:
                continue
            a.suspended_at, a.suspend_reason = t, reason
            self.enforcement.append((t, a.uid, reason))
            if r.random() < p.p_evade:
                self._evader(a, t + int(r.uniform(*p.evade_delay_days) * DAY))

    def _evader(self, old: Account, created: int) -> None:
        p, r = self.p, self.r
        if created >= self.t1 - 2 * HOUR:
            return
        e = self._new(old.kind, created, (old.country, old.offset_h))
        if r.random() < p.p_similar_handle:
            e.handle = old.handle.rstrip("0123456789") + str(r.randint(1, 9999))
        e.peak_shift, e.rate, e.topics, e.signature = (
            old.peak_shift,
            old.rate,
            old.topics,
            old.signature,
        )
        e.friends, e.targets = list(old.friends), list(old.targets)
        e.period, e.window, e.operator = old.period, old.window, old.operator
        e.phase = r.uniform(0, old.period) if old.period else 0.0
        e.devices, e.networks = [_fp(r, "d")], [_fp(r, "n")]
        e.evader_of = old.uid
        e.shares_fp = r.random() < p.p_evader_shares_fp
        e.old_devices, e.old_networks = list(old.devices), list(old.networks)

    # -- timing ---------------------------------------------------------------------------
    def _alive(self, a: Account, ts: int) -> bool:
        return a.created < ts < self.t1 and (a.suspended_at < 0 or ts < a.suspended_at)

    def _human_sessions(self, a: Account, day0: int) -> list[int]:
        """Session start times (ms) of one day: gamma-Poisson count, personal diurnal hours."""
        r = self.r
        lam = r.gammavariate(self.p.session_dispersion, a.rate / self.p.session_dispersion)
        n = _poisson(r, lam)
        if n == 0:
            return []
        cum = self._cum.get(a.uid)
        if cum is None:
            probs = [float(DIURNAL[round(h - a.peak_shift) % 24]) for h in range(24)]
            cum = self._cum[a.uid] = list(itertools.accumulate(probs))
        out = []
        for local in r.choices(range(24), cum_weights=cum, k=n):
            utc_h = (local - a.offset_h) % 24
            out.append(day0 + utc_h * HOUR + r.randrange(HOUR))
        return sorted(out)

    def _session_events(self, start: int, heavy: bool) -> list[int]:
        r, p = self.r, self.p
        k = 1 + _geometric(r, p.events_per_session_p)
        if heavy:
            k = int(k * p.heavy_factor / 2) + 1
        out, t = [], start
        for _ in range(k):
            t += int(r.expovariate(1 / p.in_session_gap_s) * 1000) + 1000
            out.append(t)
        return out

    def _bot_ticks(self, a: Account, day0: int) -> list[int]:
        r, p = self.r, self.p
        per = a.period * MIN
        first = day0 + int(a.phase * MIN)
        out = []
        k = 0
        while first + k * per < day0 + DAY:
            t = first + k * per + r.gauss(0, p.bot_jitter * per)
            k += 1
            if a.window is not None:
                h = ((int(t) - day0) // HOUR - a.window[0]) % 24
                if h >= a.window[1]:
                    continue
            out.append(int(t))
        if r.random() < p.p_bot_burst_day:
            t = day0 + r.randrange(DAY)
            for _ in range(r.randint(*p.bot_burst_posts)):
                t += int(r.uniform(*p.bot_burst_gap_s) * 1000)
                out.append(-t)  # negative: a burst post
        return out

    def _news_ticks(self, a: Account, day0: int) -> list[int]:
        p, r = self.p, self.r
        out = []
        lo, hi = p.news_hours_local
        for m in range(0, 24 * 60, int(a.period)):
            local_h = (m // 60 + a.offset_h) % 24
            if lo <= local_h < hi:
                out.append(
                    day0 + (m + int(a.phase)) * MIN + int(r.gauss(0, p.news_jitter_s) * 1000)
                )
        return out

    # -- content --------------------------------------------------------------------------
    def _human_text(self, a: Account, ts: int) -> str:
        r, p = self.r, self.p
        if self.news_links and r.random() < p.p_news_link:
            i = bisect.bisect_left(self.news_links, (ts - DAY, ""))
            j = bisect.bisect_left(self.news_links, (ts, ""))
            if j > i:
                return f"{r.choice(['great read', 'worth reading', 'wow', 'this'])} {self.news_links[r.randrange(i, j)][1]}"
        if a.targets and r.random() < 0.3:
            victim = self.accounts[r.choice(a.targets) - 1]
            return r.choice(V.HARASS_TEMPLATES).format(
                h=victim.handle,
                ins=r.choice(V.INSULTS),
                c=a.signature,
                thing=r.choice(V.TOPICS[a.topics[0]]["thing"]),
            )
        topic = V.TOPICS[r.choice(a.topics)]
        text = r.choice(V.BENIGN_TEMPLATES).format(
            o=r.choice(V.OPENERS),
            c=a.signature if r.random() < 0.6 else r.choice(V.CLOSERS),
            thing=r.choice(topic["thing"]),
            adj=r.choice(topic["adj"]),
            thing2=r.choice(topic["thing"]),
            adj2=r.choice(topic["adj"]),
            n=r.randint(2, 9),
        )
        if a.friends and r.random() < p.p_mention:
            text = f"@{self.accounts[r.choice(a.friends) - 1].handle} {text}"
        return text

    def _bot_text(self, a: Account) -> str:
        r = self.r
        op = self.operators[a.operator]
        text = r.choice(op["texts"])
        while "{link}" in text:
            text = text.replace("{link}", r.choice(op["links"]), 1)
        return text.replace("{n}", str(r.randint(2, 9))) + r.choice(BOT_EXTRA)

    # -- generation -----------------------------------------------------------------------


def _poisson(r: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= L:
            return k
        k += 1


def _geometric(r: random.Random, p: float) -> int:
    return int(math.log(1 - r.random()) / math.log(1 - p))


def simulate_accounts(out: Path, params: AccountsParams | None = None) -> dict:
    """Write the accounts world into ``out`` (replacing a previous one); return its counts."""
    p = params or AccountsParams()
    started = time.perf_counter()
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    w = _World(out, p)
    w.generate()
    log.info("simulate-accounts: %d accounts, %d events generated", len(w.accounts), len(w.events))
    result = w.write()
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def configure_parser(parser: argparse.ArgumentParser) -> None:
    d = AccountsParams()
    parser.add_argument(
        "--raw", type=Path, default=None, help="raw directory (default $VIGIL_HOME/raw_accounts)"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--users", type=int, default=d.users, help=f"default {d.users}")
    parser.add_argument("--days", type=int, default=d.days, help=f"default {d.days}")
    parser.add_argument("--start", type=date.fromisoformat, default=d.start, help="YYYY-MM-DD")


def run(args: argparse.Namespace) -> int:
    from vigil import config
    from vigil.errors import UserError

    if args.days < 4:
        raise UserError(
            f"--days {args.days} is too short for suspensions and evaders: use 4 or more."
        )
    if args.users < 200:
        raise UserError(
            f"--users {args.users} is too few for bots, campaigns and groups: use 200 or more."
        )
    out = args.raw if args.raw is not None else config.paths().home / "raw_accounts"
    p = replace(
        AccountsParams(), seed=args.seed, users=args.users, days=args.days, start=args.start
    )
    res = simulate_accounts(out, p)
    print(
        f"Simulated an accounts world into {out} in {res['seconds']}s: {res['accounts']:,} accounts, "
        f"{res['events']:,} events, {res['suspensions']} suspensions, {res['device_rows']:,} "
        f"device rows, {res['labels']:,} labels, corrupt lines {res['corrupt_lines']}"
    )
    return 0
