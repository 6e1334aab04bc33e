"""Build the account features (the dbt ``accounts`` stage, run for real) from hand-made frames:
:func:`sim.accounts_lake.account_features` writes them as the lake of ``home`` (events with
event_id, event_ts, user_id, action, post_id, target_user_id, text, country; users; devices;
the enforcement log) and builds there. Reusing one ``home`` across calls keeps dbt's partial
parse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.accounts_lake import account_features


def build_account_features(
    home: Path,
    ev: pd.DataFrame,
    users: pd.DataFrame,
    dev: pd.DataFrame,
    enf: pd.DataFrame,
    window_days: int = 7,
) -> pd.DataFrame:
    """features/account_features.parquet built by dbt, sorted by (user_id, event_timestamp)."""
    return account_features(ev, users, dev, enf, home=home, window_days=window_days)
