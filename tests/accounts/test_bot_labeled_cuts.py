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


# -- low_evidence_events: a separate calibration for rows with few events -------------------------
def _rows():
    # validation rows: raw score, label, events in the window. Busy rows (>= 3 events): raw 0.2,
    # 0.4 unlabeled, 0.6, 0.8 labeled. Low-evidence rows (< 3 events): raw 0.3, 0.6 unlabeled,
    # 0.9 labeled
    raw = np.array([0.2, 0.4, 0.6, 0.8, 0.3, 0.6, 0.9])
    y = np.array([0, 0, 1, 1, 0, 0, 1])
    events = np.array([5, 5, 5, 5, 1, 2, 2])
    return raw, y, events


def test_one_calibration_pools_the_busy_and_the_quiet_rows():
    raw, y, _events = _rows()
    _iso, iso_low, cal = bots.fit_calibration(raw, y, np.ones(7), np.zeros(7, bool))
    assert iso_low is None
    # sorted by raw: 0.2:0, 0.3:0, 0.4:0, 0.6:{1, 0} (ties averaged: 0.5), 0.8:1, 0.9:1 -> already
    # non-decreasing, so the isotonic fit is those means
    assert cal.tolist() == [0.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0]


def test_low_evidence_rows_get_their_own_calibration():
    raw, y, events = _rows()
    low = events < 3
    iso, iso_low, cal = bots.fit_calibration(raw, y, np.ones(7), low)
    # busy: 0.2:0, 0.4:0, 0.6:1, 0.8:1; quiet: 0.3:0, 0.6:0, 0.9:1 -> the same raw 0.6 is 1 for a
    # busy row and 0 for a quiet one
    assert cal.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    # between knots the isotonic fit interpolates: busy 0.5 -> halfway 0.4:0 .. 0.6:1 = 0.5;
    # quiet 0.75 -> halfway 0.6:0 .. 0.9:1 = 0.5
    assert iso.predict([0.5]).tolist() == [0.5]
    assert iso_low.predict([0.75]).tolist() == [0.5]


def test_score_uses_the_low_evidence_calibrator_by_row():
    raw, y, events = _rows()
    iso, iso_low, _ = bots.fit_calibration(raw, y, np.ones(7), events < 3)
    bundle = {
        "model": _Column(),
        "calibrator": iso,
        "calibrator_low": iso_low,
        "columns": ["x"],
        "threshold": 0.5,
        "label_frequency": 0.8,
        "config": {"min_events": 1, "low_evidence_events": 3},
    }
    feats = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "event_timestamp": pd.Timestamp("2026-10-02", tz="UTC"),
            "x": [0.6, 0.6, 0.75, 0.5],
            "events_7d": [4, 2, 1, 3],
        }
    )
    users = pd.DataFrame(
        {"user_id": [1, 2, 3, 4], "handle": ["ab", "cd", "ef", "gh"], "home_country": "US"}
    )
    out = bots.score(bundle, feats, users)
    # P(bot) = min(1, cal / 0.8): busy 0.6 -> 1 / 0.8 -> 1; quiet 0.6 -> 0; quiet 0.75 -> 0.5 /
    # 0.8 = 0.625; busy 0.5 -> 0.625 (3 events is not low evidence)
    assert out["bot_score"].tolist() == [1.0, 0.0, 0.625, 0.625]
    assert out["is_flagged"].tolist() == [1, 0, 1, 1]
    # without the low-evidence calibrator every row reads the busy one: the quiet 0.6 -> 1
    bundle["calibrator_low"] = None
    assert bots.score(bundle, feats, users)["bot_score"].tolist() == [1.0, 1.0, 1.0, 0.625]


class _Column:
    """A 'model' whose P(positive) is the first input column."""

    def predict_proba(self, x):
        return np.c_[1 - x[:, 0], x[:, 0]]


def test_train_command_passes_the_options(monkeypatch, capsys):
    import argparse

    from vigil.accounts import bots_cli

    seen = {}

    def fake_train(cfg):
        seen["cfg"] = cfg
        return {"path": "x", "seconds": 0.0, "metrics": {}}

    monkeypatch.setattr(bots, "train", fake_train)
    ap = argparse.ArgumentParser()
    bots_cli.add_parsers(ap.add_subparsers(dest="action"))
    args = ap.parse_args(["train", "--labeled-cuts", "--low-evidence-events", "3"])
    assert bots_cli.run(args) == 0
    assert seen["cfg"].labeled_cuts is True and seen["cfg"].low_evidence_events == 3
    bots_cli.run(ap.parse_args(["train"]))
    assert seen["cfg"].labeled_cuts is False and seen["cfg"].low_evidence_events == 0
