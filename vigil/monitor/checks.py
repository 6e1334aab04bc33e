"""The drift checks: each compares the recent window with the reference window and returns
:class:`~vigil.monitor.store.CheckRow` rows (see :mod:`vigil.monitor.drift` for the list).

Inputs are the feature tables the daily pipeline exports (``<data>/features/<table>.parquet``)
and the champion's scores; :func:`monitored_features` names the watched columns.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatch

from vigil import config
from vigil.errors import UserError
from vigil.monitor.statistics import ks_statistic, psi, text_drift
from vigil.monitor.store import CheckRow
from vigil.monitor.thresholds import DriftThresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Windows:
    """The run day and the two windows every check compares: [start, end) in UTC."""

    day: date
    reference: tuple[datetime, datetime]
    recent: tuple[datetime, datetime]


def utc(value) -> datetime:
    ts = datetime.fromisoformat(str(value))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _load_features(name: str):
    import pandas as pd

    path = config.paths().features / f"{name}.parquet"
    if not path.exists():
        raise UserError(f"feature table {path} does not exist: run `vigil dbt marts` first.")
    return pd.read_parquet(path)


def _window(frame, column: str, start: datetime, end: datetime):
    ts = frame[column]
    return frame[(ts >= start) & (ts < end)]


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


def monitored_inputs() -> dict[str, str]:
    """Feature table -> its time column: every table a check reads."""
    inputs = {view: "event_timestamp" for view in monitored_features()}
    return {**inputs, "posts": "created_at", "post_behavior": "event_timestamp"}


def freshness_rows(win: Windows) -> list[CheckRow]:
    """An alert per input table that is missing or has no row from the run day's start on."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    day, rows = win.day.isoformat(), []
    since = day_start(win.day)
    for table, column in monitored_inputs().items():
        path = config.paths().features / f"{table}.parquet"
        if not path.exists():
            rows.append(CheckRow(day, "input_missing", table, math.nan, 0, True, 0, 0, str(path)))
            continue
        times = pq.read_table(path, columns=[column]).column(column)
        newest = pc.max(times).as_py() if len(times) else None
        if newest is None or utc(newest) < since:
            detail = f"newest {column} {utc(newest).isoformat() if newest else 'none'} in {path}"
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
    """``text_oov`` (the excess share of new, repeated tokens among the recent posts' tokens) and
    ``text_new_posts`` (the excess share of recent posts holding such a token; its detail names
    the new tokens): see :func:`vigil.monitor.statistics.text_drift`."""
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
    words = ", ".join(text["new_tokens"][:10]) or "none"
    return [
        CheckRow(
            win.day.isoformat(),
            check,
            "posts:text",
            value,
            limit,
            bool(value > limit),
            len(ref_posts),
            len(cur_posts),
            detail,
        )
        for check, value, limit, detail in (
            (
                "text_oov",
                text["excess"],
                thresholds.text_oov,
                f"current_oov={text['current_oov']:.4f} baseline_oov={text['baseline_oov']:.4f}",
            ),
            (
                "text_new_posts",
                text["post_excess"],
                thresholds.text_new_posts,
                (
                    f"current={text['current_new_posts']:.4f} "
                    f"baseline={text['baseline_new_posts']:.4f} new tokens: {words}"
                ),
            ),
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


def confirmed_rate_row(day, scores, reference, recent, thresholds) -> CheckRow | None:
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
