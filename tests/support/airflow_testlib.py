"""Helpers for the Airflow tests (imported by name: tests/conftest.py puts tests/support on sys.path)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

STAGE_MODULES = ("vigil.lake.ingest", "vigil.warehouse.dbt", "vigil.quality.gate", "vigil.serving.features")


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


# -- REST API ------------------------------------------------------------------------------------


def api(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    """One call to Airflow's REST API (``/api/v2``) with a bearer token."""
    import urllib.request

    request = urllib.request.Request(
        f"{base}/api/v2{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def wait_for_run(base: str, token: str, dag_id: str, run_id: str, timeout: float) -> dict:
    """Poll a DAG run until it leaves queued/running; returns the run and its task states."""
    import time
    import urllib.parse

    quoted = urllib.parse.quote(run_id, safe="")
    deadline = time.monotonic() + timeout
    run: dict = {}
    while time.monotonic() < deadline:
        run = api(base, token, "GET", f"/dags/{dag_id}/dagRuns/{quoted}")
        if run.get("state") in ("success", "failed"):
            break
        time.sleep(5)
    tis = api(base, token, "GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances")
    run["task_states"] = {t["task_id"]: t["state"] for t in tis.get("task_instances", [])}
    return run


# -- headless Chromium over the DevTools protocol -----------------------------------------------


class DevTools:
    """Minimal CDP client: one page target, synchronous request/response over a websocket."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self._id = 0

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_event(self, name: str, timeout: float) -> bool:
        import time

        import websocket

        deadline = time.monotonic() + timeout
        self.ws.settimeout(2)
        try:
            while time.monotonic() < deadline:
                try:
                    message = json.loads(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if message.get("method") == name:
                    return True
            return False
        finally:
            self.ws.settimeout(60)

    def close(self) -> None:
        self.ws.close()


def screenshot(
    chromium: str, url: str, cookie: tuple[str, str], out, user_data_dir, settle: float = 8
) -> bytes:
    """A logged-in PNG of ``url``: set the auth cookie first, then navigate and capture."""
    import base64
    import os
    import signal
    import socket
    import time
    import urllib.parse
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1600,1000",
            f"--user-data-dir={user_data_dir}",
            "--remote-debugging-address=127.0.0.1",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        targets = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = [t for t in json.loads(r.read()) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert targets, "Chromium's DevTools endpoint did not come up"
        cdp = DevTools(targets[0]["webSocketDebuggerUrl"])
        try:
            cdp.call("Page.enable")
            cdp.call("Network.enable")
            origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
            cdp.call("Network.setCookie", name=cookie[0], value=cookie[1], url=origin, path="/")
            cdp.call("Page.navigate", url=url)
            cdp.wait_event("Page.loadEventFired", timeout=60)
            time.sleep(settle)  # the React app fetches the grid data after load
            data = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
        finally:
            cdp.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return data


def png_stats(data: bytes) -> dict:
    """Size, colour spread and distinct colours of a PNG (is it more than a blank page?)."""
    import io

    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    flat = image.reshape(-1, 3)
    sample = flat[:: max(1, len(flat) // 200_000)]
    return {
        "width": image.shape[1],
        "height": image.shape[0],
        "std": float(image.std()),
        "colors": len(np.unique(sample, axis=0)),
        "non_background": float((np.abs(flat.astype(int) - flat[0]).sum(axis=1) > 30).mean()),
    }
