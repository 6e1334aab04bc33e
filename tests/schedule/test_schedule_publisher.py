"""The publisher on both stores: the lines it writes (checked with ingest's own validator), late
posts, a re-run, a publisher that died after writing, moderation at publish time."""

from __future__ import annotations

import math
import time
from datetime import datetime

from support_schedule import WordModerator, raw_event_ids, raw_events

from vigil.schedule.moderation import POST_ID_BASE, NoModel, load
from vigil.schedule.publisher import Publisher, append_lines, event_line, hour_file
from vigil.schedule.store import now_ms
from vigil.stream.events import file_limit_us, parse_event

UNLIMITED = (10**9, 10**9)


def _add(store, user_id: int, text: str, at_ms: int, status: str = "pending") -> int:
    fields = {"text": text, "scheduled_at": at_ms, "status": status}
    return int(store.create(user_id, fields, UNLIMITED)[0]["id"])


def test_due_posts_become_valid_raw_events_once_and_late_ones_are_flagged(store, tmp_path):
    raw = tmp_path / "raw"
    now = now_ms()
    on_time = _add(store, 5, "on time", now - 1_000)
    late = _add(store, 6, 'late "quoted" é', now - 2 * 3_600_000)
    future = _add(store, 7, "tomorrow", now + 86_400_000)
    counts = Publisher(store, raw, WordModerator()).run_once()
    assert (counts["claimed"], counts["written"], counts["published"], counts["late"]) == (
        2,
        2,
        2,
        1,
    )
    rows = {r["id"]: r for r in store.all_posts()}
    assert [rows[i]["status"] for i in (on_time, late, future)] == [
        "published",
        "published",
        "pending",
    ]
    assert (rows[on_time]["late"], rows[late]["late"]) == (0, 1)
    events = raw_events(raw)
    assert sorted(e["event_id"] for _, e in events) == [f"sched-{on_time}", f"sched-{late}"]
    for rel, e in events:
        line = next(x for x in (raw / rel).read_bytes().splitlines() if e["event_id"].encode() in x)
        parsed = parse_event(line, file_limit_us(rel))
        assert isinstance(parsed, tuple), parsed  # a string would be ingest's quarantine reason
        assert e["action"] == "post" and e["post_id"] == POST_ID_BASE + int(e["event_id"][6:])
        assert e["text"] == rows[int(e["event_id"][6:])]["text"]
        assert (
            rel
            == hour_file(raw, rows[int(e["event_id"][6:])]["event_ts"]).relative_to(raw).as_posix()
        )
    # a second run finds nothing due and writes nothing
    assert Publisher(store, raw, WordModerator()).run_once().get("claimed", 0) == 0
    assert sum(raw_event_ids(raw).values()) == 2


def test_a_post_written_by_a_dead_publisher_is_settled_not_written_again(store, tmp_path):
    raw = tmp_path / "raw"
    ids = [_add(store, 9, f"post {i}", now_ms() - 10) for i in range(5)]
    dead = Publisher(store, raw, NoModel(), lease_ms=1)
    claimed = store.claim(dead.owner, now_ms(), 1, 100)
    assert sorted(r["id"] for r in claimed) == ids
    # it wrote three of the five lines, then was killed (no settle); one line was cut mid-write
    path = hour_file(raw, claimed[0]["event_ts"])
    append_lines(path, [event_line(r) for r in claimed[:3]])
    with path.open("a") as handle:
        handle.write(event_line(claimed[3])[:20])
    time.sleep(0.01)  # its 1 ms lease is over
    counts = Publisher(store, raw, NoModel()).run_once()
    assert (counts["claimed"], counts["already_written"], counts["written"]) == (5, 3, 2)
    assert raw_event_ids_tolerant(path) == {f"sched-{i}": 1 for i in ids}
    assert {r["status"] for r in store.all_posts()} == {"published"}
    assert {r["attempts"] for r in store.all_posts()} == {2}


def raw_event_ids_tolerant(path):
    import json

    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        try:
            eid = json.loads(line)["event_id"]
        except ValueError:
            continue  # the cut line: the ingester quarantines it
        out[eid] = out.get(eid, 0) + 1
    return out


def test_publish_time_moderation_holds_reviews_and_verdicts(store, tmp_path):
    raw = tmp_path / "raw"
    now = now_ms()
    bad = _add(store, 3, "BADWORD late edit", now - 100)
    maybe = _add(store, 3, "MAYBE fine", now - 100)
    maybe_lapsed = _add(store, 3, "MAYBE never answered", now - 100)
    fine = _add(store, 3, "fine", now - 100)
    publisher = Publisher(store, raw, WordModerator(), review_window_ms=60_000)
    counts = publisher.run_once()
    assert (counts["published"], counts["held"], counts["review"]) == (1, 1, 2)
    rows = {r["id"]: r for r in store.all_posts()}
    assert rows[bad]["status"] == "held" and "removal threshold" in rows[bad]["reason"]
    # deadline = max(claim time, scheduled_at) + the 60 s window; the claim came after `now`
    assert now + 60_000 <= rows[maybe]["review_deadline"] <= now_ms() + 60_000
    store.set_verdict(maybe, harmful=False, reviewer="ana")
    publisher.review_window_ms = 0
    assert publisher.run_once()["published"] == 1  # the verdict's allow stands over the model
    assert store.expire_reviews(now_ms() + 120_000) == 1
    rows = {r["id"]: r for r in store.all_posts()}
    assert rows[maybe_lapsed]["status"] == "held" and "deadline" in rows[maybe_lapsed]["reason"]
    assert set(raw_event_ids(raw)) == {f"sched-{fine}", f"sched-{maybe}"}


def test_without_a_champion_the_moderator_allows_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    moderator = load()
    assert isinstance(moderator, NoModel)
    assert moderator.check("anything").decision == "allow"


def test_leases_of_a_dead_publisher_on_this_host_end_at_once(store, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_owner = f"{socket.gethostname()}:{int(gone.stdout)}:feedbeef"
    ids = [_add(store, 4, f"p{i}", now_ms() - 10) for i in range(3)]
    assert len(store.claim(dead_owner, now_ms(), 600_000, 10)) == 3  # a 10-minute lease
    # a live owner (this process) keeps its lease
    live = _add(store, 4, "live", now_ms() - 10)
    assert len(store.claim(f"{socket.gethostname()}:{os.getpid()}:x", now_ms(), 600_000, 10)) == 1
    counts = Publisher(store, tmp_path / "raw", NoModel()).run_once()
    assert (counts["released_from_dead"], counts["published"]) == (3, 3)
    rows = {r["id"]: r for r in store.all_posts()}
    assert [rows[i]["status"] for i in ids] == ["published"] * 3 and rows[live][
        "status"
    ] == "claimed"


def test_every_published_post_was_scored_before_it_went_live(store, tmp_path):
    import hashlib
    import json

    from vigil.schedule.moderation import DecisionLog

    raw, decisions = tmp_path / "raw", tmp_path / "decisions"
    texts = ["fine one", "BADWORD two", "fine three", "BADWORD four"]
    ids = [_add(store, 8, t, now_ms() - 50) for t in texts]
    log = DecisionLog(decisions)
    Publisher(store, raw, WordModerator(), log).run_once()
    log.close()
    lines = [
        json.loads(x) for p in decisions.glob("dt=*/*.jsonl") for x in p.read_text().splitlines()
    ]
    rows = {r["id"]: r for r in store.all_posts()}
    written = raw_event_ids(raw)
    for sid, text in zip(ids, texts, strict=True):
        mine = [d for d in lines if d["post_id"] == POST_ID_BASE + sid]
        assert [d["trigger"] for d in mine] == ["schedule_publish"]
        assert mine[0]["content_hash"] == hashlib.sha256(text.encode()).hexdigest()
        status = rows[sid]["status"]
        assert status == ("held" if "BADWORD" in text else "published")
        assert written.get(f"sched-{sid}", 0) == (status == "published")
        if status == "published":
            # published_at is whole milliseconds (the clock floored): compare at that grain
            decided = datetime.fromisoformat(mine[0]["decided_at"]).timestamp() * 1000
            assert math.floor(decided) <= rows[sid]["published_at"]
