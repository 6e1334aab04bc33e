"""Feast materialization: Feast's own ``materialize`` against Vigil's bulk writer, side by side.

For each online store (SQLite, Redis) and each engine (``feast``: ``FeatureStore.materialize``,
``bulk``: :mod:`vigil.serving.materialize`), on the same feature marts:

1. **full backfill**: a fresh store, the whole history (``vigil features materialize --full``);
2. **one day**: a fresh store filled with every day but the last, then the last day's rows
   incrementally (what ``vigil_daily`` does each day); the fill itself is not timed;
3. **rerun** (bulk only): the full backfill again over the filled store (nothing changed);
4. **size**: the SQLite file (and its bytes per stored cell), Redis memory of the project's keys;
5. **check**: the two engines' stores answer ``get_online_features`` identically on a sample.

The marts are those of a data root (``--home DATA``, e.g. after ``make run``; the default world)
or, without it, synthetic marts (bench_features.synthetic_marts, seeded).

    python -m bench materialize --home data            # the default world after `make run`
    python -m bench materialize [--posts 20000] [--users 5000] [--stores sqlite,redis]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

MARTS = ("user_activity", "creator_context", "post_behavior")
ENV = ("VIGIL_HOME", "VIGIL_ONLINE_STORE", "VIGIL_FEAST_PROJECT", "VIGIL_REDIS_URL")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench materialize", description=__doc__)
    parser.add_argument("--home", type=Path, help="data root whose features/*.parquet to use")
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--engines", default="feast,bulk")
    parser.add_argument("--sample", type=int, default=300, help="entities compared per store")
    return parser.parse_args(argv)


def _marts(args: argparse.Namespace, out: Path) -> dict:
    """The marts into ``out/full`` and, without their last day, into ``out/cut``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    full, cut = out / "full", out / "cut"
    full.mkdir(parents=True)
    cut.mkdir()
    if args.home:
        for name in MARTS:
            shutil.copy(args.home / "features" / f"{name}.parquet", full / f"{name}.parquet")
    else:
        from bench.bench_features import synthetic_marts

        synthetic_marts(full, args.posts, args.users, args.seed)
    tables = {name: pq.read_table(full / f"{name}.parquet") for name in MARTS}
    last = max(pc.max(t["event_timestamp"]).as_py() for t in tables.values())
    boundary = last - timedelta(days=1)
    info = {"rows": {}, "last_day_rows": {}, "boundary": boundary.isoformat()}
    for name, table in tables.items():
        keep = pc.less_equal(table["event_timestamp"], boundary)
        pq.write_table(table.filter(keep), cut / f"{name}.parquet")
        info["rows"][name] = table.num_rows
        info["last_day_rows"][name] = table.num_rows - table.filter(keep).num_rows
    info["marts_bytes"] = sum(p.stat().st_size for p in full.glob("*.parquet"))
    if args.home and (args.home / "lake").exists():
        lake = args.home / "lake"
        info["lake_bytes"] = sum(p.stat().st_size for p in lake.rglob("*") if p.is_file())
    return info


def _home(root: Path, marts: Path, store: str) -> None:
    """A fresh data root with ``marts`` as its feature marts, applied."""
    from vigil.serving import features

    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(marts, root / "features")
    os.environ["VIGIL_HOME"] = str(root)
    os.environ["VIGIL_ONLINE_STORE"] = store
    os.environ["VIGIL_FEAST_PROJECT"] = f"bench_{uuid.uuid4().hex[:8]}"
    features._STORES.clear()
    features.apply()


def _timed(full: bool, engine: str) -> float:
    from vigil.serving import features

    t0 = time.perf_counter()
    features.materialize(full=full, engine=engine)
    return time.perf_counter() - t0


def _size(store: str) -> dict:
    from vigil import config
    from vigil.serving import features

    fs = features.store()
    if store == "sqlite":
        path = config.paths().feast / "online_store.db"
        return {"bytes": path.stat().st_size}
    from vigil.serving.materialize import _redis

    client = _redis(fs.config.online_store.connection_string)
    try:
        keys = [k for k in client.scan_iter(count=5000) if k.endswith(fs.project.encode())]
        with client.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.memory_usage(k, samples=0)
            used = sum(v or 0 for v in pipe.execute())
        return {"bytes": used, "keys": len(keys)}
    finally:
        client.close()


def _sample_reads(posts: list[int], users: list[int]) -> dict:
    from vigil.serving import features

    fs = features.store()
    out = {}
    for key, ids, views in (
        ("post_id", posts, ["post_behavior"]),
        ("user_id", users, ["creator_context", "user_activity"]),
    ):
        refs = [f"{v}:{f.name}" for v in views for f in fs.get_feature_view(v).features]
        out[key] = fs.get_online_features(
            features=refs, entity_rows=[{key: i} for i in ids], full_feature_names=True
        ).to_dict()
    return out


def _one(args, root: Path, marts: Path, store: str, engine: str, sample) -> dict:
    """Full backfill (timed) and its size; then the last day on a store filled without it."""
    out: dict = {}
    _home(root / f"{store}_{engine}_full", marts / "full", store)
    out["full_s"] = _timed(True, engine)
    out["size"] = _size(store)
    reads = _sample_reads(*sample)
    if engine == "bulk":
        out["rerun_s"] = _timed(True, engine)
    _teardown()
    _home(root / f"{store}_{engine}_day", marts / "cut", store)
    out["fill_s"] = _timed(True, engine)
    shutil.copytree(marts / "full", root / f"{store}_{engine}_day" / "features", dirs_exist_ok=True)
    out["day_s"] = _timed(False, engine)
    _teardown()
    return out | {"reads": reads}


def _teardown() -> None:
    from vigil.serving import features

    features.store().teardown()
    features._STORES.clear()


def main(argv: list[str] | None = None) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.setdefault("VIGIL_REDIS_URL", "127.0.0.1:6379")
    root = Path(tempfile.mkdtemp(prefix="vigil-bench-materialize-"))
    results: dict = {"params": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    try:
        results["marts"] = _marts(args, root / "marts")
        rng = np.random.default_rng(args.seed)
        posts = pq.read_table(root / "marts/full/post_behavior.parquet", columns=["post_id"])
        users = pq.read_table(root / "marts/full/creator_context.parquet", columns=["user_id"])
        sample = (
            sorted(int(x) for x in rng.choice(np.unique(posts["post_id"]), args.sample)),
            sorted(int(x) for x in rng.choice(np.unique(users["user_id"]), args.sample)),
        )
        for store in args.stores.split(","):
            for engine in args.engines.split(","):
                print(f"materialize: {store} / {engine} ...", flush=True)
                results["runs"][f"{store}/{engine}"] = _one(
                    args, root, root / "marts", store, engine, sample
                )
            runs = [results["runs"].get(f"{store}/{e}") for e in ("feast", "bulk")]
            if all(runs):
                results["runs"][f"{store}/bulk"]["equal_reads"] = (
                    runs[0]["reads"] == runs[1]["reads"]
                )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(root, ignore_errors=True)
    _print(results)
    return results


def _print(results: dict) -> None:
    marts = results["marts"]
    print(f"marts: rows {marts['rows']}, last day {marts['last_day_rows']}")
    print(
        f"marts: {marts['marts_bytes'] / 1e6:.1f} MB; lake {marts.get('lake_bytes', 0) / 1e6:.1f} MB"
    )
    print(
        f"{'store/engine':<16}{'full (s)':>10}{'one day (s)':>13}{'rerun (s)':>11}{'size (MB)':>11}"
    )
    for name, run in results["runs"].items():
        rerun = f"{run['rerun_s']:.1f}" if "rerun_s" in run else "-"
        print(
            f"{name:<16}{run['full_s']:>10.1f}{run['day_s']:>13.1f}{rerun:>11}"
            f"{run['size']['bytes'] / 1e6:>11.1f}"
        )
    for store in {n.split("/")[0] for n in results["runs"]}:
        feast, bulk = results["runs"].get(f"{store}/feast"), results["runs"].get(f"{store}/bulk")
        if feast and bulk:
            print(
                f"{store}: bulk vs feast: full {feast['full_s'] / bulk['full_s']:.1f}x faster, "
                f"one day {feast['day_s'] / bulk['day_s']:.1f}x, size "
                f"{feast['size']['bytes'] / bulk['size']['bytes']:.2f}x smaller; "
                f"same reads on {len(bulk['reads']['post_id']['post_id'])} posts + users: "
                f"{bulk['equal_reads']}"
            )
    slim = {
        name: {k: v for k, v in run.items() if k != "reads"}
        for name, run in results["runs"].items()
    }
    print(json.dumps({"marts": marts, "runs": slim}, indent=1, default=str))


if __name__ == "__main__":
    main()
