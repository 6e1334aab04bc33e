"""End to end through the Airflow UI's stack, on SQLite and on PostgreSQL.

`make airflow`'s start function launches `airflow standalone` on a free port; the test signs in
through `/auth/token` with the generated password, unpauses and triggers `vigil_daily` through the
REST API on a tiny simulated world, waits for the run to succeed, takes a headless Chromium
screenshot of the DAG's grid view while logged in, and stops the process group cleanly.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from datetime import date, timedelta

import pytest
from airflow_testlib import api, missing_stage_modules, png_stats, screenshot, wait_for_run

from vigil import config
from vigil.orchestration import airflow_env
from vigil.orchestration import ui as airflow_ui

pytestmark = pytest.mark.slow

# Small, but large enough that the moderators labeled some posts (the labels table is not empty).
TINY = {"users": 1000, "days": 4, "start": date(2026, 10, 1), "seed": 11}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed here when missing (about 45 s)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not shutil.which(path):
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True)
    assert shutil.which(path), "chromium could not be installed"
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "vigil"))
    monkeypatch.setenv("VIGIL_AIRFLOW_DB", request.param)
    dbname = None
    if request.param == "postgres":
        dbname = f"vigil_airflow_test_{uuid.uuid4().hex[:10]}"
        monkeypatch.setenv(
            "VIGIL_POSTGRES_URL", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{dbname}"
        )
    yield request.param
    if dbname:
        import sqlalchemy as sa

        engine = sa.create_engine(
            "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = :d"
                ),
                {"d": dbname},
            )
            conn.execute(sa.text(f'drop database if exists "{dbname}"'))
        engine.dispose()


def test_standalone_trigger_and_grid_screenshot(backend, tmp_path, chromium):
    missing = missing_stage_modules(("sim.world", "training.score"))
    if missing:
        pytest.skip(f"stage modules not written yet: {missing}")
    from sim.world import simulate

    raw = tmp_path / "raw"
    simulate(raw, **TINY)
    last_day = (TINY["start"] + timedelta(days=TINY["days"] - 1)).isoformat()

    server = airflow_ui.start(
        airflow_ui.free_port(),
        worker_log_port=airflow_ui.free_port(),
        trigger_log_port=airflow_ui.free_port(),
    )
    pgid = server.pgid
    try:
        airflow_ui.wait_healthy(server, timeout=420)
        assert server.password_file.exists()
        token = server.token()
        base = server.url

        # Login is required.
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/api/v2/dags", timeout=30)
        assert denied.value.code == 401

        # The DAG processor needs a moment to serialize the DAGs into the fresh DB.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            ids = {d["dag_id"] for d in api(base, token, "GET", "/dags")["dags"]}
            if {"vigil_daily", "vigil_train"} <= ids:
                break
            time.sleep(3)
        assert {"vigil_daily", "vigil_train"} <= ids

        api(base, token, "PATCH", "/dags/vigil_daily", {"is_paused": False})
        run = api(
            base,
            token,
            "POST",
            "/dags/vigil_daily/dagRuns",
            {
                "logical_date": None,
                "conf": {"raw_dir": str(raw), "backfill": True, "day": last_day},
            },
        )
        finished = wait_for_run(base, token, "vigil_daily", run["dag_run_id"], timeout=900)

        png_path = config.paths().home / "screenshots" / f"airflow_grid_{backend}.png"
        data = screenshot(
            chromium,
            f"{base}/dags/vigil_daily",
            ("_token", token),
            png_path,
            tmp_path / "chromium-profile",
        )
        stats = png_stats(data)
        assert len(data) > 20_000, stats
        assert stats["width"] >= 1000 and stats["height"] >= 600, stats
        assert stats["colors"] > 50 and stats["std"] > 10, stats  # not a blank page
        assert stats["non_background"] > 0.02, stats

        # Screenshot first (it shows a failure too), then the run's outcome.
        assert finished["state"] == "success", finished["task_states"]
        assert set(finished["task_states"].values()) == {"success"}
        # The feature stage emitted its Asset.
        events = api(base, token, "GET", "/assets/events?limit=50")["asset_events"]
        assert "vigil://features/moderation" in {e.get("uri") for e in events}
    finally:
        airflow_ui.stop(server)
    assert airflow_ui.group_members(pgid) == [], "standalone left processes behind"
    assert airflow_env.password_file().exists()
