"""The service's spare heavy calls (training.online.SpareCalls) against the replay's rule
(sim.rescore_replay.run_schedule's ``spare``, the figures in docs/rescoring.md): the same heavy
calls a day on random moment sequences (brute force: the replay is the reference; no removals,
which the service cannot see), and a hand-made three-day case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from sim.rescore_replay import run_schedule
from training.online import SpareCalls

TAU = 0.6


def service_calls(moments: pd.DataFrame, budget: int, floor: float) -> tuple[dict, dict]:
    now = [None]
    spare = SpareCalls(budget, floor, clock=lambda: now[0])
    calls: dict[str, int] = {}
    spent: dict[str, int] = {}
    for at, student, trigger in zip(moments["scored_at"], moments["student"], moments["trigger"]):
        now[0] = at.to_pydatetime()
        day = at.date().isoformat()
        if student >= TAU:
            spare.count()
        elif trigger == "creation" or not spare.take(student, TAU):
            continue
        else:
            spent[day] = spent.get(day, 0) + 1
        calls[day] = calls.get(day, 0) + 1
    return calls, spent


def moments_of(seed: int, days: int, per_day: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 10, 25, tzinfo=UTC)
    rows = []
    for d in range(days):
        n = int(rng.integers(per_day // 2, per_day * 2))
        for s in np.sort(rng.uniform(0, 86_400, n)):
            at = pd.Timestamp(start + timedelta(days=d, seconds=float(s)))
            rows.append(
                {
                    "post_id": len(rows),
                    "scored_at": at,
                    "day": at.date().isoformat(),
                    "student": float(rng.uniform()),
                    "trigger": "creation" if rng.uniform() < 0.3 else "first_report",
                    "heavy": 0.0,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(12))
def test_the_same_heavy_calls_a_day_as_the_replay(seed):
    moments = moments_of(seed, days=6, per_day=40)
    rng = np.random.default_rng(100 + seed)
    budget, floor = int(rng.integers(1, 40)), float(rng.choice([0.25, 0.5, 0.75]))
    replay = run_schedule(moments, TAU, threshold=1.0, spare=(floor * TAU, budget))
    calls, _ = service_calls(moments, budget, floor)
    assert calls == replay.heavy_calls


def test_a_hand_made_three_days():
    """B = 2, F = 0.5 (candidates: 0.3 <= student < 0.6). Day 1: candidates 0.5, 0.4, 0.35 and one
    call at tau: no spare call (first day). Day 2: k = 2 - 1 = 1 -> threshold 0.5 (the highest of
    day 1): 0.45 no, 0.55 yes (calls 1), 0.5 yes (calls 2), 0.58 stopped (budget). Day 3: day 2's
    calls at tau 0, k = 2 -> the 2nd highest of day 2 (0.58, 0.55, 0.5, 0.45): 0.55; 0.1 is under
    the floor, a creation at 0.59 is never a candidate: 0.56 yes, then 0.57 yes."""
    day = [datetime(2026, 11, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
    seq = [
        (0, 0.5, "r"), (0, 0.9, "r"), (0, 0.4, "r"), (0, 0.35, "r"),
        (1, 0.45, "r"), (1, 0.55, "r"), (1, 0.5, "r"), (1, 0.58, "r"),
        (2, 0.1, "r"), (2, 0.59, "c"), (2, 0.56, "r"), (2, 0.57, "r"),
    ]  # fmt: skip
    now = [day[0]]
    spare = SpareCalls(2, 0.5, clock=lambda: now[0])
    got = []
    for d, student, kind in seq:
        now[0] = day[d]
        if student >= TAU:
            spare.count()
            got.append(None)
        else:
            got.append(kind == "r" and spare.take(student, TAU))
    assert got == [False, None, False, False, False, True, True, False, False, False, True, True]
    assert (spare.calls, spare.spare, spare.threshold) == (2, 2, 0.55)


def test_bad_settings_are_refused():
    for budget, floor in ((0, 0.5), (2.5, 0.5), (True, 0.5), (10, 0.0), (10, 1.0)):
        with pytest.raises(ValueError):
            SpareCalls(budget, floor)
