"""Targeted perturbation attacks: change a real image, within a norm ball, toward a target class.

FGSM (one step of size ε) and PGD (``steps`` steps of size α, each followed by
projection onto the ε-ball around the original and onto [0, 1]), for the L∞ and
L2 norms. Both ascend the target's log-probability; one copy of the image per
target class, all in one batch, on the gradient engine (:func:`.gradient.ascend` over
:class:`.gradient.BallPixels` with sign or L2 steps).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..archive import THRESHOLDS
from ..errors import FoolingError
from ..objective import Objective
from ..settings.ascend import METHODS, NORMS
from .gradient import AscentResult, BallPixels, StepRule, ascend, steepest_step
from .gradient.parameterizations import project_ball as project

__all__ = ["change_sizes", "fit_photo", "perturb", "project", "steepest_step"]


def change_sizes(images: torch.Tensor, original: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(L∞, L2) of images - original per image, in [0, 1] pixel units: two arrays (B,)."""
    delta = (images.float() - original.float()).flatten(1)
    return delta.abs().amax(1).cpu().numpy(), delta.norm(dim=1).cpu().numpy()


def perturb(
    objective: Objective,
    original: torch.Tensor,
    targets: np.ndarray,
    epsilon: float,
    norm: str = "linf",
    method: str = "pgd",
    steps: int = 40,
    step_size: Optional[float] = None,
    stop_at: Optional[float] = THRESHOLDS[-1],
    on_step: Optional[Callable[[int, np.ndarray], None]] = None,
) -> AscentResult:
    """Push one copy of ``original`` (1, C, H, W) in [0, 1] toward each of ``targets`` (B,), within ε.

    PGD takes ``steps`` steps of ``step_size`` (default 2.5·ε/steps); FGSM one step of ε.
    Copies stop once their target confidence reaches ``stop_at``. The result holds the
    most confident image per target; ``extra`` has "linf" and "l2" of their changes.
    """
    if norm not in NORMS:
        raise FoolingError(f"--norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if method not in METHODS:
        raise FoolingError(f"attack method must be one of {', '.join(METHODS)}, not {method!r}")
    if epsilon <= 0:
        raise FoolingError(f"--epsilon must be positive, got {epsilon}")
    if method == "fgsm":
        steps, step_size = 1, epsilon
    elif step_size is None:
        step_size = 2.5 * epsilon / steps
    targets = np.asarray(targets, dtype=np.int64)
    original = original.to(objective.device, torch.float32)
    rule = StepRule(objective="logprob", rate="sign" if norm == "linf" else "l2", step_size=step_size)
    result = ascend(objective, targets, BallPixels(original, len(targets), epsilon, norm), steps, rule, stop_at,
                    on_step)
    linf, l2 = change_sizes(result.images, original.cpu())
    result.extra = {"linf": linf, "l2": l2}
    return result


def fit_photo(photo: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(1, C, H, W) in [0, 1] -> (1, *shape): shorter side resized to fit, then centre-cropped."""
    _, h, w = shape
    H, W = photo.shape[-2:]
    scale = max(h / H, w / W)
    size = (max(h, round(H * scale)), max(w, round(W * scale)))
    if size != (H, W):
        photo = F.interpolate(photo, size=size, mode="bilinear", align_corners=False, antialias=True)
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    return photo[..., top : top + h, left : left + w].clamp(0.0, 1.0).contiguous()
