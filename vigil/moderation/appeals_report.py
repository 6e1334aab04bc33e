"""Appeal and reversal rates per model and per slice (predicted harm type, author age bucket).

removals: distinct posts a model removed (decision log, every trigger but ``appeal_reversed``);
appeal rate = appeals / removals; reversal rate = reversed / decided appeals (reversed + upheld).
A reversal is a labeled false positive: 1 - reversal rate x appeal rate bounds the removals'
precision from above only for the appealed share, so the report states counts, not precision.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from vigil.moderation import decisions as decision_log
from vigil.moderation.appeals import AppealStore

SLICES = ("harm_type", "author_age_bucket")


def _removals(directory: Path) -> dict[tuple[str, str, str], set[int]]:
    """(model, slice, value) -> removed post ids, ``all`` slice included."""
    out: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for path in sorted(directory.glob("dt=*/decisions-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("post_id") is None or row.get("decision") != "remove":
                continue  # a new post scored without an id cannot be appealed
            if row.get("trigger") == "appeal_reversed":
                continue
            model, post = str(row.get("model_id")), int(row["post_id"])
            out[(model, "all", "all")].add(post)
            for s in SLICES:
                out[(model, s, str(row.get(s) or "unknown"))].add(post)
    return out


def report(store: AppealStore | None = None, decisions_dir: Path | None = None) -> dict:
    store = store or AppealStore()
    removed = _removals(Path(decisions_dir or decision_log.root()))
    counts: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
        lambda: {"appeals": 0, "reversed": 0, "upheld": 0, "pending": 0}
    )
    for appeal in store.list():
        model = str(appeal["model_id"])
        keys = [(model, "all", "all")] + [(model, s, str(appeal[s])) for s in SLICES]
        for key in keys:
            counts[key]["appeals"] += 1
            counts[key][appeal["status"]] += 1
    rows = []
    for key in sorted(set(removed) | set(counts)):
        c = counts[key]
        n_removed = len(removed.get(key, ()))
        decided = c["reversed"] + c["upheld"]
        rows.append(
            {
                "model_id": key[0],
                "slice": key[1],
                "value": key[2],
                "removals": n_removed,
                **c,
                "appeal_rate": c["appeals"] / n_removed if n_removed else None,
                "reversal_rate": c["reversed"] / decided if decided else None,
            }
        )
    return {"rows": rows}


def markdown(result: dict) -> str:
    lines = [
        (
            "| model | slice | value | removals | appeals | reversed | upheld | pending "
            "| appeal rate | reversal rate |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:

        def pct(x):
            return "-" if x is None else f"{100 * x:.1f}%"

        lines.append(
            f"| {r['model_id']} | {r['slice']} | {r['value']} | {r['removals']} | {r['appeals']} "
            f"| {r['reversed']} | {r['upheld']} | {r['pending']} | {pct(r['appeal_rate'])} "
            f"| {pct(r['reversal_rate'])} |"
        )
    return "\n".join(lines) + "\n"
