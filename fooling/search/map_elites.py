"""MAP-Elites over classes, exactly as in the paper.

Generation 0 evaluates ``initial_population`` random genomes. Every later
generation draws ``population`` parents uniformly among the occupied cells,
varies them (pairs may cross over, then mutation) and offers every child to
every cell.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..archive import Archive
from .base import Strategy


class MapElites(Strategy):
    """Ask/tell MAP-Elites; one cell per class in ``archive``."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int) -> None:
        super().__init__(archive, rng)
        self.population = population
        self.initial_population = initial_population
        self._parents: Optional[np.ndarray] = None

    def ask(self) -> Any:
        occupied = self.archive.occupied
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            return self.encoding.random(self.initial_population, self.rng)
        self._parents = occupied[self.rng.integers(occupied.size, size=self.population)]
        return self.encoding.vary(self.archive.elites(self._parents), self.rng, self.generation)

    def tell(self, genomes: Any, confidence: np.ndarray, scores: Optional[np.ndarray] = None) -> None:
        self.archive.add(genomes, confidence, self.generation, parents=self._parents, scores=scores)
        self.generation += 1
