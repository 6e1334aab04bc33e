"""The labeling queue: which posts moderators label, when, and with which verdict."""

from __future__ import annotations

import numpy as np

from sim.events import _iso
from sim.params import (
    DAY,
    HOUR,
    HT_BIT,
    MODERATOR_ACCURACY,
    P_RANDOM,
    P_REACH,
    P_REPEAT,
    P_REPORTED,
    REACH_VIEWS,
    P,
)
from vigil.contracts import HARM_TYPES


class _LabelingMixin:
    """Moderator labels for :class:`sim.world._Sim`."""

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
        delay_h = rng.lognormal(np.log(P.label_delay_hours_median), P.label_delay_log_sd, len(idx))
        delay = (np.clip(delay_h, P.label_delay_hours_min, P.label_delay_hours_max) * HOUR).astype(
            np.int64
        )
        labeled_at = np.where(
            reported,
            np.maximum(a["first_report"][idx] + delay, created + 2 * HOUR),
            created
            + (
                rng.uniform(P.audit_delay_hours_min, P.audit_delay_hours_max, len(idx)) * HOUR
            ).astype(np.int64),
        )
        correct = rng.random(len(idx)) < MODERATOR_ACCURACY
        drop_secondary = rng.random(len(idx)) < P.p_drop_secondary_type
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
                    ["harassment"]
                    if a["mention"][i]
                    else ["hate" if fp_type[j] < P.p_false_positive_hate else "spam"]
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
