"""Writing the notes world: the four public-format TSV files under ``<raw>/notes`` and the truth
under ``<raw>/_truth/notes_*`` (the only place helpfulness, slant and the colluders are written)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from sim.notes_params import NotesParams
from vigil.notes import format as fmt

TRUTH_CONTRIBUTORS = "notes_contributors.jsonl"
TRUTH_NOTES = "notes_notes.jsonl"
TRUTH_SUMMARY = "notes_summary.json"

# Per-rating tag probabilities by level (the reference ignores tags in its core model; they make
# the files look like the download and feed the tag-based filters of later work).
_HELPFUL_TAG_P = {
    "helpfulOther": 0.03,
    "helpfulInformative": 0.5,
    "helpfulClear": 0.45,
    "helpfulEmpathetic": 0.05,
    "helpfulGoodSources": 0.4,
    "helpfulUniqueContext": 0.1,
    "helpfulAddressesClaim": 0.3,
    "helpfulImportantContext": 0.35,
    "helpfulUnbiasedLanguage": 0.2,
}
_NOT_HELPFUL_TAG_P = {
    "notHelpfulOther": 0.04,
    "notHelpfulIncorrect": 0.3,
    "notHelpfulSourcesMissingOrUnreliable": 0.35,
    "notHelpfulMissingKeyPoints": 0.3,
    "notHelpfulOutdated": 0.04,
    "notHelpfulHardToUnderstand": 0.12,
    "notHelpfulOffTopic": 0.05,
    "notHelpfulSpamHarassmentOrAbuse": 0.02,
    "notHelpfulIrrelevantSources": 0.1,
    "notHelpfulNoteNotNeeded": 0.15,
}
# a rater meeting a note slanted against their camp says so
_BIASED_TAG_P = {"notHelpfulArgumentativeOrBiased": 0.55, "notHelpfulOpinionSpeculationOrBias": 0.4}
_SOMEWHAT_SCALE = 0.3

_OPENERS = (
    "This post leaves out important context.",
    "The claim in this post is not accurate.",
    "The image in this post is from an older, unrelated event.",
    "The quote is missing the sentence that changes its meaning.",
    "The figure cited here counts something different.",
    "This is satire from a parody account.",
)
_BODIES = (
    "The original report says otherwise",
    "Official records show a different number",
    "The full video shows what happened before",
    "The study cited did not measure this",
    "Several outlets corrected the story the next day",
)


def participant_ids(seed: int, n: int) -> list[str]:
    """64 upper-case hex digits, like the download's participant ids; stable per seed."""
    return [
        hashlib.sha256(f"vigil-notes:{seed}:{i}".encode()).hexdigest().upper() for i in range(n)
    ]


def write_world(
    raw: Path, rng, users: dict, nts: dict, rts: dict, p: NotesParams, end_ms: int
) -> dict:
    notes_dir = raw / "notes"
    truth_dir = raw / "_truth"
    shutil.rmtree(notes_dir, ignore_errors=True)
    notes_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    seed_key = int(rng.integers(0, 2**31))
    pids = np.array(participant_ids(seed_key, len(users["camp"])), dtype=object)
    _write(notes_dir / fmt.NOTES_FILE, fmt.NOTE_COLUMNS, _notes_table(rng, nts, pids))
    _write(
        notes_dir / fmt.RATINGS_FILE,
        fmt.RATING_COLUMNS,
        _ratings_table(rng, users, nts, rts, pids, p),
    )
    _write(
        notes_dir / fmt.STATUS_HISTORY_FILE, fmt.STATUS_HISTORY_COLUMNS, _status_table(nts, pids)
    )
    enrollment, joined = _enrollment_table(users, rts, pids, p, end_ms)
    _write(notes_dir / fmt.ENROLLMENT_FILE, fmt.ENROLLMENT_COLUMNS, enrollment)
    _write_truth(truth_dir, users, nts, pids)
    levels = np.bincount(rts["level"], minlength=3)
    summary = {
        "contributors": len(pids),
        "joined_during_month": joined,
        "notes": len(nts["note_id"]),
        "colluding_notes": int(nts["colluding"].sum()),
        "strongly_slanted_notes": int(nts["strongly_slanted"].sum()),
        "ratings": len(rts["note"]),
        "burst_ratings": int(rts["burst"].sum()),
        "levels": {
            fmt.NOT_HELPFUL: int(levels[0]),
            fmt.SOMEWHAT_HELPFUL: int(levels[1]),
            fmt.HELPFUL: int(levels[2]),
        },
    }
    (truth_dir / TRUTH_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write(path: Path, columns, table: dict) -> None:
    """One TSV with a header, the format's columns in order; missing columns written empty."""
    n = len(next(iter(table.values())))
    empty = np.full(n, "", dtype=object)
    frame = pd.DataFrame({name: table.get(name, empty) for name, _ in columns})
    frame.to_csv(
        path, sep="\t", index=False, na_rep="", lineterminator="\n", quoting=csv.QUOTE_NONE
    )


def _notes_table(rng, nts: dict, pids: np.ndarray) -> dict:
    n = len(nts["note_id"])
    mis = nts["misleading"]
    table = {
        "noteId": nts["note_id"],
        "noteAuthorParticipantId": pids[nts["author"]],
        "createdAtMillis": nts["created_ms"],
        "tweetId": nts["post_id"],
        "classification": np.where(mis, fmt.MISLEADING, fmt.NOT_MISLEADING),
    }
    for tags, mask in ((fmt.MISLEADING_TAGS, mis), (fmt.NOT_MISLEADING_TAGS, ~mis)):
        primary = rng.integers(1, len(tags), n)  # one main reason (never "Other"), sometimes more
        for i, tag in enumerate(tags):
            table[tag] = (((primary == i) | (rng.random(n) < 0.08)) & mask).astype(np.int8)
    good_sources = rng.random(n) < 1 / (1 + np.exp(-4 * nts["helpfulness"] - 1))
    table["trustworthySources"] = good_sources.astype(np.int8)
    opener = rng.integers(0, len(_OPENERS), n)
    body = rng.integers(0, len(_BODIES), n)
    table["summary"] = [
        f"{_OPENERS[o]} {_BODIES[b]}" + (f": https://example.org/fact/{i}" if s else ".")
        for o, b, s, i in zip(opener.tolist(), body.tolist(), good_sources.tolist(), range(n))
    ]
    table["isMediaNote"] = nts["media"].astype(np.int8)
    table["isCollaborativeNote"] = np.zeros(n, np.int8)
    return table


def _ratings_table(rng, users, nts, rts, pids, p: NotesParams) -> dict:
    n = len(rts["note"])
    level = rts["level"]
    names = np.array([fmt.NOT_HELPFUL, fmt.SOMEWHAT_HELPFUL, fmt.HELPFUL], dtype=object)
    zeros = np.zeros(n, np.int8)
    table = {
        "noteId": nts["note_id"][rts["note"]],
        "raterParticipantId": pids[rts["rater"]],
        "createdAtMillis": rts["ms"],
        "version": np.full(n, 2, np.int8),
        "agree": zeros,
        "disagree": zeros,
        "helpful": zeros,
        "notHelpful": zeros,
        "helpfulnessLevel": names[level],
    }
    somewhat = level == 1
    scale_h = np.where(somewhat, _SOMEWHAT_SCALE, 1.0)
    for tag, pr in _HELPFUL_TAG_P.items():
        table[tag] = ((rng.random(n) < pr * scale_h) & (level >= 1)).astype(np.int8)
    against = users["factor"][rts["rater"]] * nts["slant"][rts["note"]] < -0.15
    for tag in fmt.NOT_HELPFUL_TAGS:
        pr = _NOT_HELPFUL_TAG_P.get(tag, 0.0)
        pr = np.where(against, _BIASED_TAG_P.get(tag, pr * 0.5), pr) * np.where(
            somewhat, _SOMEWHAT_SCALE, 1.0
        )
        table[tag] = ((rng.random(n) < pr) & (level <= 1)).astype(np.int8)
    table["ratedOnTweetId"] = nts["post_id"][rts["note"]]
    sampled = rng.random(n) < p.p_population_sampled
    table["ratingSourceBucketed"] = np.where(sampled, "POPULATION_SAMPLED", "DEFAULT")
    return table


def _status_table(nts: dict, pids: np.ndarray) -> dict:
    """Every note as the live scorer last left it: Needs More Ratings since it was written."""
    n = len(nts["note_id"])
    return {
        "noteId": nts["note_id"],
        "noteAuthorParticipantId": pids[nts["author"]],
        "createdAtMillis": nts["created_ms"],
        "timestampMillisOfCurrentStatus": pd.array(nts["created_ms"], dtype="Int64"),
        "currentStatus": np.full(n, fmt.NEEDS_MORE_RATINGS, dtype=object),
        "timestampMillisOfMostRecentStatusChange": pd.array(nts["created_ms"], dtype="Int64"),
    }


def _enrollment_table(users, rts, pids, p: NotesParams, end_ms: int) -> tuple[dict, int]:
    """earnedIn for contributors from before the month; those who joined during it are newUser
    until they have rated ``successful_ratings_to_earn_in`` notes."""
    n = len(pids)
    counts = np.bincount(rts["rater"], minlength=n)
    new = users["new"]
    earned = ~new | (counts >= p.successful_ratings_to_earn_in)
    table = {
        "participantId": pids,
        "enrollmentState": np.where(earned, "earnedIn", "newUser"),
        "successfulRatingNeededToEarnIn": np.full(n, p.successful_ratings_to_earn_in, np.int64),
        "timestampOfLastStateChange": users["join_ms"],
        "modelingPopulation": np.full(n, "CORE", dtype=object),
        "numberOfTimesEarnedOut": np.zeros(n, np.int64),
    }
    return table, int(new.sum())


def _write_truth(truth_dir: Path, users: dict, nts: dict, pids: np.ndarray) -> None:
    contributors = pd.DataFrame(
        {
            "participantId": pids,
            "camp": users["camp"].astype(int),
            "factor": users["factor"].round(6),
            "leniency": users["leniency"].round(6),
            "is_colluder": users["colluder"],
            "joined_at_ms": users["join_ms"],
        }
    )
    contributors.to_json(truth_dir / TRUTH_CONTRIBUTORS, orient="records", lines=True)
    notes = pd.DataFrame(
        {
            "noteId": nts["note_id"],
            "noteAuthorParticipantId": pids[nts["author"]],
            "tweetId": nts["post_id"],
            "helpfulness": nts["helpfulness"].round(6),
            "slant": nts["slant"].round(6),
            "is_strongly_slanted": nts["strongly_slanted"],
            "is_colluding": nts["colluding"],
            "on_harmful_post": nts["on_harmful_post"],
        }
    )
    notes.to_json(truth_dir / TRUTH_NOTES, orient="records", lines=True)
