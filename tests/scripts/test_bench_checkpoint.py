"""scripts/bench_checkpoint.py, whose figures the README's checkpoint rows cite: it round-trips the state it times,
and with --squares 2 the elites and means (in 2 x 2 squares, handed over as images) take a quarter of the disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # 32 rows of 160 x 160 colour images (9.8 MB: above the 8 MB from which arrays go to blocks; 307 kB a row:
    # one row a block), step sizes on 80 x 80
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_checkpoint.py"), "--mode", "cached", "--rows",
                           "32", "--genes", str(3 * 160 * 160), "--sigma-genes", str(3 * 80 * 80), "--changed", "8",
                           "--dir", str(tmp_path), *args], capture_output=True, text=True, timeout=300)


def test_squares_are_stored_at_a_quarter_and_round_trip(tmp_path):
    rows = {}
    for squares in ("1", "2"):
        out = _bench(tmp_path, "--squares", squares)
        assert out.returncode == 0, out.stderr[-2000:]
        rows[squares] = json.loads(out.stdout.splitlines()[-1])  # it asserts the load equals what it saved
        assert rows[squares]["squares"] == int(squares) and rows[squares]["cached_blocks_written"] >= 2 * 8
    noise, squares = rows["1"], rows["2"]
    big = 2 * 32 * 3 * 160 * 160 * 4 / 1e6  # the elites and means, MB
    assert abs(noise["cached_first_disk_mb"] - squares["cached_first_disk_mb"] - 0.75 * big) < 0.2
    assert not list(tmp_path.iterdir())  # its temp folder removed


def test_a_size_that_is_not_squares_is_one_line(tmp_path):
    out = _bench(tmp_path, "--squares", "3")
    assert out.returncode == 1
    assert out.stderr.strip() == "bench_checkpoint.py: --squares 3 does not divide a 160 x 160 image"
