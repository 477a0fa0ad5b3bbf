"""The objective: fitness without gradients (what the run loop scores with), differentiable target scores,
mean/min ensembles, the class-count check, and the one image-shape policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fooling.classifiers import Classifier, Preprocess
from fooling.errors import FoolingError
from fooling.objective import Objective, image_shape

GREY8 = Preprocess(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,))


def linear(seed: int, classes: int = 4, crops: int = 1, resize=None) -> Classifier:
    torch.manual_seed(seed)
    pre = Preprocess(size=(8, 8), channels=1, mean=(0.5,), std=(0.5,), resize=resize)
    return Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, classes)), name=f"linear-{seed}",
                      labels=[str(k) for k in range(classes)], preprocess=pre, crops=crops)


def _big(resize, size=224) -> Classifier:
    pre = Preprocess(size=(size, size), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, resize=resize)
    return Classifier(nn.Flatten(), name="x", labels=["a"], preprocess=pre)


# --- fitness ------------------------------------------------------------------------------------------------
def _reference(members, classes, combine="mean", images=None):
    """The fitness the run loop computed before the objective existed (its Scorer), written out."""
    per_model = [m.probs(images)[:, classes].cpu() for m in members]
    if len(per_model) == 1:
        return per_model[0].double().numpy(), None
    stacked = torch.stack(per_model, dim=-1).double()
    return (stacked.mean(-1) if combine == "mean" else stacked.min(-1).values).numpy(), stacked.numpy()


def test_fitness_equals_the_old_scorer_on_the_oracle(oracle):
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fitness, scores = Objective([oracle], [3, 0, 2])(images)
    old_fitness, old_scores = _reference([oracle], [3, 0, 2], images=images)
    assert fitness.dtype == np.float64 and fitness.shape == (6, 3) and scores is None is old_scores
    assert np.array_equal(fitness, old_fitness)


@pytest.mark.parametrize("combine", ["mean", "min"])
def test_fitness_equals_the_old_scorer_on_an_ensemble(oracle, combine):
    members = [oracle, linear(0), linear(1)]
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    fitness, scores = Objective(members, [1, 3], combine).fitness(images)
    old_fitness, old_scores = _reference(members, [1, 3], combine, images)
    assert scores.shape == (5, 2, 3)
    assert np.array_equal(fitness, old_fitness) and np.array_equal(scores, old_scores)


def test_models_that_disagree_on_class_counts_are_refused(oracle):
    with pytest.raises(FoolingError, match="disagree on the number of classes: test-oracle \\(4\\), linear-0 \\(5\\)"):
        Objective([oracle, linear(0, classes=5)], [0])
    with pytest.raises(FoolingError, match="ensemble rule"):
        Objective([oracle], [0], combine="max")


# --- with gradients -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("crops", [1, 10])
def test_target_scores_match_the_classifier(crops):
    clf = linear(2, crops=crops, resize=10 if crops == 10 else None)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 1, 3])
    obj, rows = Objective([clf], range(4)), torch.arange(3)
    torch.testing.assert_close(obj.target_scores(x, targets, "logit"), clf.logits(x)[rows, targets])
    torch.testing.assert_close(obj.target_scores(x, targets, "logprob"), clf.log_probs(x)[rows, targets])
    torch.testing.assert_close(obj.target_scores(x, targets, "prob"), clf.probs(x)[rows, targets])
    assert obj.scores(x, targets).top1.tolist() == (clf.probs(x).argmax(1) == targets).tolist()
    with pytest.raises(ValueError, match="kind"):
        obj.target_scores(x, targets, "rank")


def test_target_score_gradients_match_finite_differences(oracle):
    """On the oracle: autograd of each image's target score against central differences (the forward
    pass is float32, so steps of 1e-3 and a loose tolerance)."""
    obj = Objective([oracle], range(4))
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([1, 2])
    for kind in ("prob", "logprob", "logit"):
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(obj.target_scores(xg, targets, kind).sum(), xg)
        for idx in [(0, 0, 2, 3), (1, 0, 5, 1), (0, 0, 7, 7), (1, 0, 4, 0)]:
            e = torch.zeros_like(x)
            e[idx] = h = 1e-3
            numeric = (obj.target_scores(x + e, targets, kind) - obj.target_scores(x - e, targets, kind)).sum() / (2 * h)
            assert grad[idx].item() == pytest.approx(numeric.item(), rel=2e-3, abs=1e-4)


@pytest.mark.parametrize("combine", ["mean", "min"])
def test_ensemble_target_scores_combine_members(oracle, combine):
    members = [oracle, linear(0), linear(1)]
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(4), requires_grad=True)
    targets = torch.tensor([0, 1, 2, 3])
    obj = Objective(members, range(4), combine)
    probs = torch.stack([m.probs(x.detach())[torch.arange(4), targets] for m in members])
    logits = torch.stack([m.logits(x.detach())[torch.arange(4), targets] for m in members])
    expected = probs.mean(0) if combine == "mean" else probs.min(0).values
    torch.testing.assert_close(obj.target_scores(x, targets, "prob").detach(), expected)
    expected = logits.mean(0) if combine == "mean" else logits.min(0).values
    torch.testing.assert_close(obj.target_scores(x, targets, "logit").detach(), expected)
    fitness, _ = obj.fitness(x.detach())  # the combined probability is the fitness of the target's cell
    np.testing.assert_allclose(fitness[np.arange(4), targets.numpy()],
                               obj.target_scores(x, targets).detach().double().numpy(), rtol=1e-5)
    (grad,) = torch.autograd.grad(obj.target_scores(x, targets).sum(), x)
    assert grad.shape == x.shape and grad.abs().sum() > 0
    combined = obj.probs(x.detach())
    torch.testing.assert_close(combined.sum(1), torch.ones(4)) if combine == "mean" else None


# --- the image-shape policy ------------------------------------------------------------------------------------
def test_images_are_made_at_the_side_the_preprocessing_resizes_to(oracle):
    """Pixels and CPPNs alike: the network's resize is then the identity, and its centre crop takes drawn pixels."""
    assert image_shape(_big(256)) == (3, 256, 256)  # EfficientNet-Lite0, AlexNet: the paper's 256
    assert image_shape(_big(232)) == (3, 232, 232)  # ResNet-50 V2
    assert image_shape(_big(None)) == (3, 224, 224)
    assert image_shape(oracle) == (1, 8, 8)  # MNIST-like: the input itself
