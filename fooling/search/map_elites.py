"""MAP-Elites over classes, exactly as in the paper.

Generation 0 evaluates ``initial_population`` random genomes. Every later
generation draws ``population`` parents among the occupied cells, varies them
(pairs may cross over, then mutation) and offers every child to every cell.

Parents are drawn uniformly over occupied cells (the paper) when
``laggard_bias`` is 0. With a bias b > 0, a fraction b of the parents is drawn
in proportion to each cell's distance from certainty (1 − confidence), so the
classes furthest from done get more of the children.

For device genomes (the direct encoding) parents are drawn on the device from the
strategy's torch Generator, from the archive's device fitness: ask() reads nothing
back from the device; the children are varied in seeded blocks
(:mod:`.blocks`: plan() draws one seed per block from the numpy Generator, take()
realises them), so Ray actors can vary their own pieces exactly. Host genomes (CPPN)
draw from the numpy Generator.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch

from ..archive import Archive
from .base import Scores, Strategy
from .blocks import Plan, blocked, realise


class MapElites(Strategy):
    """Ask/tell MAP-Elites; one cell per class in ``archive``."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int,
                 laggard_bias: float = 0.0, generator: Optional[torch.Generator] = None) -> None:
        super().__init__(archive, rng, generator)
        self.population = population
        self.initial_population = initial_population
        self.laggard_bias = laggard_bias
        self._parents: Optional[Union[np.ndarray, torch.Tensor]] = None  # (population,) parent cells

    planned = True

    def plan(self) -> Optional[Plan]:
        if not self.on_device:
            return None
        occupied = self.archive.occupied  # host copy of the fitness: known since the last tell
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            n = self.initial_population
            return blocked("random", n, self.rng, self.generation)
        self._parents = self._select_on_device()
        return blocked("vary", self.population, self.rng, self.generation, parents=self._parents)

    def mirror_source(self) -> tuple[np.ndarray, Any]:
        """(keys (cells,) int64 of the elites, -1: empty; cells -> a (len, G) batch of elites): what a plan's
        parents index, for the actors' mirrors."""
        return np.array(self.archive.elite_keys(), copy=True), self.archive.elites  # (a view on the CPU: copied)

    def take(self, plan: Plan) -> Any:
        return realise(plan, self.encoding, self.archive.elites)[0]

    def ask(self) -> Any:
        if self.on_device:
            return self.take(self.plan())
        occupied = self.archive.occupied  # host copy of the fitness: known since the last tell
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            return self.encoding.random(self.initial_population, self.vary_rng)
        self._parents = self._select(occupied)
        # the stacked elites are a fresh batch: vary it in place
        return self.encoding.vary_owned(self.archive.elites(self._parents), self.vary_rng, self.generation)

    def _select_on_device(self) -> torch.Tensor:
        """(population,) parent cells on the device: uniform over occupied cells, plus a share weighted by
        1 − confidence; drawn with :attr:`generator`, without reading anything back."""
        fitness = self.archive.fitness_tensor
        filled = torch.isfinite(fitness)
        parents = torch.multinomial(filled.to(torch.float64), self.population, replacement=True,
                                    generator=self.generator)
        if self.laggard_bias > 0:
            gap = torch.where(filled, 1.0 - fitness, torch.zeros_like(fitness)).clamp_(min=0.0)
            chosen = torch.rand(self.population, generator=self.generator, device=fitness.device) < self.laggard_bias
            # all classes done (no gap): the weighted share stays uniform
            weights = torch.where(gap.sum() > 0, gap, filled.to(torch.float64))
            weighted = torch.multinomial(weights, self.population, replacement=True, generator=self.generator)
            parents = torch.where(chosen, weighted, parents)
        return parents

    def _select(self, occupied: np.ndarray) -> np.ndarray:
        """``population`` parent cells: uniform, plus a share weighted by 1 − confidence."""
        parents = occupied[self.rng.integers(occupied.size, size=self.population)]
        if self.laggard_bias > 0:
            gap = 1.0 - self.archive.fitness[occupied]
            if gap.sum() > 0:
                chosen = self.rng.random(self.population) < self.laggard_bias
                parents[chosen] = self.rng.choice(occupied, size=int(chosen.sum()), p=gap / gap.sum())
        return parents

    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        self.archive.add(genomes, confidence, self.generation, parents=self._parents, scores=scores)
        self.generation += 1
