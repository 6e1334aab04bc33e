"""Grading the mention model (``training.mentions``) on the simulator's truth, per seed root.

``python -m sim.mention_harness ROOT [ROOT ...]`` where each ROOT is a data root with a lake
and a registered champion (e.g. ``DATA/mention-sweep/seed-N`` left by ``python -m sim.sweep``).
The mention model trains on the champion's train days, its threshold is chosen on the validation
days' mention labels (Wilson lower bound >= 0.95), and it is graded on the test days' mentions:
truth = the post carrying the mention is truly harmful (in the simulator every harmful post that
names someone is aimed at them). Also: the labels' own precision and recall against the truth by
source. Mentions in replies have no post of their own and are left out of the grading.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from sim import truth as sim_truth
from training import calibrate, evaluate, mentions


def grade_root(root: Path, seed: int = 7) -> dict:
    meta = json.loads(_champion_meta(root).read_text())
    days = {k: set(map(str, v)) for k, v in meta["splits"].items()}
    df = mentions.build(root / "lake")
    df = df[df["post_id"].notna()].copy()
    df["day"] = df["mentioned_at"].dt.strftime("%Y-%m-%d")
    truth = sim_truth.posts(root / "raw").set_index("post_id")["is_harmful"]
    df["truth"] = df["post_id"].astype("int64").map(truth).fillna(False).astype(bool)
    tr, va, te = (df[df["day"].isin(days[k])] for k in ("train", "val", "test"))
    model = mentions.fit(tr, seed)
    thr = calibrate.removal_threshold(mentions.score(model, va), va["y"].to_numpy())
    t = thr.get("threshold", float("nan"))
    s = mentions.score(model, te)
    hit = s >= t if np.isfinite(t) else np.zeros(len(te), bool)
    y = te["truth"].to_numpy()
    out = {
        "root": str(root),
        "test_mentions": len(te),
        "test_harmful_mentions": int(y.sum()),
        "threshold": t,
        "precision": float(y[hit].mean()) if hit.any() else float("nan"),
        "recall": float(hit[y].mean()) if y.any() else float("nan"),
        "pr_auc": evaluate.pr_auc(y, s),
        "recall_at_95p": evaluate.recall_at_precision(y, s),
        "label_sources": {},
    }
    for src, g in df.groupby("label_source"):
        out["label_sources"][src] = {
            "mentions": len(g),
            "label_positive": int(g["y"].sum()),
            "label_precision": float(g.loc[g["y"], "truth"].mean()) if g["y"].any() else None,
        }
    out["label_recall_vs_truth"] = float(df.loc[df["truth"], "y"].mean())
    return out


def _champion_meta(root: Path) -> Path:
    state = json.loads((root / "models" / "champion.json").read_text())
    return root / "models" / state["model_id"] / "meta.json"


def main(argv: list[str] | None = None) -> int:
    for r in argv if argv is not None else sys.argv[1:]:
        print(json.dumps(grade_root(Path(r)), indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
