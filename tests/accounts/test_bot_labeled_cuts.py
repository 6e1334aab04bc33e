"""The bot guardrail's ``labeled_cuts`` option on hand-made rows (vigil.accounts.bots): the
threshold may only sit on a score level where validation holds a labeled account."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.accounts import bots


def test_unlabeled_plateau_is_not_flagged_on_the_label_frequency_credit():
    # two labeled rows on top, two unlabeled below; label frequency c = 0.5: each label stands for
    # two bots, so the estimated true positives are min(cumsum(y) / c, flagged) = 1, 2, 3, 4 and
    # the estimated precision is 1 at every cut: the plain rule flags all four rows
    y, s, w = np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.7, 0.6]), np.ones(4)
    assert bots.threshold_for_precision(y, s, w, 0.95, 0.5) == (0.6, 1.0, 1.0)
    # with labeled cuts the lowest cut is the last labeled score, 0.8: 2 estimated bots of 2
    # flagged, of 4 estimated bots (2 / 0.5) in all -> recall 0.5
    assert bots.threshold_for_precision(y, s, w, 0.95, 0.5, labeled_cuts=True) == (0.8, 1.0, 0.5)


def test_a_tie_group_with_a_label_is_a_valid_cut():
    # scores 0.9 (labeled), 0.5 (labeled), 0.5 (unlabeled), 0.4 (unlabeled); target 0.6, c = 1
    # cut at 0.5 flags three rows, 2 labeled: precision 2/3 >= 0.6, recall 2/2; at 0.4 2/4 < 0.6.
    # The group's last row (stable sort) is the unlabeled one: the group, not the row, counts
    y, s, w = np.array([1, 1, 0, 0]), np.array([0.9, 0.5, 0.5, 0.4]), np.ones(4)
    t, p, r = bots.threshold_for_precision(y, s, w, 0.6, 1.0, labeled_cuts=True)
    assert (t, round(p, 6), r) == (0.5, round(2 / 3, 6), 1.0)
    # weights: the unlabeled 0.4 row weighs 0 -> the cut at 0.4 has precision 2/3 too, but its
    # group holds no label, so 0.5 stays; without the option 0.4 is taken
    w0 = np.array([1.0, 1.0, 1.0, 0.0])
    assert bots.threshold_for_precision(y, s, w0, 0.6, 1.0)[0] == 0.4
    assert bots.threshold_for_precision(y, s, w0, 0.6, 1.0, labeled_cuts=True)[0] == 0.5


def test_no_label_no_threshold():
    y, s, w = np.zeros(3, int), np.array([0.9, 0.5, 0.1]), np.ones(3)
    t, p, r = bots.threshold_for_precision(y, s, w, 0.95, 1.0, labeled_cuts=True)
    assert t == float("inf") and np.isnan(p) and r == 0.0


def test_guardrail_applies_labeled_cuts_to_the_young_rows_too():
    T = pd.Timestamp("2026-10-14", tz="UTC")
    # rows: old labeled 0.9, young labeled 0.8, young unlabeled 0.3, young unlabeled 0.2, old
    # unlabeled 0.1 (no events: never flagged, not read); c = 0.5, target 0.95
    va = pd.DataFrame(
        {
            "event_timestamp": [T] * 5,
            "account_age_days": [30.0, 1.0, 2.0, 1.0, 30.0],
            "events_7d": [5, 3, 2, 1, 0],
        }
    )
    y, prob, w = np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.3, 0.2, 0.1]), np.ones(5)
    # plain: all four readable rows: est. TP min(2 / 0.5, n) = n -> every cut has precision 1 ->
    # 0.2 on all rows; young rows (0.8, 0.3, 0.2): min(1 / 0.5, n) -> 1, 2, 2 of 1, 2, 3 ->
    # precision 1, 1, 2/3 -> 0.3; the stricter: 0.3
    plain = bots._guardrail(va, y, prob, w, 0.5, bots.BotConfig())
    assert plain[0] == 0.3 and plain[3] == 0.3
    # labeled cuts: all rows -> 0.8 (last labeled score), young rows -> 0.8
    cut = bots._guardrail(va, y, prob, w, 0.5, bots.BotConfig(labeled_cuts=True))
    assert cut[0] == 0.8 and cut[3] == 0.8
    # at 0.8: 2 flagged, est. TP min(2 / 0.5, 2) = 2 -> precision 1; recall 2 / min(4, 4) = 0.5
    assert cut[1:3] == (1.0, 0.5)
