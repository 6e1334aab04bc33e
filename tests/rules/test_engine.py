"""The engine on hand-made events: counter values worked out by hand, a brute force over random
events, labels and their expiry, cooldowns, shadow mode, effects on every user of a link."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

from vigil.rules.engine import Engine, context, first_link
from vigil.rules.language import load_rules

S = 1000
MIN = 60 * S


def _engine(tmp_path: Path, text: str) -> Engine:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return Engine(load_rules(path))


def _ev(i, ts, user, action="post", text=None, post=None, target=None):
    return context((f"e{i}", ts, user, action, target, None, post, text))


PROBE = """\
rules:
  - name: probe
    version: 1
    when: [post]
    expr: count("user", "1m") >= 0
    cooldown: 1s
    effects:
      - {do: review, entity: user}
"""


def test_count_over_a_one_minute_window_by_hand(tmp_path):
    eng = _engine(tmp_path, PROBE)
    c = next(iter(eng.counters.values()))
    assert c.bucket_ms == 1000 and c.n == 60  # 1 s buckets, 60 of them
    # posts of user 1 at 0 s, 30 s, 59.5 s, 61 s, 125 s; a like at 60 s is not counted
    expected = [1, 2, 3, 3, 1]  # at 61 s the window is buckets 2..61: 30, 59.5 and 61 s
    got = []
    for i, t in enumerate([0, 30 * S, 59_500, 61 * S, 125 * S]):
        e = _ev(i, t, 1)
        eng.process(e)
        got.append(c.query(e))
        if i == 1:
            eng.process(_ev(99, 60 * S, 1, action="like", post=5))
    assert got == expected
    # another user's posts are another key
    e = _ev(50, 125 * S, 2)
    eng.process(e)
    assert c.query(e) == 1


DISTINCT = """\
rules:
  - name: link_users
    version: 1
    when: [post, reply]
    expr: distinct("link", "user", "10m") >= 3
    cooldown: 1h
    effects:
      - {do: label, entity: user, from: link, label: coordinated, expires: 30m}
      - {do: label, entity: link, label: hot, expires: 1h}
  - name: reads_label
    version: 1
    when: [like]
    expr: label("user", "coordinated")
    cooldown: 1s
    effects:
      - {do: review, entity: user}
"""


def test_distinct_users_of_a_link_and_labels_on_all_of_them(tmp_path):
    eng = _engine(tmp_path, DISTINCT)
    link = "see https://Camp.example/X."
    assert first_link(link) == "https://camp.example/x"
    # users 1, 2, 1 (again), 3 post the link; user 9 posts another one
    eng.process(_ev(1, 0, 1, text=link))
    eng.process(_ev(2, 1 * MIN, 2, text=link))
    eng.process(_ev(3, 2 * MIN, 1, text=link))
    eng.process(_ev(4, 3 * MIN, 9, text="https://other.example/"))
    assert eng.take_effects() == []  # 2 distinct users so far
    eng.process(_ev(5, 4 * MIN, 3, text=link))
    effects = eng.take_effects()
    assert [(e["effect"], e["entity"], e["entity_id"]) for e in effects] == [
        ("label", "user", 1),
        ("label", "user", 2),
        ("label", "user", 3),
        ("label", "link", "https://camp.example/x"),
    ]
    assert {e["expires_ms"] for e in effects} == {4 * MIN + 30 * MIN, 4 * MIN + 60 * MIN}
    # labels are read by the next rule until they expire (34 min after 0): 33:59 yes, 34:00 no
    eng.process(_ev(6, 34 * MIN - 1, 2, action="like", post=1))
    eng.process(_ev(7, 34 * MIN, 1, action="like", post=1))
    assert [(e["rule"], e["entity_id"]) for e in eng.take_effects()] == [("reads_label", 2)]
    # a fourth user 5 minutes later: the cooldown (1 h) keeps users 1-3 from being relabeled
    eng.process(_ev(8, 9 * MIN, 4, text=link))
    got = [(e["entity"], e["entity_id"]) for e in eng.take_effects()]
    assert got == [("user", 4)]


def test_shadow_rules_log_tagged_and_set_no_labels(tmp_path):
    text = DISTINCT.replace("    cooldown: 1h\n", "    cooldown: 1h\n    mode: shadow\n", 1)
    eng = _engine(tmp_path, text)
    for i, u in enumerate([1, 2, 3]):
        eng.process(_ev(i, i * S, u, text="https://a.example/1"))
    effects = eng.take_effects()
    assert len(effects) == 4 and {e["mode"] for e in effects} == {"shadow"}
    assert eng.labels == {}
    eng.process(_ev(9, 10 * S, 1, action="like", post=1))
    assert eng.take_effects() == []  # the live rule does not see shadow labels


def _brute_count(events, i, window_ms):
    """Events of the same user at or before event i (in order) whose 1/60-window bucket is among
    the 60 ending with event i's bucket -- written from the definition, not the engine (exact for
    events up to one window late)."""
    b = max(1000, window_ms // 60)
    ts_i, user_i = events[i][1], events[i][2]
    return sum(
        1 for ev in events[: i + 1] if ev[2] == user_i and ts_i // b - 60 < ev[1] // b <= ts_i // b
    )


def _brute_distinct(events, i, window_ms):
    b = max(1000, window_ms // 60)
    ts_i, link_i = events[i][1], events[i][8]
    return len(
        {
            ev[2]
            for ev in events[: i + 1]
            if ev[8] == link_i and ts_i // b - 60 < ev[1] // b <= ts_i // b
        }
    )


def test_counters_equal_a_brute_force_on_random_events_some_late(tmp_path):
    text = """\
rules:
  - name: r
    version: 1
    when: post
    expr: count("user", "7m") + distinct("link", "user", "2h") < 0
    effects:
      - {do: review, entity: user}
"""
    eng = _engine(tmp_path, text)
    count, distinct = (eng.counters[k] for k in sorted(eng.counters))
    assert count.spec.kind == "count" and distinct.spec.kind == "distinct"
    rng = random.Random(3)
    events, t = [], 0
    for i in range(1500):
        t += rng.randrange(0, 40 * S)
        ts = t - rng.randrange(0, 7 * MIN) if rng.random() < 0.1 else t  # late, < a window
        link = f"https://l.example/{rng.randrange(6)}"
        events.append(_ev(i, ts, rng.randrange(1, 8), text=f"x {link}"))
    for i, e in enumerate(events):
        eng.process(e)
        assert count.query(e) == _brute_count(events, i, 7 * MIN), i
        assert distinct.query(e) == _brute_distinct(events, i, 2 * 60 * MIN), i
    # memory is bounded: no key keeps more buckets than its window
    assert max(len(ent[1]) for ent in count.table.values()) <= 2 * 60 + 1
    eng.prune(events[-1][1] + 5 * 60 * MIN)
    assert not count.table and not distinct.table


def test_expression_errors_make_the_rule_false_and_are_counted(tmp_path):
    text = PROBE.replace('count("user", "1m") >= 0', "post + 1 > 0")
    eng = _engine(tmp_path, text)
    eng.process(_ev(1, 0, 1, post=None))  # None + 1
    eng.process(_ev(2, 1, 1, post=4))
    assert eng.errors == {"probe": 1}
    assert [e["event_id"] for e in eng.take_effects()] == ["e2"]
