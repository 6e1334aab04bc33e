"""Grading the online evaluation's importance sample against the truth (issue 22).

Simulated days are BOOTSTRAP DAYS of a simulated world with the default parameters: the units
(a post's views on one day, with its truth) of ``vigil simulate`` are pooled and each simulated day
resamples as many units, with replacement, as an average day holds. The joint distribution of
views and harm is the world's own; the two models' scores are synthetic and calibrated, set to
the champions' published quality (docs/benchmarks.md, "Model quality", seed 7: recall at 95%
precision 0.79 for the baseline = control, 0.92 for the multi-task net = candidate). A benign
post's signal x ~ N(0, 1), a harmful one's x ~ N(d, 1) (control d = 4.8, candidate d = 5.5: those
recalls at the pool's prevalence), and the score is the exact posterior P(harmful | x). The
``--evasion`` scenarios add harm the models cannot see: a harmful post evades the control with
probability e and the candidate with e / 2 (nested), its x then ~ N(0, 1) like a benign post's,
and the posterior accounts for it (likelihood ratio (1 - e) exp(d x - d^2/2) + e). Both models
remove at 0.8. A removal stops a uniform share of the post's later views (``prevented``).

Each day: inclusion probabilities from :mod:`vigil.evaluation.sampling` (budget 300), a Poisson
draw, labels from the truth (``--moderator-accuracy`` < 1 flips labels as the simulated
moderators do; ``--double-review W`` gives every drawn harmful label of weight views / pi > W a
second independent verdict and a third on disagreement, the majority wins, as ``vigil online-eval
run --double-review W`` does; the extra verdicts come from their own generator so the days and
the first verdicts are those of the run without it; ``--review-removals benign|all`` re-reviews
the drawn removals' benign verdicts, or all of theirs, the same way, as ``vigil online-eval run
--review-removals`` does: these enter the estimates but not the label model, ``--removal-labels``),
the estimators of :mod:`vigil.evaluation.estimators`. Over the days: coverage of
the 95% intervals of the true prevalence, precision and harmful views prevented; the relative
standard error (design RSE sqrt(sum_U (1-pi)/pi y^2) / T, exact for the day); the uniform sample
size with the same RSE and the ratio to the budget.

``python -m sim.online_eval_harness --days 100 --seeds 1 2 3``
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sim import truth as sim_truth
from vigil.evaluation import calibration
from vigil.evaluation import estimators as est
from vigil.evaluation.cli import add_label_model_options, add_reports_option
from vigil.evaluation.sampling import (
    LOW,
    inclusion_probabilities,
    reported,
    stratified_probabilities,
    views_mixture,
)

log = logging.getLogger(__name__)

TARGETS = {
    "prevalence_coverage": ("within", (0.93, 0.97)),
    "prevalence_rse": ("<=", 0.15),
    "uniform_over_budget": (">=", 4.0),
}
MODELS = {"control": (4.8, 0.0), "candidate": (5.5, 0.0)}  # (d, evasion share)
THRESHOLD = 0.8


def impression_pool(raw_dir: Path) -> pd.DataFrame:
    """One row per (post, day) with views that day (and each post on its creation day, views 0
    when nobody saw it then): post_id, day, views, reports (the post's user reports that day: the
    world's viewers and mentioned users report harm whatever a model scores), is_harmful,
    obfuscated (the world's harmful posts written to dodge text models)."""
    import duckdb

    files = str(Path(raw_dir) / "events" / "dt=*" / "*.jsonl")
    counts = duckdb.sql(
        f"""select post_id, strftime(try_cast(event_ts as timestamp), '%Y-%m-%d') as day,
                   count(*) filter (where action = 'view') as views,
                   count(*) filter (where action = 'report') as reports
            from read_json_auto('{files}', format='newline_delimited', ignore_errors=true,
                                columns={{'event_ts': 'VARCHAR', 'action': 'VARCHAR',
                                          'post_id': 'BIGINT'}})
            where action in ('view', 'report') and post_id is not null
                  and try_cast(event_ts as timestamp) is not null
            group by all"""
    ).df()
    truth = sim_truth.posts(raw_dir)
    created = truth[["post_id", "day"]].assign(views=0, reports=0)
    units = (
        pd.concat([counts, created])
        .groupby(["post_id", "day"], as_index=False)[["views", "reports"]]
        .max()
    )
    first = truth.drop_duplicates("post_id").set_index("post_id")
    units = units[units["day"].isin(set(truth["day"]))]  # late and garbled lines fall outside
    units["is_harmful"] = units["post_id"].map(first["is_harmful"])
    obfuscated = first["obfuscated"] if "obfuscated" in first else pd.Series(False, first.index)
    units["obfuscated"] = units["post_id"].map(obfuscated.astype(bool)).eq(True)
    units = units.dropna(subset=["is_harmful"]).astype(
        {"is_harmful": bool, "views": "int64", "reports": "int64"}
    )
    return units.reset_index(drop=True)


def calibrated_scores(
    harmful: np.ndarray,
    evades: np.ndarray,
    d: float,
    e: float,
    prior: float,
    rng,
    shared: np.ndarray | None = None,
    correlation: float = 0.0,
    blind: bool = False,
    return_signal: bool = False,
):
    """P(harmful | x) for x ~ N(0, 1) (benign or evading) or N(d, 1) (other harmful): the
    likelihood ratio is (1 - e) exp(d x - d^2 / 2) + e, calibrated by construction. ``shared``
    noise (weight sqrt(correlation)) correlates the models' signals (each stays N(., 1));
    ``blind``: the model does not know what it misses (likelihood ratio exp(d x - d^2 / 2), so
    its scores are too low wherever evading harm hides). ``return_signal``: (score, x)."""
    noise = rng.normal(0.0, 1.0, len(harmful))
    if shared is not None and correlation > 0:
        noise = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * noise
    x = np.where(harmful & ~evades, d, 0.0) + noise
    e_known = 0.0 if blind else e
    odds = prior / (1 - prior) * ((1 - e_known) * np.exp(d * x - d * d / 2) + e_known)
    return (odds / (1 + odds), x) if return_signal else odds / (1 + odds)


def synthetic_day(
    pool: pd.DataFrame,
    n_units: int,
    prior: float,
    rng,
    models: dict | None = None,
    correlation: float = 0.0,
    blind: bool = False,
    evader_reports: float = 1.0,
    report_rng=None,
) -> pd.DataFrame:
    """A bootstrap day with both models' scores, removals and prevented views. A unit keeps the
    user reports the world gave it (``reports``): the posts that evade the models are drawn among
    the harmful ones whatever their reports, so hidden harm is reported as the world's harm is
    (the world's obfuscated posts are too); ``evader_reports`` < 1 keeps only that share of an
    evading post's reports (binomial thinning, a sensitivity check: harm that hides from viewers
    too). The thinning draws come from their own generator, so the days are otherwise the same."""
    day = pool.iloc[rng.integers(0, len(pool), n_units)].reset_index(drop=True)
    h = day["is_harmful"].to_numpy()
    views = day["views"].to_numpy()
    u = rng.random(n_units)
    if "reports" not in day:
        day["reports"] = 0
    if evader_reports < 1:
        hidden = h & (u < max(e for _, e in (models or MODELS).values()))
        kept = report_rng.binomial(day["reports"].to_numpy(), evader_reports)
        day["reports"] = np.where(hidden, kept, day["reports"].to_numpy())
    shared = rng.normal(0.0, 1.0, n_units) if correlation > 0 else None
    for arm, (d, e) in (models or MODELS).items():
        score, x = calibrated_scores(
            h, u < e, d, e, prior, rng, shared, correlation, blind, return_signal=True
        )
        removed = score >= THRESHOLD
        day[f"score_{arm}"] = score
        day[f"signal_{arm}"] = x  # for the oracle only (never seen by the designs)
        day[f"removed_{arm}"] = removed
        day[f"prevented_{arm}"] = np.where(removed, rng.binomial(views, rng.random(n_units)), 0)
    return day


# --- The oracle: the best importance sample of a given size (task: is RSE <= 15% reachable?) ---
#
# For the HT total of y_i = views_i h_i under Poisson sampling the variance is
# sum (1 - pi)/pi y^2; its expectation given what is known before labeling (both models' signals
# and the views) is sum (1 - pi)/pi views^2 P_i with P_i = P(h_i | signals, views). Minimized at a
# fixed expected size sum pi = n (Lagrange; Neyman/optimal PPS allocation): pi_i = min(1, c
# sqrt(E[y_i^2])) = min(1, c views_i sqrt(P_i)). With the TRUE conditional P this is a lower
# bound on the variance of any Poisson sample of that size that sees only the scores and views
# (any label model, exponent, floor).


def true_posterior(
    signals: np.ndarray, prior_by_unit: np.ndarray, models: dict, correlation: float = 0.0
) -> np.ndarray:
    """P(harmful | both models' signals, views) in the harness's world: benign signals ~ N((0, 0),
    S), harmful ones ~ N((d_c, d_k), S) except the evading ones (nested: one uniform u, an arm
    misses the post when u < its evasion share; its mean is then 0), S = [[1, rho], [rho, 1]].
    ``signals``: (n, 2) control, candidate; ``prior_by_unit``: P(harmful | views) per unit."""
    x = np.asarray(signals, dtype=float)
    (d1, e1), (d2, e2) = models["control"], models["candidate"]
    inv = np.linalg.inv(np.array([[1.0, correlation], [correlation, 1.0]]))
    lo, hi = sorted((e1, e2))
    # mixture components of the harmful signal: (weight, mean)
    comps = [
        (lo, (0.0, 0.0)),
        (hi - lo, (0.0, d2) if e1 >= e2 else (d1, 0.0)),
        (1.0 - hi, (d1, d2)),
    ]
    lr = np.zeros(len(x))
    for weight, mean in comps:
        if weight <= 0:
            continue
        m = np.asarray(mean)
        lr += weight * np.exp(x @ (inv @ m) - 0.5 * m @ inv @ m)
    p = np.asarray(prior_by_unit, dtype=float)
    # a view count at which every pool unit is harmful (p = 1) or none is (p = 0) decides alone
    return np.where(p >= 1, 1.0, p * lr / (p * lr + (1 - p)))


def prior_by_views(pool: pd.DataFrame) -> pd.Series:
    """P(harmful | views) of a bootstrap day's unit: the pool's harmful share at each view count
    (a bootstrap day draws from the pool, so this is the true conditional, not an estimate)."""
    return pool.groupby("views")["is_harmful"].mean()


def optimal_probabilities(views, p_harm, budget: float) -> np.ndarray:
    """pi_i = min(1, c views_i sqrt(p_i)), sum pi = budget: the minimum-variance Poisson design
    for the HT total of views * harmful (0 for units with no views: their y is 0)."""
    pi, _ = inclusion_probabilities(p_harm, views, budget, floor=0.0, exponent=0.5)
    return pi


def design_variance(pi, y) -> float:
    """sum (1 - pi)/pi y^2 (units with y = 0 add nothing, whatever their pi)."""
    pi, y = np.asarray(pi, dtype=float), np.asarray(y, dtype=float)
    hit = y != 0
    if (pi[hit] <= 0).any():
        return math.inf
    return float(((1 - pi[hit]) / pi[hit] * y[hit] ** 2).sum())


def expected_design_variance(pi, views, p_harm) -> float:
    """E[sum (1 - pi)/pi y^2] = sum (1 - pi)/pi views^2 P (units with no views add nothing)."""
    pi, v, p = (np.asarray(a, dtype=float) for a in (pi, views, p_harm))
    hit = (v != 0) & (p > 0)
    if (pi[hit] <= 0).any():
        return math.inf
    return float(((1 - pi[hit]) / pi[hit] * v[hit] ** 2 * p[hit]).sum())


def godambe_joshi_variance(views, p_harm, budget: float) -> float:
    """The Godambe-Joshi lower bound for ANY design-unbiased estimator of the total (HT,
    model-assisted with the true P, ...) at expected size ``budget``: min over pi of
    sum (1/pi - 1) sigma^2 with sigma^2 = Var(y | signals, views) = views^2 P (1 - P), reached at
    pi = min(1, c sigma)."""
    v, p = np.asarray(views, dtype=float), np.asarray(p_harm, dtype=float)
    sigma2 = v**2 * p * (1 - p)
    pi, _ = inclusion_probabilities(p * (1 - p), v, budget, floor=0.0, exponent=0.5)
    hit = sigma2 > 0
    return float(((1 - pi[hit]) / pi[hit] * sigma2[hit]).sum())


def oracle_rse(days: list, budget: float) -> float:
    """sqrt(mean over days of the oracle design's variance) / mean harmful views, the harness's
    RSE definition; ``days``: (views, P, y) per day."""
    var = [design_variance(optimal_probabilities(v, p, budget), y) for v, p, y in days]
    return math.sqrt(float(np.mean(var))) / float(np.mean([y.sum() for _, _, y in days]))


def oracle_budget(days: list, target: float = 0.15, n_units: int | None = None) -> float:
    """The smallest expected sample size whose oracle RSE is at most ``target`` (bisection; the
    oracle variance falls as the budget grows), to 1 label."""
    n_max = n_units or max(len(v) for v, _, _ in days)
    lo, hi = 1.0, 300.0
    while oracle_rse(days, hi) > target:
        lo, hi = hi, min(2 * hi, n_max)
        if hi == n_max:
            break
    while hi - lo > 1.0:
        mid = (lo + hi) / 2
        if oracle_rse(days, mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _sample_design(day: pd.DataFrame, budget: float, floor: float, design: str, opts: dict):
    """(pi, stratum or None, q or None) of the day's units under ``design``. ``opts``:
    ``report_census`` (take the units with at least that many user reports with certainty, like
    the removals; None: off), ``views_share`` (defensive mixture with PPS on views); the label
    model ``model`` uses the reports when it was fitted with them."""
    views = day["views"].to_numpy(dtype=float)
    removed = day[["removed_control", "removed_candidate"]].to_numpy().any(axis=1)
    certain = removed | reported(day["reports"], opts.get("report_census"))
    scores = day[["score_control", "score_candidate"]].to_numpy()
    share = opts.get("views_share", 0.0)
    if design == "pps":
        pi, _ = inclusion_probabilities(scores, views + 1, budget, floor, certain=certain)
        return views_mixture(pi, views + 1, budget, share, floor, certain), None, None
    if design == "stratified":
        pi, stratum = stratified_probabilities(
            scores,
            views + 1,
            budget,
            floor,
            certain=removed,
            low_cut=opts.get("low_cut", 0.01),
            low_share=opts.get("low_share", 0.3),
        )
        return pi, stratum, None
    model = opts.get("model")
    reports = day["reports"].to_numpy() if model is not None and model.reports else None
    q = calibration.probabilities(model, scores, views, reports)
    by = scores if opts.get("sample_by") == "scores" else q
    pi, _ = inclusion_probabilities(by, views + 1, budget, floor, certain=certain)
    return views_mixture(pi, views + 1, budget, share, floor, certain), None, q


def _prevalence(
    day,
    pi,
    stratum,
    q,
    drawn,
    label,
    design,
    label_error: float = 0.0,
    double=None,
    variance: str = "expected",
) -> tuple[est.Estimate, est.Estimate]:
    """(the design's prevalence estimate, the same HT estimate with the sample's own variance).
    ``variance`` (calibrated design): 'expected' (the label model's expectation) or 'max' (the
    larger of it and the sample's own unbiased estimate)."""
    views = day["views"].to_numpy(dtype=float)
    y, p, total = views[drawn] * label, pi[drawn], views.sum()
    sample_var = est.ht_share(y, p, total)
    if design == "pps":
        return sample_var, sample_var
    if design == "calibrated":
        v = calibration.expected_variance(pi, views, q, label_error, double)
        twice = None if double is None else double[drawn]
        y = views[drawn] * calibration.corrected_labels(label, label_error, twice)
        if variance == "max":
            v = max(v, float(((1 - p) / p**2 * y**2).sum()))
        return est.ht_share_expected_variance(y, p, total, v), sample_var
    low = stratum == LOW
    strat = est.stratified_share(
        y,
        p,
        stratum[drawn],
        total,
        low_pi=float(pi[low][0]) if low.any() else 0.0,
        low_unit=float(views[low].mean()) if low.any() else 0.0,
    )
    return strat, sample_var


def grade_day(
    day: pd.DataFrame,
    budget: float,
    floor: float,
    accuracy: float,
    rng,
    design: str = "calibrated",
    low_share: float = 0.3,
    low_cut: float = 0.01,
    model: calibration.LabelModel | None = None,
    sample_by: str = "label_model",
    label_error: float = 0.0,
    double_review: float | None = None,
    review_rng=None,
    review_removals: str = "off",
    heavy_benign: bool = False,
    removal_labels: str = "estimate",
    removal_rng=None,
    arm_variance: str = "expected",
    report_census: int | None = None,
    views_share: float = 0.0,
    variance: str = "expected",
) -> dict:
    """Sample, estimate and compare with the day's truth. ``design``: 'calibrated' (the label
    model's sample and expected-variance interval, ``model`` fitted on earlier days), 'pps' (the
    scores' sample, normal interval from the sample's variance) or 'stratified'. The drawn units
    (scores, views, label, pi) are under the key ``_drawn`` for the next days' label model."""
    views = day["views"].to_numpy(dtype=float)
    h = day["is_harmful"].to_numpy()
    opts = {
        "low_share": low_share,
        "low_cut": low_cut,
        "model": model,
        "sample_by": sample_by,
        "report_census": report_census,
        "views_share": views_share,
    }
    pi, stratum, q = _sample_design(day, budget, floor, design, opts)
    drawn = rng.random(len(day)) < pi
    label = h[drawn] ^ (rng.random(int(drawn.sum())) >= accuracy)
    double = None if double_review is None else views / pi > double_review
    heavy = np.zeros(len(day), dtype=bool) if double is None else double
    removed_any = day[["removed_control", "removed_candidate"]].to_numpy().any(axis=1)
    # re-reviewed when the first verdict is harmful / benign (vigil.evaluation.double_review):
    # the heavy harmful labels from ``review_rng`` (as without the removals' reviews), the
    # removals' from ``removal_rng``, so the days, draws and label models are those of the run
    # without them (a paired comparison)
    more_harmful = removed_any & ~heavy if review_removals == "all" else np.zeros(len(day), bool)
    again_benign = (removed_any if review_removals != "off" else False) | (heavy & heavy_benign)
    extra = (0, 0, 0)
    first = label
    if heavy.any():
        label, extra = double_review_labels(label, h[drawn], heavy[drawn], accuracy, review_rng)
    final = label  # the arms' labels; ``label``: prevalence's, ``history``: the label model's
    if more_harmful.any() or again_benign.any():
        removal, more = double_review_labels(
            first, h[drawn], more_harmful[drawn], accuracy, removal_rng, again_benign[drawn]
        )
        final = np.where(first & heavy[drawn], label, removal)
        extra = tuple(a + b for a, b in zip(extra, more, strict=True))
    # the label model: as vigil online-eval run (double_review.history_labels), or a variant
    history = {"estimate": first & final, "all": final, "arms_model": final}.get(
        removal_labels, label
    )
    label = final if removal_labels in ("all", "estimate") else label
    p = pi[drawn]
    y_all = views * h
    prev, sample_var = _prevalence(
        day, pi, stratum, q, drawn, label, design, label_error, double, variance
    )
    true_prev = y_all.sum() / views.sum()
    design_rse = math.sqrt(((1 - pi) / pi * y_all**2).sum()) / y_all.sum()
    scores = day[["score_control", "score_candidate"]].to_numpy()
    out = {
        "labels": int(drawn.sum()),
        "labels_used": int(drawn.sum()) + extra[0] + extra[1],
        "overturned": extra[2],
        "prevalence_true": true_prev,
        "prevalence": prev.estimate,
        "prevalence_covered": prev.low <= true_prev <= prev.high,
        "prevalence_covered_sample_variance": sample_var.low <= true_prev <= sample_var.high,
        "prevalence_rse_est": prev.rse,
        "prevalence_width": (prev.high - prev.low) / true_prev if true_prev else math.nan,
        "prevalence_rse_design": design_rse,
        "harmful_views": float(y_all.sum()),
        "design_variance": float(((1 - pi) / pi * y_all**2).sum()),
        "sum_y2": float((y_all**2).sum()),
        "_drawn": (scores[drawn], views[drawn], history, p, day["reports"].to_numpy()[drawn]),
    }
    for arm in ("control", "candidate"):
        removed = day[f"removed_{arm}"].to_numpy()
        prevented = day[f"prevented_{arm}"].to_numpy(dtype=float)
        precision = est.hajek_ratio(
            (removed[drawn] & final).astype(float), removed[drawn].astype(float), p
        )
        true_precision = h[removed].mean() if removed.any() else math.nan
        saved = est.ht_total(prevented[drawn] * final, p)
        true_saved = float((prevented * h).sum())
        if arm_variance == "expected" and q is not None:
            precision = est.ratio_expected_variance(precision, removed, pi, q)
            saved = est.total_expected_variance(saved, prevented, pi, q)
        out |= {
            f"precision_{arm}_true": true_precision,
            f"precision_{arm}_covered": precision.low <= true_precision <= precision.high,
            f"prevented_{arm}_true": true_saved,
            f"prevented_{arm}_covered": saved.low <= true_saved <= saved.high,
            f"prevented_{arm}_rse": saved.rse,
            f"removals_{arm}": int(removed.sum()),
            f"precision_{arm}_width": precision.high - precision.low,
            f"prevented_{arm}_width": (saved.high - saved.low) / true_saved if true_saved else 0.0,
        }
    return out


def double_review_labels(
    label, truth, heavy, accuracy: float, rng, benign=None
) -> tuple[np.ndarray, tuple]:
    """Final labels of the drawn units: where ``heavy`` and the first label is harmful, or
    ``benign`` and the first label is benign, a second verdict (the truth, wrong with probability
    1 - accuracy, independent) and a third where the second disagrees with the first; the
    majority wins. Returns (labels, (second, third, overturned))."""
    first = np.asarray(label, dtype=bool)
    label = first.copy()
    truth = np.asarray(truth, dtype=bool)
    again_benign = np.zeros(len(label), dtype=bool) if benign is None else np.asarray(benign)
    again = np.flatnonzero((np.asarray(heavy, dtype=bool) & first) | (again_benign & ~first))
    second = truth[again] ^ (rng.random(len(again)) >= accuracy)
    split = again[second != first[again]]
    third = truth[split] ^ (rng.random(len(split)) >= accuracy)
    label[split] = third
    return label, (len(again), len(split), int((third != first[split]).sum()))


def _fit_history(
    history: list, ridge: float, reports: bool = False
) -> calibration.LabelModel | None:
    """The label model on the drawn units of the days in ``history`` (``reports``: with the
    log(1 + user reports) term)."""
    if not history:
        return None
    scores, views, labels, pi, counts = (np.concatenate([d[i] for d in history]) for i in range(5))
    return calibration.fit(scores, views, labels, pi, ridge, reports=counts if reports else None)


def scenario_models(
    evasion: float | None = None, separation: tuple[float, float] | None = None
) -> dict:
    """{arm: (d, evasion share)}: the published quality unless ``separation`` / ``evasion``."""
    models = dict(MODELS)
    if separation is not None:
        models = {arm: (d, models[arm][1]) for arm, d in zip(("control", "candidate"), separation)}
    if evasion is not None:
        models = {
            "control": (models["control"][0], evasion),
            "candidate": (models["candidate"][0], evasion / 2),
        }
    return models


def run(
    pool: pd.DataFrame,
    days: int,
    seed: int,
    budget: float = 300,
    floor: float = 0.002,
    accuracy: float = 1.0,
    units_per_day: int | None = None,
    evasion: float | None = None,
    separation: tuple[float, float] | None = None,
    design: str = "calibrated",
    low_share: float = 0.3,
    low_cut: float = 0.01,
    history: int = 7,
    ridge: float = 1.0,
    correlation: float = 0.0,
    blind: bool = False,
    sample_by: str = "label_model",
    label_error: float = 0.0,
    double_review: float | None = None,
    review_removals: str = "off",
    heavy_benign: bool = False,
    removal_labels: str = "estimate",
    arm_variance: str = "expected",
    reports: str = "off",
    views_share: float = 0.0,
    variance: str = "expected",
    evader_reports: float = 1.0,
) -> dict:
    """Grade ``days`` bootstrap days; the summary (coverage, RSE, uniform labels).

    ``reports``: 'off', 'model' (the label model's log(1 + reports) term) or 'census' (that term
    and every unit with a user report taken with certainty).

    With the ``calibrated`` design each day's label model is fitted on the labels of the
    ``history`` days before it; ``history`` warm-up days (not graded) come first, so every graded
    day has a full history."""
    models = scenario_models(evasion, separation)
    rng = np.random.default_rng([seed, 22])
    review_rng = np.random.default_rng([seed, 22, 2])  # second and third verdicts only
    removal_rng = np.random.default_rng([seed, 22, 4])  # the removals' repeat verdicts only
    report_rng = np.random.default_rng([seed, 22, 3])  # thinning the evaders' reports only
    if reports not in ("off", "model", "census"):
        raise ValueError(f"reports {reports!r}: off, model or census")
    n_units = units_per_day or round(len(pool) / pool["day"].nunique())
    prior = float(pool["is_harmful"].mean())
    warm = history if design == "calibrated" else 0
    past: list = []
    rows = []
    oracle_days: list = []
    harm_given_views = prior_by_views(pool)
    for t in range(warm + days):
        model = _fit_history(past, ridge, reports != "off") if design == "calibrated" else None
        day = synthetic_day(
            pool, n_units, prior, rng, models, correlation, blind, evader_reports, report_rng
        )
        row = grade_day(
            day,
            budget,
            floor,
            accuracy,
            rng,
            design,
            low_share,
            low_cut,
            model,
            sample_by,
            label_error,
            double_review,
            review_rng,
            review_removals,
            heavy_benign,
            removal_labels=removal_labels,
            removal_rng=removal_rng,
            arm_variance=arm_variance,
            report_census=1 if reports == "census" else None,
            views_share=views_share,
            variance=variance,
        )
        past = ([*past, row.pop("_drawn")])[-history:] if history else []
        if t >= warm:
            row |= _oracle_row(day, harm_given_views, models, correlation, budget, floor)
            oracle_days.append(row.pop("_oracle"))
            rows.append(row)
    settings = {
        "seed": seed,
        "evasion_control": models["control"][1],
        "d": [models["control"][0], models["candidate"][0]],
        "correlation": correlation,
        "blind": blind,
        "days": days,
        "units_per_day": n_units,
        "budget": budget,
        "floor": floor,
        "design": design,
        "history": history,
        "sample_by": sample_by,
        "label_error": label_error,
        "double_review": double_review,
        "review_removals": review_removals,
        "heavy_benign": heavy_benign,
        "removal_labels": removal_labels,
        "arm_variance": arm_variance,
        "reports": reports,
        "views_share": views_share,
        "variance": variance,
        "evader_reports": evader_reports,
        "low_share": low_share,
        "low_cut": low_cut,
        "moderator_accuracy": accuracy,
    }
    summary = summarize(pd.DataFrame(rows), n_units, budget)
    summary["oracle_budget_rse_15"] = oracle_budget(oracle_days, 0.15, n_units)
    return settings | summary


def _oracle_row(day, harm_given_views, models, correlation, budget, floor) -> dict:
    """The oracle's variances on one day: the optimal allocation with the true P(harmful |
    signals, views) (``oracle_variance``), and the calibrated design's own rule (floor, removals
    taken with certainty, views + 1) fed the true P instead of the label model's q
    (``oracle_design_variance``): what a perfect label model would give that design."""
    views = day["views"].to_numpy(dtype=float)
    y = views * day["is_harmful"].to_numpy()
    signals = day[["signal_control", "signal_candidate"]].to_numpy()
    prior = day["views"].map(harm_given_views).to_numpy(dtype=float)
    p = true_posterior(signals, prior, models, correlation)
    removed = day[["removed_control", "removed_candidate"]].to_numpy().any(axis=1)
    pi_rule, _ = inclusion_probabilities(p, views + 1, budget, floor, certain=removed)
    return {
        "oracle_variance": design_variance(optimal_probabilities(views, p, budget), y),
        "oracle_design_variance": design_variance(pi_rule, y),
        "oracle_gj_variance": godambe_joshi_variance(views, p, budget),
        "_oracle": (views, p, y),
    }


def summarize(frame: pd.DataFrame, n_units: int, budget: float) -> dict:
    """Coverage, RSE, interval width and the uniform sample size with the same RSE."""
    # Over the days: RSE = sqrt(mean design variance) / mean harmful views; a uniform sample of n
    # has variance (N/n - 1) sum y^2 a day, so the n with the same RSE solves
    # (N/n - 1) mean(sum y^2) = RSE^2 mean(T)^2.
    mean_t = float(frame["harmful_views"].mean())
    rse = math.sqrt(float(frame["design_variance"].mean())) / mean_t
    uniform = n_units / (1 + (rse * mean_t) ** 2 / float(frame["sum_y2"].mean()))
    summary = {
        "labels_mean": float(frame["labels"].mean()),
        "labels_used_mean": float(frame["labels_used"].mean()),
        "overturned_per_day": float(frame["overturned"].mean()),
        "prevalence_true_mean": float(frame["prevalence_true"].mean()),
        "prevalence_coverage": float(frame["prevalence_covered"].mean()),
        "prevalence_coverage_sample_variance": float(
            frame["prevalence_covered_sample_variance"].mean()
        ),
        "prevalence_rse": rse,
        "prevalence_rse_design_median": float(frame["prevalence_rse_design"].median()),
        "prevalence_rse_est_median": float(frame["prevalence_rse_est"].median()),
        "prevalence_width_median": float(frame["prevalence_width"].median()),
        "uniform_labels_same_rse": uniform,
        "uniform_over_budget": uniform / budget,
    }
    if "oracle_variance" in frame:
        # the best Poisson sample of the budget's size given the scores and views (true P), and
        # the calibrated design's rule with the true P: lower bounds on the RSE above
        for key, col in (
            ("oracle_rse", "oracle_variance"),
            ("oracle_design_rse", "oracle_design_variance"),
            ("oracle_gj_rse", "oracle_gj_variance"),
        ):
            summary[key] = math.sqrt(float(frame[col].mean())) / mean_t
    for arm in ("control", "candidate"):
        for what in ("precision", "prevented"):
            summary[f"{what}_{arm}_coverage"] = float(frame[f"{what}_{arm}_covered"].mean())
        summary[f"prevented_{arm}_rse_median"] = float(frame[f"prevented_{arm}_rse"].median())
        for what in ("precision", "prevented"):  # precision: points; prevented: / the truth
            summary[f"{what}_{arm}_width_median"] = float(frame[f"{what}_{arm}_width"].median())
        summary[f"removals_{arm}_mean"] = float(frame[f"removals_{arm}"].mean())
    summary["targets"] = {name: _met(summary[name], rule) for name, rule in TARGETS.items()}
    return summary


def _met(value: float, rule) -> bool:
    op, bound = rule
    if op == "within":
        return bound[0] <= value <= bound[1]
    return value <= bound if op == "<=" else value >= bound


def _pool(args) -> pd.DataFrame:
    """The impression pool: the cache, or built from --raw (or a fresh world) and cached."""
    if args.pool is not None and args.pool.is_file():
        return pd.read_parquet(args.pool)
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw
        if raw is None:
            from sim.world import simulate

            raw = Path(tmp) / "raw"
            simulate(raw, users=args.users, days=args.world_days, seed=7, progress=False)
        pool = impression_pool(raw)
    if args.pool is not None:
        args.pool.parent.mkdir(parents=True, exist_ok=True)
        pool.to_parquet(args.pool, index=False)
        log.info("impression pool cached in %s", args.pool)
    return pool


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim.online_eval_harness", description=__doc__)
    parser.add_argument("--raw", type=Path, help="a simulated world (default: simulate one)")
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--world-days", type=int, default=10)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument(
        "--units-per-day", type=int, help="units of a bootstrap day (default: the world's mean)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=float, default=300)
    parser.add_argument("--floor", type=float, default=0.002)
    parser.add_argument("--moderator-accuracy", type=float, default=1.0)
    parser.add_argument(
        "--evasion",
        type=float,
        nargs="+",
        default=[0.0, 0.005, 0.02],
        help="share of harmful posts the control cannot see (the candidate: half)",
    )
    parser.add_argument(
        "--separation",
        type=float,
        nargs=2,
        metavar=("D_CONTROL", "D_CANDIDATE"),
        help="signal separations d (default 4.8 5.5: the published recalls at 95%% precision)",
    )
    parser.add_argument(
        "--design",
        choices=("calibrated", "pps", "stratified"),
        default="calibrated",
        help="calibrated (label model from the previous days: sample by it, interval from its "
        "expected variance), pps (the scores' importance formula, the sample's own variance) or "
        "stratified (census, scored, uniform low-score stratum; Poisson-count + MOVER interval)",
    )
    add_label_model_options(parser)
    parser.add_argument(
        "--double-review",
        type=float,
        metavar="W",
        help="second (and on disagreement third) verdict for drawn harmful labels of weight "
        "views / pi > W",
    )
    parser.add_argument(
        "--review-removals",
        choices=("off", "benign", "all"),
        default="off",
        help="second (and third) verdict for the drawn removals of either arm whose first verdict "
        "is benign (benign) or for every removal (all)",
    )
    parser.add_argument(
        "--removal-labels",
        choices=("estimate", "all", "arms", "arms_model"),
        default="estimate",
        help="where the re-reviewed benign removal labels go: every estimate but not the label "
        "model (estimate, as vigil online-eval run), everywhere (all), the arms' precision and "
        "prevented views only (arms), those and the label model (arms_model)",
    )
    parser.add_argument(
        "--arm-variance",
        choices=("expected", "sample"),
        default="expected",
        help="calibrated design: the arms' precision and prevented-views intervals from the label "
        "model's expected design variance over every removal (expected, as vigil online-eval run) "
        "or from the sample's own (sample)",
    )
    parser.add_argument(
        "--heavy-benign",
        action="store_true",
        help="with --double-review W: benign first verdicts of weight > W are reviewed again too",
    )
    parser.add_argument(
        "--sample-by",
        choices=("label-model", "scores"),
        default="label-model",
        help="calibrated design: pi from the label model (default) or from the highest score",
    )
    parser.add_argument(
        "--correlation", type=float, default=0.0, help="correlation of the two models' signals"
    )
    parser.add_argument(
        "--blind",
        action="store_true",
        help="scores ignore the evasion (too low where invisible harm hides)",
    )
    add_reports_option(parser, default="off")
    parser.add_argument(
        "--views-share",
        type=float,
        default=0.0,
        help="defensive mixture: this share of the budget drawn by PPS on views",
    )
    parser.add_argument(
        "--variance",
        choices=("expected", "max"),
        default="expected",
        help="calibrated interval: the label model's expected variance, or the larger of it and "
        "the sample's own estimate",
    )
    parser.add_argument(
        "--evader-reports",
        type=float,
        default=1.0,
        help="share of an evading harmful post's user reports kept (1: as the world reports it)",
    )
    parser.add_argument("--low-share", type=float, default=0.3, help="budget share, low stratum")
    parser.add_argument("--low-cut", type=float, default=0.01, help="score below: low stratum")
    parser.add_argument(
        "--pool",
        type=Path,
        help="impression pool cache (parquet): read when it exists, else built from --raw and "
        "written there",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    pool = _pool(args)
    log.info("pool: %d units over %d days", len(pool), pool["day"].nunique())
    results = [
        run(
            pool,
            args.days,
            s,
            args.budget,
            args.floor,
            args.moderator_accuracy,
            units_per_day=args.units_per_day,
            evasion=e,
            separation=tuple(args.separation) if args.separation else None,
            design=args.design,
            low_share=args.low_share,
            low_cut=args.low_cut,
            history=args.history,
            ridge=args.ridge,
            correlation=args.correlation,
            blind=args.blind,
            sample_by=args.sample_by.replace("-", "_"),
            label_error=args.label_error,
            double_review=args.double_review,
            review_removals=args.review_removals,
            heavy_benign=args.heavy_benign,
            removal_labels=args.removal_labels,
            arm_variance=args.arm_variance,
            reports=args.reports,
            views_share=args.views_share,
            variance=args.variance,
            evader_reports=args.evader_reports,
        )
        for e in args.evasion
        for s in args.seeds
    ]
    for r in results:
        print(json.dumps(r))
    return 0 if all(all(r["targets"].values()) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
