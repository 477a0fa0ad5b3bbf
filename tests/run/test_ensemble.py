"""Ensemble fitness in `fool evolve --models A,B --combine mean|min`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from fooling.analysis import run_transfer
from fooling.classifiers import Classifier, Preprocess
from fooling.cli import main
from fooling.settings.evolve import EvolveSettings
from fooling.errors import FoolingError
from fooling.run import EvolutionRun
from fooling.objective import Objective
from fooling.rundir import read_run

PAIR = ["mnist-lenet", "mnist-digitcnn"]
GREY8 = Preprocess(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,))


def fool(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def linear_classifier(seed: int, classes: int = 4) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, classes)), name=f"linear-{seed}",
                      labels=[str(k) for k in range(classes)], preprocess=GREY8)


@pytest.mark.parametrize("combine", ["mean", "min"])
def test_objective_combines_members(combine):
    members = [linear_classifier(0), linear_classifier(1), linear_classifier(2)]
    images = torch.rand(5, 1, 8, 8)
    fitness, scores = Objective(members, [1, 3], combine).fitness(images)
    expected = np.stack([m.probs(images)[:, [1, 3]].numpy() for m in members], axis=-1)
    assert scores.shape == (5, 2, 3)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_allclose(fitness, expected.mean(-1) if combine == "mean" else expected.min(-1), rtol=1e-6)


def test_objective_single_model_has_no_scores():
    fitness, scores = Objective([linear_classifier(0)], [0, 1, 2, 3]).fitness(torch.rand(2, 1, 8, 8))
    assert fitness.shape == (2, 4) and scores is None


def test_objective_refuses_different_class_counts():
    with pytest.raises(FoolingError, match="disagree on the number of classes"):
        Objective([linear_classifier(0, 4), linear_classifier(1, 5)], [0])


@pytest.fixture(scope="module")
def ensemble_runs(mnist_lenet: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ensemble")
    out = {}
    for combine in ("mean", "min"):
        out[combine] = root / combine
        result = fool("evolve", "--models", ",".join(PAIR), "--combine", combine, "--generations", "3",
                      "--population", "16", "--device", "cpu", "--quiet", "--out", out[combine])
        assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("combine", ["mean", "min"])
def test_summary_records_every_member(ensemble_runs, combine):
    run = ensemble_runs[combine]
    config = json.loads((run / "config.json").read_text())
    assert config["models"] == PAIR and config["combine"] == combine
    summary = json.loads((run / "summary.json").read_text())
    assert summary["models"] == PAIR and summary["model"] == PAIR[0]
    reduce = np.mean if combine == "mean" else np.min
    for entry in summary["classes"]:
        assert set(entry["scores"]) == set(PAIR)
        assert entry["confidence"] == pytest.approx(reduce(list(entry["scores"].values())), rel=1e-9)
    names = sorted(p.name for p in (run / "elites").glob("*.png"))
    assert names == sorted(f"{c['index']}_{c['label']}.png" for c in summary["classes"])


def test_transfer_rescores_an_ensemble_source(ensemble_runs):
    run = read_run(ensemble_runs["min"])
    assert run.source == "mnist-lenet+mnist-digitcnn (min)"
    result = run_transfer([run], PAIR, "cpu")
    by_target = {t: {s.index: s for s in result.scores if s.target == t} for t in PAIR}
    for index, lenet in by_target["mnist-lenet"].items():
        digit = by_target["mnist-digitcnn"][index]
        assert lenet.source_confidence == pytest.approx(min(lenet.confidence, digit.confidence))
        assert lenet.source_confidence == pytest.approx(lenet.archive_confidence, abs=0.05)  # 8-bit PNG
    assert all(p.target_is_source for p in result.pairs)


def test_resumed_ensemble_equals_uninterrupted(mnist_lenet, tmp_path):
    def config(out: Path) -> EvolveSettings:
        return EvolveSettings(models=PAIR, combine="min", generations=4, population=8, seed=5, device="cpu",
                              checkpoint_every=1, checkpoint_seconds=0, out=str(out))

    straight = EvolutionRun.start(config(tmp_path / "a")).run(progress=False)
    EvolutionRun.start(config(tmp_path / "b")).run(progress=False, stop_after=2)
    resumed = EvolutionRun.resume(tmp_path / "b").run(progress=False)
    assert [c["scores"] for c in resumed["classes"]] == [c["scores"] for c in straight["classes"]]
    assert [c["confidence"] for c in resumed["classes"]] == [c["confidence"] for c in straight["classes"]]


def test_mismatched_ensemble_is_a_one_line_error(mnist_lenet, tmp_path):
    result = fool("evolve", "--models", "mnist-lenet,test-oracle", "--generations", "1", "--out", tmp_path / "r")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "disagree on the number of classes" in lines[0]
    assert not (tmp_path / "r").exists()
