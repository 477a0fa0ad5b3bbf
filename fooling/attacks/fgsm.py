"""FGSM (Goodfellow et al. 2015): one steepest step of size ε (L∞: ε·sign ∇; L2: ε·∇/‖∇‖)."""

from __future__ import annotations

import math

from ..errors import FoolingError
from ..search.gradient import BallPixels, StepRule, ascend
from .base import Attack, number


def check_eps(eps: float, norm: str) -> float:
    """``eps`` as a float; a one-line FoolingError unless it fits ``norm`` (linf: in (0, 1]; l2: positive)."""
    eps = number("epsilon", eps)
    if norm not in ("linf", "l2"):
        raise FoolingError(f"--norm must be linf or l2, not {norm!r}")
    if not (0 < eps <= 1) and norm == "linf":
        raise FoolingError(f"--epsilon must be in (0, 1], got {eps}")
    if not (eps > 0 and math.isfinite(eps)):
        raise FoolingError(f"--epsilon must be a positive number, got {eps}")
    return eps


class FGSM(Attack):
    name = "fgsm"

    def __init__(self, model, eps: float = 8 / 255, norm: str = "linf", **kw) -> None:
        super().__init__(model, **kw)
        self.eps, self.norm = check_eps(eps, norm), norm

    def perturb(self, objective, images, labels):
        param = BallPixels.batch(images, self.eps, self.norm, quantized=self.quantized)
        rule = StepRule(objective="logprob", rate="sign" if self.norm == "linf" else "l2", step_size=self.eps)
        result = ascend(objective, labels, param, 1, rule, None, goal=self.goal())
        return result.images, result.evaluations
