"""The objective: images -> scores for the classes being fooled, over one classifier or an ensemble.

Without gradients (:meth:`Objective.fitness`, for evolution) it gives each image's confidence
in each of the archive's classes; with gradients (:meth:`Objective.scores`,
:meth:`Objective.target_scores`, for the gradient engine) each image's score for its own
target class. Crops live in each :class:`~fooling.classifiers.Classifier`; an ensemble's score
is the mean or the minimum over its members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..classifiers import Classifier
from ..errors import FoolingError

COMBINE = ("mean", "min")  # how an ensemble's members' scores combine
KINDS = ("prob", "logprob", "logit")  # what a gradient climbs: a target's probability, its log, or its logit


@dataclass
class TargetScores:
    """One differentiable forward pass for a batch with one target class per image, all (B,).

    logit: the target's logit (mean over crops, then combined over models); log_prob: the log of
    its (crop-averaged, combined) probability; top1: whether the target is the combined top-1 (no
    gradient).
    """

    logit: torch.Tensor
    log_prob: torch.Tensor
    top1: torch.Tensor

    def get(self, kind: str) -> torch.Tensor:
        """The score ``kind`` ("prob", "logprob" or "logit") as (B,)."""
        if kind == "prob":
            return self.log_prob.exp()
        if kind == "logprob":
            return self.log_prob
        if kind == "logit":
            return self.logit
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")


class Objective:
    """Classifiers (each with its crops), the target classes and the ensemble rule (mean | min).

    eot: None, or an :class:`~.eot.EOT` (set with :meth:`with_eot`): every score is then the mean over K
    random transforms of each image.

    classes: the network classes the archive's cells stand for (the columns of :meth:`fitness`).
    """

    def __init__(self, classifiers: Sequence[Classifier], classes: Sequence[int], combine: str = "mean", *,
                 precision: Optional[str] = None, compile: Optional[bool] = None,
                 memory_format: Optional[str] = None) -> None:
        """precision (fp32 | bf16 | fp16), compile and memory_format, when given, configure every classifier
        (:meth:`Classifier.configure`); None leaves them as they are."""
        classifiers = list(classifiers)
        if not classifiers:
            raise FoolingError("an objective needs at least one classifier")
        counts = {c.num_classes for c in classifiers}
        if len(counts) != 1:
            names = ", ".join(f"{c.name} ({c.num_classes})" for c in classifiers)
            raise FoolingError(f"the models disagree on the number of classes: {names}")
        if combine not in COMBINE:
            raise FoolingError(f"the ensemble rule must be one of {', '.join(COMBINE)}, not {combine!r}")
        self.classifiers = classifiers
        self.classes = torch.as_tensor(np.asarray(classes), dtype=torch.long)
        self.combine = combine
        if precision is not None or compile is not None or memory_format is not None:
            for c in classifiers:
                c.configure(precision=precision, compile=compile, memory_format=memory_format)

    eot = None  # Optional[EOT]; see fooling.objective.eot

    def with_eot(self, eot) -> "Objective":
        """Score through ``eot`` (an :class:`~.eot.EOT`, or None: off) from now on; returns self."""
        self.eot = eot
        return self

    # --- what the networks are -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where images go: the first classifier's device."""
        return self.classifiers[0].device

    @property
    def precision(self) -> str:
        """What :meth:`fitness` runs in: "fp32" unless a classifier runs in bf16 or fp16 (then that one)."""
        low = [c.precision for c in self.classifiers if c.precision != "fp32"]
        return low[0] if low else "fp32"

    @property
    def num_classes(self) -> int:
        return self.classifiers[0].num_classes

    @property
    def labels(self) -> list[str]:
        return self.classifiers[0].labels

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the first network sees."""
        return self.classifiers[0].input_shape

    @property
    def centre(self) -> torch.Tensor:
        """(1, C, 1, 1) on :attr:`device`: the image the first network sees as all-zero input (its
        normalisation mean)."""
        return torch.tensor(self.classifiers[0].spec.mean, device=self.device).view(1, -1, 1, 1)

    # --- without gradients -----------------------------------------------------------------------
    def fitness(self, images: torch.Tensor, precision: Optional[str] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """images (N, C, H, W) -> fitness (N, cells) float64 and, for ensembles, per-model scores
        (N, cells, M) (None for one model), as numpy arrays (:meth:`fitness_tensor` on the host).
        ``precision`` overrides the classifiers' own (see :meth:`rescore_fp32`)."""
        fitness, scores = self.fitness_tensor(images, precision)
        return fitness.cpu().numpy(), None if scores is None else scores.cpu().numpy()

    def fitness_tensor(self, images: torch.Tensor,
                       precision: Optional[str] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """images (N, C, H, W) -> fitness (N, cells) float64 and, for ensembles, per-model scores
        (N, cells, M) (None for one model), as tensors on :attr:`device` (nothing is read back: the
        evolution loop keeps them there). An ensemble's fitness is the mean or the minimum of its
        members' confidences. ``precision`` overrides the classifiers' own."""
        if self.eot is not None:  # EOT hook (see .eot): the mean confidence over K transforms of each image
            images = self.eot.expand(images)
            per_model = [self.eot.mean(c.probs(images, precision)[:, self._classes_on(c.device)])
                         .to(self.device, torch.float64) for c in self.classifiers]
        else:
            per_model = [c.probs(images, precision)[:, self._classes_on(c.device)].to(self.device, torch.float64)
                         for c in self.classifiers]
        if len(per_model) == 1:
            return per_model[0], None
        stacked = torch.stack(per_model, dim=-1)  # (N, cells, M)
        fitness = stacked.mean(-1) if self.combine == "mean" else stacked.min(-1).values
        return fitness, stacked

    def _classes_on(self, device: torch.device) -> torch.Tensor:
        """:attr:`classes` on ``device``, copied there once."""
        cache = self.__dict__.setdefault("_classes_cache", {})
        if device not in cache:
            cache[device] = self.classes.to(device)
        return cache[device]

    __call__ = fitness

    def rescore_fp32(self, images: torch.Tensor) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """:meth:`fitness` in full precision whatever ``--precision`` the run uses: what summary.json and
        elites/ report (a bf16 / fp16 confidence may be off by ~1e-2, more than 0.9999 is from 1)."""
        return self.fitness(images, precision="fp32")

    # --- with gradients --------------------------------------------------------------------------
    def _forward(self, classifier: Classifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One model's differentiable (logits (B, K) mean over crops, log-probabilities (B, K) of the
        mean probability over crops)."""
        n, crops = images.shape[0], classifier.crops
        out = classifier.outputs(classifier.prepare(images)).float().view(crops, n, -1)
        logp = torch.logsumexp(torch.log_softmax(out, dim=-1), dim=0) - math.log(crops)
        return out.mean(0), logp

    def rows(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable (logits (B, K), log-probabilities (B, K)) over all classes, combined over
        the ensemble: mean -> the mean logit and the log of the mean probability; min -> the minima."""
        if self.eot is not None:  # EOT hook (see .eot): mean logit, log of the mean probability over K transforms
            images = self.eot.expand(images)
            pairs = [(self.eot.mean(lg), self.eot.log_mean_exp(lp))
                     for lg, lp in (self._forward(c, images.to(c.device)) for c in self.classifiers)]
        else:
            pairs = [self._forward(c, images.to(c.device)) for c in self.classifiers]
        if len(pairs) == 1:
            return pairs[0]
        logits = torch.stack([lg.to(self.device) for lg, _ in pairs])
        logps = torch.stack([lp.to(self.device) for _, lp in pairs])
        if self.combine == "mean":
            return logits.mean(0), torch.logsumexp(logps, dim=0) - math.log(len(pairs))
        return logits.min(0).values, logps.min(0).values

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable logits (B, K), combined over the ensemble."""
        return self.rows(images)[0]

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable log-probabilities (B, K), combined over the ensemble."""
        return self.rows(images)[1]

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable probabilities (B, K), combined over the ensemble."""
        return self.log_probs(images).exp()

    def scores(self, images: torch.Tensor, targets: torch.Tensor) -> TargetScores:
        """One differentiable forward pass: images (B, C, H, W), targets (B,) class indices -> the
        targets' logits, log-probabilities and top-1 flags (:class:`TargetScores`)."""
        logits, logp = self.rows(images)
        targets = torch.as_tensor(targets, device=logits.device).view(-1, 1)
        return TargetScores(logits.gather(1, targets).squeeze(1), logp.gather(1, targets).squeeze(1),
                            logp.detach().argmax(1) == targets.squeeze(1))

    def target_scores(self, images: torch.Tensor, targets: torch.Tensor, kind: str = "prob") -> torch.Tensor:
        """(B,) each image's score for its target, with gradients: the probability ("prob"), its log
        ("logprob") or the logit ("logit"), combined over the ensemble."""
        return self.scores(images, targets).get(kind)
