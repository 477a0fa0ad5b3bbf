"""keep_freed_memory: raises glibc's thresholds once per process, and can be switched off."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = "from fooling.allocator import keep_freed_memory as k; print(k(), k())"


def _run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "FOOLING_KEEP_MEMORY"}
    if env_value is not None:
        env["FOOLING_KEEP_MEMORY"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_applied_once_on_glibc():
    assert _run(None) == "True True"


def test_switched_off_by_the_environment():
    assert _run("0") == "False False"
