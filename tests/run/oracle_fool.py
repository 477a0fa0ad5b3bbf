"""``python tests/run/oracle_fool.py evolve ...``: the ``fool`` command line with the tests' tiny models registered.

Subprocess tests (signals, locks, kills) and scripts/fault_injection.py use it: ``test-oracle`` is registered
in tests/conftest.py, which a plain ``python -m fooling`` does not import.

ORACLE_SELF_SIGNALS="G:SIG,SIG,..." makes the process send itself those signals while it scores
generation G (e.g. "3:SIGINT,SIGINT": a second Ctrl-C in the middle of a generation).
ORACLE_SLOW=S sleeps S seconds per generation (so that a kill lands mid-run).
"""

from __future__ import annotations

import os
import signal
import sys
import time

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(_TESTS), _TESTS]  # this checkout's fooling, and tests/ for conftest

import conftest  # noqa: E402,F401  (registers test-oracle)

from fooling.objective import Objective  # noqa: E402


def _instrument() -> None:
    plan = os.environ.get("ORACLE_SELF_SIGNALS")
    slow = float(os.environ.get("ORACLE_SLOW", "0"))
    if not plan and not slow:
        return
    at, _, names = (plan or "-1:").partition(":")
    calls = {"n": 0}
    original = Objective.fitness_tensor

    def call(self, images):
        if slow:
            time.sleep(slow)
        if calls["n"] == int(at):
            for name in filter(None, names.split(",")):
                os.kill(os.getpid(), getattr(signal, name))
                time.sleep(0.05)  # let the handler run before the next one
        calls["n"] += 1
        return original(self, images)

    Objective.fitness_tensor = call


if __name__ == "__main__":
    _instrument()
    from fooling.cli import main

    main(prog_name="fool")
