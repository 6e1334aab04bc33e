"""Re-score triggers: when something important happens to a post, ask `vigil serve` to score it
again (issue 22), instead of waiting for the next fixed scoring age.

A post is re-scored when it receives its first report and at each doubling of its reports (1, 2,
4, 8, ...), when its views cross 2^k (from ``2**min_views_power`` up), and when its negative
replies reach one of ``negative_reply_steps``. Requests are debounced per post, in event time:
the first trigger is sent at once; triggers within ``debounce_ms`` of the last request are merged
into one request sent when that window ends (:meth:`Triggers.flush`), so a burst of reports costs
one heavy-model call, not ten. Event time (not wall time) keeps a replay deterministic.

Each request carries the reasons (``first_report``, ``reports_4``, ``views_64``,
``negative_replies_5``); the service reads the post's online features at that moment and logs the
reason as the decision's ``trigger``.

The stream processor feeds its applied events here when started with ``--rescore URL`` or
``--triggers [FILE]`` (:mod:`vigil.stream.rescore`: trigger state and requests are committed with
the checkpoint). :func:`send` posts requests to the service.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RescoreRequest:
    post_id: int
    at_ms: int  # event time the request is due
    reasons: tuple[str, ...]

    @property
    def trigger(self) -> str:
        return "+".join(self.reasons)


@dataclass
class _Post:
    reports: int = 0
    views: int = 0
    negative_replies: int = 0
    last_sent_ms: int | None = None
    pending: list[str] = field(default_factory=list)


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class Triggers:
    def __init__(
        self,
        min_views_power: int = 4,
        negative_reply_steps: tuple[int, ...] = (3, 10, 30),
        debounce_ms: int = 10 * 60_000,
    ) -> None:
        if debounce_ms < 0 or min_views_power < 0:
            raise ValueError("debounce_ms and min_views_power must be >= 0")
        self.min_views = 2**min_views_power
        self.negative_steps = frozenset(negative_reply_steps)
        self.debounce_ms = debounce_ms
        self.posts: dict[int, _Post] = {}
        self.sent = 0
        self.merged = 0

    def _reason(self, post: _Post, action: str, negative: bool) -> str | None:
        if action == "report":
            post.reports += 1
            if _power_of_two(post.reports):
                return "first_report" if post.reports == 1 else f"reports_{post.reports}"
        elif action == "view":
            post.views += 1
            if post.views >= self.min_views and _power_of_two(post.views):
                return f"views_{post.views}"
        elif action == "reply" and negative:
            post.negative_replies += 1
            if post.negative_replies in self.negative_steps:
                return f"negative_replies_{post.negative_replies}"
        return None

    def observe(
        self, post_id: int, action: str, ts_ms: int, negative: bool = False
    ) -> list[RescoreRequest]:
        """Count one event of a post; the requests due by now (at most two: merged triggers
        whose window ended before ``ts_ms``, sent at that window's end, then this one).

        Merged triggers are always sent at their window's end, whether :meth:`flush` or a later
        event of the post finds them, so the requests do not depend on when ``flush`` runs."""
        post = self.posts.get(post_id)
        if post is None:
            post = self.posts[post_id] = _Post()
        out = self.flush_post(post_id, ts_ms) if post.pending else []
        reason = self._reason(post, action, negative)
        if reason is None:
            return out
        if post.last_sent_ms is None or ts_ms - post.last_sent_ms >= self.debounce_ms:
            post.last_sent_ms = ts_ms
            self.sent += 1
            return [*out, RescoreRequest(post_id, ts_ms, (reason,))]
        post.pending.append(reason)
        self.merged += 1
        return out

    def flush_post(self, post_id: int, now_ms: int) -> list[RescoreRequest]:
        post = self.posts.get(post_id)
        if post is None or not post.pending or post.last_sent_ms is None:
            return []
        due = post.last_sent_ms + self.debounce_ms
        if now_ms < due:
            return []
        reasons = tuple(post.pending)
        post.pending.clear()
        post.last_sent_ms = due
        self.sent += 1
        return [RescoreRequest(post_id, due, reasons)]

    def flush(self, now_ms: int) -> list[RescoreRequest]:
        """Requests whose debounce window has ended by ``now_ms`` (event time), by due time."""
        due = [r for pid in list(self.posts) for r in self.flush_post(pid, now_ms)]
        return sorted(due, key=lambda r: (r.at_ms, r.post_id))


def send(requests: list[RescoreRequest], base_url: str, token: str | None = None) -> dict:
    """POST each request to the service's /v1/score; counts of answers by status."""
    counts: dict[int, int] = {}
    for request in requests:
        body = json.dumps({"post_id": request.post_id, "trigger": request.trigger}).encode()
        req = urllib.request.Request(f"{base_url}/v1/score", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        counts[status] = counts.get(status, 0) + 1
    log.info("triggers: sent %d re-score requests: %s", len(requests), counts)
    return counts
