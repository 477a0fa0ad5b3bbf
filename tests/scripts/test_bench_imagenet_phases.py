"""scripts/bench_imagenet_phases.py, whose --forward figures the README cites: with the network scoring each
generation and a checkpoint interval, it runs and reports every phase."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_phases_benchmark_runs_with_the_network_and_a_checkpoint_interval(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_imagenet_phases.py"), "--strategy",
                          "snes-elites", "--forward", "--population", "4", "--generations", "3", "--next-after", "1",
                          "--out", str(tmp_path / "phases")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout.splitlines()[-1])
    assert row["forward"] and row["strategy"] == "snes-elites" and row["population"] == 4
    assert set(row["ms"]) == {"ask", "decode", "tell", "forward", "checkpoint", "checkpoint_next", "save_next"}
    assert all(value > 0 for key, value in row["ms"].items() if key != "decode")  # decode: the ask's, near 0
    assert row["next_counts"]["blocks_written"] > 0  # the interval changed elites and means: rows written
    assert (tmp_path / "phases" / "run" / "checkpoint").is_dir()


def test_without_out_the_benchmark_removes_its_run(tmp_path):
    """Its run's checkpoint is hundreds of MB at the default population: a temporary folder, removed after."""
    temp = tmp_path / "temp"
    temp.mkdir()
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_imagenet_phases.py"), "--strategy",
                          "snes-elites", "--population", "4", "--generations", "3", "--next-after", "0"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "TMPDIR": str(temp)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1])["ms"]["checkpoint"] > 0
    assert not list(temp.glob("bench_phases_*"))  # (PyTorch keeps its own caches there)
