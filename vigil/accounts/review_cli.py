"""``vigil accounts evasion|clusters|queue|show|verdict``: ban evasion, coordination clusters and
the account review queue (issue 21 part B; docs/accounts.md).

Each reads the lake (or ``--raw DIR``, a raw folder read directly) and writes under
``$VIGIL_HOME/accounts/``: ``evasion_matches.parquet``, ``clusters.parquet``,
``review_queue.parquet``; ``verdict`` appends to ``verdicts.jsonl``, which ``queue`` reads back
(reviewed accounts leave the queue) and training reads as labels (``queue.verdict_labels``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from vigil.errors import UserError

log = logging.getLogger(__name__)

ACTIONS = ("evasion", "clusters", "queue", "show", "verdict")
MATCHES_FILE = "evasion_matches.parquet"
CLUSTERS_FILE = "clusters.parquet"
QUEUE_FILE = "review_queue.parquet"


def add_parsers(sub) -> None:
    """Add this module's actions to ``vigil accounts``'s subparsers."""

    def raw_option(p):
        p.add_argument("--raw", type=Path, help="read this raw folder instead of the lake")

    p = sub.add_parser("evasion", help="rank suspended accounts each new account may belong to")
    raw_option(p)
    p = sub.add_parser("clusters", help="accounts posting the same items at the same moments")
    raw_option(p)
    p = sub.add_parser("queue", help="accounts by expected harm = P(violation) x reach")
    raw_option(p)
    p.add_argument("--size", type=int, default=100, help="accounts to keep (default 100)")
    p.add_argument("--cut", help="ISO time the queue is built at (default: the last event)")
    p.add_argument("--top", type=int, default=20, help="rows to print (default 20)")
    p = sub.add_parser("show", help="the reviewer's view of one account, with its evidence")
    p.add_argument("user_id", type=int)
    raw_option(p)
    p = sub.add_parser("verdict", help="record a reviewer's verdict on an account (a label)")
    p.add_argument("user_id", type=int)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--violating", action="store_true", help="the account violates policy")
    group.add_argument("--ok", action="store_true", help="the account is legitimate")
    p.add_argument("--reason", default="", help="why (bot, ban evasion, campaign, ...)")
    p.add_argument("--reviewer", default="reviewer")


def _inputs(raw: Path | None):
    from vigil.accounts import inputs

    return inputs.from_raw(raw) if raw else inputs.from_lake()


def _out_dir() -> Path:
    from vigil.accounts.queue import accounts_dir

    d = accounts_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d


def _read(name: str) -> pd.DataFrame | None:
    path = _out_dir() / name
    return pd.read_parquet(path) if path.exists() else None


def run_evasion(inp) -> pd.DataFrame:
    from vigil.accounts import evasion

    m = evasion.match(inp.events, inp.users, inp.enforcement, inp.devices)
    m.to_parquet(_out_dir() / MATCHES_FILE, index=False)
    best = evasion.best_matches(m)
    print(
        f"evasion: {best['user_id'].nunique()} new accounts ranked against suspended accounts; "
        f"{int(best['is_match'].sum())} top scores at or above the match threshold "
        f"-> {_out_dir() / MATCHES_FILE}"
    )
    return m


def run_clusters(inp) -> pd.DataFrame:
    from vigil.accounts import clusters

    c = clusters.find_clusters(inp.events)
    c.to_parquet(_out_dir() / CLUSTERS_FILE, index=False)
    print(
        f"clusters: {c['cluster_id'].nunique() if len(c) else 0} clusters, {len(c)} accounts "
        f"-> {_out_dir() / CLUSTERS_FILE}"
    )
    for cid, g in c.groupby("cluster_id"):
        first = g.iloc[0]
        print(
            f"  cluster {cid}: {first['size']} accounts, {first['shared_items']} shared items, "
            f"{first['first_post_at']} .. {first['last_post_at']}: {first['top_items'][:120]}"
        )
    return c


def bot_scores(cut: pd.Timestamp | None = None) -> pd.DataFrame | None:
    """Part A's latest calibrated bot score per account (features/account_bot_scores.parquet)."""
    from vigil.config import paths

    path = paths().features / "account_bot_scores.parquet"
    if not path.exists():
        log.info("queue: no bot scores at %s (run `vigil accounts score`): p_bot = 0", path)
        return None
    s = pd.read_parquet(path)
    s["event_timestamp"] = pd.to_datetime(s["event_timestamp"], utc=True)
    if cut is not None:
        s = s[s["event_timestamp"] <= cut]
    return s.sort_values("event_timestamp").drop_duplicates("user_id", keep="last")


def rule_suspended(at: pd.Timestamp) -> set[int]:
    """Accounts a live rule holds suspended at ``at`` (the ``user_labels`` feature table, point
    in time; docs/features.md): acted on already, so out of the queue like enforcement's."""
    from vigil.config import paths
    from vigil.rules import label_features

    state = label_features.state_at(paths().features / f"{label_features.TABLE}.parquet", at)
    return set(state.loc[state["is_suspended"] == 1, "user_id"].astype("int64"))


def run_queue(inp, size: int, cut: str | None) -> pd.DataFrame:
    from vigil.accounts import queue

    at = pd.Timestamp(cut) if cut else inp.end + pd.Timedelta(microseconds=1)
    at = at.tz_localize("UTC") if at.tzinfo is None else at
    known = inp.until(at)
    matches = run_evasion(known)
    found = run_clusters(known)
    verdicts, _ = queue.read_verdicts()
    suspended = set(known.enforcement["user_id"]) | rule_suspended(at)
    q = queue.build_queue(
        known.events, at, bot_scores(at), matches, found, verdicts, suspended=suspended
    ).head(size)
    q.to_parquet(_out_dir() / QUEUE_FILE, index=False)
    print(f"queue at {at.isoformat()}: {len(q)} accounts -> {_out_dir() / QUEUE_FILE}")
    return q


def daily_review(size: int = 100) -> dict:
    """The DAG's step (vigil_accounts ``review``): evasion, clusters and the queue from the lake,
    at the moment after its last event; the files are rewritten whole (idempotent)."""
    q = run_queue(_inputs(None), size, None)
    matches = _read(MATCHES_FILE)
    found = _read(CLUSTERS_FILE)
    return {
        "queue_accounts": len(q),
        "new_accounts_ranked": int(matches["user_id"].nunique()) if matches is not None else 0,
        "clusters": int(found["cluster_id"].nunique()) if found is not None and len(found) else 0,
        "clustered_accounts": len(found) if found is not None else 0,
        "top_expected_harm": float(q["expected_harm"].iloc[0]) if len(q) else 0.0,
    }


def _print_queue(q: pd.DataFrame, top: int) -> None:
    cols = ["position", "user_id", "expected_harm", "p_violation", "p_bot", "p_evader"]
    cols += ["p_cluster", "reach", "reports", "evasion_candidate", "cluster_id"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(q[cols].head(top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def show(user_id: int, raw: Path | None) -> None:
    from vigil.accounts import evasion, queue

    inp = _inputs(raw)
    queue.check_user(user_id, inp.users["user_id"])
    user = inp.users[inp.users["user_id"] == user_id].iloc[0]
    print(f"account {user_id}: created {user['created_at']}, handle {user.get('handle')}")
    sus = inp.enforcement[inp.enforcement["user_id"] == user_id]
    for _, row in sus.iterrows():
        print(f"  suspended {row['enforced_at']} ({row['reason']})")
    q = _read(QUEUE_FILE)
    if q is not None and (q["user_id"] == user_id).any():
        r = q[q["user_id"] == user_id].iloc[0]
        print(
            f"queue position {int(r['position'])}: expected harm {r['expected_harm']:.1f} = "
            f"P(violation) {r['p_violation']:.3f} x reach {int(r['reach'])} views "
            f"(p_bot {r['p_bot']:.3f}, p_evader {r['p_evader']:.3f}, "
            f"p_cluster {r['p_cluster']:.3f}; reports {int(r['reports'])})"
        )
    else:
        print("not in the review queue (run `vigil accounts queue`)")
    m = _read(MATCHES_FILE)
    if m is not None and (m["user_id"] == user_id).any():
        print("ban evasion: suspended accounts it may belong to")
        rows = m[m["user_id"] == user_id].sort_values("rank")
        for _, r in rows.iterrows():
            ev = ", ".join(f"{k} {r[k]:.2f}" for k in evasion.EVIDENCE)
            print(f"  #{r['rank']} account {r['candidate_id']}: score {r['score']:.2f} ({ev})")
    c = _read(CLUSTERS_FILE)
    if c is not None and (c["user_id"] == user_id).any():
        r = c[c["user_id"] == user_id].iloc[0]
        mates = c.loc[(c["cluster_id"] == r["cluster_id"]) & (c["user_id"] != user_id), "user_id"]
        print(
            f"coordination cluster {r['cluster_id']}: {r['size']} accounts "
            f"({', '.join(map(str, mates.head(12)))}), {r['shared_items']} shared items, "
            f"{r['first_post_at']} .. {r['last_post_at']}"
        )
        print(f"  items: {r['top_items']}")
    ev = inp.events[inp.events["user_id"] == user_id]
    print(f"activity: {len(ev)} events; {ev['action'].value_counts().to_dict()}")
    for _, r in ev[ev["text"].notna()].tail(5).iterrows():
        print(f"  {r['event_ts']} {r['action']}: {str(r['text'])[:100]}")
    labels = queue.verdict_labels()
    if (labels["user_id"] == user_id).any():
        v = labels[labels["user_id"] == user_id].iloc[0]
        print(f"latest verdict: violating={bool(v['is_violating'])} at {v['reviewed_at']}")
    _print_labels(user_id)


def _print_labels(user_id: int) -> None:
    """The account's labels in force now (rules and verdicts; features/user_labels.parquet)."""
    from vigil.config import paths
    from vigil.rules import label_features

    path = paths().features / f"{label_features.TABLE}.parquet"
    state = label_features.state_at(path, pd.Timestamp.now(tz="UTC"))
    row = state[state["user_id"] == user_id]
    if row.empty:
        return
    r = row.iloc[0]
    print(
        f"labels since {r['event_timestamp']}: {int(r['active_rule_labels'])} rule label(s), "
        f"throttled {int(r['is_throttled'])}, suspended {int(r['is_suspended'])}, "
        f"coordinated {int(r['is_coordinated'])}, last verdict {r['last_verdict']}"
    )


def run(args: argparse.Namespace) -> int:
    from vigil.accounts import queue

    if args.action == "evasion":
        run_evasion(_inputs(args.raw))
    elif args.action == "clusters":
        run_clusters(_inputs(args.raw))
    elif args.action == "queue":
        if args.size <= 0:
            raise UserError(f"--size {args.size}: give a positive number of accounts.")
        _print_queue(run_queue(_inputs(args.raw), args.size, args.cut), args.top)
    elif args.action == "show":
        show(args.user_id, args.raw)
    elif args.action == "verdict":
        row = queue.record_verdict(args.user_id, args.violating, args.reason, args.reviewer)
        print(f"verdict recorded in {queue.verdicts_path()}: {row}")
    else:  # pragma: no cover - argparse refuses other actions
        raise UserError(f"unknown action {args.action!r}: use one of {', '.join(ACTIONS)}.")
    return 0
