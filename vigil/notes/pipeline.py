"""`vigil notes run`: the Community Notes pipeline, one step per function (the DAG's tasks).

    ingest      download files -> lake/notes (validated, bad rows quarantined)   vigil.notes.lake
    gate raw    GX suites expectations/notes_raw on the lake tables and quarantine
    dbt         staging, then marts (one `dbt build` each, models enabled by var notes=true)
    gate wh     GX suites expectations/notes_warehouse on notes, note_ratings, contributors
    score       both rounds, statuses, history, collusion, reputation -> notes/scores/
    gate scores GX suites expectations/notes_scores + the status-distribution shift check
    publish     the feature tables -> features/, Feast apply + materialize of the notes views

Every step reads what the one before wrote under the data root, so the Airflow DAG
``vigil_notes`` calls the same functions task by task, and a failed gate stops everything after
it: nothing unvalidated reaches Feast.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

DBT_STAGES: dict[str, list[str]] = {
    "staging": ["path:models/staging/notes"],
    "marts": ["path:models/marts/notes"],
}
GATES = {"raw": "notes_raw", "warehouse": "notes_warehouse", "scores": "notes_scores"}
DBT_VARS = {"notes": True}


def ingest(raw_dir: str | Path | None = None) -> dict:
    from vigil.notes import lake

    return lake.ingest(raw_dir)


def dbt_build(stage: str) -> dict:
    """One ``dbt build`` of the notes models of ``stage`` (staging | marts)."""
    from vigil.warehouse.dbt import run_dbt

    if stage not in DBT_STAGES:
        raise UserError(f"unknown notes dbt stage {stage!r}: use one of {', '.join(DBT_STAGES)}.")
    from vigil.notes import lake

    if not lake.table_path("ratings").is_file():
        raise UserError(f"{lake.table_path('ratings')} does not exist: run `vigil notes ingest`.")
    return run_dbt("build", DBT_STAGES[stage], dbt_vars=DBT_VARS, label=f"dbt build notes {stage}")


def gate(stage: str) -> dict:
    """The GX gate of ``stage`` (raw | warehouse | scores); scores also checks the status
    distribution against the last published run. Raises (a UserError) when a gate fails."""
    from vigil.quality.gate import run_gate

    if stage not in GATES:
        raise UserError(f"unknown notes gate {stage!r}: use one of {', '.join(GATES)}.")
    result = run_gate(GATES[stage]).to_dict()
    if stage == "scores":
        from vigil.notes import outputs, status_gate

        result["status_shift"] = status_gate.check(outputs.candidate_statuses())
    return result


def score(seed: int = 0, solver: str = "als") -> dict:
    from vigil.notes import outputs

    return outputs.score_lake(seed=seed, solver=solver)


def publish(materialize: bool = True) -> dict:
    """Merge the gated candidate tables into features/, record the status distribution, then
    register and materialize the notes views in Feast."""
    from vigil.notes import outputs, status_gate

    merged = outputs.publish_tables()
    run = outputs.read_run()
    status_gate.record(run["statuses"], run["now_millis"])
    result = {"tables": merged}
    if materialize:
        from vigil.notes import serving

        result["feast"] = serving.apply_and_materialize()
    return result


def run(raw_dir: str | Path | None = None, seed: int = 0, materialize: bool = True) -> dict:
    """Every step in order; returns each step's result."""
    started = time.perf_counter()
    steps: dict[str, object] = {}
    steps["ingest"] = ingest(raw_dir)
    steps["gate_raw"] = _short_gate(gate("raw"))
    steps["dbt_staging"] = _short_dbt(dbt_build("staging"))
    steps["dbt_marts"] = _short_dbt(dbt_build("marts"))
    steps["gate_warehouse"] = _short_gate(gate("warehouse"))
    steps["score"] = score(seed=seed)
    steps["gate_scores"] = _short_gate(gate("scores"))
    steps["publish"] = publish(materialize=materialize)
    steps["seconds"] = round(time.perf_counter() - started, 1)
    log.info("notes pipeline: done in %.1f s (data root %s)", steps["seconds"], config.home())
    return steps


def _short_gate(result: dict) -> dict:
    keep = ("stage", "success", "summary", "status_shift")
    return {k: result[k] for k in keep if k in result}


def _short_dbt(summary: dict) -> dict:
    return {k: summary.get(k) for k in ("models", "tests", "seconds")}


# -- CLI (vigil notes ingest | run) ---------------------------------------------------------------


def configure_run_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw", type=Path, default=None, help="folder with the download files (default DATA/raw)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the factor initialization")
    parser.add_argument(
        "--no-feast", action="store_true", help="stop after writing the feature tables"
    )


def print_run(steps: dict) -> None:
    from vigil.notes import outputs

    ing = steps["ingest"]
    print(
        f"ingest: {ing['read']:,} rows read, {ing['loaded']:,} loaded, "
        f"{ing['quarantined']:,} quarantined" + (" (unchanged)" if ing.get("unchanged") else "")
    )
    for key in ("gate_raw", "gate_warehouse", "gate_scores"):
        print(f"{key.replace('_', ' ')}: {steps[key].get('summary', '')}")
    for key in ("dbt_staging", "dbt_marts"):
        s = steps[key]
        print(
            f"{key.replace('_', ' ')}: {s['models']} models, {s['tests']} tests, {s['seconds']} s"
        )
    print(outputs.status_line(steps["score"]))
    feast = steps["publish"].get("feast")
    if feast:
        print(f"feast: {feast['rows']:,} rows materialized into {len(feast['views'])} views")
    print(f"notes pipeline done in {steps['seconds']} s")
