"""User reports in the online evaluation's design (issue 22, harm hidden from the models).

Hand-made populations: the inclusion probabilities with and without the reported units taken
with certainty, solved by hand; the Horvitz-Thompson total's mean and variance by enumerating
every sample of a 6-unit population; the defensive views mixture by hand; the label model's
reports terms by hand and against the weighted harmful shares; the harness's hidden harm keeps
the reports the world gave it."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from vigil.errors import UserError
from vigil.evaluation import calibration
from vigil.evaluation.daily import Settings, build_frame, reports_of_day, sample, views_of_day
from vigil.evaluation.sampling import reported, views_mixture

DAY = "2026-10-05"

# Six units. sqrt(score) * (views + 1) = 1, 2, 3, 4 for units 0-3; unit 4 is harm the models do
# not see (score 1e-4: sqrt * 51 = 0.51) that two viewers reported; unit 5 is a removal.
VIEWS = np.array([9, 9, 9, 9, 50, 3])
SCORES = np.array([0.01, 0.04, 0.09, 0.16, 1e-4, 0.5])
REPORTS = np.array([0, 0, 0, 0, 2, 0])
REMOVED = np.array([False, False, False, False, False, True])
HARMFUL = np.array([False, True, False, True, True, True])
BUDGET = 5.0


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "post_id": np.arange(1, 7),
            "views": VIEWS,
            "reports": REPORTS,
            "score_control": SCORES,
            "score_candidate": SCORES / 2,
            "removed_control": REMOVED,
            "removed_candidate": False,
            "prevented_control": 0,
            "prevented_candidate": 0,
        }
    )


def _hand_pi(census: bool) -> np.ndarray:
    if census:
        # units 4 and 5 certain (2 <= budget / 2): pi = 1; 3 labels left for a = 1, 2, 3, 4:
        # c + 2c + 3c + min(1, 4c) = 3 with 4c >= 1 -> c = 1/3
        return np.array([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0])
    # unit 5 certain; 4 left for a = 1, 2, 3, 4, 0.51. Units 1-3 cap at 1 (c * 2 > 1):
    # c (1 + 0.51) + 3 = 4 -> c = 1 / 1.51 (then 2c = 1.32 > 1: the caps hold)
    c = 1 / 1.51
    return np.array([c, 1.0, 1.0, 1.0, 0.51 * c, 1.0])


@pytest.mark.parametrize("reports", ["census", "off"])
def test_reported_units_are_taken_with_certainty_and_the_rest_solved_by_hand(reports):
    s = Settings("a", "b", budget=BUDGET, floor=0.01, reports=reports)
    units = sample(_frame(), s, DAY)  # no label model yet: q = the higher score
    assert units["pi"].to_numpy() == pytest.approx(_hand_pi(reports == "census"), rel=1e-9)
    assert units["pi"].sum() == pytest.approx(BUDGET)


def test_horvitz_thompson_is_unbiased_and_its_variance_exact_by_enumeration():
    y = VIEWS * HARMFUL
    for pi in (
        _hand_pi(True),
        _hand_pi(False),
        views_mixture(_hand_pi(False), VIEWS + 1, BUDGET, 0.3, floor=0.0, certain=REMOVED),
    ):
        mean = second = 0.0
        for drawn in itertools.product([False, True], repeat=len(y)):
            d = np.array(drawn)
            p = float(np.prod(np.where(d, pi, 1 - pi)))
            t = float((y[d] / pi[d]).sum())
            mean += p * t
            second += p * t * t
        assert mean == pytest.approx(y.sum())  # 9 + 9 + 50 + 3 = 71 harmful views
        variance = second - mean**2
        assert variance == pytest.approx(float(((1 - pi) / pi * y**2).sum()), abs=1e-6)
    # the hidden harmful unit (50 views): with the census it adds nothing; without it
    # (1 - pi) / pi * 50^2 with pi = 0.51 / 1.51, plus unit 0's 0 (benign)
    off = _hand_pi(False)
    assert float(((1 - off) / off * y**2).sum()) == pytest.approx((1.51 / 0.51 - 1) * 2500)
    on = _hand_pi(True)
    assert float(((1 - on) / on * y**2).sum()) == pytest.approx((1.5 - 1) * 81)  # unit 1 only


def test_views_mixture_by_hand():
    pi = views_mixture(np.full(4, 0.5), [1, 2, 3, 4], budget=2, share=0.5, floor=0.0)
    # PPS on views: c (1 + 2 + 3 + 4) = 2 -> 0.2, 0.4, 0.6, 0.8; half of each
    assert pi == pytest.approx([0.35, 0.45, 0.55, 0.65])
    assert views_mixture(np.full(4, 0.5), [1, 2, 3, 4], 2, 0.0) == pytest.approx(np.full(4, 0.5))
    with pytest.raises(UserError, match="views share"):
        views_mixture(np.full(4, 0.5), [1, 2, 3, 4], 2, 1.0)


def test_census_of_reported_units_is_the_default_of_the_run_and_off_in_the_harness():
    import argparse

    from sim.online_eval_harness import _parser
    from vigil.evaluation.cli import configure_parser

    assert Settings("a", "b").reports == "census"
    cli = argparse.ArgumentParser()
    configure_parser(cli)
    args = ["run", "--day", DAY, "--control", "a", "--candidate", "b"]
    assert cli.parse_args(args).reports == "census"
    assert cli.parse_args([*args, "--reports", "off"]).reports == "off"
    assert _parser().parse_args([]).reports == "off"  # the harness reproduces the old tables


def test_report_threshold_and_counts_are_checked():
    assert reported([0, 1, 3], 1).tolist() == [False, True, True]
    assert reported([0, 1, 3], 2).tolist() == [False, False, True]
    assert not reported([0, 1, 3], None).any()
    with pytest.raises(UserError, match="report threshold"):
        reported([0, 1], 0)
    with pytest.raises(UserError, match="report counts"):
        reported([0, -1], 1)
    with pytest.raises(UserError, match="reports setting"):
        sample(_frame(), Settings("a", "b", reports="yes"), DAY)


def test_label_model_features_with_reports_by_hand():
    x = calibration.features([[0.5, 0.2], [0.5, 0.2]], [9, 9], reports=[0, 3])
    base = [1.0, 0.0, math.log(0.25), math.log(10), 0.0]
    assert x[0] == pytest.approx([*base, 0.0, math.log(10)])  # unreported: views slope
    assert x[1] == pytest.approx([*base, math.log(4), 0.0])
    assert calibration.features([[0.5, 0.2]], [9]).shape == (1, 5)  # no reports: as before
    assert calibration.prior_coef(2, reports=True) == pytest.approx([0, 0.5, 0.5, 0, 0, 0, 0])


def test_label_model_learns_the_harm_rate_of_reported_units():
    # scores say nothing (0.01 for all), nobody viewed (views 0): only the reports separate.
    # 100 reported units, 80 harmful; 1,000 unreported, 10 harmful; weights 1 / pi.
    n_rep, n_un = 100, 1000
    scores = np.full((n_rep + n_un, 2), 0.01)
    views = np.zeros(n_rep + n_un)
    reports = np.r_[np.ones(n_rep), np.zeros(n_un)]
    labels = np.r_[np.ones(80), np.zeros(20), np.ones(10), np.zeros(n_un - 10)]
    pi = np.ones(n_rep + n_un)
    model = calibration.fit(scores, views, labels, pi, ridge=1e-6, reports=reports)
    assert model.reports and model.as_dict()["reports"] is True
    q = model.predict(scores[[0, -1]], views[[0, -1]], reports[[0, -1]])
    assert q == pytest.approx([0.8, 0.01], abs=1e-3)  # the weighted harmful shares
    without = calibration.fit(scores, views, labels, pi, ridge=1e-6)
    assert without.predict(scores[[0, -1]], views[[0, -1]]) == pytest.approx([90 / 1100] * 2)
    with pytest.raises(ValueError, match="report counts"):
        model.predict(scores[:1], views[:1])


def test_the_days_reports_come_from_the_lake_and_reach_the_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    rows = [
        {"action": a, "post_id": p, "event_ts": pd.Timestamp(f"{DAY}T{h:02d}:30", tz="UTC")}
        for a, p, n in (
            ("view", 1, 5),
            ("view", 2, 5),
            ("view", 3, 2),
            ("report", 2, 2),
            ("report", 9, 1),
        )
        for h in range(n)
    ]
    lake = tmp_path / "lake" / "events" / f"dt={DAY}"
    lake.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(lake / "events.parquet")
    assert reports_of_day(DAY).to_dict() == {2: 2, 9: 1}
    decisions = pd.DataFrame(
        {
            "post_id": [1, 2, 3],
            "decided_at": pd.Timestamp(f"{DAY}T00:00", tz="UTC"),
            "model_id": ["a", "a", "a"],
            "probability": [0.25, 1e-4, 0.25],
            "decision": "allow",
            "trigger": "request",
        }
    )
    s = Settings("a", "b", budget=2.2, floor=0.01, reports="census")
    frame = build_frame(views_of_day(DAY), decisions, s, reports=reports_of_day(DAY))
    assert frame.set_index("post_id")["reports"].to_dict() == {1: 0, 2: 2, 3: 0}  # 9: no views
    units = sample(frame, s, DAY).set_index("post_id")
    # post 2 (score 1e-4, reported twice) is taken with certainty (1 <= 2.2 / 2); posts 1 and 3
    # share the 1.2 left by sqrt(0.25) (views + 1) = 3 and 1.5: c = 1.2 / 4.5
    assert units["pi"].to_dict() == pytest.approx({1: 0.8, 2: 1.0, 3: 0.4})
    assert units.loc[2, "drawn"]


def test_hidden_harm_keeps_the_reports_the_world_gave_it():
    from sim.online_eval_harness import synthetic_day

    pool = pd.DataFrame(
        {
            "post_id": np.arange(200),
            "day": "2026-10-01",
            "views": np.arange(200) % 7,
            "reports": np.arange(200) % 3,
            "is_harmful": np.arange(200) % 4 == 0,
        }
    )
    everyone_hides = {"control": (2.0, 1.0), "candidate": (2.0, 1.0)}
    days = [
        synthetic_day(
            pool,
            300,
            0.25,
            np.random.default_rng(5),
            everyone_hides,
            evader_reports=share,
            report_rng=np.random.default_rng(6),
        )
        for share in (1.0, 0.0)
    ]
    kept, thinned = days
    assert (kept["reports"] == kept["post_id"] % 3).all()  # the pool's own reports
    harmful = kept["is_harmful"]
    assert (thinned.loc[harmful, "reports"] == 0).all() and kept.loc[harmful, "reports"].sum() > 0
    assert (thinned.loc[~harmful, "reports"] == kept.loc[~harmful, "reports"]).all()
    # the thinning uses its own generator: the days are otherwise the same
    assert (thinned["score_control"] == kept["score_control"]).all()


def test_online_eval_run_draws_the_reported_post_and_saves_its_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_REVIEW_ANSWERER", "sim.moderators:answer")
    # three posts seen on the day; post 2 is scored ~0 by both models but reported twice
    views = {1: 5, 2: 5, 3: 2}
    rows = [
        {"action": a, "post_id": p, "event_ts": pd.Timestamp(f"{DAY}T{h:02d}:30", tz="UTC")}
        for a, counts in (("view", views), ("report", {2: 2}))
        for p, n in counts.items()
        for h in range(n)
    ]
    lake = tmp_path / "lake" / "events" / f"dt={DAY}"
    lake.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(lake / "events.parquet")
    log = tmp_path / "decisions" / f"dt={DAY}"
    log.mkdir(parents=True)
    (log / "decisions-1.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "post_id": p,
                    "decided_at": f"{DAY}T00:00:00+00:00",
                    "model_id": m,
                    "probability": prob,
                    "decision": "allow",
                    "trigger": "request",
                }
            )
            + "\n"
            for p, prob in ((1, 0.25), (2, 1e-4), (3, 0.25))
            for m in ("a", "b")
        )
    )
    truth = tmp_path / "raw" / "_truth"
    truth.mkdir(parents=True)
    (truth / "posts.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "post_id": p,
                    "author_id": 100 + p,
                    "created_at": f"{DAY}T00:00:00Z",
                    "is_harmful": p == 2,
                    "harm_types": ["hate"] if p == 2 else [],
                }
            )
            + "\n"
            for p in (1, 2, 3)
        )
    )
    from vigil.evaluation.daily import run

    report = run(DAY, "a", "b", budget=2.2, floor=0.01, reports="census")
    assert report["settings"]["reports"] == "census"
    folder = tmp_path / "reports" / "online_eval" / f"day={DAY}"
    units = pd.read_parquet(folder / "sample.parquet").set_index("post_id")
    assert units["reports"].to_dict() == {1: 0, 2: 2, 3: 0}
    assert units["pi"].to_dict() == pytest.approx({1: 0.8, 2: 1.0, 3: 0.4})
    assert units.loc[2, "drawn"]
    requests = pd.read_parquet(tmp_path / "review" / "requests" / "online_eval.parquet")
    assert 2 in set(requests["post_id"])
