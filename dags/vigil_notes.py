"""vigil_notes: Community Notes download files -> lake -> warehouse -> scores -> Feast, hourly.

ingest -> validate raw -> dbt staging -> dbt marts -> validate warehouse -> score -> validate
scores -> publish (feature tables + Feast apply and materialize of the notes views).

Each task calls one step of :mod:`vigil.notes.pipeline` (the same steps as ``vigil notes run``).
Idempotent: ingest writes nothing when the download files have not changed, dbt rebuilds, scoring
is seeded and timed by the input's latest rating, and publishing keeps one row per entity and
change, so a retry or a second run on the same files changes nothing. Tasks that touch the DuckDB
warehouse or the Feast stores take the one slot of the ``vigil_warehouse`` pool.

Gates: the GX suites expectations/notes_raw, notes_warehouse and notes_scores; validate_scores
also fails when the share of notes per status moved by more than 10 points since the last
published run (a status distribution that jumps is an alert). An Asset event is emitted only by a
gate (or by publish, after the scores' gate) that passed.

Params: ``raw_dir``: the folder with the download files (default ``<data root>/raw``, whose
``notes/`` subfolder ``vigil simulate-notes`` writes); ``seed``: the factor initialization's seed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task
from assets import NOTES_FEATURES, NOTES_LAKE, NOTES_WAREHOUSE

default_args = {
    "owner": "vigil-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "pool": "vigil_warehouse",
}


def _step(name: str, *args, **kwargs) -> dict:
    from vigil.orchestration.tasks import run_task

    return run_task(f"vigil.notes.pipeline:{name}", *args, **kwargs)


@dag(
    dag_id="vigil_notes",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "notes", "hourly"],
    params={
        "raw_dir": Param(None, type=["null", "string"], description="download files' folder"),
        "seed": Param(0, type="integer", description="seed of the factor initialization"),
    },
    doc_md=__doc__,
)
def vigil_notes():
    @task
    def ingest(**context) -> dict:
        return _step("ingest", context["params"].get("raw_dir") or None)

    @task(outlets=[NOTES_LAKE])
    def validate_raw() -> dict:
        return _step("gate", "raw")

    @task
    def dbt_staging() -> dict:
        return _step("dbt_build", "staging")

    @task
    def dbt_marts() -> dict:
        return _step("dbt_build", "marts")

    @task(outlets=[NOTES_WAREHOUSE])
    def validate_warehouse() -> dict:
        return _step("gate", "warehouse")

    @task
    def score(**context) -> dict:
        return _step("score", seed=int(context["params"].get("seed") or 0))

    @task
    def validate_scores() -> dict:
        return _step("gate", "scores")

    @task(outlets=[NOTES_FEATURES])
    def publish() -> dict:
        return _step("publish")

    (
        ingest()
        >> validate_raw()
        >> dbt_staging()
        >> dbt_marts()
        >> validate_warehouse()
        >> score()
        >> validate_scores()
        >> publish()
    )


vigil_notes()
