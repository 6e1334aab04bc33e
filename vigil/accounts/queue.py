"""The account review queue: accounts ordered by expected harm = P(violation) x reach.

- P(violation) combines three independent signals as a noisy OR,
  ``1 - (1 - p_bot)(1 - p_evader)(1 - p_cluster)``:
  ``p_bot`` the bot model's calibrated score (part A; 0 when no score is given),
  ``p_evader`` the top ban-evasion score mapped through a logistic centred on the match
  threshold (``QueueConfig.evasion_midpoint``, ``evasion_slope``),
  ``p_cluster`` = ``cluster_prior`` for a member of a coordination cluster.
- reach = views of the account's posts over the last ``reach_days`` before the cut (what its
  content draws now, so what acting on it saves next).

Verdicts come back as labels: ``verdicts.jsonl`` under ``$VIGIL_HOME/accounts/`` (one JSON object
a line: user_id, is_violating, reason, reviewer, reviewed_at); accounts with a verdict leave the
queue, and ``verdict_labels()`` is what training reads (latest verdict per account wins).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)

QUEUE_COLUMNS = (
    "position",
    "user_id",
    "expected_harm",
    "p_violation",
    "p_bot",
    "p_evader",
    "p_cluster",
    "reach",
    "reports",
    "evasion_candidate",
    "cluster_id",
)
VERDICT_FIELDS = ("user_id", "is_violating", "reason", "reviewer", "reviewed_at")


@dataclass(frozen=True)
class QueueConfig:
    reach_days: float = 7.0
    evasion_midpoint: float = 1.8  # the evasion match threshold (evasion.MatchConfig)
    evasion_slope: float = 6.0
    cluster_prior: float = 0.9
    size: int = 100


def accounts_dir() -> Path:
    return paths().home / "accounts"


def reach(events: pd.DataFrame, cut: pd.Timestamp, days: float) -> pd.Series:
    """Views of each author's posts in [cut - days, cut), indexed by author user_id.

    A view event names the post's author in ``target_user_id`` (docs/contracts.md)."""
    ts = pd.to_datetime(events["event_ts"], utc=True)
    window = (ts < cut) & (ts >= cut - pd.Timedelta(days=days))
    views = events[window & (events["action"] == "view") & events["target_user_id"].notna()]
    return views.groupby(views["target_user_id"].astype("int64")).size().rename("reach")


def report_counts(events: pd.DataFrame, cut: pd.Timestamp) -> pd.Series:
    """Reports received by each author before the cut: the queue a report count would give."""
    ts = pd.to_datetime(events["event_ts"], utc=True)
    rep = events[(ts < cut) & (events["action"] == "report") & events["target_user_id"].notna()]
    return rep.groupby(rep["target_user_id"].astype("int64")).size().rename("reports")


def p_evader(top_scores: pd.Series, cfg: QueueConfig) -> pd.Series:
    return 1.0 / (1.0 + np.exp(-cfg.evasion_slope * (top_scores - cfg.evasion_midpoint)))


def build_queue(
    events: pd.DataFrame,
    cut: pd.Timestamp,
    bot_scores: pd.DataFrame | None = None,
    matches: pd.DataFrame | None = None,
    clusters: pd.DataFrame | None = None,
    verdicts: pd.DataFrame | None = None,
    config: QueueConfig | None = None,
    suspended=None,
) -> pd.DataFrame:
    """Every account with P(violation) > 0 and some reach, by expected harm (ties: more reports,
    then lower user_id); accounts that already have a verdict, and ``suspended`` ones (user
    ids already actioned), are left out."""
    cfg = config or QueueConfig()
    cut = pd.Timestamp(cut)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut
    frame = pd.DataFrame(reach(events, cut, cfg.reach_days))
    frame = frame.join(report_counts(events, cut), how="outer").fillna(0)
    frame.index.name = "user_id"
    frame["p_bot"] = 0.0
    if bot_scores is not None and not bot_scores.empty:
        s = bot_scores.drop_duplicates("user_id", keep="last").set_index("user_id")["bot_score"]
        frame = frame.join(s.rename("p_bot_in"), how="outer")
        frame["p_bot"] = frame["p_bot_in"].fillna(0.0)
        frame = frame.drop(columns="p_bot_in")
    frame["evasion_candidate"] = pd.NA
    frame["p_evader"] = 0.0
    if matches is not None and not matches.empty:
        top = matches[matches["rank"] == 1].set_index("user_id")
        frame = frame.join(top[["candidate_id", "score"]], how="outer")
        frame["p_evader"] = p_evader(frame["score"], cfg).fillna(0.0)
        frame["evasion_candidate"] = frame["candidate_id"].astype("Int64")
        frame = frame.drop(columns=["candidate_id", "score"])
    frame["cluster_id"] = pd.NA
    frame["p_cluster"] = 0.0
    if clusters is not None and not clusters.empty:
        c = clusters.drop_duplicates("user_id").set_index("user_id")["cluster_id"]
        frame = frame.join(c.rename("cid"), how="outer")
        frame["cluster_id"] = frame["cid"].astype("Int64")
        frame["p_cluster"] = np.where(frame["cid"].notna(), cfg.cluster_prior, 0.0)
        frame = frame.drop(columns="cid")
    frame[["reach", "reports", "p_bot", "p_evader", "p_cluster"]] = frame[
        ["reach", "reports", "p_bot", "p_evader", "p_cluster"]
    ].fillna(0.0)
    frame["p_violation"] = 1.0 - (1.0 - frame["p_bot"]) * (1.0 - frame["p_evader"]) * (
        1.0 - frame["p_cluster"]
    )
    frame["expected_harm"] = frame["p_violation"] * frame["reach"]
    frame = frame.reset_index()
    if verdicts is not None and not verdicts.empty:
        frame = frame[~frame["user_id"].isin(verdicts["user_id"])]
    if suspended is not None:
        frame = frame[~frame["user_id"].isin(list(suspended))]
    frame = frame[frame["expected_harm"] > 0]
    frame = frame.sort_values(
        ["expected_harm", "reports", "user_id"], ascending=[False, False, True]
    ).reset_index(drop=True)
    frame["position"] = np.arange(1, len(frame) + 1)
    frame = frame.astype({"user_id": "int64", "reach": "int64", "reports": "int64"})
    log.info("queue: %d accounts with expected harm > 0 at %s", len(frame), cut.isoformat())
    return frame[list(QUEUE_COLUMNS)]


def report_queue(
    events: pd.DataFrame,
    cut: pd.Timestamp,
    more_reports: pd.Series | None = None,
    suspended=None,
) -> pd.DataFrame:
    """The baseline: accounts by reports received before the cut (ties: lower user_id).

    ``more_reports`` (reports per user_id from elsewhere, e.g. reported-and-labeled posts) adds
    to the report events."""
    cut = pd.Timestamp(cut)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut
    counts = report_counts(events, cut)
    if more_reports is not None and len(more_reports):
        counts = counts.add(more_reports.rename("reports"), fill_value=0).astype("int64")
    counts.index.name = "user_id"
    r = counts.rename("reports").reset_index()
    if suspended is not None:
        r = r[~r["user_id"].isin(list(suspended))]
    r = r.sort_values(["reports", "user_id"], ascending=[False, True]).reset_index(drop=True)
    r["position"] = np.arange(1, len(r) + 1)
    return r


# ---- verdicts ------------------------------------------------------------------------------


def verdicts_path() -> Path:
    return accounts_dir() / "verdicts.jsonl"


def record_verdict(
    user_id: int,
    is_violating: bool,
    reason: str = "",
    reviewer: str = "reviewer",
    at: datetime | None = None,
    path: Path | None = None,
) -> dict:
    """Append one verdict to the verdicts file and return it."""
    path = path or verdicts_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "user_id": int(user_id),
        "is_violating": bool(is_violating),
        "reason": reason,
        "reviewer": reviewer,
        "reviewed_at": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


def _verdict_problem(obj) -> str | None:
    if not isinstance(obj, dict):
        return "not a JSON object"
    missing = [f for f in ("user_id", "is_violating", "reviewed_at") if f not in obj]
    if missing:
        return f"missing {', '.join(missing)}"
    if not isinstance(obj["user_id"], int) or isinstance(obj["user_id"], bool):
        return "user_id is not an integer"
    if obj["user_id"] <= 0:
        return "user_id is not positive"
    if not isinstance(obj["is_violating"], bool):
        return "is_violating is not true/false"
    try:
        pd.Timestamp(obj["reviewed_at"])
    except (ValueError, TypeError):
        return "reviewed_at is not an ISO-8601 time"
    return None


def read_verdicts(path: Path | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """(valid verdicts, rejected lines with line number and reason)."""
    path = path or verdicts_path()
    cols = list(VERDICT_FIELDS)
    if not path.exists():
        return pd.DataFrame(columns=cols), []
    good, bad = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad.append({"line": n, "reason": "not JSON", "raw": line[:500]})
            continue
        problem = _verdict_problem(obj)
        if problem:
            bad.append({"line": n, "reason": problem, "raw": line[:500]})
            continue
        good.append({f: obj.get(f, "") for f in cols})
    if bad:
        log.warning("verdicts: %d invalid lines in %s set aside", len(bad), path)
    frame = pd.DataFrame(good, columns=cols)
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True)
    return frame, bad


def verdict_labels(path: Path | None = None) -> pd.DataFrame:
    """The labels training reads: one row per account (user_id, is_violating, reviewed_at),
    the latest verdict winning (a tie goes to the later line)."""
    frame, _ = read_verdicts(path)
    cols = ["user_id", "is_violating", "reason", "reviewed_at"]
    if frame.empty:
        return frame[cols]
    frame = frame.reset_index().sort_values(["reviewed_at", "index"])
    latest = frame.drop_duplicates("user_id", keep="last")
    return latest[cols].reset_index(drop=True)


def with_verdict_positives(
    labels: pd.DataFrame, reasons: tuple[str, ...], path: Path | None = None
) -> pd.DataFrame:
    """``labels`` (user_id, labeled_at, label) plus the accounts reviewers judged violating for
    one of ``reasons``, labeled at their verdict's time (how training reads verdicts)."""
    v = verdict_labels(path)
    v = v[v["is_violating"].astype(bool) & v["reason"].isin(reasons)]
    v = v[~v["user_id"].isin(labels["user_id"])]
    if v.empty:
        return labels
    extra = pd.DataFrame(
        {"user_id": v["user_id"].astype("int64"), "labeled_at": v["reviewed_at"], "label": 1}
    )
    log.info("labels: %d accounts added from reviewers' verdicts", len(extra))
    return pd.concat([labels, extra], ignore_index=True)


def check_user(user_id: int, known: pd.Series) -> None:
    if int(user_id) not in set(known.astype("int64")):
        raise UserError(
            f"account {user_id} is not in the lake's users: check the id, or ingest the raw "
            "folder that holds it (vigil ingest --raw DIR)."
        )
