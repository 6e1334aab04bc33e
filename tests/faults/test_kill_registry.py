"""`vigil train`'s registry writes SIGKILLed at seeded points: the registry never holds a
half-written model, the champion is always a whole model, and the next save cleans up.

Whole means: meta.json, model.joblib and the training snapshot are there and the model loads.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from faultlib import SAVE_SCRIPT, TRAIN_SCRIPT, kill_when, start_python

SEED = 19
SAVE_CASES = 4


def _registry(home, monkeypatch):
    from training import registry

    monkeypatch.setenv("VIGIL_HOME", str(home))
    return registry


def _assert_whole(home, monkeypatch) -> list[str]:
    """Every registered model is whole and loads; the champion is one of them."""
    registry = _registry(home, monkeypatch)
    models = sorted(p.name for p in (home / "models").iterdir() if p.is_dir() and p.name[0] != ".")
    for model_id in models:
        folder = home / "models" / model_id
        assert {"meta.json", "model.joblib", "training_set.parquet"} <= {
            p.name for p in folder.iterdir()
        }, model_id
        registry.load(model_id)
    champion = json.loads((home / "models" / "champion.json").read_text())["model_id"]
    assert champion in models
    registry.load()  # what scoring reads
    return models


def _seed_champion(home, monkeypatch) -> None:
    registry = _registry(home, monkeypatch)
    registry.save(
        "m0",
        {"weights": [1, 2, 3]},
        {"feature_service": "moderation_v1"},
        extra=lambda d: (d / "training_set.parquet").write_bytes(b"PAR1"),
    )
    registry.promote("m0")


@pytest.fixture(scope="module")
def save_window(tmp_path_factory) -> float:
    """Seconds from the staging folder's creation to the end of an uninterrupted save+promote."""
    home = tmp_path_factory.mktemp("save-window") / "home"
    proc = start_python(home, SAVE_SCRIPT, "m1")
    while not (home / "models" / ".staging").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.01)
    started = time.monotonic()
    assert proc.wait() == 0, proc.stderr.read().decode()[-2000:]
    return time.monotonic() - started


@pytest.mark.parametrize("case", range(SAVE_CASES))
def test_registry_save_and_promote_killed_leave_whole_models_only(
    tmp_path, monkeypatch, save_window, case
):
    home = tmp_path / "home"
    _seed_champion(home, monkeypatch)
    # seeded kill points across the write window: the model file, the snapshot, the rename, promote
    fraction = [random.Random(f"{SEED}-save-{i}").uniform(0.05, 1.1) for i in range(SAVE_CASES)]
    delay = fraction[case] * save_window
    proc = start_python(home, SAVE_SCRIPT, "m1")
    killed = kill_when(proc, f"{home}/models/.staging/m1.{proc.pid}", delay)
    models = _assert_whole(home, monkeypatch)
    assert models in (["m0"], ["m0", "m1"]), (killed, models)
    # the next save removes the killed run's half-written folder and registers whole
    registry = _registry(home, monkeypatch)
    registry.save(
        "m2",
        {"w": 1},
        {"feature_service": "moderation_v1"},
        extra=lambda d: (d / "training_set.parquet").write_bytes(b"PAR1"),
    )
    assert list((home / "models" / ".staging").iterdir()) == []
    assert "m2" in _assert_whole(home, monkeypatch)


@pytest.mark.slow
def test_train_killed_while_registering_leaves_whole_models_only(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _seed_champion(home, monkeypatch)
    delay = random.Random(f"{SEED}-train").uniform(0.0, 0.5)
    proc = start_python(home, TRAIN_SCRIPT)
    killed = kill_when(proc, f"{home}/models/.staging/*.{proc.pid}", delay)
    models = _assert_whole(home, monkeypatch)
    assert len(models) in (1, 2), (killed, models)
    if not killed:  # it finished first: the trained model is the champion
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
