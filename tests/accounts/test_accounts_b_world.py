"""Ban evasion, clusters and the review queue on a small simulated accounts world, against its
truth (sim.accounts_eval_b), and the `vigil accounts` commands on it."""

from dataclasses import replace

import pytest

from sim import accounts_eval_b as harness
from sim.accounts import simulate_accounts
from sim.accounts_params import AccountsParams
from vigil.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    raw = tmp_path_factory.mktemp("accounts-b") / "raw"
    simulate_accounts(raw, replace(AccountsParams(), seed=3, users=400, days=6))
    return raw


def test_grades_against_truth(world):
    r = harness.grade(world, cut_day=3, bot_model=False)
    assert r["evaders_active"] >= 10
    assert r["evasion_top1_active"] >= 0.6
    assert r["evasion_false_match_share"] <= 0.1
    assert r["cluster_ari_active"] >= 0.9
    assert r["clustered_non_members"] == 0 and r["lookalikes_in_clusters"] == 0
    assert r["queue_precision"] >= 0.3
    # without the bot model (part A's, trained in the seeds run) bots are missed: a third at least
    assert r["queue_damage_prevented"] >= 0.3 * r["best_possible_damage_prevented"]
    assert r["queue_damage_prevented"] > r["report_queue_damage_prevented"]


def test_commands_queue_show_verdict(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    assert main(["accounts", "queue", "--raw", str(world), "--size", "20"]) == 0
    import pandas as pd

    q = pd.read_parquet(tmp_path / "accounts" / "review_queue.parquet")
    assert len(q) == 20 and list(q["position"]) == list(range(1, 21))
    assert (q["expected_harm"].diff().dropna() <= 0).all()
    top = int(q.iloc[0]["user_id"])
    capsys.readouterr()
    assert main(["accounts", "show", str(top), "--raw", str(world)]) == 0
    shown = capsys.readouterr().out
    assert f"account {top}" in shown and "queue position 1:" in shown
    assert main(["accounts", "verdict", str(top), "--violating", "--reason", "bot"]) == 0
    assert main(["accounts", "queue", "--raw", str(world), "--size", "20"]) == 0
    again = pd.read_parquet(tmp_path / "accounts" / "review_queue.parquet")
    assert top not in set(again["user_id"])
    capsys.readouterr()
    assert main(["accounts", "show", "999999", "--raw", str(world)]) == 2
    err = capsys.readouterr().err
    assert "account 999999 is not in the lake's users" in err
