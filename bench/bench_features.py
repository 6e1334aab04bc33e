"""Feast feature store: online read latency and point-in-time retrieval time.

Builds synthetic feature marts (contracts.md section 3 columns, seeded) under a throwaway data
root, applies and materializes them, then measures, for each online store (SQLite, Redis):

- in-process ``get_online_features`` for feature service moderation_v1 (33 features from three
  views), 1 entity row and 100 entity rows per call: p50 / p99;
- the same over HTTP through ``vigil features serve`` (Feast's feature server, one worker,
  a persistent connection);
- historical retrieval (point-in-time join, DuckDB offline store) for N entity rows, against a
  baseline: the same join done with pandas ``merge_asof`` (whose answers it must match).

Ratios are against the SQLite in-process read (online) and the pandas join (offline).

    python bench/bench_features.py [--posts 2000] [--users 1000] [--rows 100000] [--calls 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FLOATS = {
    "post_age_hours",
    "negative_reactions_per_view",
    "reports_per_view",
    "shares_per_view",
    "account_age_days",
    "report_rate_bayes",
    "dislike_rate_bayes",
    "block_rate_bayes",
}


def _write(path: Path, key: str, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {
        key: pa.array(columns.pop(key), pa.int64()),
        "event_timestamp": pa.array(columns.pop("event_timestamp"), pa.timestamp("us", tz="UTC")),
    }
    for name, values in columns.items():
        arrays[name] = pa.array(values, pa.float64() if name in FLOATS else pa.int64())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), path)


def synthetic_marts(features_dir: Path, posts: int, users: int, seed: int) -> dict:
    """Synthetic marts: 24 hourly snapshots per post, one row per user and day for 30 days."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-10-01T00:00:00", "us")
    hour = np.timedelta64(3_600_000_000, "us")
    # posts: created in the first 20 days, 24 hourly snapshots each
    authors = rng.integers(1, users + 1, size=posts)
    created = start + rng.integers(0, 20 * 24, size=posts) * hour
    snaps = 24
    post_id = np.repeat(np.arange(1, posts + 1), snaps)
    k = np.tile(np.arange(1, snaps + 1), posts)
    ts = np.repeat(created, snaps) + k * hour
    views = np.cumsum(rng.poisson(5, size=(posts, snaps)), axis=1).ravel()
    cols = {
        "post_id": post_id,
        "event_timestamp": ts,
        "author_id": np.repeat(authors, snaps),
        "post_age_hours": k.astype(float),
        "views": views,
    }
    for name in ("likes", "shares", "replies", "dislikes", "reports", "blocks", "negative_replies"):
        cols[name] = np.cumsum(rng.poisson(0.3, size=(posts, snaps)), axis=1).ravel()
    cols["negative_reactions_per_view"] = (cols["dislikes"] + 1) / (views + 10.0)
    cols["reports_per_view"] = (cols["reports"] + 0.1) / (views + 10.0)
    cols["shares_per_view"] = (cols["shares"] + 0.5) / (views + 10.0)
    _write(features_dir / "post_behavior.parquet", "post_id", cols)
    # users: one row per user and day
    days = 30
    user_id = np.repeat(np.arange(1, users + 1), days)
    day_ts = np.tile(start + np.arange(1, days + 1) * 24 * hour, users)
    n = users * days
    _write(
        features_dir / "user_activity.parquet",
        "user_id",
        {
            "user_id": user_id,
            "event_timestamp": day_ts,
            "uam_30d": rng.poisson(60, n),
            "active_days_30d": rng.integers(0, 31, n),
            "uam_1d": rng.poisson(4, n),
        },
    )
    cc = {"user_id": user_id, "event_timestamp": day_ts}
    for kind in ("reports", "dislikes", "blocks", "mutes", "shares"):
        for window in ("7d", "30d"):
            cc[f"{kind}_received_{window}"] = rng.poisson(2, n)
    for name in (
        "views_received_30d",
        "posts_authored_30d",
        "posts_authored_total",
        "login_countries_30d",
        "removals_total",
    ):
        cc[name] = rng.poisson(3, n)
    cc["account_age_days"] = rng.uniform(0, 900, n)
    for name in ("report_rate_bayes", "dislike_rate_bayes", "block_rate_bayes"):
        cc[name] = rng.beta(1, 50, n)
    _write(features_dir / "creator_context.parquet", "user_id", cc)
    return {"post_rows": len(post_id), "user_rows": n, "authors": authors, "created": created}


def _pct(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _entity_rows(rng, posts: int, authors: np.ndarray, size: int) -> list[dict]:
    ids = rng.integers(1, posts + 1, size=size)
    return [{"post_id": int(p), "user_id": int(authors[p - 1])} for p in ids]


def bench_in_process(fs, rng, posts, authors, calls: int) -> dict:
    service = fs.get_feature_service("moderation_v1")
    out = {}
    for batch, n_calls in ((1, calls), (100, max(20, calls // 5))):
        samples = []
        for i in range(n_calls + 10):
            rows = _entity_rows(rng, posts, authors, batch)
            t0 = time.perf_counter()
            fs.get_online_features(
                features=service, entity_rows=rows, full_feature_names=True
            ).to_dict()
            if i >= 10:  # warm-up
                samples.append(time.perf_counter() - t0)
        out[batch] = _pct(samples)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(rng, posts, authors, calls: int) -> dict:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "features", "serve", "--port", str(port)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        t_start = time.monotonic()
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vigil features serve did not come up")
            time.sleep(0.5)
        ready_s = time.monotonic() - t_start
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out = {"ready_s": ready_s}
        for batch, n_calls in ((1, calls), (100, max(20, calls // 5))):
            samples = []
            for i in range(n_calls + 10):
                rows = _entity_rows(rng, posts, authors, batch)
                body = json.dumps(
                    {
                        "feature_service": "moderation_v1",
                        "entities": {
                            "post_id": [r["post_id"] for r in rows],
                            "user_id": [r["user_id"] for r in rows],
                        },
                        "full_feature_names": True,
                    }
                )
                t0 = time.perf_counter()
                conn.request(
                    "POST", "/get-online-features", body, {"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                payload = response.read()
                if i >= 10:
                    samples.append(time.perf_counter() - t0)
                if response.status != 200:
                    raise RuntimeError(payload[:500])
            out[batch] = _pct(samples)
        return out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def pandas_pit(entity_df, features_dir: Path):
    """Baseline: the point-in-time join with pandas merge_asof (backward, ttl as tolerance)."""
    import pandas as pd

    from vigil.serving.features import MODERATION_V1_FEATURES

    out = entity_df.sort_values("event_timestamp").reset_index(drop=True)
    for view, key, ttl in (
        ("post_behavior", "post_id", "7D"),
        ("creator_context", "user_id", "30D"),
        ("user_activity", "user_id", "30D"),
    ):
        names = [r.split(":")[1] for r in MODERATION_V1_FEATURES if r.startswith(view + ":")]
        table = pd.read_parquet(
            features_dir / f"{view}.parquet", columns=[key, "event_timestamp", *names]
        )
        table = table.rename(columns={n: f"{view}__{n}" for n in names})
        table = table.rename(columns={"event_timestamp": "_ts"}).sort_values("_ts")
        out = pd.merge_asof(
            out,
            table,
            left_on="event_timestamp",
            right_on="_ts",
            by=key,
            direction="backward",
            allow_exact_matches=True,
            tolerance=pd.Timedelta(ttl),
        ).drop(columns="_ts")
    return out


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench features", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--rows", type=int, default=100_000, help="entity rows, historical retrieval"
    )
    parser.add_argument("--calls", type=int, default=300, help="online calls per measurement")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="vigil-bench-features-"))
    saved = {
        k: os.environ.get(k) for k in ("VIGIL_HOME", "VIGIL_ONLINE_STORE", "VIGIL_FEAST_PROJECT")
    }
    os.environ["VIGIL_HOME"] = str(root)
    os.environ["VIGIL_FEAST_PROJECT"] = f"vigil_bench_{os.getpid()}"
    from vigil import config
    from vigil.serving import features

    results: dict = {"params": vars(args), "online": {}, "historical": {}}
    try:
        meta = synthetic_marts(config.paths().features, args.posts, args.users, args.seed)
        rng = np.random.default_rng(args.seed)
        for kind in args.stores.split(","):
            results["online"][kind] = _bench_online_store(args, kind, meta, rng)
        results["historical"] = _bench_historical(args, meta, rng)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        features._STORES.clear()
        shutil.rmtree(root, ignore_errors=True)

    _print(results)
    return results


def _bench_online_store(args: argparse.Namespace, kind: str, meta: dict, rng) -> dict:
    """Apply and materialize into online store ``kind``, then time its reads in process and
    (unless ``--no-http``) through the feature server; the store is torn down after."""
    from vigil.serving import features

    os.environ["VIGIL_ONLINE_STORE"] = kind
    features.apply()
    t0 = time.perf_counter()
    mat = features.materialize(full=True)
    mat_s = time.perf_counter() - t0
    fs = features.store()
    entry = {
        "materialize_s": mat_s,
        "materialized_rows": mat["rows"],
        "in_process": bench_in_process(fs, rng, args.posts, meta["authors"], args.calls),
    }
    if not args.no_http:
        entry["http"] = bench_http(rng, args.posts, meta["authors"], args.calls)
    fs.teardown()  # drops this project's online rows (Redis keys) and its registry
    features._STORES.clear()
    return entry


def _bench_historical(args: argparse.Namespace, meta: dict, rng) -> dict:
    """Point-in-time retrieval of ``--rows`` entity rows (post, author, a time within 30 h of
    creation) by Feast, against pandas merge_asof; every value must match."""
    import pandas as pd

    from vigil import config
    from vigil.serving import features

    os.environ["VIGIL_ONLINE_STORE"] = args.stores.split(",")[0]
    features.apply()
    idx = rng.integers(0, args.posts, size=args.rows)
    offsets = pd.to_timedelta(rng.integers(0, 30 * 3600, size=args.rows), unit="s")
    entity_df = pd.DataFrame(
        {
            "post_id": (idx + 1).astype("int64"),
            "user_id": meta["authors"][idx].astype("int64"),
            "event_timestamp": pd.to_datetime(meta["created"][idx]).tz_localize("UTC") + offsets,
        }
    )
    entity_df["event_timestamp"] = entity_df["event_timestamp"].dt.as_unit("us")
    t0 = time.perf_counter()
    got = features.historical_features(entity_df)
    feast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = pandas_pit(entity_df, config.paths().features)
    pandas_s = time.perf_counter() - t0
    compared_rows, mismatches = _compare(got, want, features.feature_columns())
    features.store().teardown()
    return {
        "rows": args.rows,
        "feast_s": feast_s,
        "pandas_s": pandas_s,
        "returned_rows": len(got),
        "compared_rows": compared_rows,
        "mismatched_values": mismatches,
    }


def _compare(got, want, cols: list[str]) -> tuple[int, int]:
    """(rows compared, values that differ) between Feast's and pandas' answers, by entity row."""
    keys = ["post_id", "user_id", "event_timestamp"]
    merged = (
        got[keys + cols]
        .drop_duplicates(keys)
        .merge(want[keys + cols].drop_duplicates(keys), on=keys, suffixes=("", "_pd"))
    )
    mismatches = sum(
        int(
            (
                ~np.isclose(
                    merged[c].astype(float), merged[c + "_pd"].astype(float), equal_nan=True
                )
            ).sum()
        )
        for c in cols
    )
    return len(merged), mismatches


def _print(results: dict) -> None:
    online = results["online"]
    base = online.get("sqlite", next(iter(online.values()), {})).get("in_process", {})
    print(
        f"\nFeast online reads, feature service moderation_v1 (33 features, 3 views), "
        f"{results['params']['posts']} posts / {results['params']['users']} users"
    )
    print(
        f"{'store':<8} {'path':<11} {'entities':>8} {'p50 ms':>9} {'p99 ms':>9} {'p50 vs sqlite in-proc':>22}"
    )
    for kind, entry in online.items():
        for path in ("in_process", "http"):
            if path not in entry:
                continue
            for batch in (1, 100):
                p50, p99 = entry[path][batch]
                ratio = p50 / base[batch][0] if batch in base else float("nan")
                print(f"{kind:<8} {path:<11} {batch:>8} {p50:>9.2f} {p99:>9.2f} {ratio:>21.1f}x")
        extra = f", server ready in {entry['http']['ready_s']:.0f} s" if "http" in entry else ""
        print(
            f"{kind:<8} materialize {entry['materialized_rows']} rows: {entry['materialize_s']:.1f} s{extra}"
        )
    h = results["historical"]
    if h:
        print(f"\nPoint-in-time retrieval, {h['rows']} entity rows x 33 features:")
        print(
            f"  feast (duckdb offline store) {h['feast_s']:.2f} s | pandas merge_asof baseline "
            f"{h['pandas_s']:.2f} s | ratio {h['feast_s'] / h['pandas_s']:.1f}x | "
            f"{h['mismatched_values']} mismatched values in {h['compared_rows']} rows"
        )


if __name__ == "__main__":
    main()
