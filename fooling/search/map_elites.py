"""MAP-Elites over classes, exactly as in the paper.

Generation 0 evaluates ``initial_population`` random genomes. Every later
generation draws ``population`` parents among the occupied cells, varies them
(pairs may cross over, then mutation) and offers every child to every cell.

Parents are drawn uniformly over occupied cells (the paper) when
``laggard_bias`` is 0. With a bias b > 0, a fraction b of the parents is drawn
in proportion to each cell's distance from certainty (1 − confidence), so the
classes furthest from done get more of the children.

Lineages (host genomes, i.e. the CPPN encoding; ``lineages`` > 0): besides the
``population`` children, the class furthest from done (lowest confidence, while
below ``focus``) gets ``lineages`` hill climbers, each started from the elite of a
uniformly drawn occupied cell and bred on its own (``lineage_children`` mutants a
generation; a child better for that class than its lineage's best replaces it). A
class's single elite can sit in a local optimum that no mutant of it leaves (digit 8
of mnist-lenet with CPPNs); separate lineages keep other basins alive, and every
lineage child is still offered to every cell. After ``lineage_patience``
generations without progress (0: never) a lineage that is below the elite starts
again from a new random elite. Lineages begin at generation ``LINEAGE_START`` and
start afresh when another class becomes the one furthest from done.

For device genomes (the direct encoding) parents are drawn on the device from the
strategy's torch Generator, from the archive's device fitness: ask() reads nothing
back from the device; the children are varied in seeded blocks
(:mod:`.blocks`: plan() draws one seed per block from the numpy Generator, take()
realises them), so Ray actors can vary their own pieces exactly; on the CPU each block's
draws are counter-based, keyed by its seed, and its children made in compiled passes
(fooling.encodings.vary_cpu). Host genomes (CPPN) draw from the numpy Generator.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch

from ..archive import Archive
from ..errors import FoolingError
from .base import Scores, Strategy
from .blocks import VARIATION, WHOLE_VARIATION, Plan, blocked, realise, varies_whole

LINEAGE_PREFIX = "lineage_genome_"  # checkpoint arrays of the lineages' genomes
LINEAGE_START = 20  # the first generation that breeds lineages (the classes' elites settle first)


class MapElites(Strategy):
    """Ask/tell MAP-Elites; one cell per class in ``archive``."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int,
                 laggard_bias: float = 0.0, generator: Optional[torch.Generator] = None, *, lineages: int = 0,
                 lineage_children: int = 5, lineage_patience: int = 0, focus: float = 0.9999) -> None:
        super().__init__(archive, rng, generator)
        self.population = population
        self.initial_population = initial_population
        self.laggard_bias = laggard_bias
        self.lineages = lineages if not self.on_device else 0  # host genomes only
        self.lineage_children = lineage_children
        self.lineage_patience = lineage_patience
        self.focus = focus
        self._parents: Optional[Union[np.ndarray, torch.Tensor]] = None  # (population,) parent cells
        self._target = -1  # the class the lineages climb (-1: none yet)
        self._lineage: list[Any] = []  # (lineages,) genomes: each lineage's best
        self._lineage_fitness = np.zeros(0)  # (lineages,) their confidence for the target (-inf: not yet scored)
        self._lineage_age = np.zeros(0, dtype=np.int64)  # (lineages,) generations since each last improved
        self._lineage_origin = np.zeros(0, dtype=np.int64)  # (lineages,) the cell each started from
        self._bred = 0  # lineage children at the end of the last ask()
        # direct genomes off the CPU (CUDA): a generation's children varied at once (a run checkpointed while they
        # were varied block by block keeps that)
        self.whole = self.on_device and varies_whole(self.counters, population, self.encoding.num_genes)

    planned = True
    counted = True

    def plan(self) -> Optional[Plan]:
        if not self.on_device:
            return None
        occupied = self.archive.occupied  # host copy of the fitness: known since the last tell
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            n = self.initial_population
            return blocked("random", n, self.rng, self.generation)
        self._parents = self._select_on_device()
        return blocked("vary", self.population, self.rng, self.generation, parents=self._parents,
                       counters=self.counters, whole=self.whole)

    @property
    def variation(self) -> str:
        return WHOLE_VARIATION if self.whole else super().variation

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
        children = self.encoding.vary_owned(self.archive.elites(self._parents), self.vary_rng, self.generation)
        return self._with_lineages(children, occupied)

    def _with_lineages(self, children: Any, occupied: np.ndarray) -> Any:
        """``children`` followed by ``lineage_children`` mutants of each lineage of the class furthest from done
        (none while lineages are off, before LINEAGE_START, or once every class has reached ``focus``)."""
        self._bred = 0
        fitness = self.archive.fitness
        if not self.lineages or self.generation < LINEAGE_START:
            return children
        target = int(occupied[np.argmin(fitness[occupied])])
        if fitness[target] >= self.focus:
            return children
        if target != self._target:  # a new class to climb: every lineage starts afresh
            self._target = target
            self._lineage = [None] * self.lineages
            self._lineage_fitness = np.full(self.lineages, -np.inf)
            self._lineage_age = np.zeros(self.lineages, dtype=np.int64)
            self._lineage_origin = np.zeros(self.lineages, dtype=np.int64)
        for i in range(self.lineages):
            stalled = (self.lineage_patience and self._lineage_age[i] > self.lineage_patience
                       and self._lineage_fitness[i] < fitness[target])
            if self._lineage[i] is None or stalled:
                cell = int(occupied[self.rng.integers(occupied.size)])
                self._lineage[i] = self.archive.elites(np.array([cell]))[0]
                self._lineage_fitness[i], self._lineage_age[i], self._lineage_origin[i] = -np.inf, 0, cell
        per = self.lineage_children
        # a fresh batch (stack copies tensors; CPPN genomes are never written): no per-child copy
        parents = self.encoding.stack([self._lineage[i] for i in range(self.lineages) for _ in range(per)])
        bred = self.encoding.vary_owned(parents, self.vary_rng, self.generation)
        self._bred = self.lineages * per
        self._parents = np.concatenate([self._parents, np.repeat(self._lineage_origin, per)])
        return self.encoding.stack([*children, *bred])  # host genomes: a batch is a sequence of them

    def _tell_lineages(self, genomes: Any, confidence: Scores) -> None:
        """Each lineage keeps its best child for the target class, if better than its best so far."""
        if not self._bred:
            return
        total, per = self.encoding.size(genomes), self.lineage_children
        target = torch.as_tensor(confidence)[total - self._bred:, self._target].cpu().numpy().reshape(self.lineages, per)
        best = target.argmax(axis=1)
        self._lineage_age += 1
        for i in np.flatnonzero(target[np.arange(self.lineages), best] > self._lineage_fitness).tolist():
            self._lineage[i] = self.encoding.pick(genomes, total - self._bred + i * per + int(best[i]))
            self._lineage_fitness[i] = target[i, best[i]]
            self._lineage_age[i] = 0

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
        self._tell_lineages(genomes, confidence)
        self.generation += 1

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super().state_dict()
        if self._target >= 0:
            values["lineage_target"] = self._target
            arrays.update({LINEAGE_PREFIX + key: value for key, value in
                           self.encoding.to_arrays(self.encoding.stack(self._lineage)).items()})
            arrays["lineage_fitness"] = self._lineage_fitness.copy()
            arrays["lineage_age"] = self._lineage_age.copy()
            arrays["lineage_origin"] = self._lineage_origin.copy()
        return arrays, values

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        if self.whole and values.get("variation") == VARIATION:
            self.whole = False  # begun block by block on the device: continued so
        super().load_state_dict(arrays, values)
        self._target = int(values.get("lineage_target", -1))
        if self._target < 0:
            return
        lineage = self.encoding.from_arrays({key[len(LINEAGE_PREFIX):]: value for key, value in arrays.items()
                                             if key.startswith(LINEAGE_PREFIX)})
        if self.encoding.size(lineage) != self.lineages or not 0 <= self._target < len(self.archive.fitness):
            raise FoolingError("checkpoint's MAP-Elites lineages do not fit this run's settings: it belongs to "
                               "another run")
        self._lineage = [self.encoding.pick(lineage, i) for i in range(self.lineages)]
        self._lineage_fitness = np.asarray(arrays["lineage_fitness"], dtype=np.float64).copy()
        self._lineage_age = np.asarray(arrays["lineage_age"], dtype=np.int64).copy()
        self._lineage_origin = np.asarray(arrays["lineage_origin"], dtype=np.int64).copy()
