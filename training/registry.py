"""Model registry under ``paths().models``.

    models/<model_id>/meta.json     config, feature service, training data windows, metrics, git revision
    models/<model_id>/model.joblib  the fitted objects (baseline, multi-task net, student, calibrators, thresholds)
    models/<model_id>/training_set.parquet  the data snapshot the model was trained on
    models/champion.json            {"model_id": ..., "history": [earlier champions, oldest first]}

Loading checks that the model's feature service is the one serving uses: a model trained on other
features would silently read the wrong columns, so it is refused with a clear error.

CLI: ``vigil models list | promote ID | rollback``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
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


def save(model_id: str, objects: dict[str, Any], meta: dict[str, Any]) -> Path:
    import joblib

    directory = root() / model_id
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "model_id": model_id,
        "created_at": datetime.now(UTC).isoformat(),
        "git_revision": git_revision(),
        **meta,
    }
    joblib.dump(objects, directory / "model.joblib", compress=3)
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    log.info("registered model %s at %s", model_id, directory)
    return directory


def meta(model_id: str) -> dict[str, Any]:
    path = root() / model_id / "meta.json"
    if not path.is_file():
        raise UserError(
            f"model {model_id} is not in the registry ({root()}): see `vigil models list`."
        )
    return json.loads(path.read_text())


def list_models() -> list[dict[str, Any]]:
    if not root().is_dir():
        return []
    out = [json.loads(p.read_text()) for p in sorted(root().glob("*/meta.json"))]
    return sorted(out, key=lambda m: m.get("created_at", ""))


def _champion_file() -> Path:
    return root() / "champion.json"


def champion() -> str | None:
    f = _champion_file()
    return json.loads(f.read_text()).get("model_id") if f.is_file() else None


def promote(model_id: str) -> dict:
    meta(model_id)  # must exist
    f = _champion_file()
    state = json.loads(f.read_text()) if f.is_file() else {"model_id": None, "history": []}
    if state.get("model_id") == model_id:
        return state
    if state.get("model_id"):
        state["history"].append(state["model_id"])
    state["model_id"] = model_id
    root().mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(state, indent=2))
    log.info("champion is now %s", model_id)
    return state


def rollback() -> dict:
    f = _champion_file()
    state = json.loads(f.read_text()) if f.is_file() else {"model_id": None, "history": []}
    if not state.get("history"):
        raise UserError(
            "there is no earlier champion to roll back to: promote a model with `vigil models promote ID`."
        )
    previous = state["model_id"]
    state["model_id"] = state["history"].pop()
    f.write_text(json.dumps(state, indent=2))
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


def load(model_id: str | None = None, feature_service: str = FEATURE_SERVICE) -> dict[str, Any]:
    """The model's objects and metadata; refuses a model built on another feature service."""
    import joblib

    model_id = model_id or champion()
    if model_id is None:
        raise UserError("no champion model yet: train one with `vigil train` (or promote one).")
    info = meta(model_id)
    if info.get("feature_service") != feature_service:
        raise UserError(
            f"model {model_id} was trained on feature service {info.get('feature_service')!r} but "
            f"serving uses {feature_service!r}: retrain with `vigil train` or promote a model built "
            f"on {feature_service!r}."
        )
    objects = joblib.load(root() / model_id / "model.joblib")
    return {**objects, "meta": info, "model_id": model_id}


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
        return 0
    if args.action == "promote":
        previous = champion()
        state = promote(args.model_id)
        if previous != args.model_id:
            record_decision(
                {"decision": "manual_promote", "from": previous, "champion": args.model_id}
            )
    else:
        state = rollback()
    print(f"champion: {state['model_id']}")
    return 0
