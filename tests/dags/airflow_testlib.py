"""Helpers for the Airflow tests (imported by name: tests/dags is on sys.path under pytest)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

STAGE_MODULES = ("vigil.ingest", "vigil.warehouse", "vigil.quality", "vigil.features")


def missing_stage_modules(extra: tuple[str, ...] = ()) -> list[str]:
    return [m for m in STAGE_MODULES + extra if importlib.util.find_spec(m) is None]


def run_python(code: str, env: dict, *args: str, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh interpreter (Airflow reads its config once per process); it prints
    one JSON object on its last line."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env["AIRFLOW_HOME"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
