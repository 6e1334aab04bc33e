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
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sim import vocabulary as V
from sim.accounts_params import AccountsParams
from sim.params import COUNTRIES, DIURNAL, REMOTE_COUNTRIES

log = logging.getLogger(__name__)

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
ACTS = ("post", "reply", "like", "view", "follow", "unfollow")
HEADLINES = [
    "markets open higher as {thing} rallies",
    "city council votes on {thing}",
    "weather alert: {adj} storms expected",
    "new study on {thing} released",
    "live updates: {thing} announcement",
    "explainer: why {thing} matters",
    "sports roundup: {thing} and more",
    "opinion: {thing} is {adj}",
]
SLOGANS = [
    (
        "vote yes on measure {n} {link}",
        "measure {n} needs your yes vote {link}",
        "say yes to measure {n} today {link}",
    ),
    (
        "boycott brandco now {link}",
        "brandco must be boycotted {link}",
        "stop buying brandco {link}",
    ),
    (
        "the truth about the dam they hide {link}",
        "what they hide about the dam {link}",
        "the dam truth is out {link}",
    ),
    (
        "support the new stadium deal {link}",
        "the stadium deal is good for us {link}",
        "back the stadium deal {link}",
    ),
    (
        "share before they delete this {link}",
        "they will delete this, share it {link}",
        "share this before it is deleted {link}",
    ),
]
CAMPAIGN_DOMAINS = ["civic-voice.org", "truth-now.info", "realstory.news", "peoplesvote.net"]
BOT_EXTRA = ["", "", "!!", " 🔥", " 💯", " ✅", " #ad", " !!!"]


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


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class _World:
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
        for o in range(p.operators):
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
            o = r.randrange(p.operators)
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
            o = c % p.operators
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
    def generate(self) -> None:
        self._populate()
        slots: list[tuple] = []  # (ts, uid, kind) kind: act name / 'login' / 'burst' / 'news'
        for a in self.accounts:
            for d in range(self.p.days):
                day0 = self.t0 + d * DAY
                if a.created >= day0 + DAY or (0 <= a.suspended_at < day0):
                    continue
                slots.extend(self._account_day(a, day0))
        slots = [s for s in slots if self._alive(self.accounts[s[1] - 1], s[0])]
        slots.sort()
        self._campaign_slots(slots)
        slots.sort()
        self._materialize(slots)

    def _account_day(self, a: Account, day0: int) -> list[tuple]:
        r, p = self.r, self.p
        out = []
        if a.kind in ("human", "heavy_human", "abusive_human", "mimic_bot"):
            mix = p.mimic_mix if a.kind == "mimic_bot" else p.human_mix
            for s in self._human_sessions(a, day0):
                out.append((s, a.uid, "login"))
                for t in self._session_events(s, a.kind == "heavy_human"):
                    out.append((t, a.uid, r.choices(ACTS, mix)[0]))
        elif a.kind == "news":
            ticks = self._news_ticks(a, day0)
            if ticks:
                out.append((ticks[0] - 5 * MIN, a.uid, "login"))
            out.extend((t, a.uid, "news") for t in ticks)
        else:  # scheduled bot
            ticks = self._bot_ticks(a, day0)
            pos = sorted(abs(t) for t in ticks)
            if pos:
                out.append((pos[0] - MIN, a.uid, "login"))
            for t in ticks:
                if t < 0:
                    out.append((-t, a.uid, "post"))
                else:
                    out.append((t, a.uid, r.choices(ACTS, p.bot_mix)[0]))
        return out

    def _campaign_slots(self, slots: list[tuple]) -> None:
        r, p = self.r, self.p
        for g, group in enumerate(self.friend_groups):
            for d in range(p.days):
                if r.random() < p.p_friend_link_day:
                    t = self.t0 + d * DAY + r.randrange(8 * HOUR, 20 * HOUR)
                    link = f"https://{r.choice(V.BENIGN_DOMAINS)}/{g}{d}{r.randint(100, 999)}"
                    for u in r.sample(group, r.randint(2, len(group))):
                        slots.append((t + r.randrange(0, 4 * HOUR), u, "friendlink:" + link))
        for c in self.campaigns:
            for w, wave in enumerate(c["waves"]):
                for u in c["members"]:
                    if r.random() < p.p_wave_post:
                        t = (
                            wave
                            + int(r.expovariate(1 / p.wave_delay_min) * MIN)
                            + r.randrange(1000, 30_000)
                        )
                        slots.append((t, u, f"campaign:{c['campaign_id']}:{w}"))
        slots[:] = [s for s in slots if self._alive(self.accounts[s[1] - 1], s[0])]

    def _materialize(self, slots: list[tuple]) -> None:
        """Slots -> events (ids, texts, targets), device rows and the amplification of waves."""
        r = self.r
        next_pid = 1
        post_ts: list[int] = []
        post_pid: list[int] = []
        post_author: list[int] = []
        last_post: dict[int, tuple[int, int]] = {}  # author -> (ts, pid)
        wave_posts: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        ev = self.events

        def recent_post(ts: int) -> tuple[int, int] | None:
            i = bisect.bisect_left(post_ts, ts - DAY)
            if i >= len(post_ts):
                return None
            j = r.randrange(i, len(post_ts))
            return post_pid[j], post_author[j]

        for ts, uid, kind in slots:
            a = self.accounts[uid - 1]
            if kind == "login":
                self._login(a, ts)
                continue
            if kind == "news":
                tpl = r.choice(HEADLINES)
                topic = V.TOPICS[r.choice(V.TOPIC_NAMES)]
                link = f"https://news.example.com/a/{a.uid}{next_pid}"
                text = (
                    tpl.format(thing=r.choice(topic["thing"]), adj=r.choice(topic["adj"]))
                    + " "
                    + link
                )
                self.news_links.append((ts, link))
                kind = "post"
            elif kind.startswith("friendlink:"):
                text = f"{r.choice(['look at this', 'lol', 'we were there', 'omg'])} {kind.split(':', 1)[1]}"
                kind = "post"
            elif kind.startswith("campaign:"):
                _, c, w = kind.split(":")
                camp = self.campaigns[int(c)]
                text = r.choice(camp["slogans"]).format(n=camp["n"], link=camp["link"])
                if r.random() < 0.5:
                    text += r.choice(BOT_EXTRA)
                wave_posts.setdefault((int(c), int(w)), []).append((ts, uid, next_pid))
                kind = "post"
            elif kind == "post":
                text = self._bot_text(a) if a.operator >= 0 else self._human_text(a, ts)
            if kind == "post":
                ev.append((ts, uid, "post", next_pid, None, text, None))
                post_ts.append(ts)
                post_pid.append(next_pid)
                post_author.append(uid)
                last_post[uid] = (ts, next_pid)
                next_pid += 1
                continue
            if kind == "reply":
                self._reply(a, ts, last_post, recent_post)
            elif kind in ("like", "view"):
                rp = recent_post(ts)
                if rp is not None and rp[1] != uid:
                    ev.append((ts, uid, kind, rp[0], rp[1], None, None))
            elif kind == "follow":
                pool = a.friends if a.operator < 0 and a.friends and r.random() < 0.7 else None
                t = r.choice(pool) if pool else r.randint(1, len(self.accounts))
                if t != uid:
                    a.follows.append(t)
                    ev.append((ts, uid, "follow", None, t, None, None))
            elif kind == "unfollow" and a.follows:
                t = a.follows.pop(r.randrange(len(a.follows)))
                ev.append((ts, uid, "unfollow", None, t, None, None))
        self._amplify(wave_posts)
        self.events.sort(key=lambda e: (e[0], e[1]))

    def _reply(self, a: Account, ts: int, last_post, recent_post) -> None:
        r = self.r
        if a.targets and r.random() < 0.6:
            victim = r.choice(a.targets)
            lp = last_post.get(victim)
            h = self.accounts[victim - 1].handle
            text = r.choice(V.HARASS_TEMPLATES).format(
                h=h,
                ins=r.choice(V.INSULTS),
                thing=r.choice(V.TOPICS[a.topics[0]]["thing"]),
                c=a.signature,
            )
            if lp is not None:
                self.events.append((ts, a.uid, "reply", lp[1], victim, text, None))
                return
        rp = None
        if a.friends and r.random() < 0.6:
            f = r.choice(a.friends)
            if f in last_post and last_post[f][0] > ts - 3 * DAY:
                rp = (last_post[f][1], f)
        if rp is None:
            rp = recent_post(ts)
        if rp is None or rp[1] == a.uid:
            return
        if a.operator >= 0:
            text = r.choice(V.SPAM_REPLIES).format(
                link=r.choice(self.operators[a.operator]["links"])
            )
        else:
            text = r.choice(V.POSITIVE_REPLIES + V.NEUTRAL_REPLIES) + (
                a.signature if r.random() < 0.4 else ""
            )
        self.events.append((ts, a.uid, "reply", rp[0], rp[1], text, None))

    def _amplify(self, wave_posts) -> None:
        r, p = self.r, self.p
        for posts in wave_posts.values():
            for ts, uid, pid in posts:
                for _, other, _ in posts:
                    if other != uid and r.random() < p.p_amplify / max(1, len(posts) / 4):
                        act = "share" if r.random() < 0.4 else "like"
                        t = ts + r.randrange(30_000, 10 * MIN)
                        if self._alive(self.accounts[other - 1], t):
                            self.events.append((t, other, act, pid, uid, None, None))

    def _login(self, a: Account, ts: int) -> None:
        r, p = self.r, self.p
        dev, net = r.choice(a.devices), r.choice(a.networks)
        if a.shares_fp:
            if r.random() < p.p_reuse_device:
                dev = r.choice(a.old_devices)
            if r.random() < p.p_reuse_network:
                net = r.choice(a.old_networks)
        country = a.country
        if a.operator >= 0 and r.random() < 0.5:
            country = self.operators[a.operator]["country"]
        self.events.append((ts, a.uid, "login", None, None, None, country))
        self.devices.append((ts, a.uid, dev, net))

    # -- labels ---------------------------------------------------------------------------
    def _labels(self) -> list[dict]:
        r, p = self.r, self.p
        out = []
        for ts, uid, act, pid, _target, text, _ in self.events:
            if act != "post" or pid is None:
                continue
            a = self.accounts[uid - 1]
            harmful = a.operator >= 0
            harass = a.kind == "abusive_human" and "@" in (text or "")
            if harass and r.random() < p.p_report_harassment:
                queue, weight = "reported", 1.0
            elif r.random() < p.p_audit:
                queue, weight = "random", round(1 / p.p_audit, 3)
            else:
                continue
            types = ["spam"] if harmful else (["harassment"] if harass else [])
            out.append(
                {
                    "post_id": pid,
                    "is_harmful": bool(types),
                    "harm_types": types,
                    "labeled_at": _iso(ts + r.randrange(HOUR, DAY)),
                    "queue": queue,
                    "sampling_weight": weight,
                }
            )
        return out

    # -- writing --------------------------------------------------------------------------
    def write(self) -> dict:
        out, r = self.out, random.Random(self.p.seed * 7919 + 1)
        (out / "_truth").mkdir(parents=True, exist_ok=True)
        lines_by_hour: dict[tuple[str, int], list[str]] = {}
        for i, (ts, uid, act, pid, target, text, country) in enumerate(self.events):
            if not self.t0 <= ts < self.t1:
                continue
            line = json.dumps(
                {
                    "event_id": f"ac{i + 1:010d}",
                    "event_ts": _iso(ts),
                    "user_id": uid,
                    "action": act,
                    "post_id": pid,
                    "target_user_id": target,
                    "text": text,
                    "country": country,
                },
                ensure_ascii=False,
            )
            dt = datetime.fromtimestamp(ts / 1000, tz=UTC)
            lines_by_hour.setdefault((dt.date().isoformat(), dt.hour), []).append(line)
        for d in range(self.p.days):
            day = (self.p.start + timedelta(days=d)).isoformat()
            (out / "events" / f"dt={day}").mkdir(parents=True, exist_ok=True)
            for h in range(24):
                lines = lines_by_hour.get((day, h), [])
                (out / "events" / f"dt={day}" / f"hour={h:02d}.jsonl").write_text(
                    "".join(x + "\n" for x in lines)
                )
        with open(out / "users.jsonl", "w") as f:
            f.writelines(
                json.dumps(
                    {
                        "user_id": a.uid,
                        "created_at": _iso(a.created),
                        "home_country": a.country,
                        "handle": a.handle,
                    }
                )
                + "\n"
                for a in self.accounts
            )
        labels = self._labels()
        with open(out / "labels.jsonl", "w") as f:
            f.writelines(json.dumps(x) + "\n" for x in labels)
        corrupt = {"enforcement": 0, "devices": 0}
        enf = [
            {
                "enforcement_id": f"en{i + 1:07d}",
                "user_id": uid,
                "action": "suspend",
                "reason": reason,
                "enforced_at": _iso(ts),
            }
            for i, (ts, uid, reason) in enumerate(sorted(self.enforcement))
        ]
        dev = [
            {
                "seen_id": f"se{i + 1:09d}",
                "user_id": uid,
                "seen_at": _iso(ts),
                "device_fp": d,
                "network_fp": n,
            }
            for i, (ts, uid, d, n) in enumerate(
                x for x in sorted(self.devices) if self.t0 <= x[0] < self.t1
            )
        ]
        for name, rows in (("enforcement", enf), ("devices", dev)):
            with open(out / f"{name}.jsonl", "w") as f:
                for row in rows:
                    if r.random() < self.p.p_corrupt:
                        f.write(_corrupt(r, row) + "\n")
                        corrupt[name] += 1
                    f.write(json.dumps(row) + "\n")
        self._write_truth(corrupt)
        return {
            "accounts": len(self.accounts),
            "events": len(self.events),
            "labels": len(labels),
            "suspensions": len(enf),
            "device_rows": len(dev),
            "corrupt_lines": corrupt,
        }

    def _write_truth(self, corrupt: dict) -> None:
        t = self.out / "_truth"
        with open(t / "accounts_users.jsonl", "w") as f:
            f.writelines(
                json.dumps(
                    {
                        "user_id": a.uid,
                        "kind": a.kind,
                        "is_bot": a.kind in ("bot", "mimic_bot"),
                        "operator": a.operator if a.operator >= 0 else None,
                        "campaign": a.campaign if a.campaign >= 0 else None,
                        "evader_of": a.evader_of or None,
                        "shares_fp": a.shares_fp,
                        "suspended_at": _iso(a.suspended_at) if a.suspended_at >= 0 else None,
                        "suspend_reason": a.suspend_reason or None,
                        "created_at": _iso(a.created),
                    }
                )
                + "\n"
                for a in self.accounts
            )
        with open(t / "accounts_campaigns.jsonl", "w") as f:
            for c in self.campaigns:
                row = {k: v for k, v in c.items() if k != "n"}
                row["waves"] = [_iso(w) for w in c["waves"]]
                f.write(json.dumps(row) + "\n")
        with open(t / "accounts_friend_groups.jsonl", "w") as f:
            f.writelines(
                json.dumps({"group_id": g, "members": members}) + "\n"
                for g, members in enumerate(self.friend_groups)
            )
        (t / "accounts_world.json").write_text(
            json.dumps(
                {"params": self.p.resolved(), "corrupt_lines": corrupt}, default=str, indent=1
            )
        )


def _corrupt(r: random.Random, row: dict) -> str:
    bad = dict(row)
    kind = r.choice(("missing", "bad_ts", "bad_id", "bad_value", "not_json"))
    if kind == "missing":
        del bad["user_id"]
    elif kind == "bad_ts":
        bad[next(k for k in bad if k.endswith("_at"))] = "yesterday"
    elif kind == "bad_id":
        bad["user_id"] = -5
    elif kind == "bad_value":
        if "reason" in bad:
            bad["action"] = "obliterate"
        else:
            bad["device_fp"] = ""
    else:
        return json.dumps(bad)[:20]
    for k in ("enforcement_id", "seen_id"):
        if k in bad:
            bad[k] = "x" + bad[k]
    return json.dumps(bad)


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
