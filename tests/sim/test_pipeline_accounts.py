"""`vigil pipeline`'s account-integrity stage (sim.accounts_pipeline): when the accounts world is
simulated again, what waits for what, and what the summary says from hand-made run results."""

import json
import subprocess
import sys

import pandas as pd

from sim import accounts_pipeline as ap

PARAMS = {"users": 1500, "days": 14, "start": "2026-10-01", "seed": 7}


def _fake_simulator(monkeypatch, calls):
    import sim.accounts

    def simulate(raw, world):
        calls.append((world.users, world.days, str(world.start), world.seed))
        (raw / "events").mkdir(parents=True)
        return {"accounts": world.users, "events": 10}

    monkeypatch.setattr(sim.accounts, "simulate_accounts", simulate)


def test_the_world_is_simulated_once_and_replaced_whole_when_its_parameters_change(
    tmp_path, monkeypatch
):
    calls = []
    _fake_simulator(monkeypatch, calls)
    root = tmp_path / ap.ROOT_NAME
    first = ap.ensure_world(root, PARAMS)
    assert first == {"simulated": True, "counts": {"accounts": 1500, "events": 10}}
    assert calls == [(1500, 14, "2026-10-01", 7)]
    (root / "lake").mkdir()  # the platform's outputs on that world
    assert ap.ensure_world(root, PARAMS)["simulated"] is False
    assert len(calls) == 1 and (root / "lake").exists()
    assert ap.ensure_world(root, PARAMS, force=True)["simulated"] is True
    (root / "lake").mkdir()
    ap.ensure_world(root, PARAMS | {"seed": 8})
    assert calls[-1] == (1500, 14, "2026-10-01", 8)
    assert not (root / "lake").exists(), "another world's lake must not survive"


def test_the_world_is_sized_from_the_posts_worlds_start_and_seed():
    class Args:
        start, seed, users = "2026-11-01", 3, 20000

    assert ap.accounts_params(Args) == {
        "users": 1500,
        "days": 14,
        "start": "2026-11-01",
        "seed": 3,
    }
    assert ap.last_day(ap.accounts_params(Args)) == "2026-11-14"


def _prepared(tmp_path, code: str) -> ap.Prepared:
    log = tmp_path / "accounts_world.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out)
    return ap.Prepared(tmp_path / ap.ROOT_NAME, proc, log, 0.0)


def test_no_dag_run_when_the_world_could_not_be_prepared(tmp_path, capsys):
    ran = []
    fake_dags_test = lambda *a, **k: ran.append(a) or {"ok": True, "log": "x"}
    prep = _prepared(tmp_path, "import sys; print('boom'); sys.exit(3)")
    assert ap.run_dag(fake_dags_test, prep, PARAMS, {}) is None
    assert ap.run_dag(fake_dags_test, None, PARAMS, {}) is None
    assert ran == []
    assert "accounts world: FAILED (exit 3" in capsys.readouterr().out


def test_the_dag_runs_on_the_accounts_data_root_once_the_world_is_ready(tmp_path, capsys):
    result = {
        "simulated": False,
        "counts": {"accounts": 1598, "events": 156368},
        "simulate_seconds": 0.0,
        "stream_seconds": 1.5,
        "stream": {"applied": 156356, "read": 0},
    }
    prep = _prepared(tmp_path, f"print('log line'); print({json.dumps(json.dumps(result))})")
    ran = []

    def fake_dags_test(dag_id, day, conf, env):
        ran.append((dag_id, day, conf))
        return {"ok": True, "seconds": 1.0, "log": "x.log"}

    assert ap.run_dag(fake_dags_test, prep, PARAMS, {})["ok"]
    root = str(tmp_path / ap.ROOT_NAME)
    assert ran == [
        ("vigil_accounts", "2026-10-14", {"data_root": root, "raw_dir": root + "/raw_accounts"})
    ]
    out = capsys.readouterr().out
    assert "1,598 accounts, 156,368 events (already simulated, skipped)" in out
    assert "0 new lines" in out


def _world_outputs(root):
    out = root / "accounts"
    out.mkdir(parents=True)
    pd.DataFrame(
        {
            "user_id": [10, 10, 11, 12],
            "rank": [1, 2, 1, 1],
            "score": [2.5, 1.0, 1.9, 0.4],  # matches: 10 and 11 (>= 1.8); 12 is below
        }
    ).to_parquet(out / "evasion_matches.parquet")
    pd.DataFrame({"user_id": [1, 2, 3, 4, 5, 6, 7], "cluster_id": [1, 1, 1, 1, 2, 2, 2]}).assign(
        size=lambda d: d.groupby("cluster_id")["user_id"].transform("size")
    ).to_parquet(out / "clusters.parquet")
    pd.DataFrame(
        {
            "position": [1, 2],
            "user_id": [5, 40],
            "expected_harm": [300.0, 12.5],
            "p_violation": [1.0, 0.5],
            "reach": [300, 25],
            "p_bot": [0.99, 0.5],
            "p_evader": [0.0, 0.0],
            "p_cluster": [0.9, 0.0],
        }
    ).to_parquet(out / "review_queue.parquet")
    (root / "stream").mkdir()
    effects = [
        {"rule": "coordinated_link", "mode": "live", "effect": "label", "entity": "user"}
        | {"entity_id": u}
        for u in (1, 2, 3)
    ] + [
        {"rule": "post_burst", "mode": "shadow", "effect": "throttle", "entity": "user"}
        | {"entity_id": 9},
        {"rule": "post_burst", "mode": "shadow", "effect": "throttle", "entity": "user"}
        | {"entity_id": 9},
    ]
    (root / "stream" / "state.effects.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in effects) + '{"torn'
    )


def test_the_summary_reads_the_runs_results_and_files(tmp_path, capsys):
    root = tmp_path / ap.ROOT_NAME
    _world_outputs(root)
    values = {
        "score_bots": {"flagged_latest_day": 137, "accounts_latest_day": 1598, "threshold": 0.17},
        "train_bots": {
            "behavior": {"validation_pr_auc": 0.914, "validation_precision_at_threshold": 0.99}
            | {"validation_recall_at_threshold": 0.95},
            "profile": {"validation_pr_auc": 0.777},
        },
        "review": {"new_accounts_ranked": 3, "reused": True},
        "validate_features": {"success": True, "checks": 94, "reused": True},
    }
    results = {"states": {"review": "success"}, "values": values}
    ap.print_summary({"ok": True}, results, root, lambda r: print("UNAVAILABLE", r))
    out = capsys.readouterr().out
    assert "137 of 1,598 accounts on the last day" in out
    assert "PR-AUC 0.914 vs profile-only 0.777" in out
    assert "2 of 3 new accounts matched" in out
    assert "coordination clusters              2 (sizes [4, 3])" in out
    assert "#1 user 5: harm 300.0" in out and "#2 user 40: harm 12.5" in out
    assert "rule coordinated_link" in out and "3 label on 3 entities" in out
    assert "rule post_burst" in out and "2 throttle on 1 entities" in out
    assert "gate accounts                 passed (94 checks)" in out
    assert "steps reused (inputs unchanged): review, validate_features" in out
    assert "UNAVAILABLE" not in out


def test_the_summary_says_when_the_run_did_not_finish(tmp_path, capsys):
    results = {"states": {"review": "upstream_failed"}, "values": {}}
    ap.print_summary({"ok": False}, results, tmp_path, lambda r: print("UNAVAILABLE", r))
    assert "UNAVAILABLE vigil_accounts did not finish (review task: upstream_failed)" in (
        capsys.readouterr().out
    )
