"""The platform's file review queue (vigil.review.files): requests out, verdict files back."""

import json

import pandas as pd
import pytest

from vigil.errors import UserError
from vigil.review.files import FileReviewQueue, load_answerer, read_verdicts


def verdict(post_id, harmful, types=(), at="2026-10-05T10:00:00Z", reviewer="ana"):
    return {
        "post_id": post_id,
        "is_harmful": harmful,
        "harm_types": list(types),
        "reviewer": reviewer,
        "reviewed_at": at,
    }


def drop(root, name, rows):
    (root / "verdicts").mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    (root / "verdicts" / name).write_text("\n".join(lines) + "\n")


def test_requests_are_written_once_and_the_budget_holds(tmp_path):
    q = FileReviewQueue("score_audit", budget=3, root=tmp_path)
    assert q.review([5, 6], reason="audit", inclusion_probability=[1.0, 0.25]).empty
    q.review([6, 7])  # 6 again costs nothing
    assert (q.used, q.pending) == (3, 3)
    req = pd.read_parquet(tmp_path / "requests" / "score_audit.parquet")
    assert req["post_id"].tolist() == [5, 6, 7]
    assert req["inclusion_probability"].tolist()[:2] == [1.0, 0.25]
    assert req["reason"].tolist() == ["audit", "audit", ""]
    with pytest.raises(UserError, match="budget 3"):
        q.review([8])


def test_verdicts_are_validated_and_bad_lines_rejected_with_a_reason(tmp_path):
    drop(
        tmp_path,
        "batch1.jsonl",
        [
            verdict(1, True, ["spam"]),
            verdict(2, False),
            "{not json",
            {"post_id": 3, "is_harmful": True},
            verdict(4, True, ["gossip"]),
            verdict(5, False, ["hate"]),
            verdict(6, True, at="2026-10-05T10:00:00"),
            verdict(True, True),
            verdict(7, "yes"),
            verdict(8, False, reviewer=" "),
        ],
    )
    good, rejected = read_verdicts(tmp_path / "verdicts")
    assert good["post_id"].tolist() == [1, 2]
    assert rejected["line"].tolist() == [3, 4, 5, 6, 7, 8, 9, 10]
    reasons = rejected["reason"].tolist()
    assert reasons[0] == "not valid JSON"
    assert reasons[1].startswith("missing field(s) harm_types, reviewer, reviewed_at")
    assert "unknown harm type(s) gossip" in reasons[2]
    assert "not harmful" in reasons[3]
    assert "time zone" in reasons[4]
    assert "post_id" in reasons[5] and "is_harmful" in reasons[6] and "reviewer" in reasons[7]

    q = FileReviewQueue("score_audit", budget=10, root=tmp_path)
    out = q.review([1, 2, 3])
    assert out["is_harmful"].tolist() == [True, False]
    assert out["is_spam"].tolist() == [True, False] and not out["is_hate"].any()
    assert (q.pending, q.rejected_lines) == (1, 8)
    kept = (tmp_path / "rejected_verdicts.jsonl").read_text().splitlines()
    assert len(kept) == 8 and json.loads(kept[0])["file"] == "batch1.jsonl"


def test_latest_verdict_wins_whatever_the_file_order(tmp_path):
    drop(tmp_path, "a.jsonl", [verdict(1, False, at="2026-10-05T11:00:00+00:00")])
    drop(tmp_path, "b.jsonl", [verdict(1, True, ["hate"], at="2026-10-05T12:30:00+02:00")])
    # b's verdict is 10:30 UTC: a's (11:00 UTC) is the latest.
    good, _ = read_verdicts(tmp_path / "verdicts")
    assert good["is_harmful"].tolist() == [False]
    drop(tmp_path, "c.jsonl", [verdict(1, True, ["hate"], at="2026-10-05T11:00:00Z")])
    # Same instant as a's: the later file name wins.
    good, _ = read_verdicts(tmp_path / "verdicts")
    assert good["is_harmful"].tolist() == [True]


def test_an_answerer_sees_only_new_requests(tmp_path):
    seen = []

    def answer(requests, verdicts_dir):
        seen.append(requests["post_id"].tolist())
        drop(
            tmp_path,
            f"r{len(seen)}.jsonl",
            [verdict(int(p), p % 2 == 0) for p in requests["post_id"]],
        )

    q = FileReviewQueue("score_audit", budget=10, root=tmp_path, answer=answer)
    assert q.review([1, 2])["is_harmful"].tolist() == [False, True]
    assert q.review([2, 3])["post_id"].tolist() == [2, 3]
    assert seen == [[1, 2], [3]] and q.pending == 0


def test_answerer_setting_names_an_importable_function():
    assert load_answerer("json:dumps") is json.dumps
    assert load_answerer("") is None
    with pytest.raises(UserError, match="VIGIL_REVIEW_ANSWERER"):
        load_answerer("no_such_module_here:answer")
