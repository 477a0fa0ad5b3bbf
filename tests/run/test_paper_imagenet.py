"""``--preset paper`` against ImageNet networks: 10-crop scoring and, for CPPNs, 400 children a generation (the
paper's ImageNet setup, PAPER.md), recorded in config.json; explicit values win; MNIST-sized networks and
networks that see their whole input keep 1 crop. Tiny ImageNet-shaped stand-ins keep each test to a second or two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from fooling.classifiers import Classifier, ModelSpec, Preprocess, register
from fooling.cli import main
from fooling.errors import FoolingError
from fooling.run import EvolutionRun
from fooling.run.multi import RunGroup
from fooling.run.sweep import sweep
from fooling.settings.evolve import EvolveSettings
from fooling.settings.sweep import SweepSettings

LABELS = [f"class {k}" for k in range(1000)]


class TinyImageNet(nn.Module):
    """(N, 3, 16, 16) -> (N, K) logits: 2x2 mean colours through a fixed linear layer."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(12, classes)
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            self.fc.weight.copy_(torch.randn(classes, 12, generator=g) * 4)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


def _register(name: str, resize, classes: int = 1000, dataset: str = "test") -> None:
    pre = Preprocess(size=(16, 16), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, resize=resize)
    labels = LABELS if classes == 1000 else [f"class {k}" for k in range(classes)]
    register(ModelSpec(name=name, dataset=dataset, input="3x16x16 RGB", num_classes=classes, description=name,
                       load=lambda device, crops: Classifier(TinyImageNet(classes), name=name, labels=labels,
                                                             preprocess=pre, device=device, crops=crops)))


_register("test-imagenet-crops", resize=18)  # 1000 classes, crops of an 18-pixel image: ImageNet-like
_register("test-imagenet-whole", resize=None)  # 1000 classes, but sees its whole input: no 10 crops
_register("test-imagenet-1001", resize=18, classes=1001, dataset="imagenet")  # as `fool retrain` widens one


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-imagenet-crops", preset="paper", generations=1, classes=[0, 1], seed=0, device="cpu",
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def _recorded(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def _used(run: EvolutionRun) -> tuple:
    return run.config.crops, run.config.population, run.config.initial_population, run.classifiers[0].crops


def test_the_paper_preset_on_an_imagenet_cppn_run_scores_10_crops_of_400_children(tmp_path):
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="cppn"))
    assert _used(run) == (10, 400, 400, 10)
    assert run.strategy.population == 400
    recorded = _recorded(tmp_path / "run")
    assert (recorded["crops"], recorded["population"], recorded["initial_population"]) == (10, 400, 400)
    summary = run.run(progress=False)
    assert summary["evaluations"] == 800
    resumed = EvolutionRun.resume(tmp_path / "run", generations=2)  # config.json's values, as the run began
    assert _used(resumed) == (10, 400, 400, 10)
    resumed.close()


def test_the_paper_preset_on_an_imagenet_direct_run_scores_10_crops_of_200_children(tmp_path):
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="direct"))
    assert _used(run) == (10, 200, 200, 10)
    run.close()
    assert _recorded(tmp_path / "run")["crops"] == 10


@pytest.mark.parametrize("given, used", [
    (dict(population=100), (10, 100, 100, 10)),
    (dict(crops=1), (1, 400, 400, 1)),
    (dict(population=100, initial_population=30, crops=1), (1, 100, 30, 1)),
    (dict(initial_population=30), (10, 400, 30, 10)),
    (dict(strategy="cppn-weight-es"), (10, 200, 200, 10)),  # another strategy: its own population
])
def test_explicit_values_win(tmp_path, given, used):
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="cppn", **given))
    assert _used(run) == used
    run.close()
    recorded = _recorded(tmp_path / "run")
    assert (recorded["crops"], recorded["population"], recorded["initial_population"]) == used[:3]


@pytest.mark.parametrize("model, used", [
    ("test-oracle", (1, 200, 200, 1)),  # MNIST-sized (4 classes): the paper's 200, one crop
    ("test-imagenet-whole", (1, 400, 400, 1)),  # 1000 classes but its whole input: 400, and 1 crop, not an error
    ("test-imagenet-1001", (10, 400, 400, 10)),  # the registry calls it an ImageNet network
])
def test_which_networks_get_the_imagenet_values(tmp_path, model, used):
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="cppn", model=model, classes=[0]))
    assert _used(run) == used
    run.close()


def test_an_ensemble_takes_10_crops_only_if_every_network_does(tmp_path):
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="cppn",
                                     models=["test-imagenet-crops", "test-imagenet-whole"]))
    assert _used(run) == (1, 400, 400, 1) and [c.crops for c in run.classifiers] == [1, 1]
    run.close()


def test_an_explicit_10_crops_on_a_whole_input_network_is_one_line(tmp_path):
    with pytest.raises(FoolingError, match="sees its whole 16x16 input"):
        EvolutionRun.start(_config(tmp_path / "run", model="test-imagenet-whole", crops=10))
    assert not (tmp_path / "run").exists()


def test_the_default_preset_is_unchanged(tmp_path):
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="cppn", preset="default"))
    assert _used(run) == (1, 50, 50, 1)
    run.close()


def test_runs_saved_before_resume_as_they_began(tmp_path):
    """config.json always recorded crops and the population: such a run keeps 1 crop and 200 children; one
    without crops at all (hand-written) keeps 1 too."""
    run = EvolutionRun.start(_config(tmp_path / "run", encoding="cppn", crops=1, population=200))
    run.run(progress=False)
    resumed = EvolutionRun.resume(tmp_path / "run", generations=2)
    assert _used(resumed) == (1, 200, 200, 1)
    resumed.close()
    path = tmp_path / "run" / "config.json"
    record = json.loads(path.read_text())
    del record["crops"]
    path.write_text(json.dumps(record))
    resumed = EvolutionRun.resume(tmp_path / "run", generations=2)
    assert _used(resumed) == (1, 200, 200, 1)
    resumed.close()


def test_a_group_of_seeds_and_encodings_takes_the_imagenet_values(tmp_path):
    group = RunGroup.start(_config(tmp_path / "group", seeds=[0, 1], encodings=["direct", "cppn"]))
    try:
        assert [_used(r) for r in group.runs] == [(10, 200, 200, 10)] * 2 + [(10, 400, 400, 10)] * 2
        group.run(progress=False)
    finally:
        group.close()
    assert _recorded(tmp_path / "group" / "cppn_s1")["population"] == 400


def test_a_sweep_with_the_paper_preset(tmp_path):
    grid = SweepSettings(out=str(tmp_path / "s"), seeds=[0], models=[["test-imagenet-crops"], ["test-oracle"]],
                         encodings=["cppn"], presets=["paper"],
                         settings=dict(generations=1, device="cpu", classes=[0], checkpoint_seconds=0))
    outcomes = sweep(grid)
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    recorded = [_recorded(o.path) for o in outcomes]
    assert [(r["crops"], r["population"]) for r in recorded] == [(10, 400), (1, 200)]


@pytest.mark.parametrize("args, used", [
    ([], (10, 400)),
    (["--crops", "1", "--population", "100"], (1, 100)),
    (["--set", "crops=1"], (1, 400)),
])
def test_the_command_line(tmp_path, args, used):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["evolve", "--quiet", "--model", "test-imagenet-crops", "--preset", "paper",
                                       "--encoding", "cppn", "--classes", "0", "--generations", "1",
                                       "--device", "cpu", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    recorded = _recorded(out)
    assert (recorded["crops"], recorded["population"]) == used


# --- a run's config.json as --config for other networks (issue: preset values carried as if given) ------------
def _evolve(out: Path, *args: str):
    return CliRunner().invoke(main, ["evolve", "--quiet", "--generations", "1", "--device", "cpu",
                                     "--out", str(out), *args])


def _settings_of(path: Path) -> tuple:
    recorded = _recorded(path)
    return recorded["crops"], recorded["population"], recorded["initial_population"]


@pytest.fixture
def paper_cppn_run(tmp_path) -> Path:
    """A --preset paper CPPN run against an ImageNet network that takes crops: 10 crops of 400 children."""
    out = tmp_path / "imagenet"
    result = _evolve(out, "--model", "test-imagenet-crops", "--preset", "paper", "--encoding", "cppn",
                     "--classes", "0")
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == (10, 400, 400)
    return out


def test_config_json_names_the_settings_its_networks_resolved(paper_cppn_run):
    assert _recorded(paper_cppn_run)["run"]["network_resolved"] == ["crops", "population", "initial_population"]


@pytest.mark.parametrize("model, used", [
    ("test-oracle", (1, 200, 200)),  # MNIST-sized: the paper's 200 and one crop, not the first run's 10 and 400
    ("test-imagenet-whole", (1, 400, 400)),  # ImageNet, but its whole input: 1 crop (10 was an error)
    ("test-imagenet-1001", (10, 400, 400)),
])
def test_config_resolves_the_networks_values_again_for_another_network(paper_cppn_run, tmp_path, model, used):
    out = tmp_path / "again"
    result = _evolve(out, "--config", str(paper_cppn_run / "config.json"), "--model", model)
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == used
    assert _recorded(out)["run"]["network_resolved"] == ["crops", "population", "initial_population"]


def test_config_with_the_same_network_reproduces_the_run(paper_cppn_run, tmp_path):
    out = tmp_path / "again"
    result = _evolve(out, "--config", str(paper_cppn_run / "config.json"))
    assert result.exit_code == 0, result.output
    before, after = _recorded(paper_cppn_run), _recorded(out)
    assert {k: v for k, v in after.items() if k not in ("out", "run")} == \
        {k: v for k, v in before.items() if k not in ("out", "run")}
    assert after["run"].get("network_resolved") == before["run"].get("network_resolved")


@pytest.mark.parametrize("args, used", [
    (["--population", "50"], (1, 50, 50)),  # the initial population follows it (it waited for the network too)
    (["--crops", "1", "--set", "population=400"], (1, 400, 400)),
    (["--set", "initial_population=30"], (1, 200, 30)),
])
def test_config_for_another_network_keeps_what_the_user_gives(paper_cppn_run, tmp_path, args, used):
    out = tmp_path / "again"
    result = _evolve(out, "--config", str(paper_cppn_run / "config.json"), "--model", "test-oracle", *args)
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == used


def test_config_keeps_values_the_first_run_was_given(tmp_path):
    """--crops and --population given to the first run were never left to its networks: they carry over."""
    first = tmp_path / "first"
    result = _evolve(first, "--model", "test-imagenet-crops", "--preset", "paper", "--encoding", "cppn",
                     "--classes", "0", "--crops", "1", "--population", "100")
    assert result.exit_code == 0, result.output
    assert _recorded(first)["run"]["network_resolved"] == []
    out = tmp_path / "again"
    result = _evolve(out, "--config", str(first / "config.json"), "--model", "test-oracle")
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == (1, 100, 100)


def test_config_of_an_mnist_run_takes_10_crops_on_an_imagenet_network(tmp_path):
    """The other way round: the 1 crop an MNIST network resolved is resolved again for an ImageNet one."""
    first = tmp_path / "mnist"
    result = _evolve(first, "--model", "test-oracle", "--preset", "paper", "--population", "8")
    assert result.exit_code == 0, result.output
    assert _recorded(first)["crops"] == 1 and _recorded(first)["run"]["network_resolved"] == ["crops"]
    out = tmp_path / "again"
    result = _evolve(out, "--config", str(first / "config.json"), "--model", "test-imagenet-crops", "--classes", "0")
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == (10, 8, 8)


def test_a_hand_written_config_is_taken_as_given(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"preset": "paper", "encoding": "cppn", "crops": 1, "population": 300}))
    out = tmp_path / "run"
    result = _evolve(out, "--config", str(path), "--model", "test-imagenet-crops", "--classes", "0")
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == (1, 300, 300)


def _as_recorded_before(run_dir: Path) -> None:
    """config.json as runs recorded it before it named the settings its networks resolved (or its preset filled)."""
    record = _recorded(run_dir)
    record["run"].pop("network_resolved", None)
    record["run"].pop("preset_filled", None)
    (run_dir / "config.json").write_text(json.dumps(record, indent=2))


def test_a_config_recorded_before_is_taken_as_before(paper_cppn_run, tmp_path):
    """Without network_resolved every value of config.json is taken as given: 400 children and 10 crops."""
    _as_recorded_before(paper_cppn_run)
    out = tmp_path / "same"
    result = _evolve(out, "--config", str(paper_cppn_run / "config.json"))
    assert result.exit_code == 0, result.output
    assert _settings_of(out) == (10, 400, 400)
    result = _evolve(tmp_path / "whole", "--config", str(paper_cppn_run / "config.json"), "--model",
                     "test-imagenet-whole")
    assert result.exit_code != 0 and "sees its whole 16x16 input" in result.output  # its 10 crops, as before


@pytest.mark.parametrize("recorded_before", [False, True])
def test_resume_continues_config_json_and_keeps_what_it_recorded(paper_cppn_run, recorded_before):
    if recorded_before:
        _as_recorded_before(paper_cppn_run)
    run = EvolutionRun.resume(paper_cppn_run, generations=2)
    try:
        assert _used(run) == (10, 400, 400, 10)
    finally:
        run.close()
    run_record = _recorded(paper_cppn_run)["run"]
    if recorded_before:
        assert "network_resolved" not in run_record
    else:
        assert run_record["network_resolved"] == ["crops", "population", "initial_population"]


@pytest.mark.parametrize("value", [5, ["crops", 3], ["no_such_setting"],
                                   ["crops", "encoding"]])  # a setting no network resolves: not silently dropped
def test_a_bad_network_resolved_is_one_line(paper_cppn_run, tmp_path, value):
    record = _recorded(paper_cppn_run)
    record["run"]["network_resolved"] = value
    (paper_cppn_run / "config.json").write_text(json.dumps(record))
    result = _evolve(tmp_path / "again", "--config", str(paper_cppn_run / "config.json"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "run.network_resolved must be a list of setting names" in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "again").exists()
    with pytest.raises(FoolingError, match="run.network_resolved must be a list of setting names"):
        EvolutionRun.resume(paper_cppn_run, generations=2)
