"""Where the service's ``views_N`` re-score requests sit in time: the N-th view of the post by
event time (the replay's count: the lake's events sorted by time) or by arrival (the stream's
count: the raw files in order), after a run of :mod:`sim.rescore_service_harness` (issue 22).

A view delivered late (its event time before that of a view already in the files) is counted by
the stream when it arrives, and the request it crosses carries its own event time; the replay
counts it at its event time. For each request with a single ``views_N`` trigger in the world's
decision log, the harness's test days' raw view events (duplicates by ``event_id`` dropped,
unreadable lines skipped) give:

- ``event_time_and_arrival``: the request's time is the N-th view's by both orders;
- ``arrival_only``: only by arrival (a late view moved the stream's crossing);
- ``event_time_only``: only by event time;
- ``neither``: by neither; ``neither_debounced``: of those, the ones 10 minutes (the triggers'
  debounce) after the post's previous request (sent at the end of the debounce window).

``python -m sim.rescore_trigger_times --home H [--days 2026-10-25 ...]`` (default days: the
champion's test days). Docs: docs/rescoring.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

DEBOUNCE_MS = 600_000  # vigil.stream.triggers.Triggers' default (10 minutes)


def _ms(values: pd.Series) -> pd.Series:
    return (values - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)


def read_views(raw: Path, days: list[str]) -> pd.DataFrame:
    """The days' view events in file order (``seq``), one row per ``event_id``."""
    rows, seq = [], 0
    for day in days:
        for path in sorted((raw / "events" / f"dt={day}").glob("hour=*.jsonl")):
            with path.open(errors="replace") as f:
                for line in f:
                    if '"view"' not in line:
                        continue
                    try:
                        r = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a corrupt line: the stream drops it too
                    if not isinstance(r, dict) or r.get("action") != "view":
                        continue
                    if r.get("post_id") is None or not r.get("event_ts") or not r.get("event_id"):
                        continue
                    rows.append((seq, r["event_id"], int(r["post_id"]), r["event_ts"]))
                    seq += 1
    frame = pd.DataFrame(rows, columns=["seq", "event_id", "post_id", "ts"])
    frame = frame.drop_duplicates("event_id")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601", errors="coerce")
    frame = frame.dropna(subset=["ts"])
    return frame.assign(ms=_ms(frame["ts"]))


def read_requests(decisions_dir: Path) -> pd.DataFrame:
    """Every logged decision's (post_id, trigger, ms of ``event_at``), shadow lines left out."""
    rows = []
    for path in sorted(decisions_dir.glob("dt=*/decisions-*.jsonl")):
        with path.open() as f:
            for line in f:
                r = json.loads(line)
                if r.get("trigger") != "shadow" and r.get("event_at"):
                    rows.append((int(r["post_id"]), r["trigger"], r["event_at"]))
    frame = pd.DataFrame(rows, columns=["post_id", "trigger", "event_at"])
    at = pd.to_datetime(frame["event_at"], utc=True, format="ISO8601")
    return frame.assign(ms=_ms(at))[["post_id", "trigger", "ms"]]


def classify(views: pd.DataFrame, requests: pd.DataFrame) -> dict:
    """The counts of the module doc for ``requests`` (post_id, trigger, ms) against ``views``
    (seq, post_id, ms)."""
    single = requests[requests["trigger"].str.fullmatch(r"views_\d+")]
    n = single["trigger"].str.slice(6).astype(int)
    v = views[views["post_id"].isin(set(single["post_id"]))]

    def nth(order: list[str]) -> dict:
        s = v.sort_values(["post_id", *order], kind="stable")
        k = s.groupby("post_id").cumcount() + 1
        return dict(zip(zip(s["post_id"], k), s["ms"]))

    by_time, by_arrival = nth(["ms", "seq"]), nth(["seq"])
    ordered = requests.sort_values(["post_id", "ms"], kind="stable")
    previous = dict(
        zip(zip(ordered["post_id"], ordered["ms"]), ordered.groupby("post_id")["ms"].shift())
    )
    out = dict.fromkeys(("event_time_and_arrival", "arrival_only", "event_time_only", "neither"), 0)
    debounced = 0
    for pid, k, ms in zip(single["post_id"], n, single["ms"]):
        t, a = by_time.get((pid, k)) == ms, by_arrival.get((pid, k)) == ms
        key = (
            "event_time_and_arrival"
            if t and a
            else "event_time_only"
            if t
            else "arrival_only"
            if a
            else "neither"
        )
        out[key] += 1
        if key == "neither" and ms - previous.get((pid, ms), float("nan")) == DEBOUNCE_MS:
            debounced += 1
    return {"views_requests": len(single), **out, "neither_debounced": debounced}


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(
        prog="python -m sim.rescore_trigger_times", description=__doc__
    )
    parser.add_argument("--home", required=True, help="a world the harness ran on")
    parser.add_argument("--days", nargs="+", default=None, help="default: the test days")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    os.environ["VIGIL_HOME"] = str(home)
    from vigil.config import paths

    days = args.days
    if days is None:
        from training import registry

        days = [str(d) for d in registry.load(None)["meta"]["splits"]["test"]]
    out = classify(read_views(paths().raw, days), read_requests(paths().decision_log))
    print(json.dumps({"home": str(home), "days": days, **out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
