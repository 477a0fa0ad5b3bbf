"""scripts/bench_ops.py counts the ops a generation issues on the device path: it runs, and its counts say what the
loop does (the forward pass counted apart, a 5-seed group's bookkeeping five runs' worth, host reads seen)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_op_count_runs_and_counts_what_a_generation_issues(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_ops.py"), "--generations", "2", "--only",
                          "mnist-direct-200,mnist-5-seeds-200,mnist-cppn-200"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    rows = {r["config"]: r for r in lines[:-1]}
    assert list(rows) == ["mnist-direct-200", "mnist-5-seeds-200", "mnist-cppn-200"]
    assert lines[-1]["rows"].keys() == rows.keys()
    one, five, cppn = rows.values()
    assert one["strategy"] == "SnesElites" and five["runs"] == 5 and cppn["encoding"] == "cppn"
    assert 10 < one["forward_kernels_per_gen"] == five["forward_kernels_per_gen"]  # one pass for the five seeds
    # five runs' bookkeeping (what each run issues moves a little with which classes improve)
    assert 4 * one["loop_kernels_per_gen"] < five["loop_kernels_per_gen"] < 6 * one["loop_kernels_per_gen"]
    assert 1 <= one["sync_ops_per_gen"] <= 4 and 5 <= five["sync_ops_per_gen"] <= 5 * 4
    assert cppn["top"] and min(cppn["top"].values()) > 0


def test_an_unknown_configuration_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_ops.py"), "--only", "mnist-direct-7"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "unknown configuration 'mnist-direct-7'" in out.stderr
    assert "Traceback" not in out.stderr
