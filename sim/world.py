"""`vigil simulate`: a social network's raw logs, deterministic per seed (contract: docs/contracts.md §1).

The world, in one paragraph. Users have a latent kind (ordinary, abusive, spam bot, compromised
mid-period) and heavy-tailed habits: how often they show up, how many sessions, how long. Each day
they open sessions (logins with a country), post (text from :mod:`sim.text`), follow people,
and watch posts. Views are generated post by post: every post has a reach drawn from a power law
(a few go viral) and its views arrive with a Lomax-distributed age (most in the first hours,
decaying over a week); each view is handed to a user whose session covers that minute, so a user's
active minutes follow their sessions. A view may trigger a like, share, dislike, reply, report,
block, mute, follow or unfollow, with probabilities that respond to the post's hidden harmfulness,
but noisily: benign "controversial" posts draw dislikes and reports, a few adversarial users
mass-report targeted creators, abusers cheer each other on, and early in a harmful post's life its
audience is mostly sympathetic (weak signal). Mentioned users get a notification and often report or
block harassers. Moderators label a queue of posts: posts reported in their first 24 h with
probability ``P_REPORTED`` (queue ``reported``); the rest go to a stratified audit sample (queue
``random``): ``P_RANDOM`` of all posts, ``P_REACH`` of posts that passed ``REACH_VIEWS`` views in
their first day, ``P_REPEAT`` of posts whose author already had a post labeled harmful. Each label
carries ``sampling_weight = 1/p`` for the probability that picked it; moderators are ~99% accurate.

The log pipeline is imperfect on purpose: ~0.5% of events arrive in a later hour file (some the
next day), ~0.2% of lines are delivered twice, and ``corrupt_rate`` extra garbage lines of varied
kinds are mixed in (counted in ``_truth/corruptions.json``).

Generation is day by day with numpy; only a week of live posts and one hour of formatted lines are
held in memory, so ``--users 1000000`` streams to disk.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from sim import text as sim_text
from vigil.contracts import ACTIONS, HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)

DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000

KINDS = ("ordinary", "abusive", "spam_bot", "compromised")
ORD, ABU, BOT, CMP = range(4)
KIND_SHARES = (0.9855, 0.0100, 0.0015, 0.0030)
ACT = {name: i for i, name in enumerate(ACTIONS)}
HT_BIT = {name: 1 << i for i, name in enumerate(HARM_TYPES)}

# Countries: (alpha-2, share of users, UTC offset in hours for the diurnal cycle).
COUNTRIES = [
    ("US", 0.28, -5),
    ("IN", 0.11, 5),
    ("BR", 0.08, -3),
    ("GB", 0.07, 0),
    ("DE", 0.05, 1),
    ("FR", 0.04, 1),
    ("CA", 0.04, -5),
    ("MX", 0.04, -6),
    ("JP", 0.04, 9),
    ("AU", 0.03, 10),
    ("NG", 0.03, 1),
    ("PH", 0.03, 8),
    ("ID", 0.03, 7),
    ("ES", 0.02, 1),
    ("IT", 0.02, 1),
    ("KR", 0.02, 9),
    ("TR", 0.02, 3),
    ("PL", 0.015, 1),
    ("NL", 0.015, 1),
    ("SE", 0.01, 1),
    ("ZA", 0.01, 2),
    ("AR", 0.01, -3),
    ("EG", 0.01, 2),
]
# Where account takeovers and bot farms log in from (appended after the home countries).
REMOTE_COUNTRIES = ["RO", "VN", "KZ", "PA", "SC", "MD", "LT", "BY"]
COUNTRY_CODES = [c for c, _, _ in COUNTRIES] + REMOTE_COUNTRIES
N_HOME = len(COUNTRIES)

# Local-hour activity profile (quiet nights, evening peak).
DIURNAL = np.array(
    [
        3.5,
        2.0,
        1.2,
        0.8,
        0.7,
        1.0,
        2.0,
        3.5,
        4.5,
        4.5,
        4.5,
        4.8,
        5.2,
        5.0,
        4.7,
        4.6,
        4.8,
        5.5,
        6.2,
        6.8,
        7.0,
        6.8,
        6.0,
        4.8,
    ]
)
DIURNAL = DIURNAL / DIURNAL.sum()

# Views: post age (hours) ~ Lomax(scale, shape), truncated at a week.
VIEW_SCALE_H = 1.5
VIEW_SHAPE = 1.3
VIEW_HORIZON_H = 7 * 24.0
REACH_BASE = 0.85  # expected views = REACH_BASE * (followers + 1) ** 0.55 * virality
VIEW_SLICE = 300_000  # views generated (and their reactions) per vectorised slice

# Labeling queue: inclusion probabilities (sampling_weight = 1 / p) and moderator accuracy.
P_REPORTED = 0.9
P_RANDOM = 0.004  # audit: a uniform sample of posts nobody reported
P_REACH = 0.025  # audit: posts with at least REACH_VIEWS views in their first 24 h
REACH_VIEWS = 100
P_REPEAT = 0.025  # audit: posts by authors with an earlier post labeled harmful (abusers repeat)
MODERATOR_ACCURACY = 0.99

LATE_RATE = 0.005
DUPLICATE_RATE = 0.002
CORRUPTION_KINDS = (
    "not_json",
    "missing_field",
    "unknown_action",
    "bad_timestamp",
    "far_future_timestamp",
    "negative_id",
    "mistyped_field",
    "oversized_text",
    "invalid_utf8",
)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# --------------------------------------------------------------------------------------------
# the world
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    n: int  # total accounts, campaign bots included (index i is user_id i + 1)
    kind: np.ndarray
    campaign: np.ndarray
    p_active: np.ndarray
    extra_sessions: np.ndarray
    session_mu: np.ndarray
    post_rate: np.ndarray
    country: np.ndarray
    tz_min: np.ndarray
    created: np.ndarray
    followers: np.ndarray
    follow_cdf: np.ndarray
    adversarial: np.ndarray
    targeted: np.ndarray
    victims: np.ndarray  # (n, 4) user indices, meaningful for abusive users
    compromised_at: np.ndarray  # ms or -1
    attack_end: np.ndarray
    attacker_country: np.ndarray
    handle_adj: np.ndarray
    handle_noun: np.ndarray
    handle_num: np.ndarray

    def handle(self, i: int) -> str:
        return sim_text.handle(
            int(self.handle_adj[i]), int(self.handle_noun[i]), int(self.handle_num[i])
        )


def _make_world(users: int, days: int, start_ms: int, seed: int, drift_day: int | None) -> World:
    rng = np.random.default_rng([seed, 0])
    n_campaign = max(5, round(users * 0.0015)) if drift_day else 0
    n = users + n_campaign
    kind = rng.choice(4, size=users, p=KIND_SHARES).astype(np.int8)
    kind = np.concatenate([kind, np.full(n_campaign, BOT, np.int8)])
    campaign = np.zeros(n, bool)
    campaign[users:] = True

    p_active = np.clip(np.exp(rng.normal(-1.7, 1.2, n)), 0.02, 0.97)
    p_active[kind == ABU] = np.clip(p_active[kind == ABU] * 2.0, 0.1, 0.97)
    p_active[kind == BOT] = 0.85
    extra_sessions = np.exp(rng.normal(-0.8, 1.3, n))
    session_mu = rng.normal(0.7, 0.9, n)  # log-minutes
    lurker = rng.random(n) < 0.4
    post_rate = np.where(lurker, 0.01, np.exp(rng.normal(-0.4, 0.9, n)))
    post_rate[kind == ABU] = np.exp(rng.normal(0.0, 0.4, int((kind == ABU).sum())))

    shares = np.array([s for _, s, _ in COUNTRIES])
    country = rng.choice(N_HOME, size=n, p=shares / shares.sum()).astype(np.int16)
    tz_min = np.array([o for _, _, o in COUNTRIES])[country] * 60

    age_days = np.clip(np.exp(rng.normal(6.0, 1.0, n)), 10, 4000)
    created = start_ms - (age_days * DAY).astype(np.int64)
    new_signup = rng.random(n) < 0.02
    created[new_signup] = start_ms + rng.integers(0, days * DAY, int(new_signup.sum()))
    bots = (kind == BOT) & ~campaign
    created[bots] = start_ms - rng.integers(DAY, 60 * DAY, int(bots.sum()))
    if n_campaign:
        created[users:] = start_ms + (drift_day - 1) * DAY + rng.integers(0, 2 * HOUR, n_campaign)

    followers = np.exp(rng.normal(2.5, 1.5, n))
    followers[kind == BOT] = np.exp(rng.normal(2.0, 0.8, int((kind == BOT).sum())))
    w = followers / followers.sum()
    follow_cdf = np.cumsum(w)

    adversarial = (kind == ORD) & (rng.random(n) < 0.004)
    targeted = np.zeros(n, bool)
    n_targeted = max(1, round(users * 0.003))
    targeted[rng.choice(users, size=n_targeted, replace=False, p=w[:users] / w[:users].sum())] = (
        True
    )
    targeted &= kind == ORD

    vw = np.sqrt(followers[:users])
    victims = np.zeros((n, 4), np.int64)
    abusers = np.flatnonzero(kind == ABU)
    victims[abusers] = rng.choice(users, size=(len(abusers), 4), p=vw / vw.sum())

    compromised_at = np.full(n, -1, np.int64)
    attack_end = np.full(n, -1, np.int64)
    attacker_country = np.full(n, -1, np.int16)
    cmp = np.flatnonzero(kind == CMP)
    lo, hi = (2 * DAY, (days - 1) * DAY) if days >= 4 else (DAY // 4, days * DAY - DAY // 4)
    compromised_at[cmp] = start_ms + rng.integers(lo, max(hi, lo + 1), len(cmp))
    attack_end[cmp] = compromised_at[cmp] + rng.integers(DAY // 2, 5 * DAY // 2, len(cmp))
    attacker_country[cmp] = N_HOME + rng.integers(0, len(REMOTE_COUNTRIES), len(cmp))

    return World(
        n=n,
        kind=kind,
        campaign=campaign,
        p_active=p_active,
        extra_sessions=extra_sessions,
        session_mu=session_mu,
        post_rate=post_rate,
        country=country,
        tz_min=tz_min,
        created=created,
        followers=followers,
        follow_cdf=follow_cdf,
        adversarial=adversarial,
        targeted=targeted,
        victims=victims,
        compromised_at=compromised_at,
        attack_end=attack_end,
        attacker_country=attacker_country,
        handle_adj=rng.integers(0, len(sim_text.HANDLE_ADJ), n),
        handle_noun=rng.integers(0, len(sim_text.HANDLE_NOUN), n),
        handle_num=rng.integers(1, 10_000, n),
    )


# --------------------------------------------------------------------------------------------
# event batches
# --------------------------------------------------------------------------------------------

_COLS = ("ts", "user", "action", "post", "target", "text", "country")


# Column dtypes: user ids fit in int32 (up to 2.1 billion accounts); post ids and times are int64.
_DTYPES = {
    "ts": np.int64,
    "user": np.int32,
    "action": np.int8,
    "post": np.int64,
    "target": np.int32,
    "text": np.int32,
    "country": np.int16,
}


class _Batch:
    """Columnar events under construction; ``user``/``target`` are user ids, 0 = null."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in _COLS}
        self.texts: list[str] = []

    def add(self, ts, user, action, post=None, target=None, texts=None, country=None) -> None:
        k = len(ts)
        if k == 0:
            return
        t = _DTYPES
        self.parts["ts"].append(np.asarray(ts, t["ts"]))
        self.parts["user"].append(np.asarray(user, t["user"]))
        self.parts["action"].append(np.full(k, action, t["action"]))
        self.parts["post"].append(
            np.zeros(k, t["post"]) if post is None else np.asarray(post, t["post"])
        )
        self.parts["target"].append(
            np.zeros(k, t["target"]) if target is None else np.asarray(target, t["target"])
        )
        if texts is None:
            self.parts["text"].append(np.full(k, -1, t["text"]))
        else:
            self.parts["text"].append(
                np.arange(len(self.texts), len(self.texts) + k, dtype=t["text"])
            )
            self.texts.extend(texts)
        self.parts["country"].append(
            np.full(k, -1, t["country"]) if country is None else np.asarray(country, t["country"])
        )

    def columns(self) -> dict[str, np.ndarray]:
        """All events as one array per column; the parts are released."""
        out = {}
        for c in _COLS:
            parts = self.parts[c]
            out[c] = np.concatenate(parts) if parts else np.zeros(0, _DTYPES[c])
            self.parts[c] = []
        return out


def _take(cols: dict[str, np.ndarray], texts: list[str], idx: np.ndarray):
    """Rows ``idx`` of a batch with their texts re-indexed compactly."""
    sub = {c: cols[c][idx] for c in _COLS}
    refs = sub["text"]
    has = refs >= 0
    new_texts = [texts[i] for i in refs[has].tolist()]
    refs = refs.copy()
    refs[has] = np.arange(int(has.sum()))
    sub["text"] = refs
    return sub, new_texts


# --------------------------------------------------------------------------------------------
# live posts (the last week's posts: views, reactions, the 24-hour report window)
# --------------------------------------------------------------------------------------------

_LIVE = (
    "pid",
    "author",
    "created",
    "reach",
    "harm",
    "spam",
    "quality",
    "contr",
    "rnoise",
    "mention",
    "reports24",
    "views24",
    "first_report",
    "final",
    "types",
)


class _Live:
    def __init__(self) -> None:
        self.a = {
            "pid": np.zeros(0, np.int64),
            "author": np.zeros(0, np.int64),
            "created": np.zeros(0, np.int64),
            "reach": np.zeros(0),
            "harm": np.zeros(0, bool),
            "spam": np.zeros(0, bool),
            "quality": np.zeros(0),
            "contr": np.zeros(0),
            "rnoise": np.zeros(0),
            "mention": np.zeros(0, bool),
            "reports24": np.zeros(0, np.int32),
            "views24": np.zeros(0, np.int32),
            "first_report": np.zeros(0, np.int64),
            "final": np.zeros(0, bool),
            "types": np.zeros(0, np.uint8),
        }

    def __len__(self) -> int:
        return len(self.a["pid"])

    def append(self, new: dict[str, np.ndarray]) -> None:
        for k in _LIVE:
            self.a[k] = np.concatenate([self.a[k], new[k].astype(self.a[k].dtype)])

    def cut(self, n: int) -> None:
        for k in _LIVE:
            self.a[k] = self.a[k][n:]

    def index(self, pids: np.ndarray) -> np.ndarray:
        return pids - (self.a["pid"][0] if len(self) else 0)


def _lomax_cdf(age_h: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 + np.maximum(age_h, 0.0) / VIEW_SCALE_H) ** (-VIEW_SHAPE)


# --------------------------------------------------------------------------------------------
# one simulated day
# --------------------------------------------------------------------------------------------


class _Sim:
    def __init__(
        self,
        out: Path,
        users: int,
        days: int,
        start: date,
        seed: int,
        drift_day: int | None,
        corrupt_rate: float,
    ):
        self.out = out
        self.days = days
        self.seed = seed
        self.drift_day = drift_day
        self.corrupt_rate = corrupt_rate
        self.start_ms = _ms(datetime(start.year, start.month, start.day, tzinfo=UTC))
        self.end_ms = self.start_ms + days * DAY
        self.start = start
        self.w = _make_world(users, days, self.start_ms, seed, drift_day)
        self.users = users
        self.live = _Live()
        self.next_pid = 1
        self.next_eid = 1
        self.next_bad = 1
        self.carry: tuple[dict[str, np.ndarray], list[str]] | None = None
        self.pending: dict[int, list[str]] = {}
        self.labels: list[dict] = []
        self.flagged_authors: dict[int, int] = {}  # author -> first harmful verdict (ms)
        self.counts = {a: 0 for a in ACTIONS}
        self.stats = {
            "posts": 0,
            "harmful_posts": 0,
            "obfuscated_posts": 0,
            "toxic_looking_benign": 0,
            "lines": 0,
            "late_deliveries": 0,
            "duplicate_lines": 0,
            "corrupt_lines": 0,
        }
        self.corruptions = {k: 0 for k in CORRUPTION_KINDS}
        self.harm_type_counts = {t: 0 for t in HARM_TYPES}
        self.multi_label_posts = 0
        self.campaign_posts = 0
        self.hm = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
        self.sm = [f"{s:02d}.{ms:03d}Z" for s in range(60) for ms in range(1000)]
        self.country_json = [f'"{c}"' for c in COUNTRY_CODES] + ["null"]
        self.truth_posts = None

    # -- sessions -------------------------------------------------------------------------
    def _sessions(self, rng, day_start: int):
        w = self.w
        day_end = day_start + DAY
        alive = w.created < day_end
        act = np.flatnonzero(alive & (rng.random(w.n) < w.p_active))
        bot = w.kind[act] == BOT
        ns = np.where(bot, 2 + rng.poisson(6, len(act)), 1 + rng.poisson(w.extra_sessions[act]))
        su = np.repeat(act, ns)
        s = len(su)
        sbot = w.kind[su] == BOT
        local = rng.choice(24, size=s, p=DIURNAL) * 60 + rng.integers(0, 60, s)
        start = np.where(sbot, rng.integers(0, 1440, s), (local - w.tz_min[su]) % 1440)
        dur = np.where(
            sbot,
            rng.integers(1, 4, s),
            np.clip(np.ceil(np.exp(w.session_mu[su] + 0.9 * rng.standard_normal(s))), 1, 240),
        )
        created_min = (w.created[su] - day_start) // MINUTE
        start = np.maximum(start, created_min + 1)
        dur = np.minimum(start + dur, 1440) - start
        kind = np.where(sbot, 1, 0).astype(np.int8)
        country = w.country[su].astype(np.int16)
        # account takeovers: short attacker sessions from a remote country during the attack window
        cmp = np.flatnonzero(
            (w.compromised_at >= 0) & (w.compromised_at < day_end) & (w.attack_end > day_start)
        )
        if len(cmp):
            na = 1 + rng.poisson(1.0, len(cmp))
            au = np.repeat(cmp, na)
            lo = (np.maximum(w.compromised_at[au], day_start) - day_start) // MINUTE
            hi = (np.minimum(w.attack_end[au], day_end) - day_start) // MINUTE
            astart = lo + (rng.random(len(au)) * np.maximum(hi - lo, 1)).astype(np.int64)
            adur = rng.integers(1, 6, len(au))
            su = np.concatenate([su, au])
            start = np.concatenate([start, astart])
            dur = np.concatenate([dur, np.minimum(astart + adur, 1440) - astart])
            kind = np.concatenate([kind, np.full(len(au), 2, np.int8)])
            country = np.concatenate([country, w.attacker_country[au]])
        ok = dur > 0
        return su[ok], start[ok].astype(np.int64), dur[ok].astype(np.int64), kind[ok], country[ok]

    # -- one day --------------------------------------------------------------------------
    def day(self, d: int) -> dict:
        w = self.w
        rng = np.random.default_rng([self.seed, 1, d])
        trng = random.Random(self.seed * 1_000_003 + d * 7919 + 11)
        day_start = self.start_ms + d * DAY
        day_end = day_start + DAY
        drifted = self.drift_day is not None and d + 1 >= self.drift_day
        tg = sim_text.TextGen(trng, drifted=False)
        tg_drift = sim_text.TextGen(trng, drifted=drifted)
        b = _Batch()

        su, sstart, sdur, skind, scountry = self._sessions(rng, day_start)
        s_ms = day_start + sstart * MINUTE
        n_s = len(su)

        # logins
        p_login = np.select([skind == 2, skind == 1], [1.0, 0.5], 0.45)
        li = np.flatnonzero(rng.random(n_s) < p_login)
        lc = scountry[li].copy()
        travel = (skind[li] == 0) & (rng.random(len(li)) < 0.01)
        lc[travel] = rng.integers(0, N_HOME, int(travel.sum()))
        vpn = (skind[li] == 1) & (rng.random(len(li)) < 0.6)
        lc[vpn] = N_HOME + rng.integers(0, len(REMOTE_COUNTRIES), int(vpn.sum()))
        b.add(s_ms[li] + rng.integers(0, 3000, len(li)), su[li] + 1, ACT["login"], country=lc)

        # posts
        n_posts = np.where(
            skind == 0,
            rng.poisson(w.post_rate[su]),
            np.where(
                skind == 1,
                (rng.random(n_s) < np.where(w.campaign[su], 0.5, 0.06))
                * (1 + rng.poisson(np.where(w.campaign[su], 1.5, 0.3))),
                (rng.random(n_s) < 0.35) * (1 + rng.poisson(0.3, n_s)),
            ),
        )
        pi = np.repeat(np.arange(n_s), n_posts)
        burst = skind[pi] > 0  # bots and attackers post in bursts within a minute or two
        offs = np.where(
            burst,
            rng.integers(0, 90_000, len(pi)),
            (rng.random(len(pi)) * sdur[pi] * MINUTE).astype(np.int64),
        )
        p_ts = np.minimum(s_ms[pi] + offs, day_end - 1)
        order = np.argsort(p_ts, kind="stable")
        pi, p_ts = pi[order], p_ts[order]
        p_author = su[pi]
        p_sk = skind[pi]
        n_p = len(pi)
        pids = np.arange(self.next_pid, self.next_pid + n_p, dtype=np.int64)
        self.next_pid += n_p
        post_texts, harm, types, obf, mention_of, campaign = self._post_texts(
            rng, trng, tg, tg_drift, p_author, p_sk, p_ts, drifted
        )
        b.add(p_ts, p_author + 1, ACT["post"], post=pids, texts=post_texts)
        self._write_truth_posts(pids, p_author, p_ts, harm, types, obf, campaign)

        virality = np.minimum((1.0 - rng.random(n_p)) ** (-1.0 / 1.4), 3000.0)
        contr = np.where(rng.random(n_p) < 0.04, rng.uniform(0.3, 1.0, n_p), 0.0)
        self.live.append(
            {
                "pid": pids,
                "author": p_author,
                "created": p_ts,
                "reach": REACH_BASE * (w.followers[p_author] + 1.0) ** 0.55 * virality,
                "harm": harm,
                "spam": harm & ((types & ~np.uint8(HT_BIT["spam"])) == 0),
                "quality": np.exp(rng.normal(0.0, 0.6, n_p)),
                "contr": np.where(harm, 0.0, contr),
                "rnoise": np.exp(rng.normal(0.0, 0.7, n_p)),
                "mention": mention_of >= 0,
                "reports24": np.zeros(n_p, np.int32),
                "views24": np.zeros(n_p, np.int32),
                "first_report": np.full(n_p, np.iinfo(np.int64).max),
                "final": np.zeros(n_p, bool),
                "types": types,
            }
        )

        self._mention_notifications(rng, trng, b, pids, p_ts, p_author, harm, mention_of, tg)
        self._views_and_reactions(rng, trng, b, tg, day_start, su, sstart, sdur, skind)
        self._follows(rng, b, su, s_ms, sdur, skind)

        events = self._emit_day(rng, b, d, day_start)
        self._finalize_labels(np.random.default_rng([self.seed, 3, d]), day_end)
        cut = int(np.searchsorted(self.live.a["created"], day_end - int(VIEW_HORIZON_H * HOUR)))
        self.live.cut(cut)
        return {"events": events, "posts": n_p, "harmful": int(harm.sum()), "sessions": n_s}

    def _post_texts(self, rng, trng, tg, tg_drift, p_author, p_sk, p_ts, drifted):
        w = self.w
        n_p = len(p_author)
        pk = w.kind[p_author]
        u = rng.random(n_p)
        harm = np.select(
            [p_sk == 2, pk == BOT, pk == ABU], [u < 0.9, u < 0.8, u < 0.15], u < 0.0007
        )
        is_campaign = w.campaign[p_author] & harm
        texts: list[str] = []
        types = np.zeros(n_p, np.uint8)
        obf = np.zeros(n_p, bool)
        mention_of = np.full(n_p, -1, np.int64)
        r = trng
        created = w.created

        def other_user(a: int, ts: int) -> int:
            # someone else whose account already exists
            for _ in range(20):
                t = r.randrange(self.users)
                if t != a and created[t] < ts:
                    return t
            return -1

        for j, (a, k, h, sk, camp, ts) in enumerate(
            zip(
                p_author.tolist(),
                pk.tolist(),
                harm.tolist(),
                p_sk.tolist(),
                is_campaign.tolist(),
                p_ts.tolist(),
            )
        ):
            if h:
                if camp:
                    text, o = tg_drift.spam(campaign=True)
                    t = ["spam"]
                elif sk == 2 or k == BOT:
                    t = ["spam"]
                    if r.random() < 0.03:
                        t.append("hate")
                    gen = tg_drift if drifted else tg
                    text, o = gen.harmful(t, None)
                else:
                    x = r.random()
                    if k == ABU:
                        primary = (
                            "harassment" if x < 0.5 else "hate" if x < 0.8 else "violent_threat"
                        )
                    else:
                        primary = (
                            "harassment" if x < 0.6 else "hate" if x < 0.85 else "violent_threat"
                        )
                    t = [primary]
                    if primary == "harassment":
                        if r.random() < 0.3:
                            t.append("hate")
                        if r.random() < 0.15:
                            t.append("violent_threat")
                    elif primary == "hate" and r.random() < 0.2:
                        t.append("violent_threat")
                    elif primary == "violent_threat" and r.random() < 0.4:
                        t.append("harassment")
                    target = -1
                    if "harassment" in t or (primary == "violent_threat" and r.random() < 0.6):
                        target = int(w.victims[a, r.randrange(4)]) if k == ABU else -1
                        if target < 0 or target == a or created[target] >= ts:
                            target = other_user(a, ts)
                    gen = tg_drift if (drifted and k == ABU) else tg
                    text, o = gen.harmful(t, w.handle(target) if target >= 0 else None)
                    mention_of[j] = target
                for name in t:
                    types[j] |= HT_BIT[name]
                obf[j] = o
            else:
                if k == BOT or sk:
                    text, o = tg.benign()
                elif r.random() < 0.15:
                    target = other_user(a, ts)
                    mention_of[j] = target
                    text, o = tg.benign(w.handle(target) if target >= 0 else None)
                else:
                    text, o = tg.benign()
                if o:
                    self.stats["toxic_looking_benign"] += 1
            texts.append(text)
        return texts, harm, types, obf, mention_of, is_campaign

    def _write_truth_posts(self, pids, authors, ts, harm, types, obf, campaign) -> None:
        lines = []
        for pid, a, t, h, ty, o, c in zip(
            pids.tolist(),
            authors.tolist(),
            ts.tolist(),
            harm.tolist(),
            types.tolist(),
            obf.tolist(),
            campaign.tolist(),
        ):
            names = [n for n in HARM_TYPES if ty & HT_BIT[n]]
            lines.append(
                json.dumps(
                    {
                        "post_id": pid,
                        "author_id": a + 1,
                        "created_at": _iso(t),
                        "is_harmful": h,
                        "harm_types": names,
                        "obfuscated": o,
                        "campaign": "drift_spam" if c else None,
                    }
                )
            )
            if h:
                for n in names:
                    self.harm_type_counts[n] += 1
                self.multi_label_posts += len(names) > 1
                self.campaign_posts += bool(c)
        if lines:
            self.truth_posts.write("\n".join(lines) + "\n")
        self.stats["posts"] += len(pids)
        self.stats["harmful_posts"] += int(harm.sum())
        self.stats["obfuscated_posts"] += int(obf.sum())

    def _count_reports(self, pids: np.ndarray, ts: np.ndarray) -> None:
        if not len(pids):
            return
        a = self.live.a
        idx = self.live.index(pids)
        inwin = ts < a["created"][idx] + DAY
        np.add.at(a["reports24"], idx[inwin], 1)
        np.minimum.at(a["first_report"], idx[inwin], ts[inwin])

    def _mention_notifications(
        self, rng, trng, b, pids, p_ts, p_author, harm, mention_of, tg
    ) -> None:
        w = self.w
        m = np.flatnonzero(mention_of >= 0)
        if not len(m):
            return
        tgt = mention_of[m]
        h = harm[m]
        seen = rng.random(len(m)) < np.where(h, 0.85, 0.7)
        m, tgt, h = m[seen], tgt[seen], h[seen]
        vts = p_ts[m] + 30_000 + rng.exponential(20 * MINUTE, len(m)).astype(np.int64)
        post, author = pids[m], p_author[m] + 1
        b.add(vts, tgt + 1, ACT["view"], post=post, target=author)
        sympathetic = w.kind[tgt] == ABU
        u = rng.random(len(m))
        hostile = h & ~sympathetic
        rep = hostile & (u < 0.45)
        rts = vts + 5_000 + rng.exponential(30_000, len(m)).astype(np.int64)
        b.add(rts[rep], tgt[rep] + 1, ACT["report"], post=post[rep], target=author[rep])
        self._count_reports(post[rep], rts[rep])
        u2 = rng.random(len(m))
        blk = hostile & (u2 < 0.35)
        mut = hostile & (u2 >= 0.35) & (u2 < 0.45)
        bts = rts + 3_000 + rng.exponential(10_000, len(m)).astype(np.int64)
        b.add(bts[blk], tgt[blk] + 1, ACT["block"], post=post[blk], target=author[blk])
        b.add(bts[mut], tgt[mut] + 1, ACT["mute"], post=post[mut], target=author[mut])
        like = ~h & (u < 0.45)
        b.add(
            vts[like] + 2_000 + rng.exponential(4_000, int(like.sum())).astype(np.int64),
            tgt[like] + 1,
            ACT["like"],
            post=post[like],
            target=author[like],
        )
        u3 = rng.random(len(m))
        rep_reply = np.flatnonzero(np.where(hostile, u3 < 0.2, ~h & (u3 < 0.25)))
        texts = [tg.reply("victim" if hostile[i] else "positive") for i in rep_reply.tolist()]
        b.add(
            vts[rep_reply] + 10_000 + rng.exponential(60_000, len(rep_reply)).astype(np.int64),
            tgt[rep_reply] + 1,
            ACT["reply"],
            post=post[rep_reply],
            target=author[rep_reply],
            texts=texts,
        )

    def _views_and_reactions(self, rng, trng, b, tg, day_start, su, sstart, sdur, skind) -> None:
        a = self.live.a
        day_end = day_start + DAY
        n_live = len(self.live)
        if not n_live:
            return
        # expected views of every live post today, from the truncated Lomax age distribution
        a1 = (np.maximum(a["created"], day_start) - a["created"]) / HOUR
        a2 = np.minimum((day_end - a["created"]) / HOUR, VIEW_HORIZON_H)
        f1, f2 = _lomax_cdf(a1), _lomax_cdf(a2)
        lam = a["reach"] * np.maximum(f2 - f1, 0.0) / _lomax_cdf(np.array(VIEW_HORIZON_H))
        nv = rng.poisson(lam)
        # hand each view to a user whose (human) session covers that minute
        human = skind == 0
        hu, hs, hd = su[human], sstart[human], sdur[human]
        total = int(hd.sum())
        if total == 0:
            return
        mins = np.repeat(hs, hd) + (np.arange(total) - np.repeat(np.cumsum(hd) - hd, hd))
        pool = np.repeat(hu, hd)[np.argsort(mins, kind="stable")]
        cnt = np.bincount(mins, minlength=1440)
        ptr = np.concatenate([[0], np.cumsum(cnt)])
        # in slices of VIEW_SLICE views, so memory stays bounded at any scale
        bounds = np.searchsorted(
            np.cumsum(nv), np.arange(1, 1 + int(nv.sum()) // VIEW_SLICE) * VIEW_SLICE
        )
        edges = [0, *sorted(set(bounds.tolist())), n_live]
        for lo, hi in itertools.pairwise(edges):
            if hi > lo:
                self._view_slice(rng, b, tg, day_start, lo, hi, nv, f1, f2, pool, cnt, ptr)
        # spam bots reply with links under popular live posts
        bots = np.flatnonzero(skind == 1)
        sb = bots[rng.random(len(bots)) < 0.3]
        if len(sb):
            rcdf = np.cumsum(a["reach"])
            target_i = np.minimum(np.searchsorted(rcdf, rng.random(len(sb)) * rcdf[-1]), n_live - 1)
            ok = a["created"][target_i] < day_start + sstart[sb] * MINUTE
            sb, target_i = sb[ok], target_i[ok]
            texts = [tg.reply("spam") for _ in range(len(sb))]
            b.add(
                day_start + sstart[sb] * MINUTE + rng.integers(0, 60_000, len(sb)),
                su[sb] + 1,
                ACT["reply"],
                post=a["pid"][target_i],
                target=a["author"][target_i] + 1,
                texts=texts,
            )

    def _view_slice(self, rng, b, tg, day_start, lo, hi, nv, f1, f2, pool, cnt, ptr) -> None:
        """Views of live posts ``lo:hi`` today, and the reactions they trigger."""
        w = self.w
        a = self.live.a
        day_end = day_start + DAY
        vi = np.repeat(np.arange(lo, hi), nv[lo:hi])
        u = f1[vi] + rng.random(len(vi)) * (f2 - f1)[vi]
        age_h = VIEW_SCALE_H * ((1.0 - u) ** (-1.0 / VIEW_SHAPE) - 1.0)
        vts = np.clip(
            a["created"][vi] + (age_h * HOUR).astype(np.int64) + 1000, day_start, day_end - 1
        )
        vmin = (vts - day_start) // MINUTE
        c = cnt[vmin]
        pick = ptr[vmin] + (rng.random(len(vi)) * c).astype(np.int64)
        viewer = pool[np.minimum(pick, len(pool) - 1)]
        keep = (c > 0) & (viewer != a["author"][vi])
        vi, vts, viewer = vi[keep], vts[keep], viewer[keep]
        nvw = len(vi)
        author = a["author"][vi]
        post = a["pid"][vi]
        b.add(vts, viewer + 1, ACT["view"], post=post, target=author + 1)
        np.add.at(a["views24"], vi[vts < a["created"][vi] + DAY], 1)
        # refreshes: the same view again within seconds
        rep = rng.random(nvw) < 0.03
        b.add(
            vts[rep] + rng.integers(1000, 20_000, int(rep.sum())),
            viewer[rep] + 1,
            ACT["view"],
            post=post[rep],
            target=author[rep] + 1,
        )

        h = a["harm"][vi]
        spam = a["spam"][vi]
        q = a["quality"][vi]
        cz = a["contr"][vi]
        rn = a["rnoise"][vi]
        age = (vts - a["created"][vi]) / HOUR
        early = 0.2 + 0.8 * (1.0 - np.exp(-age / 3.0))  # harmful posts' first audience is friendly
        symp = w.kind[viewer] == ABU
        adv = w.adversarial[viewer] & w.targeted[author]
        hostile = h & ~symp

        p_like = np.where(h, np.where(symp, 0.25, np.where(spam, 0.004, 0.015)), 0.06 * q)
        p_dislike = np.where(h, np.where(symp, 0.0, 0.10 * early), 0.004 + 0.06 * cz)
        p_dislike = np.where(adv, 0.3, p_dislike)
        p_share = np.where(h, np.where(symp, 0.05, 0.002), 0.008 * q)
        p_report = np.where(
            h,
            np.where(symp, 0.0, np.where(spam, 0.15, 0.30) * early * rn),
            (0.00005 + 0.002 * cz) * rn,
        )
        p_report = np.where(adv, 0.25, p_report)
        p_block = np.where(h, np.where(symp, 0.0, 0.015 * early), 0.0002 + 0.003 * cz)
        p_mute = np.where(h, np.where(symp, 0.0, 0.01 * early), 0.0006 + 0.002 * cz)
        p_reply = np.where(h, 0.025, 0.012 + 0.02 * cz)
        p_follow = np.where(h, np.where(symp, 0.02, 0.0005), 0.003 * q)
        p_unfollow = np.where(hostile, 0.004 * early, 0.0003)

        def delay(mean_ms: float, lo: int, k: int) -> np.ndarray:
            return lo + rng.exponential(mean_ms, k).astype(np.int64)

        tgt = author + 1
        u = rng.random(nvw)
        like = u < p_like
        dislike = (u >= p_like) & (u < p_like + p_dislike)
        b.add(
            vts[like] + delay(4000, 500, int(like.sum())),
            viewer[like] + 1,
            ACT["like"],
            post=post[like],
            target=tgt[like],
        )
        b.add(
            vts[dislike] + delay(4000, 500, int(dislike.sum())),
            viewer[dislike] + 1,
            ACT["dislike"],
            post=post[dislike],
            target=tgt[dislike],
        )
        sh = rng.random(nvw) < p_share
        b.add(
            vts[sh] + delay(10_000, 1000, int(sh.sum())),
            viewer[sh] + 1,
            ACT["share"],
            post=post[sh],
            target=tgt[sh],
        )
        rp = rng.random(nvw) < p_report
        rts = vts[rp] + delay(30_000, 3000, int(rp.sum()))
        b.add(rts, viewer[rp] + 1, ACT["report"], post=post[rp], target=tgt[rp])
        self._count_reports(post[rp], rts)
        u = rng.random(nvw)
        blk = u < p_block
        mut = (u >= p_block) & (u < p_block + p_mute)
        b.add(
            vts[blk] + delay(20_000, 5000, int(blk.sum())),
            viewer[blk] + 1,
            ACT["block"],
            post=post[blk],
            target=tgt[blk],
        )
        b.add(
            vts[mut] + delay(20_000, 5000, int(mut.sum())),
            viewer[mut] + 1,
            ACT["mute"],
            post=post[mut],
            target=tgt[mut],
        )
        fo = rng.random(nvw) < p_follow
        b.add(
            vts[fo] + delay(8000, 1000, int(fo.sum())),
            viewer[fo] + 1,
            ACT["follow"],
            target=tgt[fo],
        )
        uf = rng.random(nvw) < p_unfollow
        b.add(
            vts[uf] + delay(15_000, 2000, int(uf.sum())),
            viewer[uf] + 1,
            ACT["unfollow"],
            target=tgt[uf],
        )
        # replies: disgust at harmful posts (more once the wider audience arrives), chatter otherwise
        ry = np.flatnonzero(rng.random(nvw) < p_reply)
        ur = rng.random(len(ry))
        neg = np.where(hostile[ry], ur < 0.7 * early[ry], ~h[ry] & (ur < 0.6 * cz[ry]))
        pos = ~neg & (symp[ry] | (ur > 0.8))
        kinds = np.where(neg, "negative", np.where(pos, "positive", "neutral"))
        kinds = np.where(~neg & ~h[ry] & (rng.random(len(ry)) < 0.7), "positive", kinds)
        texts = [tg.reply(k) for k in kinds.tolist()]
        b.add(
            vts[ry] + delay(40_000, 5000, len(ry)),
            viewer[ry] + 1,
            ACT["reply"],
            post=post[ry],
            target=tgt[ry],
            texts=texts,
        )

    def _follows(self, rng, b, su, s_ms, sdur, skind) -> None:
        w = self.w
        n_s = len(su)
        # ordinary follows go to popular accounts; bots and hijacked accounts follow in bursts
        k = np.where(
            skind == 0,
            (rng.random(n_s) < 0.06) * (1 + rng.poisson(0.5, n_s)),
            np.where(
                rng.random(n_s) < np.where(skind == 1, 0.5, 0.7),
                rng.integers(5, 41, n_s) * np.where(skind == 2, 1.5, 1.0),
                0,
            ),
        ).astype(np.int64)
        fi = np.repeat(np.arange(n_s), k)
        popular = skind[fi] == 0
        tgt = np.where(
            popular,
            np.minimum(
                np.searchsorted(w.follow_cdf, rng.random(len(fi)) * w.follow_cdf[-1]), w.n - 1
            ),
            rng.integers(0, self.users, len(fi)),
        )
        offs = np.where(
            popular,
            (rng.random(len(fi)) * sdur[fi] * MINUTE).astype(np.int64),
            rng.integers(0, 120_000, len(fi)),
        )
        ok = tgt != su[fi]
        b.add(s_ms[fi][ok] + offs[ok], su[fi][ok] + 1, ACT["follow"], target=tgt[ok] + 1)
        uf = np.flatnonzero((skind == 0) & (rng.random(n_s) < 0.01))
        tgt = np.minimum(
            np.searchsorted(w.follow_cdf, rng.random(len(uf)) * w.follow_cdf[-1]), w.n - 1
        )
        ok = tgt != su[uf]
        b.add(
            s_ms[uf][ok] + (rng.random(int(ok.sum())) * sdur[uf][ok] * MINUTE).astype(np.int64),
            su[uf][ok] + 1,
            ACT["unfollow"],
            target=tgt[ok] + 1,
        )

    # -- writing ----------------------------------------------------------------------------
    def _emit_day(self, rng, b: _Batch, d: int, day_start: int) -> int:
        day_end = day_start + DAY
        cols, texts = b.columns(), b.texts
        if self.carry is not None:
            ccols, ctexts = self.carry
            off = len(ctexts)
            cols = {c: np.concatenate([ccols[c], cols[c]]) for c in _COLS}
            n_c = len(ccols["ts"])
            refs = cols["text"]
            tail = refs[n_c:]
            refs[n_c:] = np.where(tail >= 0, tail + off, -1)
            texts = ctexts + texts
        later = cols["ts"] >= day_end
        self.carry = _take(cols, texts, np.flatnonzero(later & (cols["ts"] < self.end_ms)))
        now = np.flatnonzero(~later)
        now = now[np.argsort(cols["ts"][now], kind="stable")]
        ev = {c: cols[c][now] for c in _COLS}
        del cols, now, later
        n = len(ev["ts"])
        eids = np.arange(self.next_eid, self.next_eid + n, dtype=np.int64)
        self.next_eid += n
        for code, cnt in enumerate(np.bincount(ev["action"], minlength=len(ACTIONS)).tolist()):
            self.counts[ACTIONS[code]] += cnt

        text_json = [json.dumps(t, ensure_ascii=False) for t in texts] + ["null"]
        day_dir = self.out / "events" / f"dt={(self.start + timedelta(days=d)).isoformat()}"
        day_dir.mkdir(parents=True, exist_ok=True)
        prefix = (self.start + timedelta(days=d)).isoformat() + "T"
        wrng = np.random.default_rng([self.seed, 2, d])
        bounds = np.searchsorted(ev["ts"], day_start + HOUR * np.arange(25))
        last_slot = self.days * 24 - 1
        first_eid = int(eids[0]) if n else 0

        def fmt(rows: np.ndarray) -> list[str]:
            return self._format(first_eid, rows, ev, day_start, text_json, prefix)

        for hr in range(24):
            lo, hi = int(bounds[hr]), int(bounds[hr + 1])
            k = hi - lo
            slot = d * 24 + hr
            hour_start = day_start + hr * HOUR
            # late deliveries: move to a later hour's file (some into the next day's)
            late = np.flatnonzero(wrng.random(k) < LATE_RATE)
            delay = wrng.geometric(0.4, len(late)) + np.where(wrng.random(len(late)) < 0.15, 24, 0)
            dest = np.minimum(slot + delay, last_slot)
            moved = dest > slot
            for line, s in zip(fmt(lo + late[moved]), dest[moved].tolist()):
                self.pending.setdefault(s, []).append(line)
            self.stats["late_deliveries"] += int(moved.sum())
            keep = np.ones(k, bool)
            keep[late[moved]] = False
            # duplicates: the same line again, in this file or one of the next two
            dup = np.flatnonzero(wrng.random(k) < DUPLICATE_RATE)
            ddest = np.minimum(slot + wrng.integers(0, 3, len(dup)), last_slot)
            extra_keys, extra_lines = [], []
            for line, i, s in zip(fmt(lo + dup), dup.tolist(), ddest.tolist()):
                if s == slot:
                    extra_keys.append(int(ev["ts"][lo + i]) + int(wrng.integers(1, HOUR)))
                    extra_lines.append(line)
                else:
                    self.pending.setdefault(s, []).append(line)
            self.stats["duplicate_lines"] += len(dup)
            on_rows = lo + np.flatnonzero(keep)
            plines = self.pending.pop(slot, [])
            extra_lines.extend(plines)
            extra_keys.extend((hour_start + wrng.integers(0, HOUR, len(plines))).tolist())
            n_bad = (
                int(wrng.binomial(len(on_rows) + len(extra_lines), self.corrupt_rate))
                if self.corrupt_rate > 0
                else 0
            )
            for _ in range(n_bad):
                base = fmt(np.array([lo + int(wrng.integers(0, k))]))[0] if k else None
                extra_lines.append(self._garbage(wrng, base, hour_start))
                extra_keys.append(hour_start + int(wrng.integers(0, HOUR)))
            self.stats["corrupt_lines"] += n_bad
            # merge by delivery time and write in blocks, so memory stays bounded at any scale
            keys = np.concatenate([ev["ts"][on_rows], np.asarray(extra_keys, np.int64)])
            order = np.argsort(keys, kind="stable")
            n_on = len(on_rows)
            self.stats["lines"] += len(order)
            with open(day_dir / f"hour={hr:02d}.jsonl", "wb") as f:
                for c0 in range(0, len(order), 50_000):
                    pos = order[c0 : c0 + 50_000]
                    on = pos < n_on
                    formatted = iter(fmt(on_rows[pos[on]]))
                    block = [
                        next(formatted) if is_on else extra_lines[p - n_on]
                        for p, is_on in zip(pos.tolist(), on.tolist())
                    ]
                    f.write(("\n".join(block) + "\n").encode("utf-8", "surrogateescape"))
        return n

    def _format(self, first_eid, rows, ev, day_start, text_json, prefix) -> list[str]:
        hm, sm, cj = self.hm, self.sm, self.country_json
        acts = ACTIONS
        r = ev["ts"][rows] - day_start
        return [
            f'{{"event_id":"ev{e:010d}","event_ts":"{prefix}{hm[m]}{sm[s]}","user_id":{u},'
            f'"action":"{acts[a]}","post_id":{p if p else "null"},'
            f'"target_user_id":{t if t else "null"},"text":{text_json[x]},"country":{cj[c]}}}'
            for e, m, s, u, a, p, t, x, c in zip(
                (rows + first_eid).tolist(),
                (r // MINUTE).tolist(),
                (r % MINUTE).tolist(),
                ev["user"][rows].tolist(),
                ev["action"][rows].tolist(),
                ev["post"][rows].tolist(),
                ev["target"][rows].tolist(),
                ev["text"][rows].tolist(),
                ev["country"][rows].tolist(),
            )
        ]

    def _garbage(self, wrng, base: str | None, hour_start: int) -> str:
        """One corrupt line of a random kind (fresh event_id so it never collides with a real one)."""
        kind = CORRUPTION_KINDS[int(wrng.integers(0, len(CORRUPTION_KINDS)))]
        self.corruptions[kind] += 1
        if base is not None:
            obj = json.loads(base)
        else:
            obj = {
                "event_id": "",
                "event_ts": _iso(hour_start),
                "user_id": 1,
                "action": "login",
                "post_id": None,
                "target_user_id": None,
                "text": None,
                "country": "US",
            }
        obj["event_id"] = f"bad{self.next_bad:08d}"
        self.next_bad += 1
        if kind == "not_json":
            s = json.dumps(obj)
            return s[: int(wrng.integers(5, max(6, len(s) - 5)))]
        if kind == "missing_field":
            del obj[["event_ts", "user_id", "action", "event_id"][int(wrng.integers(0, 4))]]
        elif kind == "unknown_action":
            obj["action"] = ["poke", "superlike", "LOGIN", "delete_account"][
                int(wrng.integers(0, 4))
            ]
        elif kind == "bad_timestamp":
            obj["event_ts"] = [
                "2026-13-45T25:61:00.000Z",
                "yesterday",
                "1696161600",
                "10/01/2026 13:45",
            ][int(wrng.integers(0, 4))]
        elif kind == "far_future_timestamp":
            obj["event_ts"] = _iso(hour_start + int(wrng.integers(3, 400)) * DAY)
        elif kind == "negative_id":
            field = ["user_id", "post_id", "target_user_id"][int(wrng.integers(0, 3))]
            obj[field] = -int(wrng.integers(1, 10_000))
        elif kind == "mistyped_field":
            obj["user_id"] = f"u{obj.get('user_id')}"
        elif kind == "oversized_text":
            obj.update(
                action="post",
                post_id=obj.get("post_id") or 1,
                target_user_id=None,
                country=None,
                text="buy now " * int(wrng.integers(700, 1200)),
            )
        elif kind == "invalid_utf8":
            s = json.dumps(obj, ensure_ascii=False)
            cut = len(s) // 2
            return s[:cut] + "\udcff\udcfe" + s[cut:]  # written as raw 0xFF 0xFE bytes
        return json.dumps(obj, ensure_ascii=False)

    # -- labels ---------------------------------------------------------------------------
    def _finalize_labels(self, rng, now: int, final: bool = False) -> None:
        a = self.live.a
        todo = ~a["final"] & ((a["created"] + DAY <= now) | final)
        idx = np.flatnonzero(todo)
        a["final"][idx] = True
        if not len(idx):
            return
        reported = a["reports24"][idx] > 0
        # audit strata: only what the platform knew when the post left the 24 h window
        flagged_at = np.array(
            [self.flagged_authors.get(int(x), np.iinfo(np.int64).max) for x in a["author"][idx]],
            dtype=np.int64,
        )
        p_audit = np.where(a["views24"][idx] >= REACH_VIEWS, P_REACH, P_RANDOM)
        p_audit = np.where(flagged_at < a["created"][idx], np.maximum(p_audit, P_REPEAT), p_audit)
        p = np.where(reported, P_REPORTED, p_audit)
        picked = rng.random(len(idx)) < p
        idx, p, reported = idx[picked], p[picked], reported[picked]
        created = a["created"][idx]
        delay = (np.clip(rng.lognormal(np.log(3.0), 0.8, len(idx)), 0.5, 24.0) * HOUR).astype(
            np.int64
        )
        labeled_at = np.where(
            reported,
            np.maximum(a["first_report"][idx] + delay, created + 2 * HOUR),
            created + (rng.uniform(2.0, 48.0, len(idx)) * HOUR).astype(np.int64),
        )
        correct = rng.random(len(idx)) < MODERATOR_ACCURACY
        drop_secondary = rng.random(len(idx)) < 0.1
        fp_type = rng.random(len(idx))
        for j, i in enumerate(idx.tolist()):
            if labeled_at[j] > self.end_ms:
                continue  # not yet labeled when the logs were exported
            truth = bool(a["harm"][i])
            verdict = truth if correct[j] else not truth
            if verdict:
                author = int(a["author"][i])
                first = self.flagged_authors.get(author, int(labeled_at[j]))
                self.flagged_authors[author] = min(first, int(labeled_at[j]))
            if verdict and truth:
                names = [n for n in HARM_TYPES if a["types"][i] & HT_BIT[n]]
                if len(names) > 1 and drop_secondary[j]:
                    names = names[:-1]
            elif verdict:
                names = (
                    ["harassment"] if a["mention"][i] else ["hate" if fp_type[j] < 0.6 else "spam"]
                )
            else:
                names = []
            self.labels.append(
                {
                    "post_id": int(a["pid"][i]),
                    "is_harmful": verdict,
                    "harm_types": names,
                    "labeled_at": _iso(int(labeled_at[j])),
                    "queue": "reported" if reported[j] else "random",
                    "sampling_weight": round(1.0 / float(p[j]), 6),
                    "_ts": int(labeled_at[j]),
                }
            )

    # -- static files -----------------------------------------------------------------------
    def write_users(self) -> None:
        w = self.w
        with (
            open(self.out / "users.jsonl", "w") as f,
            open(self.out / "_truth" / "users.jsonl", "w") as g,
        ):
            for i in range(w.n):
                f.write(
                    json.dumps(
                        {
                            "user_id": i + 1,
                            "created_at": _iso(int(w.created[i])),
                            "home_country": COUNTRY_CODES[int(w.country[i])],
                            "handle": w.handle(i),
                        }
                    )
                    + "\n"
                )
                ca = int(w.compromised_at[i])
                g.write(
                    json.dumps(
                        {
                            "user_id": i + 1,
                            "kind": KINDS[int(w.kind[i])],
                            "compromised_at": _iso(ca) if ca >= 0 else None,
                            "attack_ends_at": _iso(int(w.attack_end[i])) if ca >= 0 else None,
                            "attacker_country": COUNTRY_CODES[int(w.attacker_country[i])]
                            if ca >= 0
                            else None,
                            "campaign": bool(w.campaign[i]),
                            "adversarial_reporter": bool(w.adversarial[i]),
                            "targeted_creator": bool(w.targeted[i]),
                        }
                    )
                    + "\n"
                )

    def write_labels(self) -> None:
        self.labels.sort(key=lambda r: (r["_ts"], r["post_id"]))
        with open(self.out / "labels.jsonl", "w") as f:
            for row in self.labels:
                row = {k: v for k, v in row.items() if k != "_ts"}
                f.write(json.dumps(row) + "\n")

    def drift_info(self) -> dict:
        if self.drift_day is None:
            return {"drift_day": None, "drift_date": None, "changes": []}
        campaign_ids = (np.flatnonzero(self.w.campaign) + 1).tolist()
        return {
            "drift_day": self.drift_day,
            "drift_date": (self.start + timedelta(days=self.drift_day - 1)).isoformat(),
            "changes": [
                "abusive users switch to new insults, slurs, threat words and obfuscations",
                "a spam campaign starts: new bot accounts post a new link template (campaign='drift_spam')",
            ],
            "new_tokens": sim_text.DRIFT_TOKENS,
            "new_insults": sim_text.DRIFT_INSULTS,
            "new_slurs": sim_text.DRIFT_SLURS,
            "new_threat_words": sim_text.DRIFT_THREAT_WORDS,
            "campaign_domains": sim_text.DRIFT_SPAM_DOMAINS,
            "campaign_bot_user_ids": campaign_ids,
        }


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def simulate(
    out_dir,
    users: int = 20000,
    days: int = 30,
    start: date = date(2026, 10, 1),
    seed: int = 7,
    drift_day: int | None = None,
    corrupt_rate: float = 0.0002,
    progress: bool = True,
) -> dict:
    """Write raw logs for ``days`` days of a ``users``-account network into ``out_dir``; return counts.

    A previous simulation in ``out_dir`` is replaced (events/, _truth/, users.jsonl, labels.jsonl),
    so the same arguments always give byte-identical files.
    """
    if users < 50:
        raise UserError(f"--users {users} is too small: use at least 50.")
    if days < 1:
        raise UserError(f"--days {days} must be at least 1.")
    if drift_day is not None and not 1 <= drift_day <= days:
        raise UserError(f"--drift-day {drift_day} must be between 1 and --days ({days}).")
    if not 0.0 <= corrupt_rate <= 0.5:
        raise UserError(f"--corrupt-rate {corrupt_rate} must be between 0 and 0.5.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a directory.")
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("events", "_truth"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("users.jsonl", "labels.jsonl"):
        (out / name).unlink(missing_ok=True)
    (out / "_truth").mkdir()

    sim = _Sim(out, users, days, start, seed, drift_day, corrupt_rate)
    log.info(
        "simulating %d users (+%d campaign bots) for %d days from %s, seed %d",
        users,
        sim.w.n - users,
        days,
        start.isoformat(),
        seed,
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=days, unit="day", desc="simulate", leave=False)
    with open(out / "_truth" / "posts.jsonl", "w") as tp:
        sim.truth_posts = tp
        for d in range(days):
            t_day = time.perf_counter()
            r = sim.day(d)
            log.log(
                logging.DEBUG if bar is not None else logging.INFO,
                "day %d/%d %s: %d events, %d posts (%d harmful), %d sessions, %.1fs",
                d + 1,
                days,
                (start + timedelta(days=d)).isoformat(),
                r["events"],
                r["posts"],
                r["harmful"],
                r["sessions"],
                time.perf_counter() - t_day,
            )
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    sim._finalize_labels(np.random.default_rng([seed, 3, days]), sim.end_ms, final=True)
    sim.write_users()
    sim.write_labels()

    labels = sim.labels
    st = sim.stats
    result = {
        "out_dir": str(out),
        "users": sim.w.n,
        "campaign_bots": int(sim.w.campaign.sum()),
        "days": days,
        "seed": seed,
        "events": int(sum(sim.counts.values())),
        "lines": st["lines"],
        "late_deliveries": st["late_deliveries"],
        "duplicate_lines": st["duplicate_lines"],
        "corrupt_lines": st["corrupt_lines"],
        "posts": st["posts"],
        "harmful_posts": st["harmful_posts"],
        "prevalence": round(st["harmful_posts"] / max(st["posts"], 1), 6),
        "multi_label_posts": sim.multi_label_posts,
        "obfuscated_posts": st["obfuscated_posts"],
        "toxic_looking_benign_posts": st["toxic_looking_benign"],
        "campaign_posts": sim.campaign_posts,
        "harm_types": sim.harm_type_counts,
        "labels": len(labels),
        "labels_harmful": sum(r["is_harmful"] for r in labels),
        "labels_reported_queue": sum(r["queue"] == "reported" for r in labels),
        "labels_by_weight": {
            str(wt): sum(r["sampling_weight"] == wt for r in labels)
            for wt in sorted({r["sampling_weight"] for r in labels})
        },
        "actions": sim.counts,
        "user_kinds": {k: int((sim.w.kind == i).sum()) for i, k in enumerate(KINDS)},
    }
    (out / "_truth" / "drift.json").write_text(json.dumps(sim.drift_info(), indent=2) + "\n")
    (out / "_truth" / "corruptions.json").write_text(
        json.dumps(
            {
                "total": st["corrupt_lines"],
                "by_kind": sim.corruptions,
                "late_deliveries": st["late_deliveries"],
                "duplicate_lines": st["duplicate_lines"],
                "lines": st["lines"],
                "events": result["events"],
            },
            indent=2,
        )
        + "\n"
    )
    # no paths or timings in the files: the same arguments give byte-identical output anywhere
    summary = {k: v for k, v in result.items() if k != "out_dir"}
    (out / "_truth" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    result["seconds"] = round(time.perf_counter() - t0, 2)
    log.info(
        "wrote %d events (%d lines) in %.1fs: %d posts, %d harmful (%.2f%%), %d labels (%d harmful)",
        result["events"],
        result["lines"],
        result["seconds"],
        result["posts"],
        result["harmful_posts"],
        100 * result["prevalence"],
        result["labels"],
        result["labels_harmful"],
    )
    return result


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD.") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: $VIGIL_HOME/raw); a previous simulation there is replaced",
    )
    parser.add_argument(
        "--users", type=int, default=20000, help="number of accounts (default 20000)"
    )
    parser.add_argument("--days", type=int, default=30, help="number of days (default 30)")
    parser.add_argument(
        "--start",
        type=_parse_date,
        default=date(2026, 10, 1),
        help="first day, YYYY-MM-DD (default 2026-10-01)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--drift-day",
        type=int,
        default=None,
        help="1-based day from which abusers change vocabulary and a spam campaign starts",
    )
    parser.add_argument(
        "--corrupt-rate",
        type=float,
        default=0.0002,
        help="share of extra garbage lines mixed into the log (default 0.0002)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vigil import config
    out = args.out if args.out is not None else config.paths().raw
    r = simulate(
        out,
        users=args.users,
        days=args.days,
        start=args.start,
        seed=args.seed,
        drift_day=args.drift_day,
        corrupt_rate=args.corrupt_rate,
        progress=not args.no_progress,
    )
    acts = ", ".join(f"{k} {v:,}" for k, v in r["actions"].items())
    print(
        f"Simulated {r['users']:,} users over {r['days']} days into {r['out_dir']} in {r['seconds']}s"
    )
    print(f"  events  {r['events']:,} ({acts})")
    print(
        f"  lines   {r['lines']:,} (late {r['late_deliveries']:,}, duplicates {r['duplicate_lines']:,}, "
        f"corrupt {r['corrupt_lines']:,})"
    )
    print(
        f"  posts   {r['posts']:,}, harmful {r['harmful_posts']:,} ({100 * r['prevalence']:.2f}%), "
        f"multi-label {r['multi_label_posts']:,}, obfuscated {r['obfuscated_posts']:,}"
    )
    print(
        f"  labels  {r['labels']:,} ({r['labels_harmful']:,} harmful, "
        f"{r['labels_reported_queue']:,} from the reported queue)"
    )
    print(f"  users   {', '.join(f'{k} {v:,}' for k, v in r['user_kinds'].items())}")
    return 0
