"""The accounts world (`vigil simulate-accounts`) checked from its raw files against its truth."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from sim.accounts import simulate_accounts
from sim.accounts_params import AccountsParams
from vigil import cli

PARAMS = replace(AccountsParams(), users=400, days=6, seed=5)


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # the corrupt lines the world writes on purpose
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    raw = tmp_path_factory.mktemp("accounts") / "raw"
    simulate_accounts(raw, PARAMS)
    events = [e for f in sorted(raw.glob("events/*/*.jsonl")) for e in _jsonl(f)]
    truth = {r["user_id"]: r for r in _jsonl(raw / "_truth" / "accounts_users.jsonl")}
    return raw, events, truth


def _digest(raw: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in raw.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(raw)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(world, tmp_path):
    raw, _, _ = world
    again = tmp_path / "again"
    simulate_accounts(again, PARAMS)
    assert _digest(again) == _digest(raw)
    other = tmp_path / "other"
    simulate_accounts(other, replace(PARAMS, seed=6))
    assert _digest(other) != _digest(raw)


def test_populations_exist(world):
    _, _, truth = world
    kinds = {r["kind"] for r in truth.values()}
    assert {"human", "heavy_human", "news", "abusive_human", "bot", "mimic_bot"} <= kinds
    assert any(r["evader_of"] for r in truth.values())
    assert any(r["campaign"] is not None for r in truth.values())


def test_suspended_accounts_fall_silent(world):
    raw, events, truth = world
    enf = _jsonl(raw / "enforcement.jsonl")
    assert enf and all(e["action"] == "suspend" for e in enf if "action" in e)
    suspended = {e["user_id"]: _ts(e["enforced_at"]) for e in enf if "user_id" in e}
    late = [
        e
        for e in events
        if e["user_id"] in suspended and _ts(e["event_ts"]) >= suspended[e["user_id"]]
    ]
    assert late == []
    for uid, at in suspended.items():  # the truth agrees with the log
        assert _ts(truth[uid]["suspended_at"]) == at


def test_evaders_register_after_the_suspension(world):
    _, _, truth = world
    evaders = [r for r in truth.values() if r["evader_of"]]
    for r in evaders:
        parent = truth[r["evader_of"]]
        assert _ts(r["created_at"]) > _ts(parent["suspended_at"])


def test_evaders_share_fingerprints_only_when_the_truth_says_so(world):
    raw, _, truth = world
    fps: dict[int, set] = {}
    for d in _jsonl(raw / "devices.jsonl"):
        if (
            isinstance(d.get("user_id"), int)
            and d.get("device_fp")
            and d.get("seen_at") != "yesterday"
        ):
            fps.setdefault(d["user_id"], set()).update({d["device_fp"], d["network_fp"]})
    for r in truth.values():
        if r["evader_of"] and not r["shares_fp"] and truth[r["evader_of"]]["kind"] != "bot":
            assert not fps.get(r["user_id"], set()) & fps.get(r["evader_of"], set())


def test_campaign_posts_follow_their_waves_within_minutes(world):
    raw, events, _ = world
    for c in _jsonl(raw / "_truth" / "accounts_campaigns.jsonl"):
        waves = [_ts(w) for w in c["waves"]]
        posts = [e for e in events if e["action"] == "post" and c["link"] in (e["text"] or "")]
        assert posts
        for e in posts:
            assert e["user_id"] in c["members"]
            delay = min(
                (_ts(e["event_ts"]) - w).total_seconds() for w in waves if w <= _ts(e["event_ts"])
            )
            assert 0 <= delay < 3600


def test_every_login_has_a_fingerprint(world):
    raw, events, _ = world
    logins = sum(1 for e in events if e["action"] == "login")
    lines = (raw / "devices.jsonl").read_text().splitlines()
    valid = [d for d in _jsonl(raw / "devices.jsonl") if "x" not in d.get("seen_id", "")[:1]]
    assert len(lines) >= logins
    assert len(valid) == logins


def test_cli_refuses_a_world_too_small(tmp_path, capsys):
    rc = cli.main(["simulate-accounts", "--raw", str(tmp_path / "r"), "--days", "2"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--days 2 is too short" in err and "use 4 or more" in err
    assert not (tmp_path / "r").exists()
