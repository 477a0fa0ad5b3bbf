"""Carlini & Wagner's L2 attack (2017) on the gradient engine: tanh-space pixels
(:class:`~fooling.search.gradient.TanhPixels`), Adam, loss ‖δ‖² + c·f(x) with confidence κ
(:class:`~fooling.search.gradient.CarliniWagner`), and a binary search over c per image.

Settings: ``CW.ORIGINAL`` is the paper's (binary search 9 steps from c = 1e-3, Adam lr 0.01, up
to 10,000 iterations, abort when the loss has not fallen by 0.01% over a tenth of them). The
default is faster: 5 search steps from c = 1, 100 iterations (as torchattacks' defaults: c 1,
100 steps, but with the search).

``linf``: also keep the change within this L∞ distance (clipped in the rendering; None: unbounded,
the original attack). With ``quantized`` (as ``fool attack`` runs it) every iterate is scored rounded
to 8 bits, so a success (margin ≥ κ) is a success of the file as written.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..errors import FoolingError
from ..limits import MAX_GRADIENT_STEPS, MAX_SEARCH_STEPS
from ..search.gradient import CarliniWagner, StepRule, TanhPixels, ascend
from .base import Attack, at_most, count, number


class CW(Attack):
    name = "cw-l2"
    ORIGINAL = {"c": 1e-3, "kappa": 0.0, "steps": 10_000, "lr": 0.01, "search_steps": 9, "abort_early": True}
    FAST = {"c": 1.0, "kappa": 0.0, "steps": 100, "lr": 0.01, "search_steps": 5, "abort_early": True}

    def __init__(self, model, c: float = 1.0, kappa: float = 0.0, steps: int = 100, lr: float = 0.01,
                 search_steps: int = 5, abort_early: bool = True, linf: Optional[float] = None, **kw) -> None:
        super().__init__(model, **kw)
        c, kappa, lr = number("c", c), number("kappa", kappa), number("lr", lr)
        steps = at_most("steps", count("steps", steps), MAX_GRADIENT_STEPS)
        search_steps = at_most("search_steps", count("search_steps", search_steps), MAX_SEARCH_STEPS)
        linf = None if linf is None else number("linf", linf)
        if not (0 < c < math.inf and 0 < lr < math.inf and 0 <= kappa < math.inf and steps >= 1  # NaN fails too
                and search_steps >= 1):
            raise FoolingError("CW needs c > 0, lr > 0, kappa >= 0, steps >= 1 and search_steps >= 1")
        if linf is not None and not 0 < linf <= 1:
            raise FoolingError(f"CW's L-infinity bound must be in (0, 1], got {linf}")
        self.linf = linf
        self.c, self.kappa, self.steps, self.lr = c, kappa, int(steps), lr
        self.search_steps, self.abort_early = int(search_steps), abort_early
        self.history: list[np.ndarray] = []  # c per image at each search step (for tests)

    @classmethod
    def original(cls, model, **kw) -> "CW":
        return cls(model, **{**cls.ORIGINAL, **kw})

    def perturb(self, objective, images, labels):
        n = images.shape[0]
        lower, upper = np.zeros(n), np.full(n, 1e10)
        c = np.full(n, self.c)
        best = images.clone()
        best_l2 = np.full(n, np.inf)
        evaluations = 0
        rule = StepRule(objective="logit", rate="adam", step_size=self.lr)
        for _ in range(self.search_steps):
            self.history.append(c.copy())
            goal = CarliniWagner(images, torch.as_tensor(c, dtype=torch.float32, device=images.device), self.kappa,
                                 self.targeted)
            stop = _EarlyAbort(goal, self.steps) if self.abort_early else None
            r = ascend(objective, labels, TanhPixels(images, self.linf, self.quantized), self.steps, rule, None, goal=goal,
                       should_stop=stop)
            evaluations += r.evaluations
            ok = r.confidence > 0  # the best-so-far is the smallest successful change, where there was one
            l2 = (r.images.to(images.device) - images).flatten(1).norm(dim=1).cpu().numpy()
            improve = ok & (l2 < best_l2)
            if improve.any():
                rows = torch.as_tensor(np.flatnonzero(improve))
                best[rows.to(best.device)] = r.images[rows].to(best.device)
                best_l2[improve] = l2[improve]
            # binary search: success -> smaller c; failure -> larger (x10 until an upper bound is known)
            upper = np.where(ok, np.minimum(upper, c), upper)
            lower = np.where(ok, lower, np.maximum(lower, c))
            c = np.where(upper < 1e9, (lower + upper) / 2, c * 10)
        return best, evaluations


class _EarlyAbort:
    """Carlini-Wagner's early abort: stop when the loss has not fallen below 0.9999 of its value a tenth of
    the iterations earlier."""

    def __init__(self, goal: CarliniWagner, steps: int) -> None:
        self.goal, self.every, self.calls, self.previous = goal, max(1, steps // 10), 0, float("inf")

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls % self.every:
            return False
        if self.goal.loss > 0.9999 * self.previous:
            return True
        self.previous = self.goal.loss
        return False
