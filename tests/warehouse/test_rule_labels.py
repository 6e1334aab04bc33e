"""The rules' effects and the account verdicts end to end: a hand-made data root (an effects log
and a verdicts file with bad lines) -> `vigil ingest` -> dbt (DuckDB) -> the raw and staging GX
gates -> the active_labels mart at hand-chosen times -> the Feast view user_labels (point in
time and online, real SQLite online store).

Every expected value is worked out by hand from the lines below (the timeline in EXPECTED_AT),
never read off the code. Built once for the module: ingest, one `dbt build all`, Feast apply and
materialize.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil.lake.ingest import ingest
from vigil.lake.store import write_parquet
from vigil.quality import gate as quality
from vigil.quality.results import GateFailed
from vigil.serving import features
from vigil.warehouse import dbt as warehouse

DAY = dt.date(2026, 10, 1)
LINK = "https://camp.example/x"


def effect(seq, rule, version, do, entity, entity_id, label, event_id, at, expires=None, **kw):
    row = {
        "seq": seq,
        "effect_id": f"{rule}:{version}:{do}:{entity}:{entity_id}:{event_id}",
        "rule": rule,
        "rule_version": version,
        "mode": "live",
        "effect": do,
        "entity": entity,
        "entity_id": entity_id,
        "label": label,
        "expires_at": expires,
        "event_id": event_id,
        "event_ts": at,
    }
    return row | kw


T0 = "2026-10-01T00:03:00.000Z"  # the campaign's seventh post
EFFECTS = [
    effect(1, "coordinated_link", 2, "label", "user", "11", "coordinated", "e1", T0,
           "2026-10-04T00:03:00.000Z"),
    effect(2, "coordinated_link", 2, "review", "user", "11", None, "e1", T0),
    effect(3, "coordinated_link", 2, "label", "user", "12", "coordinated", "e1", T0,
           "2026-10-04T00:03:00.000Z"),
    effect(4, "coordinated_link", 2, "label", "link", LINK, "campaign_link", "e1", T0,
           "2026-10-04T00:03:00.000Z"),
    # shadow: logged, never applied
    effect(5, "post_burst", 1, "throttle", "user", "12", "throttled", "e1", T0,
           "2026-10-01T00:33:00.000Z", mode="shadow"),
    effect(6, "slow_down", 1, "throttle", "user", "12", "throttled", "e2",
           "2026-10-01T06:00:00.000Z", "2026-10-01T07:00:00.000Z"),
    effect(7, "farm", 3, "suspend", "user", "13", "suspended", "e3", "2026-10-01T08:00:00.000Z"),
    # the stream engine reading verdict 1 (11 cleared on 10-02): it ends 11's coordinated label
    effect(8, "coordinated_link", 2, "unlabel", "user", "11", "coordinated", "verdicts.jsonl:1",
           "2026-10-02T00:00:00.000Z",
           effect_id="coordinated_link:2:unlabel:coordinated:user:11:verdicts.jsonl:1"),
]  # fmt: skip
BAD_EFFECTS = [  # (line, reason)
    (effect(8, "slow_down", 1, "throttle", "user", "13", "slow", "e4", T0), "invalid value: label"),
    (
        effect(9, "r", 1, "label", "user", "13", "x", "e5", T0, "2026-10-01T00:00:00Z"),
        "invalid value: expires_at",
    ),
    (effect(10, "r", 1, "review", "user", "13", None, "e6", T0) | {"effect_id": "r:1"},
     "invalid value: effect_id"),
    ("{not json", "not JSON"),
]  # fmt: skip
VERDICTS = [
    {"user_id": 11, "is_violating": False, "reason": "", "reviewer": "ann",
     "reviewed_at": "2026-10-02T00:00:00Z"},
    {"user_id": 13, "is_violating": True, "reason": "bot", "reviewer": "bo",
     "reviewed_at": "2026-10-02T12:00:00Z"},
    {"user_id": 12, "is_violating": True, "reason": "campaign", "reviewer": "ann",
     "reviewed_at": "2026-10-03T00:00:00+00:00"},
]  # fmt: skip
BAD_VERDICTS = [
    ({"user_id": "x", "is_violating": True, "reviewed_at": "2026-10-02T00:00:00Z"},
     "invalid id: user_id"),
    ({"user_id": 12, "reviewed_at": "2026-10-02T00:00:00Z"}, "missing field: is_violating"),
]  # fmt: skip

# The user labels active at t, by hand: (entity, id) -> labels. 11 and 12 are labeled coordinated
# at T0 for 3 days; 12 throttled 06:00-07:00 (the shadow throttle never applies); 13 suspended
# from 08:00 with no expiry; 11 cleared on 10-02 00:00, which ends its coordinated label then;
# 13 confirmed a bot on 10-02 12:00; 12 confirmed violating (reason "campaign": not an
# enforcement reason) on 10-03; the 3-day labels end at 10-04 00:03.
EXPECTED_AT = {
    "2026-10-01T00:02:59": {},
    "2026-10-01T00:03:00": {
        ("user", "11"): {"coordinated"},
        ("user", "12"): {"coordinated"},
        ("link", LINK): {"campaign_link"},
    },
    "2026-10-01T06:30:00": {
        ("user", "11"): {"coordinated"},
        ("user", "12"): {"coordinated", "throttled"},
        ("link", LINK): {"campaign_link"},
    },
    "2026-10-01T07:00:00": {
        ("user", "11"): {"coordinated"},
        ("user", "12"): {"coordinated"},
        ("link", LINK): {"campaign_link"},
    },
    "2026-10-02T00:00:00": {
        ("user", "11"): {"cleared"},
        ("user", "12"): {"coordinated"},
        ("user", "13"): {"suspended"},
        ("link", LINK): {"campaign_link"},
    },
    "2026-10-03T06:00:00": {
        ("user", "11"): {"cleared"},
        ("user", "12"): {"coordinated", "confirmed_violation"},
        ("user", "13"): {"suspended", "confirmed_bot"},
        ("link", LINK): {"campaign_link"},
    },
    "2026-10-04T00:03:00": {
        ("user", "11"): {"cleared"},
        ("user", "12"): {"confirmed_violation"},
        ("user", "13"): {"suspended", "confirmed_bot"},
    },
}
# The Feast view at t, by hand from the same timeline: user -> (active_rule_labels,
# is_throttled, is_suspended, is_coordinated, last_verdict); None: no row yet.
VIEW_AT = {
    "2026-10-01T06:30:00": {11: (1, 0, 0, 1, None), 12: (2, 1, 0, 1, None), 13: None},
    "2026-10-01T09:00:00": {11: (1, 0, 0, 1, None), 12: (1, 0, 0, 1, None), 13: (1, 0, 1, 0, None)},
    "2026-10-02T00:00:00": {11: (0, 0, 0, 0, "cleared"), 12: (1, 0, 0, 1, None),
                            13: (1, 0, 1, 0, None)},
    "2026-10-05T00:00:00": {11: (0, 0, 0, 0, "cleared"), 12: (0, 0, 0, 0, "confirmed_violation"),
                            13: (1, 0, 1, 0, "confirmed_bot")},
}  # fmt: skip
COLUMNS = ("active_rule_labels", "is_throttled", "is_suspended", "is_coordinated", "last_verdict")


def _lines(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def write_root(home: Path) -> Path:
    raw = home / "raw"
    events = [
        {"event_id": f"p{u}", "event_ts": f"2026-10-01T00:0{u - 10}:00Z", "user_id": u,
         "action": "post", "post_id": 100 + u, "text": f"vote {LINK}"}
        for u in (11, 12, 13)
    ]  # fmt: skip
    _lines(raw / "events" / "dt=2026-10-01" / "hour=00.jsonl", events)
    users = [
        {
            "user_id": u,
            "created_at": "2026-09-01T00:00:00Z",
            "home_country": "US",
            "handle": f"u{u}",
        }
        for u in (11, 12, 13)
    ]
    _lines(raw / "users.jsonl", users)
    label = {"post_id": 111, "is_harmful": True, "harm_types": ["spam"], "queue": "reported",
             "labeled_at": "2026-10-01T05:00:00Z", "sampling_weight": 1.0}  # fmt: skip
    _lines(raw / "labels.jsonl", [label])
    # effects: the good lines, the bad ones, then line 1 again (a duplicate effect_id)
    _lines(
        home / "stream" / "state.effects.jsonl",
        [*EFFECTS, *(b for b, _ in BAD_EFFECTS), EFFECTS[0]],
    )
    _lines(home / "accounts" / "verdicts.jsonl", [*VERDICTS, *(b for b, _ in BAD_VERDICTS)])
    return raw


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home = tmp_path_factory.mktemp("rule-labels")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(home))
    mp.setenv("VIGIL_FEAST_PROJECT", f"vigil_test_{uuid.uuid4().hex[:10]}")
    mp.setenv("VIGIL_ONLINE_STORE", "sqlite")
    for name in ("VIGIL_MAX_QUARANTINE_RATE", "VIGIL_ROW_COUNT_TOLERANCE"):
        mp.delenv(name, raising=False)
    try:
        raw = write_root(home)
        first = ingest(raw)
        lake = {p: p.read_bytes() for p in (home / "lake").glob("*/*.parquet")}
        again = ingest(raw)
        summary = warehouse.build("all")
        features.apply()
        materialized = features.materialize()
        yield {
            "home": home,
            "first": first,
            "again": again,
            "lake_before": lake,
            "summary": summary,
            "materialized": materialized,
        }
        features.store().teardown()
    finally:
        mp.undo()


def test_ingest_counts_quarantines_with_reasons_and_reruns_change_nothing(built):
    home, first, again = built["home"], built["first"], built["again"]
    # effects: 8 good + 4 bad + 1 duplicate line; verdicts: 3 good + 2 bad
    assert first["streams"]["rule_effects"] == {
        "read": 13, "loaded": 8, "quarantined": 4, "duplicates": 1,
    }  # fmt: skip
    assert first["streams"]["account_verdicts"] == {
        "read": 5, "loaded": 3, "quarantined": 2, "duplicates": 0,
    }  # fmt: skip
    assert again["streams"]["rule_effects"] == {
        "read": 13, "loaded": 0, "quarantined": 4, "duplicates": 9,
    }  # fmt: skip
    assert again["streams"]["account_verdicts"] == {
        "read": 5, "loaded": 0, "quarantined": 2, "duplicates": 3,
    }  # fmt: skip
    for path, data in built["lake_before"].items():
        assert path.read_bytes() == data, path
    q = pq.read_table(home / "lake" / "quarantine" / "quarantine.parquet").to_pylist()
    got = {(r["stream"], r["line_number"], r["reason"]) for r in q}
    expected = {("rule_effects", 9 + i, reason) for i, (_, reason) in enumerate(BAD_EFFECTS)}
    expected |= {("account_verdicts", 4 + i, reason) for i, (_, reason) in enumerate(BAD_VERDICTS)}
    assert got == expected
    verdicts = pq.read_table(home / "lake/account_verdicts/account_verdicts.parquet").to_pylist()
    assert [(v["verdict_id"], v["user_id"], v["label"]) for v in verdicts] == [
        ("verdicts.jsonl:1", 11, "cleared"),
        ("verdicts.jsonl:2", 13, "confirmed_bot"),
        ("verdicts.jsonl:3", 12, "confirmed_violation"),
    ]


def test_absent_logs_give_empty_lake_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    _lines(raw / "users.jsonl", [])
    result = ingest(raw)
    assert "rule_effects" not in result["streams"] and "account_verdicts" not in result["streams"]
    for name in ("rule_effects/rule_effects.parquet", "account_verdicts/account_verdicts.parquet"):
        assert pq.read_metadata(tmp_path / "lake" / name).num_rows == 0


def _rows(home: Path, query: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse" / "vigil.duckdb"), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def test_staging_and_the_mart_hold_the_valid_lines(built):
    home, summary = built["home"], built["summary"]
    assert not summary["errors"] and not summary["failures"]
    effects = _rows(
        home, "select effect_id, is_shadow from main.stg_lake__rule_effects order by effect_seq"
    )
    assert effects == [(e["effect_id"], e["mode"] == "shadow") for e in EFFECTS]
    # the mart: 5 applied rule labels (not the review effect, not the shadow throttle, not the
    # unlabel line) + 3 verdicts
    labels = _rows(
        home,
        "select label_source, entity_id, label, rule_name, rule_version, ended_by "
        "from main.active_labels order by label_source, applied_at, entity_id, label",
    )
    assert labels == [
        ("rule", "11", "coordinated", "coordinated_link", 2, "cleared"),
        ("rule", "12", "coordinated", "coordinated_link", 2, "expiry"),
        ("rule", LINK, "campaign_link", "coordinated_link", 2, "expiry"),
        ("rule", "12", "throttled", "slow_down", 1, "expiry"),
        ("rule", "13", "suspended", "farm", 3, None),
        ("verdict", "11", "cleared", "account_review", None, None),
        ("verdict", "13", "confirmed_bot", "account_review", None, None),
        ("verdict", "12", "confirmed_violation", "account_review", None, None),
    ]


def test_the_streams_unlabel_lines_are_the_labels_the_mart_ends_by_a_clearance(built):
    """The effects log and the warehouse agree: each rule label active_labels ends by a cleared
    verdict is one unlabel line of the stream, at the verdict's time (here: 11's coordinated)."""
    ended = _rows(
        built["home"],
        "select entity_id, label, expires_at from main.active_labels where ended_by = 'cleared'",
    )
    unlabels = _rows(
        built["home"],
        "select entity_id, label, fired_at from main.stg_lake__rule_effects "
        "where effect = 'unlabel'",
    )
    assert ended == unlabels == [("11", "coordinated", dt.datetime(2026, 10, 2, tzinfo=dt.UTC))]


@pytest.mark.parametrize("at", list(EXPECTED_AT))
def test_active_labels_at_hand_chosen_times(built, at):
    t = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)
    rows = _rows(
        built["home"],
        "select entity_type, entity_id, label from main.active_labels "
        "where applied_at <= ? and (expires_at is null or ? < expires_at)",
        (t, t),
    )
    got: dict = {}
    for entity, entity_id, label in rows:
        got.setdefault((entity, entity_id), set()).add(label)
    assert got == EXPECTED_AT[at]


def test_feast_view_point_in_time_and_online(built):
    import pandas as pd

    assert built["materialized"]["views"]["user_labels"]["entities"] == 3
    fs = features.store()
    refs = [f"user_labels:{c}" for c in COLUMNS]
    times = list(VIEW_AT)
    entity_df = pd.DataFrame(
        {
            "user_id": [u for _ in times for u in (11, 12, 13)],
            "event_timestamp": pd.to_datetime([t for t in times for _ in (11, 12, 13)], utc=True),
        }
    )
    out = fs.get_historical_features(entity_df=entity_df, features=refs).to_df()
    for _, row in out.iterrows():
        at = row["event_timestamp"].tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S")
        expected = VIEW_AT[at][int(row["user_id"])]
        got = tuple(None if pd.isna(row[c]) else row[c] for c in COLUMNS)
        if expected is None:
            assert got == (None,) * len(COLUMNS), (at, row["user_id"])
        else:
            assert got[:4] == expected[:4] and got[4] == expected[4], (at, row["user_id"], got)
    online = fs.get_online_features(
        features=refs, entity_rows=[{"user_id": u} for u in (11, 12, 13, 99)]
    ).to_dict()
    latest = VIEW_AT["2026-10-05T00:00:00"]
    for i, user in enumerate((11, 12, 13)):
        assert tuple(online[c][i] for c in COLUMNS) == latest[user]
    assert all(online[c][3] is None for c in COLUMNS)  # user 99: no labels ever


# ---- the gates -------------------------------------------------------------------------------


@contextlib.contextmanager
def lake_file(home: Path, name: str, table: pa.Table):
    path = home / "lake" / name
    good = path.read_bytes()
    try:
        write_parquet(table, path)
        yield
    finally:
        path.write_bytes(good)


def changed(table: pa.Table, row: int, **values) -> pa.Table:
    rows = table.to_pylist()
    rows[row] = rows[row] | values
    return pa.Table.from_pylist(rows, schema=table.schema)


def test_good_logs_pass_the_raw_and_staging_gates(built):
    for stage, tables in (
        ("raw", ("rule_effects", "account_verdicts")),
        ("staging", ("stg_lake__rule_effects", "stg_lake__account_verdicts")),
    ):
        result = quality.run_gate(stage, run_date=DAY)
        assert result.success, [r.message for r in result.failures]
        assert [result.tables[t]["rows"] for t in tables] == [len(EFFECTS), len(VERDICTS)]


EFFECTS_FILE = "rule_effects/rule_effects.parquet"
VERDICTS_FILE = "account_verdicts/account_verdicts.parquet"
TOMORROW = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


# (file, row, new values) -> the failures they cause, named by hand: (table, check, column)
CORRUPTIONS = [
    (EFFECTS_FILE, 5, {"label": "slow"}),  # a throttle that does not set "throttled"
    (EFFECTS_FILE, 0, {"expires_at": dt.datetime(2026, 9, 1, tzinfo=dt.UTC)}),  # before applied
    (EFFECTS_FILE, 3, {"mode": "dry_run"}),
    (EFFECTS_FILE, 6, {"event_ts": TOMORROW}),
    (EFFECTS_FILE, 1, {"effect_id": EFFECTS[0]["effect_id"]}),  # a duplicate key, wrong shape
    (VERDICTS_FILE, 0, {"label": "confirmed_bot"}),  # an ok verdict is "cleared"
    (VERDICTS_FILE, 1, {"label": "banned"}),
    (VERDICTS_FILE, 2, {"reviewed_at": TOMORROW}),
]
RAW_FAILURES = {
    ("rule_effects", "label_per_effect", "label"),
    ("rule_effects", "expires_after_applied", "expires_at"),
    ("rule_effects", "allowed_values", "mode"),
    ("rule_effects", "not_in_future", "event_ts"),
    ("rule_effects", "key_unique", "effect_id"),
    ("rule_effects", "effect_id_shape", "effect_id"),
    ("account_verdicts", "label_matches_verdict", "label"),
    ("account_verdicts", "allowed_values", "label"),
    ("account_verdicts", "not_in_future", "reviewed_at"),
}


def test_bad_lake_rows_fail_the_raw_gate_naming_table_column_and_check(built):
    home = built["home"]
    tables = {name: pq.read_table(home / "lake" / name) for name in (EFFECTS_FILE, VERDICTS_FILE)}
    for name, row, values in CORRUPTIONS:
        tables[name] = changed(tables[name], row, **values)
    with (
        lake_file(home, EFFECTS_FILE, tables[EFFECTS_FILE]),
        lake_file(home, VERDICTS_FILE, tables[VERDICTS_FILE]),
        pytest.raises(GateFailed) as info,
    ):
        quality.run_gate("raw", run_date=DAY)
    failures = info.value.result.failures
    assert {(r.table, r.check, r.column) for r in failures} == RAW_FAILURES
    for r in failures:
        assert r.message.startswith(f"{r.table}.{r.column}: {r.check} "), r.message
    assert quality.run_gate("raw", run_date=DAY).success  # the good bytes are back


def test_a_bad_row_reaches_the_staging_gate_under_its_staging_name(built):
    """The staging views read the lake files: an effect from tomorrow fails the staging gate on
    stg_lake__rule_effects.fired_at, a verdict from tomorrow on its reviewed_at."""
    home = built["home"]
    effects = pq.read_table(home / "lake" / EFFECTS_FILE)
    verdicts = pq.read_table(home / "lake" / VERDICTS_FILE)
    with (
        lake_file(home, EFFECTS_FILE, changed(effects, 6, event_ts=TOMORROW)),
        lake_file(home, VERDICTS_FILE, changed(verdicts, 0, reviewed_at=TOMORROW)),
        pytest.raises(GateFailed) as info,
    ):
        quality.run_gate("staging", run_date=DAY)
    assert {(r.table, r.check, r.column) for r in info.value.result.failures} == {
        ("stg_lake__rule_effects", "not_in_future", "fired_at"),
        ("stg_lake__account_verdicts", "not_in_future", "reviewed_at"),
    }


def test_labels_stage_rebuilds_the_view_and_the_review_queue_reads_it(built):
    import pandas as pd

    from vigil.accounts.review_cli import rule_suspended

    summary = warehouse.build("labels")
    assert set(summary["nodes"]) == {
        "stg_lake__rule_effects", "stg_lake__account_verdicts", "active_labels", "user_labels",
    }  # fmt: skip
    # change points by hand: user 11 at T0 and at its clear (10-02 00:00, which also ends its
    # coordinated label); 12 at T0, 06:00, 07:00, its verdict (10-03) and 10-04 00:03; 13 at
    # 08:00 and its verdict (10-02 12:00)
    assert summary["exported"] == {"user_labels": 9}
    assert rule_suspended(pd.Timestamp("2026-10-01T07:59:59Z")) == set()
    assert rule_suspended(pd.Timestamp("2026-10-01T08:00:00Z")) == {13}
    assert rule_suspended(pd.Timestamp("2026-12-01T00:00:00Z")) == {13}
