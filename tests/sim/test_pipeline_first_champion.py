"""`vigil pipeline` scores the last day with the first champion when vigil_daily ran without one."""

import training.score
from sim import pipeline


def _daily(score_value):
    return lambda dag_id: {"values": {"score": score_value}} if dag_id == "vigil_daily" else {}


def test_a_day_skipped_for_want_of_a_champion_is_scored_after_training(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(pipeline, "run_results", _daily({"skipped": "no champion model"}))
    monkeypatch.setattr(
        training.score,
        "score_day",
        lambda day: calls.append(day) or {"model_id": "m1", "posts": 1234},
    )
    pipeline._score_with_a_new_champion("2026-10-30")
    assert calls == ["2026-10-30"]
    assert "scored now with m1: 1,234 posts" in capsys.readouterr().out


def test_a_day_already_scored_or_without_posts_is_left_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(training.score, "score_day", lambda day: calls.append(day) or {})
    for value in (
        {"model_id": "m0", "posts": 900},  # the champion of an earlier run scored it
        {"skipped": "no posts on 2026-10-30", "posts": 0},
        None,  # the task did not run
    ):
        monkeypatch.setattr(pipeline, "run_results", _daily(value))
        pipeline._score_with_a_new_champion("2026-10-30")
    monkeypatch.setattr(pipeline, "run_results", lambda dag_id: 1 / 0)  # no Airflow record
    pipeline._score_with_a_new_champion("2026-10-30")
    assert calls == []
