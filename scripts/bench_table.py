#!/usr/bin/env python
"""The README's table of current figures, measured: runs each benchmark below in its own process, one after
another, and prints the table (what | figure | command) in Markdown, then one JSON line with every row's figures.

    python scripts/bench_table.py [--only NAME,NAME] [--list]

All rows take about 8 minutes on this project's 2-core CPU; run it on a quiet machine (the figures are ratios
and rates, and other processes' load lowers them). Each row's command is exactly what ran, so any row can be
measured again alone. A row whose command fails is reported in its figure cell and the others still run; the
script then exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
Lines = list[dict[str, Any]]  # the JSON lines a command printed, in order


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    command: str  # run by bash in the repository root
    figure: Callable[[Lines], str]  # the table cell, from the command's JSON lines
    values: Callable[[Lines], dict[str, Any]]  # what goes into the JSON line


def _last(lines: Lines) -> dict[str, Any]:
    return lines[-1]


def _phases(lines: Lines) -> str:
    j = _last(lines)
    ms = j["cpu_ms_per_generation"]
    return (f"{j['ratio']:.3f} (whole generations: {j['run_ratio']:.3f}); outside the forward pass "
            f"{j['overhead_ms']:.1f} CPU ms a generation against {ms['forward']:.1f}")


def _phases_values(lines: Lines) -> dict[str, Any]:
    j = _last(lines)
    return {"ratio": j["ratio"], "run_ratio": j["run_ratio"], "overhead_ms": j["overhead_ms"],
            "forward_ms": j["cpu_ms_per_generation"]["forward"]}


def _mnist_wall(lines: Lines) -> dict[str, Any]:
    return {r["config"]: r["ratio"] for r in lines if "ratio" in r}


def _mnist_wall_cell(lines: Lines) -> str:
    ratios = _mnist_wall(lines)
    return " / ".join(f"{ratios[k]:.3f}" for k in ("mnist-direct-200", "mnist-direct-1000", "mnist-direct-5seeds-200")
                      if k in ratios)


def _imagenet(encoding: str) -> tuple[Callable[[Lines], str], Callable[[Lines], dict[str, Any]]]:
    def values(lines: Lines) -> dict[str, Any]:
        loop = _last(lines)["loops"][encoding]
        keys = ("loop_evals_per_s", "forward_evals_per_s", "ratio", "checkpoint_s", "ratio_with_checkpoints",
                "default_checkpoint_generations", "ratio_with_default_checkpoints", "image_shape")
        return {k: loop[k] for k in keys}

    def cell(lines: Lines) -> str:
        v = values(lines)
        return (f"{v['ratio']:.3f} ({v['loop_evals_per_s']:.1f} against {v['forward_evals_per_s']:.1f} evals/s); "
                f"{v['ratio_with_checkpoints']:.3f} with a checkpoint every 10 generations (each adds "
                f"{v['checkpoint_s']:.2f} s); {v['ratio_with_default_checkpoints']:.3f} at the default cadence (every "
                f"{v['default_checkpoint_generations']})")

    return cell, values


def _render_values(lines: Lines) -> dict[str, Any]:
    j = _last(lines)
    return {"images_per_cpu_s_28px": j["images_per_s_28px"], "images_per_cpu_s_256px": j["images_per_s_256px"]}


def _checkpoint_values(lines: Lines) -> dict[str, Any]:
    j = _last(lines)
    return {k: j[f"cached_{k}"] for k in ("first_s", "next_s", "next_written_mb", "same_s", "load_s")}


def _memory_values(lines: Lines) -> dict[str, Any]:
    memory = _last(lines)["memory"]
    return {"peak_rss_mb": memory["peak_rss_mb"]}


_direct_cell, _direct_values = _imagenet("direct")
_cppn_cell, _cppn_values = _imagenet("cppn")
PHASES = "OMP_WAIT_POLICY=PASSIVE python scripts/bench_loop_phases.py"
IMAGENET = "python scripts/bench_imagenet.py --memory-generations 0 --batches 64 --population 64 --rounds 3"

ROWS = [
    Row("mnist-direct-200", "MNIST direct loop, population 200: CPU-time ratio loop / forward (goal ≥ 0.92)",
        f"{PHASES} 200 table", _phases, _phases_values),
    Row("mnist-direct-1000", "the same, population 1,000 (goal ≥ 0.92)", f"{PHASES} 1000 table", _phases,
        _phases_values),
    Row("mnist-cppn-200", "MNIST CPPN loop, population 200: CPU-time ratio (goal ≥ 0.85)",
        f"{PHASES} 200 table cppn", _phases, _phases_values),
    Row("mnist-wall", "MNIST direct loop, wall-clock ratio: population 200 / 1,000 / 5 seeds × 200 in one pass",
        "python scripts/bench_gpu.py --device cpu --only mnist", _mnist_wall_cell, _mnist_wall),
    Row("imagenet-direct", "ImageNet direct loop, EfficientNet-Lite0, population 64, 256 px: ratio (goals ≥ 0.95; "
        "≥ 0.9 with a checkpoint every 10 generations)", f"{IMAGENET} --encodings direct", _direct_cell,
        _direct_values),
    Row("imagenet-cppn", "ImageNet CPPN loop, population 64, 256 px: ratio", f"{IMAGENET} --encodings cppn",
        _cppn_cell, _cppn_values),
    Row("cppn-render", "CPPNs drawn per CPU second, 400 grown genomes: 28 px grey / 256 px colour",
        "python scripts/bench_render.py --device cpu --clock cpu --rounds 9",
        lambda lines: "{images_per_cpu_s_28px:,.0f} / {images_per_cpu_s_256px:,.0f}".format(**_render_values(lines)),
        _render_values),
    Row("checkpoint", "checkpoint of 1000 × 196,608 elites and means in 2 × 2 squares (as snes-elites makes them), "
        "1000 × 49,152 step sizes: first / after 300 changed rows of each / nothing changed; load",
        "python scripts/bench_checkpoint.py --mode cached --changed 300 --squares 2",
        lambda lines: "{first_s:.2f} s / {next_s:.2f} s ({next_written_mb:,.0f} MB written) / {same_s:.2f} s; "
                      "{load_s:.2f} s".format(**_checkpoint_values(lines)), _checkpoint_values),
    Row("memory", "peak memory, 1000 classes, direct, population 200, snes-elites, 20 generations with checkpoints "
        "(goal < 4 GB)", 'python scripts/bench_imagenet.py --encodings "" --batches 64 --memory-generations 20',
        lambda lines: f"{_memory_values(lines)['peak_rss_mb'] / 1000:.2f} GB peak RSS", _memory_values),
]


def json_lines(text: str) -> Lines:
    """The lines of ``text`` that are JSON objects."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return found


def measure(row: Row) -> tuple[str, dict[str, Any]]:
    """(the figure cell, the values) of one row; a failure is described in the cell."""
    started = time.perf_counter()
    out = subprocess.run(["bash", "-c", row.command], cwd=ROOT, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    lines = json_lines(out.stdout)
    if out.returncode != 0 or not lines:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed (exit {out.returncode}: {last[:160]})", {"error": last, "seconds": seconds}
    try:
        return row.figure(lines), {**row.values(lines), "seconds": seconds}
    except (KeyError, TypeError, ValueError) as err:
        return f"failed (unexpected output: {err!r})", {"error": repr(err), "seconds": seconds}


def _commit() -> str | None:
    """The checkout's commit, if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:  # no git
        return None
    return out.stdout.strip() or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated row names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="print the rows' names and commands, then stop")
    args = parser.parse_args()
    if args.list:
        for row in ROWS:
            print(f"{row.name:18} {row.command}")
        return 0
    chosen = [r for r in ROWS if not args.only or r.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - {r.name for r in ROWS}
    if unknown:
        parser.error(f"unknown row {', '.join(sorted(unknown))} (see --list)")
    table = ["| what | figure | command |", "|---|---|---|"]
    figures: dict[str, Any] = {}
    for row in chosen:
        print(f"{row.name}: {row.command}", file=sys.stderr, flush=True)
        cell, figures[row.name] = measure(row)
        table.append(f"| {row.what} | {cell} | `{row.command}` |")
    print("\n".join(table))
    print(json.dumps({"commit": _commit(), "load_average": [round(x, 2) for x in os.getloadavg()], "rows": figures}))
    return 1 if any("error" in v for v in figures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
