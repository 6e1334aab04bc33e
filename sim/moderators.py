"""The human review queue, simulated: answers label requests for chosen posts (an oracle).

A platform can send any post to its moderators and get a verdict back; the training code uses that
to audit the posts a model would remove (``training.audit``: a sample of validation posts
stratified by the model's score, with known inclusion probabilities). In simulation the verdict
comes from the simulator's ground truth (``_truth/posts.jsonl``) passed through the same moderator
error rate as the simulated labeling queue (``sim.world.MODERATOR_ACCURACY``): each post's
verdict is wrong with probability 1 - accuracy, drawn once per (seed, post_id), so asking twice
gives the same answer.

Guards: the queue answers only for posts created on the ``days`` it was opened for (training passes
the validation days; a request for any other post is an error, so test-day truth cannot reach
training), and at most ``budget`` distinct posts (an error beyond it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.contracts import HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)

QUEUE = "score_audit"


class ReviewQueue:
    """Moderator verdicts on request for posts created on ``days``, at most ``budget`` posts."""

    def __init__(
        self,
        raw_dir: str | Path,
        days: list[str],
        budget: int,
        seed: int = 7,
        accuracy: float | None = None,
    ):
        from sim.world import MODERATOR_ACCURACY

        path = Path(raw_dir) / "_truth" / "posts.jsonl"
        if not path.is_file():
            raise UserError(
                f"no review queue: {path} does not exist (the simulated moderators answer from the "
                "simulator's ground truth); run `vigil simulate` or use threshold_labels='queues'."
            )
        if budget < 0:
            raise UserError(f"review budget {budget} must be >= 0.")
        self.days = sorted(set(map(str, days)))
        self.budget = int(budget)
        self.seed = int(seed)
        self.accuracy = MODERATOR_ACCURACY if accuracy is None else float(accuracy)
        truth = pd.read_json(path, lines=True, dtype={"post_id": "int64"})
        day = pd.to_datetime(truth["created_at"], utc=True).dt.strftime("%Y-%m-%d")
        truth = truth[day.isin(set(self.days))]
        self._truth = truth.set_index("post_id")[["is_harmful", "harm_types"]]
        self.reviewed: set[int] = set()

    @property
    def used(self) -> int:
        return len(self.reviewed)

    def review(self, post_ids) -> pd.DataFrame:
        """Verdicts for ``post_ids``: post_id, is_harmful, harm types (``is_<type>``), queue."""
        ids = pd.Index(pd.unique(np.asarray(post_ids, dtype=np.int64)))
        unknown = ids.difference(self._truth.index)
        if len(unknown):
            raise UserError(
                f"review queue: {len(unknown)} requested post(s) (e.g. {int(unknown[0])}) were not "
                f"created on the days this queue serves ({self.days[0]} .. {self.days[-1]}): "
                "request only validation posts."
            )
        new = set(ids.tolist()) - self.reviewed
        if self.used + len(new) > self.budget:
            raise UserError(
                f"review queue: {self.used + len(new)} posts requested, budget {self.budget}: "
                "raise audit_budget or request fewer posts."
            )
        self.reviewed |= new
        truth = self._truth.loc[ids]
        # One uniform per post id (independent of the request order) decides a moderator error.
        u = np.array(
            [np.random.default_rng([self.seed, 17, int(p)]).random() for p in ids], dtype=float
        )
        true = truth["is_harmful"].astype(bool).to_numpy()
        verdict = np.where(u < self.accuracy, true, ~true)
        out = pd.DataFrame({"post_id": ids.to_numpy(), "is_harmful": verdict})
        types = truth["harm_types"].to_numpy()
        for h in HARM_TYPES:
            out[f"is_{h}"] = [bool(v) and h in (t or []) for v, t in zip(verdict, types)]
        out["queue"] = QUEUE
        log.info(
            "review queue: %d posts reviewed (%d new, %d harmful verdicts, %d/%d of the budget used)",
            len(ids),
            len(new),
            int(verdict.sum()),
            self.used,
            self.budget,
        )
        return out
