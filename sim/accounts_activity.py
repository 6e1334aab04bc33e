"""The accounts world's activity (sim/accounts.py): day by day, each account's event slots
(sessions, bot ticks, news ticks, campaign waves), materialised into posts, replies, likes,
views, follows and logins.

A mixin of :class:`sim.accounts._World`: it reads the populations ``_populate`` built.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from sim import vocabulary as V
from sim.accounts_text import ACTS, BOT_EXTRA, DAY, HEADLINES, HOUR, MIN

if TYPE_CHECKING:
    from sim.accounts import Account


class WorldActivity:
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
