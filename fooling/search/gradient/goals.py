"""What an ascent climbs, when not simply its target's score: goals for perturbation attacks.

A goal maps one differentiable forward pass to (climbed (B,), confidence (B,), success (B,)):
the engine steps up ``climbed``, keeps each image's version of highest ``confidence`` and
stops images whose confidence reaches ``stop_at``. :class:`Toward` raises a target class
(targeted attacks), :class:`Away` lowers the true label (untargeted), :class:`CarliniWagner`
is Carlini & Wagner's (2017) L2 loss ‖δ‖² + c·f(x) with confidence κ, climbed as its negative.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ...objective import Objective


class Goal(Protocol):
    def __call__(self, objective: Objective, images: torch.Tensor, params: torch.Tensor,
                 labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (B, C, H, W), labels (B,) -> (climbed (B,) with gradients, confidence (B,) no gradient,
        success (B,) bool)."""

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every image but ``rows``."""


def other_max(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) the largest logit of each row other than its label's."""
    mask = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
    return logits.masked_fill(mask, float("-inf")).amax(1)


class Toward:
    """Raise the target's log-probability ("logprob", the cross-entropy) or its logit margin ("margin")."""

    def __init__(self, kind: str = "logprob") -> None:
        self.kind = kind

    def __call__(self, objective, images, params, labels):
        logits, logp = objective.rows(images)
        lp = logp.gather(1, labels.view(-1, 1)).squeeze(1)
        if self.kind == "margin":
            climbed = logits.gather(1, labels.view(-1, 1)).squeeze(1) - other_max(logits, labels)
        else:
            climbed = lp
        return climbed, lp.detach().exp(), logp.detach().argmax(1) == labels

    def keep(self, rows):
        pass


class Away:
    """Lower the true label: climb its negative log-probability (the cross-entropy, as torchattacks does);
    confidence = 1 - p(label), success = the label is no longer top-1."""

    def __call__(self, objective, images, params, labels):
        logits, logp = objective.rows(images)
        lp = logp.gather(1, labels.view(-1, 1)).squeeze(1)
        return -lp, 1.0 - lp.detach().exp(), logp.detach().argmax(1) != labels

    def keep(self, rows):
        pass


class CarliniWagner:
    """−(‖x − x₀‖₂² + c·f(x)), f = max(max_{i≠t} Z_i − Z_t, −κ) (targeted) or max(Z_y − max_{i≠y} Z_i, −κ).

    original: (B, C, H, W); c: (B,) per image. Confidence: 1 / (1 + ‖δ‖₂) where the attack succeeds
    (with margin κ), 0 elsewhere, so the best-so-far is the smallest successful change. ``loss`` holds the
    last step's total loss (for early abort)."""

    def __init__(self, original: torch.Tensor, c: torch.Tensor, kappa: float, targeted: bool) -> None:
        self.original, self.c, self.kappa, self.targeted = original, c, kappa, targeted
        self.loss = float("inf")

    def __call__(self, objective, images, params, labels):
        logits, _ = objective.rows(images)
        z = logits.gather(1, labels.view(-1, 1)).squeeze(1)
        other = other_max(logits, labels)
        gap = other - z if self.targeted else z - other
        f = gap.clamp_min(-self.kappa)
        dist = (images - self.original).flatten(1).pow(2).sum(1)
        loss = dist + self.c * f
        self.loss = float(loss.detach().sum())
        success = (gap.detach() <= -self.kappa) if self.kappa > 0 else (gap.detach() < 0)
        confidence = torch.where(success, 1.0 / (1.0 + dist.detach().sqrt()), torch.zeros_like(dist))
        return -loss, confidence, success

    def keep(self, rows):
        self.original, self.c = self.original[rows], self.c[rows]
