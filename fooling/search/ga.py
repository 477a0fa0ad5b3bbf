"""Single-target genetic algorithm: DEAP's (μ + λ) algorithm, one generation per ask/tell.

Each generation is the body of ``deap.algorithms.eaMuPlusLambda``: offspring
from ``algorithms.varOr`` (crossover, mutation or reproduction, chosen with
Python's ``random``), then ``tools.selBest`` over parents and offspring. The
evaluation step is lifted out: the run loop scores the whole offspring batch
in one forward pass and hands the confidences to ``tell``.
"""

from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np
import torch
from deap import algorithms, base, tools

from ..archive import Archive
from .base import Scores, Strategy
from .deap_types import Individual


class GeneticAlgorithm(Strategy):
    """(μ + λ) GA on the archive's single cell (the target class)."""

    def __init__(
        self,
        archive: Archive,
        rng: np.random.Generator,
        py_random: random.Random,
        mu: int,
        lambda_: int,
        cxpb: float,
        mutpb: float,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(archive, rng, generator)
        if len(archive) != 1:
            raise ValueError("the GA evolves one target class")
        if cxpb + mutpb > 1.0:
            raise ValueError("cxpb + mutpb must be at most 1 (DEAP's varOr)")
        self.py_random = py_random
        self.mu, self.lambda_, self.cxpb, self.mutpb = mu, lambda_, cxpb, mutpb
        self.population: list[Individual] = []
        self._offspring: list[Individual] = []
        self.toolbox = base.Toolbox()
        self.toolbox.register("mate", self._mate)
        self.toolbox.register("mutate", self._mutate)
        self.toolbox.register("select", tools.selBest)

    def _mate(self, a: Individual, b: Individual) -> tuple[Individual, Individual]:
        enc = self.encoding
        ca, cb = enc.crossover(enc.stack([a.genome]), enc.stack([b.genome]), self.vary_rng)
        a.genome, b.genome = enc.pick(ca, 0), enc.pick(cb, 0)
        return a, b

    def _mutate(self, ind: Individual) -> tuple[Individual]:
        enc = self.encoding
        ind.genome = enc.pick(enc.mutate(enc.stack([ind.genome]), self.vary_rng, self.generation), 0)
        return (ind,)

    def ask(self) -> Any:
        enc = self.encoding
        if self.generation == 0:
            batch = enc.random(self.mu, self.vary_rng)
            self._offspring = [Individual(enc.pick(batch, i)) for i in range(self.mu)]
            return batch
        state = random.getstate()
        random.setstate(self.py_random.getstate())  # varOr draws from the global `random`
        try:
            self._offspring = algorithms.varOr(self.population, self.toolbox, self.lambda_, self.cxpb, self.mutpb)
        finally:
            self.py_random.setstate(random.getstate())
            random.setstate(state)
        return enc.stack([ind.genome for ind in self._offspring])

    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        values = torch.as_tensor(confidence)[:, 0].tolist()  # DEAP's fitness objects live on the host
        for ind, value in zip(self._offspring, values):
            ind.fitness.values = (float(value),)
        self.archive.add(genomes, confidence, self.generation, scores=scores)
        self.population = self.toolbox.select(self.population + self._offspring, self.mu)
        self._offspring = []
        self.generation += 1

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super().state_dict()
        enc = self.encoding
        if self.population:
            for key, value in enc.to_arrays(enc.stack([ind.genome for ind in self.population])).items():
                arrays[f"population.{key}"] = value
            arrays["population_fitness"] = np.array([ind.fitness.values[0] for ind in self.population])
        version, internal, gauss = self.py_random.getstate()
        values["py_random"] = [version, list(internal), gauss]
        return arrays, values

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super().load_state_dict(arrays, values)
        version, internal, gauss = values["py_random"]
        self.py_random.setstate((version, tuple(internal), gauss))
        pop = {k[len("population."):]: v for k, v in arrays.items() if k.startswith("population.")}
        self.population = []
        if pop:
            batch = self.encoding.from_arrays(pop)
            for i, fit in enumerate(arrays["population_fitness"]):
                ind = Individual(self.encoding.pick(batch, i))
                ind.fitness.values = (float(fit),)
                self.population.append(ind)
