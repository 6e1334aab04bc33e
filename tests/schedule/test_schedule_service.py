"""`vigil schedule` as a user runs it: migrations applied once, a real server answering curl-like
requests, refusals of a public bind without tokens and of an unknown store URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from vigil.schedule.migrations import latest


def _vigil(home, *args, timeout=60) -> subprocess.CompletedProcess:
    env = dict(os.environ, VIGIL_HOME=str(home))
    env.pop("VIGIL_SCHEDULE_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", "schedule", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_migrations_apply_once(store):
    assert store.migrate() == []
    with store.transaction() as tx:
        versions = [r["version"] for r in tx.all("SELECT version FROM schedule_migrations")]
    assert versions == [1] == [latest(store.dialect)]


def test_refusals_name_the_problem_and_the_fix(tmp_path):
    proc = _vigil(tmp_path, "serve", "--host", "0.0.0.0")
    assert proc.returncode == 2 and "needs per-user tokens" in proc.stderr, proc.stderr
    assert "vigil schedule token --user ID" in proc.stderr
    proc = _vigil(tmp_path, "--db", "mysql://x", "status")
    assert proc.returncode == 2 and "not supported" in proc.stderr, proc.stderr
    proc = _vigil(tmp_path, "verdict", "12", "--harmful")
    assert proc.returncode == 2 and "not in review" in proc.stderr, proc.stderr


def test_a_real_server_schedules_and_lists_posts(tmp_path):
    token = _vigil(tmp_path, "token", "--user", "4").stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, VIGIL_HOME=str(tmp_path))
    env.pop("VIGIL_SCHEDULE_DB", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "schedule", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        auth = {"Authorization": f"Bearer {token}"}
        when = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        r = httpx.post(f"{base}/v1/posts", json={"text": "hi", "scheduled_at": when}, headers=auth)
        assert r.status_code == 201, r.text
        listed = httpx.get(f"{base}/v1/posts", headers=auth).json()["posts"]
        assert [(p["id"], p["status"], p["model_id"]) for p in listed] == [(1, "pending", "none")]
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "vigil schedule"
    finally:
        server.terminate()
        server.wait(timeout=30)
    status = _vigil(tmp_path, "status")
    assert status.stdout.strip() == '{"pending": 1}'
