"""Step rules: how far each gradient step goes, per image.

"progress" (the fooling paper): lr = Δ / ‖∇p‖², Δ = min(0.03, 0.1·(1 - p)), so that each step
is predicted to raise the target's probability p by Δ. "normalised": a step whose mean absolute
parameter change is ``step_size``. "adam": :class:`torch.optim.Adam` with learning rate
``step_size``. "sign" and "l2": the steepest step of length ``step_size`` in the L∞ or L2 norm
(perturbation attacks: FGSM, PGD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ...settings.ascend import OBJECTIVES, RATES  # noqa: F401  (the CLI's choices of StepRule's fields)

MAX_GAIN = 0.03  # Δ while far from the goal
LATE_GAIN = 0.1  # Δ = LATE_GAIN·(1 - p) near it
STEEPEST = {"sign": "linf", "l2": "l2"}  # the rates that take a steepest step of fixed length, and their norms


def progress_lr(p: torch.Tensor, grad_sq_norm: torch.Tensor) -> torch.Tensor:
    """Per-image learning rate (B,) that predicts a gain of min(0.03, 0.1·(1 - p)); 0 where ∇ = 0."""
    gain = torch.clamp(LATE_GAIN * (1.0 - p), max=MAX_GAIN)
    return torch.where(grad_sq_norm > 0, gain / grad_sq_norm.clamp_min(1e-30), torch.zeros_like(p))


def _flat_norm(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, 1, ..., 1) L2 norm of each row, never 0."""
    return x.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))


def steepest_step(grad: torch.Tensor, size: float, norm: str) -> torch.Tensor:
    """The step of length ``size`` (in ``norm``) that most increases a linear function with gradient ``grad``."""
    if norm == "linf":
        return size * grad.sign()
    return size * grad / _flat_norm(grad)


@dataclass(frozen=True)
class StepRule:
    """What each step climbs and how far it goes.

    objective: "prob", the target's softmax probability (the paper), "logit", its pre-softmax
    score (Yosinski et al.), or "logprob", its log-probability (perturbation attacks). rate:
    "progress" (:func:`progress_lr`, predicted on the probability), "normalised", a step whose
    mean absolute parameter change is ``step_size`` (lr = step_size / mean|∇|, free of the
    network's gradient scale), "adam" (:class:`torch.optim.Adam`, learning rate ``step_size``),
    or "sign" / "l2" (:func:`steepest_step` of length ``step_size``).
    """

    objective: str = "prob"
    rate: str = "progress"
    step_size: float = 0.01

    def lr(self, p: torch.Tensor, grad: torch.Tensor, sizes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-image learning rate (B,) for target probabilities p (B,) and gradients (B, ...).

        sizes: (B,) how many of each row's parameters are real (the rest is zero padding), for
        the normalised rate's mean; default all of them.
        """
        flat = grad.flatten(1)
        if self.rate == "progress":
            return progress_lr(p, flat.pow(2).sum(1))
        if self.rate == "adam":
            return torch.full_like(p, self.step_size)
        mean = flat.abs().sum(1) / (flat.shape[1] if sizes is None else sizes.to(flat.dtype).clamp_min(1))
        return torch.where(mean > 0, self.step_size / mean.clamp_min(1e-30), torch.zeros_like(mean))

    def stepper(self) -> "Steps":
        """A fresh stateful stepper for one ascent (Adam keeps moments; the others keep nothing)."""
        return AdamSteps(self.step_size) if self.rate == "adam" else Steps(self)


class Steps:
    """Applies a stateless :class:`StepRule` to parameters (B, ...)."""

    def __init__(self, rule: StepRule) -> None:
        self.rule = rule

    def move(self, x: torch.Tensor, grad: torch.Tensor, p: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """x (B, ...) moved uphill along grad (B, ...), given the targets' probabilities p (B,)."""
        if self.rule.rate in STEEPEST:
            return x + steepest_step(grad, self.rule.step_size, STEEPEST[self.rule.rate])
        lr = self.rule.lr(p, grad, sizes)
        return x + lr.view(-1, *[1] * (grad.dim() - 1)) * grad

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every row but ``rows`` from the state."""

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state as numpy arrays (for checkpoints)."""
        return {}

    def load_arrays(self, state: dict[str, np.ndarray], like: torch.Tensor) -> None:
        """Restore :meth:`state_arrays` for parameters shaped and placed like ``like``."""


class AdamSteps(Steps):
    """Adam (Kingma & Ba 2015) from :class:`torch.optim.Adam`, climbing (``maximize``), over rows that
    may drop out: when they do, the optimiser is rebuilt on the kept rows with their moments.
    Zero-padded parameters (zero gradient) stay still. Checkpoint arrays: "adam.m" (the first moment
    of the ascent gradient), "adam.v", "adam.t" (the step count)."""

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.buffer: Optional[torch.Tensor] = None
        self.optimizer: Optional[torch.optim.Adam] = None

    def _bind(self, buffer: torch.Tensor, moments: Optional[dict[str, torch.Tensor]] = None) -> None:
        self.buffer = buffer
        self.optimizer = torch.optim.Adam([buffer], lr=self.lr, betas=self.betas, eps=self.eps, maximize=True)
        if moments is not None:
            self.optimizer.load_state_dict({"state": {0: moments}, "param_groups": self.optimizer.state_dict()["param_groups"]})

    def _moments(self) -> Optional[dict[str, torch.Tensor]]:
        return self.optimizer.state_dict()["state"].get(0) if self.optimizer is not None else None

    def move(self, x: torch.Tensor, grad: torch.Tensor, p: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        if self.buffer is None:
            self._bind(x.detach().clone())
        else:
            self.buffer.copy_(x)
        self.buffer.grad = grad
        self.optimizer.step()
        self.buffer.grad = None
        return self.buffer.detach().clone()

    def keep(self, rows: torch.Tensor) -> None:
        if self.buffer is None:
            return
        moments = self._moments()
        if moments:
            moments = {"step": moments["step"].clone(), "exp_avg": moments["exp_avg"][rows].clone(),
                       "exp_avg_sq": moments["exp_avg_sq"][rows].clone()}
        self._bind(self.buffer.detach()[rows].clone(), moments or None)

    def state_arrays(self) -> dict[str, np.ndarray]:
        moments = self._moments()
        if not moments:
            return {}
        return {"adam.m": (-moments["exp_avg"]).cpu().numpy(), "adam.v": moments["exp_avg_sq"].cpu().numpy().copy(),
                "adam.t": np.asarray(int(moments["step"]), dtype=np.int64)}

    def load_arrays(self, state: dict[str, np.ndarray], like: torch.Tensor) -> None:
        if "adam.m" not in state:
            return
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.array(a)).to(like.device, like.dtype)  # a copy: never shares ``state``
        self._bind(like.detach().clone(), {"step": torch.tensor(float(state["adam.t"])),
                                          "exp_avg": -tensor(state["adam.m"]), "exp_avg_sq": tensor(state["adam.v"])})
