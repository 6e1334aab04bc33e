"""Schedule stores for the tests: SQLite in the test's folder, or a fresh PostgreSQL database.

``backend`` is parametrized; its ``postgres`` instance carries the ``postgres`` marker
(tests/conftest.py FIXTURE_MARKS), so ``pytest -m "not postgres"`` keeps the SQLite profile.
"""

from __future__ import annotations

import secrets

import psycopg
import pytest
from psycopg import sql

from vigil.schedule.store import open_store

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """(store URL, kind) of an empty, migrated store; PostgreSQL databases are dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'schedule.sqlite3'}"
        return
    name = f"vigil_schedule_test_{secrets.token_hex(4)}"
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def store(backend):
    opened = open_store(backend)
    yield opened
    opened.close()
