"""The online store's integrity check on a store whose writer was killed mid-transaction.

A writer killed by SIGKILL inside a transaction leaves a hot rollback journal beside the file.
That is not damage: SQLite's crash recovery rolls it back on the next read. The check must
recover it and pass (it once opened the file read-only, which cannot roll a journal back, and
called the store damaged: CI, test_materialize_killed_then_rerun_equals_an_uninterrupted_run).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from vigil.errors import UserError
from vigil.serving.online_check import check_online_store

ROWS = 2000

# The writer: rollback journal, a tiny page cache so the changed pages spill into the file before
# commit, then it stops itself with SIGKILL inside the open transaction.
WRITER = textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("pragma journal_mode=delete")
    con.execute("pragma cache_size=2")
    con.execute("begin")
    con.execute("update t set v = v + 1000000")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _store(path):
    con = sqlite3.connect(path)
    con.execute("create table t (k integer primary key, v integer, pad text)")
    con.executemany("insert into t values (?, ?, ?)", [(i, i, "x" * 200) for i in range(ROWS)])
    con.commit()
    con.close()


def test_a_killed_writers_hot_journal_is_recovered_not_called_damage(tmp_path):
    path = tmp_path / "online_store.db"
    _store(path)
    proc = subprocess.run([sys.executable, "-c", WRITER, str(path)], check=False)
    assert proc.returncode == -signal.SIGKILL
    journal = tmp_path / "online_store.db-journal"
    assert journal.is_file() and journal.stat().st_size > 0  # the hot journal is there
    assert check_online_store(path) is True
    con = sqlite3.connect(path)
    # rolled back: every value is what was committed (sum 0 + ... + ROWS-1, by hand)
    assert con.execute("select count(*), sum(v) from t").fetchone() == (
        ROWS,
        ROWS * (ROWS - 1) // 2,
    )
    con.close()
    assert not journal.exists() or journal.stat().st_size == 0


def test_a_damaged_store_is_still_one_error_naming_it(tmp_path):
    path = tmp_path / "online_store.db"
    _store(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # overwrite the pages after the first with garbage
        f.seek(4096)
        f.write(random.Random(26).randbytes(size - 4096))
    with pytest.raises(UserError, match="online_store.db is damaged"):
        check_online_store(path)


def test_the_check_never_creates_a_missing_file(tmp_path):
    path = tmp_path / "online_store.db"
    assert check_online_store(path) is False
    assert not path.exists()
