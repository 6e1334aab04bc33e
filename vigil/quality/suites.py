"""A suite made concrete for one run: ``${name}`` placeholders filled (a whole-value placeholder
keeps its type), generic checks expanded from the table's columns, the volume bounds taken from
the previous accepted run."""

from __future__ import annotations

import datetime as dt
import math
import re

from vigil.errors import UserError
from vigil.quality.history import previous_rows
from vigil.quality.results import sql_text
from vigil.quality.tables import Table

# A constant feature is an incident on a real table but normal on a toy sample (a 300-user,
# 3-day simulation has no blocks at all): below this many rows it is a warning.
CONSTANT_FEATURE_MIN_ROWS = 1000
_TOKEN = re.compile(r"\$\{(\w+)\}")
_NUMERIC_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN", "REAL",
)  # fmt: skip


def _substitute(value, params: dict):
    if isinstance(value, str):
        whole = _TOKEN.fullmatch(value)
        if whole:
            return params[whole.group(1)]
        return _TOKEN.sub(lambda m: sql_text(params[m.group(1)]), value)
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
    params = {**base, **meta.get("params", {})}
    previous = previous_rows(history, f"{stage}/{t.name}", day)
    tolerance = params["row_count_tolerance"]
    out = []
    for exp in [*t.suite.get("expectations", []), *_generic(meta, t.columns, t.rows)]:
        if exp.get("meta", {}).get("check") == "volume_vs_previous_run":
            if not previous or not previous["rows"]:
                continue  # first run: nothing to compare with
            p = previous["rows"]
            params = {
                **params,
                "row_count_min": math.floor(p / tolerance),
                "row_count_max": math.ceil(p * tolerance),
            }
            exp = {**exp, "meta": {**exp.get("meta", {}), "previous": previous}}
        try:
            out.append(_substitute(exp, params))
        except KeyError as exc:
            raise UserError(
                f"suite {t.suite['name']}: unknown placeholder ${{{exc.args[0]}}}."
            ) from None
    return out
