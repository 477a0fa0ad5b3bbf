"""Several seeds in lockstep (fooling.run.multi): each run directory ends exactly as the same seed run alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.errors import FoolingError
from fooling.rundir.checkpoint import load_checkpoint
from fooling.run import EvolutionRun, evolve
from fooling.run.multi import RunGroup, parse_seeds
from fooling.settings.evolve import EvolveSettings
from helpers import assert_same_run, run_summary

def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=10, population=12, seed=0, device="cpu", checkpoint_every=3,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


@pytest.mark.parametrize("one_pass", [True, False])
def test_group_equals_lone_runs(tmp_path, one_pass):
    group = RunGroup.start(_config(tmp_path / "g", seeds=[0, 1, 2]), one_pass=one_pass)
    summaries = group.run(progress=False)
    assert [s["seed"] for s in summaries] == [0, 1, 2]
    assert json.loads((tmp_path / "g" / "group.json").read_text())["runs"] == ["s0", "s1", "s2"]
    for seed in (0, 1, 2):
        evolve(_config(tmp_path / f"alone{seed}", seed=seed))
        assert_same_run(tmp_path / "g" / f"s{seed}", tmp_path / f"alone{seed}")


@pytest.mark.parametrize("one_pass", [True, False])
def test_a_grid_of_encodings_equals_lone_runs(tmp_path, one_pass):
    """--seeds 0-1 --encodings direct,cppn: four run directories, each with its encoding's own preset values
    (the CPPN gets MAP-Elites, the direct encoding snes-elites), each equal to the same run alone."""
    group = RunGroup.start(_config(tmp_path / "g", seeds=[0, 1], encodings=["direct", "cppn"], generations=6),
                           one_pass=one_pass)
    group.run(progress=False)
    record = json.loads((tmp_path / "g" / "group.json").read_text())
    assert record["runs"] == ["direct_s0", "direct_s1", "cppn_s0", "cppn_s1"]
    assert record["encodings"] == ["direct", "cppn"]
    strategies = {json.loads((tmp_path / "g" / name / "config.json").read_text())["strategy"] for name in
                  ("direct_s0", "cppn_s0")}
    assert strategies == {"snes-elites", "map-elites"}
    for encoding in ("direct", "cppn"):
        for seed in (0, 1):
            evolve(_config(tmp_path / f"{encoding}{seed}", seed=seed, encoding=encoding, generations=6))
            assert_same_run(tmp_path / "g" / f"{encoding}_s{seed}", tmp_path / f"{encoding}{seed}")
    RunGroup.resume(tmp_path / "g", generations=8).run(progress=False)  # the group continues as one
    assert all(run_summary(tmp_path / "g" / name)["generation"] == 8 for name in record["runs"])


def test_runs_that_stop_at_different_times(tmp_path):
    # --until: each seed stops when its own classes get there; the others go on without it
    config = _config(tmp_path / "g", seeds=[0, 1, 2, 3], generations=40, until=0.9)
    summaries = RunGroup.start(config, one_pass=True).run(progress=False)
    stops = [s["generation"] for s in summaries]
    assert all(s["stop_reason"] == "until" for s in summaries) and len(set(stops)) > 1, stops
    for seed in (0, 1, 2, 3):
        evolve(_config(tmp_path / f"alone{seed}", seed=seed, generations=40, until=0.9))
        assert_same_run(tmp_path / "g" / f"s{seed}", tmp_path / f"alone{seed}")


def test_group_resumes_whole_and_one_by_one(tmp_path):
    RunGroup.start(_config(tmp_path / "g", seeds=[0, 1, 2]), one_pass=True).run(progress=False, stop_after=4)
    assert load_checkpoint(tmp_path / "g" / "s1" / "checkpoint")[1]["generation"] == 4
    EvolutionRun.resume(tmp_path / "g" / "s1").run(progress=False, stop_after=7)  # one run ahead alone
    RunGroup.resume(tmp_path / "g", one_pass=True).run(progress=False)  # the group continues all
    for seed in (0, 1, 2):
        evolve(_config(tmp_path / f"alone{seed}", seed=seed))
        assert_same_run(tmp_path / "g" / f"s{seed}", tmp_path / f"alone{seed}")


def test_cli_seeds_make_run_directories_equal_to_lone_runs(tmp_path):
    common = ["evolve", "--model", "test-oracle", "--generations", "6", "--population", "10", "--device", "cpu",
              "--quiet"]
    result = CliRunner().invoke(main, [*common, "--seeds", "0-2", "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    assert result.output.count("stopped: budget reached (generation 6)") == 3
    for seed in (0, 1, 2):
        alone = CliRunner().invoke(main, [*common, "--seed", str(seed), "--out", str(tmp_path / f"alone{seed}")])
        assert alone.exit_code == 0, alone.output
        assert_same_run(tmp_path / "g" / f"s{seed}", tmp_path / f"alone{seed}")
    more = CliRunner().invoke(main, ["evolve", "--resume", str(tmp_path / "g"), "--generations", "8", "--quiet"])
    assert more.exit_code == 0, more.output
    assert [run_summary(tmp_path / "g" / f"s{s}")["generation"] for s in (0, 1, 2)] == [8, 8, 8]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "3-1"], "runs backwards"),
    (["--seeds", "0-2", "--resume", "somewhere"], "--seeds starts new runs"),
    (["--seeds", "0-2", "--seed", "4"], "either --seed or --seeds"),
    (["--seeds", "x"], "--seeds takes seeds"),
    (["--seeds", "0,0"], "twice"),
    (["--encodings", "direct,cppn"], "give --seeds too"),
    (["--seeds", "0", "--encodings", "direct,pixels"], "'pixels'"),
    (["--seeds", "0", "--encodings", "cppn,cppn"], "repeat"),
    (["--seeds", "0", "--encodings", "cppn", "--encoding", "direct"], "either --encoding or --encodings"),
    (["--seeds", "0-9999"], "10,000 runs stepped together, more than the 256"),  # made 9,999 folders, then failed
    (["--seeds", "0-199", "--encodings", "direct,cppn"], "400 runs"),
    (["--seeds", "0-9999999999"], "names more than 100,000 seeds"),  # listing them ran out of memory
])
def test_cli_bad_seeds(tmp_path, args, message):
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--out", str(tmp_path / "g"), *args])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not (tmp_path / "g").exists()


def test_a_strategy_of_one_encoding_in_a_group_of_it(tmp_path):
    """--strategy cppn-weight-es with --seeds 0 --encodings cppn: the group's runs are CPPN runs (it was refused as
    if they took the default --encoding direct); with --encodings direct,cppn it is refused, in one line, before
    anything is made."""
    common = ["evolve", "--model", "test-oracle", "--generations", "1", "--population", "8", "--device", "cpu",
              "--quiet", "--strategy", "cppn-weight-es", "--set", "cppn_es_children=4", "--seeds", "0"]
    result = CliRunner().invoke(main, [*common, "--encodings", "cppn", "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "g" / "cppn_s0" / "config.json").read_text())["strategy"] == "cppn-weight-es"
    result = CliRunner().invoke(main, [*common, "--encodings", "direct,cppn", "--out", str(tmp_path / "h")])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "cppn-weight-es searches the CPPN encoding only; use --encodings cppn" in result.output  # as given
    assert not (tmp_path / "h").exists()


def test_cli_refuses_an_existing_out(tmp_path):
    (tmp_path / "g").mkdir()
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--seeds", "0-1", "--out",
                                       str(tmp_path / "g")])
    assert result.exit_code == 1 and result.output.startswith("Error:") and "already exists" in result.output
    assert list((tmp_path / "g").iterdir()) == []


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-1,5") == [0, 1, 5]
    assert parse_seeds("7") == [7]
    with pytest.raises(FoolingError):
        parse_seeds("")


@pytest.mark.parametrize("one_pass", [True, False])
def test_group_honours_eot_like_lone_runs(tmp_path, one_pass):
    """--seeds with --eot: every run scores through its EOT; one call per run ends exactly as the lone runs."""
    eot = dict(eot=3, transforms="crop=0.6,rotate=15,noise=0.05", generations=6)
    group = RunGroup.start(_config(tmp_path / "g", seeds=[0, 1], **eot), one_pass=one_pass)
    assert all(run.objective.eot is not None and run.objective.eot.samples == 3 for run in group.runs)
    group.run(progress=False)
    for seed in (0, 1):
        evolve_eot = EvolutionRun.start(_config(tmp_path / f"alone{seed}", seed=seed, **eot))
        evolve_eot.run(progress=False)
        evolve_eot.close()
        plain = _config(tmp_path / f"plain{seed}", seed=seed, **{**eot, "eot": 0})
        evolve(plain)
        fitness = load_checkpoint(tmp_path / "g" / f"s{seed}" / "checkpoint")[0]["archive.fitness"]
        assert not np.array_equal(fitness, load_checkpoint(tmp_path / f"plain{seed}" / "checkpoint")[0]["archive.fitness"])
        if not one_pass:
            assert_same_run(tmp_path / "g" / f"s{seed}", tmp_path / f"alone{seed}")
