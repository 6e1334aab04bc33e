"""The ``vigil`` command line.

Each subcommand lives in its own module, imported only when that subcommand runs, so
``vigil --help`` stays fast. A module exposes ``configure_parser(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import logging
import os
import sys
import threading
from importlib.metadata import entry_points

from vigil.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": (
        "vigil.lake.ingest",
        "load raw log files into the Parquet lake (quarantining bad rows)",
    ),
    "dbt": ("vigil.warehouse.dbt", "run dbt build for one stage (staging, marts, all)"),
    "uam": ("vigil.uam.query", "print the User Active Minutes histogram"),
    "uam-update": ("vigil.uam.update", "apply new lake days to the UAM tables (--watch: resident)"),
    "validate": ("vigil.quality.cli", "run the Great Expectations gate for one stage"),
    "features": ("vigil.serving.cli", "Feast: apply, materialize, serve, get online features"),
    "stream": ("vigil.stream.processor", "stream processor: live UAM and creator tallies"),
    "train": ("training.train", "build the training set and train the harmful-content models"),
    "evaluate": ("training.assess", "evaluate a registered model and write the HTML report"),
    "models": ("training.registry", "list, promote and roll back registered models"),
    "score": ("training.score", "score a day's posts with the champion model"),
    "monitor": ("vigil.monitor.drift", "drift checks against the champion's training reference"),
    "serve": ("vigil.moderation.cli", "the scoring service: POST /v1/score on 127.0.0.1"),
    "appeals": (
        "vigil.moderation.appeals_cli",
        "appeals of removals: list, verdict, sync the moderators' verdicts, report rates",
    ),
    "online-eval": (
        "vigil.evaluation.cli",
        "online evaluation: a day's importance sample of impressions, HT estimates, report",
    ),
    "notes": (
        "vigil.notes.cli",
        "Community Notes: score, ingest, run the notes pipeline, show a note",
    ),
    "schedule": (
        "vigil.schedule.cli",
        "scheduled posts: serve the API, publish due posts exactly once, tokens, verdicts",
    ),
    "graph": ("vigil.graph.cli", "GraphSAGE user embeddings: train, publish daily snapshots"),
    "rules": (
        "vigil.stream.rules_cli",
        "real-time rules: check, test, replay over the lake, active labels",
    ),
    "accounts": (
        "vigil.accounts.cli",
        "account integrity: features, bot model, ban evasion, clusters, review queue, verdicts",
    ),
    "rank": ("vigil.ranking.cli", "a user's ranked home timeline with reasons (--explore: trends)"),
}


PLUGIN_GROUP = "vigil.commands"


def _plugin_commands() -> dict[str, tuple[str, str]]:
    """Commands other installed packages add (entry points in the ``vigil.commands`` group).

    Each entry point names a ``{name: (module, help)}`` table; the simulated world adds
    ``simulate`` and ``pipeline`` this way, so the platform never imports it.
    """
    found: dict[str, tuple[str, str]] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        for name, spec in ep.load().items():
            found.setdefault(name, tuple(spec))
    return found


def commands() -> dict[str, tuple[str, str]]:
    return {**_plugin_commands(), **COMMANDS}


def _build_root() -> argparse.ArgumentParser:
    table = commands()
    parser = argparse.ArgumentParser(
        prog="vigil",
        description="Vigil: trust-and-safety ML data platform.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<10} {help_}" for name, (_, help_) in table.items())
        + "\n\nRun `vigil COMMAND --help` for a command's options.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, third-party logs included"
    )
    parser.add_argument("command", choices=list(table), metavar="COMMAND", help="see below")
    return parser


# Loggers whose INFO lines say what Vigil did (counts, files, waits): these and the top-level
# packages of the plugins' commands; everything else (Great Expectations, dbt, Feast, SQLAlchemy,
# ...) shows warnings only, unless `vigil -v`.
OWN_LOGGERS = ("vigil", "training", "dags")


def _own_loggers() -> tuple[str, ...]:
    plugins = {ep.value.split(":")[0].split(".")[0] for ep in entry_points(group=PLUGIN_GROUP)}
    return OWN_LOGGERS + tuple(sorted(plugins - set(OWN_LOGGERS)))


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for name in _own_loggers():
            logging.getLogger(name).setLevel(logging.INFO)


def _release_duckdb_engine() -> None:
    """Drop duckdb_engine's module globals before the interpreter tears modules down.

    With great_expectations and duckdb_engine imported in one process, DuckDB's nanobind
    bindings print dozens of "nanobind: leaked ..." lines at exit (measured: `vigil validate`
    printed 40-60 of them); Vigil's own connections are closed by then. The references that
    outlive finalization are duckdb_engine's module-level objects, so the process clears them
    while the interpreter is still whole.
    """
    module = sys.modules.get("duckdb_engine")
    if module is None:
        return
    module.__dict__.clear()
    gc.collect()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    atexit.register(_release_duckdb_engine)
    root = _build_root()
    if not argv or argv[0] in ("-h", "--help"):
        root.print_help()
        return 0
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose = True
        argv.pop(0)
    table = commands()
    if not argv or argv[0] not in table:
        root.print_usage(sys.stderr)
        got = argv[0] if argv else "nothing"
        print(f"vigil: unknown command {got!r}: choose one of {', '.join(table)}.", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_ = table[name]
    _configure_logging(verbose)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            print(f"vigil {name}: not available in this version yet.", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"vigil {name}", description=help_)
    module.configure_parser(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"vigil {name}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # a damaged warehouse file met outside vigil.warehouse.lock.reading (e.g. a writer's own
        # connection): the same one sentence instead of DuckDB's traceback
        if type(exc).__module__.endswith("duckdb"):
            from vigil.warehouse import lock

            if lock.damaged_warehouse(str(exc)):
                print(
                    f"vigil {name}: error: {lock.damaged_warehouse_sentence(str(exc))}",
                    file=sys.stderr,
                )
                return 2
        raise


def entry() -> None:
    """The ``vigil`` console script: :func:`main`, then an exit without the interpreter's teardown.

    Every atexit handler still runs (log handlers flush, duckdb_engine is released, pools close);
    only the final module teardown is skipped, which is where DuckDB's nanobind bindings print
    "nanobind: leaked ..." for objects that other libraries (GX, SQLAlchemy, ibis) keep in module
    globals: `vigil pipeline` ended with ~120 such lines after its summary. When a non-daemon
    thread is still running, the normal exit waits for it as usual.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
