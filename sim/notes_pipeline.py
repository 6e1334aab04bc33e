"""The Community Notes part of ``vigil pipeline`` (``make run``).

1. Simulate a notes world beside the posts (``<raw>/notes``, notes on the posts world's posts),
   skipped when the raw dir already holds the same one.
2. ``airflow dags test vigil_notes``: ingest, gates, dbt, scoring, Feast.
3. A summary block read back from what the run published: notes by status, posts showing a
   note, the top shown note (served by the Feast online store), flagged colluders, gate verdicts.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

MARKER = ".vigil-notes-simulation.json"
TASKS = ("validate_raw", "validate_warehouse", "validate_scores")


def notes_params(args) -> dict:
    """The notes world for a posts world of ``args.users`` users: about one contributor per 10
    users and one note per 13 (20000 users: 2000 contributors, 1500 notes, 40000 ratings)."""
    contributors = max(200, args.users // 10)
    notes = max(300, args.users * 3 // 40)
    return {
        "contributors": contributors,
        "notes": notes,
        "ratings": notes * 80 // 3,
        "days": args.days,
        "start": args.start,
        "seed": args.seed,
        "colluders": 24 if contributors >= 1000 else 10,
    }


def ensure_notes(raw_dir: Path, params: dict, force: bool = False) -> dict:
    from sim.notes import simulate_notes

    marker = raw_dir / "notes" / MARKER
    if not force and marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("params") == params:
            print(f"      notes: {raw_dir / 'notes'} already holds this world, skipped", flush=True)
            return saved.get("counts", {})
    started = time.monotonic()
    counts = simulate_notes(
        raw_dir,
        contributors=params["contributors"],
        notes=params["notes"],
        ratings=params["ratings"],
        days=params["days"],
        start=date.fromisoformat(params["start"]),
        seed=params["seed"],
        colluders=params["colluders"],
    )
    counts = json.loads(json.dumps(counts, default=str))
    marker.write_text(json.dumps({"params": params, "counts": counts}, indent=2))
    print(
        f"      notes: {counts['contributors']:,} contributors, {counts['notes']:,} notes, "
        f"{counts['ratings']:,} ratings in {time.monotonic() - started:.0f}s",
        flush=True,
    )
    return counts


def run_dag(dags_test, last_day: str, raw_dir: Path, env: dict) -> dict:
    """``airflow dags test vigil_notes`` on the simulated download (``dags_test``: sim.pipeline's)."""
    run = dags_test("vigil_notes", f"{last_day}T23:00:00+00:00", {"raw_dir": str(raw_dir)}, env=env)
    status = "succeeded" if run["ok"] else "FAILED"
    print(f"      vigil_notes {status} in {run['seconds']:.0f}s (log: {run['log']})", flush=True)
    return run


def print_summary(notes_run: dict | None, results: dict, unavailable) -> None:
    """Notes by status, posts showing a note, the top shown note (online), colluders, gates."""
    if notes_run is None or (results.get("states") or {}).get("publish") != "success":
        state = (results.get("states") or {}).get("publish") or "not run"
        unavailable(f"vigil_notes did not publish (publish task: {state})")
        _print_gates(results)
        return
    from vigil.notes import outputs, serving

    run = outputs.read_run()
    total = max(1, run["notes"])
    for status, n in run["statuses"].items():
        print(f"  {status:<30} {n:>7,}  {100 * n / total:5.1f}%")
    print(f"  {'posts showing a note':<30} {run['posts_with_shown_note']:>7,}")
    collusion = run.get("collusion") or {}
    print(
        f"  {'colluding raters flagged':<30} {collusion.get('raters_flagged', 0):>7,}"
        f"  in {collusion.get('groups', 0)} group(s)"
    )
    top = run.get("top_shown_note")
    if top:
        online = serving.online(post_id=top["post_id"]) if top["post_id"] is not None else {}
        served = "served online" if online.get("note_id") == top["note_id"] else "NOT online"
        print(
            f"  top shown note {top['note_id']} on post {top['post_id']}: intercept "
            f"{top['note_intercept']:.3f}, {top['num_ratings']} ratings ({served}; "
            f"`vigil notes show --post-id {top['post_id']}`)"
        )
    else:
        print("  no note is shown (none CURRENTLY_RATED_HELPFUL)")
    _print_gates(results)


def _print_gates(results: dict) -> None:
    states = results.get("states") or {}
    values = results.get("values") or {}
    for task in TASKS:
        detail = values.get(task)
        line = f"  gate {task.removeprefix('validate_'):<10} {states.get(task) or 'not run'}"
        if isinstance(detail, dict) and detail.get("summary"):
            line += " " + str(detail["summary"]).split(": ", 1)[-1].split("; report")[0]
        print(line)
