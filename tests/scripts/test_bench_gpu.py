"""scripts/bench_gpu.py, which scripts/device_check.sh runs on a lent GPU (minutes that cannot be re-spent): its CPU
smoke test gives every MNIST row without an error, then one JSON line each, so a broken bench is caught here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_device_benchmark_runs_every_mnist_row_on_the_cpu(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_gpu.py"), "--device", "cpu", "--quick",
                          "--only", "mnist", "--out", str(tmp_path / "rows.jsonl")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["config"] for r in rows] == ["machine", "mnist-direct-200", "mnist-direct-1000",
                                           "mnist-direct-5seeds-200", "mnist-direct-ga-200"]  # the machine, then rows
    for r in rows[1:]:
        assert "error" not in r, r
        assert r["loop_evals_per_s"] > 0 and r["forward_evals_per_s"] > 0 and r["ratio"] > 0
