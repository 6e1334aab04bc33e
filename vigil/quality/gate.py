"""Data-quality gates: a Great Expectations checkpoint between every stage.

``run_gate(stage, run_date)`` validates one stage's tables where they live (SQL pushed down to
DuckDB: the warehouse file opened read-only, Parquet through ``read_parquet``), writes a
self-contained HTML + JSON report under ``<data root>/reports/quality/`` and raises
:class:`GateFailed` (a :class:`~vigil.errors.UserError`) when a critical expectation fails, so the
DAG task fails and nothing downstream runs.

Stages and what they read (suites: ``expectations/<stage>/<table>.json``, one per guarded table):

- ``raw``: the lake partition of the run's day (``lake/events/dt=<day>/events.parquet``), the
  quarantine file and the run's ingest counts (quarantine rate vs ``VIGIL_MAX_QUARANTINE_RATE``).
- ``staging`` and ``marts``: dbt's tables and views in ``warehouse/vigil.duckdb``.
- ``features``: the feature marts exported to ``features/<table>.parquet`` (what Feast reads).
- ``training_set``: the examples training passes in (``frame=`` DataFrame or ``path=`` Parquet).
- ``ranking_home`` and ``ranking_trends``: one ranking run's output folder (``path=``), written by
  :mod:`vigil.ranking.pipeline` (home timelines joined to the lake's removals; trends, Explore).

Suites are GX suite JSON with ``${name}`` placeholders filled per run (the run's day, freshness
bounds, the previous run's row count, thresholds); a placeholder that is a whole value keeps its
type. ``meta.vigil.generic`` names checks expanded from the table's actual columns (every feature
column varies; every other timestamp column is <= event_timestamp). Row counts of accepted runs are
kept in ``reports/quality/row_count_history.json`` for the volume check.

GX 1.24's SQL datasource returns empty results on duckdb-engine (GX #10738, #11579):
:func:`patch_gx_duckdb` applies the buffered-result workaround, for the ``duckdb`` dialect only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from vigil import config
from vigil.errors import UserError
from vigil.quality.gx_patch import DuckDBConnections, gx_context
from vigil.quality.history import read_history, record_history
from vigil.quality.results import SAMPLE_SIZE, CheckResult, GateFailed, GateResult, check_result
from vigil.quality.suites import expectations_for
from vigil.quality.tables import (
    Table,
    describe,
    duckdb_config,
    find_tables,
    load_suites,
    resolve_day,
    sample_rows,
)

log = logging.getLogger(__name__)

STAGES = (
    "raw", "staging", "marts", "features", "training_set",
    "notes_raw", "notes_warehouse", "notes_scores", "accounts", "ranking_home", "ranking_trends",
)  # fmt: skip
FRESHNESS_AHEAD = dt.timedelta(days=2)  # latest event_timestamp may be at most day + 2 days
# The service logs (decisions, appeal labels) are written live, so "not in the future" is
# relative to the gate's own clock (a backfill of an old day still sees today's decisions),
# with this much clock skew between the service's host and the gate's allowed.
CLOCK_SKEW = dt.timedelta(minutes=5)


def _parameters(day: dt.date) -> dict:
    """The values the suites' placeholders take for a gate run on ``day``."""
    day_start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return {
        "day": day.isoformat(),
        "next_day": (day + dt.timedelta(days=1)).isoformat(),
        "day_start": day_start,
        "day_end": day_start + dt.timedelta(days=1),
        "fresh_min": day_start,
        "fresh_max": day_start + FRESHNESS_AHEAD,
        "quarantine_rate_max": config.quarantine_rate_threshold(),
        "row_count_tolerance": config.row_count_tolerance(),
        "now_max": dt.datetime.now(dt.UTC) + CLOCK_SKEW,
        "orphan_rate_max": config.orphan_label_rate_threshold(),
        "lake_events_glob": str(config.paths().lake_events / "dt=*" / "events.parquet").replace(
            "'", "''"
        ),
    }


def run_gate(
    stage: str,
    run_date: str | dt.date | None = None,
    raise_on_failure: bool = True,
    *,
    frame=None,
    path: str | Path | None = None,
) -> GateResult:
    """Validate one stage's tables; write the report; raise GateFailed on a critical failure.

    ``run_date`` (YYYY-MM-DD) is the day the pipeline processed: the raw gate reads that lake
    partition, freshness and volume checks compare against it. Default: the latest lake day.
    ``frame`` / ``path`` give the training_set gate its examples; ``path`` the ranking gates
    their output folder.
    """
    if stage not in STAGES:
        raise UserError(f"unknown quality stage {stage!r}: choose one of {', '.join(STAGES)}.")
    started = time.monotonic()
    day = resolve_day(run_date)
    base = _parameters(day)
    from vigil.warehouse import lock as warehouse_lock

    # a stage whose tables live in the warehouse reads it while no Vigil process writes it
    reads_warehouse = any(
        s.get("meta", {}).get("vigil", {}).get("location") == "warehouse"
        for s in load_suites(stage)
    )
    hold = warehouse_lock.access(exclusive=False, purpose=f"validate {stage}")
    with hold if reads_warehouse else contextlib.nullcontext():
        tables, work_files = find_tables(stage, day, frame=frame, path=path)
        try:
            describe(tables)
            results, info = _validate(stage, day, tables, base)
        finally:
            for f in work_files:
                f.unlink(missing_ok=True)
    success = not any(not r.success and r.severity == "critical" for r in results)
    gate = GateResult(
        stage=stage,
        run_date=day.isoformat(),
        success=success,
        results=sorted(results, key=lambda r: (r.success, r.severity != "critical", r.table)),
        tables=info,
        seconds=round(time.monotonic() - started, 2),
    )
    from vigil.quality.report import write_reports

    failed = len(gate.failures)
    report_dir = config.paths().reports / "quality"
    gate.summary = (
        f"gate {stage} {gate.run_date}: {'PASSED' if success else 'FAILED'} "
        f"({len(results) - failed}/{len(results)} checks passed on {len(info)} tables"
        + (f", {len(gate.warnings)} warnings" if gate.warnings else "")
        + f", {gate.seconds:.1f} s); report {report_dir / f'{stage}_{gate.run_date}.html'}"
    )
    write_reports(gate, report_dir)
    for r in gate.failures:
        log.error("quality %s: %s", stage, r.message)
    for r in gate.warnings:
        log.warning("quality %s (warning): %s", stage, r.message)
    log.info("%s", gate.summary)
    if success:
        record_history(stage, day, info)
    elif raise_on_failure:
        raise GateFailed(gate)
    return gate


def _validate(stage: str, day: dt.date, tables: list[Table], base: dict):
    import great_expectations as gx

    results: list[CheckResult] = []
    info: dict[str, dict] = {}
    for t in tables:
        info[t.name] = {"location": t.location, "rows": None, "note": t.missing or t.skip or ""}
        if t.missing:
            results.append(
                CheckResult(
                    table=t.name,
                    expectation="expect_table_row_count_to_be_between",
                    check="table_exists",
                    column=None,
                    success=False,
                    severity="critical",
                    unexpected_count=None,
                    message=f"{t.name}: table_exists: {t.missing}",
                )
            )
    todo = [t for t in tables if t.query]
    if not todo:
        return results, info
    history = read_history()
    context = gx_context()
    run = f"{stage}_{uuid.uuid4().hex[:8]}"
    with DuckDBConnections():
        raw = _run_checkpoint(context, gx, stage, day, todo, base, history, run)
    return _collect(raw, info, results)


def _run_checkpoint(context, gx, stage, day, todo, base, history, run):
    sources: dict[str, Any] = {}
    names = {"suites": [], "vds": [], "checkpoint": None}
    by_suite: dict[str, Table] = {}
    try:
        vds = []
        for t in todo:
            if t.engine not in sources:
                cfg = duckdb_config()
                if t.engine == "warehouse":
                    conn = f"duckdb:///{config.paths().warehouse}"
                    connect_args = {"read_only": True, "config": cfg}
                else:
                    conn, connect_args = "duckdb:///:memory:", {"config": cfg}
                sources[t.engine] = context.data_sources.add_sql(
                    name=f"{run}_{t.engine}",
                    connection_string=conn,
                    create_temp_table=False,
                    kwargs={"connect_args": connect_args},
                )
            asset = sources[t.engine].add_query_asset(name=t.name, query=t.query)
            batch = asset.add_batch_definition_whole_table("all")
            suite_name = f"{run}.{t.name}"
            suite = context.suites.add(
                gx.ExpectationSuite(
                    name=suite_name, expectations=expectations_for(stage, t, base, history, day)
                )
            )
            names["suites"].append(suite_name)
            by_suite[suite_name] = t
            vd = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
            )
            names["vds"].append(suite_name)
            vds.append(vd)
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=run,
                validation_definitions=vds,
                actions=[],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
            )
        )
        names["checkpoint"] = run
        log.info("quality %s %s: validating %d tables", stage, day, len(todo))
        outcome = checkpoint.run()
        raw: list[tuple[Table, Any]] = []
        for suite_result in outcome.run_results.values():
            t = by_suite[suite_result.suite_name]
            for res in suite_result.results:
                raw.append((t, res))
    finally:
        _cleanup(context, names, [s.name for s in sources.values()])
    return raw


def _collect(raw, info: dict, results: list[CheckResult]):
    for t, res in raw:
        r = check_result(t.name, res)
        if not r.success and r.expectation == "unexpected_rows_expectation" and r.unexpected_count:
            r.unexpected_sample = sample_rows(
                t, res.expectation_config.kwargs["unexpected_rows_query"]
            )
            r.message += f", e.g. {json.dumps(r.unexpected_sample[:3], default=str)}"
        if r.expectation == "expect_table_row_count_to_be_between" and isinstance(
            r.observed_value, int
        ):
            info[t.name]["rows"] = r.observed_value
        results.append(r)
    return results, info


def _cleanup(context, names: dict, sources: list[str]) -> None:
    for action in (
        lambda: names["checkpoint"] and context.checkpoints.delete(names["checkpoint"]),
        *[(lambda n=n: context.validation_definitions.delete(n)) for n in names["vds"]],
        *[(lambda n=n: context.suites.delete(n)) for n in names["suites"]],
        *[(lambda n=n: context.data_sources.delete(n)) for n in sources],
    ):
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - leftovers in the ephemeral context only cost memory
            log.debug("GX cleanup: %s", exc)
