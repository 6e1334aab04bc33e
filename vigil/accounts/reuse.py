"""Reuse of the daily account steps: a step whose inputs, parameters and code have not changed
since its last run returns that run's result instead of recomputing it, so a re-run of
``vigil_accounts`` (``make run`` on an unchanged world) recomputes nothing. The same idea as the
posts model's reuse (``training/fingerprint.py``), per step.

A step's fingerprint is a SHA-256 of

- its code: the bytes of every ``.py`` file under ``vigil/accounts`` and of the extra code paths
  the step names (the GX suite, the dbt models), so an edit, committed or not, recomputes;
- its parameters (JSON);
- its inputs: for every file under the step's input paths, the path relative to the data root,
  the size and the modification time (ns). A file rewritten with the same bytes counts as changed:
  a needless recompute, never a stale output. (The lake's ingest leaves unchanged files alone.)

It is stored with the step's result in ``<data root>/accounts/_reuse/<step>.json``; the result is
reused only when the fingerprint matches and every output the step names still exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from vigil import config

log = logging.getLogger(__name__)

ACCOUNTS_CODE = config.REPO_ROOT / "vigil" / "accounts"


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return []


def fingerprint(inputs: Iterable[Path], params: dict, code: Iterable[Path] = ()) -> str:
    """SHA-256 of the code's bytes, the parameters and the inputs' (path, size, mtime)."""
    home = config.paths().home
    h = hashlib.sha256()
    for root in (ACCOUNTS_CODE, *code):
        for f in _files(Path(root)):
            if f.suffix in (".pyc",):
                continue
            h.update(f"\x00code:{f.relative_to(config.REPO_ROOT)}:".encode())
            h.update(f.read_bytes())
    h.update(b"\x00params:" + json.dumps(params, sort_keys=True, default=str).encode())
    for root in inputs:
        root = Path(root)
        h.update(f"\x00input:{root}:".encode())
        for f in _files(root):
            st = f.stat()
            rel = f.relative_to(home) if f.is_relative_to(home) else f
            h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _plain(value):
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return str(value)


def stamp_path(step: str) -> Path:
    return config.paths().home / "accounts" / "_reuse" / f"{step}.json"


def run(
    step: str,
    fn: Callable[[], dict],
    *,
    inputs: Iterable[Path],
    outputs: Iterable[Path] = (),
    params: dict | None = None,
    code: Iterable[Path] = (),
    force: bool = False,
) -> dict:
    """``fn()`` unless the step's last run had the same fingerprint and its outputs exist; then
    that run's result with ``reused: True``. The result (a JSON-able dict) is stored."""
    inputs, outputs = list(inputs), [Path(p) for p in outputs]
    digest = fingerprint(inputs, params or {}, code)
    path = stamp_path(step)
    if not force and path.exists() and all(p.exists() for p in outputs):
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            saved = {}
        if saved.get("fingerprint") == digest:
            log.info("accounts %s: inputs, parameters and code unchanged: reused", step)
            return dict(saved.get("result") or {}) | {"reused": True}
    result = json.loads(json.dumps(fn(), default=_plain))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": digest, "result": result}, indent=1))
    tmp.replace(path)
    return dict(result) | {"reused": False}
