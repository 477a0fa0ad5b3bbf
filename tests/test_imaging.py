"""Image helpers: HLS colour conversion (also under autograd) and PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fooling.imaging import hls_to_rgb, save_png


def test_hls_to_rgb_gives_the_same_numbers_with_and_without_autograd():
    hls = torch.rand(4, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hls[:, :, :2] = 0.0  # hue 0, black, no saturation
    hls[:, :, 2:4] = 1.0
    with torch.no_grad():
        fast = hls_to_rgb(hls)
    tracked = hls.clone().requires_grad_(True)
    slow = hls_to_rgb(tracked)
    assert slow.requires_grad and torch.equal(fast, slow.detach())
    assert torch.equal(hls_to_rgb(hls), fast) and not hls_to_rgb(hls).requires_grad
    assert torch.equal(hls, hls.clone())  # the input is never written to


def test_hls_to_rgb_has_the_right_gradients():
    # away from the kinks of the piecewise-linear hue ramps, the lightness 1/2 and the [0, 1] bounds
    hls = torch.tensor([[0.05, 0.3, 0.7], [0.4, 0.6, 0.2], [0.7, 0.45, 0.9], [0.93, 0.2, 0.5]],
                       dtype=torch.float64).T.reshape(1, 3, 4).contiguous().requires_grad_(True)
    assert torch.autograd.gradcheck(hls_to_rgb, (hls,))


@pytest.mark.parametrize("shape", [(256, 256, 3), (200, 300, 1), (128, 96, 4), (28, 28, 1), (150, 200)])
def test_png_round_trips_noise(shape, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    save_png(image, tmp_path / "x.png")
    expected = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), expected)


def test_png_of_a_smooth_image_is_compressed(tmp_path):
    y, x = np.mgrid[0:256, 0:256]
    image = np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)
    save_png(image, tmp_path / "smooth.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "smooth.png")), image)
    assert (tmp_path / "smooth.png").stat().st_size < image.nbytes / 10


def test_png_from_a_float_tensor_with_upscaling(tmp_path):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
    save_png(image, tmp_path / "x.png", scale=2)
    expected = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy().repeat(2, 0).repeat(2, 1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), expected)
