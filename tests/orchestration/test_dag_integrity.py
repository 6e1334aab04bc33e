"""DAG integrity: the DagBag loads without errors, every DAG is owned, tagged and retried, the
daily chain is the documented one, and parsing stays cheap (no heavy imports at top level)."""

from __future__ import annotations

import itertools
import json

import pytest
from airflow_testlib import run_python

from vigil.orchestration import airflow_env

HEAVY = ("pandas", "torch", "feast", "duckdb", "great_expectations", "sklearn", "pyarrow", "dbt")

# The order issue 7 specifies (ingest -> ... -> score), written out by hand.
DAILY_CHAIN = [
    "ingest",
    "validate_raw",
    "dbt_staging",
    "validate_staging",
    "dbt_marts",
    "validate_marts",
    "graph_embed",  # the day's graph embeddings when a graph model exists (issue 26)
    "feast_materialize",
    "validate_features",
    "score",
]

PARSE = r"""
import json, sys, time
HEAVY = json.loads(sys.argv[2])
started = time.perf_counter()
from airflow.dag_processing.dagbag import BundleDagBag as DagBag
imported_airflow = time.perf_counter()
# As the DAG processor does: the bundle (dags folder) goes on sys.path, so `import assets` works.
bag = DagBag(dag_folder=sys.argv[1], bundle_path=sys.argv[1], bundle_name="dags-folder")
parsed = time.perf_counter()
dags = {}


def uris(cond):
    if cond is None:
        return []
    if hasattr(cond, "objects"):
        return sorted(u for o in cond.objects for u in uris(o))
    return [cond.uri]


for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        tasks[t.task_id] = {
            "owner": t.owner, "retries": t.retries, "pool": t.pool,
            "downstream": sorted(t.downstream_task_ids),
            "outlets": sorted(getattr(o, "uri", str(o)) for o in t.outlets),
        }
    dags[dag_id] = {
        "tags": sorted(dag.tags), "tasks": tasks, "fileloc": dag.fileloc,
        "timetable": type(dag.timetable).__name__,
        "schedule_assets": uris(getattr(dag.timetable, "asset_condition", None)),
        "params": sorted(dag.params.keys()),
        "max_active_runs": dag.max_active_runs,
    }
print(json.dumps({
    "import_errors": {k: str(v)[:2000] for k, v in bag.import_errors.items()},
    "dags": dags,
    "airflow_import_s": imported_airflow - started,
    "parse_s": parsed - imported_airflow,
    "heavy": sorted(m for m in HEAVY if m in sys.modules),
    "vigil_modules": sorted(m for m in sys.modules if m.startswith(("vigil.", "training"))),
}))
"""


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("dagbag")
    old = os.environ.get("VIGIL_HOME")
    os.environ["VIGIL_HOME"] = str(home)
    try:
        env = airflow_env.build_env()
    finally:
        if old is not None:
            os.environ["VIGIL_HOME"] = old
    return run_python(PARSE, env, str(airflow_env.DAGS_FOLDER), json.dumps(HEAVY))


def test_dagbag_has_no_import_errors(bag):
    assert bag["import_errors"] == {}
    assert set(bag["dags"]) == {
        "vigil_daily",
        "vigil_monitor",
        "vigil_train",
        "vigil_notes",
        "vigil_online_eval",
        "vigil_accounts",
        "vigil_ranking",
        "vigil_trends",
    }


def test_every_dag_has_tags_owner_and_retries(bag):
    for dag_id, dag in bag["dags"].items():
        assert dag["tags"], dag_id
        assert "vigil" in dag["tags"], dag_id
        for task_id, task in dag["tasks"].items():
            assert task["owner"] and task["owner"] != "airflow", (dag_id, task_id)
            assert task["retries"] >= 1, (dag_id, task_id)


def test_one_dag_per_file_named_after_it(bag):
    for dag_id, dag in bag["dags"].items():
        assert dag["fileloc"].endswith(f"/dags/{dag_id}.py")


def test_daily_chain_pool_and_assets(bag):
    daily = bag["dags"]["vigil_daily"]
    tasks = daily["tasks"]
    assert set(tasks) == set(DAILY_CHAIN)
    for upstream, downstream in itertools.pairwise(DAILY_CHAIN):
        assert tasks[upstream]["downstream"] == [downstream]
    assert tasks["score"]["downstream"] == []
    # DuckDB allows one writer: every task touching the warehouse/Feast takes the 1-slot pool.
    assert {t["pool"] for t in tasks.values()} == {airflow_env.WAREHOUSE_POOL}
    assert tasks["validate_features"]["outlets"] == ["vigil://features/moderation"]
    assert {"raw_dir", "backfill", "day"} <= set(daily["params"])
    assert daily["max_active_runs"] == 1


def test_train_runs_on_features_drift_or_weekly(bag):
    train = bag["dags"]["vigil_train"]
    assert train["timetable"] == "AssetOrTimeSchedule"
    assert train["schedule_assets"] == [
        "vigil://features/moderation",
        "vigil://monitor/drift_alert",
    ]


def test_parsing_is_cheap(bag):
    # Loose bound: the machine is shared; the point is no heavy import at parse time.
    assert bag["heavy"] == []
    assert bag["vigil_modules"] == []
    assert bag["parse_s"] < 15, bag["parse_s"]


# Which gate guards each Asset: an Asset event promises the output passed that gate (issue 18).
GATED_ASSETS = {
    "vigil://lake/events": ("vigil_daily", "validate_raw"),
    "vigil://warehouse/marts": ("vigil_daily", "validate_marts"),
    "vigil://features/moderation": ("vigil_daily", "validate_features"),
    "vigil://lake/notes": ("vigil_notes", "validate_raw"),
    "vigil://warehouse/notes": ("vigil_notes", "validate_warehouse"),
    "vigil://features/notes": ("vigil_notes", "validate_scores"),
    "vigil://features/accounts": ("vigil_accounts", "validate_features"),
    "vigil://scores/accounts": ("vigil_accounts", "validate_features"),
    "vigil://ranking/home": ("vigil_ranking", "validate_timelines"),
    "vigil://ranking/trends": ("vigil_trends", "validate_trends"),
}


def _downstream_closure(tasks: dict, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in tasks[todo.pop()]["downstream"]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_assets_are_emitted_only_after_their_gate(bag):
    emitted = set()
    for dag_id, dag in bag["dags"].items():
        for task_id, task in dag["tasks"].items():
            for uri in task["outlets"]:
                emitted.add(uri)
                if uri not in GATED_ASSETS:
                    continue
                gate_dag, gate = GATED_ASSETS[uri]
                assert dag_id == gate_dag, (uri, dag_id, task_id)
                after_gate = {gate} | _downstream_closure(dag["tasks"], gate)
                assert task_id in after_gate, f"{uri} is an outlet of {task_id}, before {gate}"
    assert set(GATED_ASSETS) <= emitted
