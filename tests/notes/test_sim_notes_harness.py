"""The issue's truth targets on small simulated worlds, graded by sim.notes_harness.

Targets (issue 20, "Measured"): Spearman(final note intercept, true helpfulness) >= 0.9; strongly
slanted notes reaching Helpful <= 1/3 of a mean-rating ranking with as many Helpful notes; the
colluding group's notes reaching Helpful <= 1%; collusion recall >= 0.9 at precision >= 0.9; and
the colluders' reputation below the others' once notes are judged by the scorer's consensus.
"""

from __future__ import annotations

import pytest

from sim import notes_harness
from sim.notes import simulate_notes

SMALL = {"contributors": 800, "notes": 1000, "ratings": 25_000, "days": 15, "colluders": 12}


@pytest.mark.skipif(not notes_harness.scorer_available(), reason="vigil.notes.scoring absent")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_truth_targets_on_a_small_world(tmp_path, seed):
    simulate_notes(tmp_path, seed=seed, **SMALL)
    g = notes_harness.grade(tmp_path)
    assert g["spearman_intercept_helpfulness"] >= 0.9, g
    assert g["slanted_helpful_mean_ranking"] > 0  # the comparison is not vacuous
    assert g["slanted_helpful_vs_mean_ranking"] <= 1 / 3, g
    assert g["colluding_notes"] >= 18
    assert g["colluding_notes_helpful_share"] <= 0.01, g
    assert g["collusion_recall"] >= 0.9 and g["collusion_precision"] >= 0.9, g
    assert (
        g["reputation_scorer_consensus_colluders_median"]
        < g["reputation_scorer_consensus_others_median"]
    ), g


def test_run_reports_the_spread_over_seeds(tmp_path):
    report = notes_harness.run([4, 5], tmp_path, score=False, **SMALL)
    assert set(report["per_seed"]) == {4, 5}
    recall = report["spread"]["collusion_recall"]
    assert recall["min"] <= recall["mean"] <= recall["max"]
    assert report["met"]["collusion_recall"] == (recall["min"] >= 0.9)
    assert "spearman_intercept_helpfulness" not in report["spread"]  # not scored
