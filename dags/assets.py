"""Vigil's Assets, defined once: the cross-DAG contract between producers and consumers.

DAG files import these (the dags folder is on ``sys.path`` when Airflow parses it). An Asset
event means the stage's output was written AND passed its quality gate.
"""

from __future__ import annotations

from airflow.sdk import Asset

# The lake (Parquet, partitioned by day) after ingest + the raw gate.
LAKE_EVENTS = Asset(name="lake_events", uri="vigil://lake/events", group="vigil")
# The DuckDB warehouse marts after `dbt build` + the marts gate.
WAREHOUSE_MARTS = Asset(name="warehouse_marts", uri="vigil://warehouse/marts", group="vigil")
# Feast offline + online store materialized and validated: what training reads.
FEATURES = Asset(name="features_moderation", uri="vigil://features/moderation", group="vigil")
# The day's posts scored by the champion model.
SCORES = Asset(name="scores_daily", uri="vigil://scores/daily", group="vigil")
# A newly registered model (challenger or champion).
MODEL = Asset(name="models_registry", uri="vigil://models/registry", group="vigil")
# Emitted by the drift monitor when a drift check fails: retrain.
DRIFT_ALERT = Asset(name="monitor_drift_alert", uri="vigil://monitor/drift_alert", group="vigil")

# Community Notes (vigil_notes): the lake's notes tables after ingest + the notes_raw gate; the
# notes marts after dbt + the notes_warehouse gate; the notes views in Feast after the scores
# passed the notes_scores gate (and the status-distribution check) and were published.
NOTES_LAKE = Asset(name="lake_notes", uri="vigil://lake/notes", group="vigil")
NOTES_WAREHOUSE = Asset(name="warehouse_notes", uri="vigil://warehouse/notes", group="vigil")
NOTES_FEATURES = Asset(name="features_notes", uri="vigil://features/notes", group="vigil")

# Account integrity (vigil_accounts): the account features after the accounts gate; the bot scores.
ACCOUNT_FEATURES = Asset(name="features_accounts", uri="vigil://features/accounts", group="vigil")
ACCOUNT_SCORES = Asset(name="scores_accounts", uri="vigil://scores/accounts", group="vigil")

# Discovery (vigil_ranking, vigil_trends): the day's ranked home timelines after the ranking_home
# gate; the hour's live trends and Explore pages after the ranking_trends gate.
RANKED_TIMELINES = Asset(name="ranking_home", uri="vigil://ranking/home", group="vigil")
TRENDS = Asset(name="ranking_trends", uri="vigil://ranking/trends", group="vigil")

ALL = (
    LAKE_EVENTS, WAREHOUSE_MARTS, FEATURES, SCORES, MODEL, DRIFT_ALERT,
    NOTES_LAKE, NOTES_WAREHOUSE, NOTES_FEATURES,
    ACCOUNT_FEATURES, ACCOUNT_SCORES,
    RANKED_TIMELINES, TRENDS,
)  # fmt: skip
