"""What the gradient engine optimises: parameters that render differentiably to images.

:class:`PixelImages` (pixels measured from a centre, regularised each step),
:class:`BallPixels` (pixels kept in an Lp ball around an original: perturbation attacks) and
:class:`~.cppn.CppnWeights` (the connection weights of evolved CPPNs).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Protocol

import torch

from ...objective import Objective, image_shape
from ..regularizers import Regularizers, regularize
from .rules import _flat_norm


class Parameterization(Protocol):
    """Parameters (B, ...) that render (differentiably) to images (B, C, H, W) in [0, 1]."""

    def parameters(self) -> torch.Tensor:
        """The current parameters, first dimension B (one row per image)."""

    def sizes(self) -> torch.Tensor:
        """(B,) the number of real parameters in each row (rows may be zero-padded)."""

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params -> images (B, C, H, W) in [0, 1], differentiably."""

    def project(self, params: torch.Tensor, grad: torch.Tensor, step: int) -> None:
        """Make ``params`` (moved by a step of the rule, from gradient ``grad``) the new parameters,
        regularised and projected onto what is allowed."""

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every image but ``rows`` (long indices) from further optimisation."""

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> Optional[list[Any]]:
        """What to keep of images ``rows`` besides their pixels when they are the best so far (e.g.
        the genomes behind them), given this step's ``params``; None: the pixels are all there is."""


def update(param: Parameterization, grad: torch.Tensor, lr: torch.Tensor, step: int) -> None:
    """params <- project(params + lr·grad) for per-image learning rates lr (B,)."""
    x = param.parameters()
    param.project(x + lr.view(-1, *[1] * (x.dim() - 1)) * grad, grad, step)


class PixelImages:
    """Pixel-space parameterisation: params are images minus ``centre`` (N, C, H, W); regularised each step."""

    def __init__(self, images: torch.Tensor, centre: torch.Tensor, regularizers: Regularizers) -> None:
        self.centre = centre.to(images.device)
        self.x = (images.detach().float() - self.centre).contiguous()
        self.reg = regularizers

    def parameters(self) -> torch.Tensor:
        return self.x

    def sizes(self) -> torch.Tensor:
        return torch.full((self.x.shape[0],), self.x[0].numel(), device=self.x.device)

    def render(self, params: torch.Tensor) -> torch.Tensor:
        return params + self.centre

    def project(self, params: torch.Tensor, grad: torch.Tensor, step: int) -> None:
        x = regularize(params, grad, step, self.reg)
        self.x = (x + self.centre).clamp_(0.0, 1.0) - self.centre

    def update(self, grad: torch.Tensor, lr: torch.Tensor, step: int) -> None:
        update(self, grad, lr, step)

    def keep(self, rows: torch.Tensor) -> None:
        self.x = self.x[rows]

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> None:
        return None


def project_ball(images: torch.Tensor, original: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """Pull (B, C, H, W) back into the ε-ball (``norm``) around ``original`` (1 or B, C, H, W), then into [0, 1]."""
    delta = images - original
    if norm == "linf":
        delta = delta.clamp(-epsilon, epsilon)
    else:
        delta = delta * torch.clamp(epsilon / _flat_norm(delta), max=1.0)
    return (original + delta).clamp(0.0, 1.0)


def quantize(images: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Round [0, 1] images to ``levels`` + 1 grey levels as an 8-bit file stores them (round half away,
    :func:`fooling.imaging.to_uint8`), straight through: the forward pass sees the rounded image, the
    gradient passes as if unrounded."""
    rounded = images.clamp(0.0, 1.0).mul(levels).round().div(levels)
    return images + (rounded - images).detach()


class BallPixels:
    """Copies of one image ``original`` (1, C, H, W) in [0, 1], one per target, each kept within
    ``epsilon`` of it in ``norm`` ("linf" | "l2") and in [0, 1]: the parameters are the images.

    quantized: render the images rounded to 8 bits (:func:`quantize`), so that every image scored, kept
    and returned is exactly what an 8-bit file of it holds (for an 8-bit original and an L∞ ε that is a
    whole number of grey levels, the rounded image stays in the ball)."""

    def __init__(self, original: torch.Tensor, n: int, epsilon: float, norm: str, quantized: bool = False) -> None:
        self.original = original.float()
        self.x = original.float().expand(n, -1, -1, -1).clone()
        self.epsilon, self.norm, self.quantized = epsilon, norm, quantized

    @classmethod
    def batch(cls, originals: torch.Tensor, epsilon: float, norm: str,
              start: Optional[torch.Tensor] = None, quantized: bool = False) -> "BallPixels":
        """One image per original (B, C, H, W), each kept in its own ball; starting at ``start`` (default the
        originals)."""
        ball = cls(originals[:1], 1, epsilon, norm, quantized)
        ball.original, ball.per_image = originals.float(), True
        ball.x = (originals if start is None else start).float().clone()
        return ball

    def parameters(self) -> torch.Tensor:
        return self.x

    def sizes(self) -> torch.Tensor:
        return torch.full((self.x.shape[0],), self.x[0].numel(), device=self.x.device)

    def render(self, params: torch.Tensor) -> torch.Tensor:
        if not self.quantized:
            return params
        q = quantize(params)
        if self.norm == "linf":  # whole grey levels: for an 8-bit original the rounded image stays in the ball
            e = math.floor(self.epsilon * 255 + 1e-6) / 255
            q = self.original + (q - self.original).clamp(-e, e)
        return q

    def project(self, params: torch.Tensor, grad: torch.Tensor, step: int) -> None:
        self.x = project_ball(params, self.original, self.epsilon, self.norm)

    def keep(self, rows: torch.Tensor) -> None:
        self.x = self.x[rows]
        if getattr(self, "per_image", False):
            self.original = self.original[rows]

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> None:
        return None


def initial_images(objective: Objective, n: int, init: str, generator: torch.Generator,
                   shape: Optional[tuple[int, int, int]] = None) -> torch.Tensor:
    """n starting images (n, C, H, W) on the CPU: "mean" = the centre plus N(0, 1/255) noise (the
    original code's start), "uniform" = uniform noise in [0, 1]. shape: default :func:`image_shape`
    of the objective's first classifier."""
    c, h, w = shape or image_shape(objective.classifiers[0])
    if init == "uniform":
        return torch.rand((n, c, h, w), generator=generator)
    if init == "mean":
        noise = torch.randn((n, c, h, w), generator=generator) / 255.0
        return (objective.centre.cpu() + noise).clamp_(0.0, 1.0)
    raise ValueError(f"init must be mean or uniform, not {init!r}")


class TanhPixels:
    """Carlini-Wagner's change of variables: parameters w (B, C, H, W), images (tanh(w) + 1) / 2, always in
    [0, 1] without clipping; starts at w = atanh(2x − 1) of ``images`` (slightly shrunk to stay finite).

    linf: also keep each image within this L∞ distance of ``images`` (a box clipped in the rendering;
    None: no bound, the original attack). quantized: render rounded to 8 bits (:func:`quantize`), so what
    is scored and kept is what an 8-bit file holds."""

    def __init__(self, images: torch.Tensor, linf: Optional[float] = None, quantized: bool = False) -> None:
        self.original = images.detach().float()
        self.w = torch.atanh((self.original * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        self.linf, self.quantized = linf, quantized
        if linf is not None:  # whole grey levels, so that rounding cannot leave the box
            self.linf = math.floor(linf * 255 + 1e-6) / 255 if quantized else linf

    def parameters(self) -> torch.Tensor:
        return self.w

    def sizes(self) -> torch.Tensor:
        return torch.full((self.w.shape[0],), self.w[0].numel(), device=self.w.device)

    def render(self, params: torch.Tensor) -> torch.Tensor:
        x = (torch.tanh(params) + 1) / 2
        if self.linf is not None:
            x = self.original + (x - self.original).clamp(-self.linf, self.linf)
        return quantize(x) if self.quantized else x

    def project(self, params: torch.Tensor, grad: torch.Tensor, step: int) -> None:
        self.w = params

    def keep(self, rows: torch.Tensor) -> None:
        self.w, self.original = self.w[rows], self.original[rows]

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> None:
        return None
