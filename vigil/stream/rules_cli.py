"""``vigil rules check|test|replay|labels``: the rules engine's commands (docs/rules.md).

check FILE
    load and compile a rules file; one clear error naming the file, rule and line if it is bad.
test FILE
    run the ``tests:`` written in the file (given events -> expected effects) through a real
    stream state with the rules attached, exactly as ``vigil stream --rules`` runs them.
replay FILE --from DAY --to DAY
    run the rules over the lake's events of those days (plus a warm-up of the longest window
    before ``--from``, whose effects are not reported), in the order the stream reads the raw
    files (source file, line), and report what they would have done: effects per rule and mode,
    distinct entities, and the effects as JSON lines (``--out``).
labels
    the labels active in a stream checkpoint (``--state``), at its watermark or ``--at``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vigil import config
from vigil.contracts import POST_ACTIONS, TARGET_ACTIONS, TEXT_ACTIONS
from vigil.errors import UserError
from vigil.rules.language import RuleError, RuleSet, load_rules
from vigil.stream.events import DAY_MS, day_of, ms_to_datetime
from vigil.stream.rules import FEATURE_NAMES, RulesFeed, default_verdicts, effect_row
from vigil.stream.state import StreamState

log = logging.getLogger(__name__)

TEST_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # `t: seconds` in rule tests count from here


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="load and compile a rules file")
    check.add_argument("file", type=Path)
    test = sub.add_parser("test", help="run the tests written in a rules file")
    test.add_argument("file", type=Path)
    replay = sub.add_parser("replay", help="run a rule set over past days of the lake")
    replay.add_argument("file", type=Path)
    replay.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    replay.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    replay.add_argument("--lake", type=Path, default=None, help="lake dir (default <data>/lake)")
    replay.add_argument(
        "--out", type=Path, default=None, help="effects JSONL (default <data>/rules/)"
    )
    replay.add_argument("--lateness-hours", type=float, default=None)
    labels = sub.add_parser("labels", help="labels active in a stream checkpoint")
    labels.add_argument(
        "--state", type=Path, default=None, help="default <data>/stream/state.sqlite"
    )
    labels.add_argument("--entity", default=None, help="user, target, post, link, fingerprint")
    labels.add_argument("--id", default=None, help="only this entity value")
    labels.add_argument("--at", default=None, help="ISO time (default: the watermark)")


def run(args: argparse.Namespace) -> int:
    if args.action == "check":
        rs = load_rules(args.file, FEATURE_NAMES)
        print(json.dumps(describe(rs), indent=2))
        return 0
    if args.action == "test":
        results = run_tests(load_rules(args.file, FEATURE_NAMES))
        for r in results:
            print(("PASS " if r["ok"] else "FAIL ") + r["name"])
            if not r["ok"]:
                print("  expected: " + json.dumps(r["expected"]))
                print("  got:      " + json.dumps(r["got"]))
        failed = sum(not r["ok"] for r in results)
        print(f"{len(results) - failed} passed, {failed} failed")
        return 1 if failed else 0
    if args.action == "replay":
        report = replay(
            args.file,
            _day(args.start, "--from"),
            _day(args.end, "--to"),
            lake=args.lake,
            out=args.out,
            lateness_hours=args.lateness_hours,
        )
        print(json.dumps(report, indent=2))
        return 0
    for row in active_labels(args.state or config.paths().stream_state / "state.sqlite", args):
        print(json.dumps(row))
    return 0


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} {text!r}: give a date as YYYY-MM-DD.") from None


def describe(rs: RuleSet) -> dict:
    return {
        "file": str(rs.path),
        "rules": [
            {
                "name": r.name,
                "version": r.version,
                "mode": r.mode,
                "when": list(r.when),
                "counters": [c.key for c in r.counters],
                "effects": [e.do + (f":{e.label}" if e.label else "") for e in r.effects],
            }
            for r in rs.rules
        ],
        "counters": len(rs.counters),
        "tests": len(rs.tests),
    }


# ---------------------------------------------------------------------------------------------
# rule tests


def _ts(ev: dict, where: str) -> datetime:
    if "t" in ev:
        return TEST_EPOCH + timedelta(seconds=float(ev["t"]))
    if "ts" in ev:
        try:
            return datetime.fromisoformat(str(ev["ts"]))
        except ValueError:
            raise RuleError(f"{where}: ts {ev['ts']!r} is not an ISO time.") from None
    raise RuleError(f"{where}: each test event needs `t:` (seconds) or `ts:` (ISO time).")


def event_line(i: int, ev: dict, where: str) -> bytes:
    """A raw event line for a test event ``{t|ts, user, action, post, target, text, country,
    fingerprint}``."""
    action = ev.get("action", "post")
    ts = _ts(ev, where)
    row = {
        "event_id": str(ev.get("id", f"t{i}")),
        "event_ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
        "user_id": int(ev.get("user", 1)),
        "action": action,
    }
    if "post" in ev or action in POST_ACTIONS:
        row["post_id"] = int(ev.get("post", 100_000 + i))
    if "target" in ev or action in TARGET_ACTIONS:
        row["target_user_id"] = int(ev.get("target", 1))
    if "text" in ev or action in TEXT_ACTIONS:
        row["text"] = str(ev.get("text", ""))
    if "country" in ev or action == "login":
        row["country"] = str(ev.get("country", "US"))
    if "fingerprint" in ev:
        row["fingerprint"] = str(ev["fingerprint"])
    return json.dumps(row).encode()


def _matches(want: dict, got: dict) -> bool:
    names = {"do": "effect", "id": "entity_id", "version": "rule_version"}
    for k, v in want.items():
        if k == "t":
            at = (TEST_EPOCH + timedelta(seconds=float(v))).isoformat(timespec="milliseconds")
            if got["event_ts"] != at.replace("+00:00", "Z"):
                return False
        elif str(got.get(names.get(k, k))) != str(v):
            return False
    return True


def run_tests(rs: RuleSet) -> list[dict]:
    """Each test in a fresh stream state: its events applied in order, then its effects compared
    with ``expect`` (each expected effect matches one effect on the keys it gives; no others)."""
    results = []
    for test in rs.tests:
        where = f"{rs.path}:{test.line}: test {test.name!r}"
        lines = [event_line(i, ev, where) for i, ev in enumerate(test.events)]
        got = _run_lines(rs.path, lines)
        unmatched = list(got)
        ok = True
        for want in test.expect:
            hit = next((g for g in unmatched if _matches(want, g)), None)
            if hit is None:
                ok = False
                break
            unmatched.remove(hit)
        ok = ok and not unmatched
        slim = [
            {k: g[k] for k in ("rule", "mode", "effect", "entity", "entity_id", "event_ts")}
            for g in got
        ]
        results.append({"name": test.name, "ok": ok, "expected": test.expect, "got": slim})
    return results


def _run_lines(rules_path: Path, lines: list[bytes]) -> list[dict]:
    for name in ("vigil.stream.state", "vigil.stream.rules"):  # a state per test: no chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="vigil-rules-test-") as tmp:
        state = StreamState(Path(tmp) / "state.sqlite")
        try:
            feed = RulesFeed(state.con, rules_path, Path(tmp) / "effects.jsonl")
            feed.attach(state)
            state.apply_lines(lines)
            state.checkpoint()
            feed.export()
        finally:
            state.close()
        log_file = Path(tmp) / "effects.jsonl"
        text = log_file.read_text() if log_file.exists() else ""
    return [json.loads(x) for x in text.splitlines()]


# ---------------------------------------------------------------------------------------------
# replay over the lake


def lake_events(lake: Path, first: date, last: date):
    """The lake's events of days ``first..last`` as stream tuples, in the stream's reading
    order (source file, then line)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = ["event_id", "event_ts", "user_id", "action", "target_user_id", "country", "post_id"]
    cols += ["text", "fingerprint", "source_file", "source_line"]
    tables = []
    d = first
    while d <= last:
        f = lake / "events" / f"dt={d.isoformat()}" / "events.parquet"
        if f.exists():
            names = pq.read_schema(f).names
            t = pq.read_table(f, columns=[c for c in cols if c in names])
            if "fingerprint" not in names:  # a partition written before events carried it
                t = t.append_column("fingerprint", pa.nulls(t.num_rows, pa.string()))
            tables.append(t.select(cols))
        d += timedelta(days=1)
    if not tables:
        return []
    t = pa.concat_tables(tables).sort_by(
        [("source_file", "ascending"), ("source_line", "ascending")]
    )
    ts = t["event_ts"].cast(pa.int64()).to_pylist()  # µs since the epoch
    columns = [t[c].to_pylist() for c in cols[:9]]
    return [
        (eid, us // 1000, uid, action, target, country, pid, text, fp)
        for eid, us, uid, action, target, country, pid, text, fp in zip(
            columns[0], ts, *columns[2:], strict=True
        )
    ]


def replay(
    rules_path: Path,
    first: date,
    last: date,
    *,
    lake: Path | None = None,
    out: Path | None = None,
    lateness_hours: float | None = None,
) -> dict:
    """What the rules would have done over ``first..last`` (see the module doc)."""
    if last < first:
        raise UserError(f"--to {last} is before --from {first}: give --from <= --to.")
    rs = load_rules(rules_path, FEATURE_NAMES)
    lake = Path(lake or config.paths().lake)
    if not (lake / "events").is_dir():
        raise UserError(f"no lake events under {lake}: run `vigil ingest` first or pass --lake.")
    longest = max((c.window_ms for c in rs.counters), default=0)
    warm_days = -(-longest // DAY_MS)
    t0 = time.time()
    events = lake_events(lake, first - timedelta(days=warm_days), last)
    from_ms = day_of(first) * DAY_MS
    lateness = lateness_hours if lateness_hours is not None else config.stream_lateness_hours()
    effects = replay_events(rules_path, events, lateness_ms=int(lateness * 3_600_000))
    effects = [e for e in effects if e["event_ms"] >= from_ms]
    out = Path(out or config.paths().home / "rules" / f"replay-{first}-{last}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [effect_row(i + 1, e) for i, e in enumerate(effects)]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    per_rule: dict[str, dict] = {}
    for r in rows:
        s = per_rule.setdefault(
            r["rule"], {"mode": r["mode"], "effects": Counter(), "entities": set()}
        )
        s["effects"][r["effect"]] += 1
        s["entities"].add((r["entity"], r["entity_id"]))
    report = {
        "rules_file": str(rules_path),
        "from": str(first),
        "to": str(last),
        "warmup_days": warm_days,
        "events": len(events),
        "seconds": round(time.time() - t0, 2),
        "effects": len(rows),
        "per_rule": {
            name: {
                "mode": s["mode"],
                "effects": dict(s["effects"]),
                "entities": len(s["entities"]),
                "sample": sorted(f"{e}:{i}" for e, i in s["entities"])[:10],
            }
            for name, s in sorted(per_rule.items())
        },
        "out": str(out),
    }
    log.info("rules replay: %d events, %d effects -> %s", len(events), len(rows), out)
    return report


def replay_events(rules_path: Path, events: list[tuple], lateness_ms: int = 2 * DAY_MS) -> list:
    """Apply stream tuples to a fresh stream state with the rules attached; the effects, in order."""
    with tempfile.TemporaryDirectory(prefix="vigil-rules-replay-") as tmp:
        state = StreamState(Path(tmp) / "state.sqlite", lateness_ms=lateness_ms)
        try:
            feed = RulesFeed(
                state.con, rules_path, Path(tmp) / "effects.jsonl", verdicts=default_verdicts()
            )
            feed.attach(state)
            effects = []
            for i, ev in enumerate(events):
                state.apply_event(ev)
                if i % 50_000 == 49_999:
                    effects.extend(feed.engine.take_effects())
                    log.info("rules replay: %d of %d events", i + 1, len(events))
            effects.extend(feed.engine.take_effects())
        finally:
            state.close()
    return effects


# ---------------------------------------------------------------------------------------------
# labels


def active_labels(state_path: Path, args: argparse.Namespace) -> list[dict]:
    if not Path(state_path).exists():
        raise UserError(f"no stream state at {state_path}: run `vigil stream --rules FILE` first.")
    con = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        has = con.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'rules_label'"
        ).fetchone()
        if not has:
            raise UserError(f"{state_path} has no rule labels: run `vigil stream --rules FILE`.")
        meta = dict(con.execute("select key, value from meta"))
        rows = con.execute("select * from rules_label order by entity, entity_id, label").fetchall()
    finally:
        con.close()
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise UserError(f"--at {args.at!r}: give an ISO time.") from None
        at_ms = int(at.timestamp() * 1000)
    else:
        at_ms = int(meta.get("watermark_ms", 0))
    out = []
    for ent, eid, name, exp, rule, set_ms in rows:
        if args.entity and ent != args.entity or args.id and str(json.loads(eid)) != args.id:
            continue
        if exp is not None and exp <= at_ms or set_ms > at_ms:
            continue
        out.append(
            {
                "entity": ent,
                "entity_id": json.loads(eid),
                "label": name,
                "rule": rule,
                "set_at": ms_to_datetime(set_ms).isoformat(timespec="seconds"),
                "expires_at": ms_to_datetime(exp).isoformat(timespec="seconds") if exp else None,
            }
        )
    return out
