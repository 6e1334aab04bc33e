"""A re-run on unchanged inputs reuses the model trained on them (training.fingerprint)."""

import subprocess

import pytest

from tests.training.conftest import make_training_set
from training import fingerprint, registry
from training.config import load
from training.train import train


@pytest.fixture
def pinned(monkeypatch):
    """The code counts as committed at commit 'c0ffee' (the test tree itself may be edited)."""
    monkeypatch.setattr(fingerprint, "code_revision", lambda: "c0ffee")


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_code_revision_only_for_a_committed_training_tree(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    for rel in ("vigil/a.py", "training/b.py", "docs/c.md"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.setattr(registry, "REPO_ROOT", repo)
    monkeypatch.setattr(fingerprint, "REPO_ROOT", repo)
    assert fingerprint.code_revision() == head
    (repo / "docs/c.md").write_text("edited docs do not change what trains\n")
    assert fingerprint.code_revision() == head
    (repo / "training/b.py").write_text("x = 2\n")
    assert fingerprint.code_revision() is None
    (repo / "training/b.py").write_text("x = 1\n")
    (repo / "vigil/new.py").write_text("untracked\n")
    assert fingerprint.code_revision() is None
    (repo / "vigil/new.py").unlink()
    assert fingerprint.code_revision() == head
    monkeypatch.setattr(registry, "REPO_ROOT", tmp_path / "not-a-repo")
    assert fingerprint.code_revision() is None


def test_fingerprint_changes_with_any_input(pinned):
    ts = make_training_set(120, days=6, seed=1)
    cfg = load(epochs=1)
    base = fingerprint.training_fingerprint(ts, cfg)
    assert base == fingerprint.training_fingerprint(make_training_set(120, days=6, seed=1), cfg)
    # Column order is not content.
    shuffled = make_training_set(120, days=6, seed=1)
    shuffled.examples = shuffled.examples[list(reversed(shuffled.examples.columns))]
    assert fingerprint.training_fingerprint(shuffled, cfg) == base

    one_cell = make_training_set(120, days=6, seed=1)
    one_cell.examples.loc[5, "text"] = one_cell.examples.loc[5, "text"] + "!"
    other_label = make_training_set(120, days=6, seed=1)
    other_label.examples.loc[7, "is_harmful"] = not other_label.examples.loc[7, "is_harmful"]
    dropped = make_training_set(120, days=6, seed=1)
    dropped.examples = dropped.examples.iloc[1:]
    changed = {
        fingerprint.training_fingerprint(one_cell, cfg),
        fingerprint.training_fingerprint(other_label, cfg),
        fingerprint.training_fingerprint(dropped, cfg),
        fingerprint.training_fingerprint(ts, load(epochs=2)),
        fingerprint.training_fingerprint(ts, load(epochs=1, seed=cfg.seed + 1)),
    }
    assert base not in changed and len(changed) == 5


def test_no_fingerprint_without_pinned_code(monkeypatch):
    monkeypatch.setattr(fingerprint, "code_revision", lambda: None)
    assert fingerprint.training_fingerprint(make_training_set(60), load(epochs=1)) is None


@pytest.mark.slow
def test_second_training_on_the_same_inputs_reuses_the_model(vigil_home, pinned):
    cfg = load(epochs=1, target_precision=0.8, promote="always")
    ts = make_training_set(300, seed=3)
    first = train(cfg, training_set=ts, reuse=True)
    again = train(cfg, training_set=make_training_set(300, seed=3), reuse=True)
    assert again["reused"] is True and again["model_id"] == first["model_id"]
    assert again["champion"] is True and again["promoted"] is False
    assert again["replay"] == first["replay"]
    assert [m["model_id"] for m in registry.list_models()] == [first["model_id"]]
    # Other inputs, or --retrain (reuse=False): a new model.
    other = train(cfg, training_set=make_training_set(300, seed=4), reuse=True)
    forced = train(cfg, training_set=ts, reuse=False)
    ids = {first["model_id"], other["model_id"], forced["model_id"]}
    assert len(ids) == 3 and len(registry.list_models()) == 3
    assert registry.meta(forced["model_id"])["input_fingerprint"] is None


def test_truth_grading_is_read_back_only_while_newer_than_the_truth(tmp_path, monkeypatch):
    import json
    import os

    from sim import harness

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    done = tmp_path / "home" / "reports" / "models" / "m1" / "truth" / "metrics.json"
    truth = tmp_path / "home" / "raw" / "_truth" / "posts.jsonl"
    done.parent.mkdir(parents=True)
    truth.parent.mkdir(parents=True)
    graded = {"models": {"multitask": {"pr_auc": 0.9}}, "replay": {"multitask": {}}}
    truth.write_text("{}\n")
    done.write_text(json.dumps(graded))
    os.utime(truth, (1_000, 1_000))
    os.utime(done, (2_000, 2_000))
    assert harness.graded_before("m1") == graded
    assert harness.graded_before("m2") is None and harness.graded_before(None) is None
    os.utime(truth, (3_000, 3_000))  # the world was simulated again after the grading
    assert harness.graded_before("m1") is None
    os.utime(truth, (1_000, 1_000))
    done.write_text("{not json")
    assert harness.graded_before("m1") is None
