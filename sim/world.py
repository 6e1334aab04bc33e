"""`vigil simulate`: a social network's raw logs, deterministic per seed (contract: docs/contracts.md §1).

The world, in one paragraph. Users have a latent kind (ordinary, abusive, spam bot, compromised
mid-period) and heavy-tailed habits: how often they show up, how many sessions, how long. Each day
they open sessions (logins with a country), post (text from :mod:`sim.text`), follow people,
and watch posts. Views are generated post by post: every post has a reach drawn from a power law
(a few go viral) and its views arrive with a Lomax-distributed age (most in the first hours,
decaying over a week); each view is handed to a user whose session covers that minute, so a user's
active minutes follow their sessions. A view may trigger a like, share, dislike, reply, report,
block, mute, follow or unfollow, with probabilities that respond to the post's hidden harmfulness,
but noisily: benign "controversial" posts draw dislikes and reports, a few adversarial users
mass-report targeted creators, abusers cheer each other on, and early in a harmful post's life its
audience is mostly sympathetic (weak signal). Mentioned users get a notification and often report or
block harassers. Moderators label a queue of posts: posts reported in their first 24 h with
probability ``P_REPORTED`` (queue ``reported``); the rest go to a stratified audit sample (queue
``random``): ``P_RANDOM`` of all posts, ``P_REACH`` of posts that passed ``REACH_VIEWS`` views in
their first day, ``P_REPEAT`` of posts whose author already had a post labeled harmful. Each label
carries ``sampling_weight = 1/p`` for the probability that picked it; moderators are ~99% accurate.

The log pipeline is imperfect on purpose: ~0.5% of events arrive in a later hour file (some the
next day), ~0.2% of lines are delivered twice, and ``corrupt_rate`` extra garbage lines of varied
kinds are mixed in (counted in ``_truth/corruptions.json``).

Generation is day by day with numpy; only a week of live posts and one hour of formatted lines are
held in memory, so ``--users 1000000`` streams to disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from sim import graph_world, vocabulary
from sim import text as sim_text
from sim.events import _Batch, _Live, _ms
from sim.labeling import _LabelingMixin
from sim.params import (
    ACT,
    BOT,
    CORRUPTION_KINDS,
    COUNTRY_CODES,
    DAY,
    DIURNAL,
    HOUR,
    KINDS,
    MINUTE,
    N_HOME,
    REMOTE_COUNTRIES,
    VIEW_HORIZON_H,
    WORLDS,
    P,
    WorldOptions,
)
from sim.population import make_world
from sim.posts import _PostsMixin
from sim.views import _ViewsMixin
from sim.writer import _WriterMixin
from vigil.contracts import ACTIONS, HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)


class _Sim(_PostsMixin, _ViewsMixin, _WriterMixin, _LabelingMixin):
    def __init__(
        self,
        out: Path,
        users: int,
        days: int,
        start: date,
        seed: int,
        drift_day: int | None,
        corrupt_rate: float,
        options: WorldOptions | None = None,
    ):
        self.out = out
        self.days = days
        self.seed = seed
        self.drift_day = drift_day
        self.corrupt_rate = corrupt_rate
        self.start_ms = _ms(datetime(start.year, start.month, start.day, tzinfo=UTC))
        self.end_ms = self.start_ms + days * DAY
        self.start = start
        self.w = make_world(users, days, self.start_ms, seed, drift_day, options)
        self.users = users
        self.live = _Live()
        self.next_pid = 1
        self.next_eid = 1
        self.next_bad = 1
        self.carry: tuple[dict[str, np.ndarray], list[str]] | None = None
        self.pending: dict[int, list[str]] = {}
        self.labels: list[dict] = []
        self.flagged_authors: dict[int, int] = {}  # author -> first harmful verdict (ms)
        self.counts = {a: 0 for a in ACTIONS}
        self.stats = {
            "posts": 0,
            "harmful_posts": 0,
            "obfuscated_posts": 0,
            "toxic_looking_benign": 0,
            "lines": 0,
            "late_deliveries": 0,
            "duplicate_lines": 0,
            "corrupt_lines": 0,
        }
        self.corruptions = {k: 0 for k in CORRUPTION_KINDS}
        self.harm_type_counts = {t: 0 for t in HARM_TYPES}
        self.multi_label_posts = 0
        self.campaign_posts = 0
        self.hm = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
        self.sm = [f"{s:02d}.{ms:03d}Z" for s in range(60) for ms in range(1000)]
        self.country_json = [f'"{c}"' for c in COUNTRY_CODES] + ["null"]
        self.truth_posts = None
        self.pile_on_posts: dict[int, list[int]] = {}  # harassment campaign -> its post ids

    # -- sessions -------------------------------------------------------------------------
    def _sessions(self, rng, day_start: int):
        w = self.w
        day_end = day_start + DAY
        alive = w.created < day_end
        act = np.flatnonzero(alive & (rng.random(w.n) < w.p_active))
        bot = w.kind[act] == BOT
        ns = np.where(
            bot,
            P.bot_sessions_min + rng.poisson(P.bot_rate_extra_sessions, len(act)),
            1 + rng.poisson(w.extra_sessions[act]),
        )
        su = np.repeat(act, ns)
        s = len(su)
        sbot = w.kind[su] == BOT
        local = rng.choice(24, size=s, p=DIURNAL) * 60 + rng.integers(0, 60, s)
        start = np.where(sbot, rng.integers(0, 1440, s), (local - w.tz_min[su]) % 1440)
        dur = np.where(
            sbot,
            rng.integers(1, P.bot_session_minutes_max + 1, s),
            np.clip(
                np.ceil(
                    np.exp(w.session_mu[su] + P.session_minutes_noise_sd * rng.standard_normal(s))
                ),
                1,
                P.session_minutes_max,
            ),
        )
        created_min = (w.created[su] - day_start) // MINUTE
        start = np.maximum(start, created_min + 1)
        dur = np.minimum(start + dur, 1440) - start
        kind = np.where(sbot, 1, 0).astype(np.int8)
        country = w.country[su].astype(np.int16)
        # account takeovers: short attacker sessions from a remote country during the attack window
        cmp = np.flatnonzero(
            (w.compromised_at >= 0) & (w.compromised_at < day_end) & (w.attack_end > day_start)
        )
        if len(cmp):
            na = 1 + rng.poisson(P.rate_attacker_extra_sessions, len(cmp))
            au = np.repeat(cmp, na)
            lo = (np.maximum(w.compromised_at[au], day_start) - day_start) // MINUTE
            hi = (np.minimum(w.attack_end[au], day_end) - day_start) // MINUTE
            astart = lo + (rng.random(len(au)) * np.maximum(hi - lo, 1)).astype(np.int64)
            adur = rng.integers(1, P.attacker_session_minutes_max + 1, len(au))
            su = np.concatenate([su, au])
            start = np.concatenate([start, astart])
            dur = np.concatenate([dur, np.minimum(astart + adur, 1440) - astart])
            kind = np.concatenate([kind, np.full(len(au), 2, np.int8)])
            country = np.concatenate([country, w.attacker_country[au]])
        ok = dur > 0
        return su[ok], start[ok].astype(np.int64), dur[ok].astype(np.int64), kind[ok], country[ok]

    def _logins(self, rng, b: _Batch, su, s_ms, skind, scountry) -> None:
        """Logins at session start; humans sometimes travel, bots often log in through a VPN."""
        p_login = np.select(
            [skind == 2, skind == 1], [P.p_login_attacker, P.p_login_bot], P.p_login_human
        )
        li = np.flatnonzero(rng.random(len(su)) < p_login)
        lc = scountry[li].copy()
        travel = (skind[li] == 0) & (rng.random(len(li)) < P.p_travel)
        lc[travel] = rng.integers(0, N_HOME, int(travel.sum()))
        vpn = (skind[li] == 1) & (rng.random(len(li)) < P.p_bot_vpn)
        lc[vpn] = N_HOME + rng.integers(0, len(REMOTE_COUNTRIES), int(vpn.sum()))
        b.add(s_ms[li] + rng.integers(0, 3000, len(li)), su[li] + 1, ACT["login"], country=lc)

    # -- one day --------------------------------------------------------------------------
    def day(self, d: int) -> dict:
        """Day ``d`` (0-based): sessions, logins, posts, views and reactions, follows; the day's
        hour files and the labels whose 24-hour window closed."""
        rng = np.random.default_rng([self.seed, 1, d])
        trng = random.Random(self.seed * 1_000_003 + d * 7919 + 11)
        day_start = self.start_ms + d * DAY
        day_end = day_start + DAY
        drifted = self.drift_day is not None and d + 1 >= self.drift_day
        tg = sim_text.TextGen(trng, drifted=False)
        tg_drift = sim_text.TextGen(trng, drifted=drifted)
        b = _Batch()

        su, sstart, sdur, skind, scountry = self._sessions(rng, day_start)
        s_ms = day_start + sstart * MINUTE
        self._logins(rng, b, su, s_ms, skind, scountry)

        p_author, p_ts, p_sk = self._post_times(rng, su, s_ms, sdur, skind, day_end)
        pile_on = None
        if self.w.campaigns is not None:
            p_author, p_ts, p_sk, pile_on = self._with_campaign_posts(
                p_author, p_ts, p_sk, day_start, day_end
            )
        n_p = len(p_author)
        pids = np.arange(self.next_pid, self.next_pid + n_p, dtype=np.int64)
        self.next_pid += n_p
        post_texts, harm, types, obf, mention_of, campaign = self._post_texts(
            rng, trng, tg, tg_drift, p_author, p_sk, p_ts, drifted, pile_on
        )
        if pile_on is not None:
            for c, pid in zip(pile_on[pile_on >= 0].tolist(), pids[pile_on >= 0].tolist()):
                self.pile_on_posts.setdefault(c, []).append(pid)
        b.add(p_ts, p_author + 1, ACT["post"], post=pids, texts=post_texts)
        self._write_truth_posts(pids, p_author, p_ts, harm, types, obf, campaign)
        self._go_live(rng, pids, p_author, p_ts, harm, types, mention_of)

        self._mention_notifications(rng, trng, b, pids, p_ts, p_author, harm, mention_of, tg)
        self._views_and_reactions(rng, trng, b, tg, day_start, su, sstart, sdur, skind)
        self._follows(rng, b, su, s_ms, sdur, skind)

        events = self._emit_day(rng, b, d, day_start)
        self._finalize_labels(np.random.default_rng([self.seed, 3, d]), day_end)
        cut = int(np.searchsorted(self.live.a["created"], day_end - int(VIEW_HORIZON_H * HOUR)))
        self.live.cut(cut)
        return {"events": events, "posts": n_p, "harmful": int(harm.sum()), "sessions": len(su)}

    def _with_campaign_posts(self, p_author, p_ts, p_sk, day_start: int, day_end: int):
        """Today's posts plus the harassment campaigns' posts of today, in time order, and per
        post its campaign (-1: none)."""
        ca, cts, cid = self._campaign_posts(day_start, day_end)
        author = np.concatenate([p_author, ca])
        ts = np.concatenate([p_ts, cts])
        sk = np.concatenate([p_sk, np.zeros(len(ca), p_sk.dtype)])
        pile_on = np.concatenate([np.full(len(p_author), -1, np.int64), cid])
        order = np.argsort(ts, kind="stable")
        return author[order], ts[order], sk[order], pile_on[order]

    def drift_info(self) -> dict:
        if self.drift_day is None:
            return {"drift_day": None, "drift_date": None, "changes": []}
        campaign_ids = (np.flatnonzero(self.w.campaign) + 1).tolist()
        return {
            "drift_day": self.drift_day,
            "drift_date": (self.start + timedelta(days=self.drift_day - 1)).isoformat(),
            "changes": [
                "abusive users switch to new insults, slurs, threat words and obfuscations",
                "a spam campaign starts: new bot accounts post a new link template (campaign='drift_spam')",
            ],
            "new_tokens": vocabulary.DRIFT_TOKENS,
            "new_insults": vocabulary.DRIFT_INSULTS,
            "new_slurs": vocabulary.DRIFT_SLURS,
            "new_threat_words": vocabulary.DRIFT_THREAT_WORDS,
            "campaign_domains": vocabulary.DRIFT_SPAM_DOMAINS,
            "campaign_bot_user_ids": campaign_ids,
        }


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def simulate(
    out_dir,
    users: int = 20000,
    days: int = 30,
    start: date = date(2026, 10, 1),
    seed: int = 7,
    drift_day: int | None = None,
    corrupt_rate: float = 0.0002,
    progress: bool = True,
    world: WorldOptions | str | None = None,
) -> dict:
    """Write raw logs for ``days`` days of a ``users``-account network into ``out_dir``; return counts.

    A previous simulation in ``out_dir`` is replaced (events/, _truth/, users.jsonl, labels.jsonl),
    so the same arguments always give byte-identical files. ``world``: the graph world's options
    (a :class:`sim.params.WorldOptions` or a name in ``sim.params.WORLDS``; default: all off).
    """
    _check_arguments(users, days, drift_day, corrupt_rate)
    options = graph_world.resolve(world)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a directory.")
    t0 = time.perf_counter()
    _clear_output(out)
    sim = _Sim(out, users, days, start, seed, drift_day, corrupt_rate, options)
    log.info(
        "simulating %d users (+%d campaign bots) for %d days from %s, seed %d",
        users,
        sim.w.n - users,
        days,
        start.isoformat(),
        seed,
    )
    _run_days(sim, out, days, start, progress)
    sim._finalize_labels(np.random.default_rng([seed, 3, days]), sim.end_ms, final=True)
    sim.write_users()
    sim.write_labels()
    result = _write_summaries(sim, out, days, seed)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    log.info(
        "wrote %d events (%d lines) in %.1fs: %d posts, %d harmful (%.2f%%), %d labels (%d harmful)",
        result["events"],
        result["lines"],
        result["seconds"],
        result["posts"],
        result["harmful_posts"],
        100 * result["prevalence"],
        result["labels"],
        result["labels_harmful"],
    )
    return result


def _check_arguments(users: int, days: int, drift_day: int | None, corrupt_rate: float) -> None:
    if users < 50:
        raise UserError(f"--users {users} is too small: use at least 50.")
    if days < 1:
        raise UserError(f"--days {days} must be at least 1.")
    if drift_day is not None and not 1 <= drift_day <= days:
        raise UserError(f"--drift-day {drift_day} must be between 1 and --days ({days}).")
    if not 0.0 <= corrupt_rate <= 0.5:
        raise UserError(f"--corrupt-rate {corrupt_rate} must be between 0 and 0.5.")


def _clear_output(out: Path) -> None:
    """Remove a previous simulation's files, so the same arguments give byte-identical output."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("events", "_truth"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("users.jsonl", "labels.jsonl"):
        (out / name).unlink(missing_ok=True)
    (out / "_truth").mkdir()


def _run_days(sim: _Sim, out: Path, days: int, start: date, progress: bool) -> None:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=days, unit="day", desc="simulate", leave=False)
    with open(out / "_truth" / "posts.jsonl", "w") as tp:
        sim.truth_posts = tp
        for d in range(days):
            t_day = time.perf_counter()
            r = sim.day(d)
            log.log(
                logging.DEBUG if bar is not None else logging.INFO,
                "day %d/%d %s: %d events, %d posts (%d harmful), %d sessions, %.1fs",
                d + 1,
                days,
                (start + timedelta(days=d)).isoformat(),
                r["events"],
                r["posts"],
                r["harmful"],
                r["sessions"],
                time.perf_counter() - t_day,
            )
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()


def _write_summaries(sim: _Sim, out: Path, days: int, seed: int) -> dict:
    """The run's counts, written to _truth/ (drift.json, corruptions.json, summary.json)."""
    labels = sim.labels
    st = sim.stats
    result = {
        "out_dir": str(out),
        "users": sim.w.n,
        "campaign_bots": int(sim.w.campaign.sum()),
        "days": days,
        "seed": seed,
        "events": int(sum(sim.counts.values())),
        "lines": st["lines"],
        "late_deliveries": st["late_deliveries"],
        "duplicate_lines": st["duplicate_lines"],
        "corrupt_lines": st["corrupt_lines"],
        "posts": st["posts"],
        "harmful_posts": st["harmful_posts"],
        "prevalence": round(st["harmful_posts"] / max(st["posts"], 1), 6),
        "multi_label_posts": sim.multi_label_posts,
        "obfuscated_posts": st["obfuscated_posts"],
        "toxic_looking_benign_posts": st["toxic_looking_benign"],
        "campaign_posts": sim.campaign_posts,
        "harm_types": sim.harm_type_counts,
        "labels": len(labels),
        "labels_harmful": sum(r["is_harmful"] for r in labels),
        "labels_reported_queue": sum(r["queue"] == "reported" for r in labels),
        "labels_by_weight": {
            str(wt): sum(r["sampling_weight"] == wt for r in labels)
            for wt in sorted({r["sampling_weight"] for r in labels})
        },
        "actions": sim.counts,
        "user_kinds": {k: int((sim.w.kind == i).sum()) for i, k in enumerate(KINDS)},
    }
    if sim.w.options.active:  # the default world's summary keeps its keys
        result |= graph_world.write_truth(out, sim.w, sim.pile_on_posts)
    (out / "_truth" / "drift.json").write_text(json.dumps(sim.drift_info(), indent=2) + "\n")
    (out / "_truth" / "corruptions.json").write_text(
        json.dumps(
            {
                "total": st["corrupt_lines"],
                "by_kind": sim.corruptions,
                "late_deliveries": st["late_deliveries"],
                "duplicate_lines": st["duplicate_lines"],
                "lines": st["lines"],
                "events": result["events"],
            },
            indent=2,
        )
        + "\n"
    )
    # no paths or timings in the files: the same arguments give byte-identical output anywhere
    summary = {k: v for k, v in result.items() if k != "out_dir"}
    (out / "_truth" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD.") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: $VIGIL_HOME/raw); a previous simulation there is replaced",
    )
    parser.add_argument(
        "--users", type=int, default=20000, help="number of accounts (default 20000)"
    )
    parser.add_argument("--days", type=int, default=30, help="number of days (default 30)")
    parser.add_argument(
        "--start",
        type=_parse_date,
        default=date(2026, 10, 1),
        help="first day, YYYY-MM-DD (default 2026-10-01)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--drift-day",
        type=int,
        default=None,
        help="1-based day from which abusers change vocabulary and a spam campaign starts",
    )
    parser.add_argument(
        "--corrupt-rate",
        type=float,
        default=0.0002,
        help="share of extra garbage lines mixed into the log (default 0.0002)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = parser.add_argument_group("graph world (issue 26; all off by default)")
    g.add_argument(
        "--world",
        choices=sorted(WORLDS),
        default="default",
        help="a named world: 'graph' switches on communities, arrival waves and campaigns",
    )
    g.add_argument("--communities", type=int, default=None, help="number of communities (0: off)")
    g.add_argument(
        "--arrival-share", type=float, default=None, help="share of --users arriving in waves"
    )
    g.add_argument("--arrival-waves", type=int, default=None, help="number of arrival waves")
    g.add_argument("--campaigns", type=int, default=None, help="number of harassment campaigns")


def world_options(args: argparse.Namespace) -> WorldOptions:
    """The graph world's options from the command line (``--world`` then explicit flags)."""
    return graph_world.resolve(
        getattr(args, "world", None),
        communities=getattr(args, "communities", None),
        arrival_share=getattr(args, "arrival_share", None),
        arrival_waves=getattr(args, "arrival_waves", None),
        campaigns=getattr(args, "campaigns", None),
    )


def run(args: argparse.Namespace) -> int:
    from vigil import config

    out = args.out if args.out is not None else config.paths().raw
    r = simulate(
        out,
        users=args.users,
        days=args.days,
        start=args.start,
        seed=args.seed,
        drift_day=args.drift_day,
        corrupt_rate=args.corrupt_rate,
        progress=not args.no_progress,
        world=world_options(args),
    )
    acts = ", ".join(f"{k} {v:,}" for k, v in r["actions"].items())
    print(
        f"Simulated {r['users']:,} users over {r['days']} days into {r['out_dir']} in {r['seconds']}s"
    )
    print(f"  events  {r['events']:,} ({acts})")
    print(
        f"  lines   {r['lines']:,} (late {r['late_deliveries']:,}, duplicates {r['duplicate_lines']:,}, "
        f"corrupt {r['corrupt_lines']:,})"
    )
    print(
        f"  posts   {r['posts']:,}, harmful {r['harmful_posts']:,} ({100 * r['prevalence']:.2f}%), "
        f"multi-label {r['multi_label_posts']:,}, obfuscated {r['obfuscated_posts']:,}"
    )
    print(
        f"  labels  {r['labels']:,} ({r['labels_harmful']:,} harmful, "
        f"{r['labels_reported_queue']:,} from the reported queue)"
    )
    print(f"  users   {', '.join(f'{k} {v:,}' for k, v in r['user_kinds'].items())}")
    if "world" in r:
        print(
            f"  graph   {r['world']}: {r['arrivals']:,} arrivals, {r['harassment_campaigns']} "
            f"harassment campaigns ({r['harassment_campaign_posts']:,} posts)"
        )
    return 0
