"""End-to-end training: on the hand-made set (fast) and through the real pipeline (dry run)."""

import math

import pytest

from training import registry
from training.config import load
from training.train import train


@pytest.mark.slow
def test_models_on_hand_made_set(vigil_home, synthetic_set):
    cfg = load(epochs=4, target_precision=0.8, promote="always")
    summary = train(cfg, training_set=synthetic_set)
    assert registry.champion() == summary["model_id"]
    objects = registry.load()
    assert objects["meta"]["feature_service"] == "moderation_v1"
    # The baseline's top positive features are the abusive words the generator plants.
    top_words = [f["feature"] for f in objects["baseline_top_features"][:10] if f["kind"] == "word"]
    assert set(top_words) & {
        "idiot",
        "loser",
        "hate",
        "kill",
        "scam",
        "clickhere",
        "trash",
        "stupid",
    }
    # The cascade keeps its recall promise on validation, where tau was chosen.
    assert objects["validation_cascade"]["recall_kept"] >= 0.99
    assert 0 <= summary["replay"]["multitask"]["harmful_views_prevented_share"] <= 1
    assert (vigil_home / "reports" / "models" / summary["model_id"] / "report.html").is_file()
    assert (vigil_home / "reports" / "models" / summary["model_id"] / "pr_curves.png").is_file()


@pytest.mark.slow
def test_dry_run_through_simulation_lake_dbt_and_feast(vigil_home):
    """simulate -> ingest -> dbt -> Feast -> train(dry_run=True) -> score_day, all real."""
    from sim.world import simulate
    from vigil import config
    from vigil.lake.ingest import ingest
    from vigil.serving import features
    from vigil.warehouse import dbt as warehouse

    raw = config.paths().raw
    simulate(raw, users=1500, days=6, seed=7, progress=False)
    ingest(raw)
    warehouse.build("all")
    features.apply()
    features.materialize()
    summary = train(dry_run=True)
    assert summary["examples"] > 0
    assert registry.champion() is None  # dry runs are never promoted
    meta = registry.meta(summary["model_id"])
    assert meta["feature_service"] == "moderation_v1" and meta["dry_run"] is True
    assert set(meta["windows"]) == {"train", "val", "test"}
    assert meta["windows"]["train"][1] <= meta["windows"]["val"][0] <= meta["windows"]["test"][0]
    # Thresholds came from the score audit: validation-day reviews within the budget.
    thr = meta["metrics"]["thresholds"]
    assert thr["multitask_labels"] == "audit" and thr["baseline_labels"] == "audit"
    assert 0 < thr["multitask_audit_reviews"] <= 2 * meta["config"]["audit_budget"]
    registry.promote(summary["model_id"])
    from training.score import score_day

    scored = score_day("2026-10-04")
    assert scored["posts"] > 0 and scored["events"] >= scored["posts"]
    assert scored["remove"] + scored["review"] + scored["allow"] == scored["events"]
    assert not math.isnan(float(scored["routed_to_heavy"]))
