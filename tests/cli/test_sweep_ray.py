"""`fool sweep --workers 2`: the grid as Ray tasks on a local instance (ray.init(num_cpus=2), loopback only, one per
module) ends with run directories identical to the in-process sweep's; a failing point is reported and the
others finish; a re-run skips them all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.rundir.checkpoint import load_checkpoint
from helpers import csv_rows, ray_with_paths

ray = pytest.importorskip("ray")

HERE = Path(__file__).parent
MODELS = "python:sweep_models:oracle,python:sweep_models:broken"  # tests/run/sweep_models.py
GRID = ["sweep", "--models", MODELS, "--input", "1x8x8", "--encodings", "direct,cppn", "--seeds", "0-1",
        "--generations", "3", "--population", "8", "--checkpoint-every", "2", "--checkpoint-seconds", "0",
        "--device", "cpu", "--quiet"]
OK = [f"python-sweep-models-oracle_{e}_s{s}" for e in ("direct", "cppn") for s in (0, 1)]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance of 2 CPUs whose workers import this checkout and tests/run; shut down at the end."""
    assert not ray.is_initialized(), "Ray is already running in this process: its workers would not see tests/run"
    root = Path(__file__).parents[2]
    with ray_with_paths([root, root / "tests" / "run"]) as module:
        yield module
    assert not ray.is_initialized()


def _same_files(a: Path, b: Path) -> None:
    for png in sorted((a / "elites").glob("*.png")):
        assert png.read_bytes() == (b / "elites" / png.name).read_bytes(), png
    summaries = [{k: v for k, v in json.loads((p / "summary.json").read_text()).items()
                  if k not in ("elapsed_s", "evals_per_s")} for p in (a, b)]
    assert summaries[0] == summaries[1]
    rows = [[{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv_rows(p / "metrics.csv")]
            for p in (a, b)]
    assert rows[0] == rows[1]
    left, right = load_checkpoint(a / "checkpoint")[0], load_checkpoint(b / "checkpoint")[0]
    assert left.keys() == right.keys() and all((left[k] == right[k]).all() for k in left)


def test_ray_tasks_equal_the_sequential_sweep(tmp_path, local_ray, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "run"))  # the python: models, in this process
    result = CliRunner().invoke(main, [*GRID, "--workers", "2", "--out", str(tmp_path / "ray")])
    assert result.exit_code == 1, result.output  # the broken network's points failed
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("python-")}
    assert len(lines) == 8
    assert all(lines[name].split()[-1] == "finished" for name in OK)
    failed = [line for name, line in lines.items() if "broken" in name]
    assert len(failed) == 4 and all("error: RuntimeError: simulated failure on a batch" in line for line in failed)
    assert "4 of 8 runs did not finish" in result.output
    alone = CliRunner().invoke(main, [*GRID, "--out", str(tmp_path / "seq")])  # in this process, one by one
    for name in OK:
        _same_files(tmp_path / "ray" / name, tmp_path / "seq" / name)
    assert alone.exit_code == 1  # the same failures in sequence
    config = json.loads((tmp_path / "ray" / OK[0] / "config.json").read_text())
    assert config["run"]["device"] == "cpu" and config["out"] == str(tmp_path / "ray" / OK[0])
    again = CliRunner().invoke(main, [*GRID, "--workers", "2", "--out", str(tmp_path / "ray")])
    assert again.exit_code == 1 and {line.split()[0] for line in again.output.splitlines()
                                     if line.startswith("python-") and line.split()[-1] == "finished"} == set(OK)


def _raylets() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"raylet" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                pids.add(int(entry.name))
        except OSError:
            pass
    return pids


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_and_the_sweep_resumes(tmp_path):
    """SIGINT to a driver running Ray tasks: every running run checkpoints and stops, the driver exits 130 and
    its local Ray instance is gone; the sweep run again (in sequence) finishes every run."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests" / "run")])}
    out = tmp_path / "grid"
    args = [sys.executable, "-m", "fooling", *GRID, "--models", "python:sweep_models:oracle", "--generations",
            "100000", "--out", str(out), "--workers", "2"]
    args.remove(MODELS)
    args.remove("--models")  # the grid's own --models: the oracle alone
    before = _raylets()
    driver = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not any(out.glob("*/summary.json")) and time.monotonic() < deadline:  # a run has checkpointed
        time.sleep(0.5)
    driver.send_signal(signal.SIGINT)
    stdout, stderr = driver.communicate(timeout=90)
    assert driver.returncode == 130, stderr
    assert "Continue with: fool sweep --resume" in stderr
    states = {line.split()[0]: line.split()[-1] for line in stdout.splitlines() if line.startswith("python-")}
    assert len(states) == 4 and set(states.values()) <= {"interrupted", "run"}  # "not run": never started
    reached = [0]
    for name, state in states.items():
        if state == "interrupted":
            summary = json.loads((out / name / "summary.json").read_text())
            assert summary["stop_reason"] == "interrupted" and 0 < summary["generation"] < 100000
            reached.append(summary["generation"])
    time.sleep(2)
    assert not (_raylets() - before), "the driver's Ray instance outlived it"
    sys.path[:0] = [str(root / "tests" / "run")]  # the python: model, in this process
    try:
        again = CliRunner().invoke(main, ["sweep", "--resume", str(out), "--generations", str(max(reached) + 2),
                                         "--quiet"])
    finally:
        del sys.path[:1]
    assert again.exit_code == 0, again.output
    assert all(line.split()[-1] == "finished" for line in again.output.splitlines() if line.startswith("python-"))
