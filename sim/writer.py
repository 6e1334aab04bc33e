"""Writing the raw logs: hour files with late deliveries, duplicates and corrupt lines,
users.jsonl and labels.jsonl."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np

from sim.events import _COLS, _Batch, _iso, _take
from sim.params import (
    CORRUPTION_KINDS,
    COUNTRY_CODES,
    DAY,
    DUPLICATE_RATE,
    HOUR,
    KINDS,
    LATE_RATE,
    MINUTE,
    P,
)
from vigil.contracts import ACTIONS


class _WriterMixin:
    """Raw-file output for :class:`sim.world._Sim`."""

    def _emit_day(self, rng, b: _Batch, d: int, day_start: int) -> int:
        """Write day ``d``'s 24 hour files from batch ``b``; return the number of events written.

        Events stamped after midnight (a reaction to a late-evening view) wait in ``carry`` for
        the next day; lines delivered late or twice wait in ``pending`` for a later hour's file.
        """
        ev, texts = self._today_events(b, day_start + DAY)
        n = len(ev["ts"])
        first_eid = self.next_eid if n else 0
        self.next_eid += n
        for code, cnt in enumerate(np.bincount(ev["action"], minlength=len(ACTIONS)).tolist()):
            self.counts[ACTIONS[code]] += cnt

        text_json = [json.dumps(t, ensure_ascii=False) for t in texts] + ["null"]
        day = (self.start + timedelta(days=d)).isoformat()
        day_dir = self.out / "events" / f"dt={day}"
        day_dir.mkdir(parents=True, exist_ok=True)
        wrng = np.random.default_rng([self.seed, 2, d])
        bounds = np.searchsorted(ev["ts"], day_start + HOUR * np.arange(25))

        def fmt(rows: np.ndarray) -> list[str]:
            return self._format(first_eid, rows, ev, day_start, text_json, day + "T")

        for hr in range(24):
            lo, hi = int(bounds[hr]), int(bounds[hr + 1])
            path = day_dir / f"hour={hr:02d}.jsonl"
            self._write_hour(wrng, fmt, ev["ts"], lo, hi, d * 24 + hr, day_start + hr * HOUR, path)
        return n

    def _today_events(self, b: _Batch, day_end: int) -> tuple[dict[str, np.ndarray], list[str]]:
        """Yesterday's carried events plus today's batch, the ones before ``day_end`` in time
        order (and their texts); the rest is carried to tomorrow (or dropped past the end)."""
        cols, texts = b.columns(), b.texts
        if self.carry is not None:
            ccols, ctexts = self.carry
            off = len(ctexts)
            cols = {c: np.concatenate([ccols[c], cols[c]]) for c in _COLS}
            n_c = len(ccols["ts"])
            refs = cols["text"]
            tail = refs[n_c:]
            refs[n_c:] = np.where(tail >= 0, tail + off, -1)
            texts = ctexts + texts
        later = cols["ts"] >= day_end
        self.carry = _take(cols, texts, np.flatnonzero(later & (cols["ts"] < self.end_ms)))
        now = np.flatnonzero(~later)
        now = now[np.argsort(cols["ts"][now], kind="stable")]
        return {c: cols[c][now] for c in _COLS}, texts

    def _write_hour(self, wrng, fmt, ts, lo: int, hi: int, slot: int, hour_start: int, path):
        """Hour ``slot``'s file: its events ``lo:hi`` (less the late ones), the lines due from
        earlier hours, duplicates and garbage lines, merged by delivery time."""
        k = hi - lo
        keep, extra_keys, extra_lines = self._late_and_duplicates(wrng, fmt, ts, lo, k, slot)
        on_rows = lo + np.flatnonzero(keep)
        plines = self.pending.pop(slot, [])
        extra_lines.extend(plines)
        extra_keys.extend((hour_start + wrng.integers(0, HOUR, len(plines))).tolist())
        n_bad = (
            int(wrng.binomial(len(on_rows) + len(extra_lines), self.corrupt_rate))
            if self.corrupt_rate > 0
            else 0
        )
        for _ in range(n_bad):
            base = fmt(np.array([lo + int(wrng.integers(0, k))]))[0] if k else None
            extra_lines.append(self._garbage(wrng, base, hour_start))
            extra_keys.append(hour_start + int(wrng.integers(0, HOUR)))
        self.stats["corrupt_lines"] += n_bad
        # merge by delivery time and write in blocks, so memory stays bounded at any scale
        keys = np.concatenate([ts[on_rows], np.asarray(extra_keys, np.int64)])
        order = np.argsort(keys, kind="stable")
        n_on = len(on_rows)
        self.stats["lines"] += len(order)
        with open(path, "wb") as f:
            for c0 in range(0, len(order), 50_000):
                pos = order[c0 : c0 + 50_000]
                on = pos < n_on
                formatted = iter(fmt(on_rows[pos[on]]))
                block = [
                    next(formatted) if is_on else extra_lines[p - n_on]
                    for p, is_on in zip(pos.tolist(), on.tolist())
                ]
                f.write(("\n".join(block) + "\n").encode("utf-8", "surrogateescape"))

    def _late_and_duplicates(self, wrng, fmt, ts, lo: int, k: int, slot: int):
        """Late deliveries move to a later hour's file (some into the next day's); duplicates go
        into this file or one of the next two. Returns which of the hour's ``k`` events stay, and
        this file's extra lines with their delivery times."""
        last_slot = self.days * 24 - 1
        late = np.flatnonzero(wrng.random(k) < LATE_RATE)
        delay = wrng.geometric(P.late_hours_p, len(late)) + np.where(
            wrng.random(len(late)) < P.p_late_next_day, 24, 0
        )
        dest = np.minimum(slot + delay, last_slot)
        moved = dest > slot
        for line, s in zip(fmt(lo + late[moved]), dest[moved].tolist()):
            self.pending.setdefault(s, []).append(line)
        self.stats["late_deliveries"] += int(moved.sum())
        keep = np.ones(k, bool)
        keep[late[moved]] = False
        dup = np.flatnonzero(wrng.random(k) < DUPLICATE_RATE)
        ddest = np.minimum(slot + wrng.integers(0, 3, len(dup)), last_slot)
        extra_keys, extra_lines = [], []
        for line, i, s in zip(fmt(lo + dup), dup.tolist(), ddest.tolist()):
            if s == slot:
                extra_keys.append(int(ts[lo + i]) + int(wrng.integers(1, HOUR)))
                extra_lines.append(line)
            else:
                self.pending.setdefault(s, []).append(line)
        self.stats["duplicate_lines"] += len(dup)
        return keep, extra_keys, extra_lines

    def _format(self, first_eid, rows, ev, day_start, text_json, prefix) -> list[str]:
        hm, sm, cj = self.hm, self.sm, self.country_json
        acts = ACTIONS
        r = ev["ts"][rows] - day_start
        return [
            f'{{"event_id":"ev{e:010d}","event_ts":"{prefix}{hm[m]}{sm[s]}","user_id":{u},'
            f'"action":"{acts[a]}","post_id":{p if p else "null"},'
            f'"target_user_id":{t if t else "null"},"text":{text_json[x]},"country":{cj[c]}}}'
            for e, m, s, u, a, p, t, x, c in zip(
                (rows + first_eid).tolist(),
                (r // MINUTE).tolist(),
                (r % MINUTE).tolist(),
                ev["user"][rows].tolist(),
                ev["action"][rows].tolist(),
                ev["post"][rows].tolist(),
                ev["target"][rows].tolist(),
                ev["text"][rows].tolist(),
                ev["country"][rows].tolist(),
            )
        ]

    def _garbage(self, wrng, base: str | None, hour_start: int) -> str:
        """One corrupt line of a random kind (fresh event_id so it never collides with a real one)."""
        kind = CORRUPTION_KINDS[int(wrng.integers(0, len(CORRUPTION_KINDS)))]
        self.corruptions[kind] += 1
        if base is not None:
            obj = json.loads(base)
        else:
            obj = {
                "event_id": "",
                "event_ts": _iso(hour_start),
                "user_id": 1,
                "action": "login",
                "post_id": None,
                "target_user_id": None,
                "text": None,
                "country": "US",
            }
        obj["event_id"] = f"bad{self.next_bad:08d}"
        self.next_bad += 1
        if kind == "not_json":
            s = json.dumps(obj)
            return s[: int(wrng.integers(5, max(6, len(s) - 5)))]
        if kind == "missing_field":
            del obj[["event_ts", "user_id", "action", "event_id"][int(wrng.integers(0, 4))]]
        elif kind == "unknown_action":
            obj["action"] = ["poke", "superlike", "LOGIN", "delete_account"][
                int(wrng.integers(0, 4))
            ]
        elif kind == "bad_timestamp":
            obj["event_ts"] = [
                "2026-13-45T25:61:00.000Z",
                "yesterday",
                "1696161600",
                "10/01/2026 13:45",
            ][int(wrng.integers(0, 4))]
        elif kind == "far_future_timestamp":
            obj["event_ts"] = _iso(hour_start + int(wrng.integers(3, 400)) * DAY)
        elif kind == "negative_id":
            field = ["user_id", "post_id", "target_user_id"][int(wrng.integers(0, 3))]
            obj[field] = -int(wrng.integers(1, 10_000))
        elif kind == "mistyped_field":
            obj["user_id"] = f"u{obj.get('user_id')}"
        elif kind == "oversized_text":
            obj.update(
                action="post",
                post_id=obj.get("post_id") or 1,
                target_user_id=None,
                country=None,
                text="buy now " * int(wrng.integers(700, 1200)),
            )
        elif kind == "invalid_utf8":
            s = json.dumps(obj, ensure_ascii=False)
            cut = len(s) // 2
            return s[:cut] + "\udcff\udcfe" + s[cut:]  # written as raw 0xFF 0xFE bytes
        return json.dumps(obj, ensure_ascii=False)

    def write_users(self) -> None:
        w = self.w
        with (
            open(self.out / "users.jsonl", "w") as f,
            open(self.out / "_truth" / "users.jsonl", "w") as g,
        ):
            for i in range(w.n):
                f.write(
                    json.dumps(
                        {
                            "user_id": i + 1,
                            "created_at": _iso(int(w.created[i])),
                            "home_country": COUNTRY_CODES[int(w.country[i])],
                            "handle": w.handle(i),
                        }
                    )
                    + "\n"
                )
                ca = int(w.compromised_at[i])
                g.write(
                    json.dumps(
                        {
                            "user_id": i + 1,
                            "kind": KINDS[int(w.kind[i])],
                            "compromised_at": _iso(ca) if ca >= 0 else None,
                            "attack_ends_at": _iso(int(w.attack_end[i])) if ca >= 0 else None,
                            "attacker_country": COUNTRY_CODES[int(w.attacker_country[i])]
                            if ca >= 0
                            else None,
                            "campaign": bool(w.campaign[i]),
                            "adversarial_reporter": bool(w.adversarial[i]),
                            "targeted_creator": bool(w.targeted[i]),
                        }
                    )
                    + "\n"
                )

    def write_labels(self) -> None:
        self.labels.sort(key=lambda r: (r["_ts"], r["post_id"]))
        with open(self.out / "labels.jsonl", "w") as f:
            for row in self.labels:
                row = {k: v for k, v in row.items() if k != "_ts"}
                f.write(json.dumps(row) + "\n")
