"""vigil_train: build the training set, train, evaluate and register the harmful-content models.

Runs when fresh features land (the ``vigil://features/moderation`` Asset that ``vigil_daily``
emits after its feature gate), when the drift monitor raises ``vigil://monitor/drift_alert``,
or weekly (Mondays 03:00 UTC) whichever comes first. ``training.train.train()`` does the work:
the training set through Feast's point-in-time retrieval, the models, the evaluation report and
the registry entry; the new model becomes champion only if it beats the current one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from assets import DRIFT_ALERT, FEATURES, MODEL

default_args = {
    "owner": "vigil-ml",
    "retries": 1,
    "retry_delay": timedelta(minutes=2),
    # Training reads the feature exports that dbt/Feast rewrite: take turns with vigil_daily.
    "pool": "vigil_warehouse",
}


@dag(
    dag_id="vigil_train",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"),
        assets=(FEATURES | DRIFT_ALERT),
    ),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "ml", "training"],
    doc_md=__doc__,
)
def vigil_train():
    @task(outlets=[MODEL], execution_timeout=timedelta(hours=2))
    def train_evaluate_register() -> dict:
        from vigil.airflow_env import fail_fast, to_xcom

        try:
            from training.train import train

            return to_xcom(train())
        except Exception as exc:
            raise fail_fast(exc) from exc

    train_evaluate_register()


vigil_train()
