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
    min_group_lift: float = 5.0  # a rater against a whole group: far fewer tests than pairs
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
    a, b, on_note = _pairs_within_window(frame, int(cfg.window_minutes * MINUTE_MS))
    pairs, n_u, unit = _score_pairs(frame, a, b, len(rater_ids), cfg)
    flagged = pairs[pairs["flagged"]].drop(columns="flagged").reset_index(drop=True)
    groups = _groups(flagged, len(rater_ids), cfg)
    raters = _expand_groups(groups, (a, b, on_note), n_u, unit, cfg)
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


def _pairs_within_window(frame: pd.DataFrame, window_ms: int):
    """Rater index pairs (a < b), and their note, of every two ratings of one note at most
    ``window_ms`` apart."""
    s = frame.sort_values(["n", "t"], kind="stable")
    n, u, t = (s[c].to_numpy() for c in ("n", "u", "t"))
    out_a, out_b, out_n = [], [], []
    j = 1
    while j < len(n):
        hit = (n[j:] == n[:-j]) & (t[j:] - t[:-j] <= window_ms)
        if not hit.any():
            break  # sorted by time within a note: no pair further apart can be closer
        idx = np.flatnonzero(hit)
        out_a.append(u[idx])
        out_b.append(u[idx + j])
        out_n.append(n[idx])
        j += 1
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    return lo, hi, np.concatenate(out_n).astype(np.int64)


def _score_pairs(
    frame, a, b, n_raters: int, cfg: CollusionConfig
) -> tuple[pd.DataFrame, np.ndarray, float]:
    """Observed and expected within-window co-ratings per rater pair, lift and Poisson tail."""
    key, counts = np.unique(a * n_raters + b, return_counts=True)
    pa, pb = key // n_raters, key % n_raters
    k = np.bincount(frame["n"].to_numpy()).astype(np.float64)
    n_u = np.bincount(frame["u"].to_numpy(), minlength=n_raters).astype(np.float64)
    total = k.sum()
    same_note_pairs = (k * (k - 1)).sum() / 2
    q_w = len(a) / same_note_pairs if same_note_pairs else 0.0
    unit = (k * (k - 1)).sum() / total**2 * q_w  # expected co-ratings per unit of n_u * n_v
    expected = n_u[pa] * n_u[pb] * unit
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
    table = pd.DataFrame(
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
    return table, n_u, unit


def _groups(flagged: pd.DataFrame, n_raters: int, cfg: CollusionConfig) -> pd.DataFrame:
    """Connected components of the flagged-pair graph, with per-rater evidence."""
    empty = pd.DataFrame(
        columns=["u", "groupId", "flaggedPartners", "coRatingsWithPartners", "maxLift"]
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
    # groups numbered by size (largest first), then by their smallest member
    order = (
        out.groupby("component")
        .agg(size=("u", "size"), first=("u", "min"))
        .sort_values(["size", "first"], ascending=[False, True])
    )
    out["groupId"] = out["component"].map({c: i for i, c in enumerate(order.index)})
    out = out.sort_values(["groupId", "u"]).reset_index(drop=True)
    return out[empty.columns]


def _expand_groups(raters, window_pairs, n_u, unit: float, cfg: CollusionConfig) -> pd.DataFrame:
    """Grow each group by the raters who rate within the window of its members on far more
    notes than chance, then give every member that group-level evidence.

    A member who joins only some bursts may meet each other member too rarely for the pair test
    (tested against every possible pair) yet meet the group on many notes; this test is over
    raters and groups only (Bonferroni over ``raters x groups``), so it sees them. The count is
    of distinct notes (one coincidence with a whole group is one note, not one per member); its
    expectation, the sum of the pair expectations, can only overstate the chance level.
    """
    raters = raters.assign(foundBy="pairs")
    if raters.empty:
        return raters.assign(coRatingsWithGroup=[], groupLift=[])
    n_raters = len(n_u)
    a, b, c = window_pairs
    n_groups = int(raters["groupId"].nunique())
    bound = cfg.alpha / (n_raters * n_groups)
    added = []
    for _ in range(10):  # until no group grows
        assigned = np.zeros(n_raters, bool)
        assigned[raters["u"].to_numpy(np.int64)] = True
        if added:
            assigned[np.concatenate([x["u"] for x in added])] = True
        grew = False
        for g, members in _members(raters, added).items():
            co, expected = _group_co_ratings(members, a, b, c, n_u, unit)
            cand = np.flatnonzero(~assigned & (co >= cfg.min_co_ratings))
            p = stats.poisson.sf(co[cand] - 1, expected[cand])
            new = cand[(co[cand] / expected[cand] >= cfg.min_group_lift) & (p <= bound)]
            if len(new):
                added.append({"u": new, "groupId": g})
                assigned[new] = grew = True
        if not grew:
            break
    if added:
        extra = pd.DataFrame(
            {
                "u": np.concatenate([x["u"] for x in added]),
                "groupId": np.concatenate([np.full(len(x["u"]), x["groupId"]) for x in added]),
                "flaggedPartners": 0,
                "coRatingsWithPartners": 0,
                "maxLift": np.nan,
                "foundBy": "group",
            }
        )
        raters = pd.concat([raters, extra], ignore_index=True)
    raters["groupSize"] = raters.groupby("groupId")["u"].transform("size")
    evidence = []
    for g, members in _members(raters, []).items():
        co, expected = _group_co_ratings(members, a, b, c, n_u, unit, exclude_self=True)
        evidence.append(pd.DataFrame({"u": members, "co": co[members], "e": expected[members]}))
    ev = pd.concat(evidence).set_index("u")
    u = raters["u"].to_numpy(np.int64)
    raters["coRatingsWithGroup"] = ev.loc[u, "co"].to_numpy().astype(np.int64)
    raters["groupLift"] = ev.loc[u, "co"].to_numpy() / ev.loc[u, "e"].to_numpy()
    if added:
        log.info("collusion: %d more raters joined their group on group-level evidence",
                 sum(len(x["u"]) for x in added))  # fmt: skip
    return raters.sort_values(["groupId", "u"], ignore_index=True)


def _members(raters: pd.DataFrame, added: list[dict]) -> dict[int, np.ndarray]:
    u = [raters["u"].to_numpy(np.int64), *(x["u"] for x in added)]
    g = [raters["groupId"].to_numpy(np.int64), *(np.full(len(x["u"]), x["groupId"]) for x in added)]
    frame = pd.DataFrame({"u": np.concatenate(u), "g": np.concatenate(g)})
    return {int(k): v["u"].to_numpy() for k, v in frame.groupby("g")}


def _group_co_ratings(members, a, b, note, n_u, unit, exclude_self: bool = False):
    """Per rater: the notes they rated within the window of a group member, and the chance level."""
    n_raters = len(n_u)
    inside = np.zeros(n_raters, bool)
    inside[members] = True
    if exclude_self:  # a member against the rest of the group: pairs with both ends inside
        both = inside[a] & inside[b]
        who = np.concatenate([a[both], b[both]])
        where = np.concatenate([note[both], note[both]])
        expected = n_u * (n_u[members].sum() - n_u) * unit
    else:  # an outsider against the group: pairs with exactly one end inside
        one = inside[a] ^ inside[b]
        who = np.where(inside[a], b, a)[one]
        where = note[one]
        expected = n_u * n_u[members].sum() * unit
    distinct = np.unique(who * (int(note.max(initial=0)) + 1) + where)
    co = np.bincount(distinct // (int(note.max(initial=0)) + 1), minlength=n_raters)
    return co.astype(np.float64), np.maximum(expected, 1e-12)


def write(result: CollusionResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``colluding_raters.tsv`` and ``colluding_pairs.tsv`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raters_path, pairs_path = out / "colluding_raters.tsv", out / "colluding_pairs.tsv"
    result.raters.to_csv(raters_path, sep="\t", index=False)
    result.pairs.to_csv(pairs_path, sep="\t", index=False)
    return raters_path, pairs_path
