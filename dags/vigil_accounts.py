"""vigil_accounts: account integrity, daily: ingest -> features -> gate -> bot model -> score -> review,
and ingest -> labels -> review.

ingest loads the raw folder (default ``<data root>/raw_accounts``, which ``vigil
simulate-accounts`` writes) with its account streams (enforcement.jsonl, devices.jsonl); features
rebuilds the point-in-time account features (features/account_features.parquet); the
``accounts`` GX gate (expectations/accounts) must pass before the bot model is trained on the
platform's labels and every account-day is scored (features/account_bot_scores.parquet).
labels builds the rules' labels and reviewers' verdicts (ingested from ``<data root>/stream/
*.effects.jsonl`` and ``accounts/verdicts.jsonl``) into dbt's ``active_labels`` and
``user_labels`` (``vigil dbt labels``, its dbt tests the gate) and exports
``features/user_labels.parquet`` (the Feast view ``user_labels``; docs/features.md).
review ranks ban-evasion candidates, finds coordination clusters and rebuilds the account review
queue (``$VIGIL_HOME/accounts/``: evasion_matches, clusters, review_queue; docs/accounts.md);
accounts a live rule holds suspended at the cut leave the queue, as enforcement's do.
Each task calls one function of :mod:`vigil.accounts.pipeline` (review: of
:mod:`vigil.accounts.review_cli`); all are idempotent (unchanged
raw files are skipped, outputs are rewritten whole, training is seeded), so a retry or a rerun
of the same day changes nothing. Tasks take the one slot of the ``vigil_warehouse`` pool.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task
from assets import ACCOUNT_FEATURES, ACCOUNT_SCORES

default_args = {
    "owner": "vigil-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "pool": "vigil_warehouse",
}


def _step(name: str, *args, **kwargs) -> dict:
    from vigil.orchestration.tasks import run_task

    return run_task(f"vigil.accounts.pipeline:{name}", *args, **kwargs)


@dag(
    dag_id="vigil_accounts",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "accounts", "daily"],
    params={
        "raw_dir": Param(None, type=["null", "string"], description="accounts raw folder"),
        "seed": Param(0, type="integer", description="split and model seed"),
    },
    doc_md=__doc__,
)
def vigil_accounts():
    @task
    def ingest(**context) -> dict:
        return _step("ingest", context["params"].get("raw_dir") or None)

    @task
    def features() -> dict:
        return _step("features")

    @task(outlets=[ACCOUNT_FEATURES])
    def validate_features() -> dict:
        return _step("gate")

    @task
    def train_bots(**context) -> dict:
        return _step("train", seed=int(context["params"].get("seed") or 0))

    @task(outlets=[ACCOUNT_SCORES])
    def score_bots() -> dict:
        return _step("score")

    @task
    def labels() -> dict:
        return _step("labels")

    @task
    def review() -> dict:
        from vigil.orchestration.tasks import run_task

        return run_task("vigil.accounts.review_cli:daily_review")

    loaded = ingest()
    chain = loaded >> features() >> validate_features() >> train_bots() >> score_bots()
    [chain, loaded >> labels()] >> review()


vigil_accounts()
