"""vigil_trends: the hourly Explore trends: detect -> gate.

At hour H (``params.at`` or the logical date, truncated to the hour) the streaming trend detector
(:mod:`vigil.ranking.trends`) runs over the lake's posts created before H with the newest topic
model version fitted before H (vigil_ranking's fit_topics writes it daily). detect_trends writes
the trends live at H and every user's Explore page (the live trends ranked by the user's
interests and region) to ``ranking/trends/dt=D/hour=HH/{trends,explore}.parquet`` + ``meta.json``
(counts); validate_trends runs the GX suites expectations/ranking_trends and emits the Asset
``vigil://ranking/trends`` only when they passed. A re-run of an hour rewrites the same files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task
from assets import TRENDS

default_args = {
    "owner": "vigil-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}


def _at(context) -> str:
    at = context["params"].get("at")
    if not at:
        at = (context.get("logical_date") or context["dag_run"].run_after).isoformat()
    return str(at)


def _step(name: str, *args, **kwargs) -> dict:
    from vigil.orchestration.tasks import run_task

    return run_task(f"vigil.ranking.pipeline:{name}", *args, **kwargs)


@dag(
    dag_id="vigil_trends",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "ranking", "discovery", "hourly"],
    params={"at": Param(None, type=["null", "string"], description="ISO-8601 hour override")},
    doc_md=__doc__,
)
def vigil_trends():
    @task
    def detect_trends(**context) -> dict:
        return _step("trends", _at(context))

    @task(outlets=[TRENDS])
    def validate_trends(**context) -> dict:
        return _step("gate_trends", _at(context))

    detect_trends() >> validate_trends()


vigil_trends()
