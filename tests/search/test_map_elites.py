"""MAP-Elites and the GA raise confidence on a known oracle; parents come from occupied cells."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fooling.archive import Archive
from fooling.encodings import DirectEncoding
from fooling.search import GeneticAlgorithm, MapElites


def _loop(strategy, classifier, classes, generations):
    for _ in range(generations + 1):
        genomes = strategy.ask()
        probs = classifier.probs(strategy.encoding.decode(genomes, torch.device("cpu")))
        strategy.tell(genomes, probs[:, classes].double().numpy())


def test_map_elites_raises_every_class(oracle):
    enc = DirectEncoding((1, 8, 8), mutation_rate=0.05)
    archive = Archive(enc, range(4), oracle.labels)
    strategy = MapElites(archive, np.random.default_rng(0), population=40, initial_population=40)
    _loop(strategy, oracle, [0, 1, 2, 3], 0)
    start = archive.fitness.copy()
    _loop(strategy, oracle, [0, 1, 2, 3], 60)
    assert np.all(archive.fitness > start)
    assert np.all(archive.fitness > 0.97), archive.fitness  # the oracle tops out at 0.9998


def test_parents_are_drawn_from_occupied_cells_only(oracle):
    enc = DirectEncoding((1, 8, 8))
    archive = Archive(enc, range(4), oracle.labels)
    strategy = MapElites(archive, np.random.default_rng(0), population=50, initial_population=10)
    first = strategy.ask()
    assert first.shape == (10, 64)  # the initial population
    conf = np.zeros((10, 4))
    conf[3, 2] = 0.5  # only cell 2 gets an elite
    strategy.tell(first, conf - np.array([1, 1, 0, 1]))  # cells 0, 1, 3 see -1: still improve from -inf
    archive.fitness[[0, 1, 3]] = -np.inf  # empty them again
    strategy.ask()
    assert set(strategy._parents) == {2}


def test_ga_improves_its_target(oracle):
    enc = DirectEncoding((1, 8, 8), mutation_rate=0.05)
    archive = Archive(enc, [1], oracle.labels)
    ga = GeneticAlgorithm(archive, np.random.default_rng(0), random.Random(0), mu=20, lambda_=40, cxpb=0.3,
                          mutpb=0.7)
    _loop(ga, oracle, [1], 0)
    start = archive.fitness[0]
    _loop(ga, oracle, [1], 30)
    assert archive.fitness[0] > max(start, 0.9)
    assert len(ga.population) == 20
    assert all(ind.fitness.valid for ind in ga.population)


def test_laggard_bias_sends_parents_to_unfinished_classes(oracle):
    enc = DirectEncoding((1, 8, 8))

    def parent_counts(bias: float) -> np.ndarray:
        archive = Archive(enc, range(4), oracle.labels)
        archive.add(enc.random(4, np.random.default_rng(0)), np.diag([0.9999, 0.9999, 0.9999, 0.5]), 0)
        strategy = MapElites(archive, np.random.default_rng(1), population=4000, initial_population=4,
                             laggard_bias=bias)
        strategy.generation = 1
        strategy.ask()
        return np.bincount(strategy._parents, minlength=4) / 4000

    uniform, biased = parent_counts(0.0), parent_counts(0.5)
    np.testing.assert_allclose(uniform, 0.25, atol=0.03)
    assert biased[3] == pytest.approx(0.5 * 0.25 + 0.5, abs=0.03)  # uniform half, plus nearly all the weighted half
