"""The simulated moderators (sim.moderators) answer the platform's review requests from the truth."""

import functools
import json

import pandas as pd

from sim import moderators, truth
from vigil.review.files import FileReviewQueue


def write_truth(raw, rows):
    (raw / "_truth").mkdir(parents=True)
    with open(raw / "_truth" / "posts.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def eight_posts(raw):
    rows = [
        {
            "post_id": i,
            "author_id": 1,
            "created_at": f"2026-10-0{d}T10:00:00Z",
            "is_harmful": i % 2 == 0,
            "harm_types": ["spam"] if i % 2 == 0 else [],
        }
        for i, d in zip(range(1, 9), [1, 1, 1, 1, 2, 2, 3, 3])
    ]
    write_truth(raw, rows)


def test_verdicts_follow_the_truth_through_the_error_rate(tmp_path):
    eight_posts(tmp_path)
    t = truth.posts(tmp_path)
    exact = moderators.verdicts(t, [4, 1, 2], accuracy=1.0)
    assert exact["post_id"].tolist() == [4, 1, 2]
    assert exact["is_harmful"].tolist() == [True, False, True]
    assert exact["harm_types"].tolist() == [["spam"], [], ["spam"]]
    # Accuracy 0: every verdict flipped; a benign post called harmful has no harm type.
    flipped = moderators.verdicts(t, [1, 2], accuracy=0.0)
    assert flipped["is_harmful"].tolist() == [True, False]
    assert flipped["harm_types"].tolist() == [[], []]
    # An unknown post gets no verdict.
    assert moderators.verdicts(t, [99]).empty


def test_errors_are_drawn_once_per_post_whatever_the_order(tmp_path):
    eight_posts(tmp_path)
    t = truth.posts(tmp_path)
    a = moderators.verdicts(t, [1, 2, 3, 4, 5], accuracy=0.5).set_index("post_id")
    b = moderators.verdicts(t, [5, 3, 1], accuracy=0.5).set_index("post_id")
    assert (a.loc[[5, 3, 1], "is_harmful"] == b["is_harmful"]).all()


def test_the_file_queue_gets_simulated_verdicts_through_its_answerer(tmp_path):
    raw, root = tmp_path / "raw", tmp_path / "review"
    eight_posts(raw)
    answer = functools.partial(moderators.answer, raw_dir=raw)
    q = FileReviewQueue("score_audit", budget=5, root=root, answer=answer)
    out = q.review([2, 3, 99])
    assert out["post_id"].tolist() == [2, 3] and q.pending == 1  # 99 is not a simulated post
    (file,) = (root / "verdicts").glob("*.jsonl")
    lines = [json.loads(x) for x in file.read_text().splitlines()]
    assert [x["reviewer"] for x in lines] == ["sim-moderators"] * 2


def test_evaluation_sample_keeps_every_harmful_post_and_weights_benign_ones(tmp_path):
    eight_posts(tmp_path)
    sample = truth.evaluation_sample(tmp_path, ["2026-10-01", "2026-10-02"], 0.5, seed=7)
    harmful = sample[sample["is_harmful"]]
    assert harmful["post_id"].tolist() == [2, 4, 6]
    assert (harmful["sampling_weight"] == 1.0).all()
    assert (sample.loc[~sample["is_harmful"], "sampling_weight"] == 2.0).all()
    assert (
        set(sample["post_id"]) <= {1, 2, 3, 4, 5, 6} and (sample["queue"] == "truth_sample").all()
    )
    assert truth.evaluation_sample(tmp_path / "nowhere", ["2026-10-01"], 0.5, 7) is None
    assert isinstance(truth.posts(tmp_path, ["2026-10-03"]), pd.DataFrame)
