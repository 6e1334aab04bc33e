"""Writing the accounts world (`vigil simulate-accounts`, sim/accounts.py): the raw folder in the
raw contract, the enforcement and devices streams (with a few corrupt lines), labels, and truth.

A mixin of :class:`sim.accounts._World`: it reads the world's ``events``, ``accounts``,
``enforcement``, ``devices``, ``campaigns`` and ``friend_groups``.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from sim.accounts_text import DAY, HOUR


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class WorldOutput:
    # -- labels ---------------------------------------------------------------------------
    def _labels(self) -> list[dict]:
        r, p = self.r, self.p
        out = []
        for ts, uid, act, pid, _target, text, _ in self.events:
            if act != "post" or pid is None:
                continue
            a = self.accounts[uid - 1]
            harmful = a.operator >= 0
            harass = a.kind == "abusive_human" and "@" in (text or "")
            if harass and r.random() < p.p_report_harassment:
                queue, weight = "reported", 1.0
            elif r.random() < p.p_audit:
                queue, weight = "random", round(1 / p.p_audit, 3)
            else:
                continue
            types = ["spam"] if harmful else (["harassment"] if harass else [])
            out.append(
                {
                    "post_id": pid,
                    "is_harmful": bool(types),
                    "harm_types": types,
                    "labeled_at": _iso(ts + r.randrange(HOUR, DAY)),
                    "queue": queue,
                    "sampling_weight": weight,
                }
            )
        return out

    # -- writing --------------------------------------------------------------------------
    def write(self) -> dict:
        out, r = self.out, random.Random(self.p.seed * 7919 + 1)
        (out / "_truth").mkdir(parents=True, exist_ok=True)
        self._write_events()
        with open(out / "users.jsonl", "w") as f:
            f.writelines(
                json.dumps(
                    {
                        "user_id": a.uid,
                        "created_at": _iso(a.created),
                        "home_country": a.country,
                        "handle": a.handle,
                    }
                )
                + "\n"
                for a in self.accounts
            )
        labels = self._labels()
        with open(out / "labels.jsonl", "w") as f:
            f.writelines(json.dumps(x) + "\n" for x in labels)
        enf, dev, corrupt = self._write_streams(r)
        self._write_truth(corrupt)
        return {
            "accounts": len(self.accounts),
            "events": len(self.events),
            "labels": len(labels),
            "suspensions": len(enf),
            "device_rows": len(dev),
            "corrupt_lines": corrupt,
        }

    def _write_events(self) -> None:
        out = self.out
        lines_by_hour: dict[tuple[str, int], list[str]] = {}
        device_of = {(ts, uid): dev for ts, uid, dev, _net in self.devices}  # one per login
        for i, (ts, uid, act, pid, target, text, country) in enumerate(self.events):
            if not self.t0 <= ts < self.t1:
                continue
            row = {
                "event_id": f"ac{i + 1:010d}",
                "event_ts": _iso(ts),
                "user_id": uid,
                "action": act,
                "post_id": pid,
                "target_user_id": target,
                "text": text,
                "country": country,
            }
            if act == "login":  # the login's device fingerprint (raw contract, issue 21)
                row["fingerprint"] = device_of.get((ts, uid))
            line = json.dumps(row, ensure_ascii=False)
            dt = datetime.fromtimestamp(ts / 1000, tz=UTC)
            lines_by_hour.setdefault((dt.date().isoformat(), dt.hour), []).append(line)
        for d in range(self.p.days):
            day = (self.p.start + timedelta(days=d)).isoformat()
            (out / "events" / f"dt={day}").mkdir(parents=True, exist_ok=True)
            for h in range(24):
                lines = lines_by_hour.get((day, h), [])
                (out / "events" / f"dt={day}" / f"hour={h:02d}.jsonl").write_text(
                    "".join(x + "\n" for x in lines)
                )

    def _write_streams(self, r: random.Random) -> tuple[list, list, dict]:
        """enforcement.jsonl and devices.jsonl, with a few corrupt lines (counted)."""
        corrupt = {"enforcement": 0, "devices": 0}
        enf = [
            {
                "enforcement_id": f"en{i + 1:07d}",
                "user_id": uid,
                "action": "suspend",
                "reason": reason,
                "enforced_at": _iso(ts),
            }
            for i, (ts, uid, reason) in enumerate(sorted(self.enforcement))
        ]
        dev = [
            {
                "seen_id": f"se{i + 1:09d}",
                "user_id": uid,
                "seen_at": _iso(ts),
                "device_fp": d,
                "network_fp": n,
            }
            for i, (ts, uid, d, n) in enumerate(
                x for x in sorted(self.devices) if self.t0 <= x[0] < self.t1
            )
        ]
        for name, rows in (("enforcement", enf), ("devices", dev)):
            with open(self.out / f"{name}.jsonl", "w") as f:
                for row in rows:
                    if r.random() < self.p.p_corrupt:
                        f.write(_corrupt(r, row) + "\n")
                        corrupt[name] += 1
                    f.write(json.dumps(row) + "\n")
        return enf, dev, corrupt

    def _write_truth(self, corrupt: dict) -> None:
        t = self.out / "_truth"
        with open(t / "accounts_users.jsonl", "w") as f:
            f.writelines(
                json.dumps(
                    {
                        "user_id": a.uid,
                        "kind": a.kind,
                        "is_bot": a.kind in ("bot", "mimic_bot"),
                        "operator": a.operator if a.operator >= 0 else None,
                        "campaign": a.campaign if a.campaign >= 0 else None,
                        "evader_of": a.evader_of or None,
                        "shares_fp": a.shares_fp,
                        "suspended_at": _iso(a.suspended_at) if a.suspended_at >= 0 else None,
                        "suspend_reason": a.suspend_reason or None,
                        "created_at": _iso(a.created),
                    }
                )
                + "\n"
                for a in self.accounts
            )
        with open(t / "accounts_campaigns.jsonl", "w") as f:
            for c in self.campaigns:
                row = {k: v for k, v in c.items() if k != "n"}
                row["waves"] = [_iso(w) for w in c["waves"]]
                f.write(json.dumps(row) + "\n")
        with open(t / "accounts_friend_groups.jsonl", "w") as f:
            f.writelines(
                json.dumps({"group_id": g, "members": members}) + "\n"
                for g, members in enumerate(self.friend_groups)
            )
        (t / "accounts_world.json").write_text(
            json.dumps(
                {"params": self.p.resolved(), "corrupt_lines": corrupt}, default=str, indent=1
            )
        )


def _corrupt(r: random.Random, row: dict) -> str:
    bad = dict(row)
    kind = r.choice(("missing", "bad_ts", "bad_id", "bad_value", "not_json"))
    if kind == "missing":
        del bad["user_id"]
    elif kind == "bad_ts":
        bad[next(k for k in bad if k.endswith("_at"))] = "yesterday"
    elif kind == "bad_id":
        bad["user_id"] = -5
    elif kind == "bad_value":
        if "reason" in bad:
            bad["action"] = "obliterate"
        else:
            bad["device_fp"] = ""
    else:
        return json.dumps(bad)[:20]
    for k in ("enforcement_id", "seen_id"):
        if k in bad:
            bad[k] = "x" + bad[k]
    return json.dumps(bad)
