"""Model benchmark: training time and scoring throughput of student, heavy model and cascade.

Uses the champion model under $VIGIL_HOME when there is one (and the posts mart's text); otherwise
trains on a hand-made set first. Scoring is measured on ONE thread (torch and BLAS) so posts/s is
per core; the heavy model encodes every text afresh (no embedding cache), the worst case. The
cascade runs the student on every post and the heavy model only on the routed ones. From that:
cores needed to score 1 billion posts a day = 1e9 / 86,400 / (posts/s per core).

    python -m bench models [--posts 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

POSTS_PER_DAY = 1_000_000_000


def _example_frame(bundle: dict, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = None
    try:
        from training.datasets import _read_mart

        posts = _read_mart("posts")
        if len(posts):
            texts = (
                posts["text"]
                .fillna("")
                .sample(n, replace=len(posts) < n, random_state=seed)
                .tolist()
            )
    except Exception:  # noqa: BLE001 -- no data root yet: fall back to generated text
        texts = None
    if texts is None:
        words = [
            "sunny",
            "coffee",
            "idiot",
            "garden",
            "scam",
            "music",
            "hate",
            "travel",
            "friends",
            "book",
        ]
        texts = [" ".join(rng.choice(words, 12)) for _ in range(n)]
    frame = pd.DataFrame({"text": texts})
    for col in [*bundle["behavior_columns"], *bundle["creator_columns"]]:
        frame[col] = rng.poisson(5, n).astype(float)
    frame["has_behavior"] = 1.0
    frame["has_creator"] = 1.0
    return frame


def _train_hand_made() -> tuple[dict, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "training"))
    from conftest import make_training_set

    from training.config import load
    from training.train import fit_models

    ts = make_training_set(400)
    start = time.perf_counter()
    objects = fit_models(ts, load(epochs=5, target_precision=0.8))
    return objects, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench models")
    parser.add_argument("--posts", type=int, default=2000, help="posts to score per measurement")
    args = parser.parse_args(argv)

    bundle, train_seconds, source = _load_model()
    frame = _example_frame(bundle, args.posts)
    student_s, heavy_s, cascade_s, routed = _time_scoring(bundle, frame)

    n = len(frame)
    rows = []
    for name, secs in (
        ("student", student_s),
        ("heavy (encoder + net)", heavy_s),
        ("cascade", cascade_s),
    ):
        pps = n / secs
        rows.append(
            {
                "model": name,
                "posts_per_s_per_core": pps,
                "cores_for_1B_per_day": POSTS_PER_DAY / 86400 / pps,
            }
        )
    result = {
        "model_source": source,
        "training_seconds": train_seconds,
        "posts": n,
        "fraction_routed_in_bench": float(routed.mean()),
        "fraction_routed_validation": (bundle.get("validation_cascade") or {}).get(
            "fraction_to_heavy_unweighted"
        ),
        "rows": rows,
        "cascade_speedup_vs_heavy": heavy_s / cascade_s,
    }
    _print(result, routed)
    return result


def _load_model() -> tuple[dict, float | None, str]:
    """The champion (and its training time) when there is one, else a model trained here on a
    hand-made set; returns (bundle, training seconds, where it came from)."""
    import torch  # noqa: F401 -- torch first, before the registry and its imports

    from training import registry

    bundle, train_seconds, source = None, None, "champion"
    try:
        bundle = registry.load()
        train_seconds = (
            sum((bundle["meta"].get("metrics", {}).get("timings") or {}).values()) or None
        )
    except Exception:  # noqa: BLE001 -- no champion: train a small one here
        bundle = None
    if bundle is None:
        bundle, train_seconds = _train_hand_made()
        source = "hand-made set (no champion under VIGIL_HOME)"
    return bundle, train_seconds, source


def _time_scoring(bundle: dict, frame: pd.DataFrame):
    """Seconds to score ``frame`` on one thread by the student, the heavy model (encoder + net)
    and the cascade; and which posts the cascade routed to the heavy model."""
    import torch

    from training import cascade
    from training.text import encode_uncached

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    encode_uncached(frame["text"].head(8).tolist())  # load the encoder outside the timings

    t = time.perf_counter()
    s = cascade.student_scores(bundle["student"], frame)
    student_s = time.perf_counter() - t

    t = time.perf_counter()
    emb = encode_uncached(frame["text"].tolist(), batch_size=64)
    bundle["multitask"].predict(frame, emb)
    heavy_s = time.perf_counter() - t

    tau = bundle["cascade_tau"]
    routed = s >= tau
    t = time.perf_counter()
    s2 = cascade.student_scores(bundle["student"], frame)
    if (s2 >= tau).any():
        sub = frame[s2 >= tau]
        bundle["multitask"].predict(sub, encode_uncached(sub["text"].tolist(), batch_size=64))
    cascade_s = time.perf_counter() - t
    return student_s, heavy_s, cascade_s, routed


def _print(result: dict, routed) -> None:
    source, train_seconds = result["model_source"], result["training_seconds"]
    print(
        f"model: {source}; training time: {train_seconds:.1f} s"
        if train_seconds
        else f"model: {source}; training time: n/a"
    )
    print(f"{'model':<24}{'posts/s/core':>14}{'cores for 1B/day':>18}")
    for r in result["rows"]:
        print(
            f"{r['model']:<24}{r['posts_per_s_per_core']:>14.0f}{r['cores_for_1B_per_day']:>18.0f}"
        )
    print(
        f"cascade routes {routed.mean():.1%} of posts to the heavy model here "
        f"({result['cascade_speedup_vs_heavy']:.1f}x faster than heavy alone)"
    )


if __name__ == "__main__":
    main()
