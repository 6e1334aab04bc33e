"""Colluding raters: pairs who rate the same notes within minutes of each other far above chance.

Honest raters meet on a note at independent times; a coordinated group rates a member's note in
a burst. For every pair of raters the detector counts the notes both rated within
``window_minutes`` of each other (``c``) and compares it with what their activity alone predicts:

    expected = n_u * n_v * sum_n k_n (k_n - 1) / R^2 * q_W

``n_u`` is a rater's number of ratings, ``k_n`` a note's, ``R`` all ratings (so ``n_u n_v sum k_n^2
/ R^2`` is how many notes two raters share when each picks notes in proportion to their
popularity), and ``q_W`` the share of all same-note rating pairs that fall within the window. A
pair is flagged when ``c >= min_co_ratings`` (3), ``c / expected >= min_lift`` and the Poisson tail
``P(X >= c | expected)`` is below ``alpha`` divided by the number of possible pairs (Bonferroni:
the false alarms over the whole population stay below ``alpha``). Flagged pairs form a graph;
its connected components are the groups reported, with the evidence for each rater.

Limits: a global window share ``q_W`` assumes raters have the same delay habits; two honest raters
who both rate every new note in its first minutes look alike to it, hence the lift threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse import csgraph

from vigil.errors import UserError
from vigil.notes import format as fmt

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
_COLUMNS = ("noteId", "raterParticipantId", "createdAtMillis")


@dataclass(frozen=True)
class CollusionConfig:
    window_minutes: float = 10.0
    min_co_ratings: int = 3  # the Poisson tail and Bonferroni do the rest
    min_lift: float = 20.0
    alpha: float = 0.01  # family-wise false-alarm rate over all possible pairs
    min_group_size: int = 2


@dataclass
class CollusionResult:
    raters: pd.DataFrame  # one row per flagged rater: group and evidence
    pairs: pd.DataFrame  # one row per flagged pair
    summary: dict


def read_ratings(path: str | Path) -> pd.DataFrame:
    """The three columns detection needs from a ratings file in the public download format."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"ratings file {path} does not exist: give the download's {fmt.RATINGS_FILE}."
        )
    header = pd.read_csv(path, sep="\t", nrows=0).columns
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise UserError(
            f"{path} has no column {missing[0]}: give a ratings file in the public download "
            f"format ({fmt.RATINGS_FILE})."
        )
    return pd.read_csv(
        path,
        sep="\t",
        usecols=list(_COLUMNS),
        dtype={"noteId": "int64", "raterParticipantId": "string", "createdAtMillis": "int64"},
    )


def detect(ratings: pd.DataFrame, cfg: CollusionConfig = CollusionConfig()) -> CollusionResult:
    """Flag colluding raters in ``ratings`` (columns noteId, raterParticipantId, createdAtMillis)."""
    missing = [c for c in _COLUMNS if c not in ratings.columns]
    if missing:
        raise UserError(f"ratings have no column {missing[0]}: pass the download's columns.")
    rater_codes, rater_ids = pd.factorize(ratings["raterParticipantId"], sort=True)
    note_codes, _ = pd.factorize(ratings["noteId"], sort=True)
    frame = pd.DataFrame(
        {"n": note_codes, "u": rater_codes, "t": ratings["createdAtMillis"].to_numpy(np.int64)}
    ).drop_duplicates(["n", "u"])
    a, b = _pairs_within_window(frame, int(cfg.window_minutes * MINUTE_MS))
    pairs = _score_pairs(frame, a, b, len(rater_ids), cfg)
    flagged = pairs[pairs["flagged"]].drop(columns="flagged").reset_index(drop=True)
    raters = _groups(flagged, len(rater_ids), cfg)
    flagged["raterA"] = np.asarray(rater_ids)[flagged["a"].to_numpy()]
    flagged["raterB"] = np.asarray(rater_ids)[flagged["b"].to_numpy()]
    raters.insert(0, "raterParticipantId", np.asarray(rater_ids)[raters["u"].to_numpy(np.int64)])
    summary = {
        "ratings": len(frame),
        "raters": len(rater_ids),
        "pairs_within_window": int(pairs["coRatings"].sum()),
        "pairs_seen": len(pairs),
        "pairs_flagged": len(flagged),
        "groups": int(raters["groupId"].nunique()) if len(raters) else 0,
        "raters_flagged": len(raters),
    }
    log.info(
        "collusion: %d ratings by %d raters; %d rating pairs within %.0f min over %d rater pairs; "
        "%d pairs flagged -> %d raters in %d groups",
        summary["ratings"],
        summary["raters"],
        summary["pairs_within_window"],
        cfg.window_minutes,
        summary["pairs_seen"],
        summary["pairs_flagged"],
        summary["raters_flagged"],
        summary["groups"],
    )
    cols = ["raterA", "raterB", "coRatings", "expected", "lift", "pValue"]
    return CollusionResult(raters.drop(columns="u"), flagged[cols], summary)


def _pairs_within_window(frame: pd.DataFrame, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Rater index pairs (a < b) of every two ratings of one note at most ``window_ms`` apart."""
    s = frame.sort_values(["n", "t"], kind="stable")
    n, u, t = (s[c].to_numpy() for c in ("n", "u", "t"))
    out_a, out_b = [], []
    j = 1
    while j < len(n):
        hit = (n[j:] == n[:-j]) & (t[j:] - t[:-j] <= window_ms)
        if not hit.any():
            break  # sorted by time within a note: no pair further apart can be closer
        idx = np.flatnonzero(hit)
        out_a.append(u[idx])
        out_b.append(u[idx + j])
        j += 1
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    return np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)


def _score_pairs(frame, a, b, n_raters: int, cfg: CollusionConfig) -> pd.DataFrame:
    """Observed and expected within-window co-ratings per rater pair, lift and Poisson tail."""
    key, counts = np.unique(a * n_raters + b, return_counts=True)
    pa, pb = key // n_raters, key % n_raters
    k = np.bincount(frame["n"].to_numpy()).astype(np.float64)
    n_u = np.bincount(frame["u"].to_numpy(), minlength=n_raters).astype(np.float64)
    total = k.sum()
    same_note_pairs = (k * (k - 1)).sum() / 2
    q_w = len(a) / same_note_pairs if same_note_pairs else 0.0
    expected = n_u[pa] * n_u[pb] * (k * (k - 1)).sum() / total**2 * q_w
    expected = np.maximum(expected, 1e-12)
    p_value = stats.poisson.sf(counts - 1, expected)
    possible_pairs = max(n_raters * (n_raters - 1) / 2, 1)
    lift = counts / expected
    flagged = (
        (counts >= cfg.min_co_ratings)
        & (lift >= cfg.min_lift)
        & (p_value <= cfg.alpha / possible_pairs)
    )
    log.debug("collusion: window share q_W %.4f over %.0f same-note pairs", q_w, same_note_pairs)
    return pd.DataFrame(
        {
            "a": pa,
            "b": pb,
            "coRatings": counts,
            "expected": expected,
            "lift": lift,
            "pValue": p_value,
            "flagged": flagged,
        }
    )


def _groups(flagged: pd.DataFrame, n_raters: int, cfg: CollusionConfig) -> pd.DataFrame:
    """Connected components of the flagged-pair graph, with per-rater evidence."""
    empty = pd.DataFrame(
        columns=["u", "groupId", "groupSize", "flaggedPartners", "coRatingsWithPartners", "maxLift"]
    )
    if flagged.empty:
        return empty
    a, b = flagged["a"].to_numpy(), flagged["b"].to_numpy()
    graph = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n_raters, n_raters))
    _, label = csgraph.connected_components(graph, directed=False)
    ends = np.concatenate([a, b])
    stats_u = pd.DataFrame(
        {
            "u": ends,
            "co": np.concatenate([flagged["coRatings"].to_numpy()] * 2),
            "lift": np.concatenate([flagged["lift"].to_numpy()] * 2),
        }
    ).groupby("u")
    out = pd.DataFrame(
        {
            "flaggedPartners": stats_u.size(),
            "coRatingsWithPartners": stats_u["co"].sum(),
            "maxLift": stats_u["lift"].max(),
        }
    ).reset_index()
    out["component"] = label[out["u"].to_numpy()]
    sizes = out.groupby("component")["u"].transform("size")
    out = out[sizes >= cfg.min_group_size].copy()
    out["groupSize"] = sizes[out.index]
    # groups numbered by size (largest first), then by their smallest member
    order = (
        out.groupby("component")
        .agg(size=("u", "size"), first=("u", "min"))
        .sort_values(["size", "first"], ascending=[False, True])
    )
    out["groupId"] = out["component"].map({c: i for i, c in enumerate(order.index)})
    out = out.sort_values(["groupId", "u"]).reset_index(drop=True)
    return out[empty.columns]


def write(result: CollusionResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``colluding_raters.tsv`` and ``colluding_pairs.tsv`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raters_path, pairs_path = out / "colluding_raters.tsv", out / "colluding_pairs.tsv"
    result.raters.to_csv(raters_path, sep="\t", index=False)
    result.pairs.to_csv(pairs_path, sep="\t", index=False)
    return raters_path, pairs_path
