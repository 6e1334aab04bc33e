"""Grading the real-time rules against the accounts world's truth (issue 21, "Rules:" target).

For each seed: simulate an accounts world (:mod:`sim.accounts`), run ``vigil stream --rules`` over
its raw files (the stream processor itself, files source, no push), read the effects log, and
compare with ``_truth/accounts_*``:

- a campaign member's *first coordinated post* is their first post or reply carrying the
  campaign's link (from the raw events and the truth's campaign links);
- a member is *actioned in time* when a live effect of a campaign rule on the user
  (``--campaign-rules``, default coordinated_link and campaign_link_reposted) has an event time
  at most 10 minutes after that post;
- recall = members actioned in time / members with a coordinated post; precision = campaign
  members / all users a campaign rule acted on (live).

Target: precision >= 0.95 (with recall reported). ``python -m sim.rules_harness --seeds 1 2 3``.

Per rule acting on users (live or shadow), ``per_rule``: the users it acted on, the share of them
that are violating accounts in the truth (bots, evaders, abusive humans, campaign members) and the
share of the world's bots it reached (e.g. ``shared_device``, the fingerprint rule).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sim.accounts import simulate_accounts
from sim.accounts_params import AccountsParams

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RULES = REPO / "vigil" / "rules" / "default_rules.yaml"
CAMPAIGN_RULES = ("coordinated_link", "campaign_link_reposted")
WITHIN_MS = 10 * 60_000


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def first_coordinated_posts(raw: Path, campaigns: list[dict]) -> dict[int, int]:
    """member -> event time (ms) of their first post/reply with their campaign's link."""
    link_of = {m: c["link"] for c in campaigns for m in c["members"]}
    first: dict[int, int] = {}
    for f in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                ev = json.loads(line)
                uid, action, text = ev["user_id"], ev["action"], ev.get("text") or ""
            except (ValueError, KeyError, TypeError):
                continue  # the simulator's corrupt lines
            link = link_of.get(uid) if isinstance(uid, int) else None
            if link and action in ("post", "reply") and link in text:
                ts = _ms(ev["event_ts"])
                if ts < first.get(uid, 1 << 62):
                    first[uid] = ts
    return first


def grade(raw: Path, effects_log: Path, campaign_rules=CAMPAIGN_RULES) -> dict:
    truth = raw / "_truth"
    campaigns = [
        json.loads(x) for x in (truth / "accounts_campaigns.jsonl").read_text().splitlines()
    ]
    members = {m for c in campaigns for m in c["members"]}
    first = first_coordinated_posts(raw, campaigns)
    acted: dict[int, int] = {}  # user -> first live campaign-rule effect time
    by_rule: dict[str, int] = {}
    for line in effects_log.read_text().splitlines() if effects_log.exists() else []:
        e = json.loads(line)
        by_rule[e["rule"]] = by_rule.get(e["rule"], 0) + 1
        if e["rule"] in campaign_rules and e["mode"] == "live" and e["entity"] == "user":
            uid, ts = int(e["entity_id"]), _ms(e["event_ts"])
            acted[uid] = min(ts, acted.get(uid, ts))
    per_rule = users_per_rule(raw, effects_log)
    in_time = [m for m, t in first.items() if m in acted and acted[m] - t <= WITHIN_MS]
    delays = sorted((acted[m] - first[m]) / 60_000 for m in first if m in acted)
    true_pos = len(set(acted) & members)
    return {
        "campaigns": len(campaigns),
        "members_with_coordinated_post": len(first),
        "actioned_within_10min": len(in_time),
        "recall_10min": round(len(in_time) / len(first), 4) if first else None,
        "precision": round(true_pos / len(acted), 4) if acted else None,
        "users_actioned": len(acted),
        "false_positives": sorted(set(acted) - members),
        "delay_min_median": round(statistics.median(delays), 2) if delays else None,
        "effects_by_rule": by_rule,
        "per_rule": per_rule,
    }


def users_per_rule(raw: Path, effects_log: Path) -> dict[str, dict]:
    """Per rule with user effects: users acted on, share violating in the truth, bots reached."""
    truth = {}
    for line in (raw / "_truth" / "accounts_users.jsonl").read_text().splitlines():
        t = json.loads(line)
        truth[t["user_id"]] = t
    violating = {
        u
        for u, t in truth.items()
        if t.get("is_bot")
        or t.get("evader_of") is not None
        or t.get("campaign") is not None
        or t.get("kind") == "abusive_human"
    }
    bots = {u for u, t in truth.items() if t.get("is_bot")}
    users: dict[str, set] = {}
    for line in effects_log.read_text().splitlines() if effects_log.exists() else []:
        e = json.loads(line)
        if e["entity"] == "user":
            users.setdefault(e["rule"], set()).add(int(e["entity_id"]))
    return {
        rule: {
            "users": len(us),
            "precision_violating": round(len(us & violating) / len(us), 4),
            "bots_reached": round(len(us & bots) / len(bots), 4) if bots else None,
        }
        for rule, us in sorted(users.items())
    }


def run_seed(seed: int, users: int, days: int, rules: Path, work: Path) -> dict:
    from vigil.stream.processor import RunOptions, process

    raw = work / f"raw-{seed}"
    t0 = time.time()
    simulate_accounts(raw, replace(AccountsParams(), seed=seed, users=users, days=days))
    state = work / f"state-{seed}.sqlite"
    effects = work / f"effects-{seed}.jsonl"
    for p in (state, effects):
        p.unlink(missing_ok=True)
    result = process(
        RunOptions(
            source="files",
            raw_dir=raw,
            state_path=state,
            once=True,
            push=False,
            rules_file=rules,
            effects_log=effects,
        )
    )
    out = {"seed": seed, "events_applied": result["counters"]["applied"]}
    out.update(grade(raw, effects))
    out["seconds"] = round(time.time() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m sim.rules_harness", description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="vigil-rules-harness-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = [run_seed(s, args.users, args.days, args.rules, work) for s in args.seeds]
    summary = {}
    for key in ("precision", "recall_10min", "delay_min_median"):
        vals = [r[key] for r in runs if r[key] is not None]
        if vals:
            summary[key] = {
                "mean": round(statistics.mean(vals), 4),
                "min": min(vals),
                "max": max(vals),
            }
    report = {
        "rules": str(args.rules),
        "users": args.users,
        "days": args.days,
        "runs": runs,
        "summary": summary,
        "target": "precision >= 0.95, members actioned within 10 min of their first coordinated post",
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
