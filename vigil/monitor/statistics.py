"""Drift statistics, pure functions: PSI, two-sample KS, and new-token shares of texts."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

TOKEN_RE = re.compile(r"[a-z0-9@#']+")
URL_RE = re.compile(r"https?://\S+|www\.\S+")
PSI_EPSILON = 1e-4


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
    """Population stability index over quantile bins of the reference.

    ``sum((c - r) * ln(c / r))`` over bins, with empty-bin shares floored at PSI_EPSILON.
    Bin edges are the reference's deciles (deduplicated, so a feature with many ties gets fewer
    bins); values outside the reference range fall into the outer bins.
    """
    import numpy as np

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_share = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    r = np.maximum(ref_share / len(ref), PSI_EPSILON)
    c = np.maximum(cur_share / len(cur), PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_statistic(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    import numpy as np
    from scipy import stats

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(URL_RE.sub(" ", (text or "").lower()))


def vocabulary(texts: Iterable[str], min_count: int = 2) -> set[str]:
    counts = Counter(tok for text in texts for tok in tokens(text))
    return {tok for tok, n in counts.items() if n >= min_count}


def oov_share(texts: Iterable[str], vocab: set[str], min_count: int = 1) -> float:
    """Share of tokens (mentions and links normalised away) that the vocabulary has not seen,
    counting only unseen tokens that occur at least ``min_count`` times in ``texts`` (a new
    template or insult repeats; names, numbers and typos mostly do not)."""
    counts = Counter(
        tok for text in texts for tok in tokens(text) if not tok.startswith("@")
    )  # handles (and links, removed by tokens()) are always new: not a shift
    total = sum(counts.values())
    unseen = sum(n for tok, n in counts.items() if tok not in vocab and n >= min_count)
    return unseen / total if total else float("nan")


def new_token_posts(texts: Sequence[str], vocab: set[str], min_posts: int = 5) -> dict:
    """Share of ``texts`` holding a *new repeated* token: one the vocabulary has not seen that
    occurs in at least ``min_posts`` of ``texts`` (distinct posts; handles and links skipped).

    A vocabulary switch or a spam campaign changes a few words in many posts: counted per token it
    is a small share of all tokens (diluted by every ordinary word of every post), counted per post
    it is the share of traffic that speaks the new words. Returns ``{"share", "tokens"}`` with the
    new repeated tokens, most frequent first.
    """
    per_post = [{t for t in tokens(text) if not t.startswith("@")} - vocab for text in texts]
    posts_with = Counter(t for new in per_post for t in new)
    frequent = {t for t, n in posts_with.items() if n >= min_posts}
    hit = sum(1 for new in per_post if new & frequent)
    ranked = sorted(frequent, key=lambda t: (-posts_with[t], t))
    return {"share": hit / len(texts) if len(texts) else float("nan"), "tokens": ranked}


def text_drift(
    reference_texts: Sequence[str], current_texts: Sequence[str], min_count: int = 1
) -> dict:
    """Two views of new words in the recent texts, each minus the reference's own held-out value.

    - ``excess``: OOV share of the recent tokens (unseen tokens occurring ``min_count`` times)
      minus the held-out OOV share;
    - ``post_excess``: share of recent posts holding a new token that ``min_count`` posts repeat
      (:func:`new_token_posts`) minus the same share on the held-out half.

    The reference is split in two halves (even/odd rows): the vocabulary of one half and the
    shares of the other tell how many new words an undrifted window brings; only the excess counts.
    The held-out half is subsampled to the size of ``current_texts`` so ``min_count`` means the same.
    """
    vocab = vocabulary(reference_texts)
    half_vocab = vocabulary(reference_texts[::2])
    held_out = list(reference_texts[1::2])
    if len(held_out) > len(current_texts) > 0:
        step = len(held_out) / len(current_texts)
        held_out = [held_out[int(i * step)] for i in range(len(current_texts))]
    baseline = oov_share(held_out, half_vocab, min_count)
    current = oov_share(current_texts, vocab, min_count)
    base_posts = new_token_posts(held_out, half_vocab, min_count)
    cur_posts = new_token_posts(current_texts, vocab, min_count)
    return {
        "current_oov": current,
        "baseline_oov": baseline,
        "excess": current - baseline,
        "current_new_posts": cur_posts["share"],
        "baseline_new_posts": base_posts["share"],
        "post_excess": cur_posts["share"] - base_posts["share"],
        "new_tokens": cur_posts["tokens"],
    }
