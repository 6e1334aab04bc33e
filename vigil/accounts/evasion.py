"""Ban-evasion matching: for each account created after a suspension, the suspended accounts it
most likely belongs to, ranked, with the evidence behind each score.

Inputs are platform-side tables only (the lake's events and users, the enforcement log, login
fingerprints); nothing here knows which accounts really are evaders.

Evidence for a pair (new account N, suspended account S, S suspended before N was created):

- ``device_shared``: for the rarest device fingerprint both logged in from, min(1, 2 / accounts
  seen on it): a personal device (the two accounts only) counts 1, a bot farm's device shared
  by 40 accounts 0.05 (it says "same farm", not "same account");
- ``network_shared``: the same for network fingerprints, so a network shared by a whole campus
  counts for little;
- ``text_cosine``: cosine of the TF-IDF vectors of all their post and reply texts;
- ``target_cosine``: cosine of the TF-IDF-weighted counts of the accounts they reply to, follow,
  @mention (handles resolved through the users table) or act on (popular targets weigh little);
- ``cadence``: for two accounts that both act on a schedule (of their gaps of 2 minutes or more,
  at least half within 10% of their median), exp(-|ln(median gap ratio)| / 0.05); 0 otherwise. A scheduled bot that
  comes back keeps its period, and two bots of one farm seldom share one;
- ``handle_stem``: 1 when both handles are the same once trailing digits are dropped
  (``quiet_harbor853`` and ``quiet_harbor12``);
- ``hour_cosine``: cosine of their hour-of-day activity profiles after subtracting the
  population's profile (every human is active in the evening; what is left is the habit);
- ``same_country``: 1 when both profiles give the same home country (weak alone: most
  accounts share a few countries; it breaks ties between candidates that look alike);
- ``recency``: exp(-days between S's suspension and N's creation / ``recency_days``, 3): an
  evader comes back within days, so of two look-alike candidates the one suspended just before
  N was created is the likelier.

The score is hand-weighted (``MatchConfig``): a weighted sum of the evidence. The weights were
set once from the evidence's meaning (a shared device is near proof, a shared rare network
strong, text and targets graded) and are not fitted to any truth; ``docs/accounts.md`` reports
how they rank on simulated worlds.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

log = logging.getLogger(__name__)

TEXT_ACTIONS = ("post", "reply")
EVIDENCE = (
    "device_shared",
    "network_shared",
    "text_cosine",
    "target_cosine",
    "cadence",
    "hour_cosine",
    "handle_stem",
    "same_country",
    "recency",
)
MATCH_COLUMNS = ("user_id", "candidate_id", "rank", "score", "suspended_at", *EVIDENCE)
URL_RE = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class MatchConfig:
    """Weights of the evidence, the recency scale and how many candidates to keep per account."""

    w_device: float = 2.0
    w_network: float = 1.0
    w_text: float = 1.5
    w_target: float = 1.5
    w_cadence: float = 1.0
    w_hour: float = 0.5
    w_handle: float = 0.8
    w_country: float = 0.3
    w_recency: float = 0.6
    recency_days: float = 3.0  # evaders come back within days: older suspensions fade fast
    max_gap_days: float = 60.0  # suspended accounts older than this are not candidates
    top_k: int = 5
    match_threshold: float = 1.8  # a top score at or above it is reported as a match

    def weights(self) -> dict[str, float]:
        return {
            "device_shared": self.w_device,
            "network_shared": self.w_network,
            "text_cosine": self.w_text,
            "target_cosine": self.w_target,
            "cadence": self.w_cadence,
            "hour_cosine": self.w_hour,
            "handle_stem": self.w_handle,
            "same_country": self.w_country,
            "recency": self.w_recency,
        }


def config_from(overrides: dict | None) -> MatchConfig:
    """A MatchConfig with ``overrides`` applied; unknown keys are refused by the caller's check."""
    if not overrides:
        return MatchConfig()
    known = {f.name for f in dataclasses.fields(MatchConfig)}
    return MatchConfig(**{k: v for k, v in overrides.items() if k in known})


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def _ns(series: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (whatever unit the column was stored in)."""
    return _utc(series).dt.as_unit("ns").astype("int64").to_numpy()


def new_accounts(users: pd.DataFrame, enforcement: pd.DataFrame) -> pd.DataFrame:
    """Accounts created after the first suspension in the log (user_id, created_at), never
    themselves suspended before creation: the accounts an evader could be among."""
    if enforcement.empty or users.empty:
        return users.iloc[0:0][["user_id", "created_at"]]
    first = _utc(enforcement["enforced_at"]).min()
    created = _utc(users["created_at"])
    out = users.loc[created > first, ["user_id"]].copy()
    out["created_at"] = created[created > first]
    return out.reset_index(drop=True)


def suspensions(enforcement: pd.DataFrame) -> pd.DataFrame:
    """One row per suspended account (user_id, suspended_at = its first suspension)."""
    if enforcement.empty:
        return pd.DataFrame({"user_id": [], "suspended_at": []})
    e = enforcement
    if "action" in e.columns:
        e = e[e["action"].fillna("suspend") == "suspend"]
    s = (
        e.assign(suspended_at=_utc(e["enforced_at"]))
        .groupby("user_id", as_index=False)["suspended_at"]
        .min()
    )
    return s.astype({"user_id": "int64"})


def _row_normalize(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ m


def _index(ids: np.ndarray) -> dict[int, int]:
    return {int(u): i for i, u in enumerate(ids)}


def _text_vectors(events: pd.DataFrame, ids: np.ndarray) -> sp.csr_matrix:
    """TF-IDF (sublinear tf, words of 2+ letters, links as tokens) of each account's texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    t = events[events["action"].isin(TEXT_ACTIONS) & events["text"].notna()]
    t = t[t["user_id"].isin(ids)]
    docs = t.groupby("user_id")["text"].agg(" ".join)
    texts = [docs.get(int(u), "") for u in ids]
    if not any(texts):
        return sp.csr_matrix((len(ids), 1))
    vec = TfidfVectorizer(
        sublinear_tf=True, token_pattern=r"https?://\S+|@\w+|[a-z]{2,}", lowercase=True, min_df=1
    )
    return _row_normalize(vec.fit_transform(texts).tocsr())


MENTION_RE = r"@(\w+)"
MIN_CADENCE_GAP_NS = 120 * 10**9


def _targets(events: pd.DataFrame, users: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """(user_id, target_user_id) of every action aimed at another account: the events' targets
    and the accounts @mentioned in texts (handles resolved through the users table)."""
    mine = events[events["user_id"].isin(ids)]
    t = mine.loc[mine["target_user_id"].notna(), ["user_id", "target_user_id"]]
    if "handle" in users.columns:
        texts = mine.loc[mine["text"].notna(), ["user_id", "text"]]
        found = texts["text"].str.extractall(MENTION_RE)
        if len(found):
            owner = texts["user_id"].to_numpy()[
                found.index.get_level_values(0).map({k: i for i, k in enumerate(texts.index)})
            ]
            by_handle = users.dropna(subset=["handle"]).drop_duplicates("handle")
            lookup = dict(zip(by_handle["handle"].str.lower(), by_handle["user_id"]))
            target = found[0].str.lower().map(lookup)
            mentions = pd.DataFrame({"user_id": owner, "target_user_id": target.to_numpy()})
            t = pd.concat([t, mentions.dropna()], ignore_index=True)
    t = t.astype({"user_id": "int64", "target_user_id": "int64"})
    return t[t["target_user_id"] != t["user_id"]]


def _target_vectors(targets: pd.DataFrame, ids: np.ndarray) -> sp.csr_matrix:
    t = targets
    if t.empty:
        return sp.csr_matrix((len(ids), 1))
    counts = t.groupby(["user_id", "target_user_id"]).size().reset_index(name="n")
    targets = np.sort(counts["target_user_id"].unique())
    row = counts["user_id"].map(_index(ids)).to_numpy()
    col = np.searchsorted(targets, counts["target_user_id"].to_numpy())
    m = sp.csr_matrix(
        (np.log1p(counts["n"].to_numpy(float)), (row, col)), shape=(len(ids), len(targets))
    )
    df = np.asarray((m > 0).sum(axis=0)).ravel()
    idf = np.log((1 + len(ids)) / (1 + df)) + 1.0
    return _row_normalize(m @ sp.diags(idf))


def _hour_vectors(events: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    e = events[events["user_id"].isin(ids)]
    hours = _utc(e["event_ts"]).dt.hour.to_numpy()
    rows = e["user_id"].map(_index(ids)).to_numpy()
    m = np.zeros((len(ids), 24))
    np.add.at(m, (rows, hours), 1.0)
    totals = m.sum(axis=1, keepdims=True)
    active = totals.ravel() > 0
    m[active] /= totals[active]
    if active.any():
        m[active] -= m[active].mean(axis=0)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


def _handle_stems(users: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    """The handle without its trailing digits, lowercased ('' when unknown or shorter than 4)."""
    if "handle" not in users.columns:
        return np.array([""] * len(ids), dtype=object)
    stem = users.drop_duplicates("user_id").set_index("user_id")["handle"].reindex(ids)
    stem = stem.fillna("").astype(str).str.lower().str.rstrip("0123456789_")
    return np.where(stem.str.len() >= 4, stem, "").astype(object)


def _same_country(users: pd.DataFrame, new_ids: np.ndarray, sus_ids: np.ndarray) -> np.ndarray:
    """1 where both accounts have the same home country on their profile (0 when unknown)."""
    if "home_country" not in users.columns:
        return np.zeros((len(new_ids), len(sus_ids)))
    home = users.drop_duplicates("user_id").set_index("user_id")["home_country"]
    a = home.reindex(new_ids).fillna("").astype(str).to_numpy()
    b = home.reindex(sus_ids).fillna("").astype(str).to_numpy()
    return ((a[:, None] == b[None, :]) & (a[:, None] != "")).astype(float)


def _cadence(events: pd.DataFrame, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log median gap, is regular) per account; regular = >= 5 gaps, half within 10% of it."""
    e = events[events["user_id"].isin(ids) & (events["action"] != "login")]
    e = e.assign(ns=_ns(e["event_ts"])).sort_values(["user_id", "ns"])
    gaps = e.groupby("user_id")["ns"].diff().dropna()
    gaps = gaps[gaps >= MIN_CADENCE_GAP_NS]  # bursts and in-session clicks say nothing of a period
    users = e.loc[gaps.index, "user_id"]
    frame = pd.DataFrame({"user_id": users.to_numpy(), "gap": gaps.to_numpy(float)})
    med = frame.groupby("user_id")["gap"].median()
    frame["near"] = (frame["gap"] / frame["user_id"].map(med) - 1.0).abs() <= 0.1
    stats = frame.groupby("user_id").agg(n=("gap", "size"), near=("near", "mean"))
    regular = (stats["n"] >= 5) & (stats["near"] >= 0.5)
    log_med = np.log(med.reindex(ids).fillna(1.0).to_numpy())
    return log_med, regular.reindex(ids).astype("boolean").fillna(False).to_numpy(bool)


def _fingerprint_evidence(devices: pd.DataFrame | None, new_ids, sus_ids):
    """(device_shared, network_shared) matrices new x suspended."""
    shape = (len(new_ids), len(sus_ids))
    if devices is None or devices.empty:
        return np.zeros(shape), np.zeros(shape)
    out = []
    for column in ("device_fp", "network_fp"):
        d = devices[["user_id", column]].dropna().drop_duplicates()
        fps = np.sort(d[column].astype(str).unique())
        accounts_per_fp = d.groupby(column)["user_id"].nunique().reindex(fps).to_numpy(float)
        weight = np.minimum(1.0, 2.0 / accounts_per_fp)

        def incidence(ids, d=d, fps=fps, column=column):
            sel = d[d["user_id"].isin(ids)]
            r = sel["user_id"].map(_index(ids)).to_numpy()
            c = np.searchsorted(fps, sel[column].astype(str).to_numpy())
            return sp.csr_matrix((np.ones(len(sel)), (r, c)), shape=(len(ids), len(fps)))

        a, b = incidence(new_ids), incidence(sus_ids)
        # the rarest shared fingerprint: max over common fps of its weight
        shared = (a @ sp.diags(weight)).tocsr()
        best = np.zeros(shape)
        for i in range(shape[0]):
            row = shared.getrow(i)
            if row.nnz == 0:
                continue
            cand = b[:, row.indices].multiply(row.data).tocsr()
            best[i] = np.asarray(cand.max(axis=1).todense()).ravel()
        out.append(best)
    return out[0], out[1]


def evidence(
    events: pd.DataFrame,
    users: pd.DataFrame,
    enforcement: pd.DataFrame,
    devices: pd.DataFrame | None = None,
    config: MatchConfig | None = None,
) -> pd.DataFrame:
    """Every eligible (new account, suspended account) pair with its evidence and score."""
    cfg = config or MatchConfig()
    new = new_accounts(users, enforcement)
    sus = suspensions(enforcement)
    new = new[~new["user_id"].isin(sus["user_id"])]
    if new.empty or sus.empty:
        return pd.DataFrame(columns=["user_id", "candidate_id", "score", "suspended_at", *EVIDENCE])
    new_ids = new["user_id"].to_numpy("int64")
    sus_ids = sus["user_id"].to_numpy("int64")
    both = np.concatenate([new_ids, sus_ids])
    n = len(new_ids)
    # one vocabulary and one target space for both sides, so the cosines compare like with like
    text = _text_vectors(events, both)
    target = _target_vectors(_targets(events, users, both), both)
    hour = _hour_vectors(events, both)
    device, network = _fingerprint_evidence(devices, new_ids, sus_ids)
    mats = {
        "device_shared": device,
        "network_shared": network,
        "text_cosine": (text[:n] @ text[n:].T).toarray(),
        "target_cosine": (target[:n] @ target[n:].T).toarray(),
        "hour_cosine": np.clip(hour[:n] @ hour[n:].T, 0.0, None),
    }
    stems = _handle_stems(users, both)
    same = stems[:n, None] == stems[None, n:]
    mats["handle_stem"] = (same & (stems[:n, None] != "")).astype(float)
    mats["same_country"] = _same_country(users, new_ids, sus_ids)
    log_med, regular = _cadence(events, both)
    both_regular = regular[:n, None] & regular[None, n:]
    close = np.exp(-np.abs(log_med[:n, None] - log_med[None, n:]) / 0.05)
    mats["cadence"] = np.where(both_regular, close, 0.0)
    created_ns = _ns(new["created_at"])
    suspended_ns = _ns(sus["suspended_at"])
    gap_days = (created_ns[:, None] - suspended_ns[None, :]) / 86_400e9
    eligible = (gap_days >= 0) & (gap_days <= cfg.max_gap_days)
    mats["recency"] = np.where(eligible, np.exp(-np.clip(gap_days, 0, None) / cfg.recency_days), 0)
    ii, jj = np.nonzero(eligible)
    out = pd.DataFrame(
        {
            "user_id": new_ids[ii],
            "candidate_id": sus_ids[jj],
            "suspended_at": sus["suspended_at"].to_numpy()[jj],
        }
    )
    score = np.zeros(len(ii))
    for name, w in cfg.weights().items():
        out[name] = mats[name][ii, jj].astype(float)
        score += w * out[name].to_numpy()
    out["score"] = score
    out["suspended_at"] = _utc(out["suspended_at"])
    log.info(
        "evasion: %d new accounts x %d suspended accounts -> %d eligible pairs",
        n,
        len(sus_ids),
        len(out),
    )
    return out


def match(
    events: pd.DataFrame,
    users: pd.DataFrame,
    enforcement: pd.DataFrame,
    devices: pd.DataFrame | None = None,
    config: MatchConfig | None = None,
) -> pd.DataFrame:
    """The top ``top_k`` suspended accounts per new account, ranked by score (ties: lower id)."""
    cfg = config or MatchConfig()
    pairs = evidence(events, users, enforcement, devices, cfg)
    if pairs.empty:
        return pd.DataFrame(columns=list(MATCH_COLUMNS))
    pairs = pairs.sort_values(["user_id", "score", "candidate_id"], ascending=[True, False, True])
    pairs["rank"] = pairs.groupby("user_id").cumcount() + 1
    top = pairs[pairs["rank"] <= cfg.top_k]
    return top[list(MATCH_COLUMNS)].reset_index(drop=True)


def best_matches(matches: pd.DataFrame, config: MatchConfig | None = None) -> pd.DataFrame:
    """Per new account its top candidate, with ``is_match`` = score >= the match threshold."""
    cfg = config or MatchConfig()
    top = matches[matches["rank"] == 1].copy()
    top["is_match"] = top["score"] >= cfg.match_threshold
    return top.reset_index(drop=True)
