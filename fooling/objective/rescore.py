"""Full-precision numbers for what a run writes: the elites of a run scored in bf16 / fp16, re-scored in fp32.

A low-precision forward pass is fast but its confidences are off by up to ~1e-2: too coarse for a claim
such as "≥ 99.99%". :class:`EliteRescorer` keeps the fp32 fitness of every elite, re-scoring only the cells
whose elite changed since it last looked, and :func:`trusted_passed` drops the milestones that the fp32
confidence does not bear out.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np
import torch

from .objective import Objective

RESCORE_CHUNK = 64  # elites decoded and re-scored at a time


class EliteRescorer:
    """fp32 fitness (cells,) and ensemble scores (cells, M) of an archive's elites, kept up to date."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self._seen: Optional[np.ndarray] = None  # the archive fitness the values below were computed for
        self.fitness: Optional[np.ndarray] = None
        self.scores: Optional[np.ndarray] = None

    def update(self, fitness: np.ndarray, images: Callable[[np.ndarray], torch.Tensor]) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """fitness: the archive's (cells,) low-precision fitness (-inf / NaN where empty); images(cells) ->
        those cells' elites as images (n, C, H, W). Returns (fp32 fitness (cells,), fp32 scores (cells, M) or
        None), re-scoring the cells whose fitness differs from the last call's (an elite is only replaced
        by a fitter one, so a changed fitness is a changed elite)."""
        fitness = np.asarray(fitness, dtype=np.float64)
        if self.fitness is None or self.fitness.shape != fitness.shape:
            self.fitness, self._seen, self.scores = np.full_like(fitness, np.nan), None, None
        filled = np.isfinite(fitness)
        stale = filled if self._seen is None else filled & (fitness != self._seen)
        cells = np.flatnonzero(stale)
        for start in range(0, cells.size, RESCORE_CHUNK):
            chunk = cells[start:start + RESCORE_CHUNK]
            values, scores = self.objective.rescore_fp32(images(chunk))
            rows = np.arange(chunk.size)
            self.fitness[chunk] = values[rows, chunk]
            if scores is not None:
                if self.scores is None:
                    self.scores = np.full((fitness.size, scores.shape[-1]), np.nan)
                self.scores[chunk] = scores[rows, chunk]
        self.fitness[~filled] = fitness[~filled]
        self._seen = fitness.copy()
        return self.fitness.copy(), (None if self.scores is None else self.scores.copy())


def trusted_passed(passed: Mapping[str, Optional[int]], confidence: Optional[float]) -> dict[str, Optional[int]]:
    """A class's milestones ({threshold: generation}) with None for thresholds above its fp32 ``confidence``:
    a milestone a low-precision run recorded is kept only where the full-precision number bears it out."""
    return {t: (g if confidence is not None and g is not None and confidence >= float(t) else None)
            for t, g in passed.items()}
