"""The simulator keeps the raw-log contract (docs/contracts.md §1) and the promises of issue 2.

Expected values come from the contract and the issue (action set, field rules, "< 1% harmful",
"about half of the labels harmful", ~0.5% late, ~0.2% duplicates, ...). The validator below is
written from the contract, independently of the simulator's code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import contract_doc
import numpy as np
import pytest

from sim.world import simulate
from vigil.cli import main as cli_main

CONTRACT_ACTIONS = set(contract_doc.actions())  # the vocabulary as docs/contracts.md writes it
NEEDS_POST = {"post", "reply", "view", "like", "share", "dislike", "report"}
NEEDS_TARGET = {"block", "mute", "follow", "unfollow"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
START = date(2026, 10, 1)


def _parse_ts(s: str) -> datetime:
    if not TS_RE.match(s):
        raise ValueError(f"not an ISO-8601 UTC millisecond timestamp: {s!r}")
    return datetime.fromisoformat(s)  # Python 3.11 reads the trailing Z as UTC


def _valid_event(raw: bytes, file_hour_start: datetime) -> dict | None:
    """The contract's rules for one line; returns the event or None if the line breaks them."""
    try:
        ev = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(ev, dict):
        return None
    fields = (
        "event_id",
        "event_ts",
        "user_id",
        "action",
        "post_id",
        "target_user_id",
        "text",
        "country",
    )
    if any(f not in ev for f in fields):
        return None
    eid, ts, uid, action = ev["event_id"], ev["event_ts"], ev["user_id"], ev["action"]
    if not (isinstance(eid, str) and 1 <= len(eid) <= 64):
        return None
    if not (isinstance(ts, str) and TS_RE.match(ts)):
        return None
    try:
        t = _parse_ts(ts)
    except ValueError:
        return None
    if t > file_hour_start + timedelta(hours=1) + timedelta(days=1):
        return None
    if action not in CONTRACT_ACTIONS:
        return None
    for f in ("user_id", "post_id", "target_user_id"):
        v = ev[f]
        if v is not None and (type(v) is not int or v <= 0):
            return None
    if uid is None:
        return None
    if action in NEEDS_POST and ev["post_id"] is None:
        return None
    if action in NEEDS_TARGET and ev["target_user_id"] is None:
        return None
    if action in ("post", "reply") and not isinstance(ev["text"], str):
        return None
    if ev["text"] is not None and (not isinstance(ev["text"], str) or len(ev["text"]) > 5000):
        return None
    if action == "login" and not (
        isinstance(ev["country"], str) and re.fullmatch(r"[A-Z]{2}", ev["country"])
    ):
        return None
    return ev


def _read_world(out: Path) -> dict:
    """Every line of every hour file, checked against the contract."""
    good, bad, files = [], 0, []
    for path in sorted((out / "events").glob("dt=*/hour=*.jsonl")):
        day = date.fromisoformat(path.parent.name[3:])
        hour = int(path.stem[5:])
        hs = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        files.append(path)
        for n, raw in enumerate(path.read_bytes().splitlines(), 1):
            ev = _valid_event(raw, hs)
            if ev is None:
                bad += 1
            else:
                good.append((hs, n, raw, ev))
    posts = [json.loads(x) for x in (out / "_truth" / "posts.jsonl").read_text().splitlines()]
    users = [json.loads(x) for x in (out / "_truth" / "users.jsonl").read_text().splitlines()]
    labels = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    return {
        "good": good,
        "bad": bad,
        "files": files,
        "posts": posts,
        "truth_users": users,
        "labels": labels,
        "summary": json.loads((out / "_truth" / "summary.json").read_text()),
        "corruptions": json.loads((out / "_truth" / "corruptions.json").read_text()),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "raw"
    simulate(out, users=6000, days=6, start=START, seed=11, corrupt_rate=0.001, progress=False)
    return out, _read_world(out)


def _digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(a, users=400, days=3, seed=5, progress=False)
    simulate(b, users=400, days=3, seed=5, progress=False)
    simulate(c, users=400, days=3, seed=6, progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    assert len(da) > 3 * 24  # 72 hour files + users + labels + truth
    assert da["events/dt=2026-10-02/hour=12.jsonl"] != dc["events/dt=2026-10-02/hour=12.jsonl"]
    # a rerun into the same directory replaces the old world (no stale day partitions)
    simulate(a, users=400, days=2, seed=5, progress=False)
    assert sorted(p.name for p in (a / "events").iterdir()) == ["dt=2026-10-01", "dt=2026-10-02"]


def test_layout_and_every_line_follows_the_contract(world):
    out, w = world
    days = [START + timedelta(days=i) for i in range(6)]
    assert [p.name for p in sorted((out / "events").iterdir())] == [f"dt={d}" for d in days]
    assert len(w["files"]) == 6 * 24
    # the only lines breaking the contract are the deliberate garbage lines, all of them counted
    assert w["bad"] == w["corruptions"]["total"] > 0
    assert sum(w["corruptions"]["by_kind"].values()) == w["bad"]
    assert len([k for k, v in w["corruptions"]["by_kind"].items() if v]) >= 5  # varied kinds
    actions = Counter(ev["action"] for _, _, _, ev in w["good"])
    assert set(actions) == CONTRACT_ACTIONS
    assert actions["view"] > actions["like"] > actions["report"] > 0
    # replies carry the post replied to and its author; posts carry text, mentions included
    texts = [ev["text"] for _, _, _, ev in w["good"] if ev["action"] == "post"]
    assert any(re.search(r"@\w+", t) for t in texts)
    users_file = [json.loads(x) for x in (out / "users.jsonl").read_text().splitlines()]
    assert set(users_file[0]) >= {"user_id", "created_at", "home_country", "handle"}
    assert len({u["user_id"] for u in users_file}) == len(users_file) == 6000
    known = {u["user_id"] for u in users_file}
    assert all(ev["user_id"] in known for _, _, _, ev in w["good"][:50_000])


def test_hour_files_are_time_ordered_except_late_deliveries_and_duplicates(world):
    _, w = world
    lines = len(w["good"])
    by_id = defaultdict(list)
    late = late_next_day = out_of_order = 0
    prev = {}
    for hs, n, raw, ev in w["good"]:
        by_id[ev["event_id"]].append(raw)
        t = _parse_ts(ev["event_ts"])
        assert t < hs + timedelta(hours=1), "no event is delivered before its hour"
        if t < hs:
            late += 1
            late_next_day += t.date() < hs.date()
        elif hs in prev and t < prev[hs]:
            out_of_order += 1
        if t >= hs:
            prev[hs] = t
    dups = sum(len(v) - 1 for v in by_id.values())
    # the same event delivered twice is byte-identical
    assert all(len(set(v)) == 1 for v in by_id.values())
    # issue: ~0.5% of events late (some into the next day's files), ~0.2% duplicated
    assert 0.002 * lines < late < 0.012 * lines
    assert late_next_day > 0
    assert 0.0008 * lines < dups < 0.005 * lines
    # on-time lines are in time order (only re-deliveries of the same hour may interleave)
    assert out_of_order <= dups


def test_harmful_posts_are_rare_multi_label_and_sometimes_obfuscated(world):
    _, w = world
    posts = w["posts"]
    harmful = [p for p in posts if p["is_harmful"]]
    assert 0 < len(harmful) < 0.01 * len(posts)
    assert all(
        p["harm_types"] and set(p["harm_types"]) <= {"harassment", "hate", "spam", "violent_threat"}
        for p in harmful
    )
    assert all(p["harm_types"] == [] for p in posts if not p["is_harmful"])
    assert {t for p in harmful for t in p["harm_types"]} == {
        "harassment",
        "hate",
        "spam",
        "violent_threat",
    }
    assert any(len(p["harm_types"]) > 1 for p in harmful)
    text = {ev["post_id"]: ev["text"] for _, _, _, ev in w["good"] if ev["action"] == "post"}
    # harassment often via @mention
    harass = [p for p in harmful if "harassment" in p["harm_types"]]
    assert sum("@" in text[p["post_id"]] for p in harass) > 0.7 * len(harass)
    # obfuscated spellings: letters mixed with digits or symbols ("1d10t", "k1ll", "$kravs"), spaced
    # or dotted letters ("i d i o t", "m.o.r.o.n")
    obf = [text[p["post_id"]] for p in harmful if p["obfuscated"]]

    def looks_obfuscated(t: str) -> bool:
        tokens = [tok.strip(",.!?:;'") for tok in t.split()]
        mixed = any(
            re.search(r"[a-z]", tok)
            and re.search(r"[0-9@$!*\-]", tok)
            and not tok.startswith(("@", "http"))
            for tok in tokens
        )
        return mixed or bool(re.search(r"\b\w \w \w \w\b|[a-z]\.[a-z]\.[a-z]|🤡|ø|tt\b", t))

    assert len(obf) >= 5
    assert sum(looks_obfuscated(t) for t in obf) >= 0.8 * len(obf)
    assert any(
        w in t for t in obf for w in ("1d10t", "id10t", "idi0t", "k1ll", "ki11", "k!ll", "kil1")
    )
    # benign posts that look toxic, the issue's own examples among them
    benign = [text[p["post_id"]] for p in posts if not p["is_harmful"]]
    assert any("this set is sick" in t for t in benign)
    assert any("killing it" in t for t in benign)
    assert (
        sum(
            bool(re.search(r"\b(idiot|kill|trash|sick|disgusting|loser|clown)\b", t))
            for t in benign
        )
        > 50
    )


def test_labels_are_a_queue_about_half_harmful_with_inverse_probability_weights(world):
    _, w = world
    labels, posts = w["labels"], {p["post_id"]: p for p in w["posts"]}
    assert len(labels) >= 60
    share = sum(r["is_harmful"] for r in labels) / len(labels)
    assert 0.35 <= share <= 0.65
    end = datetime(2026, 10, 7, tzinfo=UTC)
    for r in labels:
        assert set(r) == {
            "post_id",
            "is_harmful",
            "harm_types",
            "labeled_at",
            "queue",
            "sampling_weight",
        }
        assert r["queue"] in ("reported", "random")
        assert r["sampling_weight"] >= 1
        assert bool(r["harm_types"]) == r["is_harmful"]
        created = _parse_ts(posts[r["post_id"]]["created_at"])
        labeled = _parse_ts(r["labeled_at"])
        assert created + timedelta(hours=2) <= labeled <= min(created + timedelta(hours=48), end)
    # one inclusion probability for the reported queue; the audit ("random") queue is stratified
    # (uniform, high-reach, repeat author) with a few known probabilities, all rarer than reported
    weights = {
        q: {r["sampling_weight"] for r in labels if r["queue"] == q} for q in ("reported", "random")
    }
    assert len(weights["reported"]) == 1
    assert 1 <= len(weights["random"]) <= 2
    assert weights["random"] <= {round(1 / p, 6) for p in (0.004, 0.025)}
    assert max(weights["random"]) > 20 * weights["reported"].pop()
    # the reported queue holds only posts someone reported within 24 h of posting
    first_report = {}
    for _, _, _, ev in w["good"]:
        if ev["action"] == "report":
            t = _parse_ts(ev["event_ts"])
            first_report[ev["post_id"]] = min(t, first_report.get(ev["post_id"], t))
    for r in labels:
        if r["queue"] == "reported":
            assert first_report[r["post_id"]] < _parse_ts(
                posts[r["post_id"]]["created_at"]
            ) + timedelta(hours=24)
    # moderators are good but not perfect
    agree = sum(r["is_harmful"] == posts[r["post_id"]]["is_harmful"] for r in labels) / len(labels)
    assert 0.9 <= agree < 1.0 or len(labels) < 100


def test_activity_is_heavy_tailed(world):
    _, w = world
    minutes = defaultdict(set)
    for _, _, _, ev in w["good"]:
        minutes[ev["user_id"]].add(ev["event_ts"][:16])
    uam = np.sort(np.array([len(m) for m in minutes.values()]))[::-1]
    top1 = uam[: max(1, len(uam) // 100)].sum() / uam.sum()
    assert top1 > 0.08  # the top 1% of users hold far more than 1% of active minutes
    assert np.median(uam) <= 30  # most users: a few active minutes over six days
    assert uam[0] > 20 * np.median(uam)
    # repeated actions within one minute
    per_minute = Counter((ev["user_id"], ev["event_ts"][:16]) for _, _, _, ev in w["good"])
    assert sum(c > 1 for c in per_minute.values()) > 0.1 * len(per_minute)


def test_views_decay_with_post_age_and_a_few_posts_go_viral(world):
    _, w = world
    created = {p["post_id"]: _parse_ts(p["created_at"]) for p in w["posts"]}
    ages, per_post = [], Counter()
    seen = set()
    for _, _, _, ev in w["good"]:
        if ev["action"] == "view" and ev["event_id"] not in seen:
            seen.add(ev["event_id"])
            ages.append((_parse_ts(ev["event_ts"]) - created[ev["post_id"]]).total_seconds() / 3600)
            per_post[ev["post_id"]] += 1
    ages = np.array(ages)
    assert (ages >= 0).all()
    h0_3, h3_24, h24_72 = (
        (ages < 3).sum(),
        ((ages >= 3) & (ages < 24)).sum(),
        ((ages >= 24) & (ages < 72)).sum(),
    )
    assert h0_3 / 3 > h3_24 / 21 > h24_72 / 48 > 0  # views per hour fall with age
    assert (ages < 24).mean() > 0.8  # most views come in the first day
    counts = np.sort(np.array(list(per_post.values())))[::-1]
    assert counts[: max(1, len(counts) // 100)].sum() > 0.15 * counts.sum()


def test_behavior_responds_to_harm_noisily(world):
    _, w = world
    harmful = {p["post_id"] for p in w["posts"] if p["is_harmful"]}
    views, reports, early_views, early_reports = Counter(), Counter(), Counter(), Counter()
    created = {p["post_id"]: _parse_ts(p["created_at"]) for p in w["posts"]}
    seen = set()
    for _, _, _, ev in w["good"]:
        if ev["action"] in ("view", "report") and ev["event_id"] not in seen:
            seen.add(ev["event_id"])
            key = "h" if ev["post_id"] in harmful else "b"
            early = _parse_ts(ev["event_ts"]) - created[ev["post_id"]] < timedelta(hours=1)
            (views if ev["action"] == "view" else reports)[key] += 1
            if early:
                (early_views if ev["action"] == "view" else early_reports)[key] += 1
    rate_h, rate_b = reports["h"] / views["h"], reports["b"] / views["b"]
    assert rate_h > 10 * rate_b  # reports respond to harm ...
    assert reports["b"] > 0  # ... but benign posts are reported too (adversarial, noisy)
    late_rate_h = (reports["h"] - early_reports["h"]) / (views["h"] - early_views["h"])
    assert early_reports["h"] / early_views["h"] < late_rate_h  # weak signal early in a post's life
    negative = sum(
        ev["action"] == "reply" and ev["text"] in ("gross!", "this is disgusting")
        for _, _, _, ev in w["good"]
    )
    assert negative > 0


def test_latent_user_kinds_and_account_takeovers(world):
    _, w = world
    kinds = Counter(u["kind"] for u in w["truth_users"])
    assert set(kinds) == {"ordinary", "abusive", "spam_bot", "compromised"}
    assert kinds["ordinary"] > 0.9 * sum(kinds.values())
    home = {}
    for line in (world[0] / "users.jsonl").read_text().splitlines():
        u = json.loads(line)
        home[u["user_id"]] = u["home_country"]
    logins = defaultdict(list)
    for _, _, _, ev in w["good"]:
        if ev["action"] == "login":
            logins[ev["user_id"]].append((_parse_ts(ev["event_ts"]), ev["country"]))
    compromised = [
        u
        for u in w["truth_users"]
        if u["kind"] == "compromised"
        and _parse_ts(u["compromised_at"]) < datetime(2026, 10, 6, tzinfo=UTC)
    ]
    assert compromised
    moved = 0
    for u in compromised:
        at = _parse_ts(u["compromised_at"])
        after = {c for t, c in logins[u["user_id"]] if t >= at}
        moved += bool(after - {home[u["user_id"]]})  # a login from a new country after the takeover
    assert moved >= 0.5 * len(compromised)
    ordinary = [u["user_id"] for u in w["truth_users"] if u["kind"] == "ordinary"]
    travelled = sum(bool({c for _, c in logins[x]} - {home[x]}) for x in ordinary)
    assert travelled < 0.1 * len(ordinary)


def test_drift_day_brings_new_vocabulary_and_a_spam_campaign(tmp_path):
    out = tmp_path / "raw"
    r = simulate(out, users=3000, days=6, seed=3, drift_day=4, progress=False)
    drift = json.loads((out / "_truth" / "drift.json").read_text())
    assert drift["drift_day"] == 4 and drift["drift_date"] == "2026-10-04"
    tokens = [t.lower() for t in drift["new_tokens"]]
    assert tokens
    drift_start = datetime(2026, 10, 4, tzinfo=UTC)
    before, after = Counter(), Counter()
    for path in sorted((out / "events").glob("dt=*/hour=*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                ev = json.loads(raw)
                t = _parse_ts(ev["event_ts"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue
            if ev.get("action") != "post" or not isinstance(ev.get("text"), str):
                continue
            text = ev["text"].lower()
            for tok in tokens:
                if tok in text:
                    (after if t >= drift_start else before)[tok] += 1
    assert sum(before.values()) == 0  # never seen before the drift day
    assert sum(after.values()) > 10
    posts = [json.loads(x) for x in (out / "_truth" / "posts.jsonl").read_text().splitlines()]
    campaign = [p for p in posts if p["campaign"]]
    assert campaign and all(_parse_ts(p["created_at"]) >= drift_start for p in campaign)
    bots = set(drift["campaign_bot_user_ids"])
    assert bots and {p["author_id"] for p in campaign} <= bots
    users = {
        json.loads(x)["user_id"]: json.loads(x)
        for x in (out / "users.jsonl").read_text().splitlines()
    }
    assert all(users[b]["created_at"].startswith("2026-10-04") for b in bots)
    assert r["users"] == 3000 + len(bots)


def test_cli_writes_a_world_and_rejects_bad_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    assert cli_main(["simulate", "--users", "200", "--days", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "events" in printed and "labels" in printed
    assert (tmp_path / "home" / "raw" / "events" / "dt=2026-10-01" / "hour=00.jsonl").exists()
    assert (
        cli_main(["simulate", "--out", str(tmp_path / "x"), "--days", "2", "--drift-day", "5"]) == 2
    )
    assert "drift-day" in capsys.readouterr().err
