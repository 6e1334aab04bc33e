"""vigil_accounts: account integrity, daily: ingest -> features -> gate -> bot model -> score -> review.

ingest loads the raw folder (default ``<data root>/raw_accounts``, which ``vigil
simulate-accounts`` writes) with its account streams (enforcement.jsonl, devices.jsonl), the
rules' effects (``<data root>/stream/*.effects.jsonl``) and the reviewers' verdicts
(``accounts/verdicts.jsonl``); features is one dbt build (``vigil dbt accounts``, its dbt tests
the gate) of the point-in-time account features (the ``account_features`` mart, exported to
features/account_features.parquet) and of the rules' labels and verdicts (``active_labels``,
``user_labels``, exported to features/user_labels.parquet: the Feast view ``user_labels``;
docs/features.md); the ``accounts`` GX gate (expectations/accounts) must pass before the bot
model is trained on the platform's labels and every account-day is scored
(features/account_bot_scores.parquet).
review ranks ban-evasion candidates, finds coordination clusters and rebuilds the account review
queue (``$VIGIL_HOME/accounts/``: evasion_matches, clusters, review_queue; docs/accounts.md);
accounts a live rule holds suspended at the cut leave the queue, as enforcement's do.
Each task calls one function of :mod:`vigil.accounts.pipeline`; all are idempotent (unchanged
raw files are skipped; a step whose inputs, parameters and code are unchanged reuses its last
result, ``reused: true`` in its XCom, unless the ``recompute`` param is set; otherwise outputs
are rewritten whole and training is seeded), so a retry or a rerun of the same day changes
nothing. Param ``data_root``: the data root the tasks read and write (default: the data root);
``make run`` sets it to the accounts world's own (``<data root>/accounts_world``), whose accounts
are another population than the posts world's. Tasks take the one slot of the
``vigil_warehouse`` pool.
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


def _step(name: str, context: dict, *args, **kwargs) -> dict:
    """``vigil.accounts.pipeline.<name>`` inside the run's data root (param ``data_root``)."""
    from vigil import config
    from vigil.orchestration.tasks import run_task

    params = context["params"]
    kwargs["force"] = bool(params.get("recompute"))
    with config.using_home(params.get("data_root") or None):
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
        "data_root": Param(
            None, type=["null", "string"], description="data root (default: VIGIL_HOME)"
        ),
        "recompute": Param(False, type="boolean", description="recompute unchanged steps"),
    },
    doc_md=__doc__,
)
def vigil_accounts():
    @task
    def ingest(**context) -> dict:
        return _step("ingest", context, context["params"].get("raw_dir") or None)

    @task
    def features(**context) -> dict:
        return _step("features", context)

    @task(outlets=[ACCOUNT_FEATURES])
    def validate_features(**context) -> dict:
        return _step("gate", context)

    @task
    def train_bots(**context) -> dict:
        return _step("train", context, seed=int(context["params"].get("seed") or 0))

    @task(outlets=[ACCOUNT_SCORES])
    def score_bots(**context) -> dict:
        return _step("score", context)

    @task
    def review(**context) -> dict:
        return _step("review", context)

    ingest() >> features() >> validate_features() >> train_bots() >> score_bots() >> review()


vigil_accounts()
