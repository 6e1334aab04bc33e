"""The one helper every DAG task body calls: import, call, return XCom, fail fast.

DAG files stay thin (house style): a task body names the function to run as ``"module:function"``
and :func:`run_task` imports it inside the task (never at parse time), calls it, turns the result
into plain JSON for XCom, and maps errors a retry cannot fix to an immediate task failure.

    @task(outlets=[WAREHOUSE_MARTS])
    def validate_marts(**context) -> dict:
        from vigil.orchestration.tasks import run_task

        return run_task("vigil.quality.gate:run_gate", "marts", run_date=day)
"""

from __future__ import annotations

import importlib
from typing import Any

from vigil.errors import UserError


def run_task(target: str, *args: Any, **kwargs: Any) -> Any:
    """Import ``target`` (``"package.module:function"``), call it with the arguments and return
    its result as XCom. A :class:`UserError` or an ImportError (bad data, a failed gate, a stage
    not installed) fails the task at once; other errors propagate and are retried."""
    module_name, _, function_name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        return to_xcom(function(*args, **kwargs))
    except Exception as exc:
        raise fail_fast(exc) from exc


def to_xcom(value: Any) -> Any:
    """A task's result as plain JSON for XCom: dataclasses and objects with ``to_dict`` become
    dicts, dates and paths strings, and NaN/inf None (Airflow's API rejects non-finite floats)."""
    import dataclasses
    import math

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): to_xcom(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_xcom(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_xcom(value.item())
    return str(value)


def fail_fast(exc: BaseException) -> BaseException:
    """Errors a retry cannot fix (bad data, a failed gate, a stage not installed) fail the task
    at once instead of burning retries; anything else is returned unchanged (and retried)."""
    if isinstance(exc, (UserError, ImportError)):
        from airflow.sdk.exceptions import AirflowFailException

        return AirflowFailException(f"{type(exc).__name__}: {exc}")
    return exc
