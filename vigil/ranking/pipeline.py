"""The steps the ``vigil_ranking`` (daily) and ``vigil_trends`` (hourly) DAGs call, one per task.

``vigil_ranking`` for day D ranks as of D 00:00 UTC with the lake's data before then:

- :func:`fit_topics`: the topic model fitted on the posts created before D, saved as the next
  ``models/topics/vNNNN``; a version fitted on exactly those posts with the same config is
  reused, so a re-run adds no version; every lake post's topic weights go to
  ``lake/post_topics`` (:mod:`vigil.ranking.feature_tables`), the next marts build's source;
- :func:`train_ranker`: the ranker on the views from the lake's second day to D, saved to
  ``models/ranker/dt=D/`` (``model.joblib``, ``meta.json``);
- :func:`rank_timelines`: every user's top 10 at D through the bulk path
  (:func:`vigil.ranking.batch.rank_users`, the champion's harm scores joined when there is a
  champion: :mod:`vigil.ranking.harm`), written to ``ranking/home/dt=D/timelines.parquet``
  (one row per user and slot) with ``meta.json`` (counts, versions);
- :func:`gate_timelines`: the ``ranking_home`` GX gate on that file.

``vigil_trends`` at hour H (posts created before H): :func:`trends` runs the streaming trend
detector, writes the trends live at H and every user's Explore page (the live trends ranked for
the user) to ``ranking/trends/dt=D/hour=HH/{trends,explore}.parquet``; :func:`gate_trends` runs
the ``ranking_trends`` gate on them.

Every step is idempotent: inputs are the lake before a fixed time, training is seeded, outputs
are rewritten whole (by rename) at paths keyed by the day or hour, and the metadata holds no
wall-clock time, so a retry or a re-run writes the same bytes of Parquet.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from vigil import config
from vigil.errors import UserError
from vigil.ranking import data, feature_tables, topics
from vigil.ranking.data import DAY, HOUR

log = logging.getLogger(__name__)

K = 10


# --------------------------------------------------------------------------------------------
# times and places
# --------------------------------------------------------------------------------------------


def day_ms(day: str | date) -> int:
    """D 00:00 UTC in ms since the epoch."""
    d = date.fromisoformat(str(day)[:10])
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def hour_ms(at: str | datetime) -> int:
    """``at`` (ISO-8601, UTC when naive) truncated to the hour, in ms."""
    when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000) // HOUR * HOUR


def _ts(ms) -> pd.Series | pd.Timestamp:
    """UTC timestamps in microseconds (Parquet TIMESTAMPTZ, comparable with the lake's)."""
    if np.ndim(ms) == 0:
        return pd.Timestamp(int(ms), unit="ms", tz="UTC").as_unit("us")
    return pd.Series(pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True)).astype(
        "datetime64[us, UTC]"
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def home_dir(day: str | date) -> Path:
    return config.paths().home / "ranking" / "home" / f"dt={str(day)[:10]}"


def ranker_dir(day: str | date) -> Path:
    return config.paths().models / "ranker" / f"dt={str(day)[:10]}"


def trends_dir(t: int) -> Path:
    when = datetime.fromtimestamp(t / 1000, tz=UTC)
    return (config.paths().home / "ranking" / "trends" / f"dt={when.date().isoformat()}"
            / f"hour={when.hour:02d}")  # fmt: skip


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _write_json(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# vigil_ranking
# --------------------------------------------------------------------------------------------


def _snapshot(view: data.LakeView, t: int) -> dict:
    return {"posts": int((view.posts["created_ms"] < t).sum()), "before_ms": int(t)}


def _topic_model(view: data.LakeView, t: int) -> topics.TopicModel:
    model = topics.find(_snapshot(view, t))
    if model is None:
        raise UserError(f"no topic model fitted on the posts before {_iso(t)}: run the "
                        "fit_topics task (vigil_ranking) for that day first.")  # fmt: skip
    return model


def _context(view: data.LakeView, model: topics.TopicModel):
    from vigil.ranking import harm
    from vigil.ranking.features import FeatureContext

    ctx = FeatureContext(view, model.transform(view.posts["text"]))
    harm.attach(ctx)
    return ctx


def fit_topics(day: str) -> dict:
    """The topic model version for ``day``: reused if one was fitted on the same posts."""
    view = data.load()
    t = day_ms(day)
    snap = _snapshot(view, t)
    model = topics.find(snap)
    reused = model is not None
    if model is None:
        before = view.posts[view.posts["created_ms"] < t]
        model = topics.fit(before["text"])
        topics.save(model, snap)
    log.info("topics for %s: %s (%s, %d posts)", day, model.meta["version"],
             "reused" if reused else "fitted", snap["posts"])  # fmt: skip
    # every lake post's distribution, the dbt source of the ranking feature marts
    feature_tables.write_post_topics(
        view.posts["post_id"].to_numpy(), model.transform(view.posts["text"]), model.meta["version"]
    )
    return {"day": str(day)[:10], "version": model.meta["version"], "reused": reused,
            "posts": snap["posts"], "topics": model.n_topics}  # fmt: skip


def train_ranker(day: str) -> dict:
    """The ranker on the views from the lake's second day to ``day``; ``models/ranker/dt=D/``."""
    import joblib

    from vigil.ranking import rank

    view = data.load()
    t = day_ms(day)
    lo = view.start_ms + DAY
    if t - lo < 6 * HOUR:
        raise UserError(f"{day}: the lake starts {_iso(view.start_ms)}; the ranker trains on the "
                        "views from its second day on: rank a later day.")  # fmt: skip
    model = _topic_model(view, t)
    ctx = _context(view, model)
    cfg = rank.RankConfig()
    ranker = rank.train(ctx, lo, t, cfg=cfg)
    out = ranker_dir(day)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".model.joblib.{os.getpid()}.tmp"
    joblib.dump(ranker, tmp)
    os.replace(tmp, out / "model.joblib")
    meta = {"day": str(day)[:10], "topics_version": model.meta["version"],
            "train_from": _iso(lo), "train_to": _iso(t), "features": list(ranker.feature_names_used),
            "config": asdict(cfg)}  # fmt: skip
    _write_json(meta, out / "meta.json")
    return {**meta, "path": str(out)}


def _timeline_frame(ctx, ranker, users: np.ndarray, top: np.ndarray, t: int,
                    version: str) -> pd.DataFrame:  # fmt: skip
    """One row per (user, slot) of the ranked top: the score and harm figures it was ranked by."""
    from vigil.ranking import harm, rank
    from vigil.ranking.features import FEATURES, build

    ui, slot = np.nonzero(top >= 0)
    u, rows = users[ui], top[ui, slot]
    X = build(ctx, u, rows, np.full(len(rows), t))
    feature_harm = X[:, FEATURES.index("harm_prob")].astype(np.float64)
    champ = ctx.champion.at(rows, t) if ctx.champion is not None else np.full(len(rows), np.nan)
    return pd.DataFrame({
        "user_id": u.astype(np.int64),
        "rank": (slot + 1).astype(np.int32),
        "post_id": ctx.view.posts["post_id"].to_numpy()[rows].astype(np.int64),
        "author_id": ctx.author[rows].astype(np.int64),
        "topic": ctx.main_topic[rows].astype(np.int32),
        "followed": X[:, FEATURES.index("follows")] > 0,
        "score": rank.predict(ranker, X).astype(np.float64),
        "harm_prob": feature_harm,
        "champion_harm": pd.array(champ, dtype="Float64"),  # NaN (no champion score) -> null
        "rerank_harm": np.asarray(harm.rerank_harm(ctx, rows, t, feature_harm), dtype=np.float64),
        "post_created_at": _ts(ctx.created[rows]),
        "ranked_at": _ts(t),
        "topics_version": version,
    })  # fmt: skip


def rank_timelines(day: str, workers: int = 1) -> dict:
    """Every user's top 10 at ``day`` 00:00 UTC: ``ranking/home/dt=D/timelines.parquet``."""
    import joblib

    from vigil.ranking import batch

    t0 = time.perf_counter()
    view = data.load()
    t = day_ms(day)
    model = _topic_model(view, t)
    f = ranker_dir(day) / "model.joblib"
    if not f.is_file():
        raise UserError(f"no ranker for {day} ({f}): run the train_ranker task first.")
    ranker = joblib.load(f)
    ctx = _context(view, model)
    users = np.sort(view.users["user_id"].unique()).astype(np.int64)
    r = batch.rank_users(ctx, ranker, users, t, k=K, workers=workers)
    frame = _timeline_frame(ctx, ranker, users, r.top, t, model.meta["version"])
    out = home_dir(day)
    _write_parquet(frame, out / "timelines.parquet")
    filled = (r.top >= 0).sum(axis=1)
    meta = {
        "day": str(day)[:10], "ranked_at": _iso(t), "topics_version": model.meta["version"],
        "ranker": str(f), "users": len(users), "users_with_10": int((filled == K).sum()),
        "users_empty": int((filled == 0).sum()), "slots": len(frame),
        "candidates_per_user": round(r.candidates / max(len(users), 1), 1),
        "champion": ctx.champion.model_id if ctx.champion is not None else None,
        "slots_with_champion_score": int(frame["champion_harm"].notna().sum()),
    }  # fmt: skip
    _write_json(meta, out / "meta.json")
    log.info("timelines %s: %d users (%d with 10 posts, %d empty), %d slots, %.0f candidates "
             "per user, champion %s, in %.1fs -> %s", meta["day"], meta["users"],
             meta["users_with_10"], meta["users_empty"], meta["slots"],
             meta["candidates_per_user"], meta["champion"], time.perf_counter() - t0, out)  # fmt: skip
    return {**meta, "path": str(out), "seconds": r.seconds}


def gate_timelines(day: str) -> dict:
    from vigil.quality.gate import run_gate

    r = run_gate("ranking_home", run_date=str(day)[:10], path=home_dir(day))
    return {"success": r.success, "checks": len(r.results), "report": r.report_path}


# --------------------------------------------------------------------------------------------
# vigil_trends
# --------------------------------------------------------------------------------------------


def _latest_topic_model(t: int) -> topics.TopicModel:
    """The newest topic model version fitted on posts before ``t`` (no look-ahead)."""
    import joblib

    base = config.paths().models / "topics"
    for v in sorted(base.glob("v[0-9][0-9][0-9][0-9]"), reverse=True):
        meta = json.loads((v / "meta.json").read_text())
        if int((meta.get("snapshot") or {}).get("before_ms", t + 1)) <= t:
            return topics.TopicModel(joblib.load(v / "model.joblib"), meta)
    raise UserError(f"no topic model fitted before {_iso(t)} under {base}: run vigil_ranking "
                    "(fit_topics) for an earlier day first.")  # fmt: skip


def trends(at: str) -> dict:
    """Trends live at hour ``at`` (posts before it) and each user's Explore page."""
    from vigil.ranking import trends as detector

    t = hour_ms(at)
    view = data.load()
    model = _latest_topic_model(t)
    ctx = _context(view, model)
    m = ctx.created < t
    found = detector.detect(ctx.created[m], ctx.topic_vec[m],
                            view.posts["region"].to_numpy()[m], view.start_ms)  # fmt: skip
    live = [tr for tr in found if tr.detected_ms <= t and t - tr.last_ms <= HOUR]
    words = model.meta["top_words"]
    trend_rows = pd.DataFrame({
        "trend_id": pd.array([tr.trend_id for tr in live], dtype="int64"),
        "topic": pd.array([tr.topic for tr in live], dtype="int32"),
        "topics": [",".join(str(c) for c in sorted(tr.topics)) for tr in live],
        "region": [tr.region for tr in live],
        "words": [" ".join(words[tr.topic][:3]) for tr in live],
        "posts": pd.array([tr.posts for tr in live], dtype="int64"),
        "detected_at": _ts([tr.detected_ms for tr in live]),
        "last_at": _ts([tr.last_ms for tr in live]),
        "computed_at": _ts(t),
        "topics_version": model.meta["version"],
    })  # fmt: skip
    snap = ctx.snapshot(int((t - ctx.origin) // DAY * DAY + ctx.origin))
    region = dict(zip(view.users["user_id"], view.users["region"], strict=True))
    pages = []
    for u in sorted(region):
        for n, tr in enumerate(detector.explore(live, t, snap.interest[u], str(region[u])), 1):
            pages.append((u, n, tr.trend_id))
    explore = pd.DataFrame(pages, columns=["user_id", "rank", "trend_id"]).astype(
        {"user_id": "int64", "rank": "int32", "trend_id": "int64"}
    )
    explore["computed_at"] = _ts(t)
    out = trends_dir(t)
    _write_parquet(trend_rows, out / "trends.parquet")
    _write_parquet(explore, out / "explore.parquet")
    meta = {"at": _iso(t), "topics_version": model.meta["version"], "trends_so_far": len(found),
            "live": len(live), "explore_rows": len(explore),
            "users_with_trends": int(explore["user_id"].nunique())}  # fmt: skip
    _write_json(meta, out / "meta.json")
    log.info("trends at %s: %d live of %d detected so far, %d explore rows for %d users -> %s",
             meta["at"], meta["live"], meta["trends_so_far"], meta["explore_rows"],
             meta["users_with_trends"], out)  # fmt: skip
    return {**meta, "path": str(out)}


def gate_trends(at: str) -> dict:
    from vigil.quality.gate import run_gate

    t = hour_ms(at)
    r = run_gate("ranking_trends", run_date=_iso(t)[:10], path=trends_dir(t))
    return {"success": r.success, "checks": len(r.results), "report": r.report_path}


# --------------------------------------------------------------------------------------------
# the ranking report
# --------------------------------------------------------------------------------------------


def report_dir(day: str | date) -> Path:
    return config.paths().home / "ranking" / "report" / f"dt={str(day)[:10]}"


def report(day: str) -> dict:
    """``ranking/report/dt=D/``: replay NDCG by ranker with the topic ablation, and the shown
    timelines' diversity and health (:mod:`vigil.ranking.report`)."""
    from vigil.ranking import report as ranking_report

    f = home_dir(day) / "timelines.parquet"
    if not f.is_file():
        raise UserError(f"no timelines for {day} ({f}): run the rank_timelines task first.")
    view = data.load()
    t = day_ms(day)
    ctx = _context(view, _topic_model(view, t))
    rep = ranking_report.write(ctx, pd.read_parquet(f), t, str(day)[:10], report_dir(day))
    return {"day": str(day)[:10], "path": str(report_dir(day)), "sessions": rep["replay"]["sessions"],
            "ndcg": rep["replay"]["ndcg"]}  # fmt: skip
