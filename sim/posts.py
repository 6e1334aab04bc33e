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

    def _post_texts(self, rng, trng, tg, tg_drift, p_author, p_sk, p_ts, drifted):
        w = self.w
        n_p = len(p_author)
        pk = w.kind[p_author]
        u = rng.random(n_p)
        harm = np.select(
            [p_sk == 2, pk == BOT, pk == ABU],
            [u < P.p_harmful_attacker, u < P.p_harmful_bot, u < P.p_harmful_abuser],
            u < P.p_harmful_ordinary,
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
                    if r.random() < P.p_bot_spam_also_hate:
                        t.append("hate")
                    gen = tg_drift if drifted else tg
                    text, o = gen.harmful(t, None)
                else:
                    x = r.random()
                    if k == ABU:
                        primary = (
                            "harassment"
                            if x < P.abuser_harassment_below
                            else "hate"
                            if x < P.abuser_hate_below
                            else "violent_threat"
                        )
                    else:
                        primary = (
                            "harassment"
                            if x < P.other_harassment_below
                            else "hate"
                            if x < P.other_hate_below
                            else "violent_threat"
                        )
                    t = [primary]
                    if primary == "harassment":
                        if r.random() < P.p_harassment_also_hate:
                            t.append("hate")
                        if r.random() < P.p_harassment_also_threat:
                            t.append("violent_threat")
                    elif primary == "hate" and r.random() < P.p_hate_also_threat:
                        t.append("violent_threat")
                    elif primary == "violent_threat" and r.random() < P.p_threat_also_harassment:
                        t.append("harassment")
                    target = -1
                    if "harassment" in t or (
                        primary == "violent_threat" and r.random() < P.p_threat_names_target
                    ):
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
                elif r.random() < P.p_benign_mention:
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
