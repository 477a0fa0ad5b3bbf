"""PGD (Madry et al. 2018): ``steps`` steepest steps of size α, each projected onto the ε-ball and [0, 1],
from a random start in the ball, best of ``restarts`` runs (per image: a success first, then the more
confident)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..errors import FoolingError
from ..limits import MAX_GRADIENT_STEPS, MAX_RESTARTS
from ..search.gradient import BallPixels, StepRule, ascend
from ..search.gradient.parameterizations import project_ball
from .base import Attack, at_most, count, number
from .fgsm import check_eps


class PGD(Attack):
    name = "pgd"

    def __init__(self, model, eps: float = 8 / 255, alpha: Optional[float] = None, steps: int = 10,
                 random_start: bool = True, restarts: int = 1, norm: str = "linf", **kw) -> None:
        super().__init__(model, **kw)
        eps = check_eps(eps, norm)
        steps = at_most("steps", count("steps", steps), MAX_GRADIENT_STEPS)
        restarts = at_most("restarts", count("restarts", restarts), MAX_RESTARTS)
        alpha = None if alpha is None else number("alpha", alpha)
        if not (steps >= 0 and restarts >= 1 and (alpha is None or 0 < alpha < math.inf)):
            # steps=-1 died in the engine (no image scored), a negative alpha climbed downhill, a NaN one made
            # NaN images (blamed on the model), restarts=0 ran one
            raise FoolingError(f"PGD needs steps >= 0, restarts >= 1 and a positive step size alpha; got steps "
                               f"{steps}, restarts {restarts}, alpha {alpha}")
        self.eps, self.norm, self.steps = eps, norm, int(steps)
        self.alpha = alpha if alpha is not None else (2 / 255 if norm == "linf" and eps == 8 / 255 else 2.5 * eps / max(1, steps))
        self.random_start, self.restarts = random_start, max(1, int(restarts))

    def _start(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        noise = torch.rand(images.shape, generator=gen).to(images.device) * 2 - 1
        if self.norm == "l2":
            noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            noise = noise * torch.rand(images.shape[0], generator=gen).to(images.device).view(-1, 1, 1, 1)
        return project_ball(images + self.eps * noise, images, self.eps, self.norm)

    def perturb(self, objective, images, labels):
        gen = torch.Generator().manual_seed(self.seed)
        rule = StepRule(objective="logprob", rate="sign" if self.norm == "linf" else "l2", step_size=self.alpha)
        best, best_conf, best_ok, evaluations = None, None, None, 0
        for _ in range(self.restarts):
            start = self._start(images, gen) if self.random_start else images
            param = BallPixels.batch(images, self.eps, self.norm, start=start, quantized=self.quantized)
            r = ascend(objective, labels, param, self.steps, rule, None, goal=self.goal())
            evaluations += r.evaluations + len(labels)
            with torch.no_grad():
                top = objective.probs(r.images.to(images.device)).argmax(1).cpu().numpy()
            ok = top == labels if self.targeted else top != labels
            if best is None:
                best, best_conf, best_ok = r.images.clone(), r.confidence.copy(), ok.copy()
                continue
            better = (ok & ~best_ok) | ((ok == best_ok) & (r.confidence > best_conf))
            best[torch.as_tensor(better)] = r.images[torch.as_tensor(better)]
            best_conf = np.where(better, r.confidence, best_conf)
            best_ok = best_ok | ok
        return best, evaluations
