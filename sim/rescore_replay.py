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
from training import cascade, datasets, registry
from training import text as text_encoder
from training.config import from_dict
from vigil.config import paths
from vigil.errors import UserError
from vigil.stream.post_counters import FEATURES as POST_FEATURES
from vigil.stream.post_counters import PostCounters, features_at
from vigil.stream.rescore import is_negative_reply
from vigil.stream.triggers import Triggers

log = logging.getLogger(__name__)

COUNTED = ("view", "report", "reply")
EXACT_ACTIONS = ("view", "like", "share", "reply", "dislike", "report", "block")


# -- the two schedules -----------------------------------------------------------------------
def fixed_moments(posts: pd.DataFrame, offsets_hours, data_end: pd.Timestamp) -> pd.DataFrame:
    """(post_id, scored_at, trigger) at each fixed age that falls before the data ends."""
    parts = [
        pd.DataFrame(
            {
                "post_id": posts["post_id"].to_numpy(),
                "scored_at": posts["created_at"] + pd.to_timedelta(float(h), unit="h"),
                "trigger": "creation" if h == 0 else f"age_{h:g}h",
            }
        )
        for h in offsets_hours
    ]
    out = pd.concat(parts, ignore_index=True)
    return out[out["scored_at"] <= data_end].reset_index(drop=True)


def triggered_moments(
    posts: pd.DataFrame, events: pd.DataFrame, triggers: Triggers, data_end: pd.Timestamp
) -> pd.DataFrame:
    """Creation plus the trigger requests of the posts' events (post_id, ts_ms, action, text),
    fed in time order as the stream applies them; merged requests flushed at the end."""
    ev = events[events["post_id"].isin(set(posts["post_id"])) & events["action"].isin(COUNTED)]
    ev = ev.sort_values(["ts_ms", "post_id"], kind="stable")
    rows: list[tuple[int, int, str]] = []
    observe = triggers.observe
    for pid, ts, action, text in zip(
        ev["post_id"].to_numpy(), ev["ts_ms"].to_numpy(), ev["action"], ev["text"]
    ):
        for r in observe(int(pid), action, int(ts), action == "reply" and is_negative_reply(text)):
            rows.append((r.post_id, r.at_ms, r.trigger))
    end_ms = int(data_end.value // 1_000_000)
    for r in triggers.flush(end_ms):
        rows.append((r.post_id, r.at_ms, r.trigger))
    trig = pd.DataFrame(rows, columns=["post_id", "at_ms", "trigger"])
    trig["scored_at"] = pd.to_datetime(trig["at_ms"], unit="ms", utc=True)
    creation = pd.DataFrame(
        {"post_id": posts["post_id"].to_numpy(), "scored_at": posts["created_at"].to_numpy()}
    )
    creation["trigger"] = "creation"
    out = pd.concat([creation, trig[["post_id", "scored_at", "trigger"]]], ignore_index=True)
    out["scored_at"] = pd.to_datetime(out["scored_at"], utc=True)
    return out[out["scored_at"] <= data_end].reset_index(drop=True)


# -- scoring each moment ---------------------------------------------------------------------
def score_moments(
    moments: pd.DataFrame,
    posts: pd.DataFrame,
    bundle: dict,
    emb: dict,
    events: pd.DataFrame | None = None,
    created: dict[int, int] | None = None,
):
    """Student score and the heavy model's calibrated probability of every moment, on Feast's
    point-in-time features as of the moment (the heavy score is used only where routed). With
    ``events`` (``--features exact``), the post's features are those the stream's exact counters
    give at the moment itself (:func:`exact_counters`) instead of the hourly snapshot's."""
    cfg = from_dict(bundle["meta"]["config"])
    frame = moments.merge(posts[["post_id", "author_id", "created_at", "text"]], on="post_id")
    frame = frame.sort_values(["post_id", "scored_at"], kind="stable").reset_index(drop=True)
    frame["example_id"] = np.arange(len(frame), dtype=np.int64)
    frame, _, _ = datasets.fetch_features(frame, cfg.feature_service)
    for col in [*bundle["behavior_columns"], *bundle["creator_columns"]]:
        if col not in frame.columns:
            frame[col] = np.nan
    frame = datasets.add_missing_indicators(
        frame, bundle["behavior_columns"], bundle["creator_columns"]
    )
    frame = frame.sort_values("example_id").reset_index(drop=True)
    if events is not None:
        frame = exact_counters(frame, events, bundle["behavior_columns"], created or {})
    frame["student"] = cascade.student_scores(bundle["student"], frame)
    # only moments the student routes ever read the heavy score: encode and score those alone
    routed = frame["student"].to_numpy() >= bundle["cascade_tau"]
    frame["heavy"] = 0.0
    if routed.any():
        part = frame[routed]
        emb.fill(part["post_id"])
        vectors = np.stack([emb[p] for p in part["post_id"]])
        raw = bundle["multitask"].predict(part, vectors)
        frame.loc[routed, "heavy"] = bundle["calibrators"]["multitask"].transform(raw)
    frame["day"] = frame["scored_at"].dt.strftime("%Y-%m-%d")
    return frame


def exact_counters(
    frame: pd.DataFrame, events: pd.DataFrame, columns: list[str], created: dict[int, int]
) -> pd.DataFrame:
    """The post_behavior features as of each moment, as the stream serves them with
    ``--post-counters``: :func:`vigil.stream.post_counters.features_at` (the platform's own
    computation, not a copy) counts the posts' events (post_id, ts_ms, action, negative) up to each
    moment; ``created``: post_id -> creation time (ms) of every post the mart knows, as the stream
    learns it from the post's creation event."""
    counters = PostCounters()
    for pid, ms in created.items():
        counters.created(pid, ms)
    ev = events.sort_values("ts_ms", kind="stable")
    feed = zip(
        ev["post_id"].tolist(),
        ev["action"].tolist(),
        ev["ts_ms"].tolist(),
        ev["negative"].tolist() if "negative" in ev else [False] * len(ev),
    )
    at_ms = (frame["scored_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    values = features_at(counters, feed, list(zip(frame["post_id"].tolist(), at_ms.tolist())))
    out = frame.copy()
    for col in columns:
        name = col.split("__")[-1]
        if name in POST_FEATURES:
            out[col] = np.array([v[name] for v in values], dtype=np.float64)
    out["has_behavior"] = 1.0
    return out


class Embeddings(dict):
    """post_id -> sentence embedding, encoded on first use (only routed posts need one)."""

    def __init__(self, posts: pd.DataFrame, bundle: dict) -> None:
        super().__init__()
        self.text = dict(zip(posts["post_id"].astype(int), posts["text"]))
        self.batch = from_dict(bundle["meta"]["config"]).encoder_batch_size

    def __missing__(self, post_id):
        return self.fill([post_id])[post_id]

    def fill(self, post_ids) -> Embeddings:
        todo = sorted({int(p) for p in post_ids} - set(self))
        if todo:
            vectors = text_encoder.encode([self.text[p] for p in todo], self.batch)
            self.update(zip(todo, vectors))
        return self


# -- the cascade over a schedule -----------------------------------------------------------
@dataclass
class Outcome:
    removed_at: dict[int, pd.Timestamp]
    heavy_calls: dict[str, int]  # per day
    moments_scored: int


def run_schedule(
    scored: pd.DataFrame, tau: float, threshold: float, budget: float | None = None
) -> Outcome:
    """Moments in time order; a post's moments after its removal are skipped. Routed: student
    >= the day's routing threshold (tau; with a budget, see the module doc) and calls left."""
    removed: dict[int, pd.Timestamp] = {}
    calls: dict[str, int] = {}
    candidates: dict[str, list[float]] = {}
    scored_n = 0
    day_tau: dict[str, float] = {}
    order = scored.sort_values(["scored_at", "post_id"], kind="stable")
    for pid, at, day, student, heavy in zip(
        order["post_id"].to_numpy(),
        order["scored_at"],
        order["day"].to_numpy(),
        order["student"].to_numpy(),
        order["heavy"].to_numpy(),
    ):
        if pid in removed:
            continue
        scored_n += 1
        if student < tau:
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
def read_events(days: list[str]) -> pd.DataFrame:
    """The lake's view / report / reply events from the first test day on."""
    import pyarrow.dataset as ds

    root = paths().lake / "events"
    if not root.is_dir():
        raise UserError(f"no lake events under {root}: build a world first (vigil pipeline).")
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    table = dataset.to_table(
        columns=["event_ts", "action", "post_id", "text"],
        filter=(ds.field("dt") >= min(days)) & ds.field("action").isin(list(EXACT_ACTIONS)),
    )
    ev = table.to_pandas()
    ev = ev[ev["post_id"].notna()].copy()
    ev["post_id"] = ev["post_id"].astype("int64")
    ev["ts"] = pd.to_datetime(ev["event_ts"], utc=True)
    ev["ts_ms"] = (ev["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    ev["negative"] = [
        a == "reply" and is_negative_reply(t) for a, t in zip(ev["action"], ev["text"])
    ]
    return ev.drop(columns=["event_ts"])


def replay_world(
    model_id: str | None = None,
    triggers: Triggers | None = None,
    budget: str | None = "fixed",
    exact: bool = False,
    also_ages: tuple[float, ...] = (),
) -> dict:
    """Both schedules on the current world's test days (``budget``: None, ``fixed`` or a number)."""
    bundle = registry.load(model_id)
    meta = bundle["meta"]
    days = [str(d) for d in meta["splits"]["test"]]
    truth = sim_truth.posts(paths().raw, days)
    if truth is None:
        raise UserError(
            f"no simulator truth under {paths().raw}: the replay needs a simulated world."
        )
    harmful = truth.set_index("post_id")["is_harmful"].astype(bool)
    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    created = dict(
        zip(
            posts["post_id"].astype("int64").tolist(),
            ((posts["created_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
            .astype("int64")
            .tolist(),
        )
    )
    posts = posts[posts["created_at"].dt.strftime("%Y-%m-%d").isin(days)].copy()
    posts["text"] = posts["text"].fillna("")
    events = read_events(days)
    cfg = from_dict(meta["config"])
    tau, threshold = bundle["cascade_tau"], bundle["thresholds"]["multitask"]["threshold"]
    log.info("replay: %d test posts on %s, %d events", len(posts), days, len(events))
    emb = Embeddings(posts, bundle)
    result = compare(
        posts,
        events,
        harmful,
        lambda moments: score_moments(
            moments, posts, bundle, emb, events if exact else None, created
        ),
        tau,
        threshold,
        cfg.score_offsets_hours,
        triggers or Triggers(),
        budget,
        also_ages,
    )
    features = "exact counters" if exact else "feast point-in-time"
    return {"model_id": bundle["model_id"], "test_days": days, "features": features} | result


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
) -> dict:
    """Both schedules on ``posts`` (post_id, created_at) and their ``events`` (post_id, ts,
    ts_ms, action, text); ``scorer(moments)`` adds ``student``, ``heavy`` and ``day`` to moments
    (post_id, scored_at, trigger); ``harmful``: post_id -> bool (the truth)."""
    data_end = max(events["ts"].max(), posts["created_at"].max())
    views = events[events["action"] == "view"][["post_id", "ts"]]
    fixed = scorer(fixed_moments(posts, offsets_hours, data_end))
    trig = triggered_moments(posts, events, triggers, data_end)
    if also_ages:  # a hybrid: the triggers plus some fixed ages
        trig = pd.concat([trig, fixed_moments(posts, also_ages, data_end)], ignore_index=True)
    trig_scored = scorer(trig)
    a = prevented(run_schedule(fixed, tau, threshold), views, harmful, posts)
    trig_outcome = run_schedule(trig_scored, tau, threshold)
    b = prevented(trig_outcome, views, harmful, posts)
    b["missed_by_kind"] = missed(trig_scored, trig_outcome, views, harmful, posts, tau)
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
    if budget is not None:
        n = a["heavy_calls_per_day"] if budget == "fixed" else float(budget)
        result["heavy_budget_per_day"] = n
        # the budget acts only when the triggered schedule needs more heavy calls than it allows
        if b["heavy_calls_per_day"] > n:
            result["triggered_final"] = result["triggered_budget"] = prevented(
                run_schedule(trig_scored, tau, threshold, budget=max(n, 1.0)),
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
    text = json.dumps(report, indent=2, default=_json)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text)
    print(text)
    return 0


def _json(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
