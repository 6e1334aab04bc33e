"""What a gate found: the result types, and GX validation results turned into
:class:`CheckResult` rows with one readable message each."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import UserError

SAMPLE_SIZE = 10  # unexpected values kept per failed expectation


class GateFailed(UserError):
    """A quality gate found critical failures; ``.result`` holds the :class:`GateResult`."""

    def __init__(self, result: GateResult):
        self.result = result
        shown = "; ".join(r.message for r in result.failures[:3])
        more = len(result.failures) - 3
        super().__init__(
            f"quality gate '{result.stage}' failed for {result.run_date}: "
            f"{len(result.failures)} check(s) failed: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + f". Fix the data (or the stage that produced it) and re-run; report: {result.report_path}"
        )


@dataclass
class CheckResult:
    """One expectation's outcome on one table."""

    table: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    check: str  # what it guards, e.g. non_negative, cumulative_never_decreases
    column: str | None
    success: bool
    severity: str  # critical fails the gate; warning is reported only
    unexpected_count: int | None
    unexpected_sample: list = field(default_factory=list)
    observed_value: Any = None
    message: str = ""


@dataclass
class GateResult:
    stage: str
    run_date: str
    success: bool
    results: list[CheckResult]
    tables: dict[str, dict] = field(default_factory=dict)  # table -> rows, location, note
    report_path: str | None = None  # the HTML report; the JSON sits next to it
    json_path: str | None = None
    seconds: float = 0.0
    summary: str = ""

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity != "critical"]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=json_default))


def json_default(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def plain(value):
    return json.loads(json.dumps(value, default=json_default))


def first_line(exc) -> str:
    text = str(exc).strip()
    # GX wraps driver errors; the useful part is the DuckDB message (e.g. Binder Error: ...)
    for marker in (
        "Binder Error",
        "Catalog Error",
        "Conversion Error",
        "Invalid Input Error",
        "IO Error",
    ):
        if marker in text:
            text = text[text.index(marker) :]
            break
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _column_of(kwargs: dict, meta: dict) -> str | None:
    if kwargs.get("column"):
        return kwargs["column"]
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return meta.get("column")


def _exception_message(info: dict) -> str | None:
    if not info:
        return None
    items = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    for item in items:
        if item.get("raised_exception") or item.get("exception_message"):
            return first_line(item.get("exception_message") or "exception")
    return None


def _expected_range(kwargs: dict) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    return f"[{'-inf' if lo is None else sql_text(lo)}, {'+inf' if hi is None else sql_text(hi)}]"


def _expected_text(kind: str, kwargs: dict) -> str:
    if kind == "expect_column_values_to_be_between":
        return f" outside {_expected_range(kwargs)}"
    if kind == "expect_column_values_to_be_in_set":
        values = list(kwargs.get("value_set") or [])
        return f" not in {values[:12]}{'...' if len(values) > 12 else ''}"
    if kind == "expect_column_value_lengths_to_be_between":
        return f" with length outside {_expected_range(kwargs)}"
    if kind == "expect_column_values_to_not_be_null" and kwargs.get("mostly", 1) < 1:
        return f" null (at most {1 - kwargs['mostly']:.0%} allowed)"
    return ""


def check_result(table: str, res) -> CheckResult:
    cfg = res.expectation_config
    kwargs, meta = dict(cfg.kwargs), dict(cfg.meta or {})
    kind = cfg.type
    check = meta.get("check", kind)
    column = _column_of(kwargs, meta)
    severity = getattr(cfg.severity, "value", str(cfg.severity or "critical"))
    result = dict(res.result or {})
    where = f"{table}.{column}" if column else table
    head = f"{where}: {check} ({kind})"
    error = _exception_message(res.exception_info or {})
    count: int | None = result.get("unexpected_count")
    sample: list = []
    observed = result.get("observed_value")
    if error:
        ok, count = False, None
        message = f"{head} could not be evaluated: {error}"
    else:
        ok = bool(res.success)
        if "partial_unexpected_list" in result:
            seen = []
            for v in result["partial_unexpected_list"]:
                v = plain(v)
                if v not in seen:
                    seen.append(v)
            sample = seen[:SAMPLE_SIZE]
        if kind == "expect_table_columns_to_match_set":
            mismatch = (result.get("details") or {}).get("mismatched") or {}
            missing, extra = mismatch.get("missing", []), mismatch.get("unexpected", [])
            count = len(missing) + len(extra) if not ok else 0
            sample = [f"missing: {c}" for c in missing] + [f"unexpected: {c}" for c in extra]
            message = f"{head}: " + (
                ", ".join(sample) + f" (columns found: {', '.join(map(str, observed or []))})"
                if not ok
                else "ok"
            )
        elif kind == "unexpected_rows_expectation":
            count = int(observed or 0)
            message = f"{head}: " + (
                f"{count} unexpected row(s) — {cfg.description or ''}" if not ok else "ok"
            )
        elif count is not None:
            total = result.get("element_count")
            message = f"{head}: " + (
                f"{count} unexpected value(s) of {total}{_expected_text(kind, kwargs)}, "
                f"e.g. {json.dumps(sample, default=str)}"
                if not ok
                else "ok"
            )
        else:
            if not ok:
                count = 1
                sample = [plain(observed)]
            prev = meta.get("previous")
            extra = f" (previous run {prev['run_date']}: {prev['rows']} rows)" if prev else ""
            message = f"{head}: " + (
                f"observed {plain(observed)}, expected {_expected_range(kwargs)}{extra}"
                if not ok
                else f"ok (observed {plain(observed)})"
            )
    return CheckResult(
        table=table,
        expectation=kind,
        check=check,
        column=column,
        success=ok,
        severity=severity,
        unexpected_count=count if not ok else 0,
        unexpected_sample=sample if not ok else [],
        observed_value=plain(observed),
        message=message,
    )


def sql_text(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)
