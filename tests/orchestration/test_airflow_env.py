"""The Airflow environment: settings passed to every airflow process, and the metadata DB."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from vigil.orchestration import airflow_env, tasks


def test_env_points_airflow_at_the_data_root_and_repo_dags(vigil_home):
    env = airflow_env.build_env(api_port=18080)
    assert env["AIRFLOW_HOME"] == str(vigil_home / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(Path(__file__).resolve().parents[2] / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{vigil_home / 'airflow' / 'airflow.db'}"
    )
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    # Every process must share one JWT secret, and it is stable across calls.
    assert (
        env["AIRFLOW__API_AUTH__JWT_SECRET"]
        == airflow_env.build_env()["AIRFLOW__API_AUTH__JWT_SECRET"]
    )
    secret_file = vigil_home / "airflow" / ".jwt_secret"
    assert secret_file.stat().st_mode & 0o077 == 0


def test_postgres_profile_uses_the_configured_url(vigil_home, monkeypatch):
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/some_db"
    monkeypatch.setenv("VIGIL_AIRFLOW_DB", "postgres")
    monkeypatch.setenv("VIGIL_POSTGRES_URL", url)
    assert airflow_env.build_env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == url


def test_missing_postgres_database_is_created_once():
    import sqlalchemy as sa

    name = f"vigil_airflow_envtest_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    try:
        assert airflow_env.ensure_postgres_database(url) is True
        assert airflow_env.ensure_postgres_database(url) is False
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("select count(*) from pg_database where datname = :n"), {"n": name}
            ).scalar()
        assert found == 1
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}"'))
        admin.dispose()


@pytest.mark.slow
def test_ensure_ready_migrates_once_and_creates_the_pool(vigil_home):
    assert airflow_env.ensure_ready() is True
    assert airflow_env.ensure_ready() is False  # marker + same alembic revision: nothing to do
    pools = airflow_env.airflow("pools", "get", airflow_env.WAREHOUSE_POOL, "-o", "json").stdout
    assert '"slots": "1"' in pools or '"slots": 1' in pools


def test_to_xcom_makes_results_strict_json():
    import dataclasses
    import json
    from datetime import date

    @dataclasses.dataclass
    class Gate:
        success: bool
        failed: list

    value = {
        "auc": float("nan"),
        "lift": float("inf"),
        "n": 3,
        "day": date(2026, 10, 4),
        "gate": Gate(True, []),
    }
    out = tasks.to_xcom(value)
    assert out == {
        "auc": None,
        "lift": None,
        "n": 3,
        "day": "2026-10-04",
        "gate": {"success": True, "failed": []},
    }
    json.dumps(out, allow_nan=False)  # what Airflow's API client does


def test_run_task_imports_calls_converts_and_fails_fast():
    from airflow.sdk.exceptions import AirflowFailException

    # A real function by name: math.fsum of a list, and a float result that XCom keeps.
    assert tasks.run_task("math:fsum", [0.5, 0.25]) == 0.75
    assert tasks.run_task("math:sqrt", float("inf")) is None  # non-finite -> None for XCom
    # A stage that is not installed, or an error the user must fix: fail at once, no retry.
    with pytest.raises(AirflowFailException, match="ModuleNotFoundError"):
        tasks.run_task("no_such_module_xyz:run")
    with pytest.raises(AirflowFailException, match="UserError: unknown quality stage"):
        tasks.run_task("vigil.quality.gate:run_gate", "no_such_stage")
    # Anything else is left to Airflow's retries.
    with pytest.raises(ValueError):
        tasks.run_task("math:sqrt", -1.0)


def test_secret_files_are_owner_only(vigil_home):
    """Issue 19 item 7: the generated admin password file was created 0644 by Airflow."""
    import os
    import stat

    old_umask = os.umask(0o022)  # the usual umask: Airflow's own file would be 0644
    try:
        airflow_env.build_env()
    finally:
        os.umask(old_umask)
    for path in (
        airflow_env.password_file(),
        airflow_env.airflow_home() / ".api_secret_key",
        airflow_env.airflow_home() / ".jwt_secret",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # An existing file written world-readable is tightened on the next start.
    airflow_env.password_file().chmod(0o644)
    airflow_env.build_env()
    assert stat.S_IMODE(airflow_env.password_file().stat().st_mode) == 0o600
