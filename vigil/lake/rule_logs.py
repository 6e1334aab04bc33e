"""The rules engine's effects log and the account reviewers' verdicts, loaded into the lake
(docs/contracts.md section 1.3; issue 21).

- ``<data root>/stream/*.effects.jsonl`` (written by ``vigil stream --rules``,
  :func:`vigil.stream.rules.effect_row`) -> ``lake/rule_effects/rule_effects.parquet``, keyed by
  the log's ``effect_id`` (a key seen again, in the same or another log file, is a duplicate: the
  first line wins);
- ``<data root>/accounts/verdicts.jsonl`` (``vigil accounts verdict``) ->
  ``lake/account_verdicts/account_verdicts.parquet``, keyed by ``verdict_id`` =
  ``<source_file>:<source_line>`` (the file is append-only, so a line keeps its number).

Both logs are append-only files read whole on every run (they are small next to the events):
a bad line goes to the quarantine with its reason, the rows of the files read replace those
files' rows in the lake, rows of files no longer on disk stay, and the lake file is rewritten
only when its content changes, so a re-run over the same files changes no byte. Without a log
the lake file is written empty (dbt's sources need a file), as for the scoring service's logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vigil.contracts import (
    MAX_ENTITY_ID_CHARS,
    MAX_RULE_NAME_CHARS,
    MAX_VERDICT_REASON_CHARS,
    RULE_EFFECTS,
    RULE_ENTITIES,
    RULE_MODES,
    SUSPENDED_LABEL,
    THROTTLED_LABEL,
    UNLABEL_EFFECT,
    account_verdict_schema,
    rule_effect_schema,
    verdict_label,
)
from vigil.lake.arrays import from_numpy, from_pylist, table_from_rows
from vigil.lake.store import first_new_rows, read_parquet, write_parquet
from vigil.lake.validation import Bad, _bool, _id, _key, _str, _ts, parse_line, raw_text

log = logging.getLogger("vigil.lake.ingest")

# The label an effect must carry: label effects name their own, review effects none.
# Entities whose values are ids (the stream's user, target and post ids), written as digits.
_ID_ENTITIES = frozenset({"user", "target", "post"})
_EFFECT_LABELS = {"throttle": THROTTLED_LABEL, "suspend": SUSPENDED_LABEL, "review": None}


def _bounded(obj: dict, name: str, limit: int, required: bool = True) -> str | None:
    value = _str(obj, name, required)
    if value is not None and not 1 <= len(value) <= limit:
        raise Bad(f"invalid value: {name}")
    return value


def _one_of(obj: dict, name: str, allowed) -> str:
    value = _str(obj, name, required=True)
    if value not in allowed:
        raise Bad(f"invalid value: {name}")
    return value


def check_rule_effect(obj: dict) -> tuple:
    """One effects-log object -> (effect_id, seq, rule, rule_version, mode, effect, entity,
    entity_id, label, expires_at_us, event_id, event_ts_us), or raise Bad.

    The contract is :func:`vigil.stream.rules.effect_row`'s: ``effect_id`` is
    ``rule:version:effect:entity:entity_id:event_id`` (``unlabel:<label>`` for the effect of an
    unlabel: a cleared verdict ending a live user label, no expiry, event_id the verdict's id);
    ``label`` and ``throttle`` and ``suspend`` effects carry a label (``throttled``,
    ``suspended`` for the last two), ``review`` none; an expiry, when there is one, is after the
    event."""
    seq = _id(obj, "seq", required=True)
    rule = _bounded(obj, "rule", MAX_RULE_NAME_CHARS)
    version = _id(obj, "rule_version", required=True)
    mode = _one_of(obj, "mode", RULE_MODES)
    effect = _one_of(obj, "effect", RULE_EFFECTS)
    entity = _one_of(obj, "entity", RULE_ENTITIES)
    entity_id = _bounded(obj, "entity_id", MAX_ENTITY_ID_CHARS)
    if entity in _ID_ENTITIES and not (entity_id.isascii() and entity_id.isdigit()):
        raise Bad("invalid value: entity_id")
    label = _bounded(obj, "label", MAX_RULE_NAME_CHARS, required=effect != "review")
    if effect in _EFFECT_LABELS and label != _EFFECT_LABELS[effect]:
        raise Bad("invalid value: label")
    event_id = _key(obj, "event_id")
    event_ts = _ts(obj, "event_ts")
    expires_at = None if obj.get("expires_at") is None else _ts(obj, "expires_at")
    if expires_at is not None and expires_at <= event_ts:
        raise Bad("invalid value: expires_at")
    if effect == UNLABEL_EFFECT and (mode != "live" or entity != "user" or expires_at is not None):
        raise Bad("invalid value: effect")  # a cleared verdict ends a live user label, no expiry
    what = f"{effect}:{label}" if effect == UNLABEL_EFFECT else effect
    effect_id = _str(obj, "effect_id", required=True)
    if effect_id != f"{rule}:{version}:{what}:{entity}:{entity_id}:{event_id}":
        raise Bad("invalid value: effect_id")
    return (effect_id, seq, rule, version, mode, effect, entity, entity_id, label, expires_at,
            event_id, event_ts)  # fmt: skip


def check_account_verdict(obj: dict) -> tuple:
    """One verdicts.jsonl object -> (user_id, is_violating, reason, label, reviewer,
    reviewed_at_us), or raise Bad. ``reason`` and ``reviewer`` may be absent or null (stored as
    ''); ``label`` is what the verdict becomes (:func:`vigil.contracts.verdict_label`)."""
    user_id = _id(obj, "user_id", required=True)
    is_violating = _bool(obj, "is_violating")
    if is_violating is None:
        raise Bad("missing field: is_violating")
    reason = _str(obj, "reason", required=False) or ""
    if len(reason) > MAX_VERDICT_REASON_CHARS:
        raise Bad("invalid value: reason")
    reviewer = _str(obj, "reviewer", required=False) or ""
    label = verdict_label(is_violating, reason)
    return (user_id, is_violating, reason, label, reviewer, _ts(obj, "reviewed_at"))


@dataclass(frozen=True)
class RuleLog:
    """One append-only log under the data root and its lake table."""

    stream: str  # the quarantine's stream name (contracts.STREAMS)
    directory: Path
    pattern: str  # glob of the log files inside ``directory``
    dest: Path
    schema: Callable  # the lake schema (a contracts function)
    key: str
    row: Callable[[dict, str, int], tuple]  # (object, file, line) -> lake row, or raise Bad


def _effect_row(obj: dict, rel: str, line: int) -> tuple:
    return (*check_rule_effect(obj), rel, line)


def _verdict_row(obj: dict, rel: str, line: int) -> tuple:
    return (f"{rel}:{line}", *check_account_verdict(obj), rel, line)


def rule_logs(paths) -> tuple[RuleLog, RuleLog]:
    """The effects log(s) of the stream processors under the data root and the verdicts file
    (where ``vigil.accounts.queue.verdicts_path`` writes it)."""
    return (
        RuleLog(
            "rule_effects",
            paths.stream_state,
            "*.effects.jsonl",
            paths.lake_rule_effects / "rule_effects.parquet",
            rule_effect_schema,
            "effect_id",
            _effect_row,
        ),
        RuleLog(
            "account_verdicts",
            paths.home / "accounts",
            "verdicts.jsonl",
            paths.lake_account_verdicts / "account_verdicts.parquet",
            account_verdict_schema,
            "verdict_id",
            _verdict_row,
        ),
    )


def _table(rows: list[tuple], schema):
    # from buffers: pyarrow.array would import pandas (vigil.lake.arrays)
    return table_from_rows(rows, schema)


def _read(spec: RuleLog, path: Path) -> tuple[list[tuple], int, list[tuple]]:
    """(rows, lines read, [(line, reason, raw)]) of one log file."""
    rel = path.relative_to(spec.directory).as_posix()
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    rows, bad = [], []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(spec.row(parse_line(line), rel, number))
        except Bad as exc:
            bad.append((number, exc.args[0], raw_text(line)))
    return rows, len(lines), bad


def _first_per_key(table, key: str):
    """Rows in (source_file, source_line) order, the first of each key kept (the Arrow dedupe of
    :func:`vigil.lake.store.first_new_rows`: no ``group_by``, which imports pandas)."""
    table = table.sort_by([("source_file", "ascending"), ("source_line", "ascending")])
    keep = first_new_rows(table[key])
    return table.combine_chunks() if keep is None else table.take(from_numpy(keep))


def ingest_log(spec: RuleLog, run) -> dict[str, int] | None:
    """Load one log into its lake file. Appends rejected lines to ``run.quarantine`` (stream,
    raw_dir, source_file, line, reason, raw) and the files read to ``run.sources``; with a
    manifest (``run.manifest``) skips the log when every file of it is unchanged, and records
    the files read. Returns read/loaded/quarantined/duplicates, or None when there is no log
    file (the lake file is then left as it is, or written empty if absent)."""
    files = sorted(spec.directory.glob(spec.pattern)) if spec.directory.is_dir() else []
    if not files:
        if not spec.dest.exists():
            write_parquet(_table([], spec.schema()), spec.dest)
            log.info("lake: %s: no log yet, an empty %s written", spec.stream, spec.dest)
        return None
    digests = {}
    if run.manifest is not None:
        keys = [(f"{spec.directory}/{_rel(spec, p)}", p) for p in files]
        digests = run.manifest.digests(keys)
        skipped = _unchanged_counts(spec, digests, run)
        if skipped is not None:
            return skipped
    counts = {"read": 0, "loaded": 0, "quarantined": 0, "duplicates": 0}
    rows, read_now = [], []
    for path in files:
        got, read, bad = _read(spec, path)
        rel = _rel(spec, path)
        counts["read"] += read
        counts["quarantined"] += len(bad)
        run.quarantine.extend((spec.stream, str(spec.directory), rel, *b) for b in bad)
        run.sources.add((str(spec.directory), spec.stream, rel))
        rows += got
        read_now.append(rel)
        key = f"{spec.directory}/{rel}"
        if key in digests:
            run.manifest.record(key, digests[key], read, len(bad), {spec.stream})
    _merge(spec, rows, read_now, counts)
    log.info(
        "ingest: %s %s: %d files, read %d, loaded %d, quarantined %d, duplicates %d",
        spec.stream,
        spec.directory,
        len(files),
        counts["read"],
        counts["loaded"],
        counts["quarantined"],
        counts["duplicates"],
    )
    return counts


def _rel(spec: RuleLog, path: Path) -> str:
    return path.relative_to(spec.directory).as_posix()


def _unchanged_counts(spec: RuleLog, digests: dict[str, str], run) -> dict[str, int] | None:
    """The counts a re-read would give if the manifest holds every file of the log unchanged
    (same content hash, the lake file and quarantine as the last run left them); else None."""
    recs = [run.manifest.unchanged(key, digest, run.output) for key, digest in digests.items()]
    if not spec.dest.exists() or any(rec is None for rec in recs):
        return None
    read, bad = sum(r["read"] for r in recs), sum(r["quarantined"] for r in recs)
    log.info(
        "ingest: %s: %d files unchanged since their last ingest: skipped", spec.stream, len(recs)
    )
    return {"read": read, "loaded": 0, "quarantined": bad, "duplicates": read - bad}


def _merge(spec: RuleLog, rows: list[tuple], read_now: list[str], counts: dict) -> None:
    """Replace the rows of the files read in the lake file, keep the first line of each key,
    count what is new; rewrite the file only if its content changes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = spec.schema()
    old = read_parquet(spec.dest, schema) if spec.dest.exists() else _table([], schema)
    read_now_set = from_pylist(read_now, pa.string())
    kept = old.filter(pc.invert(pc.is_in(old["source_file"], value_set=read_now_set)))
    table = _first_per_key(pa.concat_tables([kept, _table(rows, schema)]), spec.key)
    fresh = table.filter(pc.is_in(table["source_file"], value_set=read_now_set))
    counts["loaded"] = fresh.num_rows - (
        pc.sum(pc.is_in(fresh[spec.key], value_set=old[spec.key])).as_py() or 0
    )
    counts["duplicates"] = counts["read"] - counts["quarantined"] - counts["loaded"]
    if not spec.dest.exists() or not table.equals(old):
        write_parquet(table, spec.dest)


def ingest_rule_logs(paths, run) -> dict[str, dict[str, int]]:
    """Both logs; counts per stream for the logs that exist (their lake files exist either way).
    ``run``: the ingest run (quarantine, sources, manifest and its outputs)."""
    out = {}
    for spec in rule_logs(paths):
        counts = ingest_log(spec, run)
        if counts is not None:
            out[spec.stream] = counts
    return out


def lake_files(paths) -> list[Path]:
    """The lake files of both logs (what dbt's sources read)."""
    return [spec.dest for spec in rule_logs(paths)]


def ensure_lake_files(paths) -> None:
    """Write an empty lake file for each log the lake does not have yet (a lake loaded before
    these logs were ingested, or written by hand): dbt's sources need a file to read.
    ``vigil ingest`` replaces them."""
    for spec in rule_logs(paths):
        if not spec.dest.exists():
            write_parquet(_table([], spec.schema()), spec.dest)
            log.info("lake: %s absent: an empty one written (no log ingested yet)", spec.dest)
