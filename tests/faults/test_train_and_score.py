"""`vigil train` and `vigil score` at once: every champion score reads is whole, the old one or the
new one, never a mix (another model's meta.json beside these fitted objects, or half a file).

The trainer is `vigil train`'s own code (faultlib.TRAIN_SCRIPT: training.train.train on the
hand-made training set of tests/training, promoting what it trains). The reader is what
`vigil score` calls to get the champion (training.score._champion -> training.registry.load),
looped in another process for the whole training run. Afterwards each model it read is loaded on
its own, by id, in this process: the objects must hash the same as what the reader got.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import faultlib
import pytest
from faultlib import GROUPS, TRAIN_SCRIPT, env_for, start_python

# Loads the champion until the stop file exists; prints [model id, meta's id, digest] per load.
READER = f"""
import json, os, sys
sys.path.insert(0, {str(Path(faultlib.__file__).parent)!r})
from faultlib import bundle_digest
from training import score
ready, stop = sys.argv[1], sys.argv[2]
seen = []
while not os.path.exists(stop):
    bundle = score._champion()
    seen.append([bundle["model_id"], bundle["meta"]["model_id"], bundle_digest(bundle)])
    open(ready, "a").close()
print(json.dumps(seen))
"""


def _seed_champion(home, monkeypatch) -> None:
    from training import registry

    monkeypatch.setenv("VIGIL_HOME", str(home))
    registry.save("m0", {"weights": list(range(1000))}, {"feature_service": "moderation_v1"})
    registry.promote("m0")


def _digest(model_id: str) -> dict:
    from training import registry

    return faultlib.bundle_digest(registry.load(model_id))


@pytest.mark.slow
def test_score_reads_a_whole_champion_while_train_promotes_a_new_one(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _seed_champion(home, monkeypatch)
    ready, stop = tmp_path / "reader.ready", tmp_path / "reader.stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(ready), str(stop)],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    GROUPS.append(reader.pid)
    deadline = time.monotonic() + 300
    while not ready.exists():  # it has read the old champion
        assert reader.poll() is None, reader.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    trainer = start_python(home, TRAIN_SCRIPT)
    assert trainer.wait(timeout=600) == 0, trainer.stderr.read().decode()[-3000:]
    time.sleep(1.0)  # a few more loads after the promotion
    stop.touch()
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, err[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    from training import registry

    new = registry.champion()
    assert new != "m0"
    ids = [model_id for model_id, _, _ in seen]
    assert ids[0] == "m0" and ids[-1] == new  # it read the old champion, then the new one
    assert set(ids) == {"m0", new}
    assert ids == sorted(ids, key=lambda i: i != "m0")  # once new, never old again
    whole = {model_id: _digest(model_id) for model_id in set(ids)}
    for model_id, meta_id, digest in seen:
        assert meta_id == model_id and digest == whole[model_id], (model_id, meta_id)
