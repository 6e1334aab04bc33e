"""vigil_online_eval: control vs candidate, measured daily on an importance sample of impressions.

One task per day (the logical date's previous UTC day, whose views and decisions are complete):
build the day's impression frame (lake views + decision log), draw the importance sample with
inclusion probabilities rising with both models' scores and the views (uniform floor, expected
size = the label budget), send it to the ``online_eval`` review queue, and write the
Horvitz-Thompson report (prevalence, each arm's precision and harmful views prevented, 95%
intervals) under ``<data root>/reports/online_eval/day=D/``.

Idempotent: the draw is seeded by (seed, day) over the post ids, so a retry or a backfill draws
the same posts; review requests already made are not repeated and the report is rewritten.

Params: ``control``, ``candidate`` (model ids; required), ``mode`` (shadow | hash), ``budget``
(labels a day), ``floor`` (uniform floor of pi), ``seed``, ``design`` (calibrated: sample by the
label model learned from the previous ``history`` days' labels and take the prevalence interval
from its expected variance; pps: the scores' formula and the sample's own variance),
``label_error`` (the moderators' measured error rate, corrected for by the calibrated design),
``double_review`` (default 30; null = off; W: review again every drawn harmful label of weight
views / pi above W, a third review on disagreement), ``review_removals`` (default benign: review
again the drawn removals labeled benign; all; off), ``arm_variance`` (default expected: the arms'
intervals from the label model's expected variance; sample).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task

default_args = {
    "owner": "vigil-ml",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}


@dag(
    dag_id="vigil_online_eval",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["vigil", "evaluation", "daily"],
    params={
        "control": Param(None, type=["null", "string"], description="control model id"),
        "candidate": Param(None, type=["null", "string"], description="candidate model id"),
        "mode": Param("shadow", enum=["shadow", "hash"], description="arms"),
        "budget": Param(300, type="number", minimum=1, description="labels a day (expected)"),
        "floor": Param(0.002, type="number", minimum=0, maximum=1, description="pi floor"),
        "seed": Param(0, type="integer", description="seed of the draw"),
        "design": Param("calibrated", enum=["calibrated", "pps"], description="sample design"),
        "history": Param(7, type="integer", minimum=0, description="label-model history, days"),
        "label_error": Param(
            0.0, type="number", minimum=0, maximum=0.49, description="moderators' error rate"
        ),
        "double_review": Param(
            30,
            type=["null", "number"],
            description="re-review harmful labels above this weight (null: off)",
        ),
        "review_removals": Param(
            "benign",
            enum=["benign", "all", "off"],
            description="re-review removals' benign labels (benign), every removal (all), off",
        ),
        "arm_variance": Param(
            "expected",
            enum=["expected", "sample"],
            description="arms' intervals: label model's expected variance, or the sample's",
        ),
    },
    doc_md=__doc__,
)
def vigil_online_eval():
    @task
    def sample_label_estimate(**context) -> dict:
        from vigil.orchestration.tasks import run_task

        params = context["params"]
        day = (context["logical_date"] - timedelta(days=1)).strftime("%Y-%m-%d")
        return run_task(
            "vigil.evaluation.daily:run",
            day,
            params.get("control"),
            params.get("candidate"),
            mode=params.get("mode") or "shadow",
            budget=float(params.get("budget") or 300),
            floor=float(params.get("floor") or 0.002),
            seed=int(params.get("seed") or 0),
            design=params.get("design") or "calibrated",
            history=int(params.get("history") if params.get("history") is not None else 7),
            label_error=float(params.get("label_error") or 0.0),
            double_review=(
                float(params["double_review"]) if params.get("double_review") is not None else None
            ),
            review_removals=params.get("review_removals") or "benign",
            arm_variance=params.get("arm_variance") or "expected",
        )

    sample_label_estimate()


vigil_online_eval()
