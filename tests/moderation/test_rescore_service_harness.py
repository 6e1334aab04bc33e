"""sim.rescore_service_harness's grading of a decision log, on hand-made logs (issue 22): the
first removal's event time per test post, heavy calls by the event's day, views after removal
prevented (the replay's grading), and the request-by-request comparison with the replay."""

from __future__ import annotations

import pandas as pd

from sim.rescore_replay import prevented
from sim.rescore_service_harness import compare_requests, service_outcome


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def _decisions(rows):
    frame = pd.DataFrame(rows, columns=["post_id", "event_at", "trigger", "decision", "routed"])
    frame["event_at"] = pd.to_datetime(frame["event_at"], utc=True, format="ISO8601")
    return frame.rename(columns={"routed": "routed_to_heavy"})


def test_outcome_and_grading_by_hand():
    log = _decisions(
        [
            (1, "2026-10-25 10:00", "creation", "allow", True),
            (1, "2026-10-25 10:20", "first_report", "remove", True),
            (1, "2026-10-25 11:00", "views_32", "remove", True),  # a later removal: not the first
            (2, "2026-10-25 23:00", "creation", "allow", False),
            (2, "2026-10-26 01:00", "views_16", "allow", True),
            (9, "2026-10-26 02:00", "views_64", "remove", True),  # not a test post
        ]
    )
    out = service_outcome(log, {1, 2})
    assert out.removed_at == {1: ts("2026-10-25 10:20")}
    assert out.heavy_calls == {"2026-10-25": 3, "2026-10-26": 1}
    assert out.moments_scored == 5
    posts = pd.DataFrame(
        {"post_id": [1, 2], "created_at": [ts("2026-10-25 10:00"), ts("2026-10-25 23:00")]}
    )
    views = pd.DataFrame(
        {
            "post_id": [1, 1, 1, 2, 2],
            "ts": [ts("2026-10-25 10:05"), ts("2026-10-25 10:20"), ts("2026-10-25 10:21")]
            + [ts("2026-10-25 23:10"), ts("2026-10-26 03:00")],
        }
    )
    harmful = pd.Series({1: True, 2: True})
    graded = prevented(out, views, harmful, posts)
    # post 1: of its 3 views only the one after 10:20 is prevented; post 2 never removed: 1 of 5
    assert graded["harmful_views_prevented"] == 1 and graded["harmful_views_total"] == 5
    assert graded["heavy_calls_per_day"] == 4 / 1  # one creation day (both posts on 10-25)


def test_requests_compared_up_to_the_replays_removal():
    scored = pd.DataFrame(
        {
            "post_id": [1, 1, 1, 2],
            "scored_at": [ts("2026-10-25 10:00"), ts("2026-10-25 10:20"), ts("2026-10-25 12:00")]
            + [ts("2026-10-25 23:00")],
            "trigger": ["creation", "first_report", "views_64", "creation"],
        }
    )
    # the replay removed post 1 at 10:20: its 12:00 moment was not scored
    log = _decisions(
        [
            (1, "2026-10-25 10:00", "creation", "allow", True),
            (1, "2026-10-25 10:20", "first_report", "remove", True),
            (2, "2026-10-25 23:00:01", "creation", "allow", False),  # a second later: differs
        ]
    )
    got = compare_requests(log, scored, {1: ts("2026-10-25 10:20")})
    assert (got["replay_moments"], got["service_requests"], got["both"]) == (3, 3, 2)
    assert got["replay_only"] == 1 and got["service_only"] == 1


def test_report_json_is_the_replays_numpy_numbers_as_numbers(tmp_path, capsys):
    """The harness writes its report with the replay's helper: numpy integers and floats as
    JSON numbers, anything else JSON cannot write (a timestamp) as its text; the file and
    stdout hold the same text."""
    import numpy as np

    from sim import rescore_service_harness
    from sim.rescore_replay import write_json

    assert not hasattr(rescore_service_harness, "_json")  # no copy of the helper left
    report = {
        "calls": np.int64(194),
        "share": np.float64(0.75),
        "at": pd.Timestamp("2026-10-25 10:20", tz="UTC"),
        "ids": [1, 2],
    }
    out = tmp_path / "r.json"
    write_json(report, str(out))
    expected = (
        '{\n  "calls": 194,\n  "share": 0.75,\n  "at": "2026-10-25 10:20:00+00:00",\n'
        '  "ids": [\n    1,\n    2\n  ]\n}'
    )
    assert out.read_text() == expected
    assert capsys.readouterr().out == expected + "\n"


def test_the_harness_runs_the_commands_defaults(tmp_path, monkeypatch):
    """What the harness runs is `vigil serve --heavy-budget N` and `vigil stream --rescore URL`
    with only the replay devices: the figures come from the commands' defaults."""
    import argparse

    from sim.rescore_service_harness import serve_command, stream_args
    from vigil.stream import processor

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    assert serve_command(8700, 298, None, None)[1:] == [
        *("serve", "--port", "8700", "--heavy-budget", "298"),
    ]
    assert "--no-skip-removed" in serve_command(1, None, None, None, skip_removed=False)
    argv = stream_args(tmp_path, tmp_path / "s.sqlite", "http://127.0.0.1:1", 1)
    flags = {a for a in argv if a.startswith("--")}
    assert flags & {"--post-counters", "--score-created", "--skip-removed"} == set()
    parser = argparse.ArgumentParser()
    processor.configure_parser(parser)
    opts = processor.options_from_args(parser.parse_args(argv))
    assert opts.post_counters and opts.score_created and opts.rescore_wait
    assert not opts.push_users and opts.rescore_url == "http://127.0.0.1:1"
    # exactly the options the harness set by hand before 8b62a03 (the runs in docs/rescoring.md)
    before = processor.RunOptions(
        source="files",
        raw_dir=tmp_path,
        state_path=tmp_path / "s.sqlite",
        once=True,
        checkpoint_seconds=1e9,
        checkpoint_events=1,
        rescore_url="http://127.0.0.1:1",
        post_counters=True,
        score_created=True,
        rescore_wait=True,
        push_users=False,
        lateness_hours=48,
    )
    assert opts == before
