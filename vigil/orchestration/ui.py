"""``make airflow``: the Airflow UI on Vigil's DAGs (``python -m vigil.orchestration.ui``).

Starts what ``airflow standalone`` starts (API server + UI, scheduler, DAG processor, triggerer),
with LocalExecutor, parallelism 4 and no example DAGs, all in one process group, so Ctrl-C stops
every child: SIGTERM to the group, SIGKILL after a timeout. Every listener is on 127.0.0.1:
Airflow 3.3.2's scheduler and triggerer start their log servers on every address (``host=""``,
not configurable), so they run with ``--skip-serve-logs`` and Vigil starts the same log server
app (``airflow.utils.serve_logs.log_server``) on 127.0.0.1 at the worker and trigger log ports.
Signing in is required (SimpleAuthManager, user ``admin``); the generated password stays in a
file under ``AIRFLOW_HOME`` and is never printed. The components' output (which includes the
password) goes to a private log file, not the terminal.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import UserError
from vigil.orchestration import airflow_env

log = logging.getLogger(__name__)


@dataclass
class Standalone:
    """A running set of Airflow components in one process group (``process`` leads it)."""

    process: subprocess.Popen
    port: int
    log_path: Path
    password_file: Path

    def exited(self) -> str | None:
        """None while every component runs; else which exit ended the group's leader."""
        if self.process.poll() is None:
            return None
        return f"a component exited with {self.process.returncode}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session=True: the leader's pid is the group id

    def password(self) -> str:
        """The generated admin password (for programs; never print it)."""
        data = json.loads(self.password_file.read_text())
        return data[airflow_env.ADMIN_USER]

    def token(self, timeout: float = 30) -> str:
        """A JWT from ``POST /auth/token``."""
        body = json.dumps({"username": airflow_env.ADMIN_USER, "password": self.password()})
        request = urllib.request.Request(
            f"{self.url}/auth/token",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())["access_token"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(
    port: int = 8080,
    *,
    worker_log_port: int | None = None,
    trigger_log_port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Standalone:
    """Migrate if needed, then start the Airflow components in a new process group."""
    if not _port_free(port):
        raise UserError(f"Port {port} on 127.0.0.1 is in use: stop what runs there or pass --port.")
    env = airflow_env.build_env(
        api_port=port,
        worker_log_port=worker_log_port or 8793,
        trigger_log_port=trigger_log_port or 8794,
        extra=extra_env,
    )
    airflow_env.ensure_ready(env)
    home = airflow_env.airflow_home()
    log_path = home / "logs" / "standalone.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The log holds the generated password: readable by the owner only.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    airflow = str(airflow_env.airflow_bin())
    commands = {
        "api-server": [airflow, "api-server", "--host", LOOPBACK, "--port", str(port)],
        **_components(airflow, env),
    }
    # One leader in a new session runs every component in its group and exits (with the
    # component's code) as soon as any of them exits: `wait -n`.
    script = " & ".join(shlex.join(args) for args in commands.values()) + " & wait -n; exit $?"
    with os.fdopen(fd, "w") as log_file:
        process = subprocess.Popen(
            ["bash", "-c", script],
            env=env,
            cwd=str(home),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    log.info(
        "airflow started on %s, port %d: %s (pid/pgid %d)",
        LOOPBACK,
        port,
        ", ".join(commands),
        process.pid,
    )
    return Standalone(process, port, log_path, airflow_env.password_file())


LOOPBACK = "127.0.0.1"
LOG_SERVER_APP = "airflow.utils.serve_logs.log_server:get_app"


def _components(airflow: str, env: dict[str, str]) -> dict[str, list[str]]:
    """Standalone's components besides the API server, and the two loopback log servers."""

    def log_server(port_key: str) -> list[str]:
        port = env[f"AIRFLOW__LOGGING__{port_key}"]
        return [
            *(sys.executable, "-m", "uvicorn", "--factory", LOG_SERVER_APP),
            *("--host", LOOPBACK, "--port", port, "--no-access-log"),
        ]

    return {
        "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [airflow, "dag-processor"],
        "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
        "worker-log-server": log_server("WORKER_LOG_SERVER_PORT"),
        "trigger-log-server": log_server("TRIGGER_LOG_SERVER_PORT"),
    }


def wait_healthy(server: Standalone, timeout: float = 240, progress: bool = False) -> None:
    """Wait until ``/api/v2/monitor/health`` answers and the password file exists."""
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        if (gone := server.exited()) is not None:
            raise RuntimeError(f"airflow {gone}; see {server.log_path}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/v2/monitor/health", timeout=5) as r:
                health = json.loads(r.read())
            if (
                health.get("scheduler", {}).get("status") == "healthy"
                and server.password_file.exists()
                and server.password_file.stat().st_size > 0  # created empty (0600) by Vigil
            ):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        if progress and time.monotonic() - last_report > 10:
            print("  ... starting (scheduler, API server, DAG processor, triggerer)", flush=True)
            last_report = time.monotonic()
        time.sleep(2)
    raise TimeoutError(
        f"airflow standalone was not healthy after {timeout:.0f}s; see {server.log_path}"
    )


def stop(server: Standalone, timeout: float = 45) -> None:
    """SIGTERM the whole process group, SIGKILL whatever is left after ``timeout`` seconds."""
    pgid = server.pgid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.process.poll()
        if not _group_alive(pgid):
            break
        time.sleep(0.5)
    else:
        log.warning("airflow standalone ignored SIGTERM for %.0fs: SIGKILL", timeout)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    # SIGKILL is delivered asynchronously: wait until the group has no live member.
    deadline = time.monotonic() + 15
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies keep the group "alive" for killpg(0): count only live members.
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    import psutil

    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vigil.orchestration.ui",
        description="Airflow UI on Vigil's DAGs (Ctrl-C stops)",
    )
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        server = start(args.port)
    except UserError as exc:
        print(f"vigil airflow: error: {exc}", file=sys.stderr)
        return 2
    stopping = False

    def on_term(signum, frame):  # `kill <pid>` stops the group too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Started in the background SIGINT may be inherited as ignored: make Ctrl-C always stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        print(f"Starting Airflow (log: {server.log_path}) ...", flush=True)
        wait_healthy(server, progress=True)
        print(
            f"\nAirflow UI: {server.url}\n"
            f"  user:     {airflow_env.ADMIN_USER}\n"
            f"  password: in {server.password_file} (generated; not printed here)\n"
            f"  DAGs:     vigil_daily, vigil_train (new DAGs start paused: unpause to schedule)\n"
            f"Ctrl-C stops Airflow.",
            flush=True,
        )
        while (gone := server.exited()) is None:
            time.sleep(1)
        print(f"airflow {gone}; see {server.log_path}")
        return 1
    except KeyboardInterrupt:
        stopping = True
        print("\nStopping Airflow ...", flush=True)
        return 0
    except (TimeoutError, RuntimeError) as exc:
        print(f"vigil airflow: error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop(server)
        if stopping:
            print("Airflow stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
