"""The generated command lines: every setting reachable, --set, --config, grouped --help."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.settings.ascend import AscendSettings
from fooling.settings.evolve import EvolveSettings
from fooling.settings.fields import flag_of
from fooling.settings.retrain import RetrainSettings


def fool(*args: str):
    return CliRunner().invoke(main, list(args))


def _config(path) -> dict:
    return json.loads((path / "config.json").read_text())


def test_set_reaches_any_setting(tmp_path):
    out = tmp_path / "run"
    result = fool("evolve", "--model", "test-oracle", "--set", "mutation_eta=9", "--set", "laggard_bias=0.25",
                  "--generations", "1", "--population", "8", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert '"mutation_eta": 9.0' in (out / "config.json").read_text()
    assert _config(out)["laggard_bias"] == 0.25


@pytest.mark.parametrize("command, extra", [("evolve", ["--generations", "1", "--population", "8"]),
                                            ("ascend", ["--steps", "1", "--device", "cpu"])])
def test_set_classes_takes_what_classes_takes_and_wins(command, extra, tmp_path):
    """--set classes=... takes ranges and names as --classes does, and wins over it (as --set does everywhere)."""
    out = tmp_path / "run"
    result = fool(command, "--model", "test-oracle", "--classes", "0", "--set", "classes=1-2", *extra, "--quiet",
                  "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _config(out)["classes"] == [1, 2]
    if command == "evolve":  # the same for --target
        result = fool(command, "--model", "test-oracle", "--strategy", "ga", "--target", "0", "--set", "target=3",
                      *extra, "--quiet", "--out", str(tmp_path / "ga"))
        assert result.exit_code == 0, result.output
        assert _config(tmp_path / "ga")["target"] == 3


def test_options_for_settings_without_options_before(tmp_path):
    out = tmp_path / "run"
    result = fool("evolve", "--model", "test-oracle", "--crossover-rate", "0.3", "--cppn-add-node", "0.4",
                  "--generations", "1", "--population", "8", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (_config(out)["crossover_rate"], _config(out)["cppn_add_node"]) == (0.3, 0.4)


def test_config_reproduces_a_run(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    result = fool("evolve", "--model", "test-oracle", "--preset", "paper", "--seed", "3", "--population", "8",
                  "--generations", "2", "--classes", "0-2", "--set", "crossover_eta=4", "--until", "0.9",
                  "--quiet", "--out", str(old))
    assert result.exit_code == 0, result.output
    result = fool("evolve", "--config", str(old / "config.json"), "--out", str(new), "--generations", "1", "--quiet")
    assert result.exit_code == 0, result.output
    before, after = _config(old), _config(new)
    assert after["out"] == str(new) and after["generations"] == 1
    for key in EvolveSettings.types():
        if key not in ("out", "generations"):
            assert after[key] == before[key], key
    assert before["crossover_eta"] == 4.0 and before["classes"] == [0, 1, 2]


def test_config_does_not_take_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "old"
    assert fool("evolve", "--model", "test-oracle", "--generations", "1", "--population", "8", "--quiet",
                "--out", str(old)).exit_code == 0
    result = fool("evolve", "--config", str(old / "config.json"), "--generations", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "test-oracle_direct_s0" / "config.json").is_file()


@pytest.mark.parametrize("args, words", [
    (["--set", "mutation_etta=9"], "unknown setting 'mutation_etta'"),
    (["--set", "mutation_eta=lots"], "--mutation-eta must be a number"),
    (["--set", "mutation_eta"], "--set takes key=value"),
    (["--set", "until=nan"], "must be a finite number"),
    (["--config", "missing.json"], "cannot read missing.json"),
])
def test_bad_set_and_config_are_one_line(args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = fool("evolve", "--model", "test-oracle", "--quiet", "--out", str(tmp_path / "run"), *args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error") and words in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_config_with_wrong_types_is_one_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"population": "8"}))
    result = fool("evolve", "--model", "test-oracle", "--config", str(path), "--out", str(tmp_path / "r"))
    assert result.exit_code != 0 and "population must be an integer" in result.output


def test_set_and_config_refused_with_resume(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    for extra in (["--set", "mutation_eta=9"], ["--config", str(out / "config.json")]):
        result = fool("evolve", "--resume", str(out), "--generations", "3", *extra)
        assert result.exit_code != 0 and f"{extra[0]} cannot change on resume" in result.output, result.output


def test_resume_may_change_how_often_it_checkpoints(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    result = fool("evolve", "--resume", str(out), "--generations", "6", "--checkpoint-every", "2",
                  "--checkpoint-seconds", "0", "--checkpoint-background", "--quiet")
    assert result.exit_code == 0, result.output
    assert (_config(out)["checkpoint_every"], _config(out)["checkpoint_seconds"]) == (2, 0.0)
    assert _config(out)["checkpoint_background"] is True
    log = (out / "log.txt").read_text()
    assert "checkpoint: generation 4 (" in log and "generation 4 (" in log.split("written while the run went on")[0]


@pytest.mark.parametrize("command, cls, headings", [
    ("evolve", EvolveSettings, ["Model options:", "Search options:", "Budget options:", "Direct encoding options:",
                                "MAP-Elites options:", "GA (single target) options:", "CPPN encoding options:",
                                "Run options:", "Other options:"]),
    ("ascend", AscendSettings, ["Model options:", "Budget options:", "Ascent options:", "Perturbation options:"]),
    ("retrain", RetrainSettings, ["Model options:", "Evolution options:", "Training options:", "Data options:"]),
])
def test_help_lists_every_setting_by_group(command, cls, headings):
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for heading in headings:
        assert heading in result.output, heading
    for f in cls.fields():
        if f.metadata["cli"]:
            assert f" {flag_of(f.name, f)} " in result.output, f.name
    assert "--set KEY=VALUE" in result.output and "--config FILE" in result.output


def test_ascend_set_and_config_round_trip(tmp_path):
    out, again = tmp_path / "a", tmp_path / "b"
    result = fool("ascend", "--model", "test-oracle", "--classes", "0,1", "--steps", "3", "--device", "cpu",
                  "--set", "decay=0.001", "--preset", "yosinski", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _config(out)["decay"] == 0.001 and _config(out)["run"]["regularizers"]["blur_every"] == 4
    result = fool("ascend", "--config", str(out / "config.json"), "--steps", "2", "--quiet", "--out", str(again))
    assert result.exit_code == 0, result.output
    before, after = _config(out), _config(again)
    assert all(after[k] == before[k] for k in AscendSettings.types() if k not in ("out", "steps"))
