"""Triggered vs fixed re-scoring, replayed on a trained world and graded on the truth (issue 22).

For every post created on the champion's test days, two schedules of scoring moments:

- **fixed** (today's batch): creation, +1 h, +6 h, +24 h (the model's ``score_offsets_hours``);
- **triggered**: creation, then each re-score request :class:`vigil.stream.triggers.Triggers`
  emits when the lake's events of the post are fed to it in time order, exactly as the stream
  processor feeds it (views, reports, replies; a reply is negative by the stream's disgust match),
  with its debounce; a merged request counts at its due time.

At each moment the features are Feast's point-in-time features as of that moment (the path
``vigil score`` and training use: :func:`training.datasets.fetch_features`; ``post_behavior`` is an
hourly snapshot, so a moment sees the post's counters up to the top of its hour); with
``--features exact`` the post's features are those ``vigil stream --post-counters`` serves at the
moment itself: counts of its events up to the moment, the age, the ratios with the platform prior
by age bucket (:func:`exact_counters`, which calls :mod:`vigil.stream.post_counters`). The cascade then
decides as it does online: the student scores the moment; at or above tau the heavy model gives
the calibrated probability; remove at or above the removal threshold. A post's moments after its
removal are not scored. A removed post gets no views after its removal time: those of its views,
counted from the lake's view events, are prevented; graded with ``_truth/posts.jsonl``.

Heavy-model calls are counted per test day for both schedules. ``--heavy-budget N`` caps the
triggered schedule's heavy calls at N a day (``fixed``: the fixed schedule's mean calls a day),
keeping the strongest requests: each day's routing threshold is the N-th highest student score of
the previous day's candidates (never below tau), and a hard stop at N calls. The budget acts only
when the triggered schedule needs more calls a day than N (``triggered_final`` is the schedule
that respects it: ``triggered`` as is, or ``triggered_budget``).

With ``--verdict head`` a routed moment also removes when the re-score head
(:mod:`training.rescore_head`: the student score and the moment's counters, fitted on the training
days and thresholded on the validation days) reaches its threshold. The moments' code (schedules,
exact counters, scoring) is the platform's, :mod:`training.rescore_moments`.

``python -m sim.rescore_replay [--homes DIR... --seeds LABEL...] [--features pit|exact]``: one
trained world per home (``vigil pipeline``'s; default ``$VIGIL_HOME``), JSON per world and the
mean, min and max over the worlds. Docs: docs/rescoring.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import truth as sim_truth
from training import registry
from training import rescore_head as head_mod
from training.config import from_dict
from training.rescore_moments import (  # noqa: F401 (the replay's names, used by its tests)
    Embeddings,
    exact_counters,
    fixed_moments,
    read_events,
    read_history,
    read_posts,
    score_moments,
    triggered_moments,
)
from vigil.config import paths
from vigil.errors import UserError
from vigil.stream.triggers import Triggers

log = logging.getLogger(__name__)


# -- the cascade over a schedule -----------------------------------------------------------
@dataclass
class Outcome:
    removed_at: dict[int, pd.Timestamp]
    heavy_calls: dict[str, int]  # per day
    moments_scored: int


def run_schedule(
    scored: pd.DataFrame,
    tau: float,
    threshold: float,
    budget: float | None = None,
    verdict: str = "heavy",
    spare: tuple[float, float] | None = None,
) -> Outcome:
    """Moments in time order; a post's moments after its removal are skipped. Routed: student
    >= the day's routing threshold (tau; with a budget, see the module doc) and calls left;
    a routed moment removes when its ``verdict`` column (the heavy model's probability, or the
    re-score head's) is at or above ``threshold``.

    ``spare`` = (floor, N): the heavy calls a day the schedule leaves unused out of N go to
    re-score moments (``trigger`` not ``creation``) with floor <= student < tau: each day's
    threshold for them is the k-th highest student score among the previous day's such moments,
    k = N - the previous day's calls at tau (floor if fewer; none on the first day or when k <=
    0), and they stop when the day's calls reach N."""
    removed: dict[int, pd.Timestamp] = {}
    calls: dict[str, int] = {}
    candidates: dict[str, list[float]] = {}
    extra: dict[str, list[float]] = {}  # the spare path's candidates by day
    extra_calls: dict[str, int] = {}
    extra_tau: dict[str, float] = {}
    scored_n = 0
    day_tau: dict[str, float] = {}
    order = scored.sort_values(["scored_at", "post_id"], kind="stable")
    rescore = (
        (order["trigger"] != "creation").to_numpy()
        if spare is not None
        else np.zeros(len(order), bool)
    )
    for pid, at, day, student, heavy, again in zip(
        order["post_id"].to_numpy(),
        order["scored_at"],
        order["day"].to_numpy(),
        order["student"].to_numpy(),
        order[verdict].to_numpy(),
        rescore,
    ):
        if pid in removed:
            continue
        scored_n += 1
        if student < tau:
            if not again or student < spare[0]:
                continue
            extra.setdefault(day, []).append(student)
            if day not in extra_tau:
                extra_tau[day] = _spare_tau(extra, calls, extra_calls, day, spare)
            if student < extra_tau[day] or calls.get(day, 0) >= int(spare[1]):
                continue
            calls[day] = calls.get(day, 0) + 1
            extra_calls[day] = extra_calls.get(day, 0) + 1
            if heavy >= threshold:
                removed[int(pid)] = at
            continue
        t = tau
        if budget is not None:
            candidates.setdefault(day, []).append(student)
            if day not in day_tau:
                day_tau[day] = _budget_tau(candidates, day, budget, tau)
            t = day_tau[day]
            if student < t or calls.get(day, 0) >= int(budget):
                continue
        calls[day] = calls.get(day, 0) + 1
        if heavy >= threshold:
            removed[int(pid)] = at
    return Outcome(removed, calls, scored_n)


def _spare_tau(
    extra: dict[str, list[float]],
    calls: dict[str, int],
    extra_calls: dict[str, int],
    day: str,
    spare: tuple[float, float],
) -> float:
    """The spare path's threshold of ``day`` (see :func:`run_schedule`)."""
    earlier = sorted(d for d in extra if d < day)
    if not earlier:
        return math.inf
    prev = earlier[-1]
    k = int(spare[1]) - (calls.get(prev, 0) - extra_calls.get(prev, 0))
    if k <= 0:
        return math.inf
    scores = sorted(extra[prev], reverse=True)
    return scores[k - 1] if len(scores) >= k else spare[0]


def _budget_tau(candidates: dict[str, list[float]], day: str, budget: float, tau: float) -> float:
    """The N-th highest student score among the previous day's candidates (tau if none)."""
    earlier = sorted(d for d in candidates if d < day)
    if not earlier:
        return tau
    prev = sorted(candidates[earlier[-1]], reverse=True)
    n = int(budget)
    return max(tau, prev[n - 1]) if len(prev) >= n >= 1 else tau


# -- grading ----------------------------------------------------------------------------------
def prevented(
    outcome: Outcome, views: pd.DataFrame, harmful: pd.Series, posts: pd.DataFrame
) -> dict:
    """Share of the test posts' harmful views that come after their removal."""
    v = views[views["post_id"].isin(set(posts["post_id"]))]
    v = v.assign(harmful=v["post_id"].map(harmful).fillna(False).astype(bool))
    rem = v["post_id"].map(pd.Series(outcome.removed_at, dtype="datetime64[ns, UTC]"))
    after = rem.notna() & (v["ts"] > rem)
    total = int(v["harmful"].sum())
    hit = int((after & v["harmful"]).sum())
    created = v["post_id"].map(posts.set_index("post_id")["created_at"].dt.strftime("%Y-%m-%d"))
    by_day = (
        pd.DataFrame({"day": created, "hit": after & v["harmful"], "harm": v["harmful"]})
        .groupby("day")[["hit", "harm"]]
        .sum()
    )
    removed_ids = set(outcome.removed_at)
    benign_removed = sum(1 for p in removed_ids if not harmful.get(p, False))
    days = sorted(posts["created_at"].dt.strftime("%Y-%m-%d").unique())
    calls = [outcome.heavy_calls.get(d, 0) for d in days]
    total_calls = sum(outcome.heavy_calls.values())  # a post's last moments may fall after its day
    return {
        "harmful_views_prevented_share": hit / total if total else float("nan"),
        "harmful_views_prevented": hit,
        "harmful_views_total": total,
        "posts_removed": len(removed_ids),
        "benign_posts_removed": benign_removed,
        "heavy_calls_per_day": total_calls / max(len(days), 1),
        "heavy_calls": total_calls,
        "heavy_calls_by_day": dict(zip(days, calls)),
        # by the post's creation day: the spread of the share over the test days
        "prevented_share_by_day": {
            d: round(float(r["hit"] / r["harm"]), 4) if r["harm"] else None
            for d, r in by_day.iterrows()
        },
        "moments_scored": outcome.moments_scored,
    }


def missed(
    scored: pd.DataFrame,
    outcome: Outcome,
    views: pd.DataFrame,
    harmful: pd.Series,
    posts: pd.DataFrame,
    tau: float,
) -> dict:
    """Where a schedule's missed harmful views are: on harmful posts removed (views before the
    removal), routed to the heavy model but never removed, or never routed (student < tau at
    every scored moment)."""
    is_harmful = scored["post_id"].map(harmful).fillna(False).astype(bool)
    best = scored[is_harmful].groupby("post_id")["student"].max()
    v = views[views["post_id"].isin(set(best.index))]
    rem = v["post_id"].map(pd.Series(outcome.removed_at, dtype="datetime64[ns, UTC]"))
    miss = v[~(rem.notna() & (v["ts"] > rem))].groupby("post_id").size()
    kind = pd.Series("never routed", index=best.index)
    kind[best >= tau] = "routed, not removed"
    kind[kind.index.isin(list(outcome.removed_at))] = "removed"
    out = {}
    for name in ("removed", "routed, not removed", "never routed"):
        ids = kind.index[kind == name]
        out[name] = {
            "posts": len(ids),
            "missed_harmful_views": int(miss.reindex(ids).fillna(0).sum()),
        }
    return out


# -- one world --------------------------------------------------------------------------------
def replay_world(
    model_id: str | None = None,
    triggers: Triggers | None = None,
    budget: str | None = "fixed",
    exact: bool = False,
    also_ages: tuple[float, ...] = (),
    verdict: str = "heavy",
    head_history: bool = False,
    spare_floor: float | None = None,
    head_fit_on: str = head_mod.DEFAULT_FIT_ON,
    outcomes: dict | None = None,
) -> dict:
    """Both schedules on the current world's test days (``budget``: None, ``fixed`` or a number;
    ``verdict``: ``heavy``, the heavy model's probability, or ``head``, the re-score head of
    :mod:`training.rescore_head`, fitted on the training days when the model has none saved;
    ``head_history``: a head that also reads the reporters' and the creator's label history,
    the saved one if it does, else fitted here and not saved; ``head_fit_on``: the head's
    training moments (:func:`training.rescore_head.fit`; not the saved head's: fitted here, not
    saved); ``spare_floor``: the triggered
    schedule spends the heavy calls it leaves unused (out of the fixed schedule's) on re-score
    moments with student >= spare_floor x tau, :func:`run_schedule`; ``outcomes``: a dict that
    :func:`compare` fills with the schedules' moments and outcomes, for
    ``sim.rescore_service_harness``)."""
    bundle = registry.load(model_id)
    meta = bundle["meta"]
    days = [str(d) for d in meta["splits"]["test"]]
    truth = sim_truth.posts(paths().raw, days)
    if truth is None:
        raise UserError(
            f"no simulator truth under {paths().raw}: the replay needs a simulated world."
        )
    harmful = truth.set_index("post_id")["is_harmful"].astype(bool)
    posts, created = read_posts()
    all_posts = posts
    posts = posts[posts["created_at"].dt.strftime("%Y-%m-%d").isin(days)].copy()
    events = read_events(days)
    cfg = from_dict(meta["config"])
    tau, threshold = bundle["cascade_tau"], bundle["thresholds"]["multitask"]["threshold"]
    log.info("replay: %d test posts on %s, %d events", len(posts), days, len(events))
    emb = Embeddings(posts, bundle)
    head = known = None
    if verdict == "head":
        head = head_mod.load(bundle["model_id"])
        wanted = (head_history, head_fit_on)
        if head is None or _head_kind(head) != wanted:
            # the default head is saved when the model has none; another kind is not
            save = head is None and wanted == (False, head_mod.DEFAULT_FIT_ON)
            head = head_mod.fit_registered(
                bundle["model_id"], save=save, history=head_history, fit_on=head_fit_on
            )
        threshold = head.remove_at
        if getattr(head, "history", False):  # heads saved before it existed: False
            known = read_history(all_posts)

    route_at = tau if spare_floor is None else min(tau, spare_floor * tau)

    def scorer(moments: pd.DataFrame) -> pd.DataFrame:
        frame = score_moments(
            moments, posts, bundle, emb, events if exact else None, created, route_at
        )
        if head is not None:
            routed = frame["student"].to_numpy() >= route_at
            frame["head"] = 0.0
            part = frame[routed] if known is None else known.add(frame[routed])
            frame.loc[routed, "head"] = head.verdict(part)
        return frame

    result = compare(
        posts,
        events,
        harmful,
        scorer,
        tau,
        threshold,
        cfg.score_offsets_hours,
        triggers or Triggers(),
        budget,
        also_ages,
        verdict,
        None if spare_floor is None else route_at,
        outcomes,
    )
    features = "exact counters" if exact else "feast point-in-time"
    out = {"model_id": bundle["model_id"], "test_days": days, "features": features}
    if head is not None:
        out["head"] = head.info
    return out | {"verdict": verdict} | result


def _head_kind(head) -> tuple[bool, str]:
    """(reads the label history, training moments) of a head (heads saved before fit_on existed
    were fitted on evidence moments)."""
    return getattr(head, "history", False), head.info.get("fit_on", "evidence")


def compare(
    posts: pd.DataFrame,
    events: pd.DataFrame,
    harmful: pd.Series,
    scorer,
    tau: float,
    threshold: float,
    offsets_hours,
    triggers: Triggers,
    budget: str | float | None = "fixed",
    also_ages: tuple[float, ...] = (),
    verdict: str = "heavy",
    spare_at: float | None = None,
    outcomes: dict | None = None,
) -> dict:
    """Both schedules on ``posts`` (post_id, created_at) and their ``events`` (post_id, ts,
    ts_ms, action, text); ``scorer(moments)`` adds ``student``, ``heavy`` (and the ``verdict``
    column the removal reads, if another) and ``day`` to moments (post_id, scored_at, trigger);
    ``harmful``: post_id -> bool (the truth)."""
    data_end = max(events["ts"].max(), posts["created_at"].max())
    views = events[events["action"] == "view"][["post_id", "ts"]]
    fixed = scorer(fixed_moments(posts, offsets_hours, data_end))
    trig = triggered_moments(posts, events, triggers, data_end)
    if also_ages:  # a hybrid: the triggers plus some fixed ages
        trig = pd.concat([trig, fixed_moments(posts, also_ages, data_end)], ignore_index=True)
    trig_scored = scorer(trig)
    a = prevented(run_schedule(fixed, tau, threshold, verdict=verdict), views, harmful, posts)
    spare = None if spare_at is None else (spare_at, a["heavy_calls_per_day"])
    trig_outcome = run_schedule(trig_scored, tau, threshold, verdict=verdict, spare=spare)
    b = prevented(trig_outcome, views, harmful, posts)
    b["missed_by_kind"] = missed(trig_scored, trig_outcome, views, harmful, posts, tau)
    if outcomes is not None:  # the triggered schedule as replayed, for a harness to compare
        outcomes.update(triggered=trig_outcome, triggered_scored=trig_scored, spare=spare)
    result = {
        "posts": len(posts),
        "harmful_posts": int(harmful.reindex(posts["post_id"]).fillna(False).sum()),
        "tau": tau,
        "threshold": threshold,
        "fixed": a,
        "triggered": b,
        "triggers_by_reason": trig["trigger"]
        .str.split("+")
        .explode()
        .str.replace(r"_\d+$", "", regex=True)
        .value_counts()
        .to_dict(),
    }
    result["triggered_final"] = b
    if spare is not None:
        result["spare"] = {"route_at": spare_at, "calls_per_day": spare[1]}
    if budget is not None:
        n = a["heavy_calls_per_day"] if budget == "fixed" else float(budget)
        result["heavy_budget_per_day"] = n
        # the budget acts only when the triggered schedule needs more heavy calls than it allows
        if b["heavy_calls_per_day"] > n:
            result["triggered_final"] = result["triggered_budget"] = prevented(
                run_schedule(trig_scored, tau, threshold, max(n, 1.0), verdict),
                views,
                harmful,
                posts,
            )
    return result


def summary(results: list[dict]) -> dict:
    out = {}
    for key in ("fixed", "triggered", "triggered_budget", "triggered_final"):
        share = [r[key]["harmful_views_prevented_share"] for r in results if key in r]
        calls = [r[key]["heavy_calls_per_day"] for r in results if key in r]
        if share:
            out[key] = {
                "prevented_mean": float(np.mean(share)),
                "prevented_min": float(np.min(share)),
                "prevented_max": float(np.max(share)),
                "heavy_calls_per_day_mean": float(np.mean(calls)),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m sim.rescore_replay", description=__doc__)
    parser.add_argument("--homes", nargs="+", default=None, help="VIGIL_HOME of each world")
    parser.add_argument("--seeds", nargs="+", default=None, help="labels of the worlds")
    parser.add_argument("--model", default=None, help="model id (default: each world's champion)")
    parser.add_argument("--heavy-budget", default="fixed", help="N a day, 'fixed' or 'none'")
    parser.add_argument("--debounce-min", type=float, default=10.0)
    parser.add_argument(
        "--min-views-power", type=int, default=4, help="views triggers from 2^k (the stream's 4)"
    )
    parser.add_argument(
        "--also-ages",
        default="",
        help="fixed ages in hours also scored by the triggered schedule, e.g. 24 (default none)",
    )
    parser.add_argument(
        "--features",
        choices=("pit", "exact"),
        default="pit",
        help="Feast point-in-time (hourly post snapshots) or exact counters as of each moment",
    )
    parser.add_argument(
        "--verdict",
        choices=("heavy", "head"),
        default="heavy",
        help="removal verdict at routed moments: the heavy model's probability, or the re-score "
        "head (training.rescore_head; fitted on the training days if the model has none)",
    )
    parser.add_argument(
        "--head-history",
        action="store_true",
        help="with --verdict head: a head that also reads the reporters' reputation and the "
        "creator's labeled posts (point in time; fitted here, not saved, unless the saved one does)",
    )
    parser.add_argument(
        "--head-fit-on",
        choices=head_mod.FIT_ON,
        default=head_mod.DEFAULT_FIT_ON,
        help="with --verdict head: the head's training moments (training.rescore_head.fit); "
        "another than the saved head's: fitted here, not saved",
    )
    parser.add_argument(
        "--spare-floor",
        type=float,
        default=None,
        help="the triggered schedule spends the heavy calls it leaves unused (out of the fixed "
        "schedule's a day) on re-score moments with student >= this x tau (default: off)",
    )
    parser.add_argument("--out", default=None, help="write the JSON here too")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    homes = args.homes or [os.environ.get("VIGIL_HOME", "data")]
    labels = args.seeds or [str(i) for i in range(len(homes))]
    budget = None if args.heavy_budget == "none" else args.heavy_budget
    results = []
    try:
        for label, home in zip(labels, homes):
            os.environ["VIGIL_HOME"] = home
            r = replay_world(
                args.model,
                Triggers(
                    min_views_power=args.min_views_power,
                    debounce_ms=int(args.debounce_min * 60_000),
                ),
                budget,
                exact=args.features == "exact",
                also_ages=tuple(float(h) for h in args.also_ages.split(",") if h.strip()),
                verdict=args.verdict,
                head_history=args.head_history,
                spare_floor=args.spare_floor,
                head_fit_on=args.head_fit_on,
            )
            r["world"] = label
            results.append(r)
            log.info(
                "world %s: fixed %.3f, triggered %.3f",
                label,
                r["fixed"]["harmful_views_prevented_share"],
                r["triggered"]["harmful_views_prevented_share"],
            )
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    report = {"worlds": results, "summary": summary(results)}
    write_json(report, args.out)
    return 0


def write_json(report: dict, out: str | None = None) -> None:
    """``report`` as indented JSON on stdout, and into the file ``out`` too if given (the
    replay's and ``sim.rescore_service_harness``'s output)."""
    text = json.dumps(report, indent=2, default=json_default)
    if out:
        from pathlib import Path

        Path(out).write_text(text)
    print(text)


def json_default(value):
    """JSON for what ``json`` cannot write: numpy numbers as numbers, anything else as text."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
