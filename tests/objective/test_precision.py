"""Low precision in the objective: fitness in bf16, fp32 re-scoring of elites, and what a bf16 run writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from fooling.classifiers import Classifier, Preprocess
from fooling.objective import EliteRescorer, Objective, trusted_passed
from fooling.run import EvolutionRun
from fooling.settings.evolve import EvolveSettings

BF16 = 2e-2  # bf16 confidences agree with fp32 within this (see tests/classifiers/test_device.py)


def conv(seed: int) -> Classifier:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4))
    return Classifier(net, name=f"conv-{seed}", labels=list("abcd"),
                      preprocess=Preprocess(size=(8, 8), channels=1, mean=(0.5,), std=(0.5,)))


def test_objective_configures_its_classifiers():
    members = [conv(0), conv(1)]
    objective = Objective(members, [0, 2], precision="bf16", compile=False)
    assert [c.precision for c in members] == ["bf16", "bf16"] and objective.precision == "bf16"
    assert Objective([conv(2)], [0]).precision == "fp32"


@pytest.mark.parametrize("combine", ["mean", "min"])
def test_rescore_fp32_equals_an_fp32_objective(combine):
    images = torch.rand(32, 1, 8, 8)
    reference, ref_scores = Objective([conv(0), conv(1)], [0, 1, 3], combine).fitness(images)
    low = Objective([conv(0), conv(1)], [0, 1, 3], combine, precision="bf16")
    fitness, scores = low.fitness(images)
    assert np.abs(fitness - reference).max() < BF16
    again, again_scores = low.rescore_fp32(images)
    np.testing.assert_allclose(again, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(again_scores, ref_scores, rtol=0, atol=1e-6)


def test_rescorer_rescores_only_changed_elites():
    objective = Objective([conv(0)], [0, 1, 2, 3], precision="bf16")
    pictures = torch.rand(4, 1, 1, 8, 8)  # one elite image per cell
    asked: list[list[int]] = []

    def images(cells: np.ndarray) -> torch.Tensor:
        asked.append(cells.tolist())
        return pictures[cells, 0]

    fitness = np.array([0.5, -np.inf, 0.2, 0.7])
    rescorer = EliteRescorer(objective)
    values, scores = rescorer.update(fitness, images)
    assert asked == [[0, 2, 3]] and scores is None
    exact, _ = objective.rescore_fp32(pictures[:, 0])
    np.testing.assert_allclose(values[[0, 2, 3]], exact[[0, 2, 3], [0, 2, 3]])
    assert values[1] == -np.inf
    pictures[2] = torch.rand(1, 1, 8, 8)
    fitness = fitness.copy()
    fitness[2] = 0.3
    values, _ = rescorer.update(fitness, images)
    assert asked[-1] == [2]
    assert values[2] == pytest.approx(objective.rescore_fp32(pictures[2])[0][0, 2])


def test_trusted_passed_keeps_only_what_fp32_bears_out():
    passed = {"0.99": 3, "0.999": 5, "0.9999": 9}
    assert trusted_passed(passed, 0.9995) == {"0.99": 3, "0.999": 5, "0.9999": None}
    assert trusted_passed(passed, None) == {"0.99": None, "0.999": None, "0.9999": None}
    assert trusted_passed({"0.99": None}, 1.0) == {"0.99": None}


def test_a_bf16_run_writes_fp32_confidences(tmp_path):
    config = EvolveSettings(model="test-oracle", generations=6, population=16, seed=1, device="cpu",
                            checkpoint_every=3, checkpoint_seconds=0, precision="bf16", out=str(tmp_path / "run"))
    run = EvolutionRun.start(config)
    summary = run.run(progress=False)
    assert summary["precision"] == "bf16" and summary["confidence_precision"] == "fp32"
    cells = run.archive.occupied
    images = run.encoding.decode(run.archive.elites(cells), run.device)
    exact, _ = run.objective.rescore_fp32(images)
    for i, cell in enumerate(cells):
        entry = summary["classes"][cell]
        assert entry["confidence"] == pytest.approx(exact[i, cell], abs=1e-9)
        assert entry["confidence_bf16"] == pytest.approx(run.archive.fitness[cell])
        assert abs(entry["confidence"] - entry["confidence_bf16"]) < BF16
        for threshold, generation in entry["passed"].items():
            assert generation is None or entry["confidence"] >= float(threshold)
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["classes"] == summary["classes"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "bf16"


def test_an_fp32_run_summary_is_unchanged(tmp_path):
    config = EvolveSettings(model="test-oracle", generations=2, population=8, device="cpu", out=str(tmp_path / "r"))
    summary = EvolutionRun.start(config).run(progress=False)
    assert "precision" not in summary and all("confidence_bf16" not in c for c in summary["classes"])
