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
        "select decision_id, post_id, decision, trigger, probability, student, source_line "
        f"from '{lake}/decisions/decisions.parquet' order by source_file, source_line"
    )
    assert rows == [
        (f"{sl.DAY1_FILE}:1", 10, "remove", "created", 0.97, 0.93, 1),
        (f"{sl.DAY1_FILE}:2", 10, "remove", "shadow", 0.97, 0.93, 2),
        (f"{sl.DAY2_FILE}:1", 10, "allow", "appeal_reversed", None, None, 1),
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
