"""vigil_online_eval through real Airflow (``airflow dags test``, SQLite metadata DB) with the
``double_review`` param (issue 22): the hand-made day of tests/evaluation/test_double_review.py
(a census: every impression drawn, weight = views), moderators scripted per review round through
``VIGIL_REVIEW_ANSWERER`` (a module written here). Expected figures by hand, as in that test:
with ``double_review`` 3 the labels of posts 1, 2 and 4 (weights 10, 4, 20) go back for a second
review and 2 and 4 (disagreements) for a third: 11 labels, post 2 overturned, prevalence 32/37;
with the DAG's default (30) no label weighs more: the first verdicts, 36/37."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# the day's lake views and decision log: the hand-made census day of the double-review tests
from tests.evaluation.test_double_review import DAY, _world

LOGICAL = "2026-10-06T02:30:00+00:00"  # the DAG measures the logical date's previous day

ANSWERER = """
import json
import os
from pathlib import Path

SCRIPT = {
    "online_eval": {1: True, 2: True, 3: True, 4: True, 5: True, 6: False},
    "online_eval-review2": {1: True, 2: False, 4: False},
    "online_eval-review3": {2: False, 4: True},
}


def answer(requests, verdicts_dir):
    queue = str(requests["queue"].iloc[0])
    said = SCRIPT[queue]
    ids = [int(p) for p in requests["post_id"]]
    with open(Path(os.environ["VIGIL_HOME"]) / "asked.jsonl", "a") as f:
        f.write(json.dumps([queue, ids]) + "\\n")
    lines = [
        json.dumps({"post_id": p, "is_harmful": said[p], "harm_types": ["hate"] if said[p] else [],
                    "reviewer": "mod-" + queue, "reviewed_at": "2026-10-06T00:00:00+00:00"})
        + "\\n"
        for p in ids if p in said
    ]
    n = len(list(Path(verdicts_dir).glob(queue + "-*.jsonl")))
    (Path(verdicts_dir) / f"{queue}-{n + 1}.jsonl").write_text("".join(lines))
"""

AIRFLOW_RUN = r"""
import json, sys
from vigil.orchestration import airflow_env
from sim import pipeline
env = airflow_env.build_env()
airflow_env.ensure_ready(env)
out = {}
base = {"control": "m-control", "candidate": "m-cand", "budget": 100}
for name, conf in (("w3", {**base, "double_review": 3}), ("default", base)):
    r = pipeline.dags_test("vigil_online_eval", sys.argv[1], conf, env=env)
    report = json.loads(open(sys.argv[2]).read())
    out[name] = {"ok": r["ok"], "states": {t: v["state"] for t, v in r["tasks"].items()},
                 "reviews": report["reviews"], "prevalence": report["prevalence"]["estimate"]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_double_review_param_in_a_real_dag_run(tmp_path):
    home = tmp_path / "vigil"
    _world(home)
    (tmp_path / "dag_moderators.py").write_text(ANSWERER)
    env = {
        **os.environ,
        "VIGIL_HOME": str(home),
        "VIGIL_AIRFLOW_DB": "sqlite",
        "VIGIL_REVIEW_ANSWERER": "dag_moderators:answer",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    report = home / "reports" / "online_eval" / f"day={DAY}" / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", AIRFLOW_RUN, LOGICAL, str(report)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    run = json.loads(proc.stdout.strip().splitlines()[-1])

    w3 = run["w3"]
    assert w3["ok"] and w3["states"] == {"sample_label_estimate": "success"}, w3
    assert w3["reviews"]["first"] == 6 and w3["reviews"]["labels_used"] == 6 + 3 + 2
    assert w3["reviews"]["double_review"]["overturned"] == 1
    assert w3["prevalence"] == pytest.approx(32 / 37)
    asked = [json.loads(x) for x in (home / "asked.jsonl").read_text().splitlines()]
    assert asked == [
        ["online_eval", [1, 2, 3, 4, 5, 6]],
        ["online_eval-review2", [1, 2, 4]],
        ["online_eval-review3", [2, 4]],
    ]

    default = run["default"]  # double_review 30: no label weighs more, the first verdicts
    assert default["ok"], default
    reviews = default["reviews"]
    assert reviews["first"] == 6 and reviews["labels_used"] == 6
    assert reviews["double_review"]["eligible_harmful"] == reviews["double_review"]["second"] == 0
    assert default["prevalence"] == pytest.approx(36 / 37)
    assert len((home / "asked.jsonl").read_text().splitlines()) == 3  # nothing new
