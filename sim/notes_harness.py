"""Grading the notes platform against the notes world's truth (the only reader of _truth/notes_*).

For one simulated world: collusion detection (recall and precision of the colluding raters), the
reputation of colluders vs everyone else, and, when the scorer (``vigil.notes.scoring``) is
installed, the issue's truth targets:

- Spearman(final note intercept, true helpfulness) >= 0.9 over the scored notes;
- strongly slanted notes reaching Currently Rated Helpful <= 1/3 of how many a mean-rating ranking
  puts among its top K, K being the scorer's number of Helpful notes (notes with >= 5 ratings);
- the colluding group's notes reaching Helpful <= 1%;
- collusion: recall >= 0.9 at precision >= 0.9.

``python -m sim.notes_harness --seeds 1 2 3`` simulates and grades several worlds and reports each
figure's spread over the seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.notes import simulate_notes
from sim.notes_writer import TRUTH_CONTRIBUTORS, TRUTH_NOTES
from vigil.notes import collusion, reputation
from vigil.notes import format as fmt

log = logging.getLogger(__name__)

TARGETS = {
    "collusion_recall": (">=", 0.9),
    "collusion_precision": (">=", 0.9),
    "spearman_intercept_helpfulness": (">=", 0.9),
    "slanted_helpful_vs_mean_ranking": ("<=", 1 / 3),
    "colluding_notes_helpful_share": ("<=", 0.01),
}


def scorer_available() -> bool:
    return importlib.util.find_spec("vigil.notes.scoring") is not None


def truth(raw_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(contributors, notes) truth of a notes world."""
    t = Path(raw_dir) / "_truth"
    people = pd.read_json(t / TRUTH_CONTRIBUTORS, lines=True, dtype={"participantId": str})
    notes = pd.read_json(t / TRUTH_NOTES, lines=True, dtype={"noteId": "int64"})
    return people, notes


def grade(raw_dir: str | Path, score: bool = True) -> dict:
    """Every figure for the world in ``raw_dir`` (scored by vigil.notes when ``score``)."""
    raw = Path(raw_dir)
    people, notes_truth = truth(raw)
    ratings = pd.read_csv(
        raw / "notes" / fmt.RATINGS_FILE,
        sep="\t",
        usecols=["noteId", "raterParticipantId", "createdAtMillis", "helpfulnessLevel"],
        dtype={"raterParticipantId": str},
    )
    colluders = set(people.loc[people["is_colluder"], "participantId"])
    out: dict = {"ratings": len(ratings), "colluders": len(colluders)}
    found = collusion.detect(ratings).raters["raterParticipantId"]
    out.update(_grade_collusion(set(found), colluders))
    plain = reputation.reputation(ratings)
    out.update(_reputation_figures(plain.raters, colluders, "mean_consensus"))
    # the detector's verdict as personalization: flagged raters get no fresh trust
    counts = ratings["raterParticipantId"].value_counts().astype("float64")
    counts[counts.index.isin(found)] = 0.0
    personalized = reputation.reputation(ratings, personalization=counts)
    out.update(_reputation_figures(personalized.raters, colluders, "detector_personalized"))
    if score and scorer_available():
        scored, mu = _score(raw, ratings)
        out.update(_grade_scores(scored, ratings, notes_truth))
        consensus = (mu + scored.set_index("noteId")["coreNoteIntercept"]).clip(0, 1).dropna()
        bridged = reputation.reputation(ratings, note_consensus=consensus)
        out.update(_reputation_figures(bridged.raters, colluders, "scorer_consensus"))
    return out


def _grade_collusion(found: set[str], colluders: set[str]) -> dict:
    hit = len(found & colluders)
    return {
        "collusion_flagged": len(found),
        "collusion_recall": hit / len(colluders) if colluders else float("nan"),
        "collusion_precision": hit / len(found) if found else float("nan"),
    }


def _reputation_figures(raters: pd.DataFrame, colluders: set[str], name: str) -> dict:
    is_c = raters["raterParticipantId"].isin(colluders)
    return {
        f"reputation_{name}_colluders_median": float(raters.loc[is_c, "reputation"].median()),
        f"reputation_{name}_others_median": float(raters.loc[~is_c, "reputation"].median()),
        f"reputation_{name}_colluders_below_others_median": float(
            (raters.loc[is_c, "reputation"] < raters.loc[~is_c, "reputation"].median()).mean()
        ),
    }


def _score(raw: Path, ratings: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    from vigil.notes import io, scoring
    from vigil.notes.config import ScoringConfig

    quarantine = io.Quarantine()
    notes = io.read_notes(raw / "notes" / fmt.NOTES_FILE, quarantine)
    typed = io.read_ratings(raw / "notes" / fmt.RATINGS_FILE, quarantine)
    result = scoring.score(
        notes, typed, ScoringConfig(), now_millis=int(ratings["createdAtMillis"].max())
    )
    mu = result.rounds[-1].global_intercept if result.rounds else 0.0
    return result.scored_notes, float(mu)


def _grade_scores(scored: pd.DataFrame, ratings: pd.DataFrame, notes_truth: pd.DataFrame) -> dict:
    m = scored.merge(notes_truth, on="noteId")
    has = m["coreNoteIntercept"].notna()
    rho = m.loc[has, "coreNoteIntercept"].corr(m.loc[has, "helpfulness"], method="spearman")
    helpful = set(m.loc[m["finalRatingStatus"] == fmt.CURRENTLY_RATED_HELPFUL, "noteId"])
    k = len(helpful)
    y = ratings["helpfulnessLevel"].map(fmt.HELPFUL_NUM)
    mean = y.groupby(ratings["noteId"]).agg(["mean", "size"])
    mean = mean[mean["size"] >= 5].sort_values("mean", ascending=False, kind="stable")
    top_mean = set(mean.index[:k])
    slanted = set(notes_truth.loc[notes_truth["is_strongly_slanted"], "noteId"])
    colluding = set(notes_truth.loc[notes_truth["is_colluding"], "noteId"])
    slanted_scorer, slanted_mean = len(helpful & slanted), len(top_mean & slanted)
    return {
        "scored_notes_with_intercept": int(has.sum()),
        "helpful_notes": k,
        "spearman_intercept_helpfulness": float(rho),
        "slanted_helpful_scorer": slanted_scorer,
        "slanted_helpful_mean_ranking": slanted_mean,
        "slanted_helpful_vs_mean_ranking": slanted_scorer / slanted_mean
        if slanted_mean
        else float("nan"),
        "colluding_notes": len(colluding),
        "colluding_notes_helpful_share": len(helpful & colluding) / len(colluding)
        if colluding
        else float("nan"),
    }


def run(seeds: list[int], work_dir: Path, score: bool = True, **sizes) -> dict:
    """Simulate and grade one world per seed; each figure's values, min, mean and max."""
    per_seed = {}
    for seed in seeds:
        t0 = time.perf_counter()
        raw = work_dir / f"seed-{seed}"
        simulate_notes(raw, seed=seed, **sizes)
        per_seed[seed] = grade(raw, score=score)
        per_seed[seed]["seconds"] = round(time.perf_counter() - t0, 1)
        log.info("seed %d graded in %.1fs", seed, per_seed[seed]["seconds"])
    keys = [k for k in per_seed[seeds[0]] if isinstance(per_seed[seeds[0]][k], float)]
    spread = {
        k: {
            "min": float(np.nanmin([per_seed[s][k] for s in seeds])),
            "mean": float(np.nanmean([per_seed[s][k] for s in seeds])),
            "max": float(np.nanmax([per_seed[s][k] for s in seeds])),
        }
        for k in keys
    }
    met = {
        k: (spread[k]["min"] >= v) if op == ">=" else (spread[k]["max"] <= v)
        for k, (op, v) in TARGETS.items()
        if k in spread
    }
    return {"sizes": sizes, "seeds": seeds, "per_seed": per_seed, "spread": spread, "met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.notes_harness", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--contributors", type=int, default=4000)
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--colluders", type=int, default=24)
    parser.add_argument("--out", type=Path, default=None, help="keep the worlds here")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sizes = {
        "contributors": args.contributors,
        "notes": args.notes,
        "ratings": args.ratings,
        "colluders": args.colluders,
    }
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args.seeds, args.out or Path(tmp), **sizes)
    print(f"{'figure':<66} {'min':>8} {'mean':>8} {'max':>8}  target")
    for k, s in report["spread"].items():
        target = TARGETS.get(k)
        mark = (
            ""
            if target is None
            else f"{target[0]} {target[1]:.3g} " + ("met" if report["met"][k] else "NOT met")
        )
        print(f"{k:<66} {s['min']:8.3f} {s['mean']:8.3f} {s['max']:8.3f}  {mark}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if all(report["met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
