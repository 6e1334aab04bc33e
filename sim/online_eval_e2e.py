"""The online evaluation end to end on a full pipeline world's real scores (issue 22).

Two steps around ``vigil online-eval run`` (docs/online_eval.md, "End to end"):

- ``decisions``: the batch path to the decision log. Each post created on the given days is scored
  as ``vigil score`` does (``training.score``: the cascade at creation, +1 h, +6 h, +24 h with
  point-in-time Feast features) by each registered model given, and every scoring event becomes one
  decision-log row (``<data root>/decisions/dt=D/decisions-e2e-<model id>.jsonl``, the service's fields)
  with ``decided_at`` = the simulated scoring time (the service writes the wall clock, which a
  replay of past days cannot use). ``--no-student`` leaves the student's score out of the rows:
  the log as the evaluation read it before ``ranking_scores`` (the probability is 0 below the
  cascade threshold).
- ``grade``: each day's report against the truth: true prevalence = harmful views / views over the
  day's units (``sample.parquet``), whether the interval covers it, its width / the prevalence;
  per arm the true precision of the day's removals and the harmful views they prevented, and
  whether the report's intervals cover them; the labels used (first + second + third reviews) and
  the reported units of the day and how many were drawn. The last line sums the days up.

``python -m sim.online_eval_e2e decisions --days 2026-10-20 ... --models A B``
``python -m sim.online_eval_e2e grade --days 2026-10-21 ...``
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from datetime import date
from pathlib import Path

import pandas as pd

from sim import truth as sim_truth
from vigil.config import paths

log = logging.getLogger(__name__)


def decision_rows(events: pd.DataFrame, student: bool = True) -> list[dict]:
    """Decision-log rows of scored events (``training.score`` columns)."""
    rows = []
    for e in events.itertuples(index=False):
        at = pd.Timestamp(e.scored_at).tz_convert("UTC").isoformat()
        rows.append(
            {
                "post_id": int(e.post_id),
                "decided_at": at,
                "model_id": e.model_id,
                "student": float(e.student) if student else None,
                "routed_to_heavy": bool(e.routed_to_heavy) if student else None,
                "probability": float(e.probability),
                "decision": e.decision,
                "trigger": f"schedule+{int(e.offset_hours)}h",
                "author_id": int(e.author_id),
                "event_at": at,
            }
        )
    return rows


def score_days(days: list[str], model_ids: list[str], student: bool = True) -> dict:
    """Score the posts created on ``days`` with each model and append the decision log."""
    from training import datasets, registry
    from training import score as batch
    from training.config import from_dict

    bundles = [registry.load(m) for m in model_ids]
    all_posts = datasets._read_mart("posts")
    all_posts["created_at"] = datasets._utc(all_posts["created_at"])
    root = paths().decision_log
    counts: dict = {}
    for day in days:
        d = date.fromisoformat(day)
        posts = all_posts[all_posts["created_at"].dt.date == d][
            ["post_id", "author_id", "created_at", "text"]
        ].copy()
        posts["text"] = posts["text"].fillna("")
        features: dict = {}
        for bundle in bundles:
            cfg = from_dict(bundle["meta"]["config"])
            key = (cfg.feature_service, tuple(cfg.score_offsets_hours))
            if key not in features:  # same feature service and offsets: one Feast read
                features[key] = batch.scoring_events(posts, bundle, cfg)
            events = features[key].copy()
            events = batch.route_and_score(events, bundle, cfg)
            events = batch.decide_and_prioritise(events, bundle, cfg)
            events = batch.apply_mentions(events, bundle, d)
            rows = decision_rows(events, student)
            by_day: dict[str, list[str]] = {}
            for r in rows:
                by_day.setdefault(r["decided_at"][:10], []).append(json.dumps(r) + "\n")
            for dt, lines in by_day.items():
                folder = root / f"dt={dt}"
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / f"decisions-e2e-{bundle['model_id']}.jsonl", "a") as f:
                    f.writelines(lines)
            counts[(day, bundle["model_id"])] = {
                "events": len(events),
                "routed": int(events["routed_to_heavy"].sum()),
                "remove": int((events["decision"] == "remove").sum()),
            }
            log.info(
                "e2e decisions %s %s: %s",
                day,
                bundle["model_id"],
                counts[(day, bundle["model_id"])],
            )
    return {f"{d} {m}": c for (d, m), c in counts.items()}


def _covered(interval: dict | None, truth: float) -> bool | None:
    if not interval or interval.get("low") is None or interval["low"] != interval["low"]:
        return None
    return bool(interval["low"] <= truth <= interval["high"])


def grade_arm(report_arm: dict, units: pd.DataFrame, h, arm: str) -> dict:
    """An arm's precision and harmful views prevented against the truth over the day's units:
    precision = harmful removals / removals, prevented = sum of prevented views of harmful units."""
    removed = units[f"removed_{arm}"].to_numpy(dtype=bool)
    prevented = units[f"prevented_{arm}"].to_numpy(dtype=float)
    precision = float((removed & h).sum() / removed.sum()) if removed.any() else math.nan
    saved = float((prevented * h).sum())
    p, v = report_arm["precision"], report_arm["harmful_views_prevented"]
    return {
        f"removals_{arm}": report_arm["removals"],
        f"removals_drawn_{arm}": int((removed & units["drawn"].to_numpy(dtype=bool)).sum()),
        f"precision_true_{arm}": precision,
        f"precision_{arm}": p["estimate"],
        f"precision_low_{arm}": p.get("low"),
        f"precision_high_{arm}": p.get("high"),
        f"precision_covered_{arm}": _covered(p, precision),
        f"prevented_true_{arm}": saved,
        f"prevented_{arm}": v["estimate"],
        f"prevented_low_{arm}": v.get("low"),
        f"prevented_high_{arm}": v.get("high"),
        f"prevented_covered_{arm}": _covered(v, saved),
    }


def grade_day(report: dict, units: pd.DataFrame, harmful: pd.Series) -> dict:
    """The day's prevalence interval against the truth over the day's units, each arm's
    precision and prevented views (:func:`grade_arm`), the labels used (first + second + third
    reviews) and the reported units (``reports`` > 0 in the sample) and how many were drawn."""
    views = units["views"].to_numpy(dtype=float)
    h = units["post_id"].map(harmful).eq(True).to_numpy(dtype=bool)  # not in the truth: benign
    truth = float((views * h).sum() / views.sum())
    prev = report["prevalence"]
    reviews = report.get("reviews") or {}
    out = {
        "day": report["day"],
        "prevalence_true": truth,
        "estimate": prev["estimate"],
        "low": prev["low"],
        "high": prev["high"],
        "covered": bool(prev["low"] <= truth <= prev["high"]),
        "width_over_true": (prev["high"] - prev["low"]) / truth if truth else math.nan,
        "labels": report.get("labels"),
        "labels_used": reviews.get("labels_used", report.get("labels")),
        "reviews_first": reviews.get("first", report.get("labels")),
        "reviews_second": reviews.get("second", 0),
        "reviews_third": reviews.get("third", 0),
        "units": report["units"],
        "drawn": int(units["drawn"].sum()) if "drawn" in units else report.get("drawn"),
        "label_model_labels": (report.get("label_model") or {}).get("labels", 0),
    }
    if "reports" in units:
        rep = units["reports"].to_numpy() > 0
        drawn = units["drawn"].to_numpy(dtype=bool)
        out["reported_units"] = int(rep.sum())
        out["reported_drawn"] = int((rep & drawn).sum())
        out["reported_harmful"] = int((rep & h).sum())
        out["reported_harmful_views_share"] = (
            float((views * (rep & h)).sum() / (views * h).sum()) if h.any() else math.nan
        )
    own = report.get("prevalence_sample_variance")
    if own:
        out["covered_sample_variance"] = bool(own["low"] <= truth <= own["high"])
    for arm in ("control", "candidate"):
        if arm in report:
            if f"removed_{arm}" in units:
                out.update(grade_arm(report[arm], units, h, arm))
            else:
                out[f"precision_{arm}"] = report[arm]["precision"]["estimate"]
                out[f"removals_{arm}"] = report[arm]["removals"]
    return out


def with_lake_reports(units: pd.DataFrame, day: str) -> pd.DataFrame:
    """``units`` with each unit's user reports of ``day`` counted from the lake (a run with
    ``--reports off`` saves zeros), so its reported units drawn are graded too; unchanged when
    the lake has no partition for the day."""
    from vigil.errors import UserError
    from vigil.evaluation import daily

    try:
        counted = daily.reports_of_day(day)
    except UserError:
        return units
    reports = units["post_id"].map(counted).fillna(0).astype("int64")
    return units.assign(reports=reports.to_numpy())


def grade(
    days: list[str],
    reports: Path | None = None,
    raw: Path | None = None,
    label_error: float | None = None,
    truth_labels: bool = False,
) -> list[dict]:
    """Grade each day's report; with ``label_error`` the day's estimates are first recomputed from
    its saved sample and the review verdicts with that error rate (what ``vigil online-eval run
    --label-error e`` reports on a rerun: same label model, same draw, same labels); with
    ``truth_labels`` from the same draw labeled by the truth (perfect moderators; the label model
    of the day is unchanged)."""
    truth = sim_truth.posts(raw or paths().raw)
    harmful = truth.drop_duplicates("post_id").set_index("post_id")["is_harmful"].astype(bool)
    folder = Path(reports or paths().reports / "online_eval")
    labels = None
    if truth_labels:
        labels, label_error = harmful, label_error or 0.0
    elif label_error is not None:
        from vigil.review.files import read_verdicts

        known, _ = read_verdicts(paths().review / "verdicts")
        labels = known.drop_duplicates("post_id", keep="last").set_index("post_id")["is_harmful"]
    out = []
    for day in days:
        d = folder / f"day={day}"
        report = json.loads((d / "report.json").read_text())
        units = pd.read_parquet(d / "sample.parquet")
        if (report.get("settings") or {}).get("reports", "off") == "off":
            units = with_lake_reports(units, day)
        if labels is not None:
            from vigil.evaluation import daily, double_review

            s = daily.Settings(**{**report["settings"], "label_error": label_error})
            day_labels = labels.astype(bool)
            if s.double_review is not None and not truth_labels:  # the adjudicated labels
                day_labels = double_review.final_labels(day_labels, paths().review, daily.QUEUE)
            report = {**report, **daily.estimates(units, day_labels, s)}
        out.append(grade_day(report, units, harmful))
    return out


def summary(rows: list[dict]) -> dict:
    """Days covered (prevalence and each arm's precision and prevented views), labels used and
    reported units drawn over the graded days."""
    out: dict = {"days": len(rows), "covered": sum(r["covered"] for r in rows)}
    for key in ("precision_covered", "prevented_covered"):
        for arm in ("control", "candidate"):
            got = [r[f"{key}_{arm}"] for r in rows if r.get(f"{key}_{arm}") is not None]
            if got:
                out[f"{key}_{arm}"] = sum(got)
    for key in ("labels_used", "reported_drawn"):
        got = [r[key] for r in rows if r.get(key) is not None]
        if got:
            out[key] = [min(got), max(got), sum(got)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.online_eval_e2e", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    dec = sub.add_parser("decisions", help="score days with models, write the decision log")
    dec.add_argument("--days", nargs="+", required=True)
    dec.add_argument("--models", nargs="+", required=True)
    dec.add_argument("--no-student", action="store_true", help="rows without the student score")
    gr = sub.add_parser("grade", help="grade the days' reports against the truth")
    gr.add_argument("--days", nargs="+", required=True)
    gr.add_argument("--reports", type=Path, help="default: $VIGIL_HOME/reports/online_eval")
    gr.add_argument(
        "--label-error",
        type=float,
        help="recompute the estimates from the saved sample with this moderator error rate",
    )
    gr.add_argument(
        "--truth-labels", action="store_true", help="recompute with the truth as the labels"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.action == "decisions":
        print(json.dumps(score_days(args.days, args.models, not args.no_student), indent=1))
        return 0
    rows = grade(
        args.days, args.reports, label_error=args.label_error, truth_labels=args.truth_labels
    )
    for r in rows:
        print(json.dumps(r))
    print(json.dumps(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
