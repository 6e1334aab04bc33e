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
