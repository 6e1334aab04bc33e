"""The Airflow environment Vigil runs its DAGs in.

Everything Airflow needs is passed as ``AIRFLOW__*`` environment variables to the ``airflow``
subprocesses, so no ``airflow.cfg`` has to be edited and nothing is written into the source tree:

- ``AIRFLOW_HOME`` under the data root (``paths().airflow_home``), DAGs from the repo's ``dags/``;
- no example DAGs, LocalExecutor with a parallelism of 4 (the default 32 workers take ~5.5 GB);
- metadata DB: SQLite under the data root, or PostgreSQL when ``VIGIL_AIRFLOW_DB=postgres``
  (the database in ``VIGIL_POSTGRES_URL`` is created when missing);
- login required (SimpleAuthManager, user ``admin``; Airflow generates the password into
  ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``);
- a pool ``vigil_warehouse`` with one slot: DuckDB allows one writer at a time.

:func:`ensure_ready` migrates the metadata DB and creates the pool when (and only when) needed.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

DAGS_FOLDER = config.REPO_ROOT / "dags"
WAREHOUSE_POOL = "vigil_warehouse"
PARALLELISM = 4
ADMIN_USER = "admin"
PASSWORD_FILE_NAME = "simple_auth_manager_passwords.json.generated"
_SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


def airflow_home() -> Path:
    return config.paths().airflow_home


def password_file() -> Path:
    """Where Airflow's SimpleAuthManager writes the generated admin password (never printed)."""
    return airflow_home() / PASSWORD_FILE_NAME


def sql_alchemy_conn() -> str:
    """The metadata DB URL: SQLite under the data root, or ``config.postgres_url()``."""
    if config.airflow_db() == "postgres":
        return config.postgres_url()
    return f"sqlite:///{airflow_home() / 'airflow.db'}"


def airflow_bin() -> Path:
    """The ``airflow`` executable next to the running Python (the venv's ``bin``)."""
    candidate = Path(sys.executable).parent / "airflow"
    if candidate.exists():
        return candidate
    found = shutil.which("airflow")
    if not found:
        raise UserError("The `airflow` command was not found: run `make setup` first.")
    return Path(found)


def private_file(path: Path) -> Path:
    """Create ``path`` empty if missing and make it readable by its owner only (0600): Airflow
    creates its generated password file with the process umask (often 0644) otherwise."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    path.chmod(0o600)
    return path


def _secret(name: str) -> str:
    """A random secret kept in a 0600 file under AIRFLOW_HOME, so every Airflow process (API
    server, scheduler, workers, `dags test`) signs and checks tokens with the same key."""
    path = airflow_home() / name
    if not path.exists() or not path.read_text().strip():
        private_file(path).write_text(secrets.token_urlsafe(32))
    path.chmod(0o600)
    return path.read_text().strip()


def build_env(
    *,
    api_port: int = 8080,
    worker_log_port: int = 8793,
    trigger_log_port: int = 8794,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for every ``airflow`` subprocess Vigil starts."""
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    private_file(password_file())  # SimpleAuthManager appends to it: 0600 before it writes
    env = config.env_snapshot()
    bin_dir = str(Path(sys.executable).parent)
    # BashOperator and the dbt/feast subprocesses inherit PATH: keep the venv's bin first.
    env["PATH"] = bin_dir + ":" + env.get("PATH", "")
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
            "AIRFLOW__CORE__AUTH_MANAGER": _SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file()),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": env.get("AIRFLOW__CORE__FERNET_KEY", ""),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__SECRET_KEY": _secret(".api_secret_key"),
            "AIRFLOW__API_AUTH__JWT_SECRET": _secret(".jwt_secret"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_log_port),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Workers talk to the API server over HTTP; on a busy 2-core machine with SQLite the
            # default 5 s timeout fails tasks before they start (httpx.ReadTimeout).
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # `dags test` and the task subprocesses import the repo's packages.
            "PYTHONPATH": str(config.REPO_ROOT)
            + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        }
    )
    # One `dbt build` per stage: run only the tests whose parents that stage (or an earlier one)
    # built. With dbt's default ("eager"), `build --select path:models/staging` on a fresh
    # warehouse also runs marts' relationship tests to staging and fails on missing tables.
    env.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    if not env["AIRFLOW__CORE__FERNET_KEY"]:
        del env["AIRFLOW__CORE__FERNET_KEY"]
    env.update(extra or {})
    return env


def airflow(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run one ``airflow`` CLI command in Vigil's environment, capturing its output."""
    cmd = [str(airflow_bin()), *args]
    log.debug("running %s", " ".join(cmd))
    proc = subprocess.run(
        cmd,
        env=env or build_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(airflow_home()),
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"`airflow {' '.join(args)}` failed ({proc.returncode}):\n{tail}")
    return proc


# -- metadata database ---------------------------------------------------------------------------


def ensure_postgres_database(url: str | None = None) -> bool:
    """Create the PostgreSQL database named in ``url`` when it does not exist. True if created."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    target = make_url(url or config.postgres_url())
    name = target.database
    admin = target.set(database="postgres")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("select 1 from pg_database where datname = :name"), {"name": name}
            ).scalar()
            if exists:
                return False
            conn.execute(sa.text(f'create database "{name}"'))
            log.info("created PostgreSQL database %s", name)
            return True
    except sa.exc.OperationalError as exc:
        raise UserError(
            f"Cannot reach PostgreSQL at {target.host}:{target.port}: start it or set "
            "VIGIL_AIRFLOW_DB=sqlite."
        ) from exc
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    """The metadata DB's alembic revision, or None when it was never migrated."""
    import sqlalchemy as sa

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select version_num from alembic_version")).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


def _marker_path() -> Path:
    return airflow_home() / ".vigil-db-ready.json"


def ensure_ready(env: dict[str, str] | None = None) -> bool:
    """Migrate the metadata DB and create the warehouse pool if needed. True if work was done.

    A marker records (DB URL, Airflow version, alembic revision) after a successful setup; when
    the DB still reports that revision, nothing runs (saves ~10 s of CLI start-up per call).
    """
    url = sql_alchemy_conn()
    if url.startswith("postgresql"):
        ensure_postgres_database(url)
    marker = _marker_path()
    expected = {"url": url, "airflow": _airflow_version()}
    if marker.exists():
        saved = json.loads(marker.read_text())
        same_setup = saved.get("url") == url and saved.get("airflow") == expected["airflow"]
        if same_setup and saved.get("revision") and _revision(url) == saved["revision"]:
            return False
    env = env or build_env()
    started = time.monotonic()
    print(f"airflow: migrating the metadata DB ({config.airflow_db()}) ...", flush=True)
    airflow("db", "migrate", env=env)
    airflow(
        "pools",
        "set",
        WAREHOUSE_POOL,
        "1",
        "DuckDB warehouse: one writer at a time",
        env=env,
    )
    revision = _revision(url)
    marker.write_text(json.dumps({**expected, "revision": revision}))
    log.info(
        "airflow metadata DB ready at revision %s in %.1fs", revision, time.monotonic() - started
    )
    return True
