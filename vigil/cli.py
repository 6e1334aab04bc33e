"""The ``vigil`` command line.

Each subcommand lives in its own module, imported only when that subcommand runs, so
``vigil --help`` stays fast. A module exposes ``configure_parser(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vigil.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("vigil.simulate", "write 30 days of simulated social-network logs"),
    "ingest": ("vigil.ingest", "load raw log files into the Parquet lake (quarantining bad rows)"),
    "dbt": ("vigil.warehouse", "run dbt build for one stage (staging, marts, all)"),
    "uam": ("vigil.uam", "print the User Active Minutes histogram"),
    "uam-update": ("vigil.uam_update", "apply new lake days to the UAM tables (--watch: resident)"),
    "validate": ("vigil.quality", "run the Great Expectations gate for one stage"),
    "features": ("vigil.features", "Feast: apply, materialize, serve, get online features"),
    "stream": ("vigil.stream", "stream processor: live UAM and creator tallies"),
    "train": ("training.train", "build the training set and train the harmful-content models"),
    "evaluate": ("training.evaluate", "evaluate a registered model and write the HTML report"),
    "models": ("training.registry", "list, promote and roll back registered models"),
    "score": ("training.score", "score a day's posts with the champion model"),
    "monitor": ("vigil.monitor", "drift checks against the champion's training reference"),
    "pipeline": ("vigil.pipeline", "run the whole pipeline (what `make run` calls)"),
}


def _build_root() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil",
        description="Vigil: trust-and-safety ML data platform.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items())
        + "\n\nRun `vigil COMMAND --help` for a command's options.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="see below")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = _build_root()
    if not argv or argv[0] in ("-h", "--help"):
        root.print_help()
        return 0
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose = True
        argv.pop(0)
    if not argv or argv[0] not in COMMANDS:
        root.print_usage(sys.stderr)
        got = argv[0] if argv else "nothing"
        print(
            f"vigil: unknown command {got!r}: choose one of {', '.join(COMMANDS)}.", file=sys.stderr
        )
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[name]
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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


if __name__ == "__main__":
    sys.exit(main())
