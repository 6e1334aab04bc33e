"""Fixtures for the Airflow tests: a fresh data root per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def vigil_home(tmp_path, monkeypatch):
    home = tmp_path / "vigil"
    monkeypatch.setenv("VIGIL_HOME", str(home))
    monkeypatch.setenv("VIGIL_AIRFLOW_DB", "sqlite")
    return home
