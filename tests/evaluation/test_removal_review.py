"""Second review of the removals' benign labels (``--review-removals``, issue 22).

The arms' precision and harmful views prevented are sums over the removals, a census: one false
benign on a harmful removal moves them outside their interval. A hand-made sample whose removals'
first verdicts we script (some benign by mistake), the rounds it asks, the labels it keeps, the
precision, prevented views and their intervals computed by hand; the label model's history keeps
the removals' first benign verdicts; the label-error rates by hand; the same through ``vigil
online-eval run``'s day (a census day) and its rerun, which asks nothing new."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.evaluation.test_double_review import DAY, QUEUE, R2, R3, Moderators, _world
from vigil.errors import UserError
from vigil.evaluation import calibration, daily, double_review

# Drawn units: post -> (views, pi, removed by control, removed by candidate, prevented c, k)
UNITS = {
    21: (10, 0.5, True, False, 6, 0),  # removal, first benign (false), 2nd harmful, 3rd harmful
    22: (4, 0.5, True, True, 2, 3),  # removal, first benign (true), 2nd benign: stays benign
    23: (8, 0.5, False, True, 0, 5),  # removal, first harmful: not re-reviewed under "benign"
    24: (6, 0.5, True, False, 4, 0),  # removal, first benign, 2nd harmful, 3rd benign: benign
    25: (50, 0.5, False, False, 0, 0),  # weight 100 > 30, first harmful, 2nd harmful
    26: (3, 0.5, False, False, 0, 0),  # not a removal, first benign: never re-reviewed
}
FIRST = {21: False, 22: False, 23: True, 24: False, 25: True, 26: False}
SCRIPT = {R2: {21: True, 22: False, 24: True, 25: True, 23: True}, R3: {21: True, 24: False}}


def _units() -> pd.DataFrame:
    rows = [
        {
            "post_id": p,
            "views": v,
            "pi": pi,
            "drawn": True,
            "q": 0.5,
            "removed_control": rc,
            "removed_candidate": rk,
            "prevented_control": pc,
            "prevented_candidate": pk,
        }
        for p, (v, pi, rc, rk, pc, pk) in UNITS.items()
    ]
    frame = pd.DataFrame(rows)
    frame["score_control"] = frame["score_candidate"] = 0.5
    return frame


def test_benign_removals_are_reviewed_again_and_the_majority_wins(tmp_path):
    units = _units()
    mods = Moderators(SCRIPT)
    first = pd.Series(FIRST)
    labels, counts = double_review.adjudicate(
        units, first, 30, tmp_path, QUEUE, mods, removals="benign"
    )
    # second review: the removals labeled benign (21, 22, 24) and the heavy harmful label (25);
    # third: where the second disagrees with the first (21, 24)
    assert mods.calls == [(R2, [21, 22, 24, 25]), (R3, [21, 24])]
    assert labels.to_dict() == {21: True, 22: False, 23: True, 24: False, 25: True, 26: False}
    assert counts == {
        "threshold": 30,
        "removals": "benign",
        "eligible_harmful": 1,
        "eligible_removals": 3,
        "second": 4,
        "second_pending": 0,
        "second_disagree": 2,
        "third": 2,
        "third_pending": 0,
        "overturned": 1,
    }
    # the files give the same majority; the label model keeps the removals' benign first verdicts
    final = double_review.final_labels(first, tmp_path, QUEUE)
    assert final.to_dict() == labels.to_dict()
    history = double_review.history_labels(first, final)
    assert history.to_dict() == {21: False, 22: False, 23: True, 24: False, 25: True, 26: False}

    # the estimates by hand, all pi = 0.5 (weight 2), the label model's q = 0.5 everywhere
    got = daily.estimates(units, labels, daily.Settings("c", "k", arm_variance="sample"))
    # control removes 21, 22, 24: harmful 21 -> precision 1/3; Hajek variance
    # sum (1 - pi)/pi^2 (y - R z)^2 / (sum z/pi)^2 = 2 [(2/3)^2 + 2 (1/3)^2] / 6^2
    c = got["control"]["precision"]
    assert c["estimate"] == pytest.approx(1 / 3)
    assert c["se"] == pytest.approx(math.sqrt(2 * (4 / 9 + 2 / 9) / 36))
    # candidate removes 22, 23: harmful 23 -> 1/2, variance 2 (1/4 + 1/4) / 4^2
    k = got["candidate"]["precision"]
    assert k["estimate"] == pytest.approx(0.5) and k["se"] == pytest.approx(math.sqrt(1 / 16))
    # prevented: control 6 (21) x 2 = 12, variance 2 * 36 = 72; candidate 5 (23) x 2 = 10, 2 * 25
    pv = got["control"]["harmful_views_prevented"]
    assert pv["estimate"] == pytest.approx(12) and pv["se"] == pytest.approx(math.sqrt(72))
    assert pv["low"] == pytest.approx(12 - 1.959963984540054 * math.sqrt(72))
    assert got["candidate"]["harmful_views_prevented"]["estimate"] == pytest.approx(10)

    # the default: the label model's expected variance over every removal (all drawn here),
    # sum z (1 - pi)/pi (q (1 - 2R) + R^2) / (sum z)^2 and sum (1 - pi)/pi prevented^2 q
    exp = daily.estimates(units, labels, daily.Settings("c", "k"))
    c, k = exp["control"], exp["candidate"]
    assert c["precision"]["estimate"] == pytest.approx(1 / 3)
    assert c["precision"]["se"] == pytest.approx(math.sqrt(3 * (0.5 / 3 + 1 / 9) / 9))  # 5/54
    assert k["precision"]["se"] == pytest.approx(math.sqrt(2 * 0.25 / 4))  # R = 1/2: q*0 + 1/4
    assert c["harmful_views_prevented"]["se"] == pytest.approx(math.sqrt((36 + 4 + 16) * 0.5))
    assert k["harmful_views_prevented"]["se"] == pytest.approx(math.sqrt((9 + 25) * 0.5))
    assert c["precision_sample_variance"] == got["control"]["precision"]
    assert c["harmful_views_prevented_sample_variance"]["se"] == pytest.approx(math.sqrt(72))
    # single review: control precision 0 (21 missed) and nothing prevented
    single = daily.estimates(units, first, daily.Settings("c", "k"))
    assert single["control"]["precision"]["estimate"] == 0.0
    assert single["control"]["harmful_views_prevented"]["estimate"] == 0.0


def test_an_unknown_removals_setting_is_one_clear_error():
    units = _units()
    first = pd.Series(FIRST)
    mods = Moderators(SCRIPT)
    with pytest.raises(UserError, match="benign"):
        double_review.adjudicate(units, first, 30, Path("unused"), QUEUE, mods, removals="some")
    assert mods.calls == []


def test_all_removals_reviewed(tmp_path):
    units = _units()
    mods = Moderators(SCRIPT)
    labels, counts = double_review.adjudicate(
        units, pd.Series(FIRST), None, tmp_path, QUEUE, mods, removals="all"
    )
    # every removal (21, 22, 23, 24) whatever its first verdict; 25 is heavy but W is off
    assert mods.calls == [(R2, [21, 22, 23, 24]), (R3, [21, 24])]
    assert counts["eligible_harmful"] == 0 and counts["eligible_removals"] == 4
    assert labels.loc[23] and labels.loc[21] and not labels.loc[24]


def test_error_rates_when_benign_verdicts_are_reviewed_again_by_hand():
    e = 0.1
    # benign first verdict reviewed again only: harmful label = p + (1 - p) p^2
    fpr, tpr = calibration.error_rates(e, [False], [True])
    assert fpr[0] == pytest.approx(0.1 + 0.9 * 0.01)  # 0.109
    assert tpr[0] == pytest.approx(0.9 + 0.1 * 0.81)  # 0.981
    # both directions: the majority of three, 3 p^2 - 2 p^3 wrong
    fpr, tpr = calibration.error_rates(e, [True], [True])
    assert fpr[0] == pytest.approx(3 * 0.01 - 2 * 0.001)
    assert tpr[0] == pytest.approx(1 - (3 * 0.01 - 2 * 0.001))
    # harmful only: as before, e^2 (2 - e) and (1 - e)^2 (1 + e)
    fpr, tpr = calibration.error_rates(e, [True], [False])
    assert (fpr[0], tpr[0]) == pytest.approx((0.019, 0.891))
    assert calibration.corrected_labels([1.0], e, [False], [True])[0] == pytest.approx(
        (1 - 0.109) / (0.981 - 0.109)
    )


def test_a_census_day_reviews_its_benign_removals_and_a_rerun_asks_nothing_new(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    _world(tmp_path)
    # census (6 units, budget 100: pi = 1). Control removes 3 (no views), the candidate removes 1
    # at 01:00 (views at 00:30 .. 09:30: 9 prevented). First verdicts: 1 benign (false).
    mods = Moderators(
        {
            QUEUE: {1: False, 2: False, 3: True, 4: True, 5: False, 6: False},
            R2: {1: True},
            R3: {1: True},
        }
    )
    monkeypatch.setattr("vigil.review.files.load_answerer", lambda spec=None: mods)
    report = daily.run(DAY, "m-control", "m-cand", budget=100)  # the defaults: W 30, benign
    assert [q for q, _ in mods.calls] == [QUEUE, R2, R3]
    assert mods.calls[1][1] == [1] and mods.calls[2][1] == [1]
    assert report["reviews"]["first"] == 6 and report["reviews"]["labels_used"] == 8
    assert report["reviews"]["double_review"]["eligible_removals"] == 1
    cand = report["candidate"]
    assert cand["precision"]["estimate"] == 1.0 and cand["precision"]["se"] == 0.0
    assert cand["harmful_views_prevented"]["estimate"] == pytest.approx(9)
    # prevalence: harmful views 10 (1) + 20 (4) of 37
    assert report["prevalence"]["estimate"] == pytest.approx(30 / 37)
    md = (tmp_path / "reports" / "online_eval" / f"day={DAY}" / "report.md").read_text()
    assert "Labels used: 8" in md and "removals' labels (benign): 1 units" in md

    requests = sorted((tmp_path / "review").rglob("requests/*.parquet"))
    before = {p: len(pd.read_parquet(p)) for p in requests}
    again = daily.run(DAY, "m-control", "m-cand", budget=100)
    assert len(mods.calls) == 3  # nobody was asked anything new
    assert {p: len(pd.read_parquet(p)) for p in requests} == before
    assert again["candidate"] == report["candidate"] and again["reviews"] == report["reviews"]

    # off: the first verdict stands (precision 0, nothing prevented), nothing new asked
    off = daily.run(DAY, "m-control", "m-cand", budget=100, review_removals="off")
    assert off["candidate"]["precision"]["estimate"] == 0.0
    assert off["candidate"]["harmful_views_prevented"]["estimate"] == 0.0
    assert len(mods.calls) == 3
    assert daily.Settings("c", "k").review_removals == "benign"
    assert np.isfinite(report["prevalence"]["se"])


def test_the_cli_option_defaults_to_benign():
    import argparse

    from vigil.evaluation.cli import configure_parser

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    base = ["run", "--day", DAY, "--control", "a", "--candidate", "b"]
    assert parser.parse_args(base).review_removals == "benign"
    assert parser.parse_args([*base, "--review-removals", "off"]).review_removals == "off"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--review-removals", "some"])


def test_the_expected_variance_of_the_arms_counts_undrawn_removals_by_hand():
    from vigil.evaluation import estimators as est

    # four removals, pi 1, 0.5, 0.5, 0.25, label model q 0.9, 0.8, 0.5, 0.2; R = 0.75 given:
    # (1 - pi)/pi (q (1 - 2R) + R^2) = 0, 0.1625, 0.3125, 3 x 0.4625 -> 1.8625 / 4^2
    ratio = est.Estimate(0.75, 0.0, 0.75, 0.75, 2)
    got = est.ratio_expected_variance(
        ratio, [1, 1, 1, 1, 0], [1, 0.5, 0.5, 0.25, 0.1], [0.9, 0.8, 0.5, 0.2, 0.9]
    )
    assert got.se == pytest.approx(math.sqrt(1.8625 / 16))
    assert got.low == pytest.approx(0.75 - 1.959963984540054 * math.sqrt(1.8625 / 16))
    assert got.high == 1.0  # clipped to a share
    # prevented views 10, 0, 4, 2 (and a non-removal with 0): (1 - pi)/pi v^2 q = 0 + 0 + 8 + 2.4
    total = est.Estimate(12.0, 0.0, 12.0, 12.0, 2)
    got = est.total_expected_variance(
        total, [10, 0, 4, 2, 0], [1, 0.5, 0.5, 0.25, 0.1], [0.9, 0.8, 0.5, 0.2, 0.9]
    )
    assert got.se == pytest.approx(math.sqrt(8 + 2.4)) and got.estimate == 12.0
