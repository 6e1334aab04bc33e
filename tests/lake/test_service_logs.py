"""`vigil ingest` of the scoring service's logs (decision log, appeal labels) on a hand-made data
root (tests/support/servicelogs.py): lake rows, quarantine reasons and counts worked out by hand
from the lines written there; a re-run changes nothing; appended lines load alone."""

from __future__ import annotations

import json

import duckdb
import pytest
import servicelogs as sl

from vigil.lake.ingest import ingest


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("VIGIL_HOME", str(h))
    return h


def _counts(s: dict) -> tuple:
    return (s["read"], s["loaded"], s["quarantined"], s["duplicates"])


def _sql(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


def test_decisions_and_appeal_labels_land_in_the_lake(home):
    result = ingest(sl.write_root(home))
    # decisions: 7 + 1 lines, 5 rejected; appeal labels: 7 lines, 3 rejected
    assert _counts(result["streams"]["decisions"]) == (8, 3, 5, 0)
    assert _counts(result["streams"]["appeal_labels"]) == (7, 4, 3, 0)
    lake = home / "lake"
    rows = _sql(
        "select decision_id, post_id, decision, trigger, probability, student, path, head, "
        f"source_line from '{lake}/decisions/decisions.parquet' order by source_file, source_line"
    )
    assert rows == [
        (f"{sl.DAY1_FILE}:1", 10, "remove", "created", 0.97, 0.93, "cascade", None, 1),
        (f"{sl.DAY1_FILE}:2", 10, "remove", "shadow", 0.97, 0.93, "head", 0.88, 2),
        # logged without path and head (as before they existed): null
        (f"{sl.DAY2_FILE}:1", 10, "allow", "appeal_reversed", None, None, None, None, 1),
    ]
    appeals = _sql(
        "select appeal_id, post_id, is_harmful, harm_types, queue "
        f"from '{lake}/appeal_labels/appeal_labels.parquet' order by appeal_id"
    )
    assert appeals == [
        (1, 10, False, "", "appeal"),
        (2, 11, True, "hate", "appeal"),
        (3, 13, False, "", "appeal"),
        (4, 99, False, "", "appeal"),
    ]
    quarantine = _sql(
        "select stream, source_file, line_number, reason from "
        f"'{lake}/quarantine/quarantine.parquet' where stream in ('decisions', 'appeal_labels') "
        "order by all"
    )
    assert quarantine == sorted(
        [("appeal_labels", "labels.jsonl", n, r) for n, r in sl.APPEAL_REASONS.items()]
        + [("decisions", sl.DAY1_FILE, n, r) for n, r in sl.DECISION_REASONS.items()]
    )


def test_rerun_changes_nothing_and_appended_lines_load_alone(home):
    raw = sl.write_root(home)
    ingest(raw)
    lake = home / "lake"
    files = [
        lake / "decisions" / "decisions.parquet",
        lake / "appeal_labels" / "appeal_labels.parquet",
        lake / "quarantine" / "quarantine.parquet",
    ]
    before = [p.stat().st_mtime_ns for p in files]
    again = ingest(raw)
    assert [p.stat().st_mtime_ns for p in files] == before
    # skipped by the manifest, counted as a re-read: the valid lines are duplicates
    assert _counts(again["streams"]["decisions"]) == (8, 0, 5, 3)
    assert _counts(again["streams"]["appeal_labels"]) == (7, 0, 3, 4)
    # the service appends one decision to day 1's file: only that line is new
    with open(home / "decisions" / sl.DAY1_FILE, "a") as handle:
        handle.write(json.dumps(sl.DECISION | {"post_id": 11, "trigger": "reports"}) + "\n")
    grown = ingest(raw)
    assert _counts(grown["streams"]["decisions"]) == (9, 1, 5, 3)
    assert _sql(f"select count(*) from '{files[0]}'") == [(4,)]
    assert _sql(f"select decision_id, post_id from '{files[0]}' where trigger = 'reports'") == [
        (f"{sl.DAY1_FILE}:8", 11)
    ]
    # the day-1 rejections are still quarantined once each
    assert _sql(f"select count(*) from '{files[2]}' where stream = 'decisions'") == [(5,)]


def test_data_root_without_service_logs_gets_empty_lake_files(home, tmp_path):
    raw = sl.write_root(tmp_path / "elsewhere")  # the service logs are not under this home
    result = ingest(raw)
    assert "decisions" not in result["streams"] and "appeal_labels" not in result["streams"]
    lake = home / "lake"
    assert _sql(f"select count(*) from '{lake}/decisions/decisions.parquet'") == [(0,)]
    assert _sql(f"select count(*) from '{lake}/appeal_labels/appeal_labels.parquet'") == [(0,)]


DAY3_FILE = "dt=2026-10-03/decisions-303.jsonl"
# The re-score head's fields on a day of their own: two valid lines, six rejected.
PATH_LINES = [
    sl.DECISION | {"trigger": "reports", "path": "head", "head": 0.81},  # loaded: the head removed
    # loaded: the head ran (0.4) and did not fire; not a removal, so no path
    sl.DECISION | {"decision": "allow", "probability": 0.2, "head": 0.4},
    sl.DECISION | {"path": "rule"},  # not a path
    sl.DECISION
    | {"decision": "allow", "path": "cascade"},  # a path on a decision that is no removal
    sl.DECISION | {"head": 1.5},  # not a probability
    sl.DECISION | {"head": "0.9"},
    sl.DECISION | {"path": ["head"]},
    sl.DECISION | {"path": "head"},  # the head removed without its probability
]
PATH_REASONS = {
    3: "invalid value: path",
    4: "invalid value: path",
    5: "invalid value: head",
    6: "wrong type: head",
    7: "wrong type: path",
    8: "missing field: head",
}


def test_path_and_head_are_optional_and_a_bad_value_is_quarantined(home):
    raw = sl.write_root(home)
    target = home / "decisions" / DAY3_FILE
    target.parent.mkdir(parents=True)
    target.write_text("".join(json.dumps(line) + "\n" for line in PATH_LINES))
    result = ingest(raw)
    # 7 + 1 + 8 lines; loaded 3 (days 1-2) + 2; quarantined 5 (day 1) + 6
    assert _counts(result["streams"]["decisions"]) == (16, 5, 11, 0)
    lake = home / "lake"
    rows = _sql(
        "select source_line, decision, trigger, path, head "
        f"from '{lake}/decisions/decisions.parquet' where source_file = '{DAY3_FILE}' order by 1"
    )
    assert rows == [(1, "remove", "reports", "head", 0.81), (2, "allow", "created", None, 0.4)]
    quarantine = _sql(
        "select line_number, reason from "
        f"'{lake}/quarantine/quarantine.parquet' where source_file = '{DAY3_FILE}' order by 1"
    )
    assert quarantine == sorted(PATH_REASONS.items())


def test_a_lake_file_written_before_path_and_head_is_rebuilt_from_the_logs(home):
    import pyarrow.parquet as pq

    from vigil.lake.store import write_parquet

    raw = sl.write_root(home)
    ingest(raw)
    dest = home / "lake" / "decisions" / "decisions.parquet"
    old = pq.read_table(dest).drop_columns(["path", "head"])
    write_parquet(old, dest)  # as an ingest before the fields existed wrote it
    again = ingest(raw)  # the log files are unchanged, yet read again to fill the new columns
    assert _counts(again["streams"]["decisions"]) == (8, 0, 5, 3)
    assert pq.read_schema(dest).names[-4:] == ["path", "head", "source_file", "source_line"]
    assert _sql(f"select source_line, path, head from '{dest}' order by source_file, 1") == [
        (1, "cascade", None),
        (2, "head", 0.88),
        (1, None, None),
    ]
    quarantine = home / "lake" / "quarantine" / "quarantine.parquet"
    assert _sql(f"select count(*) from '{quarantine}' where stream = 'decisions'") == [(5,)]


def test_an_empty_decisions_file_written_before_path_and_head_gains_them(home, tmp_path):
    """No decision log at all: the empty lake file an older ingest wrote (without the two
    columns) is rewritten with them, and the run after that leaves it as it is."""
    import pyarrow.parquet as pq

    from vigil.lake.store import write_parquet

    raw = sl.write_root(tmp_path / "elsewhere")  # no decision log under this home
    ingest(raw)
    dest = home / "lake" / "decisions" / "decisions.parquet"
    write_parquet(pq.read_table(dest).drop_columns(["path", "head"]), dest)
    ingest(raw)
    assert {"path", "head"} <= set(pq.read_schema(dest).names)
    before = dest.stat().st_mtime_ns, dest.read_bytes()
    ingest(raw)
    assert (dest.stat().st_mtime_ns, dest.read_bytes()) == before
