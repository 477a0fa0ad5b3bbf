"""Image regularisers for gradient ascent (Yosinski et al. 2015, "Understanding Neural Networks
Through Deep Visualization"), applied after each step to images measured from a centre.

The centre is the image the network sees as all-zero input (its normalisation
mean), so "decay" and "zeroing" pull pixels toward it, as in the original Caffe
code, where images were mean-subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FoolingError


@dataclass(frozen=True)
class Regularizers:
    """decay: L2 decay per step, x <- x·(1 - decay). blur_radius: Gaussian sigma (pixels), applied
    every ``blur_every`` steps (0: never). norm_percentile: zero the pixels whose norm over channels
    is below this percentile (0-100; 0: off). contribution_percentile: zero the pixels whose
    |contribution| (sum over channels of -x·grad, the predicted change from zeroing them) is below it.
    """

    decay: float = 0.0
    blur_radius: float = 0.0
    blur_every: int = 0
    norm_percentile: float = 0.0
    contribution_percentile: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise FoolingError(f"--decay must lie in [0, 1), got {self.decay}")
        if self.blur_radius < 0 or self.blur_every < 0:
            raise FoolingError("--blur-radius and --blur-every must not be negative")
        if 0 < self.blur_radius < 0.3:
            raise FoolingError(f"--blur-radius {self.blur_radius} is too small to blur; use 0 (off) or >= 0.3")
        for name in ("norm_percentile", "contribution_percentile"):
            if not 0.0 <= getattr(self, name) < 100.0:
                raise FoolingError(f"--{name.replace('_', '-')} must lie in [0, 100), got {getattr(self, name)}")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with standard deviation ``sigma`` pixels (kernel ±4σ)."""
    radius = max(1, int(4.0 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = x.shape
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.view(n, c, h, w)


def _below_percentile(score: torch.Tensor, percentile: float) -> torch.Tensor:
    """(N, H, W) scores -> bool mask (N, 1, H, W) of pixels under each image's ``percentile``."""
    cut = torch.quantile(score.flatten(1).float(), percentile / 100.0, dim=1)
    return (score < cut.view(-1, 1, 1).to(score.dtype)).unsqueeze(1)


def zero_small_norm(x: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero the pixels of (N, C, H, W) whose L2 norm over channels is below ``percentile`` (per image)."""
    return x.masked_fill(_below_percentile(x.norm(dim=1), percentile), 0.0)


def zero_small_contribution(x: torch.Tensor, grad: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero the pixels whose |Σ_c -x·grad| (predicted effect of zeroing them) is below ``percentile``."""
    contribution = (-x * grad).sum(dim=1).abs()
    return x.masked_fill(_below_percentile(contribution, percentile), 0.0)


def regularize(x: torch.Tensor, grad: torch.Tensor, step: int, reg: Regularizers) -> torch.Tensor:
    """One step's regularisation of centred images x (N, C, H, W), given the step's gradient."""
    if reg.decay:
        x = x * (1.0 - reg.decay)
    if reg.blur_radius > 0 and reg.blur_every and step % reg.blur_every == 0:
        x = gaussian_blur(x, reg.blur_radius)
    if reg.norm_percentile > 0:
        x = zero_small_norm(x, reg.norm_percentile)
    if reg.contribution_percentile > 0:
        x = zero_small_contribution(x, grad, reg.contribution_percentile)
    return x
