"""Turning images into fitness: one or several classifiers, restricted to the archive's classes."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ..classifiers import Classifier
from ..errors import FoolingError


class Scorer:
    """images (N, C, H, W) -> fitness (N, cells) and, for ensembles, per-model scores (N, cells, M).

    An ensemble's fitness is the mean or the minimum of its members' confidences.
    """

    def __init__(self, classifiers: Sequence[Classifier], classes: Sequence[int], combine: str = "mean") -> None:
        counts = {c.num_classes for c in classifiers}
        if len(counts) != 1:
            names = ", ".join(f"{c.name} ({c.num_classes})" for c in classifiers)
            raise FoolingError(f"the models disagree on the number of classes: {names}")
        self.classifiers = list(classifiers)
        self.classes = torch.as_tensor(np.asarray(classes), dtype=torch.long)
        self.combine = combine

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, Optional[np.ndarray]]:
        per_model = [c.probs(images)[:, self.classes.to(c.device)].cpu() for c in self.classifiers]
        if len(per_model) == 1:
            return per_model[0].double().numpy(), None
        stacked = torch.stack(per_model, dim=-1).double()  # (N, cells, M)
        fitness = stacked.mean(-1) if self.combine == "mean" else stacked.min(-1).values
        return fitness.numpy(), stacked.numpy()
