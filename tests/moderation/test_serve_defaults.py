"""`vigil serve`'s defaults for triggered re-scoring (issue 22): removed posts skipped unless
`--no-skip-removed`; a budget alone turns the spare heavy calls on at the floor 0.5; none without
a budget. The parser and `run` are the command's own; `serve` is replaced to see what it gets."""

from __future__ import annotations

import argparse

import pytest

from vigil.moderation import cli
from vigil.moderation.service import Components, _removed


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def served_with(monkeypatch):
    for name in ("VIGIL_SERVE_HEAVY_BUDGET", "VIGIL_SERVE_SPARE_FLOOR"):
        monkeypatch.delenv(name, raising=False)
    got: dict = {}
    monkeypatch.setattr(cli, "serve", lambda **kw: got.update(kw))

    def run(*argv: str) -> dict:
        got.clear()
        assert cli.run(_parse(*argv)) == 0
        return dict(got)

    return run


def test_defaults_and_opt_outs_reach_the_service(served_with):
    plain = served_with()
    assert plain["skip_removed"] is True and plain["spare"] is None
    assert served_with("--no-skip-removed")["skip_removed"] is False
    assert served_with("--skip-removed")["skip_removed"] is True
    assert served_with("--heavy-budget", "298")["spare"] == (298, 0.5)
    assert served_with("--heavy-budget", "298", "--spare-floor", "0.75")["spare"] == (298, 0.75)


def test_budget_from_the_setting_alone(served_with, monkeypatch):
    monkeypatch.setenv("VIGIL_SERVE_HEAVY_BUDGET", "194")
    assert served_with()["spare"] == (194, 0.5)


class _Log:
    """A decision log holding one removal of post 5 and one allow of post 6."""

    def history(self, post_id: int) -> list[dict]:
        rows = {
            5: [{"decision": "allow"}, {"decision": "remove", "model_id": "m", "decided_at": "t"}],
            6: [{"decision": "remove"}, {"decision": "allow"}],  # a reversed appeal
        }
        return rows.get(post_id, [])


def test_removed_post_answered_without_scoring_by_default_and_scored_when_off():
    on = Components(None, None, None, _Log(), None)  # the dataclass's default: on
    answer = _removed(on, 5, "first_report")
    assert answer is not None
    assert (answer["decision"], answer["rescored"], answer["model_id"]) == ("remove", False, "m")
    assert _removed(on, 5, "views_16+reports_2") is not None
    assert _removed(on, 5, "creation") is None  # a creation-time score is scored
    assert _removed(on, 6, "first_report") is None  # restored after an appeal: scored
    assert _removed(on, 7, "first_report") is None  # no decision yet
    off = Components(None, None, None, _Log(), None, skip_removed=False)
    assert _removed(off, 5, "first_report") is None


def test_auto_budget_is_the_batchs_heavy_calls_a_day(tmp_path, monkeypatch, served_with):
    """scores/dt=*/scores.parquet as `vigil score` writes them (a post's later ages land on the
    next day): routed events by scored day: 10-01 0, 10-0d d (d = 2..9), 10-10 1; the latest
    day (10-10) is left out, so the budget is the mean of 10-03..10-09 = 42 / 7 = 6; unrouted
    rows do not count."""
    import pandas as pd

    from vigil.errors import UserError

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    with pytest.raises(UserError, match="--heavy-budget auto"):
        served_with("--heavy-budget", "auto")
    assert served_with()["spare"] is None  # no budget, no scores: off
    for k in range(1, 10):
        created = pd.Timestamp(f"2026-10-{k:02d} 23:00", tz="UTC")
        scored = [created] * (k - 1) + [created + pd.Timedelta(hours=1)] * 2
        routed = [True] * (k - 1) + [True, False]  # day k: k - 1 + the previous day's one
        out = tmp_path / "scores" / f"dt={created.date()}"
        out.mkdir(parents=True)
        frame = pd.DataFrame({"scored_at": scored, "routed_to_heavy": routed, "post_id": 1})
        frame.to_parquet(out / "scores.parquet", index=False)
    batch = cli.batch_heavy_calls()
    # day d's calls: d - 1 (created that day) + 1 (the day before's +1 h) = d for d >= 2
    assert batch["days"] == [f"2026-10-{d:02d}" for d in range(3, 10)]
    assert batch["calls_per_day"] == pytest.approx(sum(range(3, 10)) / 7)
    assert served_with("--heavy-budget", "auto")["spare"] == (6, 0.5)
