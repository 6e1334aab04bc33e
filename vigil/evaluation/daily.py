"""One day of online evaluation: the impression frame, the importance sample, the estimates.

Frame (one unit per post with views on day D in the lake, or a decision on day D): ``views`` (view
events that day), per arm its score (the latest logged score of the arm's model up to the end of
D: the heavy model's calibrated probability where the cascade routed the post, else the student's
score, :func:`ranking_scores`), whether it removed the post, and ``prevented`` views (the post's views on D after the
arm's removal: the simulated world does not react to removals, so these are the views a removal
stops; a live platform would log them as blocked impressions). Two modes:

- ``shadow``: both models score every post (the decision log holds rows of both); the control
  acts. Precision and prevented views are measured for both.
- ``hash``: a post belongs to one arm by a salted SHA-256 of its id (:func:`arm_of`); an arm's
  removals are its model's removals on its posts; prevented views are also reported scaled to all
  traffic (divided by the arm's share).

The sample goes to the review queue ``online_eval`` with its inclusion probabilities; verdicts
already given are read back (the simulated moderators answer at once). Units whose request is
still pending are treated as missing at random: the answered units' pi is multiplied by the share
answered (as the score audit does). Estimates: :mod:`vigil.evaluation.estimators`.

Design ``calibrated`` (default): the label model (:mod:`vigil.evaluation.calibration`) is fitted
on the labeled samples of the ``history`` days before D (their ``sample.parquet`` and the review
verdicts) and saved as ``label_model.json`` beside the report, so a rerun of D reuses it and draws
the same posts; pi follows its probability, and the prevalence interval takes the variance it
expects over the day's units. Design ``pps``: pi from the highest score, the sample's own variance.

``reports`` (user reports, a signal the models do not give: the harm they cannot see is still
reported by some viewers): ``census`` (default) counts each unit's report events of the day (lake partition
dt=D), takes every reported unit with certainty like the removals and gives the label model a
log(1 + reports) term (:func:`vigil.evaluation.sampling.reported`); ``model``: the term only;
``off``: neither.

``double_review`` W (views; default 30, None: off): every drawn unit labeled harmful whose weight
views / pi exceeds W is reviewed again by other moderators (a third review on disagreement, the
majority wins; :mod:`vigil.evaluation.double_review`); the report counts every label used.
``review_removals`` (default ``benign``; ``all``, ``off``): the drawn removals whose first verdict
is benign go through the same rounds (the arms' precision and prevented views are a census of the
removals: one false benign moves them); these re-reviews enter the estimates, not the label
model's history. ``arm_variance`` (design calibrated; default ``expected``): the arms' precision
and prevented-views intervals take the variance the label model expects over every removal of
the day (drawn or not; :func:`vigil.evaluation.estimators.ratio_expected_variance`), as the
prevalence interval does; it matters when the removals are more than half the budget and are
sampled (pi < 1); ``sample``: the sample's own variance.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from vigil import config
from vigil.errors import UserError
from vigil.evaluation import calibration, double_review
from vigil.evaluation import estimators as est
from vigil.evaluation.sampling import ARMS, arm_of, draw, inclusion_probabilities, reported

log = logging.getLogger(__name__)

QUEUE = "online_eval"
REPORTS = ("off", "model", "census")
ESTIMATORS = {
    "calibrated": "Horvitz-Thompson; prevalence interval from the label model's expected design "
    "variance (normal 95%); precision: Hajek ratio with linearized variance",
    "pps": "Horvitz-Thompson (Poisson sampling variance, normal 95% intervals); "
    "precision: Hajek ratio with linearized variance",
}


@dataclass
class Settings:
    control: str
    candidate: str
    mode: str = "shadow"  # or "hash"
    budget: float = 300
    floor: float = 0.002
    exponent: float = 0.5
    salt: str = "vigil-online-eval"
    candidate_share: float = 0.5
    seed: int = 0
    design: str = "calibrated"  # or "pps" (the scores' formula, the sample's own variance)
    history: int = 7  # days of earlier labeled samples the label model learns from
    ridge: float = 1.0  # label-model penalty toward the scores' own calibration
    label_error: float = 0.0  # moderators' known error rate (calibrated design corrects for it)
    # re-review harmful labels of weight views / pi above this; None: off
    double_review: float | None = 30.0
    # re-review the removals' benign first verdicts (benign), every removal verdict (all) or none
    review_removals: str = "benign"
    # calibrated design: the arms' intervals from the label model's expected variance over every
    # removal (expected) or the sample's own (sample)
    arm_variance: str = "expected"
    # user reports: census (reported units taken with certainty + label-model term; the default
    # since 2026-12-07, docs/online_eval.md), model (the term only), off
    reports: str = "census"


def _day(day: str) -> date:
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise UserError(f"day {day!r} is not YYYY-MM-DD: pass e.g. --day 2026-10-05.") from None


def views_of_day(day: str, lake_events: Path | None = None, action: str = "view") -> pd.DataFrame:
    """post_id, event_ts of the day's view events (lake partition dt=D); ``action`` 'report':
    its user reports."""
    path = Path(lake_events or config.paths().lake_events) / f"dt={day}" / "events.parquet"
    if not path.is_file():
        raise UserError(f"no lake events for {day} at {path}: run `vigil ingest` for that day.")
    frame = pd.read_parquet(path, columns=["action", "post_id", "event_ts"])
    frame = frame[(frame["action"] == action) & frame["post_id"].notna()]
    return frame[["post_id", "event_ts"]].astype({"post_id": "int64"})


def reports_of_day(day: str, lake_events: Path | None = None) -> pd.Series:
    """post_id -> the number of user reports of the post on day D (lake partition dt=D)."""
    return views_of_day(day, lake_events, action="report").groupby("post_id").size()


def decisions_until(end: datetime, directory: Path | None = None) -> pd.DataFrame:
    """Every decision log row decided before ``end`` (post_id, decided_at, model_id, ...)."""
    # The decision log's documented location (docs/serving.md); read as files, not through
    # vigil.moderation, which imports this package for its arms (no import cycle).
    rows = []
    root = Path(directory or config.paths().home / "decisions")
    for path in sorted(root.glob("dt=*/decisions-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    columns = ["post_id", "decided_at", "model_id", "probability", "decision", "trigger"]
    frame = pd.DataFrame(rows, columns=[*columns, "student", "routed_to_heavy"])
    if frame.empty:
        return frame[columns]
    frame["probability"] = ranking_scores(frame)
    frame = frame[columns]
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True, format="ISO8601")
    frame = frame[frame["post_id"].notna() & (frame["decided_at"] < pd.Timestamp(end))]
    return frame.astype({"post_id": "int64"})


def ranking_scores(decisions: pd.DataFrame) -> pd.Series:
    """The score each decision ranks its post by: the logged probability where the cascade routed
    the post to the heavy model, else the student's score (logged for every scored post: the
    probability is 0 below the cascade threshold, ~90% of the posts, which would leave them one
    block the sample cannot rank). Rows without a student score (older logs, a restoring decision
    after an appeal) keep the probability."""
    student = pd.to_numeric(decisions["student"], errors="coerce")
    routed = decisions["routed_to_heavy"].astype("boolean").fillna(False).astype(bool)
    keep = routed | student.isna()
    return decisions["probability"].astype(float).where(keep, student)


def build_frame(
    views: pd.DataFrame,
    decisions: pd.DataFrame,
    s: Settings,
    since: datetime | None = None,
    reports: pd.Series | None = None,
) -> pd.DataFrame:
    """The day's units with views, each arm's score, removal and prevented views, and ``reports``
    (post_id -> the day's user reports; 0 for the others and when not given). A post without
    views on the day is a unit only when it was decided at or after ``since`` (the day's start):
    the posts decided on earlier days and not seen today hold no views of the day."""
    counts = views.groupby("post_id").size().rename("views")
    today = (
        decisions if since is None else decisions[decisions["decided_at"] >= pd.Timestamp(since)]
    )
    ids = counts.index.union(pd.Index(today["post_id"].unique(), dtype="int64"))
    ids = ids.rename("post_id")
    frame = pd.DataFrame(index=pd.Index(ids, name="post_id"))
    frame["views"] = counts.reindex(ids).fillna(0).astype("int64")
    counted = pd.Series(dtype="int64") if reports is None else reports
    frame["reports"] = counted.reindex(ids).fillna(0).astype("int64").to_numpy()
    frame["arm"] = arm_of(ids, s.salt, s.candidate_share) if s.mode == "hash" else "control"
    for arm, model in (("control", s.control), ("candidate", s.candidate)):
        mine = decisions[decisions["model_id"] == model].sort_values("decided_at", kind="stable")
        latest = mine.drop_duplicates("post_id", keep="last").set_index("post_id")
        frame[f"score_{arm}"] = latest["probability"].reindex(ids).astype(float)
        removals = mine[mine["decision"] == "remove"].drop_duplicates("post_id")
        removed_at = removals.set_index("post_id")["decided_at"].reindex(ids)
        removed = (latest["decision"].reindex(ids) == "remove").to_numpy()
        removed &= removed_at.notna().to_numpy()
        if s.mode == "hash":
            removed &= (frame["arm"] == arm).to_numpy()
        frame[f"removed_{arm}"] = removed
        after = views.merge(removed_at.rename("at").dropna().reset_index(), on="post_id")
        prevented = after[after["event_ts"] >= after["at"]].groupby("post_id").size()
        frame[f"prevented_{arm}"] = np.where(removed, prevented.reindex(ids).fillna(0), 0)
    # A post a model did not score counts as score 0 for it: drawn at the floor at least.
    frame[["score_control", "score_candidate"]] = frame[
        ["score_control", "score_candidate"]
    ].fillna(0.0)
    return frame.reset_index()


def sample(
    frame: pd.DataFrame, s: Settings, day: str, model: calibration.LabelModel | None = None
) -> pd.DataFrame:
    """The day's units with ``q`` (the label model's probability; the highest score with
    design pps or no model yet), ``pi`` and ``drawn``."""
    if s.design not in ("calibrated", "pps"):
        raise UserError(f"design {s.design!r} is unknown: pass --design calibrated or pps.")
    _check_reports(s)
    reports = frame["reports"].to_numpy() if "reports" in frame else np.zeros(len(frame))
    certain = frame[["removed_control", "removed_candidate"]].any(axis=1).to_numpy()
    certain |= reported(reports, 1 if s.reports == "census" else None)
    scores = frame[["score_control", "score_candidate"]].to_numpy()
    q = calibration.probabilities(
        model if s.design == "calibrated" else None, scores, frame["views"], reports
    )
    pi, c = inclusion_probabilities(
        q, frame["views"].to_numpy() + 1, s.budget, s.floor, s.exponent, certain=certain
    )
    out = frame.assign(q=q, pi=pi, drawn=draw(frame["post_id"], pi, s.seed, day))
    log.info(
        "online eval %s: %d units, c = %.4g, expected %.1f labels, %d drawn (%d removals or "
        "reported at pi=%.2f)",
        day,
        len(out),
        c,
        pi.sum(),
        int(out["drawn"].sum()),
        int(certain.sum()),
        float(pi[certain].max()) if certain.any() else 1.0,
    )
    return out


def label_history(day: str, s: Settings, labels: pd.Series) -> pd.DataFrame:
    """The labeled drawn units of the ``s.history`` days before ``day`` (their sample files
    under reports/online_eval/, labels = post_id -> is_harmful from the review verdicts)."""
    d = _day(day)
    root = config.paths().reports / "online_eval"
    frames = []
    for back in range(1, s.history + 1):
        path = root / f"day={(d - timedelta(days=back)).isoformat()}" / "sample.parquet"
        if path.is_file():
            units = pd.read_parquet(path)
            frames.append(units[units["drawn"] & units["post_id"].isin(labels.index)])
    if not frames:
        columns = ["score_control", "score_candidate", "views", "reports", "pi", "label"]
        return pd.DataFrame(columns=columns)
    if any("reports" not in f for f in frames):  # days sampled before reports were counted
        frames = [f.drop(columns="reports", errors="ignore") for f in frames]
    past = pd.concat(frames, ignore_index=True)
    return past.assign(label=labels.reindex(past["post_id"]).to_numpy(dtype=bool))


def label_model(day: str, s: Settings, labels: pd.Series) -> calibration.LabelModel | None:
    """The day's label model: the one saved by an earlier run of the same day (a rerun draws the
    same posts), else fitted on :func:`label_history` and saved. None with design pps or too few
    labels (then q = the highest score)."""
    if s.design != "calibrated":
        return None
    path = config.paths().reports / "online_eval" / f"day={day}" / "label_model.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved is None:
            return None
        return calibration.LabelModel(
            np.array(saved["coef"]), saved["labels"], saved["harmful"], saved.get("reports", False)
        )
    past = label_history(day, s, labels)
    # the reports term needs every history day's counts (days sampled before: fit without it)
    with_reports = s.reports != "off" and "reports" in past
    model = calibration.fit(
        past[["score_control", "score_candidate"]].to_numpy(dtype=float),
        past["views"].to_numpy(dtype=float),
        past["label"].to_numpy(dtype=float),
        past["pi"].to_numpy(dtype=float),
        s.ridge,
        reports=past["reports"].to_numpy(dtype=float) if with_reports else None,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.as_dict() if model else None))
    log.info(
        "online eval %s: label model from %d labeled units of the %d days before: %s",
        day,
        len(past),
        s.history,
        model.as_dict() if model else "none (too few labels: q = the highest score)",
    )
    return model


def estimates(units: pd.DataFrame, labels: pd.Series, s: Settings) -> dict:
    """HT / Hajek estimates on the labeled drawn units (``labels``: post_id -> is_harmful)."""
    drawn = units[units["drawn"]]
    answered = drawn[drawn["post_id"].isin(labels.index)]
    share = len(answered) / len(drawn) if len(drawn) else 0.0
    if answered.empty:
        return {"labels": 0, "pending": len(drawn)}
    pi = answered["pi"].to_numpy() * share
    h = labels.reindex(answered["post_id"]).to_numpy(dtype=bool)
    out = {
        "labels": len(answered),
        "pending": len(drawn) - len(answered),
        "answered_share": share,
        **_prevalence(units, answered, h, pi, share, s),
    }
    expected = s.design == "calibrated" and s.arm_variance == "expected" and "q" in units
    pi_all = units["pi"].to_numpy(dtype=float) * share
    for arm in ARMS:
        removed = answered[f"removed_{arm}"].to_numpy(dtype=bool)
        prevented = answered[f"prevented_{arm}"].to_numpy(dtype=float)
        precision = est.hajek_ratio((removed & h).astype(float), removed.astype(float), pi)
        saved = est.ht_total(prevented * h, pi)
        arm_share = 1.0
        if s.mode == "hash":
            arm_share = s.candidate_share if arm == "candidate" else 1 - s.candidate_share
        every = est.ht_total(prevented * h / arm_share, pi)
        arm_out = {"removals": int(units[f"removed_{arm}"].sum())}
        if expected:  # the label model's expected variance over every removal (estimators)
            arm_out["precision_sample_variance"] = precision.as_dict()
            arm_out["harmful_views_prevented_sample_variance"] = saved.as_dict()
            z, q = units[f"removed_{arm}"].to_numpy(dtype=float), units["q"].to_numpy(dtype=float)
            values = units[f"prevented_{arm}"].to_numpy(dtype=float)
            precision = est.ratio_expected_variance(precision, z, pi_all, q)
            saved = est.total_expected_variance(saved, values, pi_all, q)
            every = est.total_expected_variance(every, values / arm_share, pi_all, q)
        arm_out["precision"] = precision.as_dict()
        arm_out["harmful_views_prevented"] = saved.as_dict()
        if s.mode == "hash":
            arm_out["harmful_views_prevented_all_traffic"] = every.as_dict()
        out[arm] = arm_out
    return out


def _prevalence(
    units: pd.DataFrame, answered: pd.DataFrame, h, pi, share: float, s: Settings
) -> dict:
    """Prevalence with the design's interval (calibrated: the label model's expected variance
    over every unit of the day; pps: the sample's own variance) and the sample-variance one."""
    denominator = float(units["views"].sum())
    views_drawn = answered["views"].to_numpy(dtype=float)
    own = est.ht_share(views_drawn * h, pi, denominator)
    if s.design != "calibrated":
        return {"prevalence": own.as_dict()}
    variance = calibration.expected_variance(
        units["pi"].to_numpy() * share,
        units["views"].to_numpy(),
        units["q"].to_numpy(),
        s.label_error,
        _rounds(units, s)[0],
    )
    corrected = views_drawn * calibration.corrected_labels(h, s.label_error, *_rounds(answered, s))
    assisted = est.ht_share_expected_variance(corrected, pi, denominator, variance)
    return {"prevalence": assisted.as_dict(), "prevalence_sample_variance": own.as_dict()}


def _rounds(units: pd.DataFrame, s: Settings) -> tuple[np.ndarray, np.ndarray]:
    """(harmful first verdict reviewed again, benign first verdict reviewed again) per unit, for
    the label-error rates (:func:`vigil.evaluation.calibration.error_rates`)."""
    removed = np.zeros(len(units), dtype=bool)
    if s.review_removals != "off":
        removed = units[["removed_control", "removed_candidate"]].any(axis=1).to_numpy()
    heavy = double_review.eligible(units, s.double_review)
    return heavy | (removed if s.review_removals == "all" else False), removed


def run_day(day: str, s: Settings, review_root: Path | None = None) -> dict:
    """Frame, sample, review requests, estimates and the report files for ``day``."""
    from vigil.review.files import FileReviewQueue, load_answerer, read_verdicts

    d = _day(day)
    end = datetime(d.year, d.month, d.day) + timedelta(days=1)
    views = views_of_day(day)
    decisions = decisions_until(end.replace(tzinfo=UTC))
    if decisions.empty or not {s.control, s.candidate} & set(decisions["model_id"]):
        raise UserError(
            f"the decision log has no decisions of {s.control} or {s.candidate} before the end "
            f"of {day}: score the day's posts with `vigil serve` (both models in shadow mode)."
        )
    root = Path(review_root or config.paths().review)
    known, _ = read_verdicts(root / "verdicts")
    known = known.set_index("post_id")["is_harmful"].astype(bool)
    double_review.check_removals(s.review_removals)
    if s.arm_variance not in ("expected", "sample"):
        raise UserError(
            f"arm-variance {s.arm_variance!r} is unknown: pass expected (the label model's) or "
            "sample (the sample's own)."
        )
    if s.double_review is not None or s.review_removals != "off":
        # the earlier days' labels after their second reviews; the removals' benign first
        # verdicts stay as given for the label model (double_review.history_labels)
        known = double_review.history_labels(known, double_review.final_labels(known, root, QUEUE))
    model = label_model(day, s, known)
    start = end.replace(tzinfo=UTC) - timedelta(days=1)
    _check_reports(s)
    reports = reports_of_day(day) if s.reports != "off" else None
    units = sample(build_frame(views, decisions, s, since=start, reports=reports), s, day, model)
    drawn = units[units["drawn"]]
    answer = load_answerer()
    queue = FileReviewQueue(QUEUE, budget=2**31 - 1, root=root, answer=answer)
    verdicts = queue.review(
        drawn["post_id"].tolist(),
        reason=f"online evaluation {day}",
        inclusion_probability=drawn["pi"].tolist(),
    )
    labels = verdicts.drop_duplicates("post_id").set_index("post_id")["is_harmful"].astype(bool)
    reviews = {"first": len(labels)}
    if s.double_review is not None or s.review_removals != "off":
        labels, counts = double_review.adjudicate(
            drawn,
            labels,
            s.double_review,
            root,
            QUEUE,
            answer,
            f"online evaluation {day}",
            removals=s.review_removals,
        )
        reviews |= {"second": counts["second"], "third": counts["third"], "double_review": counts}
    reviews["labels_used"] = reviews["first"] + reviews.get("second", 0) + reviews.get("third", 0)
    report = {
        "day": day,
        "settings": asdict(s),
        "units": len(units),
        "views": int(units["views"].sum()),
        "expected_labels": float(units["pi"].sum()),
        "drawn": int(units["drawn"].sum()),
        "estimator": ESTIMATORS[s.design],
        "label_model": model.as_dict() if model else None,
        "reviews": reviews,
        **estimates(units, labels, s),
    }
    write_report(report, units)
    return report


def _check_reports(s: Settings) -> None:
    if s.reports not in REPORTS:
        raise UserError(
            f"reports setting {s.reports!r} is unknown: pass --reports census, model or off."
        )


def write_report(report: dict, units: pd.DataFrame) -> Path:
    folder = config.paths().reports / "online_eval" / f"day={report['day']}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str))
    units.to_parquet(folder / "sample.parquet", index=False)
    (folder / "report.md").write_text(markdown(report))
    log.info("online eval %s: report in %s", report["day"], folder)
    return folder


def markdown(r: dict) -> str:
    def ci(e: dict | None, pct: bool = False) -> str:
        if not e or e.get("estimate") is None or e["estimate"] != e["estimate"]:
            return "-"
        f = (lambda x: f"{100 * x:.3f}%") if pct else (lambda x: f"{x:,.1f}")
        return f"{f(e['estimate'])} [{f(e['low'])}, {f(e['high'])}]"

    lines = [
        f"# Online evaluation {r['day']}",
        "",
        (
            f"Mode {r['settings']['mode']}; control {r['settings']['control']}, candidate "
            f"{r['settings']['candidate']}. {r['units']:,} units, {r['views']:,} views; "
            f"{r['drawn']} drawn (expected {r['expected_labels']:.1f}), {r.get('labels', 0)} labeled, "
            f"{r.get('pending', 0)} pending. {r['estimator']}."
        ),
        "",
        _review_line(r),
        "",
        (f"Labels used: {r.get('reviews', {}).get('labels_used', r.get('labels', 0))}."),
        "",
        f"Prevalence (share of views that were harmful): {ci(r.get('prevalence'), True)}",
        "",
        _model_line(r),
        "",
        "| arm | removals | precision | harmful views prevented |",
        "|---|---|---|---|",
    ]
    for arm in ARMS:
        a = r.get(arm)
        if a:
            lines.append(
                f"| {arm} | {a['removals']} | {ci(a['precision'], True)} "
                f"| {ci(a['harmful_views_prevented'])} |"
            )
    return "\n".join(lines) + "\n"


def _review_line(r: dict) -> str:
    counts = r.get("reviews", {}).get("double_review")
    if not counts:
        return "Single review: each drawn unit's first verdict is its label."
    heavy = (
        "off"
        if counts["threshold"] is None
        else f"with weight views / pi > {counts['threshold']:g}"
    )
    return (
        f"Second review of harmful labels {heavy}: {counts['eligible_harmful']} units; of the "
        f"removals' labels ({counts.get('removals', 'off')}): {counts.get('eligible_removals', 0)} "
        f"units; {counts['second']} second reviews "
        f"({counts['second_disagree']} disagreeing, {counts['second_pending']} pending), "
        f"{counts['third']} third reviews ({counts['third_pending']} pending), "
        f"{counts['overturned']} labels overturned."
    )


def _model_line(r: dict) -> str:
    if r["settings"].get("design") != "calibrated":
        return "Design pps: pi from the highest score; interval from the sample's own variance."
    m = r.get("label_model")
    if not m:
        return (
            "Design calibrated, no label model yet (too few labels in the previous "
            f"{r['settings']['history']} days): pi from the highest score; interval from the "
            "scores' expected variance."
        )
    return (
        f"Design calibrated: label model from {m['labels']:,} labeled units ({m['harmful']:,} "
        f"harmful) of the previous {r['settings']['history']} days; the interval's variance is its "
        "expectation over the day's units."
    )


def run(day: str, control: str | None, candidate: str | None, **settings) -> dict:
    """``run_day`` with the settings as keywords (the DAG's task calls this)."""
    if not control or not candidate:
        raise UserError(
            "online evaluation needs both model ids: set the control and candidate params "
            "(or --control and --candidate)."
        )
    return run_day(day, Settings(control=control, candidate=candidate, **settings))
