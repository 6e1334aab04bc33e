"""`vigil stream --rescore URL` / `--triggers` turn the exact post counters and the creation-time
requests on by default (issue 22); `--no-post-counters` / `--no-score-created` turn them off;
`--rescore-wait` stays off. The expected requests: the brute force of test_stream_rescore.py plus
one `creation` request at each post event, from the generator's own event list."""

from __future__ import annotations

import argparse
import json

import pytest
from test_stream_rescore import _ms, _requests, brute_force, write_world

from vigil.errors import UserError
from vigil.stream import processor


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    processor.configure_parser(parser)
    return parser.parse_args(list(argv))


def _opts(*argv: str) -> processor.RunOptions:
    return processor.options_from_args(_parse(*argv))


def test_parsing_defaults_and_opt_outs(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    for on in (_opts("--rescore", "http://127.0.0.1:8700"), _opts("--triggers")):
        assert on.post_counters and on.score_created
        assert not on.rescore_wait and on.push_users
    off = _opts("--rescore", "http://x", "--no-post-counters", "--no-score-created")
    assert not off.post_counters and not off.score_created
    plain = _opts()
    assert not plain.post_counters and not plain.score_created and plain.rescore_url is None
    assert _opts("--post-counters").post_counters  # counters alone, no requests
    assert _opts("--rescore", "http://x", "--rescore-wait").rescore_wait
    with pytest.raises(UserError, match="--score-created"):
        _opts("--score-created")


def _run(capsys, *argv: str) -> dict:
    assert processor.run(_parse("--once", "--no-push", *argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_triggers_by_default_send_creations_and_keep_post_counters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    truth = write_world(raw, posts=6, events=800, seed=3)
    triggers = brute_force(truth)
    creations = [
        (ev["post_id"], _ms(ev["ts"]), "creation") for ev in truth if ev["action"] == "post"
    ]
    assert len(creations) == 6 and triggers

    out = tmp_path / "default.jsonl"
    result = _run(
        capsys, "--raw", str(raw), "--state", str(tmp_path / "a.sqlite"), "--triggers", str(out)
    )
    assert sorted(_requests(out)) == sorted(triggers + creations)
    assert result["post_counters"]["posts"] == 6

    out = tmp_path / "off.jsonl"
    result = _run(
        capsys,
        *("--raw", str(raw), "--state", str(tmp_path / "b.sqlite"), "--triggers", str(out)),
        *("--no-score-created", "--no-post-counters"),
    )
    assert sorted(_requests(out)) == triggers
    assert "post_counters" not in result
