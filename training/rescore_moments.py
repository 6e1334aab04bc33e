"""Re-score moments: when a post is scored, and what the cascade sees then (issue 22).

Two schedules of scoring moments for a set of posts:

- **fixed** (the daily batch): creation and the model's ``score_offsets_hours`` ages;
- **triggered**: creation, then each re-score request :class:`vigil.stream.triggers.Triggers`
  emits when the lake's events of the post are fed to it in time order, exactly as the stream
  processor feeds it (views, reports, replies; a reply is negative by the stream's disgust match),
  with its debounce; a merged request counts at its due time.

At each moment the features are Feast's point-in-time features (:func:`training.datasets.
fetch_features`); with the lake's events given, the post's ``post_behavior`` features are those
``vigil stream --post-counters`` serves at the moment itself (:func:`exact_counters`, through
:mod:`vigil.stream.post_counters`). The student scores every moment; the heavy model's calibrated
probability is computed where the student routes (>= tau). Used by the re-score head
(:mod:`training.rescore_head`, fitted on training days) and by the replay that grades schedules
on the simulator's truth (``sim.rescore_replay``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training import cascade, datasets
from training import text as text_encoder
from training.config import from_dict
from vigil.config import paths
from vigil.errors import UserError
from vigil.stream.post_counters import FEATURES as POST_FEATURES
from vigil.stream.post_counters import PostCounters, features_at
from vigil.stream.rescore import is_negative_reply
from vigil.stream.triggers import Triggers

COUNTED = ("view", "report", "reply")
EXACT_ACTIONS = ("view", "like", "share", "reply", "dislike", "report", "block")


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


def read_events(days: list[str]) -> pd.DataFrame:
    """The lake's post events (views, reactions, reports, replies) from the first of ``days`` on:
    post_id, action, text, ts, ts_ms, negative (a reply matching the stream's disgust pattern)."""
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


def read_posts() -> tuple[pd.DataFrame, dict[int, int]]:
    """The posts mart (post_id, author_id, created_at UTC, text) and post_id -> creation (ms), as
    the stream learns it from each post's creation event."""
    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    posts["text"] = posts["text"].fillna("")
    ms = (posts["created_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    created = dict(zip(posts["post_id"].astype("int64").tolist(), ms.astype("int64").tolist()))
    return posts, created


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


def score_moments(
    moments: pd.DataFrame,
    posts: pd.DataFrame,
    bundle: dict,
    emb: dict,
    events: pd.DataFrame | None = None,
    created: dict[int, int] | None = None,
    route_at: float | None = None,
) -> pd.DataFrame:
    """Student score and the heavy model's calibrated probability of every moment, on Feast's
    point-in-time features as of the moment (the heavy score is computed only where routed, 0
    elsewhere: student >= ``route_at``, default the cascade's tau). With ``events``, the post's features are those the stream's exact counters give
    at the moment itself (:func:`exact_counters`) instead of the hourly snapshot's."""
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
    tau = bundle["cascade_tau"] if route_at is None else min(route_at, bundle["cascade_tau"])
    routed = frame["student"].to_numpy() >= tau
    frame["heavy"] = 0.0
    if routed.any():
        part = frame[routed]
        emb.fill(part["post_id"])
        vectors = np.stack([emb[p] for p in part["post_id"]])
        raw = bundle["multitask"].predict(part, vectors)
        frame.loc[routed, "heavy"] = bundle["calibrators"]["multitask"].transform(raw)
    frame["day"] = frame["scored_at"].dt.strftime("%Y-%m-%d")
    return frame


# -- the post's reporters and creator, as the moderators' labels judged them so far -----------
HISTORY = ("reporter_reputation", "creator_harmful_labels", "creator_benign_labels")


def read_reports() -> pd.DataFrame:
    """Every report in the lake: user_id (the reporter), post_id, ts_ms."""
    import pyarrow.dataset as ds

    root = paths().lake / "events"
    if not root.is_dir():
        raise UserError(f"no lake events under {root}: build a world first (vigil pipeline).")
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    table = dataset.to_table(
        columns=["event_ts", "user_id", "post_id"], filter=ds.field("action") == "report"
    )
    rep = table.to_pandas()
    rep = rep[rep["post_id"].notna() & rep["user_id"].notna()]
    ts = pd.to_datetime(rep["event_ts"], utc=True)
    return pd.DataFrame(
        {
            "user_id": rep["user_id"].astype("int64").to_numpy(),
            "post_id": rep["post_id"].astype("int64").to_numpy(),
            "ts_ms": ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(),
        }
    )


def _ms(values) -> np.ndarray:
    ts = pd.to_datetime(pd.Series(values), utc=True)
    return ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(np.int64)


class _Record:
    """Judgements in time order: (known_ms, harmful) with a key each; ``at(t, skip)`` counts
    those known at or before ``t`` (harmful, all), leaving out the one keyed ``skip``."""

    def __init__(self, rows: list[tuple[int, bool, int]]) -> None:
        rows.sort()
        self.ms = np.array([r[0] for r in rows], dtype=np.int64)
        self.harm = np.cumsum([int(r[1]) for r in rows])
        self.key = {r[2]: (r[0], bool(r[1])) for r in rows}

    def at(self, t: int, skip: int) -> tuple[int, int]:
        n = int(np.searchsorted(self.ms, t, side="right"))
        harm = int(self.harm[n - 1]) if n else 0
        own = self.key.get(skip)
        if own is not None and own[0] <= t:
            n, harm = n - 1, harm - int(own[1])
        return harm, n


class History:
    """What the platform knows at a moment about the post's reporters and its creator, from the
    moderators' labels (``post_labels``; never the truth), point in time, the post's own label
    left out:

    - ``reporter_reputation``: the mean, over the post's distinct reporters so far (reports at or
      before the moment), of each reporter's upheld share ``(h + 1) / (n + 2)``: ``n`` of the
      reporter's reports on OTHER posts whose label was known at the moment (labeled at or
      before it, and the report made by then), ``h`` of them labeled harmful; 0.5 (no
      information) for a post nobody has reported yet;
    - ``creator_harmful_labels`` / ``creator_benign_labels``: the creator's other posts labeled
      at or before the moment, harmful / benign.

    ``reports``: user_id, post_id, ts_ms (:func:`read_reports`); ``labels``: post_id,
    is_harmful, labeled_at; ``authors``: post_id -> author_id (every post the labels name).
    """

    def __init__(self, reports: pd.DataFrame, labels: pd.DataFrame, authors: dict) -> None:
        lab = labels.drop_duplicates("post_id")
        label = dict(
            zip(
                lab["post_id"].astype("int64").tolist(),
                zip(_ms(lab["labeled_at"]).tolist(), lab["is_harmful"].astype(bool).tolist()),
            )
        )
        first = reports.groupby(["user_id", "post_id"], sort=False)["ts_ms"].min()
        self.reports: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        by_reporter: dict[int, list[tuple[int, bool, int]]] = {}
        for (user, post), ms in first.items():
            user, post, ms = int(user), int(post), int(ms)
            if post in label:
                known, harmful = label[post]
                by_reporter.setdefault(user, []).append((max(known, ms), harmful, post))
        self.reporter = {u: _Record(rows) for u, rows in by_reporter.items()}
        # each post's reporters in order of their first report
        per_post = first.reset_index().sort_values("ts_ms", kind="stable")
        for post, part in per_post.groupby("post_id", sort=False):
            self.reports[int(post)] = (
                part["ts_ms"].to_numpy(np.int64),
                part["user_id"].to_numpy(np.int64),
            )
        by_creator: dict[int, list[tuple[int, bool, int]]] = {}
        for post, (known, harmful) in label.items():
            if post in authors:
                by_creator.setdefault(int(authors[post]), []).append((known, harmful, post))
        self.creator = {a: _Record(rows) for a, rows in by_creator.items()}
        self.authors = authors

    def at(self, post_id: int, at_ms: int) -> dict:
        """The three features of one moment."""
        rep = 0.5
        got = self.reports.get(post_id)
        if got is not None:
            n = int(np.searchsorted(got[0], at_ms, side="right"))
            if n:
                shares = []
                for user in got[1][:n].tolist():
                    record = self.reporter.get(user)
                    h, k = record.at(at_ms, post_id) if record is not None else (0, 0)
                    shares.append((h + 1) / (k + 2))
                rep = float(np.mean(shares))
        record = self.creator.get(self.authors.get(post_id))
        h, k = record.at(at_ms, post_id) if record is not None else (0, 0)
        return {
            "reporter_reputation": rep,
            "creator_harmful_labels": float(h),
            "creator_benign_labels": float(k - h),
        }

    def add(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (post_id, scored_at) with the :data:`HISTORY` columns of each moment."""
        at_ms = (frame["scored_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        values = [self.at(int(p), int(t)) for p, t in zip(frame["post_id"], at_ms)]
        out = frame.copy()
        for name in HISTORY:
            out[name] = np.array([v[name] for v in values], dtype=np.float64)
        return out


def read_history(posts: pd.DataFrame) -> History:
    """:class:`History` from the lake's reports and the ``post_labels`` mart; ``posts``: the
    posts mart (post_id, author_id)."""
    labels = datasets._read_mart("post_labels")
    authors = dict(
        zip(posts["post_id"].astype("int64").tolist(), posts["author_id"].astype("int64").tolist())
    )
    return History(read_reports(), labels, authors)
