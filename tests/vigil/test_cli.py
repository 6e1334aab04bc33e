"""The `vigil` entry point: installed, --help everywhere, clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from vigil.cli import commands

COMMANDS = commands()

VIGIL = Path(sys.executable).parent / "vigil"


def test_entry_point_is_installed_and_lists_every_command():
    out = subprocess.run([str(VIGIL), "--help"], capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name):
    proc = subprocess.run([str(VIGIL), name, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"vigil {name}" in proc.stdout


def test_unknown_command_is_one_clear_error():
    proc = subprocess.run([str(VIGIL), "frobnicate"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "unknown command 'frobnicate'" in proc.stderr


def test_the_console_exit_runs_atexit_handlers_and_keeps_the_exit_code():
    """entry() skips only the interpreter's teardown: handlers still run, stdout is complete,
    the code is main()'s, and a running non-daemon thread is still waited for."""
    script = (
        "import atexit, sys, threading, time\n"
        "from vigil import cli\n"
        "atexit.register(lambda: print('handler ran', flush=True))\n"
        "if sys.argv[1] == 'thread':\n"
        "    threading.Thread(target=lambda: (time.sleep(0.5), print('thread done'))).start()\n"
        "sys.argv = ['vigil', sys.argv[2]]\n"
        "cli.entry()\n"
    )
    for mode, command, code in (("plain", "--help", 0), ("plain", "frobnicate", 2)):
        proc = subprocess.run(
            [sys.executable, "-c", script, mode, command],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == code, proc.stderr
        assert proc.stdout.rstrip().endswith("handler ran")
    proc = subprocess.run(
        [sys.executable, "-c", script, "thread", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "thread done" in proc.stdout and "handler ran" in proc.stdout
