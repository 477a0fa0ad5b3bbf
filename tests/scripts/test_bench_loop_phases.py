"""scripts/bench_loop_phases.py (the README table's MNIST rows) reads its arguments with argparse: help, and a clear
error for a bad one, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_loop_phases.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_and_bad_arguments_are_answered_in_a_line():
    shown = _run("--help")
    assert shown.returncode == 0 and "POPULATION LABEL" in shown.stdout and "population" in shown.stdout
    for args, message in ((("0", "x"), "POPULATION must be positive, got 0"),
                          (("two", "x"), "invalid int value: 'two'"), ((), "required: population, label")):
        out = _run(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
