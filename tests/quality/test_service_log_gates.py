"""The quality gates on the scoring service's logs (decision log, appeal labels), through the real
pipeline: a hand-made data root -> `vigil ingest` -> `dbt build` staging -> the raw and staging
Great Expectations gates, built once for the module.

The staging models are views over the lake files, so a test corrupts a lake file (written as
ingest writes it, page checksums and all), runs the gates on it and puts the good bytes back.
Every expected failure is named from the corruption the test makes (one row set to 1.5 -> one
unexpected value in `probability`), never read off the gate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import servicelogs as sl

from vigil.contracts import appeal_label_schema, decision_schema
from vigil.lake.ingest import ingest
from vigil.lake.store import write_parquet
from vigil.quality import gate as quality
from vigil.quality.results import GateFailed, GateResult
from vigil.warehouse import dbt as warehouse

DAY = dt.date(2026, 10, 1)
LAKE_END = "2026-10-01T20:00:00Z"  # the lake's last event (a login)
DECISIONS = [
    sl.DECISION,
    sl.DECISION | {"trigger": "shadow", "model_id": "m2"},
    sl.DECISION | {"post_id": 11, "probability": 0.8, "decision": "review", "trigger": "reports"},
    sl.DECISION | {"post_id": 13, "author_id": 2, "probability": 0.1, "decision": "allow"},
]
APPEALED = "2026-10-01T12:00:00+00:00"  # before the lake's end: the posts must be in the lake
APPEALS = [
    sl.REVERSED_10 | {"labeled_at": APPEALED},  # post 10 reversed
    sl.REVERSED_10
    | {
        "appeal_id": 2,
        "post_id": 11,
        "is_harmful": True,
        "harm_types": ["hate"],
        "labeled_at": APPEALED,
    },
    sl.REVERSED_10 | {"appeal_id": 3, "post_id": 13, "labeled_at": APPEALED},
    # post 99 is not in the lake, but decided after the lake's last event: in flight, not counted
    sl.REVERSED_10 | {"appeal_id": 4, "post_id": 99},
]


def _lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_root(home: Path) -> Path:
    """Four posts and a login per user on DAY (the logins carry countries; the last one ends the
    lake at LAKE_END), users, queue labels; the service's decisions and appeal verdicts: every
    line valid."""
    raw = home / "raw"
    events = [
        {
            "event_id": f"p{post}",
            "event_ts": f"2026-10-01T00:{post:02d}:00Z",
            "user_id": author,
            "action": "post",
            "post_id": post,
            "text": f"post {post}",
        }
        for post, author in sl.POSTS.items()
    ]
    events += [
        {
            "event_id": f"l{u}",
            "event_ts": LAKE_END if u == 2 else "2026-10-01T08:00:00Z",
            "user_id": u,
            "action": "login",
            "country": "US",
        }
        for u in (1, 2)
    ]
    _lines(raw / "events" / "dt=2026-10-01" / "hour=00.jsonl", events)
    _lines(raw / "users.jsonl", sl.USERS)
    _lines(raw / "labels.jsonl", sl.LABELS)
    _lines(home / "decisions" / sl.DAY1_FILE, DECISIONS)
    _lines(home / "decisions" / sl.DAY2_FILE, [sl.RESTORED])
    _lines(home / "appeals" / "labels.jsonl", APPEALS)
    return raw


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("service-log-gates")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(root))
    for name in (
        "VIGIL_MAX_QUARANTINE_RATE",
        "VIGIL_ROW_COUNT_TOLERANCE",
        "VIGIL_MAX_ORPHAN_LABEL_RATE",
    ):
        mp.delenv(name, raising=False)
    try:
        result = ingest(write_root(root))
        assert result["quarantined"] == 0, result
        warehouse.build("staging")
        yield root
    finally:
        mp.undo()


DECISIONS_FILE = "decisions/decisions.parquet"
APPEALS_FILE = "appeal_labels/appeal_labels.parquet"


def lake(home: Path, name: str) -> pa.Table:
    return pq.read_table(home / "lake" / name)


@contextlib.contextmanager
def lake_file(home: Path, name: str, table: pa.Table | None):
    """``name`` holds ``table`` (None: the file is gone) inside the block; the good bytes after."""
    path = home / "lake" / name
    good = path.read_bytes()
    try:
        if table is None:
            path.unlink()
        else:
            write_parquet(table, path)
        yield
    finally:
        path.write_bytes(good)


def with_rows(table: pa.Table, rows: list[dict]) -> pa.Table:
    return pa.concat_tables([table, pa.Table.from_pylist(rows, schema=table.schema)])


def changed(table: pa.Table, row: int, **values) -> pa.Table:
    rows = table.to_pylist()
    rows[row] = rows[row] | values
    return pa.Table.from_pylist(rows, schema=table.schema)


def gate_fails(stage: str) -> GateResult:
    with pytest.raises(GateFailed) as info:
        quality.run_gate(stage, run_date=DAY)
    return info.value.result


def failures(result: GateResult) -> set[tuple[str, str, str | None]]:
    return {(r.table, r.check, r.column) for r in result.failures}


def named(result: GateResult, table: str, check: str, column: str):
    """The one failure on table.column by check; its message names all three."""
    found = [r for r in result.failures if (r.table, r.check, r.column) == (table, check, column)]
    assert len(found) == 1, failures(result)
    assert found[0].message.startswith(f"{table}.{column}: {check} ")
    return found[0]


def passes(stage: str) -> GateResult:
    result = quality.run_gate(stage, run_date=DAY)
    assert result.success, [r.message for r in result.failures]
    return result


def test_good_logs_pass_both_gates_with_their_row_counts(home):
    for stage in ("raw", "staging"):
        result = passes(stage)
        assert not result.warnings, [r.message for r in result.warnings]
        decisions = "decisions" if stage == "raw" else "stg_lake__decisions"
        appeals = "appeal_labels" if stage == "raw" else "stg_lake__appeal_labels"
        # 4 lines on day 1 + the restoring line on day 2; 4 appeals
        assert result.tables[decisions]["rows"] == 5
        assert result.tables[appeals]["rows"] == 4


def test_empty_logs_are_a_valid_empty_table_and_an_absent_one_is_missing(home):
    empty = {DECISIONS_FILE: decision_schema(), APPEALS_FILE: appeal_label_schema()}
    with contextlib.ExitStack() as stack:
        for name, schema in empty.items():
            stack.enter_context(lake_file(home, name, schema.empty_table()))
        for stage in ("raw", "staging"):
            result = passes(stage)
        assert result.tables["stg_lake__decisions"]["rows"] == 0
        assert result.tables["stg_lake__appeal_labels"]["rows"] == 0
    with lake_file(home, DECISIONS_FILE, None):
        result = gate_fails("raw")
    assert failures(result) == {("decisions", "table_exists", None)}
    assert "vigil ingest" in result.failures[0].message


def test_duplicate_decision_key_fails_the_raw_gate_and_staging_keeps_one_copy(home):
    good = lake(home, DECISIONS_FILE)
    with lake_file(home, DECISIONS_FILE, with_rows(good, good.slice(0, 1).to_pylist())):
        result = gate_fails("raw")
        assert failures(result) == {("decisions", "key_unique", "decision_id")}
        # both copies of the key are unexpected
        assert named(result, "decisions", "key_unique", "decision_id").unexpected_count == 2
        passes("staging")  # stg_lake__decisions keeps one row per decision_id


def test_unknown_decision_and_probability_above_1_fail_both_gates(home):
    bad = changed(changed(lake(home, DECISIONS_FILE), 1, decision="ban"), 2, probability=1.5)
    with lake_file(home, DECISIONS_FILE, bad):
        raw, staging = gate_fails("raw"), gate_fails("staging")
    for result, table in ((raw, "decisions"), (staging, "stg_lake__decisions")):
        assert failures(result) == {
            (table, "allowed_values", "decision"),
            (table, "probability_in_0_1", "probability"),
        }
        decision = named(result, table, "allowed_values", "decision")
        assert decision.unexpected_count == 1 and decision.unexpected_sample == ["ban"]
        probability = named(result, table, "probability_in_0_1", "probability")
        assert probability.unexpected_count == 1 and probability.unexpected_sample == [1.5]


def test_unknown_removal_path_and_head_above_1_fail_both_gates(home):
    bad = changed(changed(lake(home, DECISIONS_FILE), 1, path="rule"), 2, head=1.5)
    with lake_file(home, DECISIONS_FILE, bad):
        raw, staging = gate_fails("raw"), gate_fails("staging")
    for result, table, path, head in (
        (raw, "decisions", "path", "head"),
        (staging, "stg_lake__decisions", "removal_path", "head_score"),
    ):
        assert failures(result) == {
            (table, "allowed_values", path),
            (table, "probability_in_0_1", head),
        }
        assert named(result, table, "allowed_values", path).unexpected_sample == ["rule"]
        assert named(result, table, "probability_in_0_1", head).unexpected_sample == [1.5]


def test_decision_from_the_future_and_a_line_logged_twice_fail(home):
    good = lake(home, DECISIONS_FILE)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    # the same decision again under the next line number of its file (the service wrote it twice)
    twice = good.slice(0, 1).to_pylist()[0]
    twice |= {"source_line": 9, "decision_id": f"{twice['source_file']}:9"}
    bad = with_rows(changed(good, 3, decided_at=tomorrow), [twice])
    with lake_file(home, DECISIONS_FILE, bad):
        raw, staging = gate_fails("raw"), gate_fails("staging")
    assert failures(raw) == {("decisions", "not_in_future", "decided_at")}
    assert failures(staging) == {
        ("stg_lake__decisions", "not_in_future", "decided_at"),
        ("stg_lake__decisions", "decision_logged_once", "post_id"),
    }
    once = named(staging, "stg_lake__decisions", "decision_logged_once", "post_id")
    assert once.unexpected_sample[0]["copies"] == 2 and once.unexpected_sample[0]["post_id"] == 10


def test_appeal_label_for_a_post_not_in_the_lake_fails_the_staging_gate(home, monkeypatch):
    good = lake(home, APPEALS_FILE)
    orphan = good.slice(0, 1).to_pylist()[0] | {"appeal_id": 5, "post_id": 77}
    with lake_file(home, APPEALS_FILE, with_rows(good, [orphan])):
        passes("raw")  # the raw gate does not join the lake's posts
        result = gate_fails("staging")
        # 1 orphan among the 4 labels decided before the lake's end (appeal 4 is in flight)
        assert failures(result) == {("stg_lake__appeal_labels", "orphan_rate", "post_id")}
        rate = named(result, "stg_lake__appeal_labels", "orphan_rate", "post_id")
        assert rate.unexpected_sample == [
            {"orphan_labels": 1, "labels_before_lake_end": 4, "orphan_rate": 0.25, "post_ids": [77]}
        ]
        assert {(r.check, r.column) for r in result.warnings} == {("post_exists", "post_id")}
        # above the threshold's share only: at 30% the orphan is reported, the gate passes
        monkeypatch.setenv("VIGIL_MAX_ORPHAN_LABEL_RATE", "0.3")
        result = passes("staging")
        assert {(r.check, r.column) for r in result.warnings} == {("post_exists", "post_id")}


def test_bad_appeal_verdicts_and_duplicate_appeal_fail(home):
    good = lake(home, APPEALS_FILE)
    bad = changed(changed(good, 0, queue="random"), 2, harm_types="spam")  # 2: benign
    bad = with_rows(changed(bad, 1, harm_types="hate,slur"), good.slice(3, 1).to_pylist())
    with lake_file(home, APPEALS_FILE, bad):
        raw, staging = gate_fails("raw"), gate_fails("staging")
    assert failures(raw) == {
        ("appeal_labels", "appeal_queue", "queue"),
        ("appeal_labels", "benign_has_no_harm_types", "harm_types"),
        ("appeal_labels", "harm_types_known", "harm_types"),
        ("appeal_labels", "key_unique", "appeal_id"),
    }
    assert named(raw, "appeal_labels", "appeal_queue", "queue").unexpected_sample == ["random"]
    known = named(raw, "appeal_labels", "harm_types_known", "harm_types")
    assert known.unexpected_sample == [{"appeal_id": 2, "harm_types": "hate,slur"}]
    # staging keeps one row per appeal; the bad verdicts remain
    assert failures(staging) == {
        ("stg_lake__appeal_labels", "appeal_queue", "label_queue"),
        ("stg_lake__appeal_labels", "benign_has_no_harm_types", "harm_types"),
        ("stg_lake__appeal_labels", "harm_types_known", "harm_types"),
    }


def test_a_shrinking_decision_log_fails_against_the_previous_run(home):
    history = home / "reports" / "quality" / "row_count_history.json"
    saved = history.read_bytes() if history.exists() else None
    earlier = {"run_date": str(DAY - dt.timedelta(days=1)), "rows": 7}
    try:
        data = json.loads(saved) if saved else {}
        data["staging/stg_lake__decisions"] = [earlier]
        history.parent.mkdir(parents=True, exist_ok=True)
        history.write_text(json.dumps(data))
        result = gate_fails("staging")
        assert failures(result) == {("stg_lake__decisions", "volume_never_decreases", None)}
        assert "observed 5, expected [7, +inf]" in result.failures[0].message
    finally:
        if saved is None:
            history.unlink()
        else:
            history.write_bytes(saved)


def test_vigil_validate_and_the_dag_gate_task_stop_on_a_bad_decision(home, capsys):
    """`vigil validate staging` exits 1 naming the table, column and rule; the vigil_daily gate
    task (run_task, as dags/vigil_daily.py calls it) fails at once, so dbt_marts (post_labels,
    which merges appeal verdicts) does not run."""
    from airflow.sdk.exceptions import AirflowFailException

    from vigil.cli import main
    from vigil.orchestration.tasks import run_task

    bad = changed(lake(home, DECISIONS_FILE), 0, decision="ban")
    with lake_file(home, DECISIONS_FILE, bad):
        assert main(["validate", "staging", "--date", str(DAY)]) == 1
        out = capsys.readouterr().out
        assert "FAIL  stg_lake__decisions.decision: allowed_values" in out and '["ban"]' in out
        with pytest.raises(AirflowFailException, match=r"stg_lake__decisions\.decision"):
            run_task("vigil.quality.gate:run_gate", "staging", run_date=str(DAY))
    assert main(["validate", "staging", "--date", str(DAY)]) == 0
