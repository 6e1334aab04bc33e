"""Template grammar for the simulator's post and reply texts.

The grammar is built so that text alone is an imperfect signal: benign posts borrow toxic-looking
words ("this set is sick", "killing it"), some harmful posts avoid every slur (veiled threats,
dog whistles), harmful words are sometimes obfuscated ("1d10t", "k1ll"), and counter-speech quotes
insults. Hate speech targets invented groups with invented slurs, so the corpus carries no real ones.

Every generator takes a ``random.Random`` so the simulator stays deterministic per seed.
"""

from __future__ import annotations

import random

from sim.params import P
from sim.vocabulary import (
    BENIGN_DOMAINS,
    BENIGN_LINK,
    BENIGN_MENTION_TEMPLATES,
    BENIGN_TEMPLATES,
    CLOSERS,
    CONTEXT_MENTION,
    DRIFT_INSULT_OBFUSCATED,
    DRIFT_INSULTS,
    DRIFT_SLUR_OBFUSCATED,
    DRIFT_SLURS,
    DRIFT_SPAM_DOMAINS,
    DRIFT_SPAM_TEMPLATES,
    DRIFT_THREAT_OBFUSCATED,
    DRIFT_THREAT_WORDS,
    FRIEND_BANTER,
    GROUP_BENIGN,
    GROUPS,
    HANDLE_ADJ,
    HANDLE_NOUN,
    HARASS_TEMPLATES,
    HATE_TEMPLATES,
    INSULT_OBFUSCATED,
    INSULTS,
    NEGATIVE_REPLIES,
    NEUTRAL_REPLIES,
    OPENERS,
    PLACES,
    POSITIVE_REPLIES,
    SLUR_OBFUSCATED,
    SLURS,
    SPAM_DOMAINS,
    SPAM_NO_LINK,
    SPAM_OBFUSCATED,
    SPAM_REPLIES,
    SPAM_TEMPLATES,
    THREAT_OBFUSCATED,
    THREAT_TEMPLATES,
    THREAT_WORDS,
    TOPIC_NAMES,
    TOPICS,
    TOXIC_LOOKING_BENIGN,
    VEILED_HARASS,
    VEILED_HATE,
    VICTIM_REPLIES,
)


def handle(adj: int, noun: int, num: int) -> str:
    return f"{HANDLE_ADJ[adj]}_{HANDLE_NOUN[noun]}{num}"


class TextGen:
    """Draws post and reply texts. ``drifted`` switches abusers to the post-drift vocabulary."""

    def __init__(self, rnd: random.Random, drifted: bool = False):
        self.r = rnd
        self.drifted = drifted

    # benign ---------------------------------------------------------------------------------
    def _topic_fill(self, template: str, mention: str | None = None) -> str:
        r = self.r
        topic = TOPICS[r.choice(TOPIC_NAMES)]
        other = TOPICS[r.choice(TOPIC_NAMES)] if r.random() < P.p_second_topic else topic
        text = template.format(
            o=r.choice(OPENERS),
            c=r.choice(CLOSERS),
            thing=r.choice(topic["thing"]),
            adj=r.choice(topic["adj"]),
            thing2=r.choice(other["thing"]),
            adj2=r.choice(other["adj"]),
            n=r.randint(2, 9),
            h=mention or "",
        )
        if r.random() < P.p_hashtag:
            text += " " + r.choice(topic["tag"])
        return text

    def benign(self, mention: str | None = None) -> tuple[str, bool]:
        """A benign post; returns (text, toxic_looking)."""
        r = self.r
        if mention is not None:
            x = r.random()
            if x < P.mention_context_below:
                return r.choice(CONTEXT_MENTION).format(h=mention, place=r.choice(PLACES)), False
            if x < P.mention_banter_below:
                topic = TOPICS[r.choice(TOPIC_NAMES)]
                return r.choice(FRIEND_BANTER).format(
                    h=mention,
                    ins=r.choice(INSULTS[:6]),
                    place=r.choice(PLACES),
                    thing=r.choice(topic["thing"]),
                ), True
            return self._topic_fill(r.choice(BENIGN_MENTION_TEMPLATES), mention), False
        x = r.random()
        if x < P.toxic_looking_below:
            return self._topic_fill(r.choice(TOXIC_LOOKING_BENIGN)), True
        if x < P.group_benign_below:
            tpl = r.choice(GROUP_BENIGN)
            topic = TOPICS[r.choice(TOPIC_NAMES)]
            return tpl.format(
                grp=r.choice(GROUPS),
                slur=r.choice(SLURS),
                adj=r.choice(topic["adj"]),
                c=r.choice(CLOSERS),
            ), "{slur}" in tpl
        if x < P.benign_link_below:
            text = self._topic_fill(r.choice(BENIGN_LINK).replace("{link}", "{h}"), "LINK")
            link = "https://" + r.choice(BENIGN_DOMAINS) + f"/{r.randint(100, 99999)}"
            return text.replace("LINK", link), False
        return self._topic_fill(r.choice(BENIGN_TEMPLATES)), False

    # harmful --------------------------------------------------------------------------------
    def _word(self, plain: list[str], obf: dict[str, list[str]], p_obf: float) -> tuple[str, bool]:
        w = self.r.choice(plain)
        if w in obf and self.r.random() < p_obf:
            return self.r.choice(obf[w]), True
        return w, False

    def _insult(self) -> tuple[str, bool]:
        if self.drifted and self.r.random() < P.p_drift_insult:
            return self._word(DRIFT_INSULTS, DRIFT_INSULT_OBFUSCATED, P.p_obfuscate_drift)
        return self._word(INSULTS, INSULT_OBFUSCATED, P.p_obfuscate_insult)

    def _slur(self) -> tuple[str, bool]:
        if self.drifted and self.r.random() < P.p_drift_slur:
            return self._word(DRIFT_SLURS, DRIFT_SLUR_OBFUSCATED, P.p_obfuscate_drift)
        return self._word(SLURS, SLUR_OBFUSCATED, P.p_obfuscate_slur)

    def _threat(self) -> tuple[str, bool]:
        if self.drifted and self.r.random() < P.p_drift_threat:
            return self._word(DRIFT_THREAT_WORDS, DRIFT_THREAT_OBFUSCATED, P.p_obfuscate_drift)
        return self._word(THREAT_WORDS, THREAT_OBFUSCATED, P.p_obfuscate_threat)

    def harmful(self, types: list[str], mention: str | None) -> tuple[str, bool]:
        """A harmful post of the given types (first = primary); returns (text, obfuscated)."""
        r = self.r
        primary = types[0]
        h = mention or "someone"
        obf = False
        if primary == "spam":
            return self.spam()
        if primary == "harassment":
            x = r.random()
            if x < P.harass_context_below and mention is not None:
                text = r.choice(CONTEXT_MENTION).format(h=h, place=r.choice(PLACES))
            elif x < P.harass_veiled_below:
                text = r.choice(VEILED_HARASS).format(h=h)
            else:
                ins, obf = self._insult()
                topic = TOPICS[r.choice(TOPIC_NAMES)]
                text = r.choice(HARASS_TEMPLATES).format(
                    h=h, ins=ins, c=r.choice(CLOSERS), thing=r.choice(topic["thing"])
                )
        elif primary == "hate":
            grp = r.choice(GROUPS)
            if r.random() < P.p_veiled_hate:
                text = r.choice(VEILED_HATE).format(grp=grp)
            else:
                tpl = r.choice(HATE_TEMPLATES)
                slur = ""
                if "{slur}" in tpl:
                    slur, obf = self._slur()
                text = tpl.format(grp=grp, slur=slur, c=r.choice(CLOSERS))
        else:  # violent_threat
            tpl = r.choice(THREAT_TEMPLATES)
            if mention is None and "{h}" in tpl:
                tpl = "someone should {tw} {grp}{c}"
            tw = ""
            if "{tw}" in tpl:
                tw, obf = self._threat()
            text = tpl.format(
                h=h, tw=tw, grp=r.choice(GROUPS), place=r.choice(PLACES), c=r.choice(CLOSERS)
            )
        for extra in types[1:]:
            if extra == "hate":
                slur, o = self._slur()
                obf |= o
                text += r.choice(
                    [
                        f" typical {slur}",
                        f". you {slur} are all the same",
                        f" go back to {r.choice(GROUPS)}",
                    ]
                )
            elif extra == "violent_threat":
                tw, o = self._threat()
                obf |= o
                text += r.choice(
                    [f". i'll {tw} you", f" and i will {tw} you", f". someone should {tw} you"]
                )
            elif extra == "harassment" and mention is not None and f"@{mention}" not in text:
                ins, o = self._insult()
                obf |= o
                text = f"@{mention} {text} {ins}"
            elif extra == "spam":
                text += " " + self._link()
        return text, obf

    def _link(self) -> str:
        if self.drifted and self.r.random() < P.p_drift_spam_link:
            return "https://" + self.r.choice(DRIFT_SPAM_DOMAINS) + f"/{self.r.randint(100, 999)}"
        return "https://" + self.r.choice(SPAM_DOMAINS) + f"/{self.r.randint(1000, 99999)}"

    def spam(self, campaign: bool = False) -> tuple[str, bool]:
        """A spam post; returns (text, obfuscated)."""
        r = self.r
        if campaign:
            link = "https://" + r.choice(DRIFT_SPAM_DOMAINS) + f"/{r.randint(100, 999)}"
            return r.choice(DRIFT_SPAM_TEMPLATES).format(link=link), False
        obf = r.random() < P.p_spam_obfuscated
        if not obf and r.random() < P.p_spam_no_link:
            return r.choice(SPAM_NO_LINK), False
        text = r.choice(SPAM_OBFUSCATED) if obf else r.choice(SPAM_TEMPLATES)
        while "{link}" in text:
            text = text.replace("{link}", self._link(), 1)
        return text.replace("{n}", str(r.randint(2, 9))), obf

    # replies --------------------------------------------------------------------------------
    def reply(self, kind: str) -> str:
        r = self.r
        if kind == "negative":
            return r.choice(NEGATIVE_REPLIES)
        if kind == "victim":
            return r.choice(VICTIM_REPLIES)
        if kind == "spam":
            return r.choice(SPAM_REPLIES).format(link=self._link())
        if kind == "neutral":
            return r.choice(NEUTRAL_REPLIES)
        return r.choice(POSITIVE_REPLIES) + (
            r.choice(CLOSERS) if r.random() < P.p_reply_closer else ""
        )
