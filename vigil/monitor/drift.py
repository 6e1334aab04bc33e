"""Drift monitoring: is today's traffic still the traffic the champion was trained on?

Checks (each one row in ``monitor/checks.parquet``, a time series keyed by ``run_date``):

- ``feature_psi`` / ``feature_ks``: population stability index and the two-sample Kolmogorov-Smirnov
  statistic per feature of the champion's feature service, recent window vs training reference.
- ``text_oov``: share of post tokens not in the reference vocabulary, minus the reference's own
  held-out share (new words: abusers changing vocabulary, a new spam template).
- ``text_new_posts``: share of recent posts holding a new token that several posts repeat, minus
  the reference's held-out share; it names the new tokens. Per post, not per token, so a few new
  words in many posts (a vocabulary switch, a spam campaign) are not diluted by ordinary words.
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

This module runs a day's checks and is the monitor's API; the checks themselves are in
:mod:`vigil.monitor.checks`, the thresholds in :mod:`vigil.monitor.thresholds`, the time series
in :mod:`vigil.monitor.store`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.monitor.checks import (
    Windows,
    confirmed_rate_row,
    confirmed_share,
    day_start,
    feature_rows,
    freshness_rows,
    monitored_features,
    report_rate_rows,
    score_rows,
    text_rows,
    utc,
)
from vigil.monitor.statistics import (
    ks_statistic,
    new_token_posts,
    oov_share,
    psi,
    text_drift,
    tokens,
    vocabulary,
)
from vigil.monitor.store import CheckRow, alerts_path, checks_path, read_alerts, store_rows
from vigil.monitor.thresholds import DriftThresholds

log = logging.getLogger(__name__)

# this module is the monitor's API: the names other code imports from it
__all__ = [
    "CheckRow",
    "DriftThresholds",
    "alerts_path",
    "check_day",
    "checks_path",
    "confirmed_share",
    "ks_statistic",
    "monitored_features",
    "new_token_posts",
    "oov_share",
    "psi",
    "read_alerts",
    "run_checks",
    "text_drift",
    "tokens",
    "vocabulary",
]


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
    recent_start = day_start(run_date) - timedelta(days=thresholds.recent_days - 1)
    meta = champion_info()
    window = ((meta or {}).get("windows") or {}).get("train")
    if window:
        start, end = (utc(v) for v in window)
        if start < recent_start:
            return start, min(end, recent_start)
        log.info(
            "champion's training window starts after the recent window: using the default reference"
        )
    return recent_start - timedelta(days=thresholds.reference_days), recent_start


def windows(run_date: date, thresholds: DriftThresholds) -> Windows:
    recent_end = day_start(run_date) + timedelta(days=1)
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
    row = confirmed_rate_row(run_date.isoformat(), scores, win.reference, win.recent, thresholds)
    if row is not None:
        rows.append(row)
    store_rows(rows, run_date)
    return rows


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


def _read_scores(path: Path):
    import pandas as pd
    import pyarrow.parquet as pq

    wanted = [
        "scored_at", "probability", "student", "model_id", "post_id", "created_at", "decision"
    ]  # fmt: skip
    have = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in wanted if c in have])


# ---------------------------------------------------------------- CLI


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
