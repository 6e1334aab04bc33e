"""vigil_ranking: the daily home timelines: topic model -> ranker -> every user's top 10 -> gate.

For day D (``params.day`` or the logical date's day) the ranking time is D 00:00 UTC and only the
lake's data before it is read (``vigil ingest`` of a ``vigil simulate-discovery`` world, or the
lake vigil_daily keeps). Each task calls one step of :mod:`vigil.ranking.pipeline`:

fit_topics (the topic model version on the posts before D; reused when one was fitted on exactly
those posts) -> train_ranker (``models/ranker/dt=D/``) -> rank_timelines (every user's top 10 by
the bulk path, health re-rank joined with the champion harm model's scores when there is a
champion: ``ranking/home/dt=D/timelines.parquet`` + ``meta.json`` with the counts) ->
validate_timelines (the GX suite expectations/ranking_home: nothing removed or above the harm cut
shown, no post twice per user, finite scores). The Asset ``vigil://ranking/home`` is emitted by
the gate only when it passed. -> report_ranking (``ranking/report/dt=D/``: report.html with
plots and report.json: replay NDCG@10 by ranker with the topic ablation on the held-out day
before D, the shown timelines' topic and viewpoint diversity and removed slots).

Idempotent: the inputs are the lake before a fixed time, training is seeded, outputs are
rewritten whole at paths keyed by D, so a retry or a re-run writes the same timelines.
No task writes the warehouse, so none takes the ``vigil_warehouse`` pool.

Params: ``day`` (YYYY-MM-DD) ranks that day instead of the logical date's; ``workers`` forks
the ranking over this many processes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task
from assets import RANKED_TIMELINES

default_args = {
    "owner": "vigil-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}


def _day(context) -> str:
    day = context["params"].get("day")
    if not day:
        when = context.get("logical_date") or context["dag_run"].run_after
        day = when.date().isoformat()
    return str(day)[:10]


def _step(name: str, *args, **kwargs) -> dict:
    from vigil.orchestration.tasks import run_task

    return run_task(f"vigil.ranking.pipeline:{name}", *args, **kwargs)


@dag(
    dag_id="vigil_ranking",
    schedule=CronTriggerTimetable("15 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "ranking", "discovery", "daily"],
    params={
        "day": Param(None, type=["null", "string"], description="YYYY-MM-DD override"),
        "workers": Param(1, type="integer", minimum=1, description="ranking processes"),
    },
    doc_md=__doc__,
)
def vigil_ranking():
    @task
    def fit_topics(**context) -> dict:
        return _step("fit_topics", _day(context))

    @task
    def train_ranker(**context) -> dict:
        return _step("train_ranker", _day(context))

    @task
    def rank_timelines(**context) -> dict:
        workers = int(context["params"].get("workers") or 1)
        return _step("rank_timelines", _day(context), workers=workers)

    @task(outlets=[RANKED_TIMELINES])
    def validate_timelines(**context) -> dict:
        return _step("gate_timelines", _day(context))

    @task
    def report_ranking(**context) -> dict:
        return _step("report", _day(context))

    fit_topics() >> train_ranker() >> rank_timelines() >> validate_timelines() >> report_ranking()


vigil_ranking()
