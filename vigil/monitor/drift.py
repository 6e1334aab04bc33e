"""Drift monitoring: is today's traffic still the traffic the champion was trained on?

Checks (each one row in ``monitor/checks.parquet``, a time series keyed by ``run_date``):

- ``feature_psi`` / ``feature_ks``: population stability index and the two-sample Kolmogorov-Smirnov
  statistic per feature of the champion's feature service, recent window vs training reference.
- ``text_oov``: share of post tokens not in the reference vocabulary, minus the reference's own
  held-out share (new words: abusers changing vocabulary, a new spam template).
- ``score_psi``: PSI of the champion's scores (recent vs reference days).
- ``report_rate``: reports per view in the recent window vs the reference (proxy outcome drift).
- ``confirmed_rate``: among the posts the champion removed (score decision ``remove``), the share
  that moderators' labels confirm harmful, over the labels that have arrived by the end of the run
  day (labels come late); the reference window minus the recent one (a drop = more wrong removals).

- ``input_missing`` / ``input_stale``: a table the checks read is absent, or has no row from the
  run day on (e.g. ``vigil monitor`` on today when the data ends earlier): an alert, its checks are
  skipped and ``vigil monitor`` exits 1. No data is not "all clear".

A check whose value crosses its threshold (``DriftThresholds``) writes a row to
``monitor/alerts.parquet`` (what drifted, by how much, when); the ``vigil_monitor`` DAG turns an
alert into an Airflow Asset event that schedules ``vigil_train``.
Re-running a day replaces that day's rows (idempotent).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.monitor.statistics import (  # noqa: F401 - part of this module's API
    ks_statistic,
    oov_share,
    psi,
    text_drift,
    tokens,
    vocabulary,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftThresholds:
    """Alert thresholds (a JSON file overrides any field; defaults: docs/monitoring.md).

    Measured on simulated worlds (1,500 users, 14 days, seed 7, no drift) the largest values on
    days 7-14 were: feature PSI 0.32 / KS 0.27 (30-day-window features still warming up), report
    rate ratio 1.04, new-token share 0.00. Bayesian-averaged rates (``*_bayes``, ``*_per_view``)
    are shrunk towards a prior that dbt recomputes every day, so their distributions jump with the
    prior (PSI 1-8 without any drift): they are recorded but excluded from alerting by default.
    An N-day window feature (``*_30d``) does not alert while the reference window starts less
    than N days after the first data (it is still filling up, so it grows without any drift).
    """

    feature_psi: float = 0.5
    feature_ks: float = 0.3
    feature_alert_exclude: tuple[str, ...] = (
        "*_bayes",
        "*_per_view",
    )  # fnmatch on the feature name
    text_oov: float = 0.01  # excess share of recent tokens that are new AND frequent
    new_token_min_count: int = 5  # a new token counts once it occurs this often in the window
    score_psi: float = 0.25
    report_rate_ratio: float = 1.5
    confirmed_rate_drop: float = (
        0.15  # reference minus recent moderator-confirmed share of removals
    )
    confirmed_min_labels: int = 10  # labeled removed posts needed in each window to compare
    recent_days: int = 3
    reference_days: int = 14
    min_rows: int = 50

    @classmethod
    def from_file(cls, path: Path | None) -> DriftThresholds:
        if path is None:
            return cls()
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read drift thresholds {path}: {exc}; pass a JSON object.")
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(
                f"unknown drift threshold(s) {sorted(unknown)} in {path}: "
                f"use {sorted(cls.__dataclass_fields__)}."
            )
        if "feature_alert_exclude" in values:
            values["feature_alert_exclude"] = tuple(values["feature_alert_exclude"])
        return cls(**values)


# ---------------------------------------------------------------- storage


def _write_replacing(path: Path, frame, run_date: date) -> None:
    """Replace ``run_date``'s rows of a Parquet time series (idempotent re-runs)."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = pd.read_parquet(path)
        old = old[old["run_date"] != run_date.isoformat()]
        frame = pd.concat([old, frame], ignore_index=True)
    tmp = path.with_suffix(".tmp")
    frame.sort_values(["run_date", "check", "subject"]).to_parquet(tmp, index=False)
    tmp.replace(path)


def checks_path() -> Path:
    return config.paths().monitor / "checks.parquet"


def alerts_path() -> Path:
    return config.paths().monitor / "alerts.parquet"


def read_alerts(run_date: date | None = None):
    import pandas as pd

    if not alerts_path().exists():
        return pd.DataFrame(columns=["run_date", "check", "subject", "value", "threshold"])
    frame = pd.read_parquet(alerts_path())
    if run_date is not None:
        frame = frame[frame["run_date"] == run_date.isoformat()]
    return frame


# ---------------------------------------------------------------- the daily run


@dataclass
class CheckRow:
    run_date: str
    check: str
    subject: str
    value: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    detail: str = ""


def _load_features(name: str):
    import pandas as pd

    path = config.paths().features / f"{name}.parquet"
    if not path.exists():
        raise UserError(f"feature table {path} does not exist: run `vigil dbt marts` first.")
    return pd.read_parquet(path)


def _window(frame, column: str, start: datetime, end: datetime):
    ts = frame[column]
    return frame[(ts >= start) & (ts < end)]


def champion_info() -> dict | None:
    """The champion's registry metadata (``training.registry.meta``), or None without one."""
    try:
        from training import registry

        model_id = registry.champion()
        return registry.meta(model_id) if model_id else None
    except Exception as exc:  # noqa: BLE001 - no training package or a broken registry: monitor without it
        log.info("no champion metadata (%s)", exc)
        return None


def _reference_window(run_date: date, thresholds: DriftThresholds) -> tuple[datetime, datetime]:
    """The champion's training window (registry meta ``windows["train"]``, clipped to end before the
    recent window); without a champion, the ``reference_days`` days before the recent window."""
    recent_start = _day_start(run_date) - timedelta(days=thresholds.recent_days - 1)
    meta = champion_info()
    window = ((meta or {}).get("windows") or {}).get("train")
    if window:
        start, end = (_utc(v) for v in window)
        if start < recent_start:
            return start, min(end, recent_start)
        log.info(
            "champion's training window starts after the recent window: using the default reference"
        )
    return recent_start - timedelta(days=thresholds.reference_days), recent_start


def _utc(value) -> datetime:
    ts = datetime.fromisoformat(str(value))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def monitored_features() -> dict[str, list[str]]:
    """Feature table -> columns watched: the champion's feature service, else moderation_v1."""
    try:
        from vigil.serving.features import MODERATION_V1_FEATURES
    except ImportError:
        return {}
    by_view: dict[str, list[str]] = {}
    for ref in MODERATION_V1_FEATURES:
        view, _, feature = ref.partition(":")
        by_view.setdefault(view, []).append(feature)
    return by_view


@dataclass(frozen=True)
class Windows:
    """The run day and the two windows every check compares: [start, end) in UTC."""

    day: date
    reference: tuple[datetime, datetime]
    recent: tuple[datetime, datetime]


def windows(run_date: date, thresholds: DriftThresholds) -> Windows:
    recent_end = _day_start(run_date) + timedelta(days=1)
    recent = (recent_end - timedelta(days=thresholds.recent_days), recent_end)
    return Windows(run_date, _reference_window(run_date, thresholds), recent)


def run_checks(
    run_date: date, thresholds: DriftThresholds | None = None, scores=None
) -> list[CheckRow]:
    """Compute every drift check for ``run_date`` (recent window ends at that day's end).

    An input that is missing, or has nothing from the run day on, is an alert of its own
    (``input_missing`` / ``input_stale``) and its checks are skipped: no data is not all clear.
    """
    thresholds = thresholds or DriftThresholds()
    win = windows(run_date, thresholds)
    log.info(
        "drift checks for %s: reference [%s, %s), recent [%s, %s)",
        run_date,
        *(t.date() for t in (*win.reference, *win.recent)),
    )
    rows = freshness_rows(win)
    unusable = {r.subject for r in rows}
    rows += feature_rows(win, thresholds, skip=unusable)
    if "posts" not in unusable:
        rows += text_rows(win, thresholds)
    if scores is None:
        scores = _load_scores((champion_info() or {}).get("model_id"))
    rows += score_rows(win, thresholds, scores)
    if "post_behavior" not in unusable:
        rows += report_rate_rows(win, thresholds)
    row = _confirmed_rate_row(run_date.isoformat(), scores, win.reference, win.recent, thresholds)
    if row is not None:
        rows.append(row)
    _store(rows, run_date)
    return rows


def monitored_inputs() -> dict[str, str]:
    """Feature table -> its time column: every table a check reads."""
    inputs = {view: "event_timestamp" for view in monitored_features()}
    return {**inputs, "posts": "created_at", "post_behavior": "event_timestamp"}


def freshness_rows(win: Windows) -> list[CheckRow]:
    """An alert per input table that is missing or has no row from the run day's start on."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    day, rows = win.day.isoformat(), []
    day_start = _day_start(win.day)
    for table, column in monitored_inputs().items():
        path = config.paths().features / f"{table}.parquet"
        if not path.exists():
            rows.append(CheckRow(day, "input_missing", table, math.nan, 0, True, 0, 0, str(path)))
            continue
        times = pq.read_table(path, columns=[column]).column(column)
        newest = pc.max(times).as_py() if len(times) else None
        if newest is None or _utc(newest) < day_start:
            detail = f"newest {column} {_utc(newest).isoformat() if newest else 'none'} in {path}"
            rows.append(
                CheckRow(day, "input_stale", table, math.nan, 0, True, len(times), 0, detail)
            )
    return rows


def feature_rows(win: Windows, thresholds: DriftThresholds, skip: set[str]) -> list[CheckRow]:
    """``feature_psi`` and ``feature_ks`` per monitored feature, reference vs recent rows."""
    rows: list[CheckRow] = []
    for view, features in monitored_features().items():
        if view in skip:
            continue
        frame = _load_features(view)
        data_start = frame["event_timestamp"].min()
        ref = _window(frame, "event_timestamp", *win.reference)
        cur = _window(frame, "event_timestamp", *win.recent)
        if len(ref) < thresholds.min_rows or len(cur) < thresholds.min_rows:
            log.info("skipping %s: %d reference / %d recent rows", view, len(ref), len(cur))
            continue
        for feature in features:
            if feature in frame.columns:
                rows += _feature_pair(win, thresholds, f"{view}:{feature}", ref, cur, data_start)
    return rows


def _feature_pair(win, thresholds, subject, ref, cur, data_start) -> list[CheckRow]:
    feature = subject.partition(":")[2]
    value = psi(ref[feature], cur[feature])
    ks, p_value = ks_statistic(ref[feature], cur[feature])
    alerting = not any(fnmatch(feature, pat) for pat in thresholds.feature_alert_exclude)
    window = re.search(r"_(\d+)d$", feature)
    if window and win.reference[0] < data_start + timedelta(days=int(window.group(1))):
        alerting = False  # an N-day window feature still warming up in the reference
    quiet = "" if alerting else " (not alerting: feature_alert_exclude)"
    return [
        CheckRow(
            win.day.isoformat(),
            check,
            subject,
            v,
            limit,
            bool(not math.isnan(v) and v > limit and alerting),
            len(ref),
            len(cur),
            (f"ks_pvalue={p_value:.3g}" if check == "feature_ks" else "") + quiet,
        )
        for check, v, limit in (
            ("feature_psi", value, thresholds.feature_psi),
            ("feature_ks", ks, thresholds.feature_ks),
        )
    ]


def text_rows(win: Windows, thresholds: DriftThresholds) -> list[CheckRow]:
    """``text_oov``: the excess share of new, repeated tokens in the recent posts."""
    posts = _load_features("posts")
    ref_posts = _window(posts, "created_at", *win.reference)
    cur_posts = _window(posts, "created_at", *win.recent)
    if len(ref_posts) < thresholds.min_rows or len(cur_posts) < thresholds.min_rows:
        return []
    text = text_drift(
        list(ref_posts["text"].fillna("")),
        list(cur_posts["text"].fillna("")),
        thresholds.new_token_min_count,
    )
    return [
        CheckRow(
            win.day.isoformat(),
            "text_oov",
            "posts:text",
            text["excess"],
            thresholds.text_oov,
            text["excess"] > thresholds.text_oov,
            len(ref_posts),
            len(cur_posts),
            f"current_oov={text['current_oov']:.4f} baseline_oov={text['baseline_oov']:.4f}",
        )
    ]


def score_rows(win: Windows, thresholds: DriftThresholds, scores) -> list[CheckRow]:
    """``score_psi`` of the champion's scores (``training.score`` writes them with ``scored_at``).

    Two score columns: the served (calibrated) probability, which is 0 for the events the
    cascade's student screens out, and the student's own score, which every event gets: the
    first shows drift among the posts that reach the heavy model, the second in the population.
    Reference: the scores in the reference window, else those before the recent window (the
    champion's first days in service).
    """
    if scores is None or not len(scores):
        return []
    score_columns = [("score", "champion:score")]
    if "student" in scores:
        score_columns.append(("student", "champion:student_score"))
    recent_start = win.recent[0]
    rows = []
    for column, subject in score_columns:
        ref_s = _window(scores, "scored_at", *win.reference)[column]
        if len(ref_s) < thresholds.min_rows:
            before = recent_start - timedelta(days=thresholds.reference_days)
            ref_s = _window(scores, "scored_at", before, recent_start)[column]
        cur_s = _window(scores, "scored_at", *win.recent)[column]
        if len(ref_s) >= thresholds.min_rows and len(cur_s) >= thresholds.min_rows:
            v = psi(ref_s, cur_s)
            rows.append(
                CheckRow(
                    win.day.isoformat(),
                    "score_psi",
                    subject,
                    v,
                    thresholds.score_psi,
                    bool(v > thresholds.score_psi),
                    len(ref_s),
                    len(cur_s),
                )
            )
    return rows


def report_rate_rows(win: Windows, thresholds: DriftThresholds) -> list[CheckRow]:
    """``report_rate``: reports per view among the posts' latest snapshots, recent / reference."""
    behavior = _load_features("post_behavior")
    rates = []
    for start, end in (win.reference, win.recent):
        snap = _window(behavior, "event_timestamp", start, end)
        latest = snap.sort_values("event_timestamp").groupby("post_id").tail(1)
        views = float(latest["views"].sum())
        rates.append(
            (float(latest["reports"].sum()) / views if views else float("nan"), len(latest))
        )
    (ref_rate, n_ref), (cur_rate, n_cur) = rates
    if not ref_rate or math.isnan(ref_rate) or math.isnan(cur_rate):
        return []
    ratio = cur_rate / ref_rate
    return [
        CheckRow(
            win.day.isoformat(),
            "report_rate",
            "post_behavior:reports_per_view",
            ratio,
            thresholds.report_rate_ratio,
            bool(ratio > thresholds.report_rate_ratio),
            n_ref,
            n_cur,
            f"reference={ref_rate:.5f} recent={cur_rate:.5f}",
        )
    ]


def _store(rows: list[CheckRow], run_date: date) -> None:
    """Replace the day's rows in the checks time series and in the alerts."""
    import pandas as pd

    frame = (
        pd.DataFrame([asdict(r) for r in rows])
        if rows
        else pd.DataFrame(columns=list(CheckRow.__dataclass_fields__))
    )
    _write_replacing(checks_path(), frame, run_date)
    alerts = frame[frame["drifted"].astype(bool)] if len(frame) else frame
    _write_replacing(alerts_path(), alerts.drop(columns=["drifted"]), run_date)
    log.info("drift checks for %s: %d checks, %d alerts", run_date, len(frame), len(alerts))
    for a in alerts.itertuples():
        log.warning(
            "DRIFT %s %s = %.4f > %.4f (%s)", a.check, a.subject, a.value, a.threshold, a.detail
        )


def input_problems(rows: list[CheckRow]) -> list[CheckRow]:
    """The rows that say an input is missing or stale."""
    return [r for r in rows if r.check in ("input_missing", "input_stale")]


def no_data_sentence(run_date: date, problems: list[CheckRow]) -> str:
    what = "; ".join(f"{r.subject} {r.check.removeprefix('input_')} ({r.detail})" for r in problems)
    return (
        f"no usable data for {run_date}: {what}: pass a date within the data or run the daily "
        "pipeline (`vigil dbt marts`) first."
    )


def check_day(day: str, thresholds_file: str | None = None) -> dict:
    """The ``vigil_monitor`` DAG's check: the day's checks, its alerts as plain dicts; a missing
    or stale input raises :class:`UserError` (the task fails instead of reporting no drift)."""
    run_date = date.fromisoformat(day)
    thresholds = DriftThresholds.from_file(Path(thresholds_file) if thresholds_file else None)
    rows = run_checks(run_date, thresholds)
    problems = input_problems(rows)
    if problems:
        raise UserError(no_data_sentence(run_date, problems))
    return {"day": day, "checks": len(rows), "alerts": [asdict(r) for r in rows if r.drifted]}


def confirmed_share(removed_ids, labels, arrived_by: datetime) -> tuple[float, int, int]:
    """Moderator-confirmed share of removed posts: ``sum(w * harmful) / sum(w)`` over the removed
    posts whose label arrived before ``arrived_by`` (``w`` = the label's ``sampling_weight``, so
    audit-sampled labels count for the posts they stand for). Returns (share, labeled, harmful);
    share is NaN when no removed post is labeled yet."""
    import pandas as pd

    lab = labels[labels["post_id"].isin(set(removed_ids))]
    lab = lab[pd.to_datetime(lab["labeled_at"], utc=True) < arrived_by]
    lab = lab.sort_values("labeled_at").groupby("post_id").tail(1)
    if lab.empty:
        return float("nan"), 0, 0
    if "sampling_weight" in lab:
        w = lab["sampling_weight"].astype(float).fillna(1.0)
    else:
        w = pd.Series(1.0, index=lab.index)
    y = lab["is_harmful"].astype(bool)
    return float((w * y).sum() / w.sum()), len(lab), int(y.sum())


def _confirmed_rate_row(day, scores, reference, recent, thresholds) -> CheckRow | None:
    """The ``confirmed_rate`` check: reference minus recent moderator-confirmed share of the
    champion's removals (posts created in each window with a ``remove`` decision). Reference: its
    removals in the reference window, else in the ``reference_days`` before the recent window."""
    if (
        scores is None
        or not len(scores)
        or not {"decision", "post_id", "created_at"} <= set(scores)
    ):
        return None  # no scores, or written before scores carried decisions
    labels_file = config.paths().features / "post_labels.parquet"
    if not labels_file.exists():
        log.info("confirmed_rate skipped: no post_labels export")
        return None
    import pandas as pd

    labels = pd.read_parquet(labels_file)
    removed = scores[scores["decision"] == "remove"]
    arrived_by = recent[1]

    def window_share(start, end):
        ids = _window(removed, "created_at", start, end)["post_id"].unique()
        return (*confirmed_share(ids, labels, arrived_by), len(ids))

    ref = window_share(*reference)
    if ref[1] < thresholds.confirmed_min_labels:
        ref = window_share(recent[0] - timedelta(days=thresholds.reference_days), recent[0])
    cur = window_share(*recent)
    (ref_share, n_ref, h_ref, r_ref), (cur_share, n_cur, h_cur, r_cur) = ref, cur
    if min(n_ref, n_cur) < thresholds.confirmed_min_labels:
        log.info(
            "confirmed_rate skipped: %d / %d labeled removed posts (reference / recent) < %d",
            n_ref,
            n_cur,
            thresholds.confirmed_min_labels,
        )
        return None
    drop = ref_share - cur_share
    return CheckRow(
        day,
        "confirmed_rate",
        "champion:removed_confirmed_share",
        drop,
        thresholds.confirmed_rate_drop,
        bool(drop > thresholds.confirmed_rate_drop),
        n_ref,
        n_cur,
        f"reference={ref_share:.4f} ({h_ref}/{n_ref} labeled harmful of {r_ref} removed) "
        f"recent={cur_share:.4f} ({h_cur}/{n_cur} of {r_cur})",
    )


def _load_scores(model_id: str | None = None):
    """The scores training.score wrote (``scored_at``, ``score`` = calibrated probability), only the
    given model's when ``model_id`` is set (a new champion's scores are a new distribution)."""
    import pandas as pd

    root = config.paths().home / "scores"
    files = sorted(root.glob("dt=*/scores.parquet"))
    if not files:
        return None
    frame = pd.concat([_read_scores(f) for f in files], ignore_index=True).rename(
        columns={"probability": "score"}
    )
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    if model_id is not None:
        frame = frame[frame["model_id"] == model_id]
    return frame


# ---------------------------------------------------------------- CLI


def _read_scores(path: Path):
    import pandas as pd
    import pyarrow.parquet as pq

    wanted = [
        "scored_at", "probability", "student", "model_id", "post_id", "created_at", "decision"
    ]  # fmt: skip
    have = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in wanted if c in have])


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=date.fromisoformat, help="run date (default: today, UTC)")
    parser.add_argument("--thresholds", type=Path, help="JSON file overriding DriftThresholds")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    run_date = args.date or datetime.now(UTC).date()
    rows = run_checks(run_date, DriftThresholds.from_file(args.thresholds))
    problems = input_problems(rows)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        for r in rows:
            flag = "DRIFT" if r.drifted else "ok"
            print(f"{flag:5} {r.check:14} {r.subject:45} {r.value:9.4f} (threshold {r.threshold})")
        print(f"{sum(r.drifted for r in rows)} alert(s); checks in {checks_path()}")
    if problems:
        print(f"vigil monitor: error: {no_data_sentence(run_date, problems)}", file=sys.stderr)
        return 1
    return 0
