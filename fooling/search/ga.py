"""Single-target genetic algorithm: DEAP's (μ + λ) algorithm, one generation per ask/tell.

Each generation is the body of ``deap.algorithms.eaMuPlusLambda``: offspring
as ``algorithms.varOr`` makes them (crossover, mutation or reproduction, and the
parents, chosen with Python's ``random`` in varOr's order of draws), then
``tools.selBest`` over parents and offspring. The evaluation step is lifted out:
the run loop scores the whole offspring batch in one forward pass and hands the
confidences to ``tell``. Direct genomes are varied in seeded blocks
(:mod:`.blocks`: plan() draws the operators, parents and one seed per block;
take() realises them: on the CPU in compiled passes, on a GPU the generation
at once), so Ray actors can vary their own pieces from a mirror of the population
exactly; their population is one tensor of genomes and the selection a stable
sort, as selBest chooses. Host genomes (CPPN, no crossover) follow varOr's draws
too, and all of a generation's mutants are mutated in one call; their population is a
list of genomes, selected the same way. A run checkpointed while host genomes went
through varOr itself (its clones sharing their parent's genome, each mutant mutated
alone) goes on so.
"""

from __future__ import annotations

import copy
import random
from typing import Any, Optional

import numpy as np
import torch
from deap import algorithms, base, tools

from ..archive import Archive
from ..encodings.base import Encoding
from .base import Scores, Strategy
from .blocks import DENSE_VARIATION, VARIATION, WHOLE_VARIATION, Plan, blocked, realise, varies_whole
from .deap_types import Individual


def share_genome(ind: Individual) -> Individual:
    """varOr's clone of a parent: a new Individual holding the same genome object and a copy of its fitness. Nothing
    here writes a genome in place (mate and mutate give the individual new ones), so a deep copy of it, what DEAP
    clones by default, is not needed (a GA on MNIST CPPNs: 8,400 -> 10,000 evals/s, scripts/bench_evolve.py)."""
    clone = Individual(ind.genome)
    clone.fitness = copy.deepcopy(ind.fitness)
    return clone


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
        self.toolbox.register("clone", share_genome)
        self._next_key = 0  # each individual's key (mirror_source): unique within this strategy
        # direct genomes (planned): the population's genomes, row k individual k's, one (mu, G) tensor gathered anew
        # from the last one and the children at each selection; the individuals hold only fitness and key then
        self._pool: Optional[torch.Tensor] = None
        self._batch: Optional[torch.Tensor] = None  # direct genomes: the children of the last take()
        # direct genomes off the CPU (CUDA): the generation's children varied at once, or each block at once for a
        # generation too big (a run checkpointed while they were varied block by block, or child by child, keeps that)
        self.whole = self.on_device and varies_whole(self.counters, lambda_, self.encoding.num_genes)
        self.dense = self.on_device and not self.counters and not self.whole  # a generation too big for at once
        # host genomes of an encoding without crossover (CPPN): varOr's draws first (_draws), then all its mutants
        # in one mutate() call, population and children lists of genomes selected as on the planned path; a run
        # checkpointed while varOr mutated child by child (another order of the numpy draws) keeps doing so
        self.batched = not self.on_device and type(self.encoding).crossover is Encoding.crossover

    planned = True
    counted = True

    def _individual(self, genome: Any) -> Individual:
        ind = Individual(genome)
        ind.key = self._next_key
        self._next_key += 1
        return ind

    def _parents(self, indices: Any) -> Any:
        if isinstance(self._pool, list):
            return [self._pool[int(i)] for i in indices]
        if self._pool is not None:
            return self._pool.index_select(0, torch.as_tensor(np.asarray(indices, dtype=np.int64),
                                                              device=self._pool.device))
        return self.encoding.stack([self.population[int(i)].genome for i in indices])

    def mirror_source(self) -> tuple[np.ndarray, Any]:
        """(keys (mu,) int64 of the population's individuals, population indices -> a (len, G) batch): what a
        plan's parents index, for the actors' mirrors."""
        return np.array([ind.key for ind in self.population], dtype=np.int64), self._parents

    def plan(self) -> Optional[Plan]:
        if not self.on_device:
            return None
        if self.generation == 0:
            return blocked("random", self.mu, self.rng, self.generation)
        ops, parents = self._draws()
        return blocked("ga", self.lambda_, self.rng, self.generation, parents=parents, ops=ops,
                       counters=self.counters, dense=self.dense, whole=self.whole)

    def _draws(self) -> tuple[np.ndarray, np.ndarray]:
        """varOr's draws for the next generation, in its order, from :attr:`py_random`: each child's operator
        (lambda,) int8 (0 crossover, 1 mutation, 2 reproduction) and its parents (lambda, 2) int64 population
        indices (the second -1 but for a crossover; a crossover's child is the first one's, DEAP's ``ind1``)."""
        r, n = self.py_random, len(self.population)
        ops = np.empty(self.lambda_, dtype=np.int8)
        parents = np.full((self.lambda_, 2), -1, dtype=np.int64)
        for k in range(self.lambda_):
            choice = r.random()
            if choice < self.cxpb:
                ops[k], parents[k] = 0, r.sample(range(n), 2)
            elif choice < self.cxpb + self.mutpb:
                ops[k], parents[k, 0] = 1, r.choice(range(n))
            else:
                ops[k], parents[k, 0] = 2, r.choice(range(n))
        return ops, parents

    @property
    def variation(self) -> str:
        return WHOLE_VARIATION if self.whole else DENSE_VARIATION if self.dense else super().variation

    def take(self, plan: Plan) -> Any:
        batch, _ = realise(plan, self.encoding, self._parents)
        self._offspring = []  # made in tell(), only for the children selected (DEAP's Individuals are slow to make)
        self._batch = batch  # which nothing writes: the survivors' rows are gathered into the population's tensor
        return batch

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
        if self.on_device:
            return self.take(self.plan())
        if self.generation == 0:
            batch = enc.random(self.mu, self.vary_rng)
            if self.batched:
                self._batch = batch
            else:
                self._offspring = [Individual(enc.pick(batch, i)) for i in range(self.mu)]
            return batch
        if self.batched:
            return self._vary_batched()
        state = random.getstate()
        random.setstate(self.py_random.getstate())  # varOr draws from the global `random`
        try:
            self._offspring = algorithms.varOr(self.population, self.toolbox, self.lambda_, self.cxpb, self.mutpb)
        finally:
            self.py_random.setstate(random.getstate())
            random.setstate(state)
        return enc.stack([ind.genome for ind in self._offspring])

    def _vary_batched(self) -> list:
        """varOr's children of host genomes, its mutants mutated in one call: a crossover's child is its first
        parent's genome (the encoding has no crossover: varOr's mate leaves the clone as it was), a reproduction's
        its parent's (genomes are never written in place, so children share them)."""
        ops, parents = self._draws()
        children = self._parents(parents[:, 0].tolist())
        mutants = np.flatnonzero(ops == 1).tolist()
        if mutants:
            mutated = self.encoding.mutate([children[k] for k in mutants], self.vary_rng, self.generation)
            for k, genome in zip(mutants, mutated):
                children[k] = genome
        self._batch = children
        self._offspring = []
        return children

    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        values = torch.as_tensor(confidence)[:, 0].tolist()  # DEAP's fitness objects live on the host
        self.archive.add(genomes, confidence, self.generation, scores=scores)
        if self._batch is not None:  # planned or batched: select first, then make the survivors' Individuals
            self.population = self._select_planned(values)
        else:
            for ind, value in zip(self._offspring, values):
                ind.fitness.values = (float(value),)
            self.population = self.toolbox.select(self.population + self._offspring, self.mu)
        self._offspring, self._batch = [], None
        self.generation += 1

    def _select_planned(self, values: list[float]) -> list[Individual]:
        """selBest over the population and this generation's children (``values``: their fitness), as DEAP's
        ``toolbox.select`` would choose them (sorted by fitness, best first, ties in the order population then
        children: Python's sort is stable), with an Individual made only for each child chosen; their genomes are
        gathered into :attr:`_pool` (the Individuals hold none)."""
        old = [ind.fitness.values[0] for ind in self.population]
        order = np.argsort(-np.array(old + values, dtype=np.float64), kind="stable")[:self.mu]
        chosen = []
        for i in order.tolist():
            if i < len(old):
                chosen.append(self.population[i])
            else:
                ind = self._individual(None)
                ind.fitness.values = (float(values[i - len(old)]),)
                chosen.append(ind)
        genes = self._batch if self._pool is None or not old else (
            self._pool + self._batch if isinstance(self._batch, list) else torch.cat([self._pool, self._batch]))
        if isinstance(genes, list):
            self._pool = [genes[i] for i in order.tolist()]
        else:
            self._pool = genes.index_select(0, torch.from_numpy(order).to(genes.device))
        return chosen

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super().state_dict()
        enc = self.encoding
        if self.population:
            genomes = self._pool if self._pool is not None else enc.stack([ind.genome for ind in self.population])
            for key, value in enc.to_arrays(genomes).items():
                arrays[f"population.{key}"] = value
            arrays["population_fitness"] = np.array([ind.fitness.values[0] for ind in self.population])
        version, internal, gauss = self.py_random.getstate()
        values["py_random"] = [version, list(internal), gauss]
        if self.batched:
            values["mutants"] = "batched"
        return arrays, values

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        if self.on_device and not self.counters and values.get("variation") in (VARIATION, DENSE_VARIATION):
            self.whole = False  # begun child by child or block by block on the device: continued so
            self.dense = values["variation"] == DENSE_VARIATION
        if self.batched and values.get("mutants") != "batched":
            self.batched = False  # begun while varOr mutated host genomes one at a time: continued so
        super().load_state_dict(arrays, values)
        version, internal, gauss = values["py_random"]
        self.py_random.setstate((version, tuple(internal), gauss))
        pop = {k[len("population."):]: v for k, v in arrays.items() if k.startswith("population.")}
        self.population, self._pool = [], None
        if pop:
            batch = self.encoding.from_arrays(pop)
            planned = self.on_device or self.batched  # those paths keep the genomes in _pool, not in the Individuals
            for i, fit in enumerate(arrays["population_fitness"]):
                ind = self._individual(None if planned else self.encoding.pick(batch, i))
                ind.fitness.values = (float(fit),)
                self.population.append(ind)
            if planned:
                self._pool = batch
