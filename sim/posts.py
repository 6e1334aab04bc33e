"""Posts: who writes what (harmful or not, which harm types, whom it mentions), the truth
record of every post, and what mentioned users do when notified."""

from __future__ import annotations

import json

import numpy as np

from sim.events import _iso
from sim.params import ABU, ACT, BOT, DAY, HT_BIT, MINUTE, REACH_BASE, P
from vigil.contracts import HARM_TYPES


class _PostsMixin:
    """Post generation for :class:`sim.world._Sim` (uses its world ``w``, ``live`` posts, stats)."""

    def _post_times(self, rng, su, s_ms, sdur, skind, day_end: int):
        """How many posts each session writes and when; returns (author, time, session kind) of
        every post, in time order."""
        w = self.w
        n_s = len(su)
        camp = w.campaign[su]
        human = rng.poisson(w.post_rate[su])
        bot = (rng.random(n_s) < np.where(camp, P.p_campaign_bot_posts, P.p_bot_posts)) * (
            1 + rng.poisson(np.where(camp, P.rate_campaign_bot_extra_posts, P.rate_bot_extra_posts))
        )
        attacker = (rng.random(n_s) < P.p_attacker_posts) * (
            1 + rng.poisson(P.rate_attacker_extra_posts, n_s)
        )
        n_posts = np.where(skind == 0, human, np.where(skind == 1, bot, attacker))
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
        return su[pi], p_ts, skind[pi]

    def _go_live(self, rng, pids, p_author, p_ts, harm, types, mention_of) -> None:
        """Today's posts join the live table with their hidden reach, quality and controversy."""
        n_p = len(pids)
        virality = np.minimum((1.0 - rng.random(n_p)) ** (-1.0 / P.virality_tail), P.virality_max)
        contr = np.where(
            rng.random(n_p) < P.p_controversial, rng.uniform(P.controversy_min, 1.0, n_p), 0.0
        )
        followers = self.w.followers[p_author]
        self.live.append(
            {
                "pid": pids,
                "author": p_author,
                "created": p_ts,
                "reach": REACH_BASE * (followers + 1.0) ** P.reach_followers_exponent * virality,
                "harm": harm,
                "spam": harm & ((types & ~np.uint8(HT_BIT["spam"])) == 0),
                "quality": np.exp(rng.normal(0.0, P.quality_log_sd, n_p)),
                "contr": np.where(harm, 0.0, contr),
                "rnoise": np.exp(rng.normal(0.0, P.report_noise_log_sd, n_p)),
                "mention": mention_of >= 0,
                "reports24": np.zeros(n_p, np.int32),
                "views24": np.zeros(n_p, np.int32),
                "first_report": np.full(n_p, np.iinfo(np.int64).max),
                "final": np.zeros(n_p, bool),
                "types": types,
            }
        )

    def _post_texts(self, rng, trng, tg, tg_drift, p_author, p_sk, p_ts, drifted, pile_on=None):
        """Each post's text and hidden truth: harmful or not, harm types, obfuscation, whom it
        mentions (-1: nobody), whether it belongs to the drift's spam campaign. ``pile_on``: per
        post the harassment campaign it belongs to (-1: none; ``sim.graph_world``)."""
        w = self.w
        n_p = len(p_author)
        pk = w.kind[p_author]
        u = rng.random(n_p)
        harm = np.select(
            [p_sk == 2, pk == BOT, pk == ABU],
            [u < P.p_harmful_attacker, u < P.p_harmful_bot, u < P.p_harmful_abuser],
            u < P.p_harmful_ordinary,
        )
        if pile_on is not None:
            harm |= pile_on >= 0
        is_campaign = w.campaign[p_author] & harm
        texts: list[str] = []
        types = np.zeros(n_p, np.uint8)
        obf = np.zeros(n_p, bool)
        mention_of = np.full(n_p, -1, np.int64)
        gens = (tg, tg_drift, drifted)
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
            if pile_on is not None and pile_on[j] >= 0:
                text, o, names, mention_of[j] = self._pile_on_post(trng, tg, int(pile_on[j]))
                for name in names:
                    types[j] |= HT_BIT[name]
                obf[j] = o
            elif h:
                text, o, names, mention_of[j] = self._harmful_post(trng, gens, a, k, sk, camp, ts)
                for name in names:
                    types[j] |= HT_BIT[name]
                obf[j] = o
            else:
                text, o, mention_of[j] = self._benign_post(trng, tg, a, k, sk, ts)
                if o:
                    self.stats["toxic_looking_benign"] += 1
            texts.append(text)
        return texts, harm, types, obf, mention_of, is_campaign

    def _harmful_post(self, r, gens, a: int, k: int, sk: int, camp: bool, ts: int):
        """(text, obfuscated, harm types, mentioned user or -1) of one harmful post by ``a``.

        ``gens``: the text generators before and after the drift, and whether today is drifted.
        """
        tg, tg_drift, drifted = gens
        if camp:
            text, o = tg_drift.spam(campaign=True)
            return text, o, ["spam"], -1
        if sk == 2 or k == BOT:
            names = ["spam"]
            if r.random() < P.p_bot_spam_also_hate:
                names.append("hate")
            text, o = (tg_drift if drifted else tg).harmful(names, None)
            return text, o, names, -1
        names = self._harm_types(r, k)
        target = self._harm_target(r, names, a, k, ts)
        gen = tg_drift if (drifted and k == ABU) else tg
        text, o = gen.harmful(names, self.w.handle(target) if target >= 0 else None)
        return text, o, names, target

    def _pile_on_post(self, r, tg, campaign: int):
        """A harassment campaign's post: harassment (sometimes hateful) naming its target."""
        names = ["harassment"]
        if r.random() < P.p_harassment_also_hate:
            names.append("hate")
        target = int(self.w.campaigns.target[campaign])
        text, o = tg.harmful(names, self.w.handle(target))
        return text, o, names, target

    def _campaign_posts(self, day_start: int, day_end: int):
        """(author, time, campaign) of the planned campaign posts written today."""
        plan = self.w.campaigns
        lo, hi = np.searchsorted(plan.post_ts, [day_start, day_end])
        return plan.post_author[lo:hi], plan.post_ts[lo:hi], plan.post_campaign[lo:hi]

    @staticmethod
    def _harm_types(r, k: int) -> list[str]:
        """A human author's harm types: the primary first, then the ones it often comes with."""
        x = r.random()
        if k == ABU:
            harassment_below, hate_below = P.abuser_harassment_below, P.abuser_hate_below
        else:
            harassment_below, hate_below = P.other_harassment_below, P.other_hate_below
        primary = (
            "harassment" if x < harassment_below else "hate" if x < hate_below else "violent_threat"
        )
        names = [primary]
        if primary == "harassment":
            if r.random() < P.p_harassment_also_hate:
                names.append("hate")
            if r.random() < P.p_harassment_also_threat:
                names.append("violent_threat")
        elif primary == "hate" and r.random() < P.p_hate_also_threat:
            names.append("violent_threat")
        elif primary == "violent_threat" and r.random() < P.p_threat_also_harassment:
            names.append("harassment")
        return names

    def _harm_target(self, r, names: list[str], a: int, k: int, ts: int) -> int:
        """Whom a harassing or threatening post names: an abuser's usual victims first, else
        any other existing account; -1 for nobody."""
        names_someone = "harassment" in names or (
            names[0] == "violent_threat" and r.random() < P.p_threat_names_target
        )
        if not names_someone:
            return -1
        target = int(self.w.victims[a, r.randrange(4)]) if k == ABU else -1
        if target < 0 or target == a or self.w.created[target] >= ts:
            target = self._other_user(r, a, ts)
        return target

    def _other_user(self, r, a: int, ts: int) -> int:
        """Someone other than ``a`` whose account already exists at ``ts`` (-1 after 20 tries);
        in the graph world mostly someone of ``a``'s community."""
        created = self.w.created
        index = self.w.comm_index
        if index is not None and r.random() < P.p_mention_within:
            for _ in range(20):
                t = index.uniform(r, int(self.w.community[a]))
                if t != a and created[t] < ts:
                    return t
        for _ in range(20):
            t = r.randrange(self.users)
            if t != a and created[t] < ts:
                return t
        return -1

    def _benign_post(self, r, tg, a: int, k: int, sk: int, ts: int):
        """(text, toxic-looking, mentioned user or -1) of one benign post by ``a``."""
        if k == BOT or sk:
            text, o = tg.benign()
            return text, o, -1
        if r.random() < P.p_benign_mention:
            target = self._other_user(r, a, ts)
            text, o = tg.benign(self.w.handle(target) if target >= 0 else None)
            return text, o, target
        text, o = tg.benign()
        return text, o, -1

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
        seen = rng.random(len(m)) < np.where(h, P.p_mention_seen_harmful, P.p_mention_seen_benign)
        m, tgt, h = m[seen], tgt[seen], h[seen]
        vts = p_ts[m] + 30_000 + rng.exponential(20 * MINUTE, len(m)).astype(np.int64)
        post, author = pids[m], p_author[m] + 1
        b.add(vts, tgt + 1, ACT["view"], post=post, target=author)
        sympathetic = w.kind[tgt] == ABU
        u = rng.random(len(m))
        hostile = h & ~sympathetic
        rep = hostile & (u < P.p_victim_reports)
        rts = vts + 5_000 + rng.exponential(30_000, len(m)).astype(np.int64)
        b.add(rts[rep], tgt[rep] + 1, ACT["report"], post=post[rep], target=author[rep])
        self._count_reports(post[rep], rts[rep])
        u2 = rng.random(len(m))
        blk = hostile & (u2 < P.p_victim_blocks)
        mut = hostile & (u2 >= P.p_victim_blocks) & (u2 < P.p_victim_blocks_or_mutes)
        bts = rts + 3_000 + rng.exponential(10_000, len(m)).astype(np.int64)
        b.add(bts[blk], tgt[blk] + 1, ACT["block"], post=post[blk], target=author[blk])
        b.add(bts[mut], tgt[mut] + 1, ACT["mute"], post=post[mut], target=author[mut])
        like = ~h & (u < P.p_mentioned_likes)
        b.add(
            vts[like] + 2_000 + rng.exponential(4_000, int(like.sum())).astype(np.int64),
            tgt[like] + 1,
            ACT["like"],
            post=post[like],
            target=author[like],
        )
        u3 = rng.random(len(m))
        rep_reply = np.flatnonzero(
            np.where(hostile, u3 < P.p_victim_replies, ~h & (u3 < P.p_mentioned_replies))
        )
        texts = [tg.reply("victim" if hostile[i] else "positive") for i in rep_reply.tolist()]
        b.add(
            vts[rep_reply] + 10_000 + rng.exponential(60_000, len(rep_reply)).astype(np.int64),
            tgt[rep_reply] + 1,
            ACT["reply"],
            post=post[rep_reply],
            target=author[rep_reply],
            texts=texts,
        )
