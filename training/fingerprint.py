"""The fingerprint of a training run's inputs, so a re-run on unchanged inputs reuses its model.

Training is seeded, so the same training set, configuration and code give the same model: a
second `vigil train` (or `make run`) on an unchanged data root would spend half a minute to
register a copy. The fingerprint is a SHA-256 of

- the code: the git commit, and only when the code that trains (``vigil``, ``training``,
  ``feature_repo``, ``dbt``, ``pyproject.toml``) has no uncommitted change; otherwise (an edited
  tree, or no git) there is no fingerprint and the run always trains;
- the configuration (``TrainConfig.to_dict()``);
- the training set: every column of the examples, the timelines and the audit population, row by
  row (``pandas.util.hash_pandas_object``), plus the column roles and the data windows.

Any change in any of them gives another fingerprint and a new model. It is stored in the model's
``meta.json`` as ``input_fingerprint``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess

import pandas as pd

from training import registry
from vigil.config import REPO_ROOT

log = logging.getLogger(__name__)

CODE_PATHS = ("vigil", "training", "feature_repo", "dbt", "pyproject.toml")


def code_revision() -> str | None:
    """The git commit when the training code is committed as is; None otherwise (never reuse)."""
    rev = registry.git_revision()
    if rev == "unknown":
        return None
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", *CODE_PATHS],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or out.stdout.strip():
        return None
    return rev


def _frame_digest(h, name: str, frame: pd.DataFrame) -> None:
    h.update(f"\x00{name}:{len(frame)}:".encode())
    ordered = frame[sorted(frame.columns, key=str)]
    h.update(json.dumps([str(c) for c in ordered.columns]).encode())
    h.update(json.dumps([str(t) for t in ordered.dtypes]).encode())
    if len(ordered):
        h.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())


def training_fingerprint(ts, cfg) -> str | None:
    """SHA-256 of code, configuration and training set; None when the code cannot be pinned."""
    rev = code_revision()
    if rev is None:
        return None
    h = hashlib.sha256()
    h.update(rev.encode())
    h.update(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode())
    roles = [ts.behavior_columns, ts.creator_columns, ts.windows]
    h.update(json.dumps(roles, sort_keys=True, default=str).encode())
    try:
        for name in ("examples", "timelines", "population"):
            _frame_digest(h, name, getattr(ts, name))
    except TypeError as exc:  # a cell pandas cannot hash (e.g. a list): do not reuse
        log.info("training set not fingerprinted (%s): training anew", exc)
        return None
    return h.hexdigest()


def trained_on(fingerprint: str) -> dict | None:
    """The newest registered model trained on exactly these inputs, or None."""
    found = [m for m in registry.list_models() if m.get("input_fingerprint") == fingerprint]
    return found[-1] if found else None
