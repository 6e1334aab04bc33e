"""`vigil simulate-notes`: a Community Notes world beside the posts world, deterministic per seed.

The world, in one paragraph. Contributors hold a viewpoint: two camps of unequal size (65/35 by
default), each contributor a factor of about +1 or -1 and a small leniency. Some join during the
month. Contributors write notes on posts (the posts world's post ids when ``<raw>/_truth/posts.jsonl``
exists, half of the notes on harmful posts; otherwise made-up post ids). A note has a true
helpfulness and a slant: most notes are nearly neutral, 30% are written strongly for the author's
camp. Raters pick notes by popularity with a bias toward notes slanted their way, and rate them
with propensity ``base + leniency + helpfulness + factor x slant + noise`` cut into NOT_HELPFUL /
SOMEWHAT_HELPFUL / HELPFUL, so a one-factor matrix factorization is the right description. Tags
follow the level (and "argumentative or biased" when a rater meets a note slanted against them).
A colluding group from the minority camp writes unhelpful, slanted notes and rates its members'
notes HELPFUL in bursts, minutes after each appears; its members also rate like everyone else.

Files: ``<raw>/notes/{notes,ratings,noteStatusHistory,userEnrollment}-00000.tsv`` in the public
download format (:mod:`vigil.notes.format`), times in epoch milliseconds. Truth only under
``<raw>/_truth/notes_*``: contributors (camp, factor, leniency, colluder), notes (helpfulness,
slant, colluding), summary. The platform never reads it; :mod:`sim.notes_harness` grades with it.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from sim.notes_params import DAY, MINUTE, SNOWFLAKE_EPOCH_MS, NotesParams
from sim.notes_params import P as DEFAULT_PARAMS
from sim.notes_writer import write_world
from vigil.errors import UserError

log = logging.getLogger(__name__)


def simulate_notes(
    raw_dir,
    contributors: int = 4000,
    notes: int = 5000,
    ratings: int = 100_000,
    days: int = 30,
    start: date = date(2026, 10, 1),
    seed: int = 7,
    colluders: int = 24,
    posts: int | None = None,
    params: NotesParams = DEFAULT_PARAMS,
) -> dict:
    """Write a notes world under ``raw_dir/notes`` (truth under ``raw_dir/_truth``); return counts.

    ``posts``: make up this many post ids; None uses the posts world's posts when ``raw_dir``
    holds one, else 20000 made-up ids. A previous notes world in ``raw_dir`` is replaced.
    """
    _check(contributors, notes, ratings, days, colluders, posts)
    t0 = time.perf_counter()
    raw = Path(raw_dir)
    if raw.exists() and not raw.is_dir():
        raise UserError(f"--out {raw} is a file: give a directory.")
    start_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    end_ms = start_ms + days * DAY
    users = _contributors(np.random.default_rng([seed, 20, 1]), contributors, colluders, params)
    users["join_ms"] = _join_times(
        np.random.default_rng([seed, 20, 2]), users, start_ms, end_ms, params
    )
    post_ids, post_harmful = _posts(np.random.default_rng([seed, 20, 3]), raw, posts, params)
    nts = _notes(np.random.default_rng([seed, 20, 4]), users, notes, post_ids, post_harmful,
                 start_ms, end_ms, params)  # fmt: skip
    rts = _honest_ratings(np.random.default_rng([seed, 20, 5]), users, nts, ratings, end_ms, params)
    bursts = _bursts(np.random.default_rng([seed, 20, 6]), users, nts, end_ms, params)
    rts = _merge(rts, bursts)
    summary = write_world(
        raw, np.random.default_rng([seed, 20, 7]), users, nts, rts, params, end_ms
    )
    summary.update({"seed": seed, "days": days, "start": start.isoformat(), "colluders": colluders})
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    log.info(
        "notes world: %d contributors (%d colluding, %d joined during the month), %d notes "
        "(%d by the colluding group), %d ratings (%d in collusion bursts) in %.1fs",
        summary["contributors"],
        colluders,
        summary["joined_during_month"],
        summary["notes"],
        summary["colluding_notes"],
        summary["ratings"],
        summary["burst_ratings"],
        summary["seconds"],
    )
    return summary


def _check(contributors, notes, ratings, days, colluders, posts) -> None:
    if contributors < 50:
        raise UserError(f"--contributors {contributors} is too small: use at least 50.")
    if notes < 10:
        raise UserError(f"--notes {notes} is too small: use at least 10.")
    if ratings < notes:
        raise UserError(
            f"--ratings {ratings} is below --notes {notes}: give at least one per note."
        )
    if days < 1:
        raise UserError(f"--days {days} must be at least 1.")
    if not 0 <= colluders <= contributors // 4:
        raise UserError(
            f"--colluders {colluders} must be between 0 and a quarter of --contributors "
            f"({contributors // 4})."
        )
    if colluders == 1:
        raise UserError("--colluders 1 is not a group: use 0 or at least 2.")
    if posts is not None and posts < 1:
        raise UserError(f"--posts {posts} must be at least 1.")


def _contributors(rng, n: int, colluders: int, p: NotesParams) -> dict:
    camp = np.where(rng.random(n) < p.majority_share, 1, -1).astype(np.int8)
    # the colluding group: the first minority-camp contributors in a random order
    colluder = np.zeros(n, bool)
    minority = rng.permutation(np.flatnonzero(camp == -1))
    if colluders > len(minority):
        raise UserError(f"--colluders {colluders} exceeds the minority camp ({len(minority)}).")
    colluder[minority[:colluders]] = True
    return {
        "camp": camp,
        "factor": camp * np.abs(rng.normal(p.factor_mean, p.factor_sd, n)),
        "leniency": rng.normal(0.0, p.leniency_sd, n),
        "activity": rng.lognormal(0.0, p.activity_log_sd, n),
        "writing": rng.lognormal(0.0, p.writing_log_sd, n),
        "colluder": colluder,
    }


def _join_times(rng, users: dict, start_ms: int, end_ms: int, p: NotesParams) -> np.ndarray:
    """Enrollment time: before the month for most, during it for a share (never the colluders)."""
    n = len(users["camp"])
    before = start_ms - rng.integers(30 * DAY, 720 * DAY, n)
    during = start_ms + (rng.random(n) * 0.8 * (end_ms - start_ms)).astype(np.int64)
    new = (rng.random(n) < p.p_joins_during_month) & ~users["colluder"]
    users["new"] = new
    return np.where(new, during, before).astype(np.int64)


def _posts(rng, raw: Path, posts: int | None, p: NotesParams) -> tuple[np.ndarray, np.ndarray]:
    if posts is None:
        from sim import truth

        world = truth.posts(raw)
        if world is not None and len(world):
            log.info("notes go on the posts world's %d posts", len(world))
            return (
                world["post_id"].to_numpy(np.int64),
                world["is_harmful"].to_numpy(bool),
            )
        posts = 20_000
    ids = np.arange(1, posts + 1, dtype=np.int64)
    return ids, rng.random(posts) < p.synthetic_harmful_share


def _notes(rng, users, n, post_ids, post_harmful, start_ms, end_ms, p: NotesParams) -> dict:
    """Authors, times, posts, true helpfulness and slant; the colluding group's notes flagged."""
    n_members = int(users["colluder"].sum())
    n_coll = max(
        round(n * p.colluder_note_share), math.ceil(p.colluder_notes_per_member * n_members)
    )
    n_coll = min(n_coll, n // 4) if n_members else 0
    honest_w = users["writing"] * ~users["colluder"]
    author = np.concatenate(
        [
            _draw(rng, honest_w, n - n_coll),
            _draw(rng, users["writing"] * users["colluder"], n_coll),
        ]
    )
    colluding = np.arange(n) >= n - n_coll
    t_from = np.maximum(users["join_ms"][author], start_ms)
    span = np.maximum(end_ms - t_from - 6 * 3_600_000, 3_600_000)
    created = t_from + (rng.random(n) * span).astype(np.int64)
    harmful_ids, benign_ids = post_ids[post_harmful], post_ids[~post_harmful]
    on_harmful = rng.random(n) < (p.p_note_on_harmful_post if len(harmful_ids) else 0.0)
    if not len(benign_ids):
        on_harmful[:] = True
    post = np.where(
        on_harmful,
        harmful_ids[rng.integers(0, max(len(harmful_ids), 1), n)] if len(harmful_ids) else 0,
        benign_ids[rng.integers(0, max(len(benign_ids), 1), n)] if len(benign_ids) else 0,
    )
    helpfulness = rng.normal(0.0, p.helpfulness_sd, n) + p.harmful_post_helpfulness * on_harmful
    helpfulness[colluding] = rng.normal(
        p.colluder_helpfulness_mean, p.colluder_helpfulness_sd, n_coll
    )
    strong = (rng.random(n) < p.p_strong_slant) | colluding
    size = rng.uniform(p.strong_slant_low, p.strong_slant_high, n)
    slant = np.where(strong, users["camp"][author] * size, rng.normal(0.0, p.mild_slant_sd, n))
    order = np.argsort(created, kind="stable")
    nts = {
        "author": author,
        "created_ms": created,
        "post_id": post,
        "on_harmful_post": on_harmful,
        "helpfulness": helpfulness,
        "slant": slant,
        "strongly_slanted": strong,
        "colluding": colluding,
        "popularity": rng.lognormal(0.0, p.popularity_log_sd, n),
        "misleading": rng.random(n) < p.p_misleading,
        "media": rng.random(n) < p.p_media_note,
    }
    nts = {k: v[order] for k, v in nts.items()}
    # snowflake-like ids: creation time in the high bits, a unique sequence in the low 22
    seq = np.arange(n, dtype=np.int64)
    nts["note_id"] = ((nts["created_ms"] - SNOWFLAKE_EPOCH_MS) << 22) + seq
    return nts


def _draw(rng, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` indices drawn with replacement with probability proportional to ``weights``."""
    if k == 0:
        return np.zeros(0, np.int64)
    cum = np.cumsum(weights)
    return np.searchsorted(cum, rng.random(k) * cum[-1], side="right").astype(np.int64)


def _honest_ratings(rng, users, nts, target: int, end_ms: int, p: NotesParams) -> dict:
    """Raters pick notes by popularity, favouring notes slanted their way; propensity -> level."""
    n_notes = len(nts["note_id"])
    # oversample: some draws are duplicates, self-ratings or fall after the month's end
    k = _draw(rng, nts["popularity"], int(target * 1.6))
    s = nts["slant"][k]
    share = p.majority_share
    pa = share * np.exp(p.camp_choice_bias * s)
    p_major = pa / (pa + (1 - share) * np.exp(-p.camp_choice_bias * s))
    major = rng.random(len(k)) < p_major
    act = users["activity"]
    rater = np.where(
        major,
        _draw(rng, act * (users["camp"] == 1), len(k)),
        _draw(rng, act * (users["camp"] == -1), len(k)),
    )
    delay = (rng.lognormal(p.delay_log_mean_minutes, p.delay_log_sd, len(k)) * MINUTE).astype(
        np.int64
    )
    t = nts["created_ms"][k] + delay
    late_joiner = users["join_ms"][rater] > t
    t = np.where(late_joiner, users["join_ms"][rater] + delay // 4, t)
    ok = (t < end_ms) & (rater != nts["author"][k])
    k, rater, t = k[ok], rater[ok], t[ok]
    _, first = np.unique(k * len(users["camp"]) + rater, return_index=True)
    keep = np.sort(first)
    if len(keep) > target:
        keep = np.sort(rng.choice(keep, target, replace=False))
    k, rater, t = k[keep], rater[keep], t[keep]
    y = (
        p.base
        + users["leniency"][rater]
        + nts["helpfulness"][k]
        + users["factor"][rater] * nts["slant"][k]
        + rng.normal(0.0, p.rating_noise_sd, len(k))
    )
    level = np.where(y > p.helpful_above, 2, np.where(y < p.not_helpful_below, 0, 1)).astype(
        np.int8
    )
    log.debug("honest ratings: %d of %d wanted over %d notes", len(k), target, n_notes)
    return {"note": k, "rater": rater, "ms": t, "level": level, "burst": np.zeros(len(k), bool)}


def _bursts(rng, users, nts, end_ms: int, p: NotesParams) -> dict:
    """The colluding group rates each member's note HELPFUL within minutes of it appearing."""
    members = np.flatnonzero(users["colluder"])
    notes_c = np.flatnonzero(nts["colluding"])
    rows_note, rows_rater, rows_ms = [], [], []
    for j in notes_c.tolist():
        joins = members[(rng.random(len(members)) < p.p_colluder_joins_burst)]
        joins = joins[joins != nts["author"][j]]
        begin = nts["created_ms"][j] + int(rng.exponential(p.burst_start_minutes) * MINUTE)
        rows_note.append(np.full(len(joins), j))
        rows_rater.append(joins)
        rows_ms.append(
            begin + (rng.random(len(joins)) * p.burst_spread_minutes * MINUTE).astype(np.int64)
        )
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    note, rater, ms = cat(rows_note, np.int64), cat(rows_rater, np.int64), cat(rows_ms, np.int64)
    ok = ms < end_ms
    n = int(ok.sum())
    return {
        "note": note[ok],
        "rater": rater[ok],
        "ms": ms[ok],
        "level": np.full(n, 2, np.int8),
        "burst": np.ones(n, bool),
    }


def _merge(honest: dict, bursts: dict) -> dict:
    """Both kinds of ratings, one per (note, rater): a burst rating replaces an honest one."""
    both = {c: np.concatenate([bursts[c], honest[c]]) for c in honest}
    key = both["note"] * (int(both["rater"].max(initial=0)) + 1) + both["rater"]
    _, first = np.unique(key, return_index=True)
    out = {c: v[first] for c, v in both.items()}
    order = np.lexsort((out["rater"], out["ms"]))
    return {c: v[order] for c, v in out.items()}


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


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
        help="raw directory (default: $VIGIL_HOME/raw); writes notes/ and _truth/notes_* there",
    )
    parser.add_argument("--contributors", type=int, default=4000, help="default 4000")
    parser.add_argument("--notes", type=int, default=5000, help="default 5000")
    parser.add_argument(
        "--ratings", type=int, default=100_000, help="about this many (default 100000)"
    )
    parser.add_argument("--days", type=int, default=30, help="default 30")
    parser.add_argument("--start", type=_parse_date, default=date(2026, 10, 1), help="YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--colluders", type=int, default=24, help="colluding group size (default 24)"
    )
    parser.add_argument(
        "--posts",
        type=int,
        default=None,
        help="make up this many post ids (default: the posts world's posts in --out, else 20000)",
    )


def run(args: argparse.Namespace) -> int:
    from vigil import config

    out = args.out if args.out is not None else config.paths().raw
    r = simulate_notes(
        out,
        contributors=args.contributors,
        notes=args.notes,
        ratings=args.ratings,
        days=args.days,
        start=args.start,
        seed=args.seed,
        colluders=args.colluders,
        posts=args.posts,
    )
    print(f"Simulated a notes world into {Path(out) / 'notes'} in {r['seconds']}s")
    print(
        f"  contributors {r['contributors']:,} ({r['colluders']} colluding, "
        f"{r['joined_during_month']:,} joined during the month)"
    )
    print(f"  notes        {r['notes']:,} ({r['colluding_notes']} by the colluding group)")
    print(
        f"  ratings      {r['ratings']:,} (HELPFUL {r['levels']['HELPFUL']:,}, SOMEWHAT_HELPFUL "
        f"{r['levels']['SOMEWHAT_HELPFUL']:,}, NOT_HELPFUL {r['levels']['NOT_HELPFUL']:,}; "
        f"{r['burst_ratings']:,} in collusion bursts)"
    )
    return 0
