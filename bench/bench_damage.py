"""Single-byte flips: what the lake's page checksums and SQLite's integrity_check catch.

For N seeded positions, one byte is replaced by a different seeded value, and the damaged copy is
classified as: caught (the check, or the read, fails), unchanged (it reads back the same rows: a
byte in unused space or in metadata nobody reads) or silent (it reads back other values).

- lake: a day partition of the lake, positions in its pages (not the footer), read the way Vigil
  reads it (vigil.lake.store.check_readable: every page, checksums verified) against the same rows
  written without page checksums and read by pyarrow;
- online store: the SQLite online store, positions anywhere in the file, ``PRAGMA quick_check``
  and ``PRAGMA integrity_check`` (what vigil.serving.online_check runs), then every table read.

    python -m bench damage [--home DATA_ROOT] [--flips 400] [--seed 19]

Without --home it builds a small world (400 users, 3 days): ingest, dbt all, Feast materialize.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path


def _vigil(home: Path, *args: str) -> None:
    env = dict(os.environ, VIGIL_HOME=str(home))
    subprocess.run([sys.executable, "-m", "vigil.cli", *args], env=env, check=True)


def build_world(home: Path) -> None:
    from datetime import date

    from sim.world import simulate

    simulate(home / "raw", users=400, days=3, start=date(2026, 10, 1), seed=5)
    for args in (["ingest"], ["dbt", "all"], ["features", "apply"], ["features", "materialize"]):
        _vigil(home, *args)


def _flipped(data: bytes, position: int, rng: random.Random) -> bytes:
    out = bytearray(data)
    out[position] ^= rng.randrange(1, 256)
    return bytes(out)


def lake_flips(part: Path, flips: int, seed: int, work: Path) -> dict:
    import pyarrow.parquet as pq

    from vigil.contracts import event_schema
    from vigil.lake.store import check_readable, read_parquet

    rows = read_parquet(part, event_schema())
    plain = work / "plain.parquet"
    pq.write_table(rows, plain, compression="zstd", write_page_checksum=False)
    results = {}
    for name, source in (("with page checksums", part), ("without (pyarrow read)", plain)):
        data = source.read_bytes()
        footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
        rng = random.Random(seed)
        counts: Counter = Counter()
        bad = work / "bad.parquet"
        for position in rng.sample(range(4, footer), min(flips, footer - 4)):
            bad.write_bytes(_flipped(data, position, rng))
            try:
                if source is part:
                    check_readable([bad])
                got = pq.read_table(bad).select(rows.column_names).cast(rows.schema)
            except Exception:  # noqa: BLE001 - any failure to read is "caught"
                counts["caught"] += 1
                continue
            counts["unchanged" if got.equals(rows) else "silent"] += 1
        results[name] = dict(counts)
    return results


def _tables(path: Path) -> dict:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {n: sorted(con.execute(f'select * from "{n}"').fetchall(), key=repr) for n in names}
    finally:
        con.close()


def _passes(path: Path, pragma: str) -> bool:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(f"pragma {pragma}").fetchall() == [("ok",)]
    except sqlite3.DatabaseError:
        return False
    finally:
        con.close()


def online_flips(store: Path, flips: int, seed: int, work: Path) -> dict:
    data = store.read_bytes()
    reference = _tables(store)
    rng = random.Random(seed)
    counts: dict[str, Counter] = {"quick_check": Counter(), "integrity_check": Counter()}
    bad = work / "bad.db"
    for position in rng.sample(range(len(data)), min(flips, len(data))):
        bad.write_bytes(_flipped(data, position, rng))
        try:
            read = "unchanged" if _tables(bad) == reference else "silent"
        except sqlite3.DatabaseError:
            read = "read error"
        for pragma, c in counts.items():
            c["caught" if not _passes(bad, pragma) else f"not caught, {read}"] += 1
    return {k: dict(v) for k, v in counts.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench damage", description=__doc__)
    parser.add_argument("--home", type=Path, help="a materialized data root (default: build one)")
    parser.add_argument("--flips", type=int, default=400)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="bench-damage-") as tmp:
        work = Path(tmp)
        home = args.home
        if home is None:
            home = work / "home"
            build_world(home)
        part = max((home / "lake" / "events").glob("dt=*/events.parquet"))
        store = home / "feast" / "online_store.db"
        result = {
            "flips": args.flips,
            "seed": args.seed,
            "lake_partition": str(part),
            "lake": lake_flips(part, args.flips, args.seed, work),
            "online_store": online_flips(store, args.flips, args.seed, work),
        }
    for kind in ("lake", "online_store"):
        for name, counts in result[kind].items():
            print(
                f"{kind:<13} {name:<24} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
