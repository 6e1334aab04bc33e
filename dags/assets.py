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

ALL = (LAKE_EVENTS, WAREHOUSE_MARTS, FEATURES, SCORES, MODEL, DRIFT_ALERT)
