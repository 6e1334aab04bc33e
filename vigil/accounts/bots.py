"""Bot detection: a calibrated classifier over the account features, with a precision guardrail.

Labels come from the platform's side only: an account is a positive when the enforcement log
suspended it for ``bot`` or ``spam``, or a moderator labeled one of its posts ``spam``
(labels.jsonl); every other account is a negative (so unlabeled bots are noise the model lives
with). Training rows are an account's daily feature rows up to its suspension, each account
weighted 1 in total (an account with 14 rows does not count 14 times more than one with 2).

Accounts are split (by a seeded hash of user_id) into train and validation before anything is
fitted. A histogram gradient-boosting classifier learns on train; isotonic regression on the
validation scores calibrates them to P(labeled | x). Platform labels miss bots (not every bot is
suspended or has an audited spam post), so the labeled/unlabeled classifier is turned into a
bot probability the positive-unlabeled way (Elkan & Noto, KDD 2008): the label frequency
c = mean calibrated score of the validation's labeled accounts, P(bot | x) = min(1, g(x) / c),
and the precision of a flagged set is estimated as (labeled weight / c) / flagged weight. The
flag threshold is the lowest bot probability whose estimated validation precision
(account-weighted) stays >= the target (0.95). ``pu=False`` uses the labels as they are.
Two options sharpen the guardrail (docs/accounts.md): ``labeled_cuts`` lets the threshold sit only
on a P(bot) level where validation holds a labeled account (the 1/c credit otherwise lets an
unlabeled plateau of quiet new accounts ride on the labels above it), and
``low_evidence_events`` N fits a separate calibration for rows with fewer than N events.
``crossfit_folds`` K calibrates and places the threshold on out-of-fold scores of every account
(the K fold models also score), ``young_label_frequency`` gives young rows their own c and
``credit_per_level`` caps each P(bot) level's credit at its size (all off; docs/accounts.md,
"Threshold noise, cross-fitted calibration, ...").
``profile`` mode is the baseline: only account age, handle shape and home country.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vigil import config
from vigil.accounts.features import FEATURES, TABLE
from vigil.errors import UserError

log = logging.getLogger(__name__)

POSITIVE_REASONS = ("bot", "spam")
PROFILE_FEATURES = (
    "account_age_days",
    "handle_len",
    "handle_digits",
    "handle_digit_share",
    "handle_has_underscore",
    "home_country_code",
)
MODEL_DIR = "accounts_bots"


@dataclass
class BotConfig:
    seed: int = 0
    validation_share: float = 0.3
    target_precision: float = 0.95
    max_iter: int = 120
    learning_rate: float = 0.1
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 20
    mode: str = "behavior"  # behavior (account features + profile) or profile (baseline)
    pu: bool = True  # correct for unlabeled bots (label frequency), see the module docstring
    # also hold the guardrail on validation rows of accounts at most this many days old (their
    # own rows, one per account and day); 0 = all rows only
    young_days: float = 2.0
    young_weight: float = 4.0  # training weight of those young rows relative to older ones
    # flag only rows with at least this many events in the window (a silent account shows no
    # behaviour to judge and does no harm); the guardrail is estimated on those rows too
    min_events: int = 1
    # label maturity: the guardrail (and with ``maturity_scope`` "calibration" also the calibration
    # and label frequency) reads only validation accounts created at least this many days before
    # the data's last row; a newer account has not had time to be suspended, so its missing label
    # says little. 0 = every account (off)
    label_maturity_days: float = 0.0
    maturity_scope: str = "guardrail"  # guardrail | calibration
    # never flag a row whose P(bot) is below this (0 = no floor)
    min_flag_probability: float = 0.0
    # cut only at a P(bot) level where validation holds a labeled account: the threshold is the
    # score of a labeled validation row (the lowest flagged tie group holds evidence), so the
    # flagged set is never extended over a plateau the platform never labeled a bot on
    labeled_cuts: bool = False
    # > 0: rows with fewer than this many events in their window get their own isotonic
    # calibration (fitted on the validation rows with that little evidence): a new account with a
    # login and a like shares the raw score of busier accounts, not their bot rate. 0 = one
    # calibration for every row
    low_evidence_events: int = 0
    # > 1: fit this many models, each on its own seeded train/validation split with its own
    # calibration and guardrail threshold; bot_score is their mean P(bot), a row is flagged when
    # a majority of them flag it (each threshold is noisy on ~650 validation accounts)
    splits: int = 1
    # > 1: cross-fitting. Every account is in one of this many folds (seeded hash); one model per
    # fold is trained on the other folds and scores its own fold, so calibration, label frequency
    # and guardrail read out-of-fold scores of ALL accounts (~3x the evidence of a 30% split) from
    # the very models that score later: no refit. 0 = one train/validation split (off)
    crossfit_folds: int = 0
    # how the fold models score a row: "own" = the model of the account's fold (an account seen in
    # training gets its out-of-fold score; a new one the score of one fold model, the distribution
    # the guardrail read), "mean" = the mean of the fold models' calibrated scores
    crossfit_scoring: str = "own"
    # the young rows (accounts at most ``young_days`` + 1 days old) get a label frequency of their
    # own: c_young = mean calibrated score of the labeled young validation rows (labels miss more
    # on new accounts), used for their P(bot) and in the guardrail's credit
    young_label_frequency: bool = False
    # the guardrail credits each P(bot) level (tie group) with at most its own size in bots: the
    # surplus of a level where labels are dense (labeled / c > its size) does not carry down to
    # vouch for levels below it
    credit_per_level: bool = False


def _hash_unit(user_ids: np.ndarray, seed: int) -> np.ndarray:
    """A seeded uniform number in [0, 1) per user id (stable split across runs and machines)."""
    out = np.empty(len(user_ids))
    for i, u in enumerate(user_ids.tolist()):
        h = hashlib.blake2b(f"{seed}:{u}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "big") / 2**64
    return out


def profile_columns(users: pd.DataFrame) -> pd.DataFrame:
    """Handle shape and home country per user (the baseline's inputs besides account age)."""
    h = users["handle"].astype(str)
    digits = h.str.count(r"[0-9]")
    countries = sorted(users["home_country"].astype(str).unique())
    return pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy(),
            "handle_len": h.str.len().to_numpy(),
            "handle_digits": digits.to_numpy(),
            "handle_digit_share": (digits / h.str.len().clip(lower=1)).to_numpy(),
            "handle_has_underscore": h.str.contains("_").astype(int).to_numpy(),
            "home_country": users["home_country"].astype(str).to_numpy(),
        }
    ).assign(home_country_code=lambda d: d["home_country"].map(countries.index))


def platform_labels(
    enforcement: pd.DataFrame, labels: pd.DataFrame, post_authors: pd.DataFrame
) -> pd.DataFrame:
    """user_id -> is_bot_label (1/0 known positives) and labeled_at (the earliest evidence)."""
    enf = enforcement[enforcement["reason"].isin(POSITIVE_REASONS)]
    a = enf.groupby("user_id")["enforced_at"].min().rename("labeled_at")
    spam = labels[labels["harm_types"].astype(str).str.contains("spam")]
    spam = spam.merge(post_authors, on="post_id")
    b = spam.groupby("user_id")["labeled_at"].min()
    both = pd.concat([a, b]).groupby(level=0).min()
    return pd.DataFrame({"user_id": both.index, "labeled_at": both.to_numpy(), "label": 1})


def training_frame(
    feats: pd.DataFrame, users: pd.DataFrame, labels: pd.DataFrame, enforcement: pd.DataFrame
) -> pd.DataFrame:
    """Feature rows + profile columns + label + weight; rows after a suspension are dropped,
    rows without an event in the window are kept."""
    df = feats.merge(profile_columns(users), on="user_id", how="left")
    df = df.merge(labels[["user_id", "label"]], on="user_id", how="left")
    df["label"] = df["label"].fillna(0).astype(int)
    susp = enforcement.groupby("user_id")["enforced_at"].min()
    cut = df["user_id"].map(susp)
    keep = cut.isna() | (df["event_timestamp"] <= cut + pd.Timedelta(days=1))
    # silent rows stay: a new account with no event yet is scored too, so the model must see them
    df = df[keep].copy()
    df["weight"] = 1.0 / df.groupby("user_id")["user_id"].transform("size")
    return df


def _columns(mode: str) -> list[str]:
    if mode == "profile":
        return list(PROFILE_FEATURES)
    if mode == "behavior":
        return list(dict.fromkeys([*FEATURES, *PROFILE_FEATURES]))
    raise UserError(f"unknown bot model mode {mode!r}: use behavior or profile.")


def _pr_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> float:
    from sklearn.metrics import average_precision_score

    if y.sum() == 0 or y.sum() == len(y):
        return float("nan")
    return float(average_precision_score(y, s, sample_weight=w))


def threshold_for_precision(
    y,
    s,
    w,
    target: float,
    label_frequency: float = 1.0,
    labeled_cuts: bool = False,
    per_level: bool = False,
) -> tuple[float, float, float]:
    """Lowest score t with weighted precision(score >= t) >= target: (t, precision, recall).
    ``label_frequency`` c < 1: a labeled positive stands for 1/c true positives (capped at the
    set's size); an array gives each row its own c. ``labeled_cuts``: t must be the score of a
    labeled row (of a tie group with a positive). ``per_level``: each tie group is credited with at most its own weight in positives
    (no surplus carried from the groups above). Returns (inf, nan, 0) when no threshold reaches
    the target."""
    order = np.argsort(-s, kind="stable")
    ys, ss, ws = y[order], s[order], w[order]
    cs = np.broadcast_to(np.asarray(label_frequency, float), s.shape)[order]
    total = np.cumsum(ws)
    if np.ndim(label_frequency) == 0:  # one c: divide once (the default's exact arithmetic)
        tp = np.minimum(np.cumsum(ws * ys) / label_frequency, total)
        pos = min((ws * ys).sum() / label_frequency, total[-1]) if len(ws) else 0.0
    else:
        tp = np.minimum(np.cumsum(ws * ys / cs), total)
        pos = min((ws * ys / cs).sum(), total[-1]) if len(ws) else 0.0
    # only cut between distinct scores
    last = np.r_[ss[1:] != ss[:-1], True]
    if per_level and len(ss):
        group = np.r_[0, np.cumsum(last)[:-1]]
        credit = np.minimum(
            np.bincount(group, weights=ws * ys / cs), np.bincount(group, weights=ws)
        )
        tp = np.cumsum(credit)[group]  # read at each group's last row only
        pos = credit.sum()
    prec = tp / np.maximum(total, 1e-12)
    ok = last & (prec >= target)
    if labeled_cuts and len(ss):
        group = np.r_[0, np.cumsum(last)[:-1]]  # tie group of each sorted row
        ok &= np.bincount(group, weights=ys)[group] > 0
    ok = np.flatnonzero(ok)
    if len(ok) == 0 or pos == 0:
        return float("inf"), float("nan"), 0.0
    i = ok[-1]
    return float(ss[i]), float(prec[i]), float(tp[i] / pos)


def _precision_recall(y, s, w, t: float, label_frequency: float) -> tuple[float, float]:
    """Estimated (precision, recall) of the set score >= t, as in threshold_for_precision."""
    flagged = s >= t
    tot = w[flagged].sum()
    if np.ndim(label_frequency) == 0:
        tp = min((w * y)[flagged].sum() / label_frequency, tot)
        pos = min((w * y).sum() / label_frequency, w.sum())
    else:
        c = np.asarray(label_frequency, float)
        tp = min((w * y / c)[flagged].sum(), tot)
        pos = min((w * y / c).sum(), w.sum())
    return (tp / tot if tot else float("nan")), (tp / pos if pos else 0.0)


def _guardrail(va: pd.DataFrame, y, prob, w, c: float, cfg: BotConfig):
    """(threshold, est. precision, est. recall, young threshold) on the validation rows that can
    be flagged (>= ``min_events`` events)."""
    can = va["events_7d"].to_numpy() >= cfg.min_events
    if cfg.label_maturity_days:
        can &= _mature(va, cfg.label_maturity_days)
    y, prob, w = y[can], prob[can], w[can]
    if np.ndim(c):  # a label frequency per row (young rows' own)
        c = np.asarray(c, float)[can]
    thr, prec, rec = threshold_for_precision(
        y, prob, w, cfg.target_precision, c, cfg.labeled_cuts, cfg.credit_per_level
    )
    young_thr = None
    if cfg.young_days:
        # the guardrail must also hold on young accounts (the rows a new bot is judged on), whose
        # scores rest on a day or two of behaviour: the threshold is the stricter of the two
        young = va["account_age_days"].to_numpy()[can] <= cfg.young_days + 1
        if y[young].sum() > 0:
            young_thr = threshold_for_precision(
                y[young],
                prob[young],
                np.ones(young.sum()),
                cfg.target_precision,
                c[young] if np.ndim(c) else c,
                cfg.labeled_cuts,
                cfg.credit_per_level,
            )[0]
            if young_thr > thr:
                thr, prec, rec = young_thr, *_precision_recall(y, prob, w, young_thr, c)
    if cfg.min_flag_probability and thr < cfg.min_flag_probability:
        thr = cfg.min_flag_probability
        prec, rec = _precision_recall(y, prob, w, thr, c)
    return thr, prec, rec, young_thr


def _mature(va: pd.DataFrame, days: float) -> np.ndarray:
    """Rows of accounts created at least ``days`` before the last row of the frame."""
    created = va["event_timestamp"] - pd.to_timedelta(va["account_age_days"], unit="D")
    return (created <= va["event_timestamp"].max() - pd.Timedelta(days=days)).to_numpy()


def _low_evidence(rows: pd.DataFrame, events: int) -> np.ndarray:
    """Rows with fewer than ``events`` events in their window (none when ``events`` is 0)."""
    return rows["events_7d"].to_numpy() < events


def _isotonic(raw, y, w):
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        raw, y, sample_weight=w
    )


def fit_calibration(raw, y, w, low, fit_rows=None):
    """(calibrator, low-evidence calibrator or None, calibrated scores of the rows): isotonic
    regressions of the label on the raw score, one on the ``low`` rows and one on the others
    when both exist (one on all rows otherwise), fitted on ``fit_rows`` (default all)."""
    fit_rows = np.ones(len(raw), bool) if fit_rows is None else fit_rows
    if (low & fit_rows).any() and (~low & fit_rows).any():
        iso_low = _isotonic(raw[fit_rows & low], y[fit_rows & low], w[fit_rows & low])
        iso = _isotonic(raw[fit_rows & ~low], y[fit_rows & ~low], w[fit_rows & ~low])
        return iso, iso_low, np.where(low, iso_low.predict(raw), iso.predict(raw))
    iso = _isotonic(raw[fit_rows], y[fit_rows], w[fit_rows])
    return iso, None, iso.predict(raw)


def _calibrate(bundle: dict, raw: np.ndarray, rows: pd.DataFrame) -> np.ndarray:
    """Calibrated P(labeled | x): the low-evidence calibrator on rows with too few events."""
    cal = bundle["calibrator"].predict(raw)
    iso_low = bundle.get("calibrator_low")
    if iso_low is not None:
        low = _low_evidence(rows, bundle["config"].get("low_evidence_events", 0))
        if low.any():
            cal[low] = iso_low.predict(raw[low])
    return cal


def _folds(user_ids: np.ndarray, seed: int, k: int) -> np.ndarray:
    """The cross-fitting fold (0..k-1) of each row's account, from a seeded hash of user_id."""
    uniq, inv = np.unique(user_ids, return_inverse=True)
    return np.minimum((_hash_unit(uniq, seed) * k).astype(int), k - 1)[inv]


def _train_model(tr: pd.DataFrame, cols: list[str], cfg: BotConfig):
    """The boosted trees on ``tr`` (young rows weighted ``young_weight``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    model = HistGradientBoostingClassifier(
        max_iter=cfg.max_iter,
        learning_rate=cfg.learning_rate,
        max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf,
        random_state=cfg.seed,
        categorical_features=[cols.index("home_country_code")],
    )
    # one OpenMP thread: on a busy machine HGB's threads spin-wait for cores (30x slower)
    with threadpool_limits(1):
        young_tr = tr["account_age_days"].to_numpy() <= cfg.young_days + 1
        tw = tr["weight"].to_numpy() * np.where(young_tr, cfg.young_weight, 1.0)
        model.fit(tr[cols].to_numpy(float), tr["label"].to_numpy(), sample_weight=tw)
    return model


def _predict(model, x: pd.DataFrame) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return model.predict_proba(x.to_numpy(float))[:, 1]


def _row_label_frequency(bundle: dict, rows: pd.DataFrame):
    """The label frequency of each row: the young rows' own when the bundle has one."""
    c, c_young = bundle["label_frequency"], bundle.get("label_frequency_young")
    if c_young is None:
        return c
    young_days = bundle["config"].get("young_days", 0.0)
    return np.where(rows["account_age_days"].to_numpy() <= young_days + 1, c_young, c)


def fit(df: pd.DataFrame, cfg: BotConfig, exclude: set[int] | None = None) -> dict:
    """Train, calibrate and pick the threshold; returns the model bundle (a dict)."""
    if cfg.crossfit_folds == 1 or cfg.crossfit_folds < 0:
        raise UserError(f"crossfit_folds {cfg.crossfit_folds}: use 0 (off) or 2 or more.")
    if cfg.crossfit_scoring not in ("own", "mean"):
        raise UserError(f"crossfit_scoring {cfg.crossfit_scoring!r}: use own or mean.")
    if cfg.splits > 1:
        members = [
            fit(df, dataclasses.replace(cfg, splits=1, seed=cfg.seed + 7919 * k), exclude)
            for k in range(cfg.splits)
        ]
        keys = ("validation_pr_auc", "validation_precision_at_threshold", "label_frequency")
        metrics = {k: float(np.mean([m["metrics"][k] for m in members])) for k in keys}
        metrics["member_thresholds"] = [m["threshold"] for m in members]
        return {
            "members": members,
            "columns": members[0]["columns"],
            "threshold": float(np.median([m["threshold"] for m in members])),
            "config": dataclasses.asdict(cfg),
            "metrics": metrics,
        }
    cols = _columns(cfg.mode)
    if exclude:
        df = df[~df["user_id"].isin(exclude)]
    # the fit depends on row order (the early-stopping split of the boosting picks rows by
    # position): fix it by the rows' key, whatever order the frame came in
    df = df.sort_values(["user_id", "event_timestamp"], kind="stable")
    users = df["user_id"].unique()
    if len(users) < 20 or df["label"].nunique() < 2:
        raise UserError(
            f"only {len(users)} labeled accounts ({int(df['label'].sum())} positive rows): "
            "bot training needs both suspended (bot/spam) and other accounts; ingest a larger world."
        )
    models = None
    if cfg.crossfit_folds > 1:
        # every account in one fold; each fold's model learns on the others and scores it
        fold = _folds(df["user_id"].to_numpy(), cfg.seed, cfg.crossfit_folds)
        raw = np.empty(len(df))
        models = []
        for k in range(cfg.crossfit_folds):
            m = _train_model(df[fold != k], cols, cfg)
            if (fold == k).any():
                raw[fold == k] = _predict(m, df.loc[fold == k, cols])
            models.append(m)
        tr, va, model = df, df, models[0]
    else:
        is_val = dict(zip(users.tolist(), (_hash_unit(users, cfg.seed) < cfg.validation_share)))
        val = df["user_id"].map(is_val).to_numpy()
        tr, va = df[~val], df[val]
        model = _train_model(tr, cols, cfg)
        raw = _predict(model, va[cols])
    y, w = va["label"].to_numpy(), va["weight"].to_numpy()
    fit_rows = np.ones(len(va), bool)
    if cfg.label_maturity_days and cfg.maturity_scope == "calibration":
        fit_rows = _mature(va, cfg.label_maturity_days)
    # the profile baseline sees no behaviour: its calibration does not split on the event count
    low = _low_evidence(va, cfg.low_evidence_events if cfg.mode == "behavior" else 0)
    iso, iso_low, cal = fit_calibration(raw, y, w, low, fit_rows)
    c = 1.0
    if cfg.pu:
        lab = (y == 1) & fit_rows
        c = float(np.average(cal[lab], weights=w[lab]))
        c = min(max(c, 0.05), 1.0)
    c_young = None
    young = va["account_age_days"].to_numpy() <= cfg.young_days + 1
    if cfg.pu and cfg.young_label_frequency and ((y == 1) & fit_rows & young).any():
        lab = (y == 1) & fit_rows & young
        c_young = min(max(float(np.average(cal[lab], weights=w[lab])), 0.05), 1.0)
    c_rows = np.where(young, c_young, c) if c_young is not None else c
    prob = np.minimum(cal / c_rows, 1.0)
    thr, prec, rec, young_thr = _guardrail(va, y, prob, w, c_rows, cfg)
    metrics = {
        "train_accounts": int(tr["user_id"].nunique()),
        "validation_accounts": int(va["user_id"].nunique()),
        "validation_positive_accounts": int(va.loc[va["label"] == 1, "user_id"].nunique()),
        "label_frequency": c,
        "label_frequency_young": c_young,
        "validation_pr_auc": _pr_auc(y, cal, w),
        "threshold": thr,
        "young_threshold": young_thr,
        "validation_precision_at_threshold": prec,
        "validation_recall_at_threshold": rec,
    }
    log.info("accounts bots (%s): %s", cfg.mode, metrics)
    return {
        "model": model,
        "calibrator": iso,
        "calibrator_low": iso_low,
        "models": models,
        "columns": cols,
        "threshold": thr,
        "label_frequency": c,
        "label_frequency_young": c_young,
        "config": dataclasses.asdict(cfg),
        "metrics": metrics,
    }


def score(bundle: dict, feats: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """user_id, event_timestamp, bot_score (calibrated P(bot)), is_flagged (>= threshold)."""
    if "members" in bundle:
        parts = [score(m, feats, users) for m in bundle["members"]]
        out = parts[0].copy()
        out["bot_score"] = np.mean([p["bot_score"].to_numpy() for p in parts], axis=0)
        out["bot_score_raw"] = np.mean([p["bot_score_raw"].to_numpy() for p in parts], axis=0)
        votes = np.sum([p["is_flagged"].to_numpy() for p in parts], axis=0)
        out["is_flagged"] = (votes * 2 > len(parts)).astype(int)
        return out
    df = feats.merge(profile_columns(users), on="user_id", how="left")
    x = df[bundle["columns"]]
    models = bundle.get("models")
    if not models:
        raw = _predict(bundle["model"], x)
        cal = _calibrate(bundle, raw, df)
    elif bundle["config"].get("crossfit_scoring", "own") == "mean":
        raws = [_predict(m, x) for m in models]
        raw = np.mean(raws, axis=0)
        cal = np.mean([_calibrate(bundle, r, df) for r in raws], axis=0)
    else:  # each row by its account's fold model (the out-of-fold score for a trained account)
        fold = _folds(df["user_id"].to_numpy(), bundle["config"]["seed"], len(models))
        raw = np.zeros(len(df))
        for k, m in enumerate(models):
            if (fold == k).any():
                raw[fold == k] = _predict(m, x[fold == k])
        cal = _calibrate(bundle, raw, df)
    cal = np.minimum(cal / _row_label_frequency(bundle, df), 1.0)
    active = df["events_7d"].to_numpy() >= bundle["config"].get("min_events", 0)
    return pd.DataFrame(
        {
            "user_id": df["user_id"].to_numpy(),
            "event_timestamp": df["event_timestamp"].to_numpy(),
            "bot_score": cal.astype(float),
            "bot_score_raw": raw.astype(float),
            "is_flagged": ((cal >= bundle["threshold"]) & active).astype(int),
        }
    )


# -- the lake side: read inputs, train, save, score --------------------------------------------
def read_lake() -> dict[str, pd.DataFrame]:
    """Features (features/account_features.parquet), users, enforcement, labels, post authors."""
    import duckdb

    paths = config.paths()
    feats = paths.features / f"{TABLE}.parquet"
    need = {
        "features": feats,
        "users": paths.lake_users / "users.parquet",
        "enforcement": paths.lake_enforcement / "enforcement.parquet",
        "labels": paths.lake_labels / "labels.parquet",
    }
    for name, p in need.items():
        if not p.exists():
            fix = "`vigil accounts features`" if name == "features" else "`vigil ingest --raw RAW`"
            raise UserError(f"{p} is missing ({name}): run {fix} on an accounts world first.")
    out = {name: pd.read_parquet(p) for name, p in need.items()}
    events = sorted(paths.lake_events.glob("dt=*/events.parquet"))
    files = ", ".join(f"'{p}'" for p in events)
    con = duckdb.connect()
    out["post_authors"] = con.sql(
        f"select distinct post_id, user_id from read_parquet([{files}]) where action = 'post'"
    ).df()
    return out


def train(cfg: BotConfig, exclude: set[int] | None = None, save: bool = True) -> dict:
    import joblib

    started = time.perf_counter()
    data = read_lake()
    labels = platform_labels(data["enforcement"], data["labels"], data["post_authors"])
    # reviewers' verdicts on accounts (`vigil accounts verdict ... --reason bot`) are labels too
    from vigil.accounts.queue import with_verdict_positives

    labels = with_verdict_positives(labels, POSITIVE_REASONS)
    df = training_frame(data["features"], data["users"], labels, data["enforcement"])
    bundle = fit(df, cfg, exclude)
    bundle["data"] = {
        "feature_rows": len(data["features"]),
        "training_rows": len(df),
        "positive_accounts": int(labels["user_id"].nunique()),
        "max_event_timestamp": str(data["features"]["event_timestamp"].max()),
    }
    if save:
        d = config.paths().models / MODEL_DIR / cfg.mode
        d.mkdir(parents=True, exist_ok=True)
        joblib.dump(bundle, d / "model.joblib")
        meta = {k: bundle[k] for k in ("config", "metrics", "data", "columns", "threshold")}
        (d / "model.json").write_text(json.dumps(meta, indent=1, default=str))
        bundle["path"] = str(d)
    bundle["seconds"] = round(time.perf_counter() - started, 2)
    return bundle


def load(mode: str = "behavior") -> dict:
    import joblib

    p = config.paths().models / MODEL_DIR / mode / "model.joblib"
    if not p.exists():
        raise UserError(f"no bot model at {p}: run `vigil accounts train` first.")
    return joblib.load(p)


def score_lake(mode: str = "behavior", out: Path | None = None) -> dict:
    """Score every feature row of the lake; write features/account_bot_scores.parquet."""
    bundle = load(mode)
    data = read_lake()
    scores = score(bundle, data["features"], data["users"])
    dest = out or config.paths().features / "account_bot_scores.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(dest, index=False)
    latest = scores[scores["event_timestamp"] == scores["event_timestamp"].max()]
    return {
        "rows": len(scores),
        "flagged_latest_day": int(latest["is_flagged"].sum()),
        "accounts_latest_day": len(latest),
        "threshold": bundle["threshold"],
        "path": str(dest),
    }
