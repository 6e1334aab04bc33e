"""Reviewers' cleared verdicts in the stream's rules engine (issue 21): a verdict at t ends the
user's labels active at t (the warehouse's active_labels rule), logs one `unlabel` effect per
label with the verdict's id, labels set later stand, and the verdicts file is read exactly once
across a crash. Hand-made events and verdicts; the expected logs are worked out by hand below."""

from __future__ import annotations

import json
from pathlib import Path

from vigil.stream.rules import RulesFeed
from vigil.stream.state import StreamState

E = "2026-10-01T00:00:"  # event times below are E + seconds (all within the first hour)

RULES = """\
rules:
  - name: spam
    version: 3
    when: post
    mode: live
    expr: count("user", "1h") >= 2
    cooldown: 1d
    effects:
      - {do: label, entity: user, label: spammer, expires: 1d}
  - name: follow_up
    version: 1
    when: post
    mode: live
    expr: label("user", "spammer")
    cooldown: 1m
    effects:
      - {do: review, entity: user}
"""

# (seconds, user) in the stream's order
EVENTS = [(0, 11), (0, 12), (60, 11), (60, 12), (900, 11), (900, 12), (1000, 13), (1060, 13)]


def _ts(s: int) -> str:
    return f"2026-10-01T00:{s // 60:02d}:{s % 60:02d}.000Z"


def _line(i: int, s: int, user: int) -> bytes:
    row = {"event_id": f"e{i}", "event_ts": _ts(s), "user_id": user, "action": "post"}
    row |= {"post_id": 1000 + i, "text": "hello"}
    return json.dumps(row).encode()


LINES = [_line(i, s, u) for i, (s, u) in enumerate(EVENTS)]

VERDICTS = [  # line 1: 11 cleared at 600 s; line 2: 12 confirmed (ends nothing); 3: 13 cleared
    {"user_id": 11, "is_violating": False, "reviewed_at": _ts(600)},
    {"user_id": 12, "is_violating": True, "reason": "bot", "reviewed_at": _ts(600)},
    {"user_id": 13, "is_violating": False, "reviewed_at": _ts(700)},
]

# By hand: at 60 s each of 11 and 12 has 2 posts in the hour: spam labels it (1 day), and
# follow_up (after spam in file order) sees the label at once: review. At 900 s the first event
# after the verdicts at 600 and 700 applies them: 11's spammer label (set at 60, expiring at
# 60 s + 1 d) ends at 600 (unlabel, verdict verdicts.jsonl:1); 13 has no label yet, so its
# verdict ends nothing; 12's confirmed verdict is not a clearance. At 900: 11 has 3 posts but
# spam is in its 1-day cooldown and follow_up no longer sees the label: nothing; 12 still
# carries its label and follow_up's 1-minute cooldown is over: review. At 1060 13 has 2 posts:
# label and review, set after its verdict at 700, so they stand.
EXPECTED = [
    ("spam", 3, "label", "11", "spammer", "e2", _ts(60)),
    ("follow_up", 1, "review", "11", None, "e2", _ts(60)),
    ("spam", 3, "label", "12", "spammer", "e3", _ts(60)),
    ("follow_up", 1, "review", "12", None, "e3", _ts(60)),
    ("spam", 3, "unlabel", "11", "spammer", "verdicts.jsonl:1", _ts(600)),
    ("follow_up", 1, "review", "12", None, "e5", _ts(900)),
    ("spam", 3, "label", "13", "spammer", "e7", _ts(1060)),
    ("follow_up", 1, "review", "13", None, "e7", _ts(1060)),
]

T0 = 1_790_812_800_000  # 2026-10-01T00:00:00Z in ms


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _feed(tmp: Path, db: str) -> tuple[StreamState, RulesFeed]:
    state = StreamState(tmp / db)
    feed = RulesFeed(
        state.con, tmp / "rules.yaml", tmp / f"{db}.effects.jsonl", verdicts=tmp / "verdicts.jsonl"
    )
    feed.attach(state)
    return state, feed


def _effects(path: Path) -> list[tuple]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [
        (r["rule"], r["rule_version"], r["effect"], r["entity_id"], r["label"], r["event_id"],
         r["event_ts"])
        for r in rows
    ]  # fmt: skip


def test_a_cleared_verdict_ends_earlier_labels_only_and_stops_the_follow_up(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    _write(tmp_path / "verdicts.jsonl", VERDICTS)
    state, feed = _feed(tmp_path, "s.sqlite")
    try:
        state.apply_lines(LINES)
        state.checkpoint()
        feed.export()
        labels = dict(feed.engine.labels)
    finally:
        state.close()
    assert _effects(tmp_path / "s.sqlite.effects.jsonl") == EXPECTED
    rows = [json.loads(x) for x in (tmp_path / "s.sqlite.effects.jsonl").read_text().splitlines()]
    unlabel = rows[4]
    assert unlabel["effect_id"] == "spam:3:unlabel:spammer:user:11:verdicts.jsonl:1"
    assert unlabel["expires_at"] is None and unlabel["mode"] == "live"
    day = 86_400_000
    assert labels == {
        ("user", 11, "spammer"): (T0 + 600_000, "spam", T0 + 60_000),  # ended at the verdict
        ("user", 12, "spammer"): (T0 + 60_000 + day, "spam", T0 + 60_000),
        ("user", 13, "spammer"): (T0 + 1_060_000 + day, "spam", T0 + 1_060_000),
    }


def test_the_unlabel_line_passes_the_lakes_contract():
    from vigil.lake.rule_logs import check_rule_effect
    from vigil.lake.validation import Bad
    from vigil.stream.rules import effect_row

    eff = {"rule": "spam", "version": 3, "mode": "live", "effect": "unlabel", "entity": "user",
           "entity_id": 11, "label": "spammer", "expires_ms": None,
           "event_id": "verdicts.jsonl:1", "event_ms": T0 + 600_000}  # fmt: skip
    row = effect_row(5, eff)
    got = check_rule_effect(row)
    assert got[0] == "spam:3:unlabel:spammer:user:11:verdicts.jsonl:1" and got[5] == "unlabel"
    for bad in ({"mode": "shadow"}, {"expires_at": "2026-10-02T00:00:00.000Z"}):
        try:
            check_rule_effect(row | bad)
        except Bad:
            continue
        raise AssertionError(f"{bad} accepted")


def test_a_crash_between_the_verdict_read_and_the_checkpoint_rereads_it_once(tmp_path):
    """The verdict arrives between batches; the process dies (no checkpoint, its transaction
    lost, as after kill -9) after reading it and applying the next events; the restart reads
    it again from the checkpointed offset, exactly once: the log equals the uninterrupted run's."""
    (tmp_path / "rules.yaml").write_text(RULES)
    verdicts = tmp_path / "verdicts.jsonl"
    first, second = LINES[:4], LINES[4:]
    # uninterrupted: batch 1, checkpoint, the verdicts arrive, batch 2, checkpoint
    _write(verdicts, [])
    state, feed = _feed(tmp_path, "ref.sqlite")
    try:
        state.apply_lines(first)
        state.checkpoint()
        feed.export()
        _write(verdicts, VERDICTS)
        assert feed.read_verdicts() == 3
        state.apply_lines(second)
        state.checkpoint()
        feed.export()
    finally:
        state.close()
    _write(verdicts, [])
    state, feed = _feed(tmp_path, "crash.sqlite")
    try:
        state.apply_lines(first)
        state.checkpoint()
        feed.export()
        _write(verdicts, VERDICTS)
        assert feed.read_verdicts() == 3
        state.apply_lines(second)  # the verdict is applied in memory, then the process dies
    finally:
        state.close()
    for _run in range(2):  # the restart, then a run with nothing new: nothing read twice
        state, feed = _feed(tmp_path, "crash.sqlite")  # reads the verdicts from the offset
        try:
            assert feed.verdicts_read == (3 if _run == 0 else 0)
            if _run == 0:
                state.apply_lines(second)  # the source re-reads from its checkpointed position
            state.checkpoint()
            feed.export()
            assert feed.engine.pending == []
        finally:
            state.close()
    ref = (tmp_path / "ref.sqlite.effects.jsonl").read_text()
    assert _effects(tmp_path / "ref.sqlite.effects.jsonl") == EXPECTED
    assert (tmp_path / "crash.sqlite.effects.jsonl").read_text() == ref


def test_a_verdict_waits_for_the_stream_to_pass_its_time_across_checkpoints(tmp_path):
    """Read before any event, the verdict for 11 at 600 s stays pending through a checkpoint
    and a restart, and is applied at the first event after 600 s (the same log as above)."""
    (tmp_path / "rules.yaml").write_text(RULES)
    _write(tmp_path / "verdicts.jsonl", VERDICTS)
    for k, batch in enumerate((LINES[:4], LINES[4:])):
        state, feed = _feed(tmp_path, "p.sqlite")
        try:
            if k == 1:  # restarted: the pending verdicts come from the checkpoint, none re-read
                assert feed.verdicts_read == 0 and [p[2] for p in feed.engine.pending] == [
                    "verdicts.jsonl:1",
                    "verdicts.jsonl:3",
                ]
            state.apply_lines(batch)
            state.checkpoint()
            feed.export()
        finally:
            state.close()
    assert _effects(tmp_path / "p.sqlite.effects.jsonl") == EXPECTED


def test_a_late_events_label_active_at_an_applied_verdict_ends_there(tmp_path):
    """11 is labeled at 60 s and 14 is cleared at 600 s; the event at 900 s applies both
    verdicts (11's label ends at 600; 14 has none yet). Then two late events of 14 (300, 310 s,
    within the lateness) label it at 310 for a day: active at 600, so the applied verdict ends it
    at 600 (as active_labels ends that row), with an unlabel line; follow_up at 310 still sees
    the label (it was active then). At 1200 s 14's label is gone: follow_up stays quiet."""
    (tmp_path / "rules.yaml").write_text(RULES)
    _write(
        tmp_path / "verdicts.jsonl",
        [
            {"user_id": 11, "is_violating": False, "reviewed_at": _ts(600)},
            {"user_id": 14, "is_violating": False, "reviewed_at": _ts(600)},
        ],
    )
    events = [(0, 11), (60, 11), (900, 12), (300, 14), (310, 14), (1200, 14)]
    state, feed = _feed(tmp_path, "late.sqlite")
    try:
        state.apply_lines([_line(i, s, u) for i, (s, u) in enumerate(events)])
        state.checkpoint()
        feed.export()
        labels = dict(feed.engine.labels)
    finally:
        state.close()
    assert _effects(tmp_path / "late.sqlite.effects.jsonl") == [
        ("spam", 3, "label", "11", "spammer", "e1", _ts(60)),
        ("follow_up", 1, "review", "11", None, "e1", _ts(60)),
        ("spam", 3, "unlabel", "11", "spammer", "verdicts.jsonl:1", _ts(600)),
        ("spam", 3, "label", "14", "spammer", "e4", _ts(310)),
        ("spam", 3, "unlabel", "14", "spammer", "verdicts.jsonl:2", _ts(600)),
        ("follow_up", 1, "review", "14", None, "e4", _ts(310)),
    ]
    rows = [
        json.loads(x) for x in (tmp_path / "late.sqlite.effects.jsonl").read_text().splitlines()
    ]
    # the label line keeps the rule's expiry (310 s + 1 day): the warehouse ends it by the verdict
    first_14 = next(r for r in rows if r["entity_id"] == "14")
    assert first_14["effect"] == "label" and first_14["expires_at"] == "2026-10-02T00:05:10.000Z"
    assert labels == {
        ("user", 11, "spammer"): (T0 + 600_000, "spam", T0 + 60_000),
        ("user", 14, "spammer"): (T0 + 600_000, "spam", T0 + 310_000),
    }
