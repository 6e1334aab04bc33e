"""Bot farms that scale in number with the population (`AccountsParams.accounts_per_operator`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from sim.accounts import simulate_accounts
from sim.accounts_harness import world_params
from sim.accounts_params import AccountsParams


def test_default_is_ten_fixed_farms():
    p = AccountsParams()
    assert p.accounts_per_operator is None
    assert p.n_operators == p.operators == 10
    # a larger default world keeps 10 farms (they grow): the behaviour before the option
    assert replace(p, users=9000).n_operators == 10


@pytest.mark.parametrize(
    ("users", "per", "farms"),
    [
        (9000, 300, 30),  # 9000 / 300 = 30
        (6000, 300, 20),
        (3000, 300, 10),  # the default world's farm size gives the default count
        (1000, 300, 3),  # 3.33 -> 3
        (1100, 200, 6),  # 5.5 -> 6 (round half to even)
        (1300, 200, 6),  # 6.5 -> 6 (round half to even)
        (450, 300, 2),  # 1.5 -> 2
        (100, 300, 1),  # 0.33 -> 0, at least one farm
    ],
)
def test_farm_count_follows_users(users, per, farms):
    p = replace(AccountsParams(), users=users, accounts_per_operator=per, operators=99)
    assert p.n_operators == farms  # `operators` is unused once the scaling is set


def test_non_positive_share_refused():
    with pytest.raises(ValueError, match="accounts_per_operator"):
        _ = replace(AccountsParams(), accounts_per_operator=0).n_operators


def test_resolved_lists_the_field_only_when_set():
    d = AccountsParams().resolved()
    assert "accounts_per_operator" not in d  # the record of a default world is unchanged
    assert set(d) == {f.name for f in fields(AccountsParams)} - {"accounts_per_operator"}
    assert d["operators"] == 10
    s = replace(AccountsParams(), users=9000, accounts_per_operator=300).resolved()
    assert s["accounts_per_operator"] == 300 and s["operators"] == 30


def test_harness_world_params():
    p = world_params(4, 9000, 14, {"accounts_per_operator": 300, "bot_window_h": [8, 12]})
    assert (p.seed, p.users, p.days, p.n_operators) == (4, 9000, 14, 30)
    assert p.bot_window_h == (8, 12)  # JSON lists become the tuples the world expects
    assert world_params(4, 3000, 14) == replace(AccountsParams(), seed=4)
    with pytest.raises(ValueError, match="users"):
        world_params(4, 3000, 14, {"users": 10})


def _digests(raw: Path) -> dict[str, str]:
    return {
        str(f.relative_to(raw)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(raw.rglob("*"))
        if f.is_file()
    }


def _operators(raw: Path) -> list[int]:
    rows = []
    for line in (raw / "_truth" / "accounts_users.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["operator"] is not None:
            rows.append(r["operator"])
    return rows


def test_world_uses_the_scaled_farm_count(tmp_path):
    # 600 accounts at 100 per farm: 6 farms (48 bots plus the campaigns' bots)
    raw = tmp_path / "six"
    simulate_accounts(
        raw, replace(AccountsParams(), users=600, days=6, seed=7, accounts_per_operator=100)
    )
    ops = _operators(raw)
    assert set(ops) == set(range(6))
    world = json.loads((raw / "_truth" / "accounts_world.json").read_text())["params"]
    assert world["operators"] == 6 and world["accounts_per_operator"] == 100


def test_same_count_same_world(tmp_path):
    # 400 accounts at 40 per farm is the default 10 farms: every file is byte for byte the
    # default world's, except the truth record of the params (which names the option)
    base = replace(AccountsParams(), users=400, days=6, seed=5)
    simulate_accounts(tmp_path / "a", base)
    simulate_accounts(tmp_path / "b", replace(base, accounts_per_operator=40))
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a.keys() == b.keys()
    differ = [k for k in a if a[k] != b[k]]
    assert differ == ["_truth/accounts_world.json"]
    assert set(_operators(tmp_path / "a")) == set(range(10))
