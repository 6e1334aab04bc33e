"""The stream's re-score requests carry their event time, creation requests, and waiting for
delivery (issue 22: the service must decide at the trigger's time, not the wall clock's)."""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
from typing import ClassVar

from vigil.stream.rescore import Deliverer, RescoreFeed
from vigil.stream.triggers import Triggers


class _Recorder(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list] = []
    delay = 0.0

    def do_POST(self):
        import time

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay)  # a slow service: submit(wait=True) must still wait for it
        type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def _server():
    handler = type("Rec", (_Recorder,), {"bodies": [], "delay": 0.05})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_requests_carry_event_time_and_wait_returns_after_delivery():
    server, handler = _server()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        deliverer = Deliverer(url=url, wait=True)
        rows = [(1, 7, 1_790_000_000_123, "first_report"), (2, 9, 1_790_000_600_000, "views_16")]
        deliverer.submit(rows)
        # wait=True: both answered when submit returns (the service sleeps 50 ms per request)
        assert handler.bodies == [
            {"post_id": 7, "trigger": "first_report", "at_ms": 1_790_000_000_123},
            {"post_id": 9, "trigger": "views_16", "at_ms": 1_790_000_600_000},
        ]
        assert deliverer.take_done() == [1, 2]
        deliverer.submit([(3, 7, 1_790_000_900_000, "reports_2")])
        assert len(handler.bodies) == 3
        assert deliverer.close() == [3]
    finally:
        server.shutdown()
        server.server_close()


def test_without_wait_submit_does_not_block():
    server, handler = _server()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        deliverer = Deliverer(url=url)
        deliverer.submit([(i, i, 1000 * i, "views_16") for i in range(1, 6)])  # 5 x 50 ms
        assert len(handler.bodies) < 5  # returned before the service answered them all
        assert sorted(deliverer.close()) == [1, 2, 3, 4, 5]
        assert [b["at_ms"] for b in handler.bodies] == [1000, 2000, 3000, 4000, 5000]
    finally:
        server.shutdown()
        server.server_close()


def _ev(ts_ms, action, post_id, user=1, text=None):
    return (f"e{ts_ms}{action}", ts_ms, user, action, None, "US", post_id, text)


def test_creation_requests_at_the_post_event_and_triggers_untouched():
    """A 'creation' request at each post event (its event time), not counted by the triggers
    nor debounced: the first report 1 minute after creation is sent at once, as without it."""
    events = [
        _ev(60_000, "post", 5),
        _ev(90_000, "view", 5),
        _ev(120_000, "report", 5),
        _ev(130_000, "post", 6),
        _ev(140_000, "report", 5),  # reports_2 within 10 minutes of first_report: merged
    ]
    with_creation = RescoreFeed(sqlite3.connect(":memory:"), Triggers(), creation=True)
    with_creation.observe(events)
    plain = RescoreFeed(sqlite3.connect(":memory:"), Triggers())
    plain.observe(events)
    assert with_creation.new == [
        (5, 60_000, "creation"),
        (5, 120_000, "first_report"),
        (6, 130_000, "creation"),
    ]
    assert plain.new == [(5, 120_000, "first_report")]
    assert with_creation.triggers.posts[5] == plain.triggers.posts[5]
    assert 6 not in with_creation.triggers.posts  # nothing counted for a creation
