"""Suite-wide test settings: no test writes into ./data, nothing phones home."""

import logging
import os
import sys
from pathlib import Path

import pytest

# Shared test helpers (lake files, quality data, Airflow helpers) are imported by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

# pytest-xdist workers (make test runs two) start from a __main__ without __file__; pyspark's
# pyspark.sql.connect, which great_expectations imports, takes that for a doctest run and calls
# sys.exit(0) on import. Give the worker's __main__ the file it runs from.
_main = sys.modules.get("__main__")
if (
    _main is not None
    and getattr(_main, "__spec__", None) is None
    and not hasattr(_main, "__file__")
):
    _main.__file__ = sys.argv[0] if sys.argv and sys.argv[0] else "pytest"


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # The simulated worlds the tests build are reviewed by the simulated moderators (vigil.review).
    os.environ.setdefault("VIGIL_REVIEW_ANSWERER", "sim.moderators:answer")
    # A test that forgets to set VIGIL_HOME writes into a throwaway root, never the user's ./data.
    os.environ["VIGIL_HOME"] = str(tmp_path_factory.mktemp("vigil-home"))
    yield


def _closed_stream_handlers():
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in list(lg.handlers):
            if getattr(getattr(handler, "stream", None), "closed", False):
                yield lg, handler


@pytest.fixture(autouse=True)
def _no_handlers_on_closed_streams():
    """Airflow configures logging when it is first imported: root, flask_appbuilder, uvicorn and
    gunicorn get StreamHandlers on the sys.stdout/sys.stderr of that moment. When that moment is
    inside a test that captures output (capsys), those streams are closed when the test ends, and
    every later record in the same worker prints "--- Logging error --- Traceback ..." into the
    next test's stderr. Drop such handlers before each test (test-process hygiene only: a real
    process never swaps its stdout)."""
    for lg, handler in _closed_stream_handlers():
        lg.removeHandler(handler)
    yield


# ---- markers: one per external system a test needs -------------------------------------------
# `pytest -m "not spark"` (or dbt, airflow, feast, redis, postgres, browser) leaves out exactly the
# tests that need that system. Markers come from three places, in this order:
#   1. fixtures that stand for a system (a parametrized fixture: only its instances on that system);
#   2. FILE_MARKS below: per file, "*" for every test in it, or a test function's name;
#   3. the folder: every test under tests/faults/ is `faults`.
# A name in FILE_MARKS that the file no longer defines is a collection error, so a renamed test
# cannot silently lose its marker.

SYSTEMS = ("dbt", "airflow", "feast", "redis", "postgres", "spark", "browser")

# fixture name -> markers; (fixture name, param) -> markers for that parametrized instance only
FIXTURE_MARKS: dict[str | tuple[str, str], tuple[str, ...]] = {
    "feast_home": ("feast",),
    "chromium": ("browser",),
    ("online_store", "redis"): ("redis",),
    ("backend", "postgres"): ("postgres",),
}

FILE_MARKS: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts_features/test_account_features.py": {"*": ("dbt",)},
    "accounts_features/test_account_reputation_features.py": {"*": ("dbt",)},
    "accounts_features/test_account_signup_features.py": {"*": ("dbt",)},
    "accounts_features/test_bots.py": {
        "test_scores_beat_the_profile_baseline_against_truth": ("dbt",),
        "test_scores_are_calibrated_probabilities": ("dbt",),
        "test_accounts_gate_passes_on_the_small_world": ("dbt",),
    },
    "bench/test_bench_uam.py": {
        "test_bench_uam_runs_dbt_and_uam_update_on_a_small_lake": ("dbt",),
    },
    "faults/test_feast_faults.py": {"*": ("dbt", "feast")},
    "moderation/test_service.py": {"*": ("feast",)},
    "notes/test_notes_pipeline.py": {"*": ("dbt", "feast")},
    "monitor/test_drift_e2e.py": {
        "*": ("dbt", "feast"),
        "test_vigil_monitor_dag_emits_the_asset_event_only_on_alert": ("airflow",),
    },
    "orchestration/test_airflow_env.py": {
        "test_missing_postgres_database_is_created_once": ("postgres",),
        "test_ensure_ready_migrates_once_and_creates_the_pool": ("airflow",),
    },
    "orchestration/test_airflow_listeners.py": {"*": ("airflow",)},
    "orchestration/test_vigil_notes_dag.py": {"*": ("airflow", "dbt", "feast")},
    "orchestration/test_vigil_ranking_dag.py": {"*": ("airflow",)},
    "orchestration/test_vigil_online_eval_dag.py": {"*": ("airflow",)},
    "orchestration/test_airflow_ui_e2e.py": {"*": ("airflow", "dbt", "feast")},
    "orchestration/test_dag_integrity.py": {"*": ("airflow",)},
    "orchestration/test_pipeline_e2e.py": {"*": ("airflow", "dbt", "feast")},
    "stream/test_stream.py": {
        "test_stream_equals_dbt_marts_exactly": ("dbt",),
        "test_redis_partitioned_consumers_cover_every_user_once": ("redis",),
        "test_pushes_reach_the_online_store_and_keep_batch_only_features": ("feast",),
    },
    "training/test_train_e2e.py": {
        "test_dry_run_through_simulation_lake_dbt_and_feast": ("dbt", "feast"),
    },
    "uam/test_uam_daily_engines.py": {
        "test_hand_computed_minutes_per_utc_day": ("dbt",),
        "test_engines_agree_with_brute_force_and_increment_cleanly": ("dbt",),
        "test_unsorted_day_file_is_counted_by_hash_and_reported": ("dbt",),
    },
    "quality/test_service_log_gates.py": {"*": ("dbt",)},
    "uam/test_uam_memory.py": {"*": ("dbt",)},
    "uam/test_uam_update.py": {
        "test_update_matches_brute_force_and_dbt": ("dbt",),
        "test_watch_applies_days_as_they_land_and_waits_for_other_writers": ("dbt",),
    },
    "uam/test_uam_query.py": {"*": ("dbt",)},
    "uam/test_uam_window_delta.py": {"*": ("dbt",)},
    "warehouse/test_dbt_process.py": {"*": ("dbt",)},
    "warehouse/test_service_logs_dbt.py": {"*": ("dbt",)},
    "warehouse/test_rule_labels.py": {"*": ("dbt", "feast")},
    "warehouse/test_dbt_build.py": {
        "*": ("dbt",),
        "test_spark_and_duckdb_give_the_same_histogram": ("spark",),
    },
}

_TESTS = Path(__file__).resolve().parent


def _fixture_marks(item) -> set[str]:
    marks: set[str] = set()
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in getattr(item, "fixturenames", ()):
        marks.update(FIXTURE_MARKS.get(name, ()))
        if name in params:
            marks.update(FIXTURE_MARKS.get((name, str(params[name])), ()))
    return marks


def _file_marks(item, checked: set[Path]) -> set[str]:
    path = Path(str(item.fspath)).resolve()
    try:
        rel = path.relative_to(_TESTS)
    except ValueError:
        return set()
    table = FILE_MARKS.get(rel.as_posix(), {})
    module = getattr(item, "module", None)
    if table and module is not None and path not in checked:
        checked.add(path)
        stale = [name for name in table if name != "*" and not hasattr(module, name)]
        if stale:
            raise pytest.UsageError(
                f"tests/conftest.py FILE_MARKS names tests that {rel} does not define: {stale}; "
                "update the table to the tests' new names."
            )
    function = getattr(item, "originalname", None) or item.name
    marks = set(table.get("*", ()))
    marks.update(table.get(function, ()))
    if rel.parts[0] == "faults":
        marks.add("faults")
    return marks


def pytest_collection_modifyitems(config, items):
    checked: set[Path] = set()
    for item in items:
        for name in sorted(_fixture_marks(item) | _file_marks(item, checked)):
            item.add_marker(name)


# ---- a test that starts dbt without its marker fails ------------------------------------------
# An audit hook sees every process this test process starts; a dbt child started by a test (or its
# function-scoped fixtures) without the `dbt` (or, on Spark, `spark`) marker fails the test, so a new
# or moved test cannot slip into `make test-fast` unmarked. (Processes started by a `vigil`
# subprocess, and module-scoped fixtures, are not seen: mark those by hand.)
_STARTED: set[str] = set()


def _audit(event: str, args: tuple) -> None:
    if event != "subprocess.Popen":
        return
    argv = args[1] if isinstance(args[1], list | tuple) else [args[1]]
    argv = [str(a) for a in argv]
    if argv and Path(argv[0]).name == "dbt":
        _STARTED.add("spark" if "spark" in argv else "dbt")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _external_systems_are_marked(request):
    _STARTED.clear()
    yield
    unmarked = sorted(s for s in _STARTED if request.node.get_closest_marker(s) is None)
    _STARTED.clear()
    if unmarked:
        pytest.fail(
            f"{request.node.nodeid} starts {' and '.join(unmarked)} but is not marked so: add it "
            "to FILE_MARKS in tests/conftest.py."
        )
