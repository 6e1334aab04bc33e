"""Build the account features (the dbt ``accounts`` stage, run for real) from hand-made frames.

The frames are what the lake holds (docs/contracts.md section 2): events (event_id, event_ts,
user_id, action, post_id, target_user_id, text, country), users, devices and the enforcement log.
They are written as the lake of ``home`` (replacing any lake there) and built with
:func:`vigil.accounts.features.build`; reusing one ``home`` across calls keeps dbt's partial parse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.lakefiles import TS, write_lake
from vigil import config

DEVICE_SCHEMA = pa.schema(
    [
        ("seen_id", pa.string()),
        ("user_id", pa.int64()),
        ("seen_at", TS),
        ("device_fp", pa.string()),
        ("network_fp", pa.string()),
    ]
)
ENFORCEMENT_SCHEMA = pa.schema(
    [
        ("enforcement_id", pa.string()),
        ("user_id", pa.int64()),
        ("action", pa.string()),
        ("reason", pa.string()),
        ("enforced_at", TS),
    ]
)


def _rows(frame: pd.DataFrame) -> list[dict]:
    """Frame rows as dicts, NaN/NaT as None and timestamps as datetimes."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                row[key] = value.to_pydatetime()
            elif isinstance(value, float) and key in ("post_id", "target_user_id", "user_id"):
                row[key] = int(value)
    return rows


def build_account_features(
    home: Path,
    ev: pd.DataFrame,
    users: pd.DataFrame,
    dev: pd.DataFrame,
    enf: pd.DataFrame,
    window_days: int = 7,
) -> pd.DataFrame:
    """features/account_features.parquet built by dbt from these inputs, sorted by
    (user_id, event_timestamp)."""
    from vigil.accounts.features import build

    lake = home / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    events = _rows(ev)
    for i, e in enumerate(events):
        e.setdefault("country", None)
        e["source_file"] = f"events/dt={e['event_ts'].date()}/hour={e['event_ts'].hour:02d}.jsonl"
        e["source_line"] = i + 1
    write_lake(lake, events, users=_rows(users))
    for name, frame, schema in (
        ("devices", dev, DEVICE_SCHEMA),
        ("enforcement", enf, ENFORCEMENT_SCHEMA),
    ):
        (lake / name).mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(_rows(frame), schema=schema)
        pq.write_table(table, lake / name / f"{name}.parquet")
    with config.using_home(home):
        result = build(window_days=window_days)
    out = pd.read_parquet(result["path"])
    return out.sort_values(["user_id", "event_timestamp"]).reset_index(drop=True)
