"""The champion's harm scores joined point in time (vigil.ranking.harm) against a brute-force
lookup on a hand-made scores file; and the ranking_home gate failing on hand-made bad timelines."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vigil.ranking import harm

ORIGIN = 1_790_000_000_000
H = 3_600_000


def _write_scores(home, rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["post_id", "scored_ms", "probability", "model_id"])
    df["scored_at"] = pd.to_datetime(df["scored_ms"], unit="ms", utc=True)
    out = home / "scores" / "dt=2026-09-21"
    out.mkdir(parents=True)
    df.drop(columns="scored_ms").to_parquet(out / "scores.parquet", index=False)
    return df


def test_champion_scores_at_a_time_equal_a_brute_force_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    rng = np.random.default_rng(1)
    post_ids = np.arange(100, 130)  # rows 0..29; post 999 is not in the lake
    rows = [(int(p), ORIGIN + int(rng.integers(0, 48)) * H, float(rng.random()), "champ")
            for p in rng.choice(post_ids, 60)]  # fmt: skip
    rows += [(999, ORIGIN, 0.5, "champ"), (100, ORIGIN, 0.77, "other"), (101, ORIGIN, np.nan, "champ")]
    df = _write_scores(tmp_path, rows)
    ctx = SimpleNamespace(post_row=pd.Series(np.arange(30), index=post_ids), origin=ORIGIN - 24 * H,
                          author=np.zeros(30, dtype=int))  # fmt: skip
    got = harm.attach(ctx, model_id="champ")
    assert got is ctx.champion and got.model_id == "champ"
    mine = df[(df["model_id"] == "champ") & df["probability"].notna()]
    for _ in range(300):
        r = int(rng.integers(0, 30))
        t = ORIGIN + int(rng.integers(-2, 50)) * H + int(rng.integers(0, 2)) * 1
        seen = mine[(mine["post_id"] == post_ids[r]) & (mine["scored_ms"] <= t)]
        expect = seen.sort_values("scored_ms", kind="stable")["probability"].iloc[-1] if len(
            seen) else np.nan  # fmt: skip
        value = got.at(np.array([r]), t)[0]
        assert (np.isnan(value) and np.isnan(expect)) or value == pytest.approx(expect), (r, t)
    # the re-rank's harm: the larger of the two, the feature where the champion has no score
    feature = np.full(30, 0.2)
    risk = harm.rerank_harm(ctx, np.arange(30), ORIGIN + 60 * H, feature)
    champ = got.at(np.arange(30), ORIGIN + 60 * H)
    assert np.array_equal(risk, np.where(np.isnan(champ), 0.2, np.maximum(champ, 0.2)))


def test_no_champion_or_no_scores_falls_back_to_the_feature(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    ctx = SimpleNamespace(post_row=pd.Series([0], index=[1]), origin=ORIGIN, author=np.zeros(1))
    caplog.set_level("INFO", logger="vigil.ranking.harm")
    assert harm.attach(ctx) is None  # no registry at all
    assert "no champion model" in caplog.text
    assert harm.attach(ctx, model_id="champ") is None  # a champion without scores
    feature = np.array([0.3], dtype=np.float32)
    assert harm.rerank_harm(ctx, np.array([0]), ORIGIN, feature) is feature


def test_ranking_home_gate_fails_on_removed_duplicate_harmful_and_nan(tmp_path, monkeypatch):
    from vigil.quality.gate import run_gate

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    t = pd.Timestamp("2026-10-04", tz="UTC").as_unit("us")
    labels = tmp_path / "lake" / "labels"
    labels.mkdir(parents=True)
    pd.DataFrame({"post_id": [7, 8], "is_harmful": [True, True],
                  "labeled_at": [t - pd.Timedelta("1h"), t + pd.Timedelta("1h")]}).to_parquet(
        labels / "labels.parquet", index=False)  # fmt: skip
    good = pd.DataFrame({
        "user_id": [1, 1, 2], "rank": np.array([1, 2, 1], dtype=np.int32), "post_id": [5, 8, 6],
        "author_id": [3, 3, 3], "topic": np.array([0, 1, 0], dtype=np.int32),
        "followed": [True, False, True], "score": [1.0, 0.5, 0.2], "harm_prob": [0.01, 0.2, 0.0],
        "champion_harm": pd.array([None, 0.3, None], dtype="Float64"),
        "rerank_harm": [0.01, 0.3, 0.0],
        "post_created_at": [t - pd.Timedelta("2h")] * 3, "ranked_at": [t] * 3,
        "topics_version": "v0001",
    })  # fmt: skip
    ok = tmp_path / "ok"
    ok.mkdir()
    good.to_parquet(ok / "timelines.parquet", index=False)
    assert run_gate("ranking_home", run_date="2026-10-04", path=ok).success  # post 8: later

    bad = pd.concat([good, good.iloc[[0]].assign(rank=np.int32(3))], ignore_index=True)
    bad.loc[2, ["post_id"]] = 7  # removed an hour before the ranking time
    bad.loc[1, ["rerank_harm"]] = 0.6  # above the harm cut
    bad.loc[0, ["score"]] = np.nan
    out = tmp_path / "bad"
    out.mkdir()
    bad.to_parquet(out / "timelines.parquet", index=False)
    r = run_gate("ranking_home", run_date="2026-10-04", path=out, raise_on_failure=False)
    assert not r.success
    assert {x.check for x in r.failures} == {
        "no_removed_post_shown", "no_harmful_above_cut", "scores_finite",
        "no_duplicate_post_per_user", "not_null",
    }  # fmt: skip
