"""`make airflow` listens on loopback only (issue 19 item 7): a real start of the components
(marker airflow), then every listening socket of the process group, read from the kernel
(psutil), is on 127.0.0.1, the two log servers included (Airflow's own bind every address)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from vigil.orchestration import ui as airflow_ui


def _listening(pids: list[int]) -> set[tuple[str, int]]:
    import psutil

    found = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def test_every_listener_of_make_airflow_is_on_loopback(vigil_home):
    ports = {name: airflow_ui.free_port() for name in ("api", "worker_logs", "trigger_logs")}
    server = airflow_ui.start(
        ports["api"],
        worker_log_port=ports["worker_logs"],
        trigger_log_port=ports["trigger_logs"],
    )
    pgid = server.pgid
    try:
        airflow_ui.wait_healthy(server, timeout=420)
        listening = _listening(airflow_ui.group_members(pgid))
        assert {port for _, port in listening} >= set(ports.values()), listening
        assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening
        # the loopback log servers are Airflow's app: a log request without its token is refused
        with pytest.raises(urllib.error.HTTPError) as refused:
            url = f"http://127.0.0.1:{ports['worker_logs']}/log/nothing.log"
            urllib.request.urlopen(url, timeout=30)
        assert refused.value.code == 403
    finally:
        airflow_ui.stop(server)
    assert airflow_ui.group_members(pgid) == [], "the components left processes behind"
