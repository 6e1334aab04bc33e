"""vigil_train: build the training set, train, evaluate and register the harmful-content models.

Runs when fresh features land (the ``vigil://features/moderation`` Asset that ``vigil_daily``
emits after its feature gate), when the drift monitor raises ``vigil://monitor/drift_alert``,
or weekly (Mondays 03:00 UTC) whichever comes first. ``training.train.train()`` does the work:
the training set through Feast's point-in-time retrieval, the models, the evaluation report and
the registry entry; the new model becomes champion only if it beats the current one. A run
triggered by the drift alert calls ``training.promotion.retrain_and_decide()`` instead: a
challenger on the recent window, compared with the champion on the same most recent holdout.
An Asset-triggered run has no params: the retrain's settings (``PromotionConfig``) come from
``<data root>/models/promotion.json`` when it exists. The decision, with its numbers, is the task's
return value and a line of ``models/decisions.jsonl``; ``vigil models rollback`` undoes a promotion.
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


def _drift_events(context) -> list:
    """The drift-alert Asset events that triggered this run (empty for feature/weekly runs)."""
    try:
        events = context.get("triggering_asset_events") or {}
        items = list(events.items())
    except Exception:  # noqa: BLE001 - no asset events in this kind of run (manual, weekly, dags test)
        return []
    found = []
    for asset, asset_events in items:
        key = {getattr(asset, "uri", None), getattr(asset, "name", None), str(asset)}
        if DRIFT_ALERT.uri in key or DRIFT_ALERT.name in key:
            found.extend(asset_events)
    return found


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
    def train_evaluate_register(**context) -> dict:
        from vigil.orchestration.tasks import run_task

        drift = _drift_events(context)
        if drift:
            # A drift alert: train a challenger on the recent window and promote it only if it
            # beats the champion on the same holdout (training.promotion logs the decision).
            trigger = dict(getattr(drift[-1], "extra", None) or {})
            return run_task("training.promotion:retrain_and_decide", trigger=trigger)
        return run_task("training.train:train")

    train_evaluate_register()


vigil_train()
