"""The training set: one example per (labeled post, scoring time), features from Feast.

A real system scores a post when it is created (no behavior yet) and re-scores it later (by default
+1 h, +6 h, +24 h). Every example takes its features from Feast's point-in-time retrieval
(``vigil.serving.features.historical_features``, feature service ``moderation_v1``) as of its scoring time,
and its text from the ``posts`` mart. Posts are split by the day they were created: earliest days
train, then validation, then test. Targets that are not features (the post's eventual views and
observed report rate, and the view timelines used by the replay) come from the ``post_behavior``
snapshots, each cut at the end of its own split's window so nothing from a later split leaks in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import TrainConfig
from vigil.config import paths
from vigil.contracts import HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)

KEY_COLUMNS = ("example_id", "post_id", "user_id", "author_id", "event_timestamp")
HARM_COLUMNS = tuple(f"is_{h}" for h in HARM_TYPES)
SPLITS = ("train", "val", "test")


@dataclass
class TrainingSet:
    """Examples (rows) plus the column roles the models need."""

    examples: pd.DataFrame
    behavior_columns: list[str]
    creator_columns: list[str]
    timelines: pd.DataFrame = field(default_factory=pd.DataFrame)  # post_id, event_timestamp, views
    windows: dict[str, list[str]] = field(default_factory=dict)
    # Every post created on the validation days (labeled or not), one row per scoring event, with
    # ``labeled`` and, when labeled, the queue label: the population the score audit samples from.
    population: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def numeric_columns(self) -> list[str]:
        return [*self.behavior_columns, *self.creator_columns, "has_behavior", "has_creator"]

    def split(self, name: str) -> pd.DataFrame:
        return self.examples[self.examples["split"] == name].reset_index(drop=True)


def _read_mart(name: str) -> pd.DataFrame:
    base = paths().features
    for candidate in (base / f"{name}.parquet", base / name):
        if candidate.exists():
            return pd.read_parquet(candidate)
    raise UserError(
        f"feature mart {name} not found under {base}: run `vigil dbt marts` (or `make run`) first."
    )


def _mart_columns(name: str) -> list[str]:
    import pyarrow.parquet as pq

    base = paths().features
    for candidate in (base / f"{name}.parquet", base / name):
        if candidate.is_file():
            return list(pq.read_schema(candidate).names)
        if candidate.is_dir():
            files = sorted(candidate.rglob("*.parquet"))
            if files:
                return list(pq.read_schema(files[0]).names)
    return []


def _utc(series: pd.Series) -> pd.Series:
    s = pd.to_datetime(series, utc=True)
    return s.dt.as_unit("us") if hasattr(s.dt, "as_unit") else s


def split_days(days: list, train_frac: float, val_frac: float) -> dict[str, list]:
    """Consecutive blocks of days: at least one day in each split when there are >= 3 days."""
    days = sorted(days)
    n = len(days)
    if n < 3:
        raise UserError(
            f"only {n} day(s) of labeled posts: a time split needs at least 3; simulate more days."
        )
    n_train = max(1, min(n - 2, round(n * train_frac)))
    n_val = max(1, min(n - n_train - 1, round(n * val_frac)))
    return {
        "train": days[:n_train],
        "val": days[n_train : n_train + n_val],
        "test": days[n_train + n_val :],
    }


def build_examples(posts: pd.DataFrame, offsets_hours, data_end: pd.Timestamp) -> pd.DataFrame:
    """Cross posts with scoring offsets, dropping scoring times after the data ends."""
    rows = []
    for offset in offsets_hours:
        part = posts.copy()
        part["offset_hours"] = float(offset)
        part["scored_at"] = part["created_at"] + pd.to_timedelta(float(offset), unit="h")
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    out = out[out["scored_at"] <= data_end]
    out = out.sort_values(["created_at", "post_id", "offset_hours"]).reset_index(drop=True)
    out["example_id"] = np.arange(len(out), dtype=np.int64)
    return out


def post_targets(behavior: pd.DataFrame, post_window_end: pd.Series) -> pd.DataFrame:
    """Per post: views and report rate at its latest snapshot no later than its window end.

    ``behavior`` has post_id, event_timestamp, views, reports; ``post_window_end`` maps post_id to
    the end of its split's window. report_rate = reports / max(views, 1).
    """
    b = behavior.merge(post_window_end.rename("window_end"), left_on="post_id", right_index=True)
    b = b[b["event_timestamp"] <= b["window_end"]]
    b = b.sort_values(["post_id", "event_timestamp"]).groupby("post_id").tail(1)
    out = pd.DataFrame(index=post_window_end.index)
    out["views_final"] = b.set_index("post_id")["views"].reindex(out.index).fillna(0.0)
    reports = b.set_index("post_id")["reports"].reindex(out.index).fillna(0.0)
    out["report_rate"] = reports / np.maximum(out["views_final"], 1.0)
    return out


def add_missing_indicators(
    frame: pd.DataFrame, behavior_columns: list[str], creator_columns: list[str]
) -> pd.DataFrame:
    """has_behavior / has_creator flags; the raw NaNs stay (models impute 0 inside their pipelines)."""
    frame = frame.copy()
    frame["has_behavior"] = (
        frame[behavior_columns].notna().any(axis=1).astype(np.float32) if behavior_columns else 0.0
    )
    frame["has_creator"] = (
        frame[creator_columns].notna().any(axis=1).astype(np.float32) if creator_columns else 0.0
    )
    return frame


def _default_historical_features() -> Callable[..., pd.DataFrame]:
    try:
        from vigil.serving.features import historical_features
    except ImportError as exc:
        raise UserError(
            f"vigil.serving.features.historical_features is not available ({exc}): build the feature store first."
        ) from None
    return historical_features


def fetch_features(
    examples: pd.DataFrame,
    feature_service: str,
    historical_features: Callable[..., pd.DataFrame] | None = None,
    graph: bool = False,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Point-in-time features for each example; returns (frame, behavior cols, creator cols).

    ``graph`` (``TrainConfig.graph_embeddings``): the author's graph embedding joins the creator
    columns (:mod:`training.graph_features`)."""
    historical_features = historical_features or _default_historical_features()
    entity_df = pd.DataFrame(
        {
            "example_id": examples["example_id"].to_numpy(),
            "post_id": examples["post_id"].astype("int64").to_numpy(),
            "user_id": examples["author_id"].astype("int64").to_numpy(),
            "event_timestamp": _utc(examples["scored_at"]).to_numpy(),
        }
    )
    entity_df["event_timestamp"] = _utc(entity_df["event_timestamp"])
    log.info("feast: point-in-time features for %d examples (%s)", len(entity_df), feature_service)
    feats = historical_features(entity_df, feature_service=feature_service)
    if "example_id" not in feats.columns:  # join back on the entity keys
        feats = entity_df.merge(feats, on=["post_id", "user_id", "event_timestamp"], how="left")
    feats = feats.drop_duplicates("example_id")
    drop = set(KEY_COLUMNS) | {"created", "created_timestamp"}
    feature_cols = [
        c
        for c in feats.columns
        if c not in drop
        and (pd.api.types.is_numeric_dtype(feats[c]) or pd.api.types.is_bool_dtype(feats[c]))
    ]
    behavior_names = set(_mart_columns("post_behavior")) - set(KEY_COLUMNS)
    behavior_cols = [
        c for c in feature_cols if c in behavior_names or c.split("__")[0] == "post_behavior"
    ]
    creator_cols = [c for c in feature_cols if c not in behavior_cols]
    frame = feats[["example_id", *feature_cols]].copy()
    frame[feature_cols] = frame[feature_cols].astype("float64")
    out = examples.merge(frame, on="example_id", how="left")
    if graph:
        from training import graph_features

        out = graph_features.join(out)
        creator_cols = [*creator_cols, *graph_features.COLUMNS]
    log.info(
        "feast: %d feature columns (%d behavior, %d creator/user)",
        len(feature_cols),
        len(behavior_cols),
        len(creator_cols),
    )
    return out, behavior_cols, creator_cols


def build(
    cfg: TrainConfig,
    historical_features: Callable[..., pd.DataFrame] | None = None,
    splits: dict[str, list[str]] | None = None,
    with_population: bool | None = None,
    test_labels: pd.DataFrame | None = None,
) -> TrainingSet:
    """The whole training set from the feature marts and Feast (see the module doc).

    ``with_population`` (default: ``cfg.threshold_labels == "audit"``) also builds
    :attr:`TrainingSet.population`, every validation-day post's scoring events. ``test_labels``
    (post_id, is_harmful, is_<type>..., sampling_weight, queue), when given, replace the test days'
    moderator labels: a caller that knows better labels for the test days (an evaluation sample)
    passes them in; training and thresholds never see them.
    """
    posts = _read_mart("posts")
    posts["created_at"] = _utc(posts["created_at"])
    lab = labeled_posts(_read_mart("post_labels"), posts)
    behavior = _read_mart("post_behavior")[["post_id", "event_timestamp", "views", "reports"]]
    behavior["event_timestamp"] = _utc(behavior["event_timestamp"])
    data_end = max(behavior["event_timestamp"].max(), posts["created_at"].max())

    if splits is None:
        splits = split_days(sorted(lab["day"].unique()), cfg.train_frac, cfg.val_frac)
    day_to_split = {d: s for s, ds in splits.items() for d in ds}
    lab["split"] = lab["day"].map(day_to_split)
    lab = lab[lab["split"].notna()]
    if test_labels is not None:
        lab = replace_test_labels(lab, posts, test_labels, splits.get("test") or [])
    lab = _cap_posts(lab, cfg)
    windows, window_end = split_windows(splits, data_end)
    lab["window_end"] = lab["split"].map(window_end)
    lab = lab.set_index("post_id", drop=False)
    targets = post_targets(behavior[behavior["post_id"].isin(lab.index)], lab["window_end"])
    lab = lab.join(targets).reset_index(drop=True)

    examples = build_examples(lab, cfg.score_offsets_hours, data_end)
    examples, behavior_cols, creator_cols = fetch_features(
        examples, cfg.feature_service, historical_features, graph=cfg.graph_embeddings
    )
    examples = add_missing_indicators(examples, behavior_cols, creator_cols)
    examples = _attach_slices(examples)
    timelines = behavior[behavior["post_id"].isin(lab.loc[lab["split"] != "train", "post_id"])]
    timelines = timelines[["post_id", "event_timestamp", "views"]].sort_values(
        ["post_id", "event_timestamp"]
    )
    log.info(
        "training set: %d examples of %d posts; %s",
        len(examples),
        examples["post_id"].nunique(),
        ", ".join(f"{s}={int((examples['split'] == s).sum())}" for s in SPLITS),
    )
    if with_population is None:
        with_population = cfg.threshold_labels == "audit"
    population = pd.DataFrame()
    if with_population:
        population = build_population(
            posts,
            lab[lab["split"] == "val"],
            splits.get("val") or [],
            cfg,
            data_end,
            historical_features,
        )
    return TrainingSet(
        examples,
        behavior_cols,
        creator_cols,
        timelines.reset_index(drop=True),
        windows,
        population,
    )


def labeled_posts(labels: pd.DataFrame, posts: pd.DataFrame) -> pd.DataFrame:
    """One row per labeled post with its text, creation time, day and label columns."""
    if labels.empty:
        raise UserError("post_labels is empty: there are no moderator labels to train on.")
    labels = labels.drop(
        columns=[c for c in ("author_id", "created_at", "text") if c in labels.columns]
    )
    lab = labels.drop_duplicates("post_id").merge(
        posts[["post_id", "author_id", "created_at", "text"]], on="post_id", how="inner"
    )
    for col in HARM_COLUMNS:
        if col not in lab.columns:
            lab[col] = False
    lab["is_harmful"] = lab["is_harmful"].astype(bool)
    lab["sampling_weight"] = lab["sampling_weight"].astype(float).fillna(1.0)
    lab["text"] = lab["text"].fillna("")
    lab["day"] = lab["created_at"].dt.strftime("%Y-%m-%d")
    return lab


def _cap_posts(lab: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """At most ``cfg.max_posts`` posts, every split represented: sampled within each split."""
    if not cfg.max_posts or len(lab) <= cfg.max_posts:
        return lab
    return (
        lab.groupby("split", group_keys=False)
        .apply(
            lambda g: (
                g.sample(max(20, int(cfg.max_posts * len(g) / len(lab))), random_state=cfg.seed)
                if len(g) > 20
                else g
            )
        )
        .reset_index(drop=True)
    )


def split_windows(
    splits: dict[str, list[str]], data_end: pd.Timestamp
) -> tuple[dict[str, list[str]], dict[str, pd.Timestamp]]:
    """Each split's [start, end) as ISO strings, and its end; the test window runs to data_end."""
    windows, window_end = {}, {}
    for name in SPLITS:
        ds = splits.get(name) or []
        if not ds:
            raise UserError(f"the {name} split has no days: simulate more days of data.")
        start = pd.Timestamp(ds[0], tz="UTC")
        end = pd.Timestamp(ds[-1], tz="UTC") + pd.Timedelta(days=1)
        if name == "test":
            end = data_end  # the test replay follows posts until the data ends
        windows[name] = [start.isoformat(), end.isoformat()]
        window_end[name] = end
    return windows, window_end


def build_population(
    posts: pd.DataFrame,
    val_labels: pd.DataFrame,
    days: list[str],
    cfg: TrainConfig,
    data_end: pd.Timestamp,
    historical_features: Callable[..., pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Scoring events (same offsets and Feast features as the examples) of every post created on
    ``days``; ``labeled`` marks posts with a queue label (``is_harmful``/``sampling_weight`` set),
    the others carry NaN there. No label of an unlabeled post is read here."""
    day = posts["created_at"].dt.strftime("%Y-%m-%d")
    pop = posts.loc[day.isin(set(days)), ["post_id", "author_id", "created_at", "text"]].copy()
    if cfg.max_posts and len(pop) > 4 * cfg.max_posts:  # dry runs: keep the labeled + a sample
        keep = pop["post_id"].isin(val_labels["post_id"]) | (
            np.random.default_rng([cfg.seed, 9]).random(len(pop)) < 4 * cfg.max_posts / len(pop)
        )
        pop = pop[keep]
    pop["text"] = pop["text"].fillna("")
    lab = val_labels.drop_duplicates("post_id").set_index("post_id")
    pop["labeled"] = pop["post_id"].isin(lab.index)
    pop["is_harmful"] = pop["post_id"].map(lab["is_harmful"])
    pop["sampling_weight"] = pop["post_id"].map(lab["sampling_weight"])
    pop["day"] = pop["created_at"].dt.strftime("%Y-%m-%d")
    if pop.empty:
        return pop
    events = build_examples(pop, cfg.score_offsets_hours, data_end)
    events, behavior_cols, creator_cols = fetch_features(
        events, cfg.feature_service, historical_features, graph=cfg.graph_embeddings
    )
    events = add_missing_indicators(events, behavior_cols, creator_cols)
    log.info(
        "audit population: %d validation-day posts (%d labeled), %d scoring events",
        len(pop),
        int(pop["labeled"].sum()),
        len(events),
    )
    return events


def replace_test_labels(
    lab: pd.DataFrame, posts: pd.DataFrame, test_labels: pd.DataFrame, test_days: list[str]
) -> pd.DataFrame:
    """The test split's moderator labels replaced by ``test_labels`` (posts of ``test_days``)."""
    test = test_labels.merge(
        posts[["post_id", "author_id", "created_at", "text"]], on="post_id", how="inner"
    )
    test["text"] = test["text"].fillna("")
    test["day"] = test["created_at"].dt.strftime("%Y-%m-%d")
    test = test[test["day"].isin(set(test_days))]
    test["split"] = "test"
    return pd.concat([lab[lab["split"] != "test"], test], ignore_index=True)


def _attach_slices(examples: pd.DataFrame) -> pd.DataFrame:
    """Slice keys for evaluation (never model inputs): author's home country, account-age bucket."""
    users_file = paths().lake_users / "users.parquet"
    examples = examples.copy()
    if users_file.exists():
        users = pd.read_parquet(users_file, columns=["user_id", "home_country", "created_at"])
        users = users.rename(columns={"user_id": "author_id", "created_at": "author_created_at"})
        examples = examples.merge(users, on="author_id", how="left")
        age_days = (
            examples["created_at"] - _utc(examples["author_created_at"])
        ).dt.total_seconds() / 86400
        examples = examples.drop(columns=["author_created_at"])
    else:
        examples["home_country"] = None
        age_days = pd.Series(np.nan, index=examples.index)
    examples["home_country"] = examples["home_country"].fillna("unknown")
    examples["account_age_bucket"] = account_age_bucket(age_days)
    return examples


def account_age_bucket(age_days: pd.Series) -> pd.Series:
    bins = [-np.inf, 7, 30, 180, np.inf]
    names = ["<7d", "7-30d", "30-180d", ">180d"]
    out = pd.cut(age_days, bins=bins, labels=names, right=False).astype(object)
    return out.where(age_days.notna(), "unknown")


def save_snapshot(ts: TrainingSet, directory: Path) -> None:
    """The training data snapshot saved next to the model (without text, to keep it small)."""
    directory.mkdir(parents=True, exist_ok=True)
    cols = [c for c in ts.examples.columns if c not in ("text",)]
    ts.examples[cols].to_parquet(directory / "training_set.parquet", index=False)
