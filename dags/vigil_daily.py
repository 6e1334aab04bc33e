"""vigil_daily: one day of raw logs -> lake -> warehouse -> features -> scores.

ingest -> validate raw -> dbt build staging -> validate staging -> dbt build marts -> validate marts
-> graph embeddings (when a graph model exists) -> Feast apply + materialize -> validate features
-> score the day's posts with the champion.

The lake, the gates, dbt and Feast include the rules' effects log and the account reviewers'
verdicts (issue 21: ``lake/rule_effects``, ``lake/account_verdicts``, their raw and staging suites,
the ``active_labels`` mart and the ``user_labels`` feature view).

Keyed by the logical date (``ds``): a retry or a re-run rewrites the same day's partitions
(ingest deduplicates by ``event_id``; dbt and Feast rebuild), so it is idempotent. Every task that
touches the DuckDB warehouse or the Feast stores takes the one slot of the ``vigil_warehouse`` pool:
DuckDB allows a single writer.

Params:
- ``raw_dir``: where the raw logs are (default: ``<data root>/raw``, resolved at run time);
- ``backfill``: process every day found in ``raw_dir`` in this one run (one ingest, one dbt build
  per stage, one materialize) — how a 30-day history is processed without 30 runs;
- ``day``: process this day (``YYYY-MM-DD``) instead of the logical date (for runs triggered
  with ``logical_date: null``).

Quality-gate failures and missing stages fail the task at once (no retry: retrying cannot fix
data); infrastructure errors are retried.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from assets import FEATURES, LAKE_EVENTS, SCORES, WAREHOUSE_MARTS

POOL = "vigil_warehouse"

default_args = {
    "owner": "vigil-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "pool": POOL,
}


def _run_args(context) -> tuple[str, str | None, bool]:
    """(day, raw_dir, backfill) of this run: the day is ``params.day`` or the logical date."""
    params = context["params"]
    day = params.get("day")
    if not day:
        when = context.get("logical_date") or context["dag_run"].run_after
        day = when.date().isoformat()
    return day, params.get("raw_dir") or None, bool(params.get("backfill"))


def _gate(stage: str, context) -> dict:
    from vigil.orchestration.tasks import run_task

    day, _, backfill = _run_args(context)
    return run_task("vigil.quality.gate:run_gate", stage, run_date=None if backfill else day)


def _build(stage: str, context) -> dict:
    from vigil.orchestration.tasks import run_task

    day, _, backfill = _run_args(context)
    return run_task("vigil.warehouse.dbt:build", stage, as_of=None if backfill else day)


@dag(
    dag_id="vigil_daily",
    # Data-interval semantics: the run for day D starts after D ends, with ds = D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "daily", "warehouse", "features"],
    params={
        "raw_dir": Param(None, type=["null", "string"], description="raw log dir"),
        "backfill": Param(False, type="boolean", description="process every day in raw_dir"),
        "day": Param(None, type=["null", "string"], description="YYYY-MM-DD override"),
    },
    doc_md=__doc__,
)
def vigil_daily():
    @task
    def ingest(**context) -> dict:
        from vigil.config import paths
        from vigil.orchestration.tasks import run_task

        day, raw_dir, backfill = _run_args(context)
        return run_task(
            "vigil.lake.ingest:ingest", raw_dir or paths().raw, day=None if backfill else day
        )

    # An Asset event means the stage's output passed its gate: the gate task carries the outlet.
    @task(outlets=[LAKE_EVENTS])
    def validate_raw(**context) -> dict:
        return _gate("raw", context)

    @task
    def dbt_staging(**context) -> dict:
        return _build("staging", context)

    @task
    def validate_staging(**context) -> dict:
        return _gate("staging", context)

    @task
    def dbt_marts(**context) -> dict:
        return _build("marts", context)

    @task(outlets=[WAREHOUSE_MARTS])
    def validate_marts(**context) -> dict:
        return _gate("marts", context)

    @task
    def graph_embed(**context) -> dict:
        """The day's GraphSAGE snapshot (docs/graph.md); skipped without a trained graph model."""
        from vigil.orchestration.tasks import run_task

        day, _, backfill = _run_args(context)
        return run_task("vigil.graph.publish:for_daily_run", day, backfill)

    @task
    def feast_materialize(**context) -> dict:
        from vigil.orchestration.tasks import run_task

        run_task("vigil.serving.features:apply")
        return run_task("vigil.serving.features:materialize")

    @task(outlets=[FEATURES])
    def validate_features(**context) -> dict:
        return _gate("features", context)

    @task(outlets=[SCORES])
    def score(**context) -> dict:
        from vigil.orchestration.tasks import run_task

        day, _, _ = _run_args(context)
        return run_task("training.score:score_day", day)

    (
        ingest()
        >> validate_raw()
        >> dbt_staging()
        >> validate_staging()
        >> dbt_marts()
        >> validate_marts()
        >> graph_embed()
        >> feast_materialize()
        >> validate_features()
        >> score()
    )


vigil_daily()
