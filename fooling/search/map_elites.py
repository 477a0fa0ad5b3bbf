"""MAP-Elites over classes, exactly as in the paper.

Generation 0 evaluates ``initial_population`` random genomes. Every later
generation draws ``population`` parents among the occupied cells, varies them
(pairs may cross over, then mutation) and offers every child to every cell.

Parents are drawn uniformly over occupied cells (the paper) when
``laggard_bias`` is 0. With a bias b > 0, a fraction b of the parents is drawn
in proportion to each cell's distance from certainty (1 − confidence), so the
classes furthest from done get more of the children.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..archive import Archive
from .base import Strategy


class MapElites(Strategy):
    """Ask/tell MAP-Elites; one cell per class in ``archive``."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int,
                 laggard_bias: float = 0.0) -> None:
        super().__init__(archive, rng)
        self.population = population
        self.initial_population = initial_population
        self.laggard_bias = laggard_bias
        self._parents: Optional[np.ndarray] = None

    def ask(self) -> Any:
        occupied = self.archive.occupied
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            return self.encoding.random(self.initial_population, self.rng)
        self._parents = self._select(occupied)
        # the stacked elites are a fresh batch: vary it in place
        return self.encoding.vary_owned(self.archive.elites(self._parents), self.rng, self.generation)

    def _select(self, occupied: np.ndarray) -> np.ndarray:
        """``population`` parent cells: uniform, plus a share weighted by 1 − confidence."""
        parents = occupied[self.rng.integers(occupied.size, size=self.population)]
        if self.laggard_bias > 0:
            gap = 1.0 - self.archive.fitness[occupied]
            if gap.sum() > 0:
                chosen = self.rng.random(self.population) < self.laggard_bias
                parents[chosen] = self.rng.choice(occupied, size=int(chosen.sum()), p=gap / gap.sum())
        return parents

    def tell(self, genomes: Any, confidence: np.ndarray, scores: Optional[np.ndarray] = None) -> None:
        self.archive.add(genomes, confidence, self.generation, parents=self._parents, scores=scores)
        self.generation += 1
