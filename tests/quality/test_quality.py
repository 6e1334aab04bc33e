"""Quality gates: good hand-made tables pass; each kind of corruption fails with a precise message.

Expected counts come from the corruption each test makes (e.g. two rows set negative -> 2), not
from the gate. Every failing run also checks that the gate left the data untouched and that a
downstream step guarded by the gate did not run. GX is imported once per module (~7-20 s).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import quality_data as qd

from vigil.errors import UserError
from vigil.quality import gate as quality
from vigil.quality import gx_patch, suites
from vigil.quality.results import GateFailed, GateResult


@pytest.fixture(scope="module")
def gx_ready():
    return gx_patch.gx_context()


@pytest.fixture
def home(tmp_path, monkeypatch, gx_ready):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.delenv("VIGIL_MAX_QUARANTINE_RATE", raising=False)
    monkeypatch.delenv("VIGIL_ROW_COUNT_TOLERANCE", raising=False)
    frames = qd.build_all(tmp_path)
    frames["home"] = tmp_path
    return frames


def data_digest(home: Path) -> dict[str, str]:
    """Hash of every data file the gates read (they must never change them)."""
    out = {}
    for folder in ("lake", "warehouse", "features"):
        for f in sorted((home / folder).rglob("*")):
            if f.is_file():
                out[str(f.relative_to(home))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def failing(result: GateResult) -> set[tuple[str, str, str | None]]:
    return {(r.table, r.check, r.column) for r in result.failures}


def one(result: GateResult, table: str, check: str, column: str | None = None):
    found = [
        r
        for r in result.failures
        if r.table == table and r.check == check and (column is None or r.column == column)
    ]
    assert len(found) == 1, f"expected one failure {table}/{check}/{column}, got {failing(result)}"
    return found[0]


def gate_fails(home: Path, stage: str, run_date=qd.DAY, **kwargs) -> GateResult:
    """Run a gate that must fail: GateFailed (not a crash), report on disk, data unchanged."""
    before = data_digest(home)
    with pytest.raises(GateFailed) as info:
        quality.run_gate(stage, run_date=run_date, **kwargs)
    assert data_digest(home) == before
    result = info.value.result
    assert not result.success and result.failures
    assert Path(result.report_path).is_file() and Path(result.json_path).is_file()
    saved = json.loads(Path(result.json_path).read_text())
    assert saved["success"] is False
    assert saved["failures"] == [r.message for r in result.failures]
    for r in result.failures:  # every failure names its table and what it checked
        assert r.message.startswith(r.table) and r.check in r.message
    return result


def rewrite_day(home: Path, day: dt.date, frame: pd.DataFrame) -> None:
    frame.to_parquet(home / "lake" / "events" / f"dt={day}" / "events.parquet", index=False)


def rewrite_table(home: Path, name: str, frame: pd.DataFrame) -> None:
    qd.write_warehouse(home, {name: frame})


# ------------------------------------------------------------------------------------------
# the duckdb-engine workaround


def test_duckdb_engine_patch_gives_correct_metrics_and_unpatched_gx_still_fails(
    tmp_path, monkeypatch, gx_ready
):
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    db = tmp_path / "t.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "create table t as select * from (values (1, 5), (2, -3), (2, 4), (3, null)) v(id, n)"
    )
    con.close()

    def validate(name: str):
        ctx = gx.get_context(mode="ephemeral")
        source = ctx.data_sources.add_sql(name=name, connection_string=f"duckdb:///{db}")
        batch = source.add_table_asset(name="t", table_name="t").add_batch_definition_whole_table(
            "all"
        )
        suite = ctx.suites.add(
            gx.ExpectationSuite(
                name=name,
                expectations=[
                    gxe.ExpectColumnValuesToBeBetween(column="n", min_value=0),
                    gxe.ExpectColumnValuesToBeUnique(column="id"),
                    gxe.ExpectColumnValuesToNotBeNull(column="n"),
                    gxe.ExpectTableRowCountToBeBetween(min_value=1),
                ],
            )
        )
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        return {r.expectation_config.type: r for r in vd.run(result_format="SUMMARY").results}

    assert getattr(SqlAlchemyExecutionEngine.execute_query, "_vigil_duckdb_buffered", False)
    patched = validate("patched")
    # hand-counted from the 4 rows above
    between = patched["expect_column_values_to_be_between"]
    assert between.result["unexpected_count"] == 1 and between.result[
        "partial_unexpected_list"
    ] == [-3]
    assert patched["expect_column_values_to_be_unique"].result["unexpected_count"] == 2
    assert patched["expect_column_values_to_not_be_null"].result["unexpected_count"] == 1
    assert patched["expect_table_row_count_to_be_between"].result["observed_value"] == 4

    monkeypatch.setattr(
        SqlAlchemyExecutionEngine, "execute_query", gx_patch.unpatched_execute_query()
    )
    unpatched = validate("unpatched")
    messages = json.dumps([r.exception_info for r in unpatched.values()], default=str)
    # When this fails, GX has fixed #10738/#11579: drop gx_patch.patch_gx_duckdb.
    assert all(not r.success for r in unpatched.values())
    assert "list index out of range" in messages


# ------------------------------------------------------------------------------------------
# good data


def test_good_data_passes_every_gate_and_writes_offline_reports(home):
    before = data_digest(home["home"])
    for stage in ("raw", "staging", "marts", "features"):
        result = quality.run_gate(stage, run_date=qd.DAY)
        assert result.success, [r.message for r in result.failures]
        assert result.report_path.endswith(f"quality/{stage}_{qd.DAY}.html")
        page = Path(result.report_path).read_text()
        assert "PASSED" in page and "http://" not in page and "https://" not in page
        assert "<script" not in page and "<link" not in page
    result = quality.run_gate("training_set", run_date=qd.DAY, frame=qd.training_set())
    assert result.success, [r.message for r in result.failures]
    assert data_digest(home["home"]) == before
    assert result.tables["training_set"]["rows"] == 18
    # the work copy of the frame is gone
    assert not list((home["home"] / "reports" / "quality" / "_work").glob("*.parquet"))


def test_gate_releases_the_warehouse_for_the_next_writer(home):
    quality.run_gate("staging", run_date=qd.DAY)
    # dbt needs a read-write connection right after the gate (another config: would fail if
    # any of GX's read-only connections were still open in this process)
    con = duckdb.connect(str(home["home"] / "warehouse" / "vigil.duckdb"))
    con.execute("create table after_gate as select 1 as x")
    con.close()


# ------------------------------------------------------------------------------------------
# raw


def test_raw_schema_change_is_a_clear_failure(home):
    frame = home["events"][qd.DAY].rename(columns={"action": "verb"})
    rewrite_day(home["home"], qd.DAY, frame)
    result = gate_fails(home["home"], "raw")
    schema = one(result, "events", "schema")
    assert schema.unexpected_sample == ["missing: action", "unexpected: verb"]
    assert "missing: action" in schema.message
    # expectations on the vanished column say so instead of crashing the gate
    in_set = one(result, "events", "allowed_values", "action")
    assert "could not be evaluated" in in_set.message and "action" in in_set.message
    # the previous day's partition (good data) still passes
    assert quality.run_gate("raw", run_date=qd.PREV_DAY).success


@pytest.mark.parametrize("how", ["zero_rows", "no_partition"])
def test_raw_empty_day_fails(home, how):
    part = home["home"] / "lake" / "events" / f"dt={qd.DAY}" / "events.parquet"
    if how == "zero_rows":
        rewrite_day(home["home"], qd.DAY, home["events"][qd.DAY].iloc[0:0])
        result = gate_fails(home["home"], "raw")
        empty = one(result, "events", "non_empty")
        assert empty.observed_value == 0 and "observed 0" in empty.message
    else:
        part.unlink()
        result = gate_fails(home["home"], "raw")
        missing = one(result, "events", "table_exists")
        assert "the day is empty" in missing.message and str(qd.DAY) in missing.message


def test_raw_volume_spike_vs_previous_run_fails(home):
    first = quality.run_gate("raw", run_date=qd.PREV_DAY)  # first run: no history, passes
    assert first.success
    assert not any(r.check == "volume_vs_previous_run" for r in first.results)
    spike = qd.events(qd.DAY, n=10 * qd.EVENTS_PER_DAY)
    rewrite_day(home["home"], qd.DAY, spike)
    result = gate_fails(home["home"], "raw")
    volume = one(result, "events", "volume_vs_previous_run")
    # 480 rows vs 48 on the previous day, tolerance 3x -> allowed [16, 144]
    assert volume.observed_value == 480
    assert (
        "[16, 144]" in volume.message and f"previous run {qd.PREV_DAY}: 48 rows" in volume.message
    )
    assert failing(result) == {("events", "volume_vs_previous_run", None)}
    # a normal day passes again against the same history
    rewrite_day(home["home"], qd.DAY, qd.events(qd.DAY, n=60))
    assert quality.run_gate("raw", run_date=qd.DAY).success


def test_raw_future_timestamp_and_duplicate_ids_fail(home):
    frame = home["events"][qd.DAY].copy()
    frame.loc[0, "event_ts"] = qd.ts(qd.DAY + dt.timedelta(days=1), 2)  # next day, wrong partition
    frame.loc[1, "event_id"] = frame.loc[2, "event_id"]
    frame.loc[3, "action"] = "teleport"
    rewrite_day(home["home"], qd.DAY, frame)
    result = gate_fails(home["home"], "raw")
    future = one(result, "events", "inside_partition_day", "event_ts")
    assert future.unexpected_count == 1 and future.unexpected_sample == [
        "2026-10-06T02:00:00+00:00"
    ]
    dup = one(result, "events", "key_unique", "event_id")
    assert dup.unexpected_count == 2 and dup.unexpected_sample == [frame.loc[2, "event_id"]]
    bad = one(result, "events", "allowed_values", "action")
    assert bad.unexpected_count == 1 and bad.unexpected_sample == ["teleport"]
    assert failing(result) == {
        ("events", "inside_partition_day", "event_ts"),
        ("events", "key_unique", "event_id"),
        ("events", "allowed_values", "action"),
    }


def test_raw_quarantine_rate_of_30_percent_fails(home):
    h = home["home"]
    # the shape `vigil ingest --day` logs: totals plus per stream; 30 of the day's 100 event
    # lines were garbage, diluted to 3.1% overall by the 900 clean user/label lines
    streams = {
        "events": {"read": 100, "loaded": 70, "quarantined": 30, "duplicates": 0},
        "users": {"read": 800, "loaded": 799, "quarantined": 1, "duplicates": 0},
        "labels": {"read": 100, "loaded": 100, "quarantined": 0, "duplicates": 0},
    }
    line = {"day": str(qd.DAY), "read": 1000, "loaded": 969, "quarantined": 31, "duplicates": 0}
    with open(h / "lake" / "_state" / "ingest_log.jsonl", "a") as f:
        f.write(json.dumps(line | {"streams": streams}) + "\n")
    result = gate_fails(h, "raw")
    rate = one(result, "ingest_run", "quarantine_rate_below_threshold", "quarantine_rate")
    assert rate.unexpected_count == 1
    assert rate.unexpected_sample == [
        {"stream": "events", "rows_read": 100, "quarantined": 30, "quarantine_rate": 0.3}
    ]
    assert "at most 0.05" in rate.message
    assert failing(result) == {("ingest_run", "quarantine_rate_below_threshold", "quarantine_rate")}


def test_quarantine_rate_counted_from_the_lake_without_an_ingest_log(home):
    h = home["home"]
    (h / "lake" / "_state" / "ingest_log.jsonl").unlink()
    qd.write_lake(h, {}, quarantined=21)  # 21 quarantined of the day's files, 48 loaded
    (h / "lake" / "_state" / "ingest_log.jsonl").unlink()
    result = gate_fails(h, "raw")
    rate = one(result, "ingest_run", "quarantine_rate_below_threshold", "quarantine_rate")
    assert rate.unexpected_sample[0]["stream"] == "events"
    assert rate.unexpected_sample[0]["quarantine_rate"] == pytest.approx(21 / 69)
    assert "counted from lake" in result.tables["ingest_run"]["location"]


# ------------------------------------------------------------------------------------------
# staging and marts


def test_staging_duplicate_key_and_stale_day_fail(home):
    stg = home["staging"]["stg_lake__events"]
    dup = pd.concat([stg, stg[stg["event_date"] == qd.DAY].head(2)], ignore_index=True)
    rewrite_table(home["home"], "stg_lake__events", dup)
    result = gate_fails(home["home"], "staging")
    key = one(result, "stg_lake__events", "key_unique", "event_id")
    assert key.unexpected_count == 4  # 2 ids, each twice
    # the day after the data ends: nothing fresh
    later = gate_fails(home["home"], "staging", run_date=qd.DAY + dt.timedelta(days=1))
    assert one(later, "stg_lake__events", "non_empty").observed_value == 0
    assert one(later, "stg_lake__event_partitions", "freshness", "event_date").unexpected_count == 1


def test_marts_negative_counts_duplicate_keys_decreasing_cumulative_fail(home):
    m = home["marts"]
    cc = m["creator_context"].copy()
    cc.loc[[0, 5], "reports_received_7d"] = -2
    ua = pd.concat([m["user_activity"], m["user_activity"].iloc[[3]]], ignore_index=True)
    pb = m["post_behavior"].copy()
    post = pb[pb["post_id"] == 101].sort_values("event_timestamp")
    dropped = post.index[3]  # 4th snapshot of post 101 shows fewer views than the 3rd
    pb.loc[dropped, "views"] = int(post.loc[post.index[2], "views"]) - 5
    qd.write_warehouse(
        home["home"], {"creator_context": cc, "user_activity": ua, "post_behavior": pb}
    )

    result = gate_fails(home["home"], "marts")
    neg = one(result, "creator_context", "non_negative", "reports_received_7d")
    assert neg.unexpected_count == 2 and neg.unexpected_sample == [-2]
    key = one(result, "user_activity", "key_unique", "user_id,event_timestamp")
    assert key.unexpected_count == 2
    mono = one(result, "post_behavior", "cumulative_never_decreases", "views")
    assert mono.unexpected_count == 1
    assert mono.unexpected_sample[0]["post_id"] == 101
    assert mono.unexpected_sample[0]["views"] == mono.unexpected_sample[0]["previous_views"] - 5
    assert failing(result) == {
        ("creator_context", "non_negative", "reports_received_7d"),
        ("user_activity", "key_unique", "user_id,event_timestamp"),
        ("post_behavior", "cumulative_never_decreases", "views"),
    }
    page = Path(result.report_path).read_text()
    assert (
        "FAILED" in page and "reports_received_7d" in page and "cumulative_never_decreases" in page
    )


# ------------------------------------------------------------------------------------------
# features and the training set


def test_features_future_timestamps_and_constant_feature_fail(home, monkeypatch):
    monkeypatch.setattr(suites, "CONSTANT_FEATURE_MIN_ROWS", 10)  # our tables have 16-30 rows
    f = home["home"] / "features"
    pb = pd.read_parquet(f / "post_behavior.parquet")
    pb.loc[4, "created"] = pb.loc[4, "event_timestamp"] + pd.Timedelta(hours=1)
    pb.to_parquet(f / "post_behavior.parquet", index=False)
    ua = pd.read_parquet(f / "user_activity.parquet")
    ua.loc[0, "event_timestamp"] = pd.Timestamp("2030-01-01", tz="UTC")
    ua.loc[0, "created"] = ua.loc[0, "event_timestamp"]
    ua.to_parquet(f / "user_activity.parquet", index=False)
    cc = pd.read_parquet(f / "creator_context.parquet")
    cc["login_countries_30d"] = 1
    cc.to_parquet(f / "creator_context.parquet", index=False)

    result = gate_fails(home["home"], "features")
    ahead = one(
        result, "post_behavior", "no_timestamp_after_event_timestamp", "event_timestamp,created"
    )
    assert ahead.unexpected_count == 1
    future = one(result, "user_activity", "no_future_event_timestamp", "event_timestamp")
    assert future.observed_value.startswith("2030-01-01")
    const = one(result, "creator_context", "feature_not_constant", "login_countries_30d")
    assert const.observed_value == 1
    assert failing(result) == {
        ("post_behavior", "no_timestamp_after_event_timestamp", "event_timestamp,created"),
        ("user_activity", "no_future_event_timestamp", "event_timestamp"),
        ("creator_context", "feature_not_constant", "login_countries_30d"),
    }


def test_training_set_gate_catches_leakage_imbalance_and_dead_features(home, tmp_path):
    good = qd.training_set()
    path = tmp_path / "examples.parquet"
    good.to_parquet(path, index=False)
    assert quality.run_gate("training_set", run_date=qd.DAY, path=path).success

    bad = good.copy()
    bad["is_harmful"] = False  # no positive example: label balance out of bounds
    bad.loc[7, "created_at"] = bad.loc[7, "event_timestamp"] + pd.Timedelta(minutes=30)
    bad["reports_received_30d"] = float("nan")
    result = gate_fails(home["home"], "training_set", frame=bad)
    balance = one(result, "training_set", "label_balance", "is_harmful")
    assert balance.unexpected_sample == [{"examples": 18, "harmful_share": 0.0}]
    leak = one(
        result, "training_set", "no_timestamp_after_event_timestamp", "event_timestamp,created_at"
    )
    assert leak.unexpected_count == 1
    dead = one(result, "training_set", "feature_not_entirely_null", "reports_received_30d")
    assert dead.observed_value == 0
    assert len(result.failures) == 3
    # on 18 rows a constant column is only a warning (CONSTANT_FEATURE_MIN_ROWS)
    assert {(r.check, r.column) for r in result.warnings} == {
        ("feature_not_constant", "reports_received_30d")
    }
    with pytest.raises(UserError, match="frame="):
        quality.run_gate("training_set", run_date=qd.DAY)


# ------------------------------------------------------------------------------------------
# downstream stops; CLI


def downstream_pipeline(home: Path) -> Path:
    """What a DAG does: the gate, then (only if it passed) the next stage writes its output."""
    quality.run_gate("raw", run_date=qd.DAY)
    out = home / "warehouse" / "built_after_gate.parquet"  # stands in for `vigil dbt staging`
    pd.DataFrame({"ok": [1]}).to_parquet(out)
    return out


def test_failed_gate_stops_downstream_and_passing_gate_lets_it_run(home):
    h = home["home"]
    out = h / "warehouse" / "built_after_gate.parquet"
    frame = home["events"][qd.DAY].copy()
    frame.loc[[2, 9], "post_id"] = -4
    rewrite_day(h, qd.DAY, frame)
    before = data_digest(h)
    with pytest.raises(GateFailed, match=r"events\.post_id: positive_id .*2 unexpected"):
        downstream_pipeline(h)
    assert not out.exists()
    assert data_digest(h) == before  # the bad partition is still there to inspect, nothing moved
    rewrite_day(h, qd.DAY, home["events"][qd.DAY])
    assert downstream_pipeline(h).is_file()


def test_cli_validate_exit_codes_and_json(home, capsys):
    from vigil.cli import main

    assert main(["validate", "raw", "--date", str(qd.DAY), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["stage"] == "raw" and payload["success"] is True

    frame = home["events"][qd.DAY].copy()
    frame.loc[0, "user_id"] = -7
    rewrite_day(home["home"], qd.DAY, frame)
    assert main(["validate", "raw", "--date", str(qd.DAY)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  events.user_id: positive_id" in out and "[-7]" in out
    assert main(["validate", "raw", "--date", "05/10/2026"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_vigil_validate_ends_with_the_gate_line_not_binding_warnings(home):
    """The console script's last words are the gate's verdict: before the exit hook in
    vigil/cli.py, `vigil validate marts` printed 39 "nanobind: leaked ..." lines after it."""
    env = {**os.environ, "VIGIL_HOME": str(home["home"])}
    vigil = Path(sys.executable).with_name("vigil")
    done = subprocess.run(
        [str(vigil), "validate", "marts", "--date", str(qd.DAY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "nanobind" not in done.stderr and "leaked" not in done.stderr, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(f"gate marts {qd.DAY}: PASSED"), done.stdout[-2000:]
