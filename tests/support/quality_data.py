"""Small, hand-made tables that follow docs/contracts.md sections 2-3 (good data for the gates).

Independent of the ingest and dbt code: the tests corrupt these tables and check the gates notice.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from contract_doc import actions

from vigil.contracts import (
    account_verdict_schema,
    appeal_label_schema,
    decision_schema,
    rule_effect_schema,
)

DAY = dt.date(2026, 10, 5)
PREV_DAY = DAY - dt.timedelta(days=1)
UTC = dt.UTC
ACTIONS = actions()
EVENTS_PER_DAY = 48


def ts(day: dt.date, hour: int = 0, minute: int = 0) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=UTC))


def events(day: dt.date, n: int = EVENTS_PER_DAY, start_id: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(n):
        action = ACTIONS[i % len(ACTIONS)]
        hour, minute = (i * 7) % 24, (i * 13) % 60
        on_post = action in ("post", "reply", "view", "like", "share", "dislike", "report")
        on_user = action in ("block", "mute", "follow", "unfollow")
        rows.append(
            {
                "event_id": f"{day:%Y%m%d}-{start_id + i:06d}",
                "event_ts": ts(day, hour, minute),
                "user_id": 1 + i % 8,
                "action": action,
                "post_id": 100 + i % 6 if on_post else None,
                "target_user_id": 1 + (i + 3) % 8 if (on_user or on_post) else None,
                "text": f"text {i}" if action in ("post", "reply") else None,
                "country": "DE" if action == "login" else None,
                "source_file": f"events/dt={day}/hour={hour:02d}.jsonl",
                "source_line": 1 + i,
            }
        )
    frame = pd.DataFrame(rows)
    frame["event_ts"] = frame["event_ts"].astype("datetime64[us, UTC]")
    for col in ("post_id", "target_user_id"):
        frame[col] = frame[col].astype("Int64")
    frame["source_line"] = frame["source_line"].astype("int64")
    frame["user_id"] = frame["user_id"].astype("int64")
    return frame.sort_values(["user_id", "event_ts"]).reset_index(drop=True)


def write_lake(home: Path, day_events: dict[dt.date, pd.DataFrame], quarantined: int = 1) -> None:
    lake = home / "lake"
    for day, frame in day_events.items():
        part = lake / "events" / f"dt={day}"
        part.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(part / "events.parquet", index=False)
    # the scoring service's and the rules' logs: empty, as `vigil ingest` writes them when no
    # service, rule or reviewer ran
    for name, schema in (
        ("decisions", decision_schema()),
        ("appeal_labels", appeal_label_schema()),
        ("rule_effects", rule_effect_schema()),
        ("account_verdicts", account_verdict_schema()),
    ):
        (lake / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(schema.empty_table(), lake / name / f"{name}.parquet")
    q = pd.DataFrame(
        {
            "stream": ["events"] * quarantined,
            "raw_dir": [str(home / "raw")] * quarantined,
            "source_file": [f"events/dt={DAY}/hour=03.jsonl"] * quarantined,
            "line_number": list(range(1, quarantined + 1)),
            "reason": ["invalid JSON"] * quarantined,
            "raw": ["{not json"] * quarantined,
        }
    )
    (lake / "quarantine").mkdir(parents=True, exist_ok=True)
    q.to_parquet(lake / "quarantine" / "quarantine.parquet", index=False)
    state = lake / "_state"
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "ingest_log.jsonl", "w") as f:
        for day, frame in day_events.items():
            q_day = quarantined if day == DAY else 0
            n = len(frame)
            f.write(
                json.dumps(
                    {
                        "day": str(day),
                        "read": n + q_day,
                        "loaded": n,
                        "quarantined": q_day,
                        "duplicates": 0,
                    }
                )
                + "\n"
            )


def marts() -> dict[str, pd.DataFrame]:
    """Feature marts and friends for days PREV_DAY and DAY (event_timestamp = day + 1 00:00)."""
    snapshots = [ts(DAY), ts(DAY + dt.timedelta(days=1))]
    ua, cc = [], []
    for s, snap in enumerate(snapshots):
        for u in range(1, 9):
            uam_30d = 40 * u + 10 * s
            ua.append(
                {
                    "user_id": u,
                    "event_timestamp": snap,
                    "uam_30d": uam_30d,
                    "active_days_30d": min(30, u + s),
                    "uam_1d": 5 * u,
                }
            )
            row = {"user_id": u, "event_timestamp": snap}
            for m, k in (
                ("reports", 1),
                ("dislikes", 2),
                ("blocks", 3),
                ("mutes", 1),
                ("shares", 4),
            ):
                row[f"{m}_received_7d"] = (u * k) % 5 + s
                row[f"{m}_received_30d"] = (u * k) % 5 + 3 + s
            row.update(
                views_received_30d=100 * u + s,
                posts_authored_30d=u % 4 + s,
                posts_authored_total=u % 4 + 2 * s,
                account_age_days=30 + u + s,
                login_countries_30d=1 + u % 2,
                removals_total=u % 3 + s,
            )
            row["report_rate_bayes"] = (row["reports_received_30d"] + 1) / (
                row["views_received_30d"] + 100
            )
            row["dislike_rate_bayes"] = (row["dislikes_received_30d"] + 1) / (
                row["views_received_30d"] + 100
            )
            row["block_rate_bayes"] = (row["blocks_received_30d"] + 1) / (
                row["views_received_30d"] + 100
            )
            cc.append(row)
    pb = []
    for p in range(100, 106):
        created = ts(DAY, 18 + p % 3)
        for h in range(1, 7):
            snap = created + pd.Timedelta(hours=h)
            if snap > snapshots[-1]:
                continue
            views = 10 * h + p % 7
            counts = {
                "views": views,
                "likes": 2 * h,
                "shares": h // 2,
                "replies": h // 3,
                "dislikes": h % 2 + h // 2,
                "reports": h // 4,
                "blocks": h // 5,
                "negative_replies": h // 6,
            }
            pb.append(
                {
                    "post_id": p,
                    "event_timestamp": snap,
                    "author_id": 1 + p % 8,
                    "post_age_hours": float(h),
                    **counts,
                    "negative_reactions_per_view": (counts["dislikes"] + 1) / (views + 100),
                    "reports_per_view": (counts["reports"] + 1) / (views + 100),
                    "shares_per_view": (counts["shares"] + 1) / (views + 100),
                }
            )
    posts = pd.DataFrame(
        {
            "post_id": range(100, 106),
            "author_id": [1 + p % 8 for p in range(100, 106)],
            "created_at": [ts(DAY, 18 + p % 3) for p in range(100, 106)],
            "text": [f"post {p}" for p in range(100, 106)],
        }
    )
    labels = pd.DataFrame(
        {
            "post_id": range(100, 106),
            "is_harmful": [True, False, False, True, False, False],
            "is_harassment": [True, False, False, False, False, False],
            "is_hate": [False] * 6,
            "is_spam": [False, False, False, True, False, False],
            "is_violent_threat": [False] * 6,
            "labeled_at": [ts(DAY, 23)] * 6,
            "queue": ["reported", "random"] * 3,
            "sampling_weight": [1.0, 4.0] * 3,
        }
    )
    uam = pd.DataFrame(
        {"user_id": range(1, 9), "as_of": [DAY] * 8, "uam": [40 * u for u in range(1, 9)]}
    )
    hist = pd.DataFrame(
        {"lower": [0, 60, 120, 240], "upper": [60, 120, 240, 480], "users": [1, 1, 2, 4]}
    )
    out = {
        "user_activity": pd.DataFrame(ua),
        "creator_context": pd.DataFrame(cc),
        "post_behavior": pd.DataFrame(pb),
        "posts": posts,
        "post_labels": labels,
        "user_active_minutes": uam,
        "uam_histogram": hist,
    }
    for frame in out.values():
        for col in ("event_timestamp", "created_at", "labeled_at"):
            if col in frame:
                frame[col] = frame[col].astype("datetime64[us, UTC]")
    return out


# dbt's staging models of the service logs (dbt/models/staging/lake), empty: no service ran
STG_DECISIONS = {
    "decision_id": "string",
    "post_id": "Int64",
    "author_id": "Int64",
    "decided_at": "datetime64[us, UTC]",
    "model_id": "string",
    "student_score": "float64",
    "is_routed_to_heavy": "boolean",
    "probability": "float64",
    "decision": "string",
    "decision_trigger": "string",
    "is_shadow": "boolean",
    "content_hash": "string",
    "predicted_harm_type": "string",
    "author_age_bucket": "string",
    "removal_path": "string",
    "head_score": "float64",
    "source_file": "string",
    "source_line": "int64",
}
# dbt's staging models of the rules' logs, empty: no rule fired, no reviewer judged an account
STG_RULE_EFFECTS = {
    "effect_id": "string",
    "effect_seq": "Int64",
    "rule_name": "string",
    "rule_version": "Int64",
    "rule_mode": "string",
    "is_shadow": "boolean",
    "effect": "string",
    "entity_type": "string",
    "entity_id": "string",
    "label": "string",
    "fired_at": "datetime64[us, UTC]",
    "expires_at": "datetime64[us, UTC]",
    "event_id": "string",
    "source_file": "string",
    "source_line": "Int64",
}
STG_ACCOUNT_VERDICTS = {
    "verdict_id": "string",
    "user_id": "Int64",
    "is_violating": "boolean",
    "verdict_reason": "string",
    "verdict_label": "string",
    "reviewer": "string",
    "reviewed_at": "datetime64[us, UTC]",
    "source_file": "string",
    "source_line": "Int64",
}
STG_APPEAL_LABELS = {
    "appeal_id": "int64",
    "post_id": "int64",
    "is_harmful": "boolean",
    "harm_types": "string",
    "labeled_at": "datetime64[us, UTC]",
    "label_queue": "string",
    "sampling_weight": "float64",
    "model_id": "string",
}


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})


def staging(day_events: dict[dt.date, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    ev = pd.concat(day_events.values(), ignore_index=True)
    stg = pd.DataFrame(
        {
            "event_id": ev["event_id"],
            "event_at": ev["event_ts"],
            "event_date": ev["event_ts"].dt.date,
            "user_id": ev["user_id"],
            "action": ev["action"],
            "post_id": ev["post_id"],
            "target_user_id": ev["target_user_id"],
            "event_text": ev["text"],
            "country_code": ev["country"],
            "source_file": ev["source_file"],
            "source_line": ev["source_line"],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": range(1, 9),
            "created_at": [ts(DAY - dt.timedelta(days=40 - u)) for u in range(1, 9)],
            "home_country_code": ["DE", "FR"] * 4,
            "handle": [f"u{u}" for u in range(1, 9)],
        }
    )
    users["created_at"] = users["created_at"].astype("datetime64[us, UTC]")
    labels = pd.DataFrame(
        {
            "post_id": range(100, 106),
            "is_harmful": [True, False, False, True, False, False],
            "harm_types": ["harassment", "", "", "spam", "", ""],
            "labeled_at": [ts(DAY, 23)] * 6,
            "label_queue": ["reported", "random"] * 3,
            "sampling_weight": [1.0, 4.0] * 3,
        }
    )
    labels["labeled_at"] = labels["labeled_at"].astype("datetime64[us, UTC]")
    parts = stg.groupby("event_date").size().rename("row_count").reset_index()
    return {
        "stg_lake__decisions": _empty(STG_DECISIONS),
        "stg_lake__appeal_labels": _empty(STG_APPEAL_LABELS),
        "stg_lake__rule_effects": _empty(STG_RULE_EFFECTS),
        "stg_lake__account_verdicts": _empty(STG_ACCOUNT_VERDICTS),
        "stg_lake__events": stg,
        "stg_lake__event_activity": stg[["user_id", "event_at", "event_date"]],
        "stg_lake__event_partitions": parts,
        "stg_lake__users": users,
        "stg_lake__labels": labels,
    }


def write_warehouse(home: Path, tables: dict[str, pd.DataFrame]) -> Path:
    path = home / "warehouse" / "vigil.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"create or replace table {name} as select * from frame")
            con.unregister("frame")
    finally:
        con.close()
    return path


def write_features(home: Path, tables: dict[str, pd.DataFrame]) -> None:
    (home / "features").mkdir(parents=True, exist_ok=True)
    for name in ("user_activity", "creator_context", "post_behavior"):
        frame = tables[name].copy()
        # Feast's created timestamp: when the row was written
        frame["created"] = frame["event_timestamp"]
        frame.to_parquet(home / "features" / f"{name}.parquet", index=False)
    # the ranking feature marts (issue 23) as dbt exports them on a world without topics: empty
    empty = {
        "post_topics": {"post_id": "int64", "topic_id": "int64", "topic_weight": "float64",
                        "is_main_topic": "int64", "topics_version": "object"},
        "user_topic_interest": {"user_id": "int64", "topic_id": "int64", "interest": "float64",
                                "interest_share": "float64"},
        "user_author_affinity": {"user_id": "int64", "author_id": "int64", "affinity": "float64"},
        "topic_velocity": {"topic_id": "int64", "posts_last_hour": "int64",
                           "posts_prior_24h": "int64", "velocity": "float64"},
    }  # fmt: skip
    for name, columns in empty.items():
        frame = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
        frame["event_timestamp"] = pd.Series(dtype="datetime64[us, UTC]")
        frame.to_parquet(home / "features" / f"{name}.parquet", index=False)


def training_set() -> pd.DataFrame:
    rows = []
    for i, p in enumerate(range(100, 106)):
        for k, offset in enumerate((0.0, 1.0, 6.0)):
            created = ts(DAY, 18 + p % 3)
            rows.append(
                {
                    "example_id": 3 * i + k,
                    "post_id": p,
                    "author_id": 1 + p % 8,
                    "user_id": 1 + p % 8,
                    "event_timestamp": created + pd.Timedelta(hours=offset),
                    "created_at": created,
                    "offset_hours": offset,
                    "views": None if offset == 0 else 10 * offset + i,
                    "reports_received_30d": float(i % 3),
                    "is_harmful": p in (100, 103),
                    "split": ["train", "val", "test"][i % 3],
                    "text": f"post {p}",
                    "labeled_at": ts(DAY + dt.timedelta(days=1)),
                }
            )
    frame = pd.DataFrame(rows)
    for col in ("event_timestamp", "created_at", "labeled_at"):
        frame[col] = frame[col].astype("datetime64[us, UTC]")
    return frame


def build_all(home: Path) -> dict:
    """Every stage's good data under ``home``; returns the frames for corruption."""
    day_events = {PREV_DAY: events(PREV_DAY), DAY: events(DAY)}
    write_lake(home, day_events)
    m = marts()
    s = staging(day_events)
    write_warehouse(home, {**s, **m})
    write_features(home, m)
    return {"events": day_events, "marts": m, "staging": s}
