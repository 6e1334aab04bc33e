"""Feast feature store: point-in-time retrieval, materialization, online serving (real stores).

Every test builds its own hand-made feature marts (docs/contracts.md section 3) under a fresh data
root and its own Feast project, so SQLite files and Redis keys never collide. Expected values come
from the hand-made events: literal numbers worked out by hand, cross-checked by a brute-force count.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil import config
from vigil.serving import features
from vigil.serving.services import MODERATION_V1


def at(day: int, hh: int, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 10, day, hh, mm, ss, us, tzinfo=UTC)


# ---- hand-made events -------------------------------------------------------------------------
# post 1 (author 7) is created 2026-10-01 09:10; it gets views at these moments:
POST1_VIEWS = [
    at(1, 9, 15),
    at(1, 9, 40),
    at(1, 10, 5),
    at(1, 10, 59, 59, 999_999),
    at(1, 11, 0),  # exactly on the hour: counts for the 12:00 snapshot, not the 11:00 one
    at(1, 12, 30),
]
POST1_REPORTS = [at(1, 10, 20), at(1, 12, 1)]
# Hourly snapshots as the dbt mart would write them: counts of events strictly before T.
POST1_SNAPSHOT_HOURS = [at(1, 10), at(1, 11), at(1, 12), at(1, 13)]
# post 3 (author 8): one snapshot only.
POST3_SNAPSHOT = {"event_timestamp": at(2, 6), "views": 40, "reports": 3}

# The feature views hold moderation_v1's features plus the two it leaves out by its written rule
# (vigil/serving/services.py: post_behavior.author_id, a key; user_activity.uam_1d).
POST_BEHAVIOR_COLUMNS = ["author_id", *MODERATION_V1["post_behavior"]]
CREATOR_CONTEXT_COLUMNS = list(MODERATION_V1["creator_context"])
USER_ACTIVITY_COLUMNS = [*MODERATION_V1["user_activity"], "uam_1d"]
FLOAT_COLUMNS = {
    "post_age_hours",
    "negative_reactions_per_view",
    "reports_per_view",
    "shares_per_view",
    "account_age_days",
    "report_rate_bayes",
    "dislike_rate_bayes",
    "block_rate_bayes",
}


def _count_before(moments: list[datetime], t: datetime) -> int:
    return sum(m < t for m in moments)


def post_behavior_rows() -> list[dict]:
    rows = []
    created = at(1, 9, 10)
    for t in POST1_SNAPSHOT_HOURS:
        views = _count_before(POST1_VIEWS, t)
        reports = _count_before(POST1_REPORTS, t)
        rows.append(
            {
                "post_id": 1,
                "event_timestamp": t,
                "author_id": 7,
                "post_age_hours": (t - created).total_seconds() / 3600,
                "views": views,
                "reports": reports,
                "reports_per_view": (reports + 0.01) / (views + 1),
            }
        )
    rows.append(
        dict(post_id=3, author_id=8, post_age_hours=5.0, reports_per_view=0.09, **POST3_SNAPSHOT)
    )
    return rows


def user_rows() -> tuple[list[dict], list[dict]]:
    activity = [
        {
            "user_id": 7,
            "event_timestamp": at(2, 0),
            "uam_30d": 12,
            "active_days_30d": 1,
            "uam_1d": 12,
        },
        {
            "user_id": 7,
            "event_timestamp": at(3, 0),
            "uam_30d": 30,
            "active_days_30d": 2,
            "uam_1d": 18,
        },
        {
            "user_id": 8,
            "event_timestamp": at(2, 0),
            "uam_30d": 4,
            "active_days_30d": 1,
            "uam_1d": 4,
        },
    ]
    creator = [
        {
            "user_id": 7,
            "event_timestamp": at(2, 0),
            "reports_received_7d": 1,
            "reports_received_30d": 1,
            "views_received_30d": 4,
            "posts_authored_total": 1,
            "account_age_days": 10.0,
            "login_countries_30d": 1,
            "report_rate_bayes": 0.2,
        },
        {
            "user_id": 7,
            "event_timestamp": at(3, 0),
            "reports_received_7d": 2,
            "reports_received_30d": 2,
            "views_received_30d": 6,
            "posts_authored_total": 1,
            "account_age_days": 11.0,
            "login_countries_30d": 2,
            "report_rate_bayes": 0.3,
        },
        {
            "user_id": 8,
            "event_timestamp": at(2, 0),
            "views_received_30d": 40,
            "posts_authored_total": 1,
            "account_age_days": 100.0,
            "login_countries_30d": 1,
            "report_rate_bayes": 0.05,
        },
    ]
    return activity, creator


def write_mart(name: str, key: str, columns: list[str], rows: list[dict]) -> None:
    """A feature mart as dbt exports it: int64 keys/counts, float64 rates, timestamp[us, UTC]."""
    fields = [pa.field(key, pa.int64()), pa.field("event_timestamp", pa.timestamp("us", tz="UTC"))]
    fields += [pa.field(c, pa.float64() if c in FLOAT_COLUMNS else pa.int64()) for c in columns]
    schema = pa.schema(fields)
    data = {f.name: [r.get(f.name, 0) for r in rows] for f in fields}
    path = config.paths().features / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data, schema=schema), path)


def write_marts(extra_post_rows: list[dict] | None = None) -> None:
    activity, creator = user_rows()
    write_mart(
        "post_behavior",
        "post_id",
        POST_BEHAVIOR_COLUMNS,
        post_behavior_rows() + (extra_post_rows or []),
    )
    write_mart("user_activity", "user_id", USER_ACTIVITY_COLUMNS, activity)
    write_mart("creator_context", "user_id", CREATOR_CONTEXT_COLUMNS, creator)


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request, monkeypatch):
    if request.param == "redis" and not _redis_up():
        pytest.skip("no Redis server at 127.0.0.1:6379")
    monkeypatch.setenv("VIGIL_ONLINE_STORE", request.param)
    monkeypatch.setenv("VIGIL_REDIS_URL", "127.0.0.1:6379")
    return request.param


@pytest.fixture
def feast_home(tmp_path, monkeypatch):
    """A fresh data root and Feast project with the hand-made marts, applied."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_FEAST_PROJECT", f"vigil_test_{uuid.uuid4().hex[:10]}")
    write_marts()
    features.apply()
    yield tmp_path / "home"
    # Drop this project's online rows (Redis keys) and its registry.
    features.store().teardown()


def entity_df(rows: list[tuple[int, int, datetime]]):
    import pandas as pd

    return pd.DataFrame(
        {
            "example_id": range(len(rows)),
            "post_id": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "event_timestamp": pd.to_datetime([r[2] for r in rows], utc=True),
        }
    )


# ---- definitions -----------------------------------------------------------------------------


def test_registry_matches_contract_and_moderation_v1(feast_home):
    fs = features.store()
    views = {fv.name: fv for fv in fs.list_feature_views()}
    # the moderation views, and the Community Notes views (vigil.notes.features, issue 20)
    assert set(views) == {
        "user_activity",
        "creator_context",
        "post_behavior",
        "note_status",
        "post_best_note",
        "contributor_reputation",
        "user_graph_embedding",  # vigil.graph (issue 26)
        "account_features",  # vigil.accounts (issue 21)
        "user_labels",  # active labels per user: rules' effects, verdicts (issue 21)
        "post_topics",  # vigil.ranking's feature marts (issue 23)
        "user_topic_interest",
        "user_author_affinity",
        "topic_velocity",
    }
    assert [f.name for f in views["post_behavior"].features] == POST_BEHAVIOR_COLUMNS
    assert [f.name for f in views["creator_context"].features] == CREATOR_CONTEXT_COLUMNS
    assert [f.name for f in views["user_activity"].features] == USER_ACTIVITY_COLUMNS
    assert views["post_behavior"].ttl == timedelta(days=7)
    assert views["user_activity"].ttl == timedelta(days=30)
    for fv in views.values():
        assert {"owner", "description"} <= set(fv.tags)
        assert os.path.isabs(fv.batch_source.path)
        assert fv.batch_source.path.startswith(str(feast_home / "features"))
    service = fs.get_feature_service("moderation_v1")
    refs = [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features]
    # moderation_v1 reads every feature of the three views (the contract columns above) but
    # post_behavior.author_id and user_activity.uam_1d: 12 + 19 + 2 = 33.
    expected = [
        f"{view}:{name}"
        for view, columns in (
            ("post_behavior", POST_BEHAVIOR_COLUMNS),
            ("creator_context", CREATOR_CONTEXT_COLUMNS),
            ("user_activity", USER_ACTIVITY_COLUMNS),
        )
        for name in columns
        if f"{view}:{name}" not in ("post_behavior:author_id", "user_activity:uam_1d")
    ]
    assert refs == expected and len(refs) == 33
    assert list(features.MODERATION_V1_FEATURES) == expected
    assert features.feature_columns() == [r.replace(":", "__") for r in expected]
    config_text = (feast_home / "feast" / "feature_store.yaml").read_text()
    assert "type: duckdb" in config_text and "entity_key_serialization_version: 3" in config_text


def test_apply_from_any_directory_via_cli(feast_home, tmp_path, monkeypatch, capsys):
    from vigil.cli import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["features", "apply"]) == 0
    out = json.loads(capsys.readouterr().out)
    # 3 moderation + 3 notes + user_graph_embedding + account_features + user_labels
    # + 4 ranking (post_topics, user_topic_interest, user_author_affinity, topic_velocity)
    assert out["feature_views"] == 13 and out["feature_services"] == 1
    assert list(elsewhere.iterdir()) == []  # nothing written to the cwd


# ---- point-in-time correctness ---------------------------------------------------------------

# (post_id, author, t) -> (views, reports) expected, worked out by hand from POST1_VIEWS/REPORTS:
# the snapshot at the top of t's hour counts events strictly before it; None = no feature row.
PIT_CASES = [
    (1, 7, at(1, 9, 30), None),  # before the first snapshot (10:00)
    (1, 7, at(1, 10), (2, 0)),  # exactly at a snapshot: that snapshot (09:15, 09:40)
    (1, 7, at(1, 10, 59, 59), (2, 0)),  # later events in the hour are not visible yet
    (1, 7, at(1, 11), (4, 1)),  # 10:05, 10:59:59.999999 and the 10:20 report now count
    (1, 7, at(1, 11, 0, 0, 1), (4, 1)),  # the view at exactly 11:00 only counts from 12:00
    (1, 7, at(1, 12, 45), (5, 1)),  # the 12:01 report and the 12:30 view are later
    (1, 7, at(7, 12), (6, 2)),  # the 13:00 snapshot, 5 days 23 h old: inside the 7-day ttl
    (1, 7, at(8, 13, 0, 0, 1), None),  # 13:00 snapshot is 7 days + 1 us old: expired
    (2, 9, at(1, 12), None),  # a post with no snapshots at all
    (3, 8, at(2, 6, 30), (40, 3)),
]


def test_point_in_time_join_takes_latest_snapshot_at_or_before_t(feast_home):
    rows = [(post, author, t) for post, author, t, _ in PIT_CASES]
    out = features.historical_features(entity_df(rows)).set_index("example_id").sort_index()
    assert len(out) == len(PIT_CASES)  # no entity row is dropped
    for i, (post, _, t, expected) in enumerate(PIT_CASES):
        views, reports = out.loc[i, "post_behavior__views"], out.loc[i, "post_behavior__reports"]
        if expected is None:
            assert math.isnan(views) and math.isnan(reports), (post, t)
            continue
        assert (views, reports) == expected, (post, t)
        if post == 1:  # brute force: events before the top of t's hour
            hour = t.replace(minute=0, second=0, microsecond=0)
            assert views == _count_before(POST1_VIEWS, hour)
            assert reports == _count_before(POST1_REPORTS, hour)
    # The author's daily rows: 2026-10-01 12:00 sees no user row yet (first is 10-02 00:00).
    assert math.isnan(out.loc[5, "user_activity__uam_30d"])
    assert out.loc[6, "user_activity__uam_30d"] == 30.0  # 10-07 12:00 -> the 10-03 row
    assert out.loc[6, "creator_context__reports_received_7d"] == 2
    assert out.loc[9, "creator_context__account_age_days"] == 100.0
    assert set(features.feature_columns()) <= set(out.columns)


# ---- materialization and online reads --------------------------------------------------------


def latest_offline(name: str, key: str) -> dict[int, dict]:
    table = pq.read_table(config.paths().features / f"{name}.parquet").to_pylist()
    latest: dict[int, dict] = {}
    for row in table:
        if row[key] not in latest or row["event_timestamp"] > latest[row[key]]["event_timestamp"]:
            latest[row[key]] = row
    return latest


def test_online_values_equal_latest_offline_values(online_store, feast_home):
    assert features.store().config.online_store.type == online_store
    result = features.materialize()
    # The whole history (2026-10, more than one ttl ago) is loaded, not just the last ttl.
    assert result["views"]["post_behavior"]["rows"] == 5
    assert result["views"]["user_activity"]["rows"] == 3
    for name, key, columns in (
        ("post_behavior", "post_id", POST_BEHAVIOR_COLUMNS),
        ("creator_context", "user_id", CREATOR_CONTEXT_COLUMNS),
        ("user_activity", "user_id", USER_ACTIVITY_COLUMNS),
    ):
        for entity, row in latest_offline(name, key).items():
            online = features.online_features(**{key: entity})
            for column in columns:
                assert online[f"{name}__{column}"] == pytest.approx(row[column]), (name, entity)
    # Hand-checked: post 1's latest snapshot (13:00) has 6 views, 2 reports; its author is user 7.
    vector = features.online_features(post_id=1)
    assert vector["post_behavior__views"] == 6 and vector["post_behavior__reports"] == 2
    assert vector["user_id"] == 7 and vector["user_activity__uam_30d"] == 30.0
    missing = features.online_features(post_id=2)
    assert missing["post_behavior__views"] is None and "user_id" not in missing


def test_materialize_is_idempotent_and_incremental(feast_home):
    first = features.materialize()
    assert {v: first["views"][v]["rows"] for v in first["views"]} == {
        "user_activity": 3,
        "creator_context": 3,
        "post_behavior": 5,
    }
    again = features.materialize()
    assert again["rows"] == 0 and all(v["skipped"] for v in again["views"].values())
    assert features.online_features(post_id=1)["post_behavior__views"] == 6

    # Two new snapshots arrive after the last one (10-02 06:00): only they are materialized.
    new = [
        {"post_id": 1, "event_timestamp": at(2, 7), "author_id": 7, "views": 8, "reports": 2},
        {"post_id": 4, "event_timestamp": at(2, 8), "author_id": 8, "views": 1, "reports": 0},
    ]
    write_marts(extra_post_rows=new)
    third = features.materialize()
    assert third["views"]["post_behavior"]["rows"] == 2
    assert third["views"]["post_behavior"]["incremental"] is True
    assert third["views"]["post_behavior"]["start"] > at(2, 6).isoformat()
    assert (
        third["views"]["user_activity"]["skipped"] and third["views"]["creator_context"]["skipped"]
    )
    assert features.online_features(post_id=1)["post_behavior__views"] == 8
    assert features.online_features(post_id=4)["post_behavior__views"] == 1
    assert features.materialize()["rows"] == 0


def test_push_updates_online_value(online_store, feast_home):
    import pandas as pd

    features.materialize()
    assert features.online_features(user_id=8)["user_activity__uam_30d"] == 4.0
    pushed = pd.DataFrame(
        {
            "user_id": [8],
            "event_timestamp": pd.to_datetime([at(4, 0)], utc=True),
            "uam_30d": [55],
            "active_days_30d": [3],
            "uam_1d": [21],
        }
    )
    assert features.push("user_activity", pushed) == 1
    vector = features.online_features(user_id=8)
    assert vector["user_activity__uam_30d"] == 55 and vector["user_activity__active_days_30d"] == 3
    # The offline mart is untouched by an online-only push.
    assert latest_offline("user_activity", "user_id")[8]["uam_30d"] == 4.0


def test_cli_get_prints_online_vector(feast_home, capsys):
    from vigil.cli import main

    features.materialize()
    capsys.readouterr()
    assert main(["features", "get", "--user-id", "7"]) == 0
    vector = json.loads(capsys.readouterr().out)
    assert vector["user_id"] == 7 and vector["creator_context__reports_received_7d"] == 2
    assert main(["features", "get"]) == 2  # neither id: a one-sentence error


# ---- HTTP feature server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_http_feature_server_serves_online_values(feast_home):
    features.materialize()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "features", "serve", "--port", str(port)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode()[-2000:]) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        body = {
            "features": ["post_behavior:views", "post_behavior:reports", "user_activity:uam_30d"],
            "entities": {"post_id": [1, 2], "user_id": [7, 7]},
            "full_feature_names": True,
        }
        reply = _post(f"{base}/get-online-features", body)
        names = reply["metadata"]["feature_names"]
        values = {n: r["values"] for n, r in zip(names, reply["results"])}
        assert values["post_behavior__views"] == [6, None]
        assert values["post_behavior__reports"] == [2, None]
        assert values["user_activity__uam_30d"] == [30.0, 30.0]
        by_service = _post(
            f"{base}/get-online-features",
            {
                "feature_service": "moderation_v1",
                "entities": {"post_id": [1], "user_id": [7]},
                "full_feature_names": True,
            },
        )
        assert "creator_context__report_rate_bayes" in by_service["metadata"]["feature_names"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- the feature server's doors (issue 19, items 6 and 9) -----------------------------------

TOKEN = "t0ken-for-tests"
WRITE_PATHS = ("/push", "/write-to-online-store", "/materialize", "/materialize-incremental")


def _start_server(port: int, token: str | None = None, *extra: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("VIGIL_FEATURES_TOKEN", None)
    if token:
        env["VIGIL_FEATURES_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "features", "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()[-2000:]) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _status(url: str, body: dict, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _push_body(uam: int) -> dict:
    return {
        "push_source_name": "user_activity_push",
        "df": {
            "user_id": [8],
            "event_timestamp": [at(4, 0).isoformat()],
            "uam_30d": [uam],
            "active_days_30d": [3],
            "uam_1d": [21],
        },
        "to": "online",
    }


def _served_uam(base: str) -> float:
    reply = _post(
        f"{base}/get-online-features",
        {"features": ["user_activity:uam_30d"], "entities": {"user_id": [8]}},
    )
    return reply["results"][1]["values"][0]


@pytest.mark.slow
def test_server_without_token_serves_reads_and_exposes_no_write_endpoint(feast_home):
    features.materialize()
    port = _free_port()
    proc = _start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _served_uam(base) == 4.0
        for path in WRITE_PATHS:
            assert _status(base + path, _push_body(55)) == 404, path
        # The POST that changed a served value before the fix changes nothing now.
        assert _served_uam(base) == 4.0
    finally:
        _stop_server(proc)


@pytest.mark.slow
def test_server_write_endpoints_need_the_bearer_token(feast_home):
    features.materialize()
    port = _free_port()
    proc = _start_server(port, TOKEN)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _status(f"{base}/push", _push_body(55)) == 401
        assert _status(f"{base}/push", _push_body(55), token="wrong") == 403
        assert _served_uam(base) == 4.0
        assert _status(f"{base}/push", _push_body(55), token=TOKEN) == 200
        assert _served_uam(base) == 55.0
    finally:
        _stop_server(proc)


def _cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("VIGIL_FEATURES_TOKEN", None)
    if token:
        env["VIGIL_FEATURES_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", "features", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_beyond_loopback_without_token_is_refused(feast_home):
    done = _cli("serve", "--host", "0.0.0.0", "--port", str(_free_port()))
    assert done.returncode == 2
    assert "VIGIL_FEATURES_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_serve_bad_or_busy_port_is_one_clear_error(feast_home):
    done = _cli("serve", "--port", "99999")
    assert done.returncode == 2, done.stderr
    assert "99999" in done.stderr and "Traceback" not in done.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _cli("serve", "--port", str(port))
    assert done.returncode == 2, done.stderr
    assert "in use" in done.stderr and "Traceback" not in done.stderr


def test_get_unknown_post_or_user_is_not_found(feast_home, capsys):
    from vigil.cli import main

    features.materialize()
    capsys.readouterr()
    assert main(["features", "get", "--post-id", "99999999"]) == 2
    assert "99999999" in capsys.readouterr().err
    assert main(["features", "get", "--user-id", "99999999"]) == 2
    assert "not found" in capsys.readouterr().err
    # A known post still prints its vector.
    assert main(["features", "get", "--post-id", "1"]) == 0
