"""scripts/bench_fold.py times drawing evolved CPPNs with their constant nodes folded or not, and checks the two
drawings are the same bits: it runs, and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fold_benchmark_runs_and_finds_the_same_bits(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_fold.py"), "--generations", "40",
                          "--sizes", "28,48", "--rounds", "1"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout.splitlines()[-1])
    assert row["generation"] == 40 and 0 < row["rows"]
    assert set(row["sizes"]) == {"28", "48"}
    assert all(size["same_bits"] and size["plain_ms"] > 0 and size["folded_ms"] > 0 for size in row["sizes"].values())
