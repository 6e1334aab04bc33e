"""Registry: save, champion pointer, promote/rollback, and refusing a feature-service mismatch."""

import json

import pytest

from training import registry
from vigil.cli import main as vigil
from vigil.errors import UserError


def _save(model_id, service="moderation_v1"):
    registry.save(model_id, {"weights": [1, 2, 3]}, {"feature_service": service, "metrics": {}})


def test_load_refuses_other_feature_service(vigil_home):
    _save("m-old", service="moderation_v0")
    with pytest.raises(UserError, match="moderation_v0.*moderation_v1"):
        registry.load("m-old")
    _save("m-new")
    loaded = registry.load("m-new")
    assert loaded["weights"] == [1, 2, 3]
    assert loaded["meta"]["git_revision"]  # a revision or "unknown"


def test_promote_rollback_and_cli(vigil_home, capsys):
    _save("m1")
    _save("m2")
    assert registry.champion() is None
    with pytest.raises(UserError, match="no champion"):
        registry.load()
    assert vigil(["models", "promote", "m1"]) == 0
    assert vigil(["models", "promote", "m2"]) == 0
    assert registry.champion() == "m2"
    assert vigil(["models", "rollback"]) == 0
    assert registry.champion() == "m1"
    assert vigil(["models", "rollback"]) == 2  # nothing earlier: one clear sentence, exit 2
    # every champion change made by hand is on record, in order, beside the retrain decisions
    records = [json.loads(line) for line in (vigil_home / "models" / "decisions.jsonl").open()]
    assert [(r["decision"], r["from"], r["champion"]) for r in records] == [
        ("manual_promote", None, "m1"),
        ("manual_promote", "m1", "m2"),
        ("rollback", "m2", "m1"),
    ]
    assert vigil(["models", "promote", "nope"]) == 2
    capsys.readouterr()
    assert vigil(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "* m1" in out and "  m2" in out


def test_score_day_without_champion_is_noop(vigil_home):
    from training.score import score_day

    assert score_day("2026-10-05")["skipped"] == "no champion model"
