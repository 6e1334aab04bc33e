"""The ranking report end to end on a tiny discovery world: the pipeline's steps, then report."""

import json
import re

import pytest


@pytest.mark.slow
def test_report_on_a_tiny_world(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    from sim.discovery import simulate_discovery
    from vigil.lake.ingest import ingest
    from vigil.ranking import pipeline

    simulate_discovery(tmp_path / "raw", users=300, days=4, seed=3)
    ingest(tmp_path / "raw")
    day = "2026-10-04"
    pipeline.fit_topics(day)
    pipeline.train_ranker(day)
    pipeline.rank_timelines(day)
    out = pipeline.report(day)
    rep = json.loads((tmp_path / "home/ranking/report/dt=2026-10-04/report.json").read_text())
    assert out["sessions"] == rep["replay"]["sessions"] > 0
    nd = rep["replay"]["ndcg"]
    assert set(nd) == {"pointwise", "pointwise_no_topics", "lambdarank", "lambdarank_no_topics",
                       "chron", "popularity", "random"}  # fmt: skip
    assert all(0 < v <= 1 for v in nd.values())
    t = rep["timelines"]
    assert t["users"] == 300 and t["slots"] == 3000 - 10 * (300 - t["users"])
    assert 1 <= t["distinct_topics_mean"] <= 10
    html = (tmp_path / "home/ranking/report/dt=2026-10-04/report.html").read_text()
    images = re.findall(r"<img src='([^']+)' alt='([^']+)'>", html)
    assert {i for i, _ in images} == {"ndcg_by_model.png", "topics.png", "camps.png", "harm.png"}
    assert all(len(alt) > 30 for _, alt in images)
    for img, _ in images:
        assert (tmp_path / "home/ranking/report/dt=2026-10-04" / img).stat().st_size > 1000
    # re-running writes the same figures
    pipeline.report(day)
    again = json.loads((tmp_path / "home/ranking/report/dt=2026-10-04/report.json").read_text())
    assert again == rep
