"""``vigil validate STAGE [--date YYYY-MM-DD] [--json] [--path FILE]``.

Prints one line per table (checks, failed, rows), each failure and warning, and the verdict.
Great Expectations' own logging shows only with ``vigil -v``.
"""

from __future__ import annotations

import argparse
import json
import logging

from vigil.quality.gate import STAGES, GateResult, run_gate


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="which gate to run")
    parser.add_argument("--date", help="the run's day YYYY-MM-DD (default: the latest lake day)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--path",
        help="training_set: the examples as a Parquet file; ranking_home / ranking_trends: the "
        "run's output folder (ranking/home/dt=D, ranking/trends/dt=D/hour=HH)",
    )


def table_lines(result: GateResult) -> list[str]:
    """One row per table: how many checks ran, how many failed (critical/warning), its rows."""
    width = max((len(name) for name in result.tables), default=5)
    lines = [f"{'table':<{width}}  {'checks':>6}  {'failed':>6}  {'warned':>6}  {'rows':>12}"]
    for name, info in result.tables.items():
        mine = [r for r in result.results if r.table == name]
        failed = sum(1 for r in mine if not r.success and r.severity == "critical")
        warned = sum(1 for r in mine if not r.success and r.severity != "critical")
        rows = f"{info['rows']:,}" if isinstance(info.get("rows"), int) else "-"
        lines.append(f"{name:<{width}}  {len(mine):>6}  {failed:>6}  {warned:>6}  {rows:>12}")
    return lines


def run(args: argparse.Namespace) -> int:
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    if not verbose:  # this command prints the failures and the verdict itself
        logging.getLogger("vigil.quality.gate").setLevel(logging.CRITICAL)
    result = run_gate(args.stage, run_date=args.date, raise_on_failure=False, path=args.path)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0 if result.success else 1
    print("\n".join(table_lines(result)))
    for r in result.failures:
        print(f"FAIL  {r.message}")
    for r in result.warnings:
        print(f"WARN  {r.message}")
    print(result.summary)
    return 0 if result.success else 1
