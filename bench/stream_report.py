"""What `python -m bench stream` prints: throughput against the floor, state memory and lag."""

from __future__ import annotations

import statistics


def print_report(r: dict) -> None:
    _print_throughput(r)
    _print_state_and_lag(r)


def _print_throughput(r: dict) -> None:
    b, s = r["baselines"], r["stream"]
    floor = b["floor_json_loads"]
    print(
        f"\nStream throughput, one core ({r['lines']:,} simulated lines; baselines on the first "
        f"{b['lines']:,}):"
    )
    print(
        f"{'path (best of ' + str(b['repeats']) + ' interleaved rounds)':<44} {'events/s':>12} {'vs floor':>9}"
    )
    rows = [
        ("floor: read + json.loads only", floor),
        ("ingest's exact validator (per line)", b["ingest_exact_validator"]),
        ("stream validator per line (json + fast path)", b["stream_validator"]),
        ("stream batch parser (msgspec, tuple per line)", b["stream_batch_parser"]),
        ("stream columnar parser (msgspec + numpy)", b["stream_columnar_parser"]),
        ("stream core: validate+dedupe+state+ckpt", b["stream_core"]),
        ("stream core with re-score triggers", b["stream_core_triggers"]),
        ("stream core with exact post counters", b["stream_core_post_counters"]),
    ]
    for name, v in rows:
        print(f"{name:<44} {v:>12,.0f} {v / floor:>8.2f}x")
    fa = r["floor_all"]
    print(
        f"\nEnd to end on all {fa['events']:,} lines, best of {len(fa['rounds'])} rounds "
        "interleaved with the floor on the same lines:"
    )
    rows = [
        ("floor: read + json.loads, all lines", fa["events_per_s"]),
        ("vigil stream end to end (files, all lines)", s["events_per_s"]),
    ]
    if "redis" in r:
        rows.append(("vigil stream end to end (Redis, all lines)", r["redis"]["lines_per_s"]))
    for name, v in rows:
        print(f"{name:<44} {v:>12,.0f} {v / fa['events_per_s']:>8.2f}x")
    for name, key in (("floor", "floor_all"), ("files", "stream"), ("Redis", "redis")):
        if key in r:
            print(f"  rounds, {name}: " + ", ".join(f"{v:,.0f}" for v in r[key]["rounds"]))
    for name, key in (("files", "stream"), ("Redis", "redis")):
        if key in r:  # each round against the floor of the same round: less exposed to bursts
            per = [v / f for v, f in zip(r[key]["rounds"], fa["rounds"], strict=True)]
            print(
                f"  {name} / floor of the same round: "
                + ", ".join(f"{x:.2f}x" for x in per)
                + f" (median {statistics.median(per):.2f}x)"
            )
    # CPU seconds of this process (not the time waiting for a core on a shared machine; the
    # Redis server's own CPU is not in it): floor CPU / end-to-end CPU on the same lines
    print("  CPU time of the process, floor / end to end, per round:")
    for name, key in (("files", "stream"), ("Redis", "redis")):
        if key in r:
            per = [f / e for f, e in zip(fa["cpu_rounds"], r[key]["cpu_rounds"], strict=True)]
            print(
                f"    {name}: "
                + ", ".join(f"{x:.2f}x" for x in per)
                + f" (median {statistics.median(per):.2f}x; floor CPU "
                + ", ".join(f"{c:.2f}" for c in fa["cpu_rounds"])
                + " s, end to end "
                + ", ".join(f"{c:.2f}" for c in r[key]["cpu_rounds"])
                + " s)"
            )


def _print_state_and_lag(r: dict) -> None:
    m = r["memory"]
    print(
        f"\nMemory per user (measured {m['users']:,} users, {m['day_records_per_user']} day "
        f"records each; cloned to {m['clone_users']:,}):"
    )
    print(f"{'measure':<36} {'bytes/user':>11} {'per 1M users':>14}")
    for name, key in (
        ("RSS, loaded checkpoint", "rss_bytes_per_user"),
        ("deep size, loaded checkpoint", "deep_bytes_per_user"),
        (f"RSS, {m['clone_users']:,} cloned users", "clone_rss_bytes_per_user"),
        (f"deep size, {m['clone_users']:,} cloned", "clone_deep_bytes_per_user"),
        ("SQLite checkpoint on disk", "sqlite_bytes_per_user"),
        ("seen event ids (lateness horizon)", "seen_bytes_per_user"),
    ):
        print(f"{name:<36} {m[key]:>11,.0f} {m[key] * 1e6 / 2**30:>11.2f} GiB")
    sn = r["seen"]
    print(
        f"\nSeen event ids in the lateness horizon ({sn['ids']:,} ids, {sn['users']:,} users): "
        f"sets of str {sn['sets_bytes_per_user']:,.0f} B/user ({sn['sets_bytes_per_id']:.0f} B/id), "
        f"digest arrays {sn['digests_bytes_per_user']:,.0f} B/user "
        f"({sn['digests_bytes_per_id']:.1f} B/id): "
        f"{sn['sets_bytes_per_user'] / max(sn['digests_bytes_per_user'], 1e-9):.1f}x less"
    )
    for lag in r.get("lag", []):
        print(
            f"\nLag, Redis -> vigil stream -> Feast online (sqlite), {lag['rate']:.0f} events/s, "
            f"checkpoint every {lag['checkpoint_seconds']} s: {lag['events']:,} events, "
            f"{lag['rows_pushed']:,} rows pushed"
        )
        if lag.get("events"):
            print(
                f"  p50 {lag['p50_s'] * 1000:,.0f} ms   p99 {lag['p99_s'] * 1000:,.0f} ms   "
                f"max {lag['max_s'] * 1000:,.0f} ms   processed {lag['processed_per_s']:,.0f}/s"
            )
