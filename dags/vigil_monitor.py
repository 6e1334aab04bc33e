"""vigil_monitor: daily drift checks; a drift alert schedules ``vigil_train``.

check_drift -> emit_drift_alert

``check_drift`` runs every check of ``vigil.monitor.drift`` for the day (feature PSI/KS, text
OOV, the champion's score PSI, report rate, moderator-confirmed share of the champion's removals)
and stores them in ``monitor/checks.parquet`` (a time series) and
any alert rows in ``monitor/alerts.parquet``. ``emit_drift_alert`` has the drift-alert Asset
(``vigil://monitor/drift_alert``) as its outlet: it succeeds, emitting an Asset event that
carries what drifted, only when the day has alerts; otherwise it is skipped and no event is
emitted. A missing or stale input (no data for the day) fails ``check_drift``: no data is not
"no drift". The Asset event schedules ``vigil_train`` (retrain + champion/challenger promotion).

Keyed by the logical date (``ds``) like ``vigil_daily`` (runs at 02:00 UTC, after the day's load);
re-running a day replaces its rows. Params: ``day`` (YYYY-MM-DD override) and ``thresholds``
(path of a JSON file overriding ``vigil.monitor.drift.DriftThresholds``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from assets import DRIFT_ALERT

default_args = {
    "owner": "vigil-ml",
    "retries": 1,
    "retry_delay": timedelta(minutes=2),
}


def _day(context) -> str:
    day = context["params"].get("day")
    if not day:
        when = context.get("logical_date") or context["dag_run"].run_after
        day = when.date().isoformat()
    return day


@dag(
    dag_id="vigil_monitor",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "ml", "monitoring"],
    params={
        "day": Param(None, type=["null", "string"], description="YYYY-MM-DD override"),
        "thresholds": Param(
            None, type=["null", "string"], description="JSON file of drift thresholds"
        ),
    },
    doc_md=__doc__,
)
def vigil_monitor():
    @task
    def check_drift(**context) -> dict:
        from vigil.orchestration.tasks import run_task

        # Missing or stale inputs fail the task: no data is not "no drift".
        return run_task(
            "vigil.monitor.drift:check_day", _day(context), context["params"].get("thresholds")
        )

    @task(outlets=[DRIFT_ALERT])
    def emit_drift_alert(result: dict, **context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        if not result["alerts"]:
            raise AirflowSkipException(f"no drift on {result['day']} ({result['checks']} checks)")
        drifted = sorted({f"{a['check']}:{a['subject']}" for a in result["alerts"]})
        context["outlet_events"][DRIFT_ALERT].extra = {"day": result["day"], "drifted": drifted}
        return {"day": result["day"], "alerts": len(result["alerts"]), "drifted": drifted}

    emit_drift_alert(check_drift())


vigil_monitor()
