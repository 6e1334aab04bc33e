"""Writing the discovery world (:mod:`sim.discovery`): raw hour files, users.jsonl, labels.jsonl,
impressions.jsonl and the truth under ``_truth/discovery_*``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.discovery_params import HOUR, REGIONS

ACTIONS = ("post", "follow", "view", "like", "reply", "share", "dislike", "mute", "report")
REPLY_TEXTS = ("so true", "love this", "haha yes", "agreed", "this!", "same here", "great point")


def _iso(ms: np.ndarray) -> list[str]:
    s = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [x + "Z" for x in s.tolist()]


def _event_rows(rng, posts: dict, follows: np.ndarray, imp: dict, eng: dict, start_ms: int):
    """All event rows as columns: ts, user (1-based), action code, post_id (0 = null), target."""
    cols = []
    src, dst = np.nonzero(follows)
    cols.append((start_ms + rng.integers(0, HOUR, len(src)), src + 1, 1, 0, dst + 1))
    cols.append((posts["ts"], posts["author"] + 1, 0, posts["post_id"], 0))
    author = posts["author"][imp["post"]] + 1
    pid = posts["post_id"][imp["post"]]
    seen = eng["seen"]
    cols.append((imp["ts"][seen], imp["user"][seen] + 1, 2, pid[seen], author[seen]))
    for name in ("like", "reply", "share", "dislike", "mute", "report"):
        m = eng[name]
        ts = imp["ts"][m] + rng.integers(1000, 30_000, int(m.sum()))
        code = ACTIONS.index(name)
        cols.append((ts, imp["user"][m] + 1, code, 0 if name == "mute" else pid[m], author[m]))
    out = {k: [] for k in ("ts", "user", "action", "post", "target")}
    for ts, user, action, post, target in cols:
        n = len(ts)
        for k, v in zip(out, (ts, user, action, post, target), strict=True):
            out[k].append(np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)))
    ev = {k: np.concatenate(v) for k, v in out.items()}
    order = np.argsort(ev["ts"], kind="stable")
    return {k: v[order] for k, v in ev.items()}


def _write_events(raw: Path, rng, ev: dict, post_text: list[str]) -> int:
    iso = _iso(ev["ts"])
    lines: dict[str, list[str]] = {}
    for i, (ts, user, action, post, target) in enumerate(
        zip(iso, *(ev[k].tolist() for k in ("user", "action", "post", "target")), strict=True)
    ):
        name = ACTIONS[action]
        text = "null"
        if name == "post":
            text = post_text[post - 1]
        elif name == "reply":
            text = json.dumps(REPLY_TEXTS[i % len(REPLY_TEXTS)])
        line = (
            f'{{"event_id": "d{i + 1}", "event_ts": "{ts}", "user_id": {user}, '
            f'"action": "{name}", "post_id": {post or "null"}, '
            f'"target_user_id": {target or "null"}, "text": {text}, "country": null}}'
        )
        lines.setdefault(ts[:13], []).append(line)
    for key, rows in lines.items():
        day_dir = raw / "events" / f"dt={key[:10]}"
        day_dir.mkdir(parents=True, exist_ok=True)
        (day_dir / f"hour={key[11:13]}.jsonl").write_text("\n".join(rows) + "\n")
    return len(iso)


def _write_users(raw: Path, u: dict) -> None:
    created = _iso(u["created_ms"])
    with open(raw / "users.jsonl", "w") as f:
        f.writelines(json.dumps({"user_id": uid, "created_at": c, "home_country": REGIONS[r],
                                "handle": f"user{uid}"}) + "\n" for uid, c, r in zip(u["user_id"].tolist(), created, u["region"].tolist(), strict=True))  # fmt: skip


def _write_labels(raw: Path, posts: dict, harm_types: list[str]) -> int:
    removed = np.nonzero(posts["removed_ms"] < np.iinfo(np.int64).max)[0]
    at = _iso(posts["removed_ms"][removed])
    with open(raw / "labels.jsonl", "w") as f:
        f.writelines(json.dumps({"post_id": i + 1, "is_harmful": True, "harm_types": [harm_types[i]],
                                "labeled_at": ts, "queue": "reported",
                                "sampling_weight": 1.0}) + "\n" for i, ts in zip(removed.tolist(), at, strict=True))  # fmt: skip
    return len(removed)


def _write_impressions(raw: Path, posts: dict, imp: dict, eng: dict) -> int:
    iso = _iso(imp["ts"])
    pid = posts["post_id"][imp["post"]].tolist()
    with open(raw / "impressions.jsonl", "w") as f:
        f.writelines(
            f'{{"impression_id": "i{i + 1}", "impression_ts": "{ts}", "user_id": {user}, '
            f'"post_id": {post}, "surface": "{"explore" if surf else "home"}", '
            f'"position": {pos}, "dwell_ms": {dwell}}}\n'
            for i, (ts, user, post, pos, surf, dwell) in enumerate(
                zip(
                    iso,
                    (imp["user"] + 1).tolist(),
                    pid,
                    imp["position"].tolist(),
                    imp["surface"].tolist(),
                    eng["dwell_ms"].tolist(),
                    strict=True,
                )
            )
        )
    return len(iso)


def write_world(raw: Path, rng, u, posts, texts, harm_types, follows, events, imp, eng,
                start_ms: int, days: int) -> dict:  # fmt: skip
    """Replace any previous discovery world in ``raw`` and write this one; return counts."""
    from sim.discovery import write_truth

    raw.mkdir(parents=True, exist_ok=True)
    for old in raw.glob("events/dt=*/hour=*.jsonl"):
        old.unlink()
    post_text = [json.dumps(t, ensure_ascii=False) for t in texts]
    ev = _event_rows(rng, posts, follows, imp, eng, start_ms)
    n_lines = _write_events(raw, rng, ev, post_text)
    _write_users(raw, u)
    removed = _write_labels(raw, posts, harm_types)
    n_imp = _write_impressions(raw, posts, imp, eng)
    write_truth(raw, u, posts, follows, events)
    return {
        "posts": len(posts["ts"]),
        "event_posts": int((posts["event"] > 0).sum()),
        "events": len(events),
        "harmful_posts": int(posts["harmful"].sum()),
        "removed_posts": removed,
        "follows": int((follows > 0).sum()),
        "impressions": n_imp,
        "views": int(eng["seen"].sum()),
        "event_lines": n_lines,
        **{k: int(eng[k].sum()) for k in ("like", "reply", "share", "dislike", "mute", "report")},
    }
