"""The simulated authors and moderators of appeals, against a live scoring service (issue 22).

Authors: for each removed post (its latest decision in ``GET /v1/decisions/{id}`` is ``remove``)
the author appeals with probability ``p_wrongful`` when the truth says the post is benign (most
wrongful removals) and ``p_rightful`` when it is harmful (a few rightful ones), drawn once per
(seed, post). Moderators: the appeal queue's requests (``review/requests/appeal.parquet``) are
answered by :func:`sim.moderators.answer` (the truth through the moderators' error rate) and the
service applies the verdict files (``POST /v1/appeals/sync``).

``drive(base_url, post_ids, raw_dir, token=...)`` returns counts graded against the truth.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from sim import moderators
from sim import truth as sim_truth
from vigil.config import paths

log = logging.getLogger(__name__)

P_WRONGFUL, P_RIGHTFUL = 0.8, 0.05


def _call(base: str, path: str, body=None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def drive(
    base: str,
    post_ids,
    raw_dir: Path | None = None,
    token: str | None = None,
    seed: int = 0,
    p_wrongful: float = P_WRONGFUL,
    p_rightful: float = P_RIGHTFUL,
) -> dict:
    """Appeal the removed posts among ``post_ids`` as their authors would, then let the simulated
    moderators decide; counts and the truth's view of the outcomes."""
    raw_dir = Path(raw_dir or paths().raw)
    truth = sim_truth.posts(raw_dir).drop_duplicates("post_id").set_index("post_id")
    filed: dict[int, dict] = {}
    removed = 0
    for post_id in post_ids:
        status, stored = _call(base, f"/v1/decisions/{int(post_id)}", token=token)
        if status != 200 or stored["latest"]["decision"] != "remove" or post_id not in truth.index:
            continue
        removed += 1
        harmful = bool(truth.at[post_id, "is_harmful"])
        u = np.random.default_rng([seed, 22, int(post_id)]).random()
        if u >= (p_rightful if harmful else p_wrongful):
            continue
        body = {
            "post_id": int(post_id),
            "author_id": int(truth.at[post_id, "author_id"]),
            "reason": "harmful content? no: " + ("rightful" if harmful else "wrongful"),
        }
        status, appeal = _call(base, "/v1/appeals", body, token)
        if status != 201:
            raise RuntimeError(f"appeal on post {post_id} refused: {status} {appeal}")
        filed[int(post_id)] = appeal | {"truly_harmful": harmful}
    requests_path = paths().review / "requests" / "appeal.parquet"
    if filed and requests_path.is_file():
        requests = pd.read_parquet(requests_path)
        requests = requests[requests["post_id"].isin(filed)]
        verdicts_dir = paths().review / "verdicts"
        verdicts_dir.mkdir(parents=True, exist_ok=True)
        moderators.answer(requests, verdicts_dir, raw_dir)
    status, synced = _call(base, "/v1/appeals/sync", {}, token)
    if status != 200:
        raise RuntimeError(f"sync refused: {status} {synced}")
    outcome = {int(a["post_id"]): a["status"] for a in synced["decided"]}
    wrongful = [p for p, a in filed.items() if not a["truly_harmful"]]
    rightful = [p for p, a in filed.items() if a["truly_harmful"]]
    result = {
        "removed": removed,
        "appeals": len(filed),
        "appeals_wrongful": len(wrongful),
        "appeals_rightful": len(rightful),
        "reversed": sum(s == "reversed" for s in outcome.values()),
        "upheld": sum(s == "upheld" for s in outcome.values()),
        "wrongful_reversed": sum(outcome.get(p) == "reversed" for p in wrongful),
        "rightful_reversed": sum(outcome.get(p) == "reversed" for p in rightful),
        "pending": synced["pending"],
        "outcomes": outcome,
    }
    log.info("simulated appeals: %s", {k: v for k, v in result.items() if k != "outcomes"})
    return result
