"""`fool sweep` on the command line: a 2 x 2 grid, its table and re-run, one-line errors (bad --set, an axis
given as a setting, no Ray), --resume, and Ctrl-C (the interrupted run resumes when the sweep runs again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fooling.cli import main

ORACLE_FOOL = Path(__file__).parents[1] / "run" / "oracle_fool.py"
COMMON = ["sweep", "--models", "test-oracle", "--seeds", "0-1", "--generations", "3", "--population", "8",
          "--device", "cpu", "--quiet"]
GRID = [*COMMON, "--encodings", "direct,cppn"]  # axes add up over repeated options: --encodings direct --encodings cppn


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _rows(output: str) -> dict[str, str]:
    """The final table's rows: run name -> its line."""
    lines = [line for line in output.splitlines() if line.startswith("test-oracle_")]
    return {line.split()[0]: line for line in lines}


def test_a_2x2_grid_its_table_and_a_rerun(tmp_path):
    out = tmp_path / "grid"
    result = _invoke(*GRID, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert sorted(rows) == ["test-oracle_cppn_s0", "test-oracle_cppn_s1", "test-oracle_direct_s0",
                            "test-oracle_direct_s1"]
    assert all(line.split()[-1] == "finished" and " 3/3 " in line for line in rows.values())
    assert "RUN" in result.output and "GEN/BUDGET" in result.output  # the `fool runs` table
    assert json.loads((out / "sweep.json").read_text())["grid"]["settings"]["generations"] == 3
    again = _invoke(*GRID, "--out", str(out))
    assert again.exit_code == 0 and _rows(again.output) == rows
    resumed = _invoke("sweep", "--resume", str(out), "--generations", "4", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert all(" 4/4 " in line for line in _rows(resumed.output).values()) and len(_rows(resumed.output)) == 4


def test_a_relative_out_gets_its_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke(*COMMON, "--out", "grid")
    assert result.exit_code == 0, result.output
    assert sorted(_rows(result.output)) == ["test-oracle_direct_s0", "test-oracle_direct_s1"]


@pytest.mark.parametrize("args, message", [
    (["--set", "seed=3"], "Error: --set seed=...: seed is an axis of the sweep; give it with --seeds"),
    (["--set", "population=many"], "Error: --population must be an integer or null, not 'many'"),
    (["--set", "no_such_thing=1"], "Error: unknown setting 'no_such_thing'"),
    (["--set", "mutation_rate=2"], "Error: sweep point test-oracle_direct_s0: --mutation-rate must lie in [0, 1]"),
    (["--models", "no-such-net"], "no-such-net"),
    (["--encodings", "pixels"], "Error: --encodings: unknown value 'pixels'"),
    (["--encodings", "direct"], "Error: --encodings names 'direct' twice"),
    # the sweep's options, not fool evolve's (`fool sweep --encoding` is no option)
    (["--strategies", "snes-elites"], "Error: --strategies snes-elites searches the direct encoding only; use "
                                      "--strategies map-elites with --encodings cppn"),
    (["--strategies", "cppn-weight-es"], "Error: --strategies cppn-weight-es searches the CPPN encoding only; use "
                                         "--encodings cppn, or another strategy with --encodings direct"),
    (["--set", "encodings=direct"], "Error: --set encodings=...: encodings is an axis of the sweep; give it with "
                                    "--encodings"),
    (["--seeds", "3-1"], "Error: --seeds range 3-1 runs backwards"),
])
def test_bad_input_is_one_line_and_makes_nothing(tmp_path, args, message):
    out = tmp_path / "grid"
    result = _invoke(*GRID, *args, "--out", str(out))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1
    assert not out.exists()


def test_workers_without_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = _invoke(*GRID, "--workers", "2", "--out", str(tmp_path / "grid"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == \
        'Error: --workers needs Ray, which is not installed: pip install "fooling[ray]"'
    assert not (tmp_path / "grid").exists()


def test_resume_takes_no_grid_options_and_a_smaller_grid_is_refused(tmp_path):
    out = tmp_path / "grid"
    assert _invoke(*GRID, "--generations", "1", "--out", str(out)).exit_code == 0
    refused = _invoke("sweep", "--resume", str(out), "--seeds", "0-3")
    assert refused.exit_code == 1 and "--seeds cannot accompany --resume" in refused.output
    smaller = _invoke(*COMMON, "--generations", "1", "--encodings", "direct", "--out", str(out))
    assert smaller.exit_code == 1
    assert "holds a different sweep (it has encodings cppn that this one lacks)" in smaller.output
    nothing = _invoke("sweep", "--resume", str(tmp_path))
    assert nothing.exit_code == 1 and "holds no sweep.json" in nothing.output


def test_ctrl_c_stops_the_sweep_and_running_it_again_resumes(tmp_path):
    """A SIGINT during the first run's generation 2: that run checkpoints and stops, the sweep starts no other
    (exit 130); the same command again resumes it and runs the rest, ending as an uninterrupted sweep."""
    out, whole = tmp_path / "grid", tmp_path / "whole"
    args = [*GRID, "--generations", "4", "--checkpoint-every", "1", "--checkpoint-seconds", "0"]
    env = {**os.environ, "ORACLE_SELF_SIGNALS": "2:SIGINT", "PYTHONPATH": str(Path(__file__).parents[2])}
    first = subprocess.run([sys.executable, str(ORACLE_FOOL), *args, "--out", str(out)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 130, first.stderr
    rows = _rows(first.stdout)
    assert rows["test-oracle_direct_s0"].split()[-1] == "interrupted"
    assert all(rows[name].endswith("not run") for name in rows if name != "test-oracle_direct_s0")
    assert "Continue with: fool sweep --resume" in first.stderr
    again = _invoke(*args, "--out", str(out))
    assert again.exit_code == 0, again.output
    assert _invoke(*args, "--out", str(whole)).exit_code == 0
    for name in _rows(again.output):
        for file in ("summary.json", "metrics.csv"):
            mine, theirs = (out / name / file).read_text(), (whole / name / file).read_text()
            if file == "summary.json":
                mine, theirs = ({k: v for k, v in json.loads(t).items() if k not in ("elapsed_s", "evals_per_s")}
                                for t in (mine, theirs))
            else:
                mine, theirs = ([line.rsplit(",", 1)[0] for line in t.splitlines()] for t in (mine, theirs))
            assert mine == theirs, (name, file)


def test_a_runs_placement_is_not_a_sweep_setting(tmp_path):
    """--workers in a sweep means runs at a time; a run's own actor pool (--set workers=, gpus_per_worker=) is
    refused in one line, and the sweep's options appear once each."""
    result = CliRunner().invoke(main, ["sweep", "--models", "test-oracle", "--set", "gpus_per_worker=1",
                                       "--out", str(tmp_path / "grid")])
    assert result.exit_code != 0 and "gpus_per_worker places one run's evaluations" in result.output
    assert not (tmp_path / "grid").exists()
    import click

    names = [opt for p in main.get_command(click.Context(main), "sweep").params for opt in p.opts]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("args", [["--classes", "1-2"], ["--classes", "0", "--set", "classes=1-2"]])
def test_classes_take_ranges_as_in_fool_evolve(tmp_path, args):
    """--classes (and --set classes=, which wins) take names, indices and ranges, read against the first network."""
    out = tmp_path / "grid"
    result = _invoke("sweep", "--models", "test-oracle", "--generations", "1", "--population", "8", "--quiet",
                     *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "test-oracle_direct_s0" / "config.json").read_text())["classes"] == [1, 2]


@pytest.mark.parametrize("args", [["--target", "c"], ["--target", "2"], ["--target", "a", "--set", "target=c"]])
def test_target_takes_a_name_as_in_fool_evolve(tmp_path, args):
    """--target (and --set target=, which wins) takes an index or a class name, read against the first network;
    it was an integer option, so `--strategies ga --target goldfish` said 'not a valid integer'."""
    out = tmp_path / "grid"
    result = _invoke("sweep", "--models", "test-oracle", "--strategies", "ga", "--generations", "1",
                     "--population", "8", "--quiet", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "test-oracle_direct_ga_s0" / "config.json").read_text())["target"] == 2


def test_one_target_serves_the_ga_points_of_a_grid_of_strategies(tmp_path):
    """--target is the ga points' class; the other strategies' points evolve every class, as without it."""
    out = tmp_path / "grid"
    result = _invoke("sweep", "--models", "test-oracle", "--strategies", "ga,map-elites", "--generations", "1",
                     "--population", "8", "--quiet", "--target", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    ga, elites = (json.loads((out / f"test-oracle_direct_{s}_s0" / "config.json").read_text())
                  for s in ("ga", "map-elites"))
    assert (ga["target"], elites["target"]) == (2, None)


def _config_of(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def test_a_sweep_of_a_runs_config_repeats_that_run_on_the_axes_not_given(tmp_path):
    """--config's model, encoding, preset, strategy (when the run chose it), combine and seed are the axes the
    sweep is not given: `fool sweep --config RUN/config.json --seeds 0-4` repeats RUN, not the defaults."""
    first = tmp_path / "first"
    result = _invoke("evolve", "--model", "test-oracle", "--encoding", "cppn", "--preset", "paper", "--seed", "3",
                     "--generations", "1", "--population", "8", "--device", "cpu", "--quiet", "--out", str(first))
    assert result.exit_code == 0, result.output
    out = tmp_path / "again"
    result = _invoke("sweep", "--config", str(first / "config.json"), "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(_rows(result.output)) == ["test-oracle_cppn_paper_s3"]
    before, after = _config_of(first), _config_of(out / "test-oracle_cppn_paper_s3")
    assert {k: v for k, v in after.items() if k not in ("out", "run")} == \
        {k: v for k, v in before.items() if k not in ("out", "run")}
    out = tmp_path / "seeds"
    result = _invoke("sweep", "--config", str(first / "config.json"), "--seeds", "0-1", "--encodings", "direct",
                     "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output  # the axes given win; the file's preset stays
    assert sorted(_rows(result.output)) == ["test-oracle_direct_paper_s0", "test-oracle_direct_paper_s1"]


def test_a_sweep_of_an_ensembles_config_keeps_its_networks_and_combine(tmp_path):
    first = tmp_path / "first"
    result = _invoke("evolve", "--models", "test-oracle,test-oracle-chunk8", "--combine", "min", "--strategy",
                     "map-elites", "--generations", "1", "--population", "8", "--device", "cpu", "--quiet",
                     "--out", str(first))
    assert result.exit_code == 0, result.output
    out = tmp_path / "again"
    result = _invoke("sweep", "--config", str(first / "config.json"), "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    (name,) = [p.name for p in out.iterdir() if p.is_dir()]
    after = _config_of(out / name)
    assert (after["models"], after["combine"], after["strategy"]) == (["test-oracle", "test-oracle-chunk8"], "min",
                                                                      "map-elites")


def test_a_config_naming_a_groups_seeds_and_encodings_sweeps_them(tmp_path):
    """A file holding `seeds` / `encodings` (what `fool evolve --config` runs as a group) gives those axes, as its
    `seed` / `encoding` do: they were dropped (seed 0 ran alone) or refused ('--encodings makes a group of runs')."""
    config = tmp_path / "group.json"
    config.write_text(json.dumps({"model": "test-oracle", "seeds": [1, 2], "encodings": ["direct", "cppn"]}))
    out = tmp_path / "grid"
    args = ("sweep", "--config", str(config), "--generations", "1", "--population", "8", "--device", "cpu",
            "--quiet", "--out", str(out))
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    names = ["test-oracle_cppn_s1", "test-oracle_cppn_s2", "test-oracle_direct_s1", "test-oracle_direct_s2"]
    assert sorted(_rows(result.output)) == names
    again = _invoke(*args)  # the same command: all skipped, the grid not called changed
    assert again.exit_code == 0 and sorted(_rows(again.output)) == names, again.output
    given = _invoke(*args[:-2], "--seeds", "3", "--encodings", "cppn", "--out", str(tmp_path / "given"))
    assert given.exit_code == 0 and sorted(_rows(given.output)) == ["test-oracle_cppn_s3"], given.output


def test_a_configs_bad_axis_is_one_line_naming_the_file(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"model": "test-oracle", "seeds": [2, 2]}))
    result = _invoke("sweep", "--config", str(config), "--quiet", "--out", str(tmp_path / "grid"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == f"Error: {config}: seeds must not repeat a seed, got [2, 2]"
    assert not (tmp_path / "grid").exists()


def test_a_configs_combine_applies_to_the_ensembles_given(tmp_path):
    """The file's combine (min) is the ensembles' whether or not the file's own run was one (as `fool evolve
    --config FILE --models A,B` takes it); it was dropped for mean when the file named one network."""
    config = tmp_path / "min.json"
    config.write_text(json.dumps({"model": "test-oracle", "combine": "min"}))
    out = tmp_path / "grid"
    result = _invoke("sweep", "--config", str(config), "--models", "test-oracle+test-oracle-chunk8",
                     "--generations", "1", "--population", "8", "--device", "cpu", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _config_of(out / "test-oracle+test-oracle-chunk8-min_direct_s0")["combine"] == "min"


def test_a_sweep_recorded_with_a_null_encodings_setting_still_resumes_and_reruns(tmp_path):
    """A sweep of a run's config.json made before encodings was an axis recorded the file's "encodings": null among
    its settings: it resumes, and the same command runs again (skipping), rather than being refused."""
    config = tmp_path / "one.json"
    config.write_text(json.dumps({"model": "test-oracle"}))
    out = tmp_path / "grid"
    args = ("sweep", "--config", str(config), "--generations", "1", "--population", "8", "--device", "cpu",
            "--quiet", "--out", str(out))
    assert _invoke(*args).exit_code == 0
    record = json.loads((out / "sweep.json").read_text())
    record["grid"]["settings"]["encodings"] = None  # as such a sweep wrote it
    (out / "sweep.json").write_text(json.dumps(record))
    for result in (_invoke("sweep", "--resume", str(out), "--quiet"), _invoke(*args)):
        assert result.exit_code == 0, result.output
        assert sorted(_rows(result.output)) == ["test-oracle_direct_s0"]
