"""Targeted perturbation attacks: change a real image, within a norm ball, toward a target class.

FGSM (one step of size ε) and PGD (``steps`` steps of size α, each followed by
projection onto the ε-ball around the original and onto [0, 1]), for the L∞ and
L2 norms. Both ascend the target's log-probability; one copy of the image per
target class, all in one batch.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..archive import THRESHOLDS
from ..classifiers import Classifier
from ..errors import FoolingError
from ..settings.ascend import METHODS, NORMS
from .ascent import AscentResult, BestSoFar, target_scores



def _flat_norm(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, 1, 1, 1) L2 norm of each row, never 0."""
    return x.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def steepest_step(grad: torch.Tensor, size: float, norm: str) -> torch.Tensor:
    """The step of length ``size`` (in ``norm``) that most increases a linear function with gradient ``grad``."""
    if norm == "linf":
        return size * grad.sign()
    return size * grad / _flat_norm(grad)


def project(images: torch.Tensor, original: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """Pull (B, C, H, W) back into the ε-ball (``norm``) around ``original`` (1 or B, C, H, W), then into [0, 1]."""
    delta = images - original
    if norm == "linf":
        delta = delta.clamp(-epsilon, epsilon)
    else:
        delta = delta * torch.clamp(epsilon / _flat_norm(delta), max=1.0)
    return (original + delta).clamp(0.0, 1.0)


def change_sizes(images: torch.Tensor, original: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(L∞, L2) of images - original per image, in [0, 1] pixel units: two arrays (B,)."""
    delta = (images.float() - original.float()).flatten(1)
    return delta.abs().amax(1).cpu().numpy(), delta.norm(dim=1).cpu().numpy()


def perturb(
    classifier: Classifier,
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
    original = original.to(classifier.device, torch.float32)
    x = original.expand(len(targets), -1, -1, -1).clone()
    best = BestSoFar(len(targets), steps)
    active = np.arange(len(targets))
    step = 0
    for step in range(steps + 1):
        x.requires_grad_(True)
        _, logp, top1 = target_scores(classifier, x, torch.as_tensor(targets[active], device=classifier.device))
        p = logp.detach().exp().double().cpu().numpy()
        best.offer(active, step, x, p, top1.cpu().numpy())
        if on_step is not None:
            on_step(step, best.confidence)
        done = p >= stop_at if stop_at is not None else np.zeros(len(active), dtype=bool)
        if step == steps or done.all():
            break
        (grad,) = torch.autograd.grad(logp.sum(), x)
        with torch.no_grad():
            x = project(x + steepest_step(grad, step_size, norm), original, epsilon, norm)
        if done.any():
            x = x[torch.as_tensor(np.flatnonzero(~done), device=x.device)]
            active = active[~done]
    result = best.result(targets, step)
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
