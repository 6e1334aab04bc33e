"""Views and the reactions they trigger, spam-bot replies, and follows."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from sim.events import _lomax_cdf
from sim.params import (
    ABU,
    ACT,
    DAY,
    HOUR,
    MINUTE,
    VIEW_HORIZON_H,
    VIEW_SCALE_H,
    VIEW_SHAPE,
    VIEW_SLICE,
    P,
)


class _Views(NamedTuple):
    """Today's expected views: per live post the count ``nv`` and Lomax CDF bounds ``f1``/``f2``
    of its age today; the viewers: session-minute ``pool`` sorted by minute, ``cnt`` per minute
    and ``ptr`` (where each minute starts in ``pool``)."""

    nv: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    pool: np.ndarray
    cnt: np.ndarray
    ptr: np.ndarray
    # the graph world: the same pool sorted by (community, minute), with counts and starts
    cpool: np.ndarray | None = None
    ccnt: np.ndarray | None = None
    cptr: np.ndarray | None = None


class _ViewsMixin:
    """Views, reactions and follows for :class:`sim.world._Sim`."""

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
        views = _Views(nv, f1, f2, pool, cnt, ptr)
        if self.w.comm_index is not None:
            views = views._replace(**self._community_pools(np.repeat(hu, hd), mins))
        for lo, hi in itertools.pairwise(edges):
            if hi > lo:
                self._view_slice(rng, b, tg, day_start, views, lo, hi)
        # spam bots reply with links under popular live posts
        bots = np.flatnonzero(skind == 1)
        sb = bots[rng.random(len(bots)) < P.p_bot_spam_reply]
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

    def _community_pools(self, users: np.ndarray, mins: np.ndarray) -> dict[str, np.ndarray]:
        """In-session users sorted by (community, minute): who can see a post in its community."""
        key = self.w.community[users] * 1440 + mins
        cnt = np.bincount(key, minlength=(int(self.w.community.max()) + 1) * 1440)
        return {
            "cpool": users[np.argsort(key, kind="stable")],
            "ccnt": cnt,
            "cptr": np.concatenate([[0], np.cumsum(cnt)]),
        }

    def _view_slice(self, rng, b, tg, day_start: int, views: _Views, lo: int, hi: int) -> None:
        """Views of live posts ``lo:hi`` today, and the reactions they trigger."""
        vi, vts, viewer = self._draw_views(rng, b, day_start, views, lo, hi)
        p = self._reaction_probabilities(vi, vts, viewer)
        self._emit_reactions(rng, b, tg, vi, vts, viewer, p)

    def _draw_views(self, rng, b, day_start: int, views: _Views, lo: int, hi: int):
        """Each view's post (live index), time and viewer; writes the views and refreshes."""
        nv, f1, f2, pool, cnt, ptr = views[:6]
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
        if views.cpool is not None:  # the graph world: most views stay in the author's community
            key = self.w.community[a["author"][vi]] * 1440 + vmin
            cc = views.ccnt[key]
            cpick = views.cptr[key] + (rng.random(len(vi)) * cc).astype(np.int64)
            home = (rng.random(len(vi)) < P.p_view_within) & (cc > 0)
            viewer = np.where(home, views.cpool[np.minimum(cpick, len(views.cpool) - 1)], viewer)
        keep = (c > 0) & (viewer != a["author"][vi])
        vi, vts, viewer = vi[keep], vts[keep], viewer[keep]
        nvw = len(vi)
        author = a["author"][vi]
        post = a["pid"][vi]
        b.add(vts, viewer + 1, ACT["view"], post=post, target=author + 1)
        np.add.at(a["views24"], vi[vts < a["created"][vi] + DAY], 1)
        # refreshes: the same view again within seconds
        rep = rng.random(nvw) < P.p_refresh
        b.add(
            vts[rep] + rng.integers(1000, 20_000, int(rep.sum())),
            viewer[rep] + 1,
            ACT["view"],
            post=post[rep],
            target=author[rep] + 1,
        )
        return vi, vts, viewer

    def _reaction_probabilities(self, vi, vts, viewer) -> dict[str, np.ndarray]:
        """Per view: the probability of each reaction, and what the replies depend on."""
        w = self.w
        a = self.live.a
        author = a["author"][vi]
        h = a["harm"][vi]
        spam = a["spam"][vi]
        q = a["quality"][vi]
        cz = a["contr"][vi]
        rn = a["rnoise"][vi]
        age = (vts - a["created"][vi]) / HOUR
        # a harmful post's first audience is friendly: the hostile share grows with its age
        floor = P.early_hostile_floor
        early = floor + (1.0 - floor) * (1.0 - np.exp(-age / P.early_hostile_hours))
        symp = w.kind[viewer] == ABU
        adv = w.adversarial[viewer] & w.targeted[author]
        hostile = h & ~symp

        p_like = np.where(
            h,
            np.where(symp, P.p_like_sympathetic, np.where(spam, P.p_like_spam, P.p_like_harmful)),
            P.p_like_per_quality * q,
        )
        p_dislike = np.where(
            h,
            np.where(symp, 0.0, P.p_dislike_harmful * early),
            P.p_dislike_benign + P.p_dislike_per_controversy * cz,
        )
        p_dislike = np.where(adv, P.p_dislike_adversarial, p_dislike)
        p_share = np.where(
            h, np.where(symp, P.p_share_sympathetic, P.p_share_harmful), P.p_share_per_quality * q
        )
        p_report = np.where(
            h,
            np.where(symp, 0.0, np.where(spam, P.p_report_spam, P.p_report_harmful) * early * rn),
            (P.p_report_benign + P.p_report_per_controversy * cz) * rn,
        )
        p_report = np.where(adv, P.p_report_adversarial, p_report)
        p_block = np.where(
            h,
            np.where(symp, 0.0, P.p_block_harmful * early),
            P.p_block_benign + P.p_block_per_controversy * cz,
        )
        p_mute = np.where(
            h,
            np.where(symp, 0.0, P.p_mute_harmful * early),
            P.p_mute_benign + P.p_mute_per_controversy * cz,
        )
        p_reply = np.where(h, P.p_reply_harmful, P.p_reply_benign + P.p_reply_per_controversy * cz)
        p_follow = np.where(
            h,
            np.where(symp, P.p_follow_sympathetic, P.p_follow_harmful),
            P.p_follow_per_quality * q,
        )
        p_unfollow = np.where(hostile, P.p_unfollow_hostile * early, P.p_unfollow)
        return {
            "like": p_like,
            "dislike": p_dislike,
            "share": p_share,
            "report": p_report,
            "block": p_block,
            "mute": p_mute,
            "reply": p_reply,
            "follow": p_follow,
            "unfollow": p_unfollow,
            "h": h,
            "cz": cz,
            "early": early,
            "symp": symp,
            "hostile": hostile,
        }

    def _emit_reactions(self, rng, b, tg, vi, vts, viewer, p: dict[str, np.ndarray]) -> None:
        """Draw and write the reactions of each view, in a fixed order of draws."""
        a = self.live.a
        nvw = len(vi)
        post = a["pid"][vi]
        tgt = a["author"][vi] + 1

        def emit(sel, action: str, mean_ms: float, lo: int, on_post: bool = True, texts=None):
            """Write the reactions of views ``sel``, ``lo`` + exponential(``mean_ms``) ms later."""
            k = len(vts[sel])
            ts = vts[sel] + (lo + rng.exponential(mean_ms, k).astype(np.int64))
            b.add(
                ts,
                viewer[sel] + 1,
                ACT[action],
                post=post[sel] if on_post else None,
                target=tgt[sel],
                texts=texts,
            )
            return ts

        u = rng.random(nvw)
        emit(u < p["like"], "like", 4000, 500)
        emit((u >= p["like"]) & (u < p["like"] + p["dislike"]), "dislike", 4000, 500)
        emit(rng.random(nvw) < p["share"], "share", 10_000, 1000)
        rp = rng.random(nvw) < p["report"]
        self._count_reports(post[rp], emit(rp, "report", 30_000, 3000))
        u = rng.random(nvw)
        emit(u < p["block"], "block", 20_000, 5000)
        emit((u >= p["block"]) & (u < p["block"] + p["mute"]), "mute", 20_000, 5000)
        emit(rng.random(nvw) < p["follow"], "follow", 8000, 1000, on_post=False)
        emit(rng.random(nvw) < p["unfollow"], "unfollow", 15_000, 2000, on_post=False)
        ry = np.flatnonzero(rng.random(nvw) < p["reply"])
        texts = [tg.reply(k) for k in self._reply_kinds(rng, p, ry).tolist()]
        emit(ry, "reply", 40_000, 5000, texts=texts)

    @staticmethod
    def _reply_kinds(rng, p: dict[str, np.ndarray], ry: np.ndarray) -> np.ndarray:
        """The tone of replies ``ry``: disgust at harmful posts (more once the wider audience
        arrives), arguments under controversial ones, cheering from sympathizers, chatter."""
        h, cz, early, symp, hostile = p["h"], p["cz"], p["early"], p["symp"], p["hostile"]
        ur = rng.random(len(ry))
        neg = np.where(
            hostile[ry],
            ur < P.p_negative_reply_hostile * early[ry],
            ~h[ry] & (ur < P.p_negative_reply_per_controversy * cz[ry]),
        )
        pos = ~neg & (symp[ry] | (ur > P.positive_reply_above))
        kinds = np.where(neg, "negative", np.where(pos, "positive", "neutral"))
        benign_pos = ~neg & ~h[ry] & (rng.random(len(ry)) < P.p_positive_benign_reply)
        return np.where(benign_pos, "positive", kinds)

    def _follows(self, rng, b, su, s_ms, sdur, skind) -> None:
        w = self.w
        n_s = len(su)
        # ordinary follows go to popular accounts; bots and hijacked accounts follow in bursts
        k = np.where(
            skind == 0,
            (rng.random(n_s) < P.p_human_follows)
            * (1 + rng.poisson(P.rate_human_extra_follows, n_s)),
            np.where(
                rng.random(n_s)
                < np.where(skind == 1, P.p_bot_follow_burst, P.p_attacker_follow_burst),
                rng.integers(P.follow_burst_min, P.follow_burst_max + 1, n_s)
                * np.where(skind == 2, P.attacker_burst_factor, 1.0),
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
        if w.comm_index is not None:  # the graph world: most follows stay in the community
            home = np.flatnonzero(rng.random(len(fi)) < P.p_follow_within)
            tgt[home] = w.comm_index.by_followers(rng, w.community[su[fi][home]])
        ok = tgt != su[fi]
        b.add(s_ms[fi][ok] + offs[ok], su[fi][ok] + 1, ACT["follow"], target=tgt[ok] + 1)
        uf = np.flatnonzero((skind == 0) & (rng.random(n_s) < P.p_human_unfollows))
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
