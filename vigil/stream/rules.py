"""The rules engine in the stream processor (issue 21): ``vigil stream --rules FILE``.

Every applied event (validated, not a duplicate, not too late) goes through the
:class:`vigil.rules.engine.Engine` in the stream's order. Exactly-once, like the stream's own
state: the counters, labels and cooldowns that changed, and the effects decided, are written in
the checkpoint's transaction (tables ``rules_counter``, ``rules_label``, ``rules_fired``,
``rules_effect``: the effects not yet in the log), so after a kill -9 the processor resumes with rule state that counts exactly
the events its position says were applied. After each commit the new effects are appended to the
effects log (JSON lines, default ``<state>.effects.jsonl`` beside the checkpoint, under the data
root) by sequence number; at start the log's last complete line says where it stopped (a torn
last line is cut), so each effect is in the log exactly once.

Hot reload: :meth:`RulesFeed.maybe_reload` (called between batches) re-reads the rules file when
its mtime changes. A bad new file keeps the old rules and logs one error; counters whose spec is
unchanged keep their state, new ones start empty.

Reviewers' verdicts (``<data root>/accounts/verdicts.jsonl``, ``vigil accounts verdict``): the
feed reads the file's new complete lines at start and between batches (:meth:`RulesFeed.read_verdicts`)
and hands the ``cleared`` ones to the engine, which applies each when the stream's event time
passes it (:meth:`vigil.rules.engine.Engine.add_clears`). The file offset and the verdicts not yet
applied are written in the checkpoint's transaction (``rules_verdict_offset``,
``rules_verdict_pending``; the verdicts applied, kept to the lateness horizon for late events:
``rules_verdict_applied``), so after a kill -9 the lines read since the last checkpoint are read
again, once, with the rule state they were read against.

``score(name)`` reads the acting user's stream features (:func:`vigil.stream.features.features_of`,
the values pushed to Feast) for the watermark's day, as of the end of the batch the event came in.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sqlite3
from pathlib import Path

from vigil.rules.engine import Engine, context
from vigil.rules.language import RuleError, RuleSet, load_rules
from vigil.stream.events import ms_to_datetime
from vigil.stream.features import features_of
from vigil.stream.hooks import chain_hooks

log = logging.getLogger(__name__)

FEATURE_NAMES = frozenset(features_of({}, 0, 0))
PRUNE_EVERY_MS = 60_000

_SCHEMA = """
create table if not exists rules_counter (spec text not null, entity_id text not null,
    data blob not null, primary key (spec, entity_id)) without rowid;
create table if not exists rules_label (entity text not null, entity_id text not null,
    label text not null, expires_ms integer, rule text not null, set_ms integer not null,
    primary key (entity, entity_id, label)) without rowid;
create table if not exists rules_fired (rule text not null, effect integer not null,
    entity_id text not null, until_ms integer not null,
    primary key (rule, effect, entity_id)) without rowid;
create table if not exists rules_effect (seq integer primary key autoincrement,
    effect text not null);
create table if not exists rules_verdict_offset (path text primary key, offset integer not null,
    line integer not null) without rowid;
create table if not exists rules_verdict_pending (t_ms integer not null, line integer not null,
    verdict_id text not null, user_id integer not null, primary key (t_ms, line)) without rowid;
create table if not exists rules_verdict_applied (user_id integer not null, t_ms integer not null,
    verdict_id text not null, primary key (user_id, t_ms, verdict_id)) without rowid;
create table if not exists rules_meta (key text primary key, value text not null) without rowid;
"""


def default_effects_log(state_path: Path) -> Path:
    return Path(state_path).with_name(Path(state_path).stem + ".effects.jsonl")


def effect_row(seq: int, eff: dict) -> dict:
    """An effects-log line: what the warehouse ingests (``effect_id`` is unique)."""
    exp = eff["expires_ms"]
    # an unlabel effect (a cleared verdict ending a label) names the label: one verdict can end
    # several labels one rule set on the user
    what = f"unlabel:{eff['label']}" if eff["effect"] == "unlabel" else eff["effect"]
    return {
        "seq": seq,
        "effect_id": f"{eff['rule']}:{eff['version']}:{what}:{eff['entity']}:"
        f"{eff['entity_id']}:{eff['event_id']}",
        "rule": eff["rule"],
        "rule_version": eff["version"],
        "mode": eff["mode"],
        "effect": eff["effect"],
        "entity": eff["entity"],
        "entity_id": str(eff["entity_id"]),
        "label": eff["label"],
        "expires_at": _iso(exp) if exp is not None else None,
        "event_id": eff["event_id"],
        "event_ts": _iso(eff["event_ms"]),
    }


def _iso(ms: int) -> str:
    return ms_to_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _counter_data(ent: list) -> bytes:
    """A counter entry's buckets as stored: (newest bucket, {bucket: count or set of values}),
    pickled (the state file is the processor's own; pickle is several times cheaper than JSON
    for the thousands of entries a checkpoint writes)."""
    return pickle.dumps((ent[0], ent[1]), protocol=5)


def _key(v) -> str:
    """An entity value as stored: ints as digits, strings as JSON (``json.loads`` reads both)."""
    return str(v) if type(v) is int else json.dumps(v)


def default_verdicts() -> Path:
    """Where ``vigil accounts verdict`` appends (``vigil.accounts.queue.verdicts_path``)."""
    from vigil.config import paths

    return paths().home / "accounts" / "verdicts.jsonl"


def user_features(state):
    """``features(user_id)`` over the stream state, without adding users to its cache."""

    def features(uid: int) -> dict:
        u = state.users.get(uid)
        if u is None:
            if state.complete:
                return {}
            u = state._user(uid)
        return features_of(u.days, u.posts_total, state.wm_day)

    return features


class RulesFeed:
    """Rule state in the stream's checkpoint file and the effects log. Install with
    :meth:`attach` (beside re-score triggers, if on); call :meth:`export` after each checkpoint."""

    def __init__(
        self,
        con: sqlite3.Connection,
        rules_path: Path,
        effects_log: Path,
        ruleset: RuleSet | None = None,
        verdicts: Path | None = None,
        counters=None,
    ) -> None:
        """``verdicts``: the reviewers' verdicts file to read (None: no verdicts). ``counters``:
        a :class:`vigil.rules.redis_counters.RedisCounters` to keep the counters in Redis (None:
        in process, in this checkpoint)."""
        self.con = con
        self.redis = counters
        self.verdicts_path = Path(verdicts) if verdicts is not None else None
        self.verdict_offset = 0
        self.verdict_line = 0
        self.verdicts_read = 0
        self.verdicts_bad = 0
        self.rules_path = Path(rules_path)
        self.mtime = self._mtime()
        self.engine = Engine(
            ruleset or load_rules(self.rules_path, FEATURE_NAMES), counter_factory=counters
        )
        self.effects_log = Path(effects_log)
        self.reloads = 0
        self.reload_errors = 0
        self.by_rule: dict[str, int] = {}  # effects decided by this run
        self.state = None
        self._last_prune = -(1 << 62)
        con.executescript(_SCHEMA)
        self._load()
        self.exported = self._log_tail()
        self.read_verdicts()

    # -- loading ------------------------------------------------------------------------------
    def _mtime(self) -> float | None:
        try:
            return os.stat(self.rules_path).st_mtime_ns
        except OSError:
            return None

    def _load_counters_meta(self) -> None:
        """The counters' home recorded in the checkpoint must be this run's; with Redis counters,
        the position the checkpoint committed (a fresh checkpoint must find no keys)."""
        meta = dict(self.con.execute("select key, value from rules_meta"))
        has_rows = self.con.execute("select 1 from rules_counter limit 1").fetchone() is not None
        was = meta.get("counters", "memory" if has_rows else None)
        now = f"redis:{self.redis.prefix}" if self.redis is not None else "memory"
        if was and was != now:
            raise RuleError(
                f"the stream state keeps its rule counters in {was!r}, this run in {now!r}: "
                "run with the same --rules-counters (and prefix), or start a new --state."
            )
        if self.redis is None:
            return
        if was is None:  # a fresh state: the prefix must be fresh too; then it is this state's
            if self.redis.has_keys():
                raise RuleError(
                    f"Redis already holds keys under {self.redis.prefix!r} but the stream state "
                    "has no rule counters there: delete those keys or give another "
                    "--rules-redis-prefix."
                )
            # committed before any key is written: a run killed before its first checkpoint
            # restarts on its own keys (from position 0: the events are applied again, the same)
            self.con.execute("insert into rules_meta values ('counters', ?)", (now,))
            self.con.commit()
        self.redis.position = self.redis.committed = int(meta.get("position", 0))

    def _load(self) -> None:
        eng = self.engine
        n = 0
        self._load_counters_meta()
        for spec, entity_id, data in self.con.execute("select * from rules_counter"):
            c = eng.counters.get(spec)
            if c is None:
                eng.dropped_counters.add(spec)
                continue
            hi, d = pickle.loads(data)
            c.table[json.loads(entity_id)] = c.entry(hi, d)
            n += 1
        for ent, eid, name, exp, rule, set_ms in self.con.execute("select * from rules_label"):
            eng.labels[(ent, json.loads(eid), name)] = (exp, rule, set_ms)
        for rule, k, eid, until in self.con.execute("select * from rules_fired"):
            eng.fired[(rule, k, json.loads(eid))] = until
        if self.verdicts_path is not None:
            got = self.con.execute(
                "select offset, line from rules_verdict_offset where path = ?",
                (str(self.verdicts_path),),
            ).fetchone()
            self.verdict_offset, self.verdict_line = got or (0, 0)
            eng.pending = [tuple(r) for r in self.con.execute(
                "select t_ms, line, verdict_id, user_id from rules_verdict_pending order by 1, 2"
            )]  # fmt: skip
            for user, t, verdict_id in self.con.execute(
                "select * from rules_verdict_applied order by 1, 2, 3"
            ):
                eng.cleared.setdefault(user, []).append((t, verdict_id))
        log.info(
            "rules %s: %d rules, %d counters (%d entity rows), %d labels loaded",
            self.rules_path,
            len(eng.ruleset.rules),
            len(eng.counters),
            n,
            len(eng.labels),
        )

    def _log_tail(self) -> int:
        """The last sequence number in the effects log; a torn last line is cut off."""
        path = self.effects_log
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            return 0
        with path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - (1 << 16))
            f.seek(start)
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                f.truncate(start + cut + 1 if cut >= 0 else start)
                tail = tail[: cut + 1] if cut >= 0 else b""
        lines = tail.splitlines()
        return json.loads(lines[-1])["seq"] if lines else 0

    # -- reviewers' verdicts ------------------------------------------------------------------
    def read_verdicts(self) -> int:
        """Hand the verdicts file's new complete lines to the engine (the cleared ones); lines
        the lake would quarantine are skipped with a warning. How many lines were read."""
        path = self.verdicts_path
        if path is None or not path.exists():
            return 0
        with path.open("rb") as f:
            f.seek(self.verdict_offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for its newline
        if end == 0:
            return 0
        from vigil.lake.rule_logs import check_account_verdict
        from vigil.lake.validation import Bad, parse_line

        clears = []
        lines = chunk[:end].split(b"\n")[:-1]
        for raw in lines:
            self.verdict_line += 1
            try:  # the lake's checks: what it quarantines, the engine skips
                user, is_violating, _, _, _, at_us = check_account_verdict(parse_line(raw))
            except Bad as exc:
                self.verdicts_bad += 1
                log.warning("rules: verdicts %s line %d skipped (%s)", path, self.verdict_line, exc)
                continue
            if not is_violating:  # the lake's verdict_id: <file>:<line>
                verdict_id = f"{path.name}:{self.verdict_line}"
                clears.append((at_us // 1000, self.verdict_line, verdict_id, user))
        self.verdict_offset += end
        self.verdicts_read += len(lines)
        self.engine.add_clears(clears)
        self.engine.pending_dirty = True  # the offset moved: the next checkpoint writes it
        return len(lines)

    def _write_verdicts(self, con: sqlite3.Connection) -> None:
        eng = self.engine
        if eng.cleared_dirty:
            con.execute("delete from rules_verdict_applied")
            con.executemany(
                "insert into rules_verdict_applied values (?,?,?)",
                [(u, t, vid) for u, clears in eng.cleared.items() for t, vid in clears],
            )
            eng.cleared_dirty = False
        if self.verdicts_path is None or not eng.pending_dirty:
            return
        con.execute(
            "insert or replace into rules_verdict_offset values (?,?,?)",
            (str(self.verdicts_path), self.verdict_offset, self.verdict_line),
        )
        con.execute("delete from rules_verdict_pending")
        con.executemany("insert into rules_verdict_pending values (?,?,?,?)", eng.pending)
        eng.pending_dirty = False

    # -- the stream's hooks -------------------------------------------------------------------
    def attach(self, state) -> None:
        self.state = state
        self.engine.features = user_features(state)
        chain_hooks(state, self.observe, self.write)

    def observe(self, events: list[tuple]) -> None:
        if self.redis is not None:  # one Lua call per chunk of events (their updates, queries)
            self.engine.process_all([context(ev) for ev in events])
            return
        process = self.engine.process
        for ev in events:
            process(context(ev))

    def write(self, con: sqlite3.Connection) -> None:
        """Inside the checkpoint's transaction: changed rule state and the new effects."""
        eng = self.engine
        if self.state is not None:
            # only what no event the stream still accepts can see (it drops events older than
            # watermark - lateness), so when the checkpoints fall never changes a verdict
            horizon = self.state.watermark_ms - self.state.lateness_ms
            if horizon - self._last_prune >= PRUNE_EVERY_MS:
                eng.prune(horizon)
                self._last_prune = horizon
        for spec in sorted(eng.dropped_counters):
            con.execute("delete from rules_counter where spec = ?", (spec,))
        eng.dropped_counters.clear()
        for key, c in eng.counters.items():
            if not c.dirty:
                continue
            ups, dels = [], []
            for v in c.dirty:
                ent = c.table.get(v)
                if ent is None:
                    dels.append((key, _key(v)))
                else:
                    ups.append((key, _key(v), _counter_data(ent)))
            con.executemany("insert or replace into rules_counter values (?,?,?)", ups)
            con.executemany("delete from rules_counter where spec = ? and entity_id = ?", dels)
            c.dirty.clear()
        for k in eng.dirty_labels:
            got = eng.labels.get(k)
            if got is None:
                con.execute(
                    "delete from rules_label where entity = ? and entity_id = ? and label = ?",
                    (k[0], _key(k[1]), k[2]),
                )
            else:
                con.execute(
                    "insert or replace into rules_label values (?,?,?,?,?,?)",
                    (k[0], _key(k[1]), k[2], *got),
                )
        eng.dirty_labels.clear()
        for k in eng.dirty_fired:
            until = eng.fired.get(k)
            args = (k[0], k[1], _key(k[2]))
            if until is None:
                con.execute(
                    "delete from rules_fired where rule = ? and effect = ? and entity_id = ?", args
                )
            else:
                con.execute("insert or replace into rules_fired values (?,?,?,?)", (*args, until))
        eng.dirty_fired.clear()
        self._write_verdicts(con)
        if self.redis is not None:  # the position this checkpoint's offsets correspond to
            con.executemany(
                "insert or replace into rules_meta values (?, ?)",
                [
                    ("counters", f"redis:{self.redis.prefix}"),
                    ("position", str(self.redis.position)),
                ],
            )
            # the next events are applied after this transaction commits
            self.redis.committed = self.redis.position
        effects = eng.take_effects()
        con.executemany(
            "insert into rules_effect (effect) values (?)",
            [(json.dumps(e, sort_keys=True),) for e in effects],
        )
        # rows already in the effects log (fsynced) leave the table: it holds only the backlog
        con.execute("delete from rules_effect where seq <= ?", (self.exported,))
        for e in effects:
            self.by_rule[e["rule"]] = self.by_rule.get(e["rule"], 0) + 1

    def export(self) -> int:
        """After a commit: append the committed effects not yet in the log; how many."""
        rows = self.con.execute(
            "select seq, effect from rules_effect where seq > ? order by seq", (self.exported,)
        ).fetchall()
        if not rows:
            return 0
        with self.effects_log.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps(effect_row(s, json.loads(e))) + "\n" for s, e in rows))
            f.flush()
            os.fsync(f.fileno())
        self.exported = rows[-1][0]
        return len(rows)

    def maybe_reload(self) -> bool:
        """Re-read the rules file if its mtime changed; keep the old rules if it is bad."""
        mtime = self._mtime()
        if mtime == self.mtime:
            return False
        self.mtime = mtime
        try:
            ruleset: RuleSet = load_rules(self.rules_path, FEATURE_NAMES)
        except RuleError as exc:
            self.reload_errors += 1
            log.error("rules: the changed rules file is refused, the old rules stay: %s", exc)
            return False
        self.engine.set_rules(ruleset)
        self.reloads += 1
        log.info(
            "rules: reloaded %s: %s",
            self.rules_path,
            ", ".join(f"{r.name} v{r.version}" for r in ruleset.rules),
        )
        return True

    def summary(self) -> dict:
        out = {
            "file": str(self.rules_path),
            "rules": [f"{r.name} v{r.version} ({r.mode})" for r in self.engine.ruleset.rules],
            "effects_total": sum(self.by_rule.values()),
            "effects_by_rule": dict(sorted(self.by_rule.items())),
            "effects_log": str(self.effects_log),
            "labels_active": len(self.engine.labels),
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "expression_errors": dict(self.engine.errors),
            "verdicts": str(self.verdicts_path) if self.verdicts_path else None,
            "verdict_lines_read": self.verdicts_read,
            "verdict_lines_bad": self.verdicts_bad,
            "cleared_pending": len(self.engine.pending),
        }
        log.info("rules: %s", out)
        return out
