"""Harassment judged at the @mention (issue 26): one example per (post, mentioned user).

Read from the lake with DuckDB (events, users, labels Parquet); nothing from the simulator.

- **Example**: a ``post`` or ``reply`` event whose text names an existing ``@handle`` (not the
  author): mention_id (event id), post_id, author_id, target_id, mentioned_at, text, is_reply.
- **Pair features**, point in time (only events strictly before the mention): the author follows
  the target and the target follows the author (the pair's last follow/unfollow is a follow);
  prior interactions author -> target and target -> author (replies, likes, shares aimed at the
  other's posts, and earlier mentions); the target's earlier blocks, mutes or reports of the
  author; how many *other* authors mentioned the same target in the 24 h before. The pile-on
  features (``CAMPAIGN_FEATURES``, for harassment campaigns: several accounts on one target within
  hours): distinct other authors and their mentions of the target in the ``RECENT_HOURS`` before;
  distinct others the target blocked, muted or reported in the 24 h before; and of the others who
  named the target in the 24 h before, how many the target blocked, muted or reported after their
  mention and before this one. Built always; a model reads them only when fitted with
  ``features=WITH_CAMPAIGN_FEATURES`` (the default, ``PAIR_FEATURES``, is vigil train's).
- **Labels**: ``target_reaction``: the target blocked, muted or reported the author within
  ``window_hours`` after the mention (noise: a target who never saw the mention, or did not react,
  gives a false negative; a target who blocks for another reason a false positive; delay: the
  label exists only once the window has passed). ``moderator``: a moderator label of the post
  (``lake/labels``) wins over the reaction where present (delay: hours to two days; the queue
  over-represents reported posts). ``none``: no reaction, no label -> negative.
- **Model**: logistic regression on the log1p pair features plus hashed word n-grams of the text,
  sigmoid-calibrated, seeded. :func:`combine` is how its score feeds the post's decision.
- **Operating point** (:func:`operating_point`), chosen without truth: the train and validation
  days are cut into ``k`` contiguous day blocks; each block's mentions are scored by a model fitted
  on the other blocks (cross-fitted, out-of-fold scores; a post's score is its highest mention's).
  The labels that grade a threshold are the moderators': the queue labels of the posts carrying
  the mentions (known) plus a **score-stratified review sample** of the unlabeled posts
  (:func:`training.audit.run`, queue ``mention_audit``, weights 1 / inclusion probability). The
  threshold is the lowest out-of-fold score above the audit floor whose removed set has a
  weighted Wilson lower bound (Kish's n) >= 0.95 on its precision. The queues alone are not
  enough: they label ~0.4-2.5% of the posts nobody reported, so the benign mentions a candidate
  threshold removes go unseen (:func:`choose_threshold`, kept for comparison, is that optimistic
  rule). Target reactions train the model but grade nothing (a target who does not react is not a
  benign label). The model that scores is then fitted on all the train and validation days.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PAIR_FEATURES = (
    "author_follows_target",
    "target_follows_author",
    "prior_author_to_target",
    "prior_target_to_author",
    "prior_target_negative",
    "others_mentioning_target_24h",
)
# the pile-on features (issue 26, harassment campaigns): computed by build(), used by a model only
# when asked (fit(..., features=WITH_CAMPAIGN_FEATURES)); vigil train's default stays PAIR_FEATURES
CAMPAIGN_FEATURES = (
    "others_mentioning_target_recent",  # distinct other authors naming the target, RECENT_HOURS
    "mentions_of_target_recent",  # mentions of the target by others, RECENT_HOURS before
    "target_negative_others_24h",  # distinct others the target blocked/muted/reported, 24 h
    "target_negative_mentioners_24h",  # ... of them, others who named it in the 24 h and
    # whom it blocked/muted/reported after their mention and before this one
)
WITH_CAMPAIGN_FEATURES = PAIR_FEATURES + CAMPAIGN_FEATURES
RECENT_HOURS = 6.0
WINDOW_HOURS = 24.0
AUDIT_QUEUE = "mention_audit"
AUDIT_BUDGET = 300  # reviews per training run
FAST_NONE_SHARE = 0.25  # vigil train's mention model fits on this share of unlabeled mentions

_SQL = """
with ev as (
    select event_id, user_id, action, post_id, target_user_id, text, epoch_ms(event_ts) as ts
    from read_parquet($events, union_by_name = true) where user_id is not null
    qualify row_number() over (partition by event_id order by event_ts) = 1
),
users as (select user_id, handle from read_parquet($users)),
m as (
    select e.event_id as mention_id, case when e.action = 'post' then e.post_id end as post_id,
        e.user_id as author_id, u.user_id as target_id, e.ts, e.text, e.action = 'reply' as is_reply
    from (select *, unnest(regexp_extract_all(text, '@([A-Za-z0-9_]+)', 1)) as handle
          from ev where action in ('post', 'reply') and text like '%@%') as e
    join users as u using (handle)
    where u.user_id <> e.user_id
    qualify row_number() over (partition by e.event_id, u.user_id order by e.ts) = 1
),
touch as (  -- a -> b interactions: replies, likes, shares of b's posts, and mentions of b
    select user_id as a, target_user_id as b, ts from ev
    where action in ('reply', 'like', 'share') and target_user_id is not null
    union all select author_id, target_id, ts from m
),
fol as (select user_id as a, target_user_id as b, action, ts from ev
        where action in ('follow', 'unfollow')),
neg as (select user_id as a, target_user_id as b, ts from ev
        where action in ('block', 'mute', 'report') and target_user_id is not null)
select m.*,
    coalesce((select arg_max(f.action, f.ts) = 'follow' from fol as f
              where f.a = m.author_id and f.b = m.target_id and f.ts < m.ts), false)
        as author_follows_target,
    coalesce((select arg_max(f.action, f.ts) = 'follow' from fol as f
              where f.a = m.target_id and f.b = m.author_id and f.ts < m.ts), false)
        as target_follows_author,
    (select count(*) from touch as t where t.a = m.author_id and t.b = m.target_id and t.ts < m.ts)
        as prior_author_to_target,
    (select count(*) from touch as t where t.a = m.target_id and t.b = m.author_id and t.ts < m.ts)
        as prior_target_to_author,
    (select count(*) from neg as n where n.a = m.target_id and n.b = m.author_id and n.ts < m.ts)
        as prior_target_negative,
    (select count(distinct o.author_id) from m as o where o.target_id = m.target_id
        and o.author_id <> m.author_id and o.ts < m.ts and o.ts >= m.ts - 86400000)
        as others_mentioning_target_24h,
    (select count(distinct o.author_id) from m as o where o.target_id = m.target_id
        and o.author_id <> m.author_id and o.ts < m.ts and o.ts >= m.ts - $recent_ms)
        as others_mentioning_target_recent,
    (select count(*) from m as o where o.target_id = m.target_id
        and o.author_id <> m.author_id and o.ts < m.ts and o.ts >= m.ts - $recent_ms)
        as mentions_of_target_recent,
    (select count(distinct n.b) from neg as n where n.a = m.target_id and n.b <> m.author_id
        and n.ts < m.ts and n.ts >= m.ts - 86400000)
        as target_negative_others_24h,
    (select count(distinct o.author_id) from m as o join neg as n
        on n.a = o.target_id and n.b = o.author_id and n.ts >= o.ts and n.ts < m.ts
        where o.target_id = m.target_id and o.author_id <> m.author_id
        and o.ts < m.ts and o.ts >= m.ts - 86400000)
        as target_negative_mentioners_24h,
    (select min(n.ts) from neg as n where n.a = m.target_id and n.b = m.author_id
        and n.ts >= m.ts and n.ts < m.ts + $window_ms) as reaction_ms
from m where m.ts >= $from_ms and m.ts < $until_ms
"""


def _lake_files(lake: Path) -> tuple[list[str], str, Path]:
    from vigil.errors import UserError

    events = sorted(str(f) for f in (lake / "events").glob("dt=*/*.parquet"))
    users = lake / "users" / "users.parquet"
    if not events or not users.exists():
        raise UserError(f"no lake events or users under {lake}: ingest first (`vigil ingest`).")
    return events, str(users), lake / "labels" / "labels.parquet"


def build(lake: Path, window_hours: float = WINDOW_HOURS, since=None, until=None) -> pd.DataFrame:
    """Every mention in the lake with its pair features and label (see the module doc); with
    ``since`` / ``until`` (timestamps) only the mentions made in [since, until), their features
    still from every earlier event."""
    import duckdb

    events, users, labels_file = _lake_files(lake)
    con = duckdb.connect()
    try:
        params = {"events": events, "users": users, "window_ms": int(window_hours * 3600_000)}
        params["recent_ms"] = int(RECENT_HOURS * 3600_000)
        params["from_ms"] = _epoch_ms(since, -(2**62))
        params["until_ms"] = _epoch_ms(until, 2**62)
        df = con.execute(_SQL, params).df()
    finally:
        con.close()
    df["mentioned_at"] = pd.to_datetime(df["ts"], unit="ms", utc=True)
    labels = pd.read_parquet(labels_file) if labels_file.exists() else pd.DataFrame()
    df = label(df, labels)
    df = df.sort_values(["ts", "mention_id", "target_id"]).reset_index(drop=True)
    log.info(
        "mentions: %d examples, %d positive (%s)",
        len(df),
        int(df["y"].sum()),
        df["label_source"].value_counts().to_dict(),
    )
    return df


def _epoch_ms(when, default: int) -> int:
    if when is None:
        return default
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return int(ts.value // 1_000_000)


def label(mentions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """y and label_source: a moderator label of the post wins, else the target's reaction."""
    out = mentions.copy()
    reacted = out["reaction_ms"].notna()
    out["y"] = reacted
    out["label_source"] = np.where(reacted, "target_reaction", "none")
    out["label_weight"] = np.nan  # a moderator label's sampling weight (1 / inclusion prob.)
    if len(labels):
        mod = labels.drop_duplicates("post_id", keep="last").set_index("post_id")
        y_mod = out["post_id"].map(mod["is_harmful"])
        has = y_mod.notna()
        out.loc[has, "y"] = y_mod[has].astype(bool)
        out.loc[has, "label_source"] = "moderator"
        if "sampling_weight" in mod.columns:
            out.loc[has, "label_weight"] = out.loc[has, "post_id"].map(mod["sampling_weight"])
        else:
            out.loc[has, "label_weight"] = 1.0
    out["y"] = out["y"].astype(bool)
    return out


def design(df: pd.DataFrame, n_features: int = 2**14, features=PAIR_FEATURES):
    """The model's input: log1p pair ``features`` plus hashed word 1-2-grams of the text."""
    from scipy import sparse
    from sklearn.feature_extraction.text import HashingVectorizer

    num = np.log1p(df[list(features)].astype(float).to_numpy())
    num = np.column_stack([num, df["is_reply"].astype(float).to_numpy()])
    text = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False)
    return sparse.hstack([sparse.csr_matrix(num), text.transform(df["text"].fillna(""))]).tocsr()


def features_of(model) -> tuple[str, ...]:
    """The pair features a fitted mention model reads (``PAIR_FEATURES`` for models saved before
    the campaign features existed)."""
    return tuple(getattr(model, "vigil_features", PAIR_FEATURES))


def fit(df: pd.DataFrame, seed: int = 7, features=PAIR_FEATURES):
    """A seeded, sigmoid-calibrated logistic regression on :func:`design` against ``y``; the model
    remembers its ``features`` (:func:`features_of`), so :func:`score` reads the same ones."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    base = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", random_state=seed)
    model = CalibratedClassifierCV(base, method="sigmoid", cv=3)
    model.fit(design(df, features=features), df["y"].astype(int).to_numpy())
    model.vigil_features = tuple(features)
    return model


def score(model, df: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(design(df, features=features_of(model)))[:, 1]


def combine(post_score, post_threshold: float, mention_score, mention_threshold: float):
    """The post's decision score with the mention model: each score over its own removal
    threshold, the larger wins (>= 1 removes). A post without mentions keeps its own score."""
    p = np.asarray(post_score, float) / post_threshold
    m = np.nan_to_num(np.asarray(mention_score, float), nan=0.0) / mention_threshold
    return np.maximum(p, m)


def post_scores(model, lake: Path, since, until) -> pd.Series:
    """The mention score of every post made in [since, until) that names someone: its highest
    mention's (index post_id). Pair features as of the mention (earlier events only), so the
    score is the same at every scoring point of the post. Mentions in replies have no post."""
    df = build(lake, since=since, until=until)
    df = df[df["post_id"].notna()]
    if df.empty:
        return pd.Series(dtype=float, name="mention_score")
    df = df.assign(post_id=df["post_id"].astype("int64"), mention_score=score(model, df))
    return df.groupby("post_id")["mention_score"].max()


def decide_with_mentions(
    decision, probability, post_threshold: float, mention_score, mention_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(decision, removed_by) with the mention path: remove when :func:`combine` >= 1, i.e. the
    post path (probability >= its threshold) or the mention path (mention score >= its threshold)
    fires; ``removed_by`` is "post", "mention", "both" or None. A mention removal overrides the
    post path's review / allow; other decisions are kept."""
    dec = np.asarray(decision, dtype=object).copy()
    post = np.asarray(probability, float) >= post_threshold
    ms = np.nan_to_num(np.asarray(mention_score, float), nan=-np.inf)
    ment = ms >= mention_threshold if math.isfinite(mention_threshold) else np.zeros_like(post)
    dec[ment] = "remove"
    by = np.full(dec.shape, None, dtype=object)
    by[post & ~ment], by[ment & ~post], by[post & ment] = "post", "mention", "both"
    return dec, by


# -- the operating point, chosen without truth ------------------------------------------------
def day_folds(days, k: int) -> dict[str, int]:
    """``k`` contiguous blocks of the sorted days: day -> fold (block sizes differ by at most 1)."""
    ordered = sorted(set(map(str, days)))
    if len(ordered) < k:
        raise ValueError(f"{len(ordered)} days cannot make {k} folds")
    return {d: i * k // len(ordered) for i, d in enumerate(ordered)}


def cross_fit_scores(df: pd.DataFrame, fold, seed: int = 7, fit_fn=None, score_fn=None):
    """Out-of-fold scores: each fold's rows scored by a model fitted on the other folds' rows."""
    fit_fn, score_fn = fit_fn or fit, score_fn or score
    fold = np.asarray(fold)
    out = np.full(len(df), np.nan)
    for f in np.unique(fold):
        held = fold == f
        model = fit_fn(df[~held], seed)
        out[held] = score_fn(model, df[held])
    return out


def choose_threshold(scores, frame: pd.DataFrame, target: float = 0.95) -> dict:
    """The lowest score whose removed set's precision has a weighted Wilson lower bound >= target,
    on the moderator-labeled rows of ``frame`` (``label_source``, ``y``, ``label_weight``)."""
    from training import calibrate

    s = np.asarray(scores, float)
    m = (frame["label_source"] == "moderator").to_numpy() & np.isfinite(s)
    w = np.nan_to_num(frame["label_weight"].to_numpy(float)[m], nan=1.0)
    out = calibrate.removal_threshold(s[m], frame["y"].to_numpy(float)[m], w, target)
    out["moderator_labels"] = int(m.sum())
    out["moderator_positive"] = int(frame["y"].to_numpy(bool)[m].sum())
    return out


def audit_threshold(
    post_scores: pd.Series,
    labels: pd.Series,
    queue,
    budget: int = AUDIT_BUDGET,
    seed: int = 7,
    target: float = 0.95,
) -> dict:
    """The threshold from queue labels plus a score-stratified review sample (module doc).

    ``post_scores``: per post (index post_id) its out-of-fold mention score; ``labels``: the queue
    label (bool) of the labeled ones; ``queue``: a :class:`vigil.review.ReviewQueue`. Candidates are
    the observed posts above the audit floor, weighted 1 / inclusion probability."""
    from training import audit, calibrate

    aud, floors = audit.run({"mention": post_scores}, labels, queue, budget, seed)
    floor = floors["mention"]
    s = post_scores.reindex(aud.index)
    obs = aud["observed"] & (s > floor)
    out = calibrate.removal_threshold(
        s[obs].to_numpy(), aud.loc[obs, "y"].to_numpy(), 1.0 / aud.loc[obs, "pi"].to_numpy(), target
    )
    reviewed = aud["source"] == audit.QUEUE
    if not reviewed.any():  # no review answered yet: the queue labels alone would fool us
        log.warning("mention audit: no review answered yet; the mention score removes nothing")
        out = {"threshold": math.inf, "precision": None, "lower_bound": None, "n_removed": 0}
    out |= {
        "labels": "queue + mention audit",
        "floor": floor,
        "audit_reviews": int(reviewed.sum()),
        "audit_reviews_harmful": int(aud.loc[reviewed, "y"].sum()),
        "queue_labels_above_floor": int((obs & ~reviewed).sum()),
        "posts": len(aud),
    }
    return out


def operating_point(
    df: pd.DataFrame,
    queue=None,
    day_col: str = "day",
    k: int = 4,
    seed: int = 7,
    budget: int = AUDIT_BUDGET,
    fit_fn=None,
    score_fn=None,
    features=PAIR_FEATURES,
) -> tuple:
    """(model, threshold dict) from the mentions of the train and validation days ``df``: the
    threshold from cross-fitted scores over ``k`` day blocks and the audit (module doc), the model
    on all rows. Without a review ``queue`` (or no answer yet) the threshold is +inf: the mention
    score removes nothing. Mentions in replies train but are not graded (no post, no label).
    ``features``: the pair features of the default :func:`fit` (ignored with ``fit_fn``)."""
    if fit_fn is None:
        import functools

        fit_fn = functools.partial(fit, features=tuple(features))
    folds = day_folds(df[day_col], k)
    oof = cross_fit_scores(df, df[day_col].map(folds).to_numpy(), seed, fit_fn, score_fn)
    posts = df.assign(oof=oof)[df["post_id"].notna()]
    posts = posts.assign(post_id=posts["post_id"].astype("int64"))
    per_post = posts.groupby("post_id")["oof"].max()
    mod = posts[posts["label_source"] == "moderator"].groupby("post_id")["y"].first()
    info = {"rule": f"cross-fitted over {k} day blocks", "queue_only": choose_threshold(oof, df)}
    if queue is None:
        thr = {"threshold": math.inf, "labels": "none: no review queue"}
    else:
        thr = audit_threshold(per_post, mod.astype(bool), queue, budget, seed)
    return fit_fn(df, seed), thr | info


def fast_model_fns(
    df: pd.DataFrame, none_share: float = FAST_NONE_SHARE, features=PAIR_FEATURES
):
    """(fit_fn, score_fn) for rows of ``df`` with the design built once: a liblinear logistic
    regression, sigmoid-calibrated over 2 folds, fitted on every labeled or reacted mention and a
    seeded ``none_share`` of the unlabeled ones (about 10x cheaper than :func:`fit`; what
    ``vigil train`` uses, to stay within seconds; the threshold is chosen on these scores)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    x = design(df, features=features)
    pos = pd.Series(np.arange(len(df)), index=df.index)

    def rows(d: pd.DataFrame):
        return x[pos.loc[d.index].to_numpy()]

    def fit_fn(d: pd.DataFrame, seed: int = 7):
        keep = (d["label_source"] != "none").to_numpy()
        keep |= np.random.default_rng([seed, 41]).random(len(d)) < none_share
        d = d[keep]
        base = LogisticRegression(
            C=1.0, solver="liblinear", class_weight="balanced", random_state=seed
        )
        model = CalibratedClassifierCV(base, method="sigmoid", cv=2)
        model.fit(rows(d), d["y"].astype(int).to_numpy())
        model.vigil_features = tuple(features)
        return model

    def score_fn(model, d: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(rows(d))[:, 1]

    return fit_fn, score_fn


# -- the platform's mention model: trained by vigil_train, saved beside the post models ---------
LABEL_SOURCES = {  # label source -> (what it is, its noise, its delay); the report shows them
    "moderator": (
        "a moderator label of the post carrying the mention (wins over a reaction)",
        "moderators are ~1% wrong; the reported queue over-represents posts the target reported",
        "0.5-48 h after the post",
    ),
    "target_reaction": (
        f"the target blocked, muted or reported the author within {WINDOW_HOURS:.0f} h",
        (
            "false negatives: a target who never sees the mention or does not react; false "
            "positives: a block or report for another reason"
        ),
        f"known once the {WINDOW_HOURS:.0f} h window has passed (reactions come minutes after)",
    ),
    "none": (
        "no moderator label and no reaction: counted negative",
        "holds the harassment nobody labeled or reacted to",
        "-",
    ),
}


def mention_metrics(frame: pd.DataFrame, scores, threshold: float) -> dict:
    """Mention-level metrics against the logged labels (``y``, ``label_source``) of ``frame``:
    precision and recall at ``threshold`` with 95% Wilson intervals, PR-AUC, recall at 95%
    precision, and per label source the mentions and positives (every mention counts once)."""
    from training import evaluate

    s = np.asarray(scores, float)
    y = frame["y"].to_numpy(bool)
    hit = s >= threshold
    p_low, p_high = evaluate.recall_interval(y[hit], np.ones(int(hit.sum())))
    r_low, r_high = evaluate.recall_interval(hit[y], np.ones(int(y.sum())))
    two = len(np.unique(y)) == 2
    sources = {
        src: {"mentions": int(m.sum()), "positive": int(y[m].sum()), "flagged": int(hit[m].sum())}
        for src in LABEL_SOURCES
        for m in [(frame["label_source"] == src).to_numpy()]
    }
    return {
        "threshold": float(threshold),
        "mentions": len(frame),
        "positive": int(y.sum()),
        "flagged": int(hit.sum()),
        "precision": float(y[hit].mean()) if hit.any() else math.nan,
        "precision_low": p_low,
        "precision_high": p_high,
        "recall": float(hit[y].mean()) if y.any() else math.nan,
        "recall_low": r_low,
        "recall_high": r_high,
        "pr_auc": evaluate.pr_auc(y, s) if two else math.nan,
        "recall_at_95p": evaluate.recall_at_precision(y, s) if two else math.nan,
        "label_sources": sources,
    }


def for_training(
    lake: Path, splits: dict, seed: int = 7, queue=None, features=PAIR_FEATURES
) -> dict | None:
    """The mention model ``vigil train`` registers beside the post models, or None without
    mentions: fitted on the train and validation days' mentions (labels from the logs), its
    threshold by :func:`operating_point` (the audit of the review ``queue``, by default the
    platform's ``mention_audit`` file queue; no answer: +inf, the score removes nothing), and
    :func:`mention_metrics` on the test days' mentions."""
    import time

    started = time.perf_counter()
    if queue is None:
        from vigil.review.files import FileReviewQueue, load_answerer

        queue = FileReviewQueue(AUDIT_QUEUE, AUDIT_BUDGET, answer=load_answerer())
    from vigil.errors import UserError

    try:
        df = build(lake)
    except UserError as exc:  # no lake, no users: the post models train without it
        log.warning("mention model skipped: %s", exc)
        return None
    df["day"] = df["mentioned_at"].dt.strftime("%Y-%m-%d")
    days = {k: set(map(str, v)) for k, v in splits.items()}
    fit_rows = df[df["day"].isin(days.get("train", set()) | days.get("val", set()))]
    test = df[df["day"].isin(days.get("test", set()))]
    if fit_rows["y"].nunique() < 2 or fit_rows["day"].nunique() < 4:
        log.warning("mention model skipped: %d mentions on the train/val days", len(fit_rows))
        return None
    fit_fn, score_fn = fast_model_fns(pd.concat([fit_rows, test]), features=features)
    model, thr = operating_point(fit_rows, queue=queue, seed=seed, fit_fn=fit_fn, score_fn=score_fn)
    threshold = float(thr["threshold"])
    metrics = mention_metrics(test, score_fn(model, test), threshold) if len(test) else {}
    metrics |= {
        "operating_point": {k: v for k, v in thr.items() if not isinstance(v, dict)},
        "train_mentions": len(fit_rows),
        "train_positive": int(fit_rows["y"].sum()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("mention model: threshold %.4f, %s", threshold, metrics)
    return {"model": model, "threshold": threshold, "metrics": metrics}
