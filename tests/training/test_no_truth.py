"""Training with no simulator and no truth: queue labels, and review verdicts dropped as files.

The hand-made set (conftest) stands for a platform's own data: there is no raw/_truth and no
answerer is configured, so the score audit's review requests wait for people. The test plays
the moderators: it reads the request file and drops a verdict file, judging each post by an
independent rule (the generator's abusive words), then trains again.
"""

import json

import pandas as pd
import pytest

from training.config import load
from training.train import train

# The moderators' rule: the abusive words the hand-made set plants in harmful posts.
ABUSIVE = {"idiot", "loser", "hate", "kill", "scam", "clickhere", "trash", "stupid"}


def with_population(ts):
    """The validation posts as the audit population; every third post has no queue label."""
    pop = ts.split("val").copy()
    unlabeled = pop["post_id"] % 3 == 0
    pop["labeled"] = ~unlabeled
    pop["is_harmful"] = pop["is_harmful"].astype(object)
    pop.loc[unlabeled, ["is_harmful", "sampling_weight"]] = float("nan")
    ts.population = pop
    return ts


@pytest.mark.slow
def test_training_without_truth_uses_queue_labels_then_verdict_files(
    vigil_home, monkeypatch, synthetic_set
):
    monkeypatch.delenv("VIGIL_REVIEW_ANSWERER", raising=False)
    assert not (vigil_home / "raw" / "_truth").exists()
    cfg = load(
        dry_run=True,
        target_precision=0.8,
        audit_budget=15,
        audit_prescreen_share=0.5,
        audit_prescreen_rate=1.0,
        threshold_method="wilson",
    )
    ts = with_population(synthetic_set)

    # 1. Nobody has answered yet: thresholds come from the queue labels, and the report says so.
    first = train(cfg, training_set=ts)
    requests = pd.read_parquet(vigil_home / "review" / "requests" / "score_audit.parquet")
    assert len(requests) > 0 and set(requests["queue"]) == {"score_audit"}
    assert set(requests["post_id"]) <= set(ts.population.loc[~ts.population["labeled"], "post_id"])
    meta = json.loads(
        (vigil_home / "reports" / "models" / first["model_id"] / "metrics.json").read_text()
    )
    assert meta["thresholds"]["multitask_labels"] == "queues"
    assert "queue labels" in meta["labels"]["thresholds"]
    train_posts = ts.split("train")["post_id"].nunique()
    assert meta["labels"]["train"] == f"moderator labels: unknown {train_posts} posts"

    # 2. The moderators answer every request: harmful when the text has an abusive word.
    text = ts.population.groupby("post_id")["text"].first()
    verdicts = vigil_home / "review" / "verdicts"
    verdicts.mkdir(parents=True)
    with open(verdicts / "shift-1.jsonl", "w") as f:
        for pid in requests["post_id"]:
            harmful = bool(ABUSIVE & set(text[pid].split()))
            f.write(
                json.dumps(
                    {
                        "post_id": int(pid),
                        "is_harmful": harmful,
                        "harm_types": ["harassment"] if harmful else [],
                        "reviewer": "test",
                        "reviewed_at": "2026-10-07T09:00:00Z",
                    }
                )
                + "\n"
            )
    second = train(cfg, training_set=ts)
    thr = second["thresholds"]
    assert thr["multitask_labels"] == "audit" and thr["baseline_labels"] == "audit"
    assert thr["multitask_audit_pending"] == 0
    assert thr["multitask_audit_reviews"] == len(requests)
    page = (vigil_home / "reports" / "models" / second["model_id"] / "report.html").read_text()
    assert "Labels used" in page
    assert f"validation queue labels + {len(requests)} review requests (0 pending" in page
