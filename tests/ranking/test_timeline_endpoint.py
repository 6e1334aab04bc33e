"""``GET /v1/timeline/{user_id}`` (vigil/serving/timeline.py) on hand-made timelines files,
through FastAPI's test client."""

import os

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from vigil.serving.timeline import Timelines, add_timeline_routes


def _write(root, day: str, rows: list[tuple]) -> None:
    """rows: (user_id, rank, post_id, score)."""
    d = root / f"dt={day}"
    d.mkdir(parents=True, exist_ok=True)
    ts = pd.Timestamp(f"{day}T00:00:00Z")
    pd.DataFrame({
        "user_id": [r[0] for r in rows], "rank": [r[1] for r in rows],
        "post_id": [r[2] for r in rows], "author_id": [r[2] * 10 for r in rows],
        "topic": [r[2] % 3 for r in rows], "followed": [r[1] == 1 for r in rows],
        "score": [r[3] for r in rows], "harm_prob": 0.01, "champion_harm": None,
        "rerank_harm": 0.02, "post_created_at": ts - pd.Timedelta(hours=1), "ranked_at": ts,
        "topics_version": "v0001",
    }).to_parquet(d / "timelines.parquet", index=False)  # fmt: skip


@pytest.fixture
def client(tmp_path):
    app = FastAPI()
    add_timeline_routes(app, Timelines(tmp_path))
    with TestClient(app) as c:
        yield c, tmp_path


def test_no_timelines_is_a_404_naming_the_dag(client):
    c, _ = client
    r = c.get("/v1/timeline/1")
    assert r.status_code == 404 and "vigil_ranking" in r.json()["detail"]


def test_a_users_timeline_in_rank_order_from_the_newest_day(client):
    c, root = client
    # written out of order: the endpoint sorts by rank
    _write(root, "2026-10-06", [(7, 1, 500, 9.0)])
    _write(root, "2026-10-07", [(7, 2, 101, 1.5), (7, 1, 100, 2.5), (8, 1, 102, 0.5)])
    r = c.get("/v1/timeline/7")
    assert r.status_code == 200
    body = r.json()
    assert body["day"] == "2026-10-07" and body["user_id"] == 7
    assert body["ranked_at"].startswith("2026-10-07T00:00:00")
    assert [(p["rank"], p["post_id"], p["author_id"], p["score"]) for p in body["posts"]] == [
        (1, 100, 1000, 2.5), (2, 101, 1010, 1.5)]  # fmt: skip
    assert body["posts"][0]["followed"] is True and body["posts"][1]["followed"] is False
    old = c.get("/v1/timeline/7", params={"day": "2026-10-06"}).json()
    assert [p["post_id"] for p in old["posts"]] == [500]


def test_unknown_user_day_or_malformed_input_get_a_clear_4xx(client):
    c, root = client
    _write(root, "2026-10-07", [(7, 1, 100, 2.5)])
    r = c.get("/v1/timeline/99")
    assert r.status_code == 404 and "user 99" in r.json()["detail"]
    r = c.get("/v1/timeline/7", params={"day": "2026-10-01"})
    assert r.status_code == 404 and "2026-10-07" in r.json()["detail"]
    assert c.get("/v1/timeline/7", params={"day": "yesterday"}).status_code == 422
    assert c.get("/v1/timeline/seven").status_code == 422


def test_a_rewritten_file_is_served_anew(client):
    c, root = client
    _write(root, "2026-10-07", [(7, 1, 100, 2.5)])
    assert c.get("/v1/timeline/7").json()["posts"][0]["post_id"] == 100
    _write(root, "2026-10-07", [(7, 1, 200, 3.5)])
    f = root / "dt=2026-10-07" / "timelines.parquet"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a later modification
    assert c.get("/v1/timeline/7").json()["posts"][0]["post_id"] == 200
