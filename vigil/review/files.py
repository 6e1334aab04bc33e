"""The file review queue: requests out as Parquet, moderators' verdicts back as JSON lines.

Layout under the data root (``paths().review``; the contract is in docs/contracts.md):

- ``requests/<queue>.parquet``: one row per requested post (post_id, queue, requested_at, reason,
  inclusion_probability); a post requested again keeps its first request.
- ``verdicts/*.jsonl``: what moderators drop, one verdict per line (post_id, is_harmful,
  harm_types, reviewer, reviewed_at). Every file is read; for a post with several verdicts the
  latest ``reviewed_at`` wins (a tie goes to the later file name, then the later line).
- ``rejected_verdicts.jsonl``: the lines that failed validation, each with its file, line number
  and reason; rewritten on every read so it always describes the verdict files as they are.

An optional ``answer`` callable (``VIGIL_REVIEW_ANSWERER``, ``module:function``) is called with
the new requests and the verdicts folder and may write a verdict file there before they are read
back: the simulator's moderators answer this way. Without it, requests wait for people.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.config import paths, review_answerer
from vigil.contracts import HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)

Answerer = Callable[[pd.DataFrame, Path], None]
REQUEST_COLUMNS = ("post_id", "queue", "requested_at", "reason", "inclusion_probability")


def load_answerer(spec: str | None = None) -> Answerer | None:
    """The callable named by ``spec`` (default: the ``VIGIL_REVIEW_ANSWERER`` setting), or None."""
    spec = spec if spec is not None else review_answerer()
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UserError(
            f"review answerer {spec!r} cannot be loaded ({exc}): set VIGIL_REVIEW_ANSWERER to an "
            "importable module:function, or unset it to wait for verdict files."
        ) from None


def _check_verdict(obj) -> str | None:
    """Why a parsed verdict line is invalid, or None when it is valid."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    missing = [
        k
        for k in ("post_id", "is_harmful", "harm_types", "reviewer", "reviewed_at")
        if k not in obj
    ]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    pid = obj["post_id"]
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return "post_id is not a positive integer"
    if not isinstance(obj["is_harmful"], bool):
        return "is_harmful is not true/false"
    types = obj["harm_types"]
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        return "harm_types is not a list of strings"
    unknown = sorted(set(types) - set(HARM_TYPES))
    if unknown:
        return f"unknown harm type(s) {', '.join(unknown)}"
    if types and not obj["is_harmful"]:
        return "harm_types given for a verdict that is not harmful"
    if not isinstance(obj["reviewer"], str) or not obj["reviewer"].strip():
        return "reviewer is empty"
    try:
        at = datetime.fromisoformat(str(obj["reviewed_at"]))
    except ValueError:
        return "reviewed_at is not an ISO 8601 timestamp"
    if at.tzinfo is None:
        return "reviewed_at has no time zone"
    return None


def read_verdicts(directory: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid verdicts deduplicated to one per post, rejected lines with their reasons)."""
    directory = Path(directory or paths().review / "verdicts")
    rows, rejected = [], []
    for order, file in enumerate(sorted(directory.glob("*.jsonl")) if directory.is_dir() else []):
        for number, line in enumerate(file.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                reason = _check_verdict(obj)
            except ValueError:
                reason = "not valid JSON"
            if reason:
                rejected.append(
                    {"file": file.name, "line": number, "reason": reason, "text": line[:500]}
                )
                continue
            rows.append(
                {
                    "post_id": obj["post_id"],
                    "is_harmful": obj["is_harmful"],
                    "harm_types": tuple(obj["harm_types"]),
                    "reviewer": obj["reviewer"],
                    "reviewed_at": pd.Timestamp(obj["reviewed_at"]).tz_convert(UTC),
                    "_order": (order, number),
                }
            )
    cols = ["post_id", "is_harmful", "harm_types", "reviewer", "reviewed_at"]
    if not rows:
        return pd.DataFrame(columns=cols), pd.DataFrame(rejected)
    frame = pd.DataFrame(rows).sort_values(["reviewed_at", "_order"], kind="stable")
    latest = frame.drop_duplicates("post_id", keep="last").sort_values("post_id")
    return latest[cols].reset_index(drop=True), pd.DataFrame(rejected)


class FileReviewQueue:
    """A :class:`vigil.review.ReviewQueue` over the request and verdict files of one queue."""

    def __init__(
        self,
        queue: str,
        budget: int,
        root: Path | None = None,
        answer: Answerer | None = None,
    ):
        if budget < 0:
            raise UserError(f"review budget {budget} must be >= 0.")
        self.queue = queue
        self.budget = int(budget)
        self.root = Path(root or paths().review)
        self.answer = answer
        self.requested: set[int] = set()
        self.answered: set[int] = set()
        self.rejected_lines = 0

    @property
    def used(self) -> int:
        return len(self.requested)

    @property
    def pending(self) -> int:
        return len(self.requested - self.answered)

    @property
    def requests_path(self) -> Path:
        return self.root / "requests" / f"{self.queue}.parquet"

    def review(self, post_ids, reason: str = "", inclusion_probability=None) -> pd.DataFrame:
        """Request ``post_ids`` (within the budget) and return the verdicts that exist for them."""
        ids = pd.unique(np.asarray(post_ids, dtype=np.int64))
        new = set(ids.tolist()) - self.requested
        if self.used + len(new) > self.budget:
            raise UserError(
                f"review queue {self.queue}: {self.used + len(new)} posts requested, budget "
                f"{self.budget}: raise audit_budget or request fewer posts."
            )
        self.requested |= new
        fresh = self._write_requests(ids, reason, inclusion_probability)
        if self.answer is not None and len(fresh):
            (self.root / "verdicts").mkdir(parents=True, exist_ok=True)
            self.answer(fresh, self.root / "verdicts")
        verdicts = self._read_back()
        out = verdicts[verdicts["post_id"].isin(ids)].reset_index(drop=True)
        self.answered |= set(out["post_id"].astype("int64").tolist())
        log.info(
            "review queue %s: %d posts requested (%d new), %d answered, %d pending; %d/%d of the "
            "budget used; %d verdict line(s) rejected",
            self.queue,
            len(ids),
            len(new),
            len(out),
            len(ids) - len(out),
            self.used,
            self.budget,
            self.rejected_lines,
        )
        return out

    def _write_requests(self, ids, reason: str, inclusion_probability) -> pd.DataFrame:
        """Append the posts not requested before; returns those new request rows."""
        path = self.requests_path
        old = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=REQUEST_COLUMNS)
        pi = (
            pd.Series(inclusion_probability, index=ids, dtype=float)
            if inclusion_probability is not None
            else pd.Series(np.nan, index=ids)
        )
        fresh = pd.DataFrame(
            {
                "post_id": ids,
                "queue": self.queue,
                "requested_at": pd.Timestamp(datetime.now(UTC)),
                "reason": reason,
                "inclusion_probability": pi.to_numpy(dtype=float),
            }
        )
        fresh = fresh[~fresh["post_id"].isin(old["post_id"])].reset_index(drop=True)
        if len(fresh):
            path.parent.mkdir(parents=True, exist_ok=True)
            both = fresh if old.empty else pd.concat([old, fresh], ignore_index=True)
            tmp = path.with_suffix(".parquet.tmp")
            both.to_parquet(tmp, index=False)
            os.replace(tmp, path)  # readers never see half a file
        return fresh

    def _read_back(self) -> pd.DataFrame:
        verdicts, rejected = read_verdicts(self.root / "verdicts")
        self.rejected_lines = len(rejected)
        out_path = self.root / "rejected_verdicts.jsonl"
        if len(rejected) or out_path.exists():
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text("".join(json.dumps(r) + "\n" for r in rejected.to_dict("records")))
        if len(rejected):
            log.warning(
                "review queue %s: %d verdict line(s) rejected (reasons in %s)",
                self.queue,
                len(rejected),
                out_path,
            )
        out = pd.DataFrame({"post_id": verdicts["post_id"].astype("int64")})
        out["is_harmful"] = verdicts["is_harmful"].astype(bool)
        for h in HARM_TYPES:
            out[f"is_{h}"] = [h in t for t in verdicts["harm_types"]]
        out["queue"] = self.queue
        return out
