"""`vigil serve`: a real server process scoring a small world (moderation_world.py), on the
embedded SQLite online store and on Redis.

References come from outside the service: the feature values from Feast's own
get_online_features, the scores from the batch scorer's cascade (training.score.route_and_score)
on those values, the decision log read back by DuckDB as the warehouse would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import moderation_world as world
import pytest

TOKEN = "s3cret-test-token"
VIGIL = Path(sys.executable).parent / "vigil"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body=None, token: str | None = TOKEN, raw: bytes | None = None):
    """(status, parsed JSON or text) for one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The world with its champion, on SQLite (the other store copies its model)."""
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("serve-sqlite")
    env = world.build(home, "sqlite")
    yield home, env
    world.teardown(env)
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def online_store(request, trained, tmp_path_factory):
    """A running `vigil serve` (token required) on the world, per online store."""
    saved = dict(os.environ)
    if request.param == "redis":
        home = tmp_path_factory.mktemp("serve-redis")
        env = world.build(home, "redis", model_from=trained[0])
    else:
        home, env = trained
        os.environ.update(env)
    port = _free_port()
    proc = subprocess.Popen(
        [str(VIGIL), "serve", "--port", str(port)],
        env={**os.environ, **env, "VIGIL_SERVE_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vigil serve exited: {proc.stdout.read()[-3000:]}")
        try:
            if call(base, "/healthz", token=None)[0] == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("vigil serve did not answer /healthz within 120 s")
    yield {"store": request.param, "base": base, "home": home, "env": env, "proc": proc}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    if request.param == "redis":
        world.teardown(env)
    os.environ.clear()
    os.environ.update(saved)


def _batch_reference(texts: list[str], vectors: list[dict]):
    """The batch scorer's cascade on Feast's vectors: (student, routed, probability) per post."""
    import pandas as pd

    from training import registry, score
    from training.config import from_dict
    from training.datasets import add_missing_indicators

    bundle = registry.load()
    frame = pd.DataFrame(vectors).astype({"user_id": "float64"})
    columns = [*bundle["behavior_columns"], *bundle["creator_columns"]]
    frame[columns] = frame[columns].astype("float64")
    frame["text"] = texts
    frame = add_missing_indicators(frame, bundle["behavior_columns"], bundle["creator_columns"])
    out = score.route_and_score(frame, bundle, from_dict(bundle["meta"]["config"]))
    return bundle, out


def test_known_posts_score_as_the_batch_cascade_on_feasts_features(online_store):
    from training.calibrate import decide

    base = online_store["base"]
    post_ids = list(range(1, 13))
    got = [call(base, "/v1/score", {"post_id": p}) for p in post_ids]
    assert all(status == 200 for status, _ in got), got
    answers = [body for _, body in got]
    vectors = world.reference_rows(post_ids)
    bundle, ref = _batch_reference([world.text_of(p) for p in post_ids], vectors)
    threshold = bundle["thresholds"]["multitask"]["threshold"]
    assert {a["model_id"] for a in answers} == {bundle["model_id"]}
    for i, (answer, vector) in enumerate(zip(answers, vectors)):
        assert answer["post_id"] == post_ids[i]
        assert answer["author_id"] == world.author_of(post_ids[i])
        assert answer["features"] == {c: vector[c] for c in answer["features"]}
        assert set(answer["features"]) == {*bundle["behavior_columns"], *bundle["creator_columns"]}
        assert answer["student"] == pytest.approx(ref["student"][i], abs=1e-9)
        assert answer["routed_to_heavy"] == bool(ref["routed_to_heavy"][i])
        assert answer["probability"] == pytest.approx(ref["probability"][i], abs=1e-6)
        if abs(ref["probability"][i] - threshold) > 1e-6:  # not on the edge: same decision
            expected = decide([ref["probability"][i]], threshold, 0.5)[0]
            assert answer["decision"] == expected
    # The heavy model ran (this world's student puts most posts above tau).
    assert any(a["routed_to_heavy"] for a in answers)


def test_new_post_reads_its_authors_features_and_no_post_features(online_store):
    base = online_store["base"]
    text = "you idiot loser, hate this scam"
    status, answer = call(base, "/v1/score", {"text": text, "author_id": 103})
    assert status == 200, answer
    author = world.reference_rows([3])[0]  # post 3 is by author 103
    for column, value in answer["features"].items():
        if column.startswith("post_behavior__"):
            assert value is None
        else:
            assert value == author[column]
    vector = {**author, **{c: None for c in author if c.startswith("post_behavior__")}}
    _, ref = _batch_reference([text], [vector])
    assert answer["probability"] == pytest.approx(ref["probability"][0], abs=1e-6)
    assert answer["post_id"] is None


def test_decisions_endpoint_and_log_the_warehouse_reads(online_store):
    import duckdb

    base = online_store["base"]
    status, first = call(base, "/v1/score", {"post_id": 21, "trigger": "first_report"})
    assert status == 200
    status, second = call(base, "/v1/score", {"post_id": 21, "trigger": "views_2^5"})
    status, stored = call(base, "/v1/decisions/21")
    assert status == 200
    assert [h["trigger"] for h in stored["history"]][-2:] == ["first_report", "views_2^5"]
    assert stored["latest"]["decided_at"] == second["decided_at"]
    assert stored["latest"]["probability"] == second["probability"]
    assert call(base, "/v1/decisions/39")[0] == 404
    files = str(Path(online_store["home"]) / "decisions" / "dt=*" / "*.jsonl")
    rows = duckdb.sql(
        f"select post_id, trigger, decision, model_id from read_json_auto('{files}') "
        "where post_id = 21 order by decided_at"
    ).fetchall()
    assert rows[-2:] == [
        (21, "first_report", first["decision"], first["model_id"]),
        (21, "views_2^5", second["decision"], second["model_id"]),
    ]


BAD_REQUESTS = [
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 422, "JSON object"),
    (b'{"post_id": "seven"}', 422, "post_id"),
    (b"{}", 422, "give a post_id"),
    (b'{"text": "hello"}', 422, "author_id"),
    (b'{"post_id": 424242}', 404, "post 424242 not found"),
    (json.dumps({"text": "x" * 10_001, "author_id": 1}).encode(), 413, "over the limit"),
    (b'{"post_id": -1}', 422, "post_id"),
    (b"\xff\xfe", 400, "not JSON"),
]


def test_bad_requests_get_a_clear_4xx_and_the_service_keeps_serving(online_store):
    base = online_store["base"]
    for raw, status, words in BAD_REQUESTS:
        got, body = call(base, "/v1/score", raw=raw)
        assert got == status, (raw[:40], got, body)
        assert words in body["detail"], body
    assert call(base, "/v1/score", {"post_id": 2})[0] == 200
    assert online_store["proc"].poll() is None


def test_token_is_required_except_for_healthz(online_store):
    base = online_store["base"]
    assert call(base, "/v1/score", {"post_id": 2}, token=None)[0] == 401
    assert call(base, "/v1/score", {"post_id": 2}, token="wrong")[0] == 403
    assert call(base, "/v1/decisions/2", token=None)[0] == 401
    status, health = call(base, "/healthz", token=None)
    assert status == 200
    assert health["online_store"] == online_store["store"]
    assert health["posts"] == world.N_POSTS


def test_metrics_count_the_requests(online_store):
    from prometheus_client.parser import text_string_to_metric_families

    base = online_store["base"]

    def score_200() -> float:
        status, text = call(base, "/metrics")
        assert status == 200
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "vigil_serve_requests_total" and sample.labels == {
                    "endpoint": "/v1/score",
                    "status": "200",
                }:
                    return sample.value
        return 0.0

    before = score_200()
    for p in (5, 6, 7):
        assert call(base, "/v1/score", {"post_id": p})[0] == 200
    assert score_200() == before + 3


def test_serving_beyond_loopback_needs_a_token(tmp_path):
    env = {**os.environ, "VIGIL_HOME": str(tmp_path)}
    env.pop("VIGIL_SERVE_TOKEN", None)
    proc = subprocess.run(
        [str(VIGIL), "serve", "--host", "0.0.0.0", "--port", str(_free_port())],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "needs a token: set VIGIL_SERVE_TOKEN" in proc.stderr


# Appeals (issue 22): through the same live service. The truth (the world outside) is written
# here: among the posts the champion removes, those in WRONGFUL are benign.
WRONGFUL = {3, 9, 21}


def _removed_by_the_service(base: str) -> set[int]:
    removed = set()
    for p in range(1, world.N_POSTS + 1):
        status, answer = call(base, "/v1/score", {"post_id": p})
        assert status == 200, answer
        if answer["decision"] == "remove":
            removed.add(p)
    return removed


def _write_truth(home: Path, removed: set[int]) -> Path:
    raw = Path(home) / "raw"
    (raw / "_truth").mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "post_id": p,
            "author_id": world.author_of(p),
            "created_at": "2026-10-01T00:00:00Z",
            "is_harmful": p in removed and p not in WRONGFUL,
            "harm_types": ["harassment"] if p in removed and p not in WRONGFUL else [],
        }
        for p in range(1, world.N_POSTS + 1)
    ]
    (raw / "_truth" / "posts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return raw


def test_appeals_refused_with_a_clear_4xx(online_store):
    base = online_store["base"]
    removed = _removed_by_the_service(base)
    assert WRONGFUL <= removed and 1 in removed and 2 not in removed
    bad = [
        ({"post_id": 424242, "author_id": 1}, 404, "post 424242 not found"),
        ({"post_id": 2, "author_id": world.author_of(2)}, 409, "was not removed"),
        ({"post_id": 1, "author_id": world.author_of(1) + 1}, 403, "only its author"),
        ({"post_id": 1}, 422, "author_id"),
        ({"post_id": 1, "author_id": world.author_of(1), "reason": "x" * 2001}, 413, "shorten"),
    ]
    for body, status, words in bad:
        got, answer = call(base, "/v1/appeals", body)
        assert (got, words in answer["detail"]) == (status, True), (body, got, answer)
    assert call(base, "/v1/appeals", raw=b"{nope")[0] == 400
    first = {"post_id": 1, "author_id": world.author_of(1), "reason": "satire"}
    status, appeal = call(base, "/v1/appeals", first)
    assert status == 201 and appeal["status"] == "pending", appeal
    status, again = call(base, "/v1/appeals", first)
    assert status == 409 and "already has appeal" in again["detail"]
    assert call(base, f"/v1/appeals/{appeal['appeal_id']}")[1]["post_id"] == 1
    assert call(base, "/v1/appeals/99999")[0] == 404
    verdict = f"/v1/appeals/{appeal['appeal_id']}/verdict"
    assert call(base, verdict, {"outcome": "maybe", "reviewer": "r"})[0] == 422
    status, upheld = call(base, verdict, {"outcome": "uphold", "reviewer": "lead"})
    assert (status, upheld["status"]) == (200, "upheld")
    assert call(base, verdict, {"outcome": "reverse", "reviewer": "lead"})[0] == 409
    assert call(base, "/v1/decisions/1")[1]["latest"]["decision"] == "remove"  # upheld: removed
    assert call(base, "/v1/appeals", first, token=None)[0] == 401
    assert online_store["proc"].poll() is None


def test_simulated_appeals_reverse_wrongful_removals_end_to_end(online_store):
    import pandas as pd

    from sim import appeals as sim_appeals
    from sim import moderators
    from sim import truth as sim_truth
    from vigil.moderation import appeals_report
    from vigil.moderation.appeals import AppealStore

    base, home = online_store["base"], Path(online_store["home"])
    removed = _removed_by_the_service(base)
    raw = _write_truth(home, removed)
    # Every wrongful removal appealed, no rightful one: exactly the WRONGFUL posts.
    got = sim_appeals.drive(base, range(1, world.N_POSTS + 1), raw, TOKEN, 0, 1.0, 0.0)
    assert got["appeals"] == got["appeals_wrongful"] == len(WRONGFUL)
    # The moderators' verdicts (truth through their error rate) decide each appeal.
    verdicts = moderators.verdicts(sim_truth.posts(raw), sorted(WRONGFUL)).set_index("post_id")
    expected = {p: "upheld" if verdicts.at[p, "is_harmful"] else "reversed" for p in WRONGFUL}
    assert got["outcomes"] == expected
    requests = pd.read_parquet(home / "review" / "requests" / "appeal.parquet")
    assert WRONGFUL <= set(requests["post_id"])
    for p, outcome in expected.items():
        latest = call(base, f"/v1/decisions/{p}")[1]["latest"]
        if outcome == "reversed":  # restored: a new allow decision, trigger appeal_reversed
            assert (latest["decision"], latest["trigger"]) == ("allow", "appeal_reversed")
        else:
            assert latest["decision"] == "remove"
    # One label line per decided appeal: reversed -> benign, upheld -> harmful (and post 1's
    # upheld appeal above).
    labels = pd.read_json(home / "appeals" / "labels.jsonl", lines=True)
    reversed_ = {p for p, o in expected.items() if o == "reversed"}
    upheld = {p for p, o in expected.items() if o == "upheld"} | {1}
    assert set(labels.loc[~labels["is_harmful"], "post_id"]) == reversed_
    assert set(labels.loc[labels["is_harmful"], "post_id"]) == upheld
    assert len(labels) == len(reversed_) + len(upheld) and set(labels["queue"]) == {"appeal"}
    # The report: per model, removals = the posts the service answered `remove` for.
    rows = appeals_report.report(AppealStore(home / "appeals"), home / "decisions")["rows"]
    overall = [r for r in rows if r["slice"] == "all"]
    assert len(overall) == 1
    row = overall[0]
    assert row["removals"] == len(removed)
    assert row["appeals"] == len(WRONGFUL) + 1  # + the upheld appeal on post 1 above
    assert row["reversed"] == len(reversed_)
    assert row["appeal_rate"] == pytest.approx((len(WRONGFUL) + 1) / len(removed))
    assert row["reversal_rate"] == pytest.approx(len(reversed_) / (len(WRONGFUL) + 1))
    by_age = [r for r in rows if r["slice"] == "author_age_bucket"]
    assert sum(r["appeals"] for r in by_age) == row["appeals"]
    assert sum(r["removals"] for r in by_age) == row["removals"]


def test_candidate_beside_the_champion_by_hash_arms_and_in_shadow(trained):
    """Online evaluation's arms in the service (in process: the app `vigil serve` runs): a copy
    of the champion registered as a candidate (same scores, another id), so the decision's model
    id shows which model decided (student only: the arms do not depend on the heavy model)."""
    import hashlib
    import shutil

    from fastapi.testclient import TestClient

    from vigil.moderation.service import build, create_app

    home, env = trained
    os.environ.update(env)
    champion = json.loads((Path(home) / "models" / "champion.json").read_text())["model_id"]
    shutil.copytree(Path(home) / "models" / champion, Path(home) / "models" / "cand-copy")
    parts = build(heavy="never", candidate_id="cand-copy", arms="hash", salt="s1")
    with TestClient(create_app(parts)) as client:
        for p in range(1, 13):
            answer = client.post("/v1/score", json={"post_id": p, "trigger": "arms"}).json()
            digest = hashlib.sha256(f"s1:{p}".encode()).digest()[:8]
            arm = "candidate" if int.from_bytes(digest, "big") / 2**64 < 0.5 else "control"
            assert answer["arm"] == arm
            assert answer["model_id"] == ("cand-copy" if arm == "candidate" else champion)
    parts.decisions.close()
    parts = build(heavy="never", candidate_id="cand-copy", arms="shadow")
    with TestClient(create_app(parts)) as client:
        answer = client.post("/v1/score", json={"post_id": 17, "trigger": "shadowed"}).json()
        assert (answer["model_id"], answer["arm"]) == (champion, "control")
        latest = client.get("/v1/decisions/17").json()["latest"]
        assert (latest["model_id"], latest["trigger"]) == (champion, "shadowed")
    parts.decisions.close()
    rows = [
        json.loads(line)
        for f in (Path(home) / "decisions").glob("dt=*/*.jsonl")
        for line in f.read_text().splitlines()
    ]
    post17 = [
        (r["model_id"], r["trigger"])
        for r in rows
        if r["post_id"] == 17 and r["trigger"] in ("shadowed", "shadow")
    ]
    assert post17 == [(champion, "shadowed"), ("cand-copy", "shadow")]
