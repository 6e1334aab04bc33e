"""Model registry under ``paths().models``.

    models/<model_id>/meta.json     config, feature service, training data windows, metrics, git revision
    models/<model_id>/model.joblib  the fitted objects (baseline, multi-task net, student, calibrators, thresholds)
    models/<model_id>/training_set.parquet  the data snapshot the model was trained on
    models/<model_id>/mention.joblib  the harassment-at-the-mention model and its threshold
                                    (training.mentions.for_training), when it was trained
    models/champion.json            {"model_id": ..., "history": [earlier champions, oldest first]}

A model folder appears whole or not at all: it is written under ``models/.staging/`` and renamed
into place, so a training run killed mid-write leaves no half-written model, and the champion is
only ever a model whose files are all there. ``champion.json`` is replaced by rename as well. A
damaged file (cut JSON, unreadable joblib) is one clear error naming it and the command that
recovers.

Loading checks that the model's feature service is the one serving uses: a model trained on other
features would silently read the wrong columns, so it is refused with a clear error.

CLI: ``vigil models list | promote ID | rollback``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.config import FEATURE_SERVICE
from vigil.config import REPO_ROOT, paths
from vigil.errors import UserError

log = logging.getLogger(__name__)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def root() -> Path:
    return paths().models


def new_model_id() -> str:
    return "moderation-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# -- writing: whole folders and atomic files -------------------------------------------------------
def _staging() -> Path:
    return root() / ".staging"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_staging() -> int:
    """Delete the staging folders of saves whose process is gone (killed mid-write)."""
    removed = 0
    for folder in sorted(_staging().glob("*.*")) if _staging().is_dir() else []:
        pid = folder.name.rsplit(".", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if removed:
        log.warning("registry: removed %d half-written model folder(s) of killed runs", removed)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(
    model_id: str,
    objects: dict[str, Any],
    meta: dict[str, Any],
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Register a model whole: its files are written in ``models/.staging/<id>.<pid>``
    (``extra(folder)`` adds more, e.g. the training snapshot), synced, then the folder is renamed
    into place. A run killed before the rename leaves no model; the next save removes its folder."""
    import joblib

    directory = root() / model_id
    if directory.exists():
        raise UserError(f"model {model_id} is already in the registry ({directory}).")
    _remove_dead_staging()
    staging = _staging() / f"{model_id}.{os.getpid()}"
    staging.mkdir(parents=True)
    meta = {
        "model_id": model_id,
        "created_at": datetime.now(UTC).isoformat(),
        "git_revision": git_revision(),
        **meta,
    }
    try:
        joblib.dump(objects, staging / "model.joblib", compress=3)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if extra is not None:
            extra(staging)
        for f in staging.iterdir():
            _fsync(f)
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync(root())
    log.info("registered model %s at %s", model_id, directory)
    return directory


def _write_atomically(path: Path, text: str) -> None:
    """Replace a small file by rename: a reader sees the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def _champion_lock() -> Iterator[None]:
    """One champion change at a time (promote, rollback): each reads, then rewrites the file."""
    root().mkdir(parents=True, exist_ok=True)
    with (root() / ".champion.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- reading: one clear error per damaged file -----------------------------------------------------
def _read_json(path: Path, fix: str) -> Any:
    """A registry JSON file, or one clear error naming it and ``fix``."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        raise UserError(f"registry file {path} is damaged ({reason}): {fix}") from None


def _meta_fix(model_id: str) -> str:
    return (
        f"if {model_id} is the champion, roll back with `vigil models rollback`; delete the folder "
        f"{root() / model_id} and retrain with `vigil train` if you need that model."
    )


def meta(model_id: str) -> dict[str, Any]:
    path = root() / model_id / "meta.json"
    if not path.is_file():
        raise UserError(
            f"model {model_id} is not in the registry ({root()}): see `vigil models list`."
        )
    return _read_json(path, _meta_fix(model_id))


def list_models() -> list[dict[str, Any]]:
    if not root().is_dir():
        return []
    out = [_read_json(p, _meta_fix(p.parent.name)) for p in sorted(root().glob("*/meta.json"))]
    return sorted(out, key=lambda m: m.get("created_at", ""))


def _champion_file() -> Path:
    return root() / "champion.json"


def _champion_state() -> dict[str, Any]:
    f = _champion_file()
    if not f.is_file():
        return {"model_id": None, "history": []}
    state = _read_json(
        f,
        "make a model the champion again with `vigil models promote ID` (it sets the damaged "
        "file aside; `ls` the models folder for the ids).",
    )
    if not isinstance(state, dict):
        raise UserError(
            f"registry file {f} is damaged (not a JSON object): make a model the champion again "
            "with `vigil models promote ID`."
        )
    state.setdefault("history", [])
    return state


def champion() -> str | None:
    return _champion_state().get("model_id")


def promote(model_id: str) -> dict:
    meta(model_id)  # must exist and be readable
    f = _champion_file()
    with _champion_lock():
        try:
            state = _champion_state()
        except UserError as exc:
            aside = f.with_name("champion.json.damaged")
            os.replace(f, aside)
            log.warning("%s; set aside as %s, champion history starts again", exc, aside)
            state = {"model_id": None, "history": []}
        if state.get("model_id") == model_id:
            return state
        if state.get("model_id"):
            state["history"].append(state["model_id"])
        state["model_id"] = model_id
        _write_atomically(f, json.dumps(state, indent=2))
    log.info("champion is now %s", model_id)
    return state


def rollback() -> dict:
    f = _champion_file()
    with _champion_lock():
        state = _champion_state()
        if not state.get("history"):
            raise UserError(
                "there is no earlier champion to roll back to: promote a model with "
                "`vigil models promote ID`."
            )
        previous = state["model_id"]
        state["model_id"] = state["history"].pop()
        _write_atomically(f, json.dumps(state, indent=2))
    record_decision({"decision": "rollback", "from": previous, "champion": state["model_id"]})
    log.info("rolled back: champion is now %s (was %s)", state["model_id"], previous)
    return state


def record_decision(record: dict) -> None:
    """Append a champion change made by hand (promote/rollback) to ``<models>/decisions.jsonl``,
    beside the drift-triggered retrain's decisions (training.promotion), with its time."""
    import datetime as dt

    f = root() / "decisions.jsonl"
    f.parent.mkdir(parents=True, exist_ok=True)
    stamped = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **record}
    with f.open("a") as out:
        out.write(json.dumps(stamped) + "\n")


# what joblib, pickle and zlib raise for a cut or garbled model file
UNREADABLE_MODEL = (
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ImportError,
    pickle.UnpicklingError,
    struct.error,
    zlib.error,
)


def load(model_id: str | None = None, feature_service: str = FEATURE_SERVICE) -> dict[str, Any]:
    """The model's objects and metadata; refuses a model built on another feature service."""
    import joblib

    asked = model_id
    model_id = model_id or champion()
    if model_id is None:
        raise UserError("no champion model yet: train one with `vigil train` (or promote one).")
    if asked is None and not (root() / model_id / "meta.json").is_file():
        raise UserError(
            f"the champion {model_id} is not in the registry ({root()}): roll back with "
            "`vigil models rollback` or promote a model with `vigil models promote ID`."
        )
    info = meta(model_id)
    if info.get("feature_service") != feature_service:
        raise UserError(
            f"model {model_id} was trained on feature service {info.get('feature_service')!r} but "
            f"serving uses {feature_service!r}: retrain with `vigil train` or promote a model built "
            f"on {feature_service!r}."
        )
    path = root() / model_id / "model.joblib"
    try:
        objects = joblib.load(path)
    except FileNotFoundError:
        raise UserError(f"model file {path} is missing: {_meta_fix(model_id)}") from None
    except UNREADABLE_MODEL as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"model file {path} cannot be read ({type(exc).__name__}: {reason[:200]}): "
            f"{_meta_fix(model_id)}"
        ) from None
    return {**objects, "meta": info, "model_id": model_id}


MENTION_FILE = "mention.joblib"


def save_mention(folder: Path, mention: dict | None) -> None:
    """Write the mention model (``{"model", "threshold", ...}``) into a model folder being saved
    (call it from :func:`save`'s ``extra``); nothing when there is none."""
    import joblib

    if mention is not None:
        joblib.dump(
            {k: mention[k] for k in ("model", "threshold")}, folder / MENTION_FILE, compress=3
        )


def load_mention(model_id: str | None = None) -> dict | None:
    """The mention model saved beside a registered model (default: the champion), or None."""
    import joblib

    model_id = model_id or champion()
    path = root() / model_id / MENTION_FILE if model_id else None
    if path is None or not path.is_file():
        return None
    try:
        return joblib.load(path)
    except UNREADABLE_MODEL as exc:
        raise UserError(
            f"mention model file {path} cannot be read ({type(exc).__name__}): "
            f"{_meta_fix(model_id)}"
        ) from None


# -- CLI: vigil models ----------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list registered models (* = champion)")
    p = sub.add_parser("promote", help="make a model the champion")
    p.add_argument("model_id")
    sub.add_parser("rollback", help="make the previous champion the champion again")


def _headline(m: dict) -> str:
    heavy = (m.get("metrics") or {}).get("models", {}).get("multitask", {})
    r = heavy.get("recall_at_95p")
    hv = (
        (m.get("metrics") or {})
        .get("replay", {})
        .get("multitask", {})
        .get("harmful_views_prevented_share")
    )
    return (f"recall@95P={r:.3f}" if isinstance(r, float) else "recall@95P=?") + (
        f" views_prevented={hv:.3f}" if isinstance(hv, float) else ""
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        current = champion()
        models = list_models()
        if not models:
            print(f"no models registered under {root()}: run `vigil train`.")
        for m in models:
            mark = "*" if m["model_id"] == current else " "
            print(
                f"{mark} {m['model_id']}  {m.get('feature_service')}  git={str(m.get('git_revision'))[:10]}"
                f"  {'dry-run ' if m.get('dry_run') else ''}{_headline(m)}"
            )
        if current and current not in {m["model_id"] for m in models}:
            print(
                f"champion {current} is not in the registry: roll back with `vigil models "
                "rollback` or promote a model with `vigil models promote ID`.",
                file=sys.stderr,
            )
        return 0
    if args.action == "promote":
        try:
            previous = champion()
        except UserError:  # a damaged champion file: promote sets it aside and starts again
            previous = None
        state = promote(args.model_id)
        if previous != args.model_id:
            record_decision(
                {"decision": "manual_promote", "from": previous, "champion": args.model_id}
            )
    else:
        state = rollback()
    print(f"champion: {state['model_id']}")
    return 0
