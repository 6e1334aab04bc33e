"""vigil_notes through real Airflow (``airflow dags test``, SQLite metadata DB), real dbt, GX and
Feast, on a small simulated download: every task succeeds in order and each Asset event comes
from the gate that guards it; a status distribution that jumps fails validate_scores, so publish
does not run and no new features event is emitted."""

from __future__ import annotations

import json
import subprocess
import sys

from sim.notes import simulate_notes

TASKS = [
    "ingest",
    "validate_raw",
    "dbt_staging",
    "dbt_marts",
    "validate_warehouse",
    "score",
    "validate_scores",
    "publish",
]

AIRFLOW_RUN = r"""
import json, sys, sqlalchemy as sa
from vigil.orchestration import airflow_env
from sim import pipeline
env = airflow_env.build_env()
airflow_env.ensure_ready(env)
r = pipeline.dags_test("vigil_notes", sys.argv[1], {"raw_dir": sys.argv[2]}, env=env)
out = {"ok": r["ok"], "states": {t: v["state"] for t, v in r["tasks"].items()}}
eng = sa.create_engine(airflow_env.sql_alchemy_conn())
with eng.connect() as c:
    out["events"] = sorted(r[0] for r in c.execute(sa.text(
        "select a.uri from asset_event e join asset a on a.id = e.asset_id")))
print(json.dumps(out))
"""


def _run(when: str, raw) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", AIRFLOW_RUN, when, str(raw)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_vigil_notes_runs_in_order_and_gates_its_assets(vigil_home):
    raw = vigil_home / "raw"
    simulate_notes(raw, contributors=300, notes=400, ratings=8000, days=7, colluders=8, posts=300)
    first = _run("2026-10-08T00:00:00+00:00", raw)
    assert first["ok"], first
    assert list(first["states"]) == TASKS
    assert set(first["states"].values()) == {"success"}
    assert first["events"] == [
        "vigil://features/notes",
        "vigil://lake/notes",
        "vigil://warehouse/notes",
    ]
    assert (vigil_home / "features" / "note_status.parquet").is_file()

    # The last published distribution, made 40 points "more helpful" than the data: an alert.
    state = vigil_home / "notes" / "state" / "status_distribution.json"
    counts = json.loads(state.read_text())["counts"]
    total = sum(counts.values())
    shifted = {
        "CURRENTLY_RATED_HELPFUL": counts["CURRENTLY_RATED_HELPFUL"] + int(0.4 * total),
        "CURRENTLY_RATED_NOT_HELPFUL": counts["CURRENTLY_RATED_NOT_HELPFUL"],
        "NEEDS_MORE_RATINGS": counts["NEEDS_MORE_RATINGS"],
    }
    state.write_text(json.dumps({"counts": shifted, "published_at_millis": 1}))
    second = _run("2026-10-08T01:00:00+00:00", raw)
    assert not second["ok"]
    assert second["states"]["validate_scores"] == "failed"
    assert second["states"].get("publish", "upstream_failed") == "upstream_failed"
    assert second["events"].count("vigil://features/notes") == 1  # none from the failed run
    assert second["events"].count("vigil://lake/notes") == 2
