"""Where drift checks are kept: ``monitor/checks.parquet`` (every check, a time series keyed by
``run_date``) and ``monitor/alerts.parquet`` (the checks that crossed their threshold). Writing a
day replaces that day's rows, so re-running a day is idempotent."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from vigil import config

log = logging.getLogger(__name__)


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


def store_rows(rows: list[CheckRow], run_date: date) -> None:
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
