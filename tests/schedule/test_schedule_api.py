"""The scheduled-posts API on both stores: the happy path, bad input, other users, limits,
idempotency, and moderation at creation. Expected values are written out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from support_schedule import WordModerator

from vigil.schedule.api import Parts, create_app
from vigil.schedule.moderation import DecisionLog


def _at(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.fixture
def api(store, tmp_path):
    """(client, {user: headers}, decisions dir); limits: 3 pending, 2 a day."""
    decisions = tmp_path / "decisions"
    parts = Parts(store, WordModerator(), DecisionLog(decisions), limits=(3, 2))
    headers = {uid: {"Authorization": f"Bearer {store.add_token(uid)}"} for uid in (1, 2)}
    with TestClient(create_app(parts)) as client:
        yield client, headers, decisions


def test_create_list_get_edit_cancel(api, store):
    client, h, _ = api
    when = datetime.now(UTC) + timedelta(hours=2)
    r = client.post(
        "/v1/posts", json={"text": "hello", "scheduled_at": when.isoformat()}, headers=h[1]
    )
    assert r.status_code == 201, r.text
    post = r.json()
    assert post["status"] == "pending" and post["text"] == "hello"
    assert post["scheduled_at"] == when.isoformat(timespec="milliseconds")
    assert post["score_at_create"] == 0.02 and post["model_id"] == "word-test-model"
    assert client.get(f"/v1/posts/{post['id']}", headers=h[1]).json() == post
    assert [p["id"] for p in client.get("/v1/posts", headers=h[1]).json()["posts"]] == [post["id"]]
    later = when + timedelta(hours=1)
    r = client.patch(
        f"/v1/posts/{post['id']}", json={"text": "hello again", "scheduled_at": later.isoformat()},
        headers=h[1],
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["text"], r.json()["scheduled_at"]) == (
        "hello again", later.isoformat(timespec="milliseconds")
    )  # fmt: skip
    r = client.delete(f"/v1/posts/{post['id']}", headers=h[1])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = client.patch(f"/v1/posts/{post['id']}", json={"text": "x"}, headers=h[1])
    assert r.status_code == 409 and "cancelled" in r.json()["error"]
    assert client.get("/openapi.json").json()["paths"]["/v1/posts"]["post"]


BAD = [
    ({"text": "a", "scheduled_at": "past"}, 422, "scheduled_at"),
    ({"text": "a", "scheduled_at": _at(hours=-1)}, 422, "in the past"),
    ({"text": "a", "scheduled_at": _at(minutes=4)}, 422, "5 minutes"),
    ({"text": "a", "scheduled_at": _at(days=366)}, 422, "a year"),
    ({"text": "a", "scheduled_at": "2031-01-01T10:00:00"}, 422, "time zone"),
    ({"text": "", "scheduled_at": _at(hours=1)}, 422, "empty"),
    ({"text": "   ", "scheduled_at": _at(hours=1)}, 422, "empty"),
    ({"text": "x" * 5001, "scheduled_at": _at(hours=1)}, 422, "5001 characters"),
    ({"scheduled_at": _at(hours=1)}, 422, "text is missing"),
    ({"text": "a"}, 422, "scheduled_at is missing"),
    ({"text": "a", "scheduled_at": _at(hours=1), "user_id": 2}, 422, "unknown field"),
    ({"text": 5, "scheduled_at": _at(hours=1)}, 422, "text"),
]


def test_bad_input_is_refused_with_one_message_and_changes_nothing(api, store):
    client, h, _ = api
    for body, status, words in BAD:
        r = client.post("/v1/posts", json=body, headers=h[1])
        assert r.status_code == status, (body, r.text)
        assert list(r.json()) == ["error"] and words in r.json()["error"], (body, r.json())
    r = client.post(
        "/v1/posts", content=b"{not json", headers=h[1] | {"content-type": "application/json"}
    )
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
    ok = {"text": "a", "scheduled_at": _at(hours=1)}
    assert client.post("/v1/posts", json=ok).status_code == 401
    r = client.post("/v1/posts", json=ok, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "unknown token" in r.json()["error"]
    assert client.get("/v1/posts?status=weird", headers=h[1]).status_code == 422
    assert store.all_posts() == []


def test_another_users_post_is_not_found_and_unchanged(api, store):
    client, h, _ = api
    post = client.post(
        "/v1/posts", json={"text": "mine", "scheduled_at": _at(hours=1)}, headers=h[1]
    ).json()
    before = store.all_posts()
    assert client.get(f"/v1/posts/{post['id']}", headers=h[2]).status_code == 404
    assert (
        client.patch(f"/v1/posts/{post['id']}", json={"text": "hijack"}, headers=h[2]).status_code
        == 404
    )
    r = client.delete(f"/v1/posts/{post['id']}", headers=h[2])
    assert r.status_code == 404 and "no scheduled post" in r.json()["error"]
    assert client.get("/v1/posts", headers=h[2]).json() == {"posts": []}
    assert store.all_posts() == before


def test_idempotency_key_returns_the_same_post_once(api, store):
    client, h, _ = api
    body = {"text": "once", "scheduled_at": _at(hours=3)}
    key = h[1] | {"Idempotency-Key": "k-1"}
    first = client.post("/v1/posts", json=body, headers=key)
    again = client.post("/v1/posts", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/v1/posts", json={**body, "text": "different"}, headers=key)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["error"]
    # the same key from another user is that user's own key
    assert (
        client.post("/v1/posts", json=body, headers=h[2] | {"Idempotency-Key": "k-1"}).status_code
        == 201
    )
    assert len(store.all_posts()) == 2


def test_limits_on_pending_posts_and_posts_per_day(api, store):
    client, h, _ = api
    day = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    same_day = [day, day + timedelta(hours=1), day + timedelta(hours=2)]
    for at in same_day[:2]:
        assert (
            client.post(
                "/v1/posts", json={"text": "d", "scheduled_at": at.isoformat()}, headers=h[1]
            ).status_code
            == 201
        )
    r = client.post(
        "/v1/posts", json={"text": "d", "scheduled_at": same_day[2].isoformat()}, headers=h[1]
    )
    assert (
        r.status_code == 429 and "limit 2" in r.json()["error"] and "UTC day" in r.json()["error"]
    )
    nxt = (day + timedelta(days=1)).isoformat()
    assert (
        client.post("/v1/posts", json={"text": "d", "scheduled_at": nxt}, headers=h[1]).status_code
        == 201
    )
    r = client.post(
        "/v1/posts",
        json={"text": "d", "scheduled_at": (day + timedelta(days=2)).isoformat()},
        headers=h[1],
    )
    assert r.status_code == 429 and "3 pending posts (limit 3)" in r.json()["error"]
    assert len(store.all_posts()) == 3
    # cancelling one frees a place
    first = client.get("/v1/posts", headers=h[1]).json()["posts"][0]["id"]
    client.delete(f"/v1/posts/{first}", headers=h[1])
    r = client.post(
        "/v1/posts", json={"text": "d", "scheduled_at": same_day[2].isoformat()}, headers=h[1]
    )
    assert r.status_code == 201, r.text


def test_moderation_at_creation_holds_and_reviews_and_logs(api, store):
    client, h, decisions = api
    held = client.post(
        "/v1/posts", json={"text": "a BADWORD post", "scheduled_at": _at(hours=1)}, headers=h[1]
    ).json()
    assert (
        held["status"] == "held"
        and "0.970" in held["reason"]
        and "removal threshold" in held["reason"]
    )
    assert client.get(f"/v1/posts/{held['id']}", headers=h[1]).json()["reason"] == held["reason"]
    review = client.post(
        "/v1/posts", json={"text": "MAYBE so", "scheduled_at": _at(hours=1)}, headers=h[1]
    ).json()
    assert review["status"] == "review" and review["review_deadline"] is not None
    # editing the held post's text checks it again: it becomes pending
    edited = client.patch(
        f"/v1/posts/{held['id']}", json={"text": "a fine post"}, headers=h[1]
    ).json()
    assert (edited["status"], edited["reason"]) == ("pending", None)
    lines = [line for p in decisions.glob("dt=*/*.jsonl") for line in p.read_text().splitlines()]
    assert len(lines) == 3
    assert sorted(json.loads(x)["trigger"] for x in lines) == [
        "schedule_create", "schedule_create", "schedule_edit",
    ]  # fmt: skip
