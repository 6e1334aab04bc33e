"""Settings and paths. The only module that reads os.environ.

Everything produced at run time lives under one data root, ``VIGIL_HOME`` (default ``./data``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Paths:
    """Every location under the data root. Build with :func:`paths`."""

    home: Path

    @property
    def raw(self) -> Path:  # default simulator output
        return self.home / "raw"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def lake_events(self) -> Path:
        return self.lake / "events"

    @property
    def lake_users(self) -> Path:
        return self.lake / "users"

    @property
    def lake_labels(self) -> Path:
        return self.lake / "labels"

    @property
    def lake_enforcement(self) -> Path:  # account suspensions (issue 21)
        return self.lake / "enforcement"

    @property
    def lake_devices(self) -> Path:  # login fingerprints (issue 21)
        return self.lake / "devices"

    @property
    def lake_decisions(self) -> Path:  # the scoring service's decision log, ingested (issue 22)
        return self.lake / "decisions"

    @property
    def lake_appeal_labels(self) -> Path:  # appeal verdicts as labels, ingested (issue 22)
        return self.lake / "appeal_labels"

    @property
    def lake_rule_effects(self) -> Path:  # the rules engine's effects log, ingested (issue 21)
        return self.lake / "rule_effects"

    @property
    def lake_account_verdicts(self) -> Path:  # account reviewers' verdicts, ingested (issue 21)
        return self.lake / "account_verdicts"

    @property
    def quarantine(self) -> Path:
        return self.lake / "quarantine"

    @property
    def ingest_state(self) -> Path:
        return self.lake / "_state"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse" / "vigil.duckdb"

    @property
    def duckdb_temp(self) -> Path:
        return self.home / "tmp" / "duckdb"

    @property
    def features(self) -> Path:  # Parquet exports of the feature marts, read by Feast
        return self.home / "features"

    @property
    def feast(self) -> Path:  # registry + online store (sqlite)
        return self.home / "feast"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def embeddings_cache(self) -> Path:
        return self.home / "cache" / "embeddings"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def stream_state(self) -> Path:
        return self.home / "stream"

    @property
    def monitor(self) -> Path:
        return self.home / "monitor"

    @property
    def decision_log(self) -> Path:  # written by `vigil serve`: dt=YYYY-MM-DD/decisions-<pid>.jsonl
        return self.home / "decisions"

    @property
    def appeals(self) -> Path:  # appeals.sqlite and the verdicts' labels.jsonl
        return self.home / "appeals"

    @property
    def review(self) -> Path:  # review requests, moderators' verdict files, rejected verdicts
        return self.home / "review"


def home() -> Path:
    """The data root: ``$VIGIL_HOME`` or ``./data``, absolute."""
    return Path(_env("VIGIL_HOME", str(Path.cwd() / "data"))).expanduser().resolve()


def paths() -> Paths:
    return Paths(home())


@contextmanager
def using_home(root: str | Path | None) -> Iterator[Path]:
    """Run a block with ``root`` as the data root (``VIGIL_HOME``), for this process and the
    subprocesses it starts, then restore the previous one; None leaves it unchanged. For a task
    whose world has its own data root (``vigil_accounts``'s ``data_root`` param). Not for
    threads: the environment is the process's."""
    if root is None:
        yield home()
        return
    old = os.environ.get("VIGIL_HOME")
    os.environ["VIGIL_HOME"] = str(Path(root).expanduser().resolve())
    try:
        yield home()
    finally:
        if old is None:
            os.environ.pop("VIGIL_HOME", None)
        else:
            os.environ["VIGIL_HOME"] = old


def duckdb_memory_limit() -> str:
    """DuckDB memory cap (``VIGIL_DUCKDB_MEMORY_LIMIT``, e.g. ``4GB``): beyond it, DuckDB spills."""
    return _env("VIGIL_DUCKDB_MEMORY_LIMIT", "4GB")


def duckdb_threads() -> int:
    return int(_env("VIGIL_DUCKDB_THREADS", str(os.cpu_count() or 2)))


def online_store() -> str:
    """Feast online store: ``sqlite`` (embedded default) or ``redis`` (production profile)."""
    value = _env("VIGIL_ONLINE_STORE", "sqlite").lower()
    if value not in ("sqlite", "redis"):
        raise ValueError(f"VIGIL_ONLINE_STORE={value!r} is not supported: use 'sqlite' or 'redis'.")
    return value


def redis_url() -> str:
    return _env("VIGIL_REDIS_URL", "127.0.0.1:6379")


def feast_project() -> str:
    """Feast project name (``VIGIL_FEAST_PROJECT``); it namespaces the online store's keys."""
    value = _env("VIGIL_FEAST_PROJECT", "vigil")
    if not value.replace("_", "").isalnum():
        raise ValueError(f"VIGIL_FEAST_PROJECT={value!r}: use letters, digits and underscores.")
    return value


def features_token() -> str | None:
    """Bearer token for the feature server's write endpoints (``VIGIL_FEATURES_TOKEN``).

    Unset: ``vigil features serve`` serves reads only, on loopback.
    """
    return _env("VIGIL_FEATURES_TOKEN", "").strip() or None


def serve_token() -> str | None:
    """Bearer token for ``vigil serve`` (``VIGIL_SERVE_TOKEN``): needed to bind beyond loopback;
    when set, every endpoint but ``/healthz`` asks for it."""
    return _env("VIGIL_SERVE_TOKEN", "").strip() or None


def serve_spare_heavy(default_floor: float | None = None) -> tuple[int, float] | None:
    """``vigil serve``'s spare heavy calls (issue 22, off without a budget): the daily heavy-call
    budget (``VIGIL_SERVE_HEAVY_BUDGET``, whole calls a UTC day) and the floor F
    (``VIGIL_SERVE_SPARE_FLOOR``, in (0, 1); ``default_floor`` when unset); (budget, floor) when
    the budget is set, else None."""
    budget = _env("VIGIL_SERVE_HEAVY_BUDGET", "").strip()
    floor = _env("VIGIL_SERVE_SPARE_FLOOR", "").strip()
    if not budget and not floor:
        return None
    if budget and not floor and default_floor is not None:
        floor = str(default_floor)
    if not budget or not floor:
        raise ValueError(
            "spare heavy calls need VIGIL_SERVE_HEAVY_BUDGET (calls a day, e.g. 216) and "
            "VIGIL_SERVE_SPARE_FLOOR (e.g. 0.5): set the budget, or neither (off)."
        )
    if not budget.isdigit() or int(budget) < 1:
        raise ValueError(f"VIGIL_SERVE_HEAVY_BUDGET={budget!r}: give a whole number >= 1.")
    try:
        value = float(floor)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise ValueError(f"VIGIL_SERVE_SPARE_FLOOR={floor!r}: give a number between 0 and 1.")
    return int(budget), value


def airflow_db() -> str:
    """Airflow metadata DB: ``sqlite`` (default, under the data root) or ``postgres``."""
    value = _env("VIGIL_AIRFLOW_DB", "sqlite").lower()
    if value not in ("sqlite", "postgres"):
        raise ValueError(
            f"VIGIL_AIRFLOW_DB={value!r} is not supported: use 'sqlite' or 'postgres'."
        )
    return value


def postgres_url() -> str:
    return _env("VIGIL_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/vigil_airflow")


def quarantine_rate_threshold() -> float:
    """Largest acceptable share of quarantined rows in one ingest (an incident beyond it)."""
    return float(_env("VIGIL_MAX_QUARANTINE_RATE", "0.05"))


def orphan_label_rate_threshold() -> float:
    """Largest acceptable share of appeal labels, decided before the lake's last event, whose
    post is not in the lake (``VIGIL_MAX_ORPHAN_LABEL_RATE``; docs/quality.md)."""
    value = float(_env("VIGIL_MAX_ORPHAN_LABEL_RATE", "0.05"))
    if not 0 <= value <= 1:
        raise ValueError(f"VIGIL_MAX_ORPHAN_LABEL_RATE={value} must be in [0, 1].")
    return value


def row_count_tolerance() -> float:
    """Volume check of the quality gates: a table's row count may differ from the previous
    accepted run's by at most this factor either way (``VIGIL_ROW_COUNT_TOLERANCE``)."""
    value = float(_env("VIGIL_ROW_COUNT_TOLERANCE", "3.0"))
    if value <= 1:
        raise ValueError(f"VIGIL_ROW_COUNT_TOLERANCE={value} must be > 1 (a factor, e.g. 3).")
    return value


def max_event_age_days() -> float:
    """How far before its raw file's hour an event may be stamped and still be loaded
    (``VIGIL_MAX_EVENT_AGE_DAYS``); older events are quarantined as far-past timestamps."""
    value = float(_env("VIGIL_MAX_EVENT_AGE_DAYS", "7"))
    if not value > 0:
        raise ValueError(f"VIGIL_MAX_EVENT_AGE_DAYS={value} must be > 0 (days, e.g. 7).")
    return value


def stream_source() -> str:
    """Where ``vigil stream`` reads events: ``files`` (tail the raw dir, default) or ``redis``."""
    value = _env("VIGIL_STREAM_SOURCE", "files").lower()
    if value not in ("files", "redis"):
        raise ValueError(f"VIGIL_STREAM_SOURCE={value!r} is not supported: use 'files' or 'redis'.")
    return value


def rules_counters() -> str:
    """Where ``vigil stream --rules`` keeps its windowed counters: ``memory`` (default) or
    ``redis`` (production profile, at ``VIGIL_REDIS_URL``)."""
    value = _env("VIGIL_RULES_COUNTERS", "memory").lower()
    if value not in ("memory", "redis"):
        raise ValueError(
            f"VIGIL_RULES_COUNTERS={value!r} is not supported: use 'memory' or 'redis'."
        )
    return value


def rules_redis_flush_events() -> int:
    """With the rules' counters in Redis: events between two writes to Redis (each checkpoint
    writes too; ``VIGIL_RULES_REDIS_FLUSH_EVENTS``, default 20,000)."""
    raw = _env("VIGIL_RULES_REDIS_FLUSH_EVENTS", "20000").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"VIGIL_RULES_REDIS_FLUSH_EVENTS={raw!r}: give a whole number of events >= 1 "
            "(default 20000)."
        )
    return int(raw)


def stream_lateness_hours() -> float:
    """How late (behind the newest event seen) an event may arrive and still be applied."""
    return float(_env("VIGIL_STREAM_LATENESS_HOURS", "48"))


def stream_memory_budget_mb() -> int:
    """Memory for the stream processor's user state; beyond it, user records spill to SQLite."""
    return int(_env("VIGIL_STREAM_MEMORY_BUDGET_MB", "2048"))


def review_answerer() -> str | None:
    """``module:function`` that answers review requests in-process (``VIGIL_REVIEW_ANSWERER``).

    Unset (the default): moderators answer by dropping verdict files (docs/contracts.md). The demo
    pipeline and the tests set it to the simulated moderators.
    """
    value = _env("VIGIL_REVIEW_ANSWERER", "").strip()
    if value and (value.count(":") != 1 or not all(value.split(":"))):
        raise ValueError(
            f"VIGIL_REVIEW_ANSWERER={value!r}: use 'module:function', e.g. reviews.bridge:answer."
        )
    return value or None


def env_snapshot() -> dict[str, str]:
    """Environment for subprocesses (dbt, feast, airflow): inherits ours plus the data root."""
    env = dict(os.environ)
    env["VIGIL_HOME"] = str(home())
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def schedule_db() -> str:
    """Store of ``vigil schedule`` (``VIGIL_SCHEDULE_DB``): a ``postgresql://`` URL, or empty for
    the embedded SQLite file ``<data root>/schedule/schedule.sqlite3``."""
    value = _env("VIGIL_SCHEDULE_DB", "").strip()
    if value and not value.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ValueError(
            f"VIGIL_SCHEDULE_DB={value!r} is not supported: use postgresql://user@host:port/db, "
            "sqlite:///PATH, or leave it unset for SQLite under the data root."
        )
    return value or f"sqlite:///{home() / 'schedule' / 'schedule.sqlite3'}"


def schedule_limits() -> tuple[int, int]:
    """Per-user limits of ``vigil schedule``: pending posts (``VIGIL_SCHEDULE_MAX_PENDING``) and
    posts per UTC day of ``scheduled_at`` (``VIGIL_SCHEDULE_MAX_PER_DAY``)."""
    pending = int(_env("VIGIL_SCHEDULE_MAX_PENDING", "500"))
    per_day = int(_env("VIGIL_SCHEDULE_MAX_PER_DAY", "100"))
    if pending < 1 or per_day < 1:
        raise ValueError("VIGIL_SCHEDULE_MAX_PENDING and VIGIL_SCHEDULE_MAX_PER_DAY must be >= 1.")
    return pending, per_day
