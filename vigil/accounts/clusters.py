"""Coordination clusters: accounts that post the same things at the same moments, repeatedly.

Steps (each a function below):

1. ``content_keys``: every post or reply gives keys: each link in it (``link:<url>``), its
   normalised text without links (``text:<...>``), and, for paraphrases, MinHash-LSH bands of
   its word 3-shingles (two texts sharing most shingles share a band). Keys are integers.
2. ``co_posts``: for each key, the posts carrying it within ``window`` of each other by other
   accounts; a post of account u that meets account v on any key counts once for (u, v).
3. ``account_graph``: edge weight(u, v) = min(posts of u that met v, posts of v that met u),
   i.e. the number of separate moments both posted the same thing; edges below
   ``min_co_posts`` are dropped, so friends sharing one link, or news accounts posting the same
   headline once, never join. A scipy.sparse matrix.
4. ``clusters``: connected components of the thresholded graph (optionally Louvain inside large
   components), keeping those with at least ``min_size`` accounts, each with its evidence: the
   shared keys, their count, the first and last post, and the size. An account with too few
   co-posts for an edge joins a cluster when it co-posted with ``attach_min_members`` of its
   members (a bot suspended after one or two waves).

Keys that are everyday content are dropped before pairing: carried by a large share of all
posting accounts (greetings, the platform's most common sentence) or posted in more than
``max_key_hours`` distinct hours (a bot farm's steady spam, which is not a coordinated moment).
A co-post counts only inside a burst of at least ``min_burst_accounts`` accounts, so two news
accounts that happen to post the same headline in the same minute do not pair up.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)

URL_RE = re.compile(r"https?://[^\s]+")
WORD_RE = re.compile(r"[a-z0-9']+")
TEXT_ACTIONS = ("post", "reply")
CLUSTER_COLUMNS = (
    "cluster_id",
    "user_id",
    "size",
    "first_post_at",
    "last_post_at",
    "shared_items",
    "top_items",
)


@dataclass(frozen=True)
class ClusterConfig:
    window_minutes: float = 10.0
    min_co_posts: int = 3  # an edge needs this many separate co-posting moments
    min_size: int = 3  # smaller groups are not reported as campaigns
    shingle: int = 3
    bands: int = 8
    rows_per_band: int = 3
    min_words_for_bands: int = 6  # shorter texts are matched on their exact text only
    max_key_accounts_share: float = 0.05  # keys used by more accounts are too common to link
    max_key_hours: int = 24  # keys seen in more distinct hours are steady content, not a moment
    min_burst_accounts: int = 3  # a co-post counts when this many accounts posted the item
    attach_min_members: int = 4  # an account meeting this many members of a cluster joins it
    method: str = "components"  # or "louvain"
    seed: int = 0


def normalise(text: str) -> str:
    """Lowercase, links removed, punctuation dropped, whitespace collapsed."""
    return " ".join(WORD_RE.findall(URL_RE.sub(" ", text.lower())))


def _hash62(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") >> 2


_PRIME = np.uint64(2_147_483_647)  # 2^31 - 1: (a * h + b) stays below 2^63 for h < 2^32


def _band_keys(posts: np.ndarray, words: list[list[str]], cfg: ClusterConfig):
    """(post index, band key) of every post with enough words: MinHash over crc32 of word
    k-shingles, ``bands`` bands of ``rows_per_band`` rows, each band hashed to one integer."""
    k = cfg.shingle
    owner, hashes = [], []
    for p, w in zip(posts, words):
        shingles = {" ".join(w[i : i + k]) for i in range(len(w) - k + 1)}
        owner.extend([p] * len(shingles))
        hashes.extend(zlib.crc32(x.encode()) for x in shingles)
    if not hashes:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    owner_arr = np.asarray(owner)
    h = np.asarray(hashes, dtype=np.uint64)
    n_hashes = cfg.bands * cfg.rows_per_band
    rng = np.random.default_rng(12345)  # fixed: the same text gives the same bands in every run
    a = rng.integers(1, int(_PRIME), n_hashes, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME), n_hashes, dtype=np.uint64)
    starts = np.flatnonzero(np.r_[True, owner_arr[1:] != owner_arr[:-1]])
    mins = np.stack(
        [np.minimum.reduceat((a[j] * h + b[j]) % _PRIME, starts) for j in range(n_hashes)]
    )
    post_of = owner_arr[starts]
    keys, owners = [], []
    for band in range(cfg.bands):
        rows = mins[band * cfg.rows_per_band : (band + 1) * cfg.rows_per_band]
        mixed = np.full(len(post_of), np.uint64(band + 1))
        for row in rows:
            mixed = (mixed * np.uint64(0x9E3779B97F4A7C15)) ^ row  # wraps: a 64-bit mix
        keys.append((mixed >> np.uint64(2)).astype(np.int64))
        owners.append(post_of)
    return np.concatenate(owners), np.concatenate(keys)


@dataclass
class ContentKeys:
    """One row per (post, key): user_id, ts (ns since epoch), post, key (int); ``names`` gives
    the readable item behind link and text keys (bands have none)."""

    frame: pd.DataFrame
    names: dict


def content_keys(events: pd.DataFrame, config: ClusterConfig | None = None) -> ContentKeys:
    cfg = config or ClusterConfig()
    t = events[events["action"].isin(TEXT_ACTIONS) & events["text"].notna()]
    ts = pd.to_datetime(t["event_ts"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    users = t["user_id"].to_numpy("int64")
    names: dict[int, str] = {}
    owner, keys = [], []
    long_posts, long_words = [], []
    for i, text in enumerate(t["text"].to_numpy()):
        items = {f"link:{u.rstrip('.,;:!?)')}" for u in URL_RE.findall(text)}
        words = normalise(text).split()
        if words:
            items.add("text:" + " ".join(words))
        if len(words) >= cfg.min_words_for_bands:
            long_posts.append(i)
            long_words.append(words)
        for item in items:
            key = _hash62(item)
            names[key] = item
            owner.append(i)
            keys.append(key)
    band_owner, band_keys = _band_keys(np.asarray(long_posts, dtype=np.int64), long_words, cfg)
    post = np.concatenate([np.asarray(owner, dtype=np.int64), band_owner])
    key = np.concatenate([np.asarray(keys, dtype=np.int64), band_keys])
    frame = pd.DataFrame({"user_id": users[post], "ts": ts[post], "post": post, "key": key})
    log.info("clusters: %d posts -> %d (post, item) keys", len(t), len(frame))
    return ContentKeys(frame, names)


def _drop_common_keys(keys: pd.DataFrame, cfg: ClusterConfig) -> pd.DataFrame:
    """Drop keys that are everyday content rather than a coordinated moment: used by a large
    share of the posting accounts, or posted in more distinct hours than ``max_key_hours`` (a
    farm's steady spam, a popular phrase), so pairing stays sparse."""
    posters = keys["user_id"].nunique()
    g = keys.assign(hour=keys["ts"] // 3_600_000_000_000).groupby("key")
    accounts = g["user_id"].nunique()
    hours = g["hour"].nunique()
    limit = max(cfg.max_key_accounts_share * posters, 2 * cfg.min_size, 10)
    common = accounts.index[(accounts > limit) | (hours > cfg.max_key_hours)]
    log.info(
        "clusters: %d of %d keys dropped as everyday content (> %d accounts or > %d hours)",
        len(common),
        len(accounts),
        limit,
        cfg.max_key_hours,
    )
    return keys[~keys["key"].isin(common)]


def co_posts(keys: pd.DataFrame, config: ClusterConfig | None = None) -> pd.DataFrame:
    """(post, user_id, other_user_id, key, ts): a post that met another account's post carrying
    the same key within the window, when at least ``min_burst_accounts`` accounts (the post's
    own included) posted that key around it. Both directions are listed."""
    cfg = config or ClusterConfig()
    window = int(cfg.window_minutes * 60e9)
    keys = _drop_common_keys(keys, cfg)
    shared = keys.groupby("key")["user_id"].transform("nunique") > 1
    keys = keys[shared].sort_values(["key", "ts"]).reset_index(drop=True)
    parts = []
    key_codes = keys["key"].astype("category").cat.codes.to_numpy()
    ts = keys["ts"].to_numpy()
    users = keys["user_id"].to_numpy()
    # posts of one key sorted by time: pair each with the following ones within the window
    for lag in range(1, len(keys)):
        a = np.arange(len(keys) - lag)
        b = a + lag
        same = (key_codes[a] == key_codes[b]) & (ts[b] - ts[a] <= window)
        if not same.any():
            break
        a, b = a[same], b[same]
        other = users[a] != users[b]
        a, b = a[other], b[other]
        parts.append(pd.DataFrame({"i": a, "j": b}))
    if not parts:
        return pd.DataFrame(columns=["post", "user_id", "other_user_id", "key", "ts"])
    pairs = pd.concat(parts, ignore_index=True)
    fwd = pd.DataFrame(
        {
            "post": keys["post"].to_numpy()[pairs["i"]],
            "user_id": users[pairs["i"]],
            "other_user_id": users[pairs["j"]],
            "key": keys["key"].to_numpy()[pairs["i"]],
            "ts": ts[pairs["i"]],
        }
    )
    back = pd.DataFrame(
        {
            "post": keys["post"].to_numpy()[pairs["j"]],
            "user_id": users[pairs["j"]],
            "other_user_id": users[pairs["i"]],
            "key": keys["key"].to_numpy()[pairs["j"]],
            "ts": ts[pairs["j"]],
        }
    )
    co = pd.concat([fwd, back], ignore_index=True)
    met = co.groupby(["post", "key"])["other_user_id"].transform("nunique")
    return co[met >= cfg.min_burst_accounts - 1].reset_index(drop=True)


def account_graph(
    co: pd.DataFrame, config: ClusterConfig | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """(symmetric sparse weight matrix over the accounts that co-posted, their user ids)."""
    cfg = config or ClusterConfig()
    met = co.drop_duplicates(["post", "other_user_id"])
    directed = met.groupby(["user_id", "other_user_id"]).size().rename("n").reset_index()
    rev = directed.rename(columns={"user_id": "other_user_id", "other_user_id": "user_id"})
    both = directed.merge(rev, on=["user_id", "other_user_id"], suffixes=("", "_rev"))
    both["w"] = np.minimum(both["n"], both["n_rev"])
    kept = both[both["w"] >= cfg.min_co_posts]
    ids = np.unique(kept[["user_id", "other_user_id"]].to_numpy().ravel())
    r = np.searchsorted(ids, kept["user_id"].to_numpy())
    c = np.searchsorted(ids, kept["other_user_id"].to_numpy())
    graph = sp.csr_matrix((kept["w"].to_numpy(float), (r, c)), shape=(len(ids), len(ids)))
    log.info(
        "clusters: %d account pairs co-posted, %d edges with >= %d co-posts over %d accounts",
        len(both) // 2,
        len(kept) // 2,
        cfg.min_co_posts,
        len(ids),
    )
    return graph, ids


def _communities(graph: sp.csr_matrix, cfg: ClusterConfig) -> np.ndarray:
    _, labels = connected_components(graph, directed=False)
    if cfg.method != "louvain" or graph.nnz == 0:
        return labels
    import networkx as nx

    g = nx.from_scipy_sparse_array(graph)
    out = np.empty(graph.shape[0], dtype=int)
    for k, members in enumerate(
        nx.community.louvain_communities(g, weight="weight", seed=cfg.seed)
    ):
        out[list(members)] = k
    return out


def _attach(co: pd.DataFrame, members: pd.DataFrame, cfg: ClusterConfig) -> pd.DataFrame:
    """Accounts outside every cluster that co-posted with at least ``attach_min_members``
    distinct members of one cluster (an account that joined a wave or two, then was suspended)
    join that cluster; friends or news accounts never meet that many members of one."""
    outside = co[~co["user_id"].isin(members["user_id"])]
    met = outside.merge(members.rename(columns={"user_id": "other_user_id"}), on="other_user_id")
    if met.empty:
        return members
    counts = met.groupby(["user_id", "label"])["other_user_id"].nunique().reset_index(name="n")
    counts = counts[counts["n"] >= cfg.attach_min_members]
    best = counts.sort_values(["user_id", "n", "label"], ascending=[True, False, True])
    best = best.drop_duplicates("user_id")[["user_id", "label"]]
    if len(best):
        log.info("clusters: %d accounts attached to a cluster", len(best))
    return pd.concat([members, best], ignore_index=True)


def find_clusters(events: pd.DataFrame, config: ClusterConfig | None = None) -> pd.DataFrame:
    """One row per account in a cluster: cluster_id (1 = largest), user_id, size, the cluster's
    first and last co-post, how many distinct items its members shared, and the top items."""
    cfg = config or ClusterConfig()
    content = content_keys(events, cfg)
    co = co_posts(content.frame, cfg)
    if co.empty:
        return pd.DataFrame(columns=list(CLUSTER_COLUMNS))
    graph, ids = account_graph(co, cfg)
    if len(ids) == 0:
        return pd.DataFrame(columns=list(CLUSTER_COLUMNS))
    labels = _communities(graph, cfg)
    members = pd.DataFrame({"user_id": ids, "label": labels})
    sizes = members["label"].value_counts()
    members = members[members["label"].map(sizes) >= cfg.min_size]
    members = _attach(co, members, cfg)
    co = co.merge(members, on="user_id").merge(
        members.rename(columns={"user_id": "other_user_id", "label": "other_label"}),
        on="other_user_id",
    )
    co = co[co["label"] == co["other_label"]]
    rows = []
    for label, group in members.groupby("label"):
        inner = co[co["label"] == label]
        items = inner["key"].value_counts()
        readable = [content.names[k] for k in items.index if k in content.names][:5]
        rows.append(
            {
                "label": label,
                "size": len(group),
                "first_post_at": pd.to_datetime(inner["ts"].min(), utc=True),
                "last_post_at": pd.to_datetime(inner["ts"].max(), utc=True),
                "shared_items": int(inner.drop_duplicates(["key"]).shape[0]),
                "top_items": " | ".join(readable),
            }
        )
    summary = pd.DataFrame(rows).sort_values(["size", "first_post_at"], ascending=[False, True])
    summary["cluster_id"] = np.arange(1, len(summary) + 1)
    out = members.merge(summary, on="label").drop(columns="label")
    log.info("clusters: %d clusters, %d accounts", len(summary), len(out))
    return out[list(CLUSTER_COLUMNS)].sort_values(["cluster_id", "user_id"]).reset_index(drop=True)
