"""`vigil stream --rules`: effects committed with the checkpoint, replay == live, hot reload,
restarts and kill -9 exactly once, rule tests and labels from the command line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from argparse import Namespace
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from sim.accounts import simulate_accounts
from sim.accounts_params import AccountsParams
from tests.stream.test_stream_rescore import write_world
from vigil.errors import UserError
from vigil.rules.language import RuleError, load_rules
from vigil.stream.processor import RunOptions, process
from vigil.stream.rules import FEATURE_NAMES, RulesFeed
from vigil.stream.rules_cli import active_labels, replay, run_tests
from vigil.stream.state import StreamState

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULES = REPO / "vigil" / "rules" / "default_rules.yaml"

POST_RULES = """\
rules:
  - name: reported
    version: {version}
    when: report
    expr: distinct("post", "user", "1h") >= {n}
    cooldown: 2h
    effects:
      - {{do: review, entity: post}}
      - {{do: label, entity: post, label: reported, expires: 1h}}
  - name: busy_replier
    version: 1
    when: [reply, view]
    mode: shadow
    expr: count("user", "10m") >= 4 and label("post", "reported")
    cooldown: 30m
    effects:
      - {{do: throttle, entity: user, expires: 10m}}
"""


HEAVY_VIEWER = """\
  - name: heavy_viewer
    version: 1
    when: view
    expr: count("user", "1h") >= 8
    cooldown: 6h
    effects:
      - {do: label, entity: user, label: heavy, expires: 1d}
"""


def _rules(path: Path, version: int = 1, n: int = 3) -> Path:
    path.write_text(POST_RULES.format(version=version, n=n))
    return path


def _run(raw: Path, state: Path, rules: Path, **kw) -> dict:
    opts = RunOptions(
        source="files", raw_dir=raw, state_path=state, once=True, push=False, rules_file=rules, **kw
    )
    return process(opts)


def _log(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _verdicts(rows: list[dict]) -> list[tuple]:
    return [
        (
            r["rule"],
            r["rule_version"],
            r["mode"],
            r["effect"],
            r["entity"],
            r["entity_id"],
            r["event_id"],
            r["event_ts"],
            r["expires_at"],
        )
        for r in rows
    ]


def _rule_tables(db: Path, rules: Path) -> dict:
    """The rule state as the engine sees it once everything out of the lateness horizon is pruned
    (checkpoints at other moments prune at other moments); the effects are compared as logs."""
    state = StreamState(db)
    try:
        feed = RulesFeed(state.con, rules, db.with_suffix(".check.jsonl"))
        eng = feed.engine
        eng.prune(state.watermark_ms - state.lateness_ms)
        counters = {k: {v: ent for v, ent in c.table.items()} for k, c in eng.counters.items()}
        return {"labels": eng.labels, "fired": eng.fired, "counters": counters}
    finally:
        state.close()


def test_stream_effects_logged_once_and_two_runs_equal_one(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    src = tmp_path / "src"
    write_world(src, posts=10, events=2500, seed=11)
    rules = _rules(tmp_path / "rules.yaml")
    one = _run(src, tmp_path / "one.sqlite", rules, checkpoint_events=97)
    log_one = _log(tmp_path / "one.effects.jsonl")
    assert one["rules"]["effects_total"] == len(log_one) > 0
    assert [r["seq"] for r in log_one] == list(range(1, len(log_one) + 1))
    assert {r["mode"] for r in log_one} == {"live", "shadow"}
    assert {r["rule"] for r in log_one if r["mode"] == "shadow"} == {"busy_replier"}
    # the same files in two runs (half, then all) give the same log and rule state
    files = sorted(src.glob("events/dt=*/hour=*.jsonl"))
    part = tmp_path / "part"
    for k in (len(files) // 2, len(files)):
        for f in files[:k]:
            (part / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (part / f.relative_to(src)).write_bytes(f.read_bytes())
        _run(part, tmp_path / "two.sqlite", rules, checkpoint_events=500)
    assert _log(tmp_path / "two.effects.jsonl") == log_one
    assert _rule_tables(tmp_path / "two.sqlite", rules) == _rule_tables(
        tmp_path / "one.sqlite", rules
    )


def test_replay_over_the_lake_gives_the_live_streams_verdicts(tmp_path, monkeypatch):
    """A small accounts world: stream it with the default rules, ingest it, replay its days."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    simulate_accounts(raw, replace(AccountsParams(), seed=4, users=300, days=6))
    # reviewers clear every posting account on 10-03 at noon and 10-05 at noon (the same file
    # for live and replay): the labels active then end, with one unlabel effect each
    users = sorted(
        {json.loads(x)["user_id"] for f in raw.glob("events/dt=*/*.jsonl") for x in f.open()}
    )
    verdicts = tmp_path / "accounts" / "verdicts.jsonl"
    verdicts.parent.mkdir()
    verdicts.write_text(
        "".join(
            json.dumps(
                {"user_id": u, "is_violating": False, "reviewed_at": f"2026-10-0{d}T12:00:00Z"}
            )
            + "\n"
            for d in (3, 5)
            for u in users
        )
    )
    live = _run(raw, tmp_path / "s.sqlite", DEFAULT_RULES, checkpoint_events=1000)
    live_rows = _log(tmp_path / "s.effects.jsonl")
    assert live["rules"]["effects_by_rule"]["coordinated_link"] > 0
    unlabels = [r for r in live_rows if r["effect"] == "unlabel"]
    assert unlabels and {r["event_ts"][:13] for r in unlabels} <= {"2026-10-03T12", "2026-10-05T12"}
    from vigil.lake.ingest import ingest

    ingest(raw)
    days = sorted(p.name[3:] for p in (raw / "events").glob("dt=*"))
    report = replay(
        DEFAULT_RULES,
        date.fromisoformat(days[0]),
        date.fromisoformat(days[-1]),
        out=tmp_path / "replay.jsonl",
    )
    assert report["effects"] == len(live_rows)
    assert _verdicts(_log(tmp_path / "replay.jsonl")) == _verdicts(live_rows)
    # a later window: the replay warms its counters up on the day before, and reports from --from
    late = replay(
        DEFAULT_RULES,
        date.fromisoformat(days[3]),
        date.fromisoformat(days[-1]),
        out=tmp_path / "late.jsonl",
    )
    assert late["warmup_days"] == 1
    assert all(r["event_ts"] >= days[3] for r in _log(tmp_path / "late.jsonl"))
    with pytest.raises(UserError, match="before --from"):
        replay(DEFAULT_RULES, date(2026, 10, 5), date(2026, 10, 1))


def test_hot_reload_takes_a_good_file_and_keeps_the_rules_on_a_bad_one(tmp_path, caplog):
    rules = _rules(tmp_path / "rules.yaml", version=1, n=3)
    state = StreamState(tmp_path / "s.sqlite")
    feed = RulesFeed(state.con, rules, tmp_path / "effects.jsonl")
    feed.attach(state)

    def report(i, post, user, t):
        line = {
            "event_id": f"r{i}",
            "event_ts": f"2026-09-01T00:{t:02d}:00.000Z",
            "user_id": user,
            "action": "report",
            "post_id": post,
        }
        state.apply_lines([json.dumps(line).encode()])

    for i, u in enumerate([1, 2]):
        report(i, 7, u, i)
    assert not feed.maybe_reload()  # unchanged file
    _rules(rules, version=2, n=2)
    os.utime(rules, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert feed.maybe_reload()
    report(5, 8, 1, 5)
    report(6, 8, 2, 6)  # 2 reporters now suffice, under version 2
    rules.write_text(POST_RULES.format(version=3, n=2).replace("distinct(", "distinctt("))
    os.utime(rules, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    with caplog.at_level(logging.ERROR, logger="vigil.stream.rules"):
        assert not feed.maybe_reload()
        assert not feed.maybe_reload()  # the same bad file: one error, not one per batch
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "unknown function 'distinctt'" in errors[0].getMessage()
    report(7, 9, 1, 7)
    report(8, 9, 2, 8)  # the version 2 rules still run
    state.checkpoint()
    feed.export()
    state.close()
    got = [
        (r["entity_id"], r["rule_version"])
        for r in _log(tmp_path / "effects.jsonl")
        if r["effect"] == "review"
    ]
    assert got == [("8", 2), ("9", 2)]
    assert feed.reloads == 1 and feed.reload_errors == 1


def test_rule_tests_from_the_file_and_a_failing_one(tmp_path):
    results = run_tests(load_rules(DEFAULT_RULES, FEATURE_NAMES))
    assert results and all(r["ok"] for r in results), results
    wrong = DEFAULT_RULES.read_text().replace(
        "{rule: post_burst, mode: shadow", "{rule: post_burst, mode: live"
    )
    (tmp_path / "wrong.yaml").write_text(wrong)
    results = run_tests(load_rules(tmp_path / "wrong.yaml", FEATURE_NAMES))
    assert [r["ok"] for r in results] == [True, True, False, True]


def test_labels_command_and_refusals(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    write_world(raw, posts=6, events=1500, seed=2)
    rules = _rules(tmp_path / "rules.yaml")
    _run(raw, tmp_path / "s.sqlite", rules)
    args = Namespace(entity="post", id=None, at=None)
    active = active_labels(tmp_path / "s.sqlite", args)
    # by hand from the log: a post is labeled for 1 h from its effect; active ones at the watermark
    con = sqlite3.connect(tmp_path / "s.sqlite")
    wm = int(dict(con.execute("select key, value from meta"))["watermark_ms"])
    con.close()
    from datetime import datetime

    expected = set()
    for r in _log(tmp_path / "s.effects.jsonl"):
        if r["effect"] == "label":
            exp = int(datetime.fromisoformat(r["expires_at"]).timestamp() * 1000)
            if exp > wm:
                expected.add(int(r["entity_id"]))
    assert {a["entity_id"] for a in active} == expected
    with pytest.raises(UserError, match="run `vigil stream"):
        active_labels(tmp_path / "none.sqlite", args)
    with pytest.raises(UserError, match="--consumers 1"):
        process(RunOptions(source="redis", consumers=2, partitions=4, rules_file=rules))
    with pytest.raises(RuleError, match="cannot read the rules file"):
        _run(raw, tmp_path / "x.sqlite", tmp_path / "missing.yaml")


def _vigil_stream(home: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, VIGIL_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "stream", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill9_with_rules_on_is_exactly_once(tmp_path):
    raw = tmp_path / "raw"
    write_world(raw, posts=40, events=25_000, seed=21)
    rules = _rules(tmp_path / "rules.yaml")
    rules.write_text(rules.read_text() + HEAVY_VIEWER)
    # reviewers clear users 1-50 twice (the run reads the file at start, applies the verdicts
    # as its event time passes them, and checkpoints the offset and the pending ones)
    verdicts = tmp_path / "accounts" / "verdicts.jsonl"
    verdicts.parent.mkdir()
    verdicts.write_text(
        "".join(
            json.dumps(
                {"user_id": u, "is_violating": False, "reviewed_at": f"2026-09-0{d}T00:00:00Z"}
            )
            + "\n"
            for d in (2, 3)
            for u in range(1, 51)
        )
    )
    common = ["--raw", str(raw), "--once", "--no-push", "--rules", str(rules)]
    common += ["--checkpoint-events", "700", "--checkpoint-seconds", "0.05"]
    t = time.time()
    ref = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "ref.sqlite"))
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    uninterrupted = time.time() - t
    rng = random.Random(2026)
    kills = 0
    for _attempt in range(5):
        proc = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"))
        time.sleep(rng.uniform(0.25, 0.7) * uninterrupted)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 2, f"the run finished before it could be killed ({uninterrupted:.1f} s)"
    final = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"))
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()[-2000:]
    ref_log = (tmp_path / "ref.effects.jsonl").read_text()
    assert ref_log and (tmp_path / "crash.effects.jsonl").read_text() == ref_log  # exactly once
    assert '"effect": "unlabel"' in ref_log
    assert _rule_tables(tmp_path / "crash.sqlite", rules) == _rule_tables(
        tmp_path / "ref.sqlite", rules
    )
    read = []
    for db in ("ref.sqlite", "crash.sqlite"):
        with contextlib.closing(sqlite3.connect(tmp_path / db)) as con:
            read.append(con.execute("select offset, line from rules_verdict_offset").fetchall())
    assert read[0] == read[1] == [(verdicts.stat().st_size, 100)]


def test_rules_and_rescore_triggers_run_side_by_side(tmp_path, monkeypatch):
    """Both hooks on one stream: each gives what it gives alone."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    write_world(raw, posts=8, events=1200, seed=8)
    rules = _rules(tmp_path / "rules.yaml")
    _run(raw, tmp_path / "rules.sqlite", rules)
    opts = RunOptions(source="files", raw_dir=raw, once=True, push=False)
    process(replace(opts, state_path=tmp_path / "trig.sqlite", triggers_file=tmp_path / "t1.jsonl"))
    both = _run(raw, tmp_path / "both.sqlite", rules, triggers_file=tmp_path / "t2.jsonl")
    assert both["rescore"]["requests"] > 0 and both["rules"]["effects_total"] > 0
    assert (tmp_path / "t2.jsonl").read_text() == (tmp_path / "t1.jsonl").read_text()
    assert _log(tmp_path / "both.effects.jsonl") == _log(tmp_path / "rules.effects.jsonl")


def test_the_running_processor_reloads_a_changed_rules_file(tmp_path, monkeypatch):
    """`vigil stream --rules` tailing files: the rules file is rewritten (version 2, threshold 2)
    and a new hour file arrives while it runs; the new file's effects carry version 2. The test
    stops the processor with SIGINT, as a user would."""
    import threading

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    hour = raw / "events" / "dt=2026-09-01"
    hour.mkdir(parents=True)

    def reports(post, users, minute):
        return "".join(
            json.dumps(
                {
                    "event_id": f"r{post}-{u}",
                    "event_ts": f"2026-09-01T{minute // 60:02d}:{minute % 60:02d}:{u:02d}.000Z",
                    "user_id": u,
                    "action": "report",
                    "post_id": post,
                }
            )
            + "\n"
            for u in users
        )

    (hour / "hour=00.jsonl").write_text(reports(1, [1, 2, 3], 5))  # 3 reporters: v1 fires
    rules = _rules(tmp_path / "rules.yaml", version=1, n=3)
    log_file = tmp_path / "s.effects.jsonl"

    def change_while_running():
        deadline = time.time() + 30
        while time.time() < deadline and not log_file.exists():
            time.sleep(0.05)
        _rules(rules, version=2, n=2)
        os.utime(rules, ns=(time.time_ns(), time.time_ns() + 10**9))
        time.sleep(0.5)
        (hour / "hour=01.jsonl").write_text(reports(2, [4, 5], 65))  # 2 reporters: v2 fires
        while time.time() < deadline:
            if '"entity_id": "2"' in log_file.read_text():
                os.kill(os.getpid(), signal.SIGINT)  # the processor's handler: stop at next loop
                return
            time.sleep(0.05)

    t = threading.Thread(target=change_while_running)
    t.start()
    result = process(
        RunOptions(
            source="files",
            raw_dir=raw,
            state_path=tmp_path / "s.sqlite",
            push=False,
            rules_file=rules,
            checkpoint_seconds=0.05,
            poll_seconds=0.05,
            max_seconds=8,
        )
    )
    t.join()
    got = [(r["entity_id"], r["rule_version"]) for r in _log(log_file) if r["effect"] == "review"]
    assert got == [("1", 1), ("2", 2)]
    assert result["rules"]["reloads"] == 1
