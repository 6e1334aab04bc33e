"""The simulated moderators: they answer the platform's review requests from the truth.

The platform writes review requests (``vigil.review.files.FileReviewQueue``) and reads verdict
files back. In simulation, the setting ``VIGIL_REVIEW_ANSWERER=sim.moderators:answer`` (set by
``vigil pipeline`` and the test suite) makes the queue call :func:`answer` with the new requests;
it writes one verdict file, as human moderators would. Each verdict is the truth
(:mod:`sim.truth`) passed through the simulated labeling queue's error rate
(``sim.params.MODERATOR_ACCURACY``): wrong with probability 1 - accuracy, drawn once per
(seed, post_id), so asking twice gives the same answer. A repeat review (a queue named
``<queue>-review<k>``, :func:`vigil.review.repeat_review_queue`: the second or third opinion the
online evaluation asks for heavy-weight harmful labels) is another moderator: its error is drawn
per (seed, post_id, queue name), independent of the first review's and of other queues'. Posts
the truth does not know (or a data root without truth) get no verdict: they stay pending.
"""

from __future__ import annotations

import json
import logging
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sim import truth as sim_truth
from sim.params import MODERATOR_ACCURACY
from vigil.config import paths
from vigil.review import review_round

log = logging.getLogger(__name__)

REVIEWER = "sim-moderators"
# The seed of the moderators' errors: the training seed the review queue used when it lived in
# training (so the default world keeps its labels).
SEED = 7


def verdicts(
    truth: pd.DataFrame,
    post_ids,
    seed: int = SEED,
    accuracy: float = MODERATOR_ACCURACY,
    queue: str | None = None,
) -> pd.DataFrame:
    """post_id, is_harmful, harm_types for the ``post_ids`` the truth knows (in request order).
    ``queue``: a repeat-review queue draws its own errors (other queues share the first draw)."""
    known = truth.drop_duplicates("post_id").set_index("post_id")
    ids = [int(p) for p in pd.unique(np.asarray(post_ids, dtype=np.int64)) if p in known.index]
    rows = known.loc[ids]
    # One uniform per post id (independent of the request order) decides a moderator error; a
    # repeat review keys it by its queue as well, so the second opinion errs independently.
    extra = [zlib.crc32(queue.encode())] if queue and review_round(queue) > 1 else []
    u = np.array([np.random.default_rng([seed, 17, p, *extra]).random() for p in ids], dtype=float)
    true = rows["is_harmful"].astype(bool).to_numpy()
    verdict = np.where(u < accuracy, true, ~true)
    types = [sorted(t or []) if v else [] for v, t in zip(verdict, rows["harm_types"].to_numpy())]
    return pd.DataFrame({"post_id": ids, "is_harmful": verdict.astype(bool), "harm_types": types})


def answer(requests: pd.DataFrame, verdicts_dir: Path, raw_dir: Path | None = None) -> None:
    """Write verdicts for ``requests`` (FileReviewQueue's answerer) into ``verdicts_dir``."""
    truth = sim_truth.posts(raw_dir or paths().raw)
    if truth is None:
        log.warning("simulated moderators: no truth under %s; requests stay pending", paths().raw)
        return
    queue = str(requests["queue"].iloc[0]) if "queue" in requests and len(requests) else "review"
    out = verdicts(truth, requests["post_id"].to_numpy(), queue=queue)
    if out.empty:
        return
    now = datetime.now(UTC)
    path = Path(verdicts_dir) / f"{REVIEWER}-{queue}-{now:%Y%m%dT%H%M%S%f}.jsonl"
    stamp = now.isoformat()
    with open(path, "w") as f:
        f.writelines(
            json.dumps(
                {
                    "post_id": int(r.post_id),
                    "is_harmful": bool(r.is_harmful),
                    "harm_types": list(r.harm_types),
                    "reviewer": REVIEWER,
                    "reviewed_at": stamp,
                }
            )
            + "\n"
            for r in out.itertuples(index=False)
        )
    log.info(
        "simulated moderators: %d verdicts (%d harmful) written to %s",
        len(out),
        int(out["is_harmful"].sum()),
        path.name,
    )
