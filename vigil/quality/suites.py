"""A suite made concrete for one run: ``${name}`` placeholders filled (a whole-value placeholder
keeps its type), generic checks expanded from the table's columns, the volume bounds taken from
the previous accepted run."""

from __future__ import annotations

import datetime as dt
import math
import re

from vigil import contracts
from vigil.errors import UserError
from vigil.quality.history import previous_rows
from vigil.quality.results import sql_text
from vigil.quality.tables import Table

# A constant feature is an incident on a real table but normal on a toy sample (a 300-user,
# 3-day simulation has no blocks at all): below this many rows it is a warning.
CONSTANT_FEATURE_MIN_ROWS = 1000
_TOKEN = re.compile(r"\$\{(\w+)\}")
# Checks against the previous accepted run's row count: within a factor either way (a daily
# table), or never fewer rows (a cumulative log: decisions, appeal labels). Left out on a
# table's first run.
VOLUME_CHECKS = ("volume_vs_previous_run", "volume_never_decreases")


def contract_params() -> dict:
    """Placeholders for the vocabularies and column lists of ``vigil.contracts`` (defined once
    there; a suite names them, e.g. ``"value_set": "${decisions}"``). Inside SQL a list renders
    as a DuckDB list literal (``['allow', 'remove']``)."""

    def names(columns):
        return [name for name, _ in columns]

    return {
        "streams": list(contracts.STREAMS),
        "decisions": sorted(contracts.DECISIONS),
        "harm_types": list(contracts.HARM_TYPES),
        # a decision's harm_type: a harm type or "unknown" (vigil.lake.validation.check_decision)
        "decision_harm_types": [*contracts.HARM_TYPES, "unknown"],
        "decision_paths": sorted(contracts.DECISION_PATHS),
        "appeal_queues": [contracts.APPEAL_QUEUE],
        "max_trigger_chars": contracts.MAX_TRIGGER_CHARS,
        "decision_columns": names(contracts.DECISION_COLUMNS),
        "appeal_label_columns": names(contracts.APPEAL_LABEL_COLUMNS),
        # the rules' effects log and the account verdicts (issue 21)
        "rule_modes": sorted(contracts.RULE_MODES),
        "rule_effects": sorted(contracts.RULE_EFFECTS),
        "rule_entities": sorted(contracts.RULE_ENTITIES),
        "throttled_label": contracts.THROTTLED_LABEL,
        "suspended_label": contracts.SUSPENDED_LABEL,
        "cleared_label": contracts.CLEARED_LABEL,
        "verdict_labels": list(contracts.VERDICT_LABELS),
        "max_rule_name_chars": contracts.MAX_RULE_NAME_CHARS,
        "rule_effect_columns": names(contracts.RULE_EFFECT_COLUMNS),
        "account_verdict_columns": names(contracts.ACCOUNT_VERDICT_COLUMNS),
    }


def _in_sql(value) -> str:
    """A placeholder inside a string: a list as a DuckDB list literal of quoted items, anything
    else as text."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_quoted(v) for v in value) + "]"
    return sql_text(value)


def _quoted(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return sql_text(value)


_NUMERIC_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN", "REAL",
)  # fmt: skip


def _substitute(value, params: dict):
    if isinstance(value, str):
        whole = _TOKEN.fullmatch(value)
        if whole:
            return params[whole.group(1)]
        return _TOKEN.sub(lambda m: _in_sql(params[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def _generic(meta: dict, columns: dict[str, str], rows: int | None) -> list[dict]:
    out = []
    generic = meta.get("generic", [])
    not_features = set(meta.get("keys", [])) | set(meta.get("not_features", []))
    if "feature_not_null_or_constant" in generic:
        constant_severity = "critical" if (rows or 0) >= CONSTANT_FEATURE_MIN_ROWS else "warning"
        for col, typ in columns.items():
            if col in not_features or not typ.upper().startswith(_NUMERIC_TYPES):
                continue
            out.append(
                {
                    "type": "expect_column_unique_value_count_to_be_between",
                    "kwargs": {"column": col, "min_value": 1, "max_value": None},
                    "meta": {"check": "feature_not_entirely_null"},
                    "description": f"{col} has at least one value",
                }
            )
            out.append(
                {
                    "type": "expect_column_unique_value_count_to_be_between",
                    "kwargs": {"column": col, "min_value": 2, "max_value": None},
                    "meta": {"check": "feature_not_constant"},
                    "severity": constant_severity,
                    "description": f"{col} takes at least 2 distinct values",
                }
            )
    if "timestamps_not_after_event_timestamp" in generic and "event_timestamp" in columns:
        skip = {"event_timestamp", *meta.get("timestamp_exclude", [])}
        for col, typ in columns.items():
            if col in skip or not typ.upper().startswith("TIMESTAMP"):
                continue
            out.append(
                {
                    "type": "expect_column_pair_values_a_to_be_greater_than_b",
                    "kwargs": {
                        "column_A": "event_timestamp",
                        "column_B": col,
                        "or_equal": True,
                        "ignore_row_if": "either_value_is_missing",
                    },
                    "meta": {"check": "no_timestamp_after_event_timestamp"},
                    "description": f"{col} <= event_timestamp (no value from the row's future)",
                }
            )
    return out


def expectations_for(stage: str, t: Table, base: dict, history: dict, day: dt.date) -> list[dict]:
    meta = t.suite.get("meta", {}).get("vigil", {})
    params = {**contract_params(), **base, **meta.get("params", {})}
    previous = previous_rows(history, f"{stage}/{t.name}", day)
    tolerance = params["row_count_tolerance"]
    out = []
    for exp in [*t.suite.get("expectations", []), *_generic(meta, t.columns, t.rows)]:
        if exp.get("meta", {}).get("check") in VOLUME_CHECKS:
            if not previous or not previous["rows"]:
                continue  # first run: nothing to compare with
            p = previous["rows"]
            params = {
                **params,
                "row_count_min": math.floor(p / tolerance),
                "row_count_max": math.ceil(p * tolerance),
                "row_count_previous": p,
            }
            exp = {**exp, "meta": {**exp.get("meta", {}), "previous": previous}}
        try:
            out.append(_substitute(exp, params))
        except KeyError as exc:
            raise UserError(
                f"suite {t.suite['name']}: unknown placeholder ${{{exc.args[0]}}}."
            ) from None
    return out
