"""``fooling.run.sweep``: grid expansion and names, a 2 x 2 grid in sequence equal to lone runs, re-runs that skip
finished runs and resume interrupted ones, grids that grow or change, a busy run, a failing point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fooling.errors import FoolingError
from fooling.rundir.checkpoint import load_checkpoint
from fooling.rundir.lock import RunLock
from fooling.run import EvolutionRun, evolve
from fooling.run.sweep import expand, point_name, prepare, sweep
from fooling.settings.evolve import EvolveSettings
from fooling.settings.sweep import SweepSettings, parse_models

from helpers import csv_rows

TIMING = ("elapsed_s", "evals_per_s")
HERE = Path(__file__).parent
FIXED = {"generations": 4, "population": 8, "device": "cpu", "checkpoint_every": 2, "checkpoint_seconds": 0}
ORACLE_SOURCE = "python:sweep_models:oracle"


@pytest.fixture
def sources(monkeypatch):
    """tests/run on the path: the python: models of sweep_models.py load."""
    monkeypatch.syspath_prepend(str(HERE))


def _grid(out: Path, **kw) -> SweepSettings:
    values = dict(out=str(out), seeds=[0, 1], models=[["test-oracle"]], encodings=["direct", "cppn"],
                  settings=dict(FIXED))
    values.update(kw)
    return SweepSettings(**values)


def _summary(path: Path) -> dict:
    return {k: v for k, v in json.loads((path / "summary.json").read_text()).items() if k not in TIMING}


def assert_same_run(a: Path, b: Path) -> None:
    """elites/ byte for byte, summary.json but its timing, metrics.csv but elapsed_s, checkpoint arrays."""
    names = sorted(p.name for p in (a / "elites").iterdir())
    assert names and names == sorted(p.name for p in (b / "elites").iterdir())
    for name in names:
        assert (a / "elites" / name).read_bytes() == (b / "elites" / name).read_bytes(), name
    assert _summary(a) == _summary(b)
    rows = [[{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv_rows(p / "metrics.csv")]
            for p in (a, b)]
    assert rows[0] == rows[1]
    left, right = load_checkpoint(a / "checkpoint")[0], load_checkpoint(b / "checkpoint")[0]
    assert left.keys() == right.keys()
    for key in left:
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def test_parse_models():
    assert parse_models(["a,b+c", "d"]) == [["a"], ["b", "c"], ["d"]]
    with pytest.raises(FoolingError, match="twice"):
        parse_models(["a,a"])
    for typo in ("a+", "+a", "a++b"):  # 'a+' ran a alone
        with pytest.raises(FoolingError, match="one on each side"):
            parse_models([typo])


def test_expand_names_every_point_in_order(tmp_path, sources):
    grid = _grid(tmp_path / "s", models=[["test-oracle"], ["test-oracle", ORACLE_SOURCE]], combines=["min", "mean"],
                 settings={**FIXED, "input": "1x8x8"})
    points = expand(grid)
    names = [p.name for p in points]
    # 1 network x 2 encodings x 2 seeds, then the ensemble x 2 encodings x 2 combines x 2 seeds
    assert len(points) == 4 + 8 and len(set(names)) == len(names)
    assert names[:4] == ["test-oracle_direct_s0", "test-oracle_direct_s1", "test-oracle_cppn_s0",
                         "test-oracle_cppn_s1"]
    assert names[4:6] == ["test-oracle+python-sweep-models-oracle-min_direct_s0",
                          "test-oracle+python-sweep-models-oracle-min_direct_s1"]
    single, ensemble = points[0].config, points[4].config
    assert single.model == "test-oracle" and single.models is None and single.input is None  # not a source
    assert ensemble.models == ["test-oracle", f"{ORACLE_SOURCE}?input=1x8x8"] and ensemble.combine == "min"
    assert Path(single.out) == (tmp_path / "s" / names[0]).absolute()
    assert not (tmp_path / "s").exists()  # expanding makes nothing
    # strategies and presets, when they are axes, are part of the names
    named = expand(_grid(tmp_path / "t", encodings=["cppn"], seeds=[3], strategies=["map-elites", "ga"],
                         presets=["paper"], settings={**FIXED, "target": 1}))
    assert [p.name for p in named] == ["test-oracle_cppn_map-elites_paper_s3", "test-oracle_cppn_ga_paper_s3"]
    assert named[1].config.strategy == "ga" and named[1].config.preset == "paper"
    assert point_name(grid, ["a"], "direct", None, None, "mean", 7) == "a_direct_s7"


@pytest.mark.parametrize("change, message", [
    (dict(models=[["no-such-net"]]), "no-such-net"),
    (dict(encodings=["pixels"]), "--encodings: unknown value 'pixels'"),
    (dict(strategies=["snes-elites"]), "--strategies snes-elites searches the direct encoding only; use "
                                       "--strategies map-elites with --encodings cppn"),  # the sweep's options
    (dict(settings={**FIXED, "population": -3}), "--population must be positive"),
    (dict(settings={**FIXED, "seed": 3}), "seed is an axis of the sweep; give it with --seeds"),
    (dict(settings={**FIXED, "nonsense": 3}), "unknown settings: nonsense"),
    (dict(workers=2, ray_address="auto"), "either --workers"),
])
def test_bad_grids_are_refused_before_anything_is_made(tmp_path, change, message):
    with pytest.raises(FoolingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sweep(_grid(tmp_path / "s", **change))
    assert not (tmp_path / "s").exists()


def test_a_2x2_grid_equals_lone_runs_then_reruns_skip_and_resume(tmp_path):
    out = tmp_path / "s"
    # one point was interrupted before the sweep ran (checkpointed at generation 2, of 4)
    interrupted = prepare(_grid(out))[3]  # DIR/sweep.json made
    run = EvolutionRun.start(interrupted.config)
    run.run(progress=False, stop_after=2)
    assert run.interrupted is False and json.loads((out / interrupted.name / "summary.json").read_text())[
        "stop_reason"] == "interrupted"
    outcomes = sweep(_grid(out))
    assert [o.name for o in outcomes] == ["test-oracle_direct_s0", "test-oracle_direct_s1", "test-oracle_cppn_s0",
                                          "test-oracle_cppn_s1"]
    assert [o.action for o in outcomes] == ["started", "started", "started", "resumed"]
    assert all(o.ok and o.summary["generation"] == 4 for o in outcomes)
    for o, point in zip(outcomes, expand(_grid(out))):
        alone = tmp_path / f"alone-{o.name}"
        evolve(EvolveSettings(**{**point.config.to_json(), "out": str(alone)}))
        assert_same_run(o.path, alone)
    # again: everything is finished, nothing is touched
    stamps = {o.name: (o.path / "summary.json").stat().st_mtime_ns for o in outcomes}
    again = sweep(_grid(out))
    assert [o.action for o in again] == ["skipped"] * 4
    assert {o.name: (o.path / "summary.json").stat().st_mtime_ns for o in again} == stamps
    # a bigger budget resumes every run; a third seed adds points
    more = sweep(_grid(out, seeds=[0, 1, 2], settings={**FIXED, "generations": 6}))
    assert [o.action for o in more] == ["resumed", "resumed", "started"] * 2
    assert all(o.summary["generation"] == 6 for o in more)
    record = json.loads((out / "sweep.json").read_text())
    assert record["grid"]["seeds"] == [0, 1, 2] and record["grid"]["settings"]["generations"] == 6
    assert len(record["runs"]) == 6


@pytest.mark.parametrize("change, message", [
    (dict(seeds=[0]), "it has seeds 1 that this one lacks"),
    (dict(settings={**FIXED, "mutation_eta": 3.0}), "it was made with mutation_eta = None, this one has 3.0"),
    (dict(strategies=["map-elites"]), "it does not name --strategies"),
])
def test_a_different_grid_in_the_same_folder_is_refused(tmp_path, change, message):
    out = tmp_path / "s"
    grid = _grid(out, encodings=["cppn"], settings={**FIXED, "generations": 1})
    sweep(grid)
    before = (out / "sweep.json").read_text()
    with pytest.raises(FoolingError, match=f"holds a different sweep \\({message}\\)"):
        sweep(grid.replace(**{**change, "settings": {**grid.settings, **change.get("settings", {})}}))
    assert (out / "sweep.json").read_text() == before


def test_a_folder_of_other_things_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    with pytest.raises(FoolingError, match="not empty and holds no sweep.json"):
        sweep(_grid(tmp_path / "s"))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["notes.txt"]


def test_a_busy_run_is_reported_and_a_failing_point_does_not_stop_the_others(tmp_path, sources):
    out = tmp_path / "s"
    grid = _grid(out, models=[["test-oracle"], ["python:sweep_models:broken"]], encodings=["direct"], seeds=[0],
                 settings={**FIXED, "generations": 2, "input": "1x8x8"})
    busy = prepare(grid)[0]
    run = EvolutionRun.start(busy.config)
    run.run(progress=False, stop_after=1)
    lock = RunLock(busy.config.out).acquire()  # another process at work on it
    try:
        outcomes = sweep(grid)
    finally:
        lock.release()
    assert [o.action for o in outcomes] == ["busy", "failed"]
    assert "in use by process" in outcomes[0].error
    assert outcomes[1].error == "RuntimeError: simulated failure on a batch"
    assert json.loads((out / busy.name / "summary.json").read_text())["generation"] == 1  # not touched
    assert [o.action for o in sweep(grid)] == ["resumed", "failed"]


def test_the_python_api(tmp_path):
    import fooling

    results = fooling.sweep(tmp_path / "s", seeds="0-1", models=["test-oracle"], encodings="cppn", generations=2,
                            population=8, device="cpu")
    assert [r.path.name for r in results] == ["test-oracle_cppn_s0", "test-oracle_cppn_s1"]
    assert all(r.finished and r.summary["generation"] == 2 and r.config["seed"] == i for i, r in enumerate(results))
    again = fooling.sweep(tmp_path / "s", seeds=[0, 1], models="test-oracle", encodings=["cppn"], generations=2,
                          population=8, device="cpu")
    assert [r.message for r in again] == ["skipped", "skipped"]


@pytest.mark.parametrize("args, message", [
    (dict(out=None), "out must be a folder path, not NoneType"),  # it made a folder named None
    (dict(seeds=[1.5]), "got 1.5"),  # it ran seed 1
    (dict(seeds=["a"]), "got 'a'"),  # ValueError: invalid literal for int()
    (dict(seeds=[True]), "got True"),
    (dict(seeds=range(10 ** 12)), "more than 100,000"),
])
def test_the_python_api_refuses_odd_arguments_in_one_line(tmp_path, monkeypatch, args, message):
    import fooling

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FoolingError, match=re.escape(message)):
        fooling.sweep(**{"out": tmp_path / "s", "models": "test-oracle", "generations": 1, "device": "cpu", **args})
    assert list(tmp_path.iterdir()) == []
    assert [r.config["seed"] for r in fooling.sweep(tmp_path / "s", seeds=3, models="test-oracle", generations=1,
                                                    population=8, device="cpu")] == [3]


@pytest.mark.parametrize("change, message", [
    (dict(seeds=list(range(200_000))), "--seeds names 200,000 seeds, more than 100,000"),  # --seeds 0-199999 is
    (dict(encodings="direct"), "--encodings must be a list of values"),  # was read as 'd', 'i', 'r', ...
    (dict(models=["test-oracle"]), "--models entries must each be a list of model names"),
])
def test_a_hand_edited_sweep_json_is_one_line(tmp_path, change, message):
    from fooling.run.sweep import recorded

    grid = {**_grid(tmp_path).grid_json(), **change}
    (tmp_path / "sweep.json").write_text(json.dumps({"command": "sweep", "grid": grid, "runs": []}))
    with pytest.raises(FoolingError, match=message):
        recorded(tmp_path)


def test_a_points_progress_line_says_what_became_of_it():
    """A point reports when it comes back: 'finished', not 'started' (it was, long before the line)."""
    from fooling.run.sweep import Outcome, done_line

    assert done_line(Outcome("a_direct_s0", Path("a"), "started")) == "a_direct_s0 finished"
    assert done_line(Outcome("a_direct_s0", Path("a"), "resumed")) == "a_direct_s0 resumed and finished"
    assert done_line(Outcome("a_direct_s0", Path("a"), "failed", error="x")) == "a_direct_s0 failed"
