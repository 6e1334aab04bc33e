"""A tiny discovery world end to end: simulate, ingest, topics, rankers, trends, graded by truth."""

import pytest

from sim.discovery_harness import run_harness


@pytest.mark.slow
def test_tiny_world(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    r = run_harness(seed=3, users=300, days=4, eval_users=40, scale_users=0, work=tmp_path)
    rk, tr = r["ranking"], r["trends"]
    assert rk["users"] >= 30
    # the learned ranker beats both baselines against the true utility
    assert rk["model"] > rk["chron"] and rk["model"] > rk["popularity"]
    assert rk["model"] > rk["chron_followed"]  # the "Latest" timeline: followed, newest first
    assert rk["harmful_slot_share"] <= rk["harmful_slot_share_before_rerank"]
    assert rk["users_top10_over_80pct_one_camp"] == 0
    assert tr["events_detected"] >= 1 and tr["precision"] >= 0.5
    assert (tmp_path / "home" / "models" / "topics" / "v0001" / "meta.json").exists()
