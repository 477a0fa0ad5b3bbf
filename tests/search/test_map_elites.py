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
        strategy.tell(genomes, probs[:, classes].double())


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
    conf = torch.full((10, 4), -np.inf, dtype=torch.float64)
    conf[3, 2] = 0.5  # only cell 2 gets an elite
    strategy.tell(first, conf)
    strategy.ask()
    assert set(strategy._parents.tolist()) == {2}


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
        archive.add(enc.random(4, np.random.default_rng(0)), torch.diag(torch.tensor([0.9999, 0.9999, 0.9999, 0.5])), 0)
        strategy = MapElites(archive, np.random.default_rng(1), population=4000, initial_population=4,
                             laggard_bias=bias)
        strategy.generation = 1
        strategy.ask()
        return np.bincount(np.asarray(strategy._parents), minlength=4) / 4000

    uniform, biased = parent_counts(0.0), parent_counts(0.5)
    np.testing.assert_allclose(uniform, 0.25, atol=0.03)
    assert biased[3] == pytest.approx(0.5 * 0.25 + 0.5, abs=0.03)  # uniform half, plus nearly all the weighted half


def test_same_generator_same_archive_and_generator_state_round_trips(oracle):
    def run(stop: int, restart: bool = False) -> Archive:
        enc = DirectEncoding((1, 8, 8), crossover_rate=0.5)
        archive = Archive(enc, range(4), oracle.labels)
        strategy = MapElites(archive, np.random.default_rng(0), population=20, initial_population=20,
                             generator=torch.Generator().manual_seed(3))
        _loop(strategy, oracle, [0, 1, 2, 3], stop)
        if restart:  # a fresh strategy and archive from the saved states, then on to the same end
            arrays, values = strategy.state_dict()
            assert arrays["generator"].dtype == np.uint8
            state = archive.state_dict()
            archive = Archive(enc, range(4), oracle.labels)
            archive.load_state_dict(state)
            strategy = MapElites(archive, np.random.default_rng(99), population=20, initial_population=20,
                                 generator=torch.Generator().manual_seed(99))
            strategy.load_state_dict(arrays, values)
            for _ in range(6):  # generations 5..10
                genomes = strategy.ask()
                probs = oracle.probs(enc.decode(genomes, torch.device("cpu")))
                strategy.tell(genomes, probs[:, [0, 1, 2, 3]].double())
        return archive

    straight, resumed = run(10), run(4, restart=True)
    np.testing.assert_array_equal(straight.fitness, resumed.fitness)
    assert torch.equal(straight.elites([0, 1, 2, 3]), resumed.elites([0, 1, 2, 3]))


def test_an_old_numpy_state_cannot_resume_device_genomes(oracle):
    from fooling.errors import FoolingError

    archive = Archive(DirectEncoding((1, 8, 8)), range(4), oracle.labels)
    strategy = MapElites(archive, np.random.default_rng(0), population=4, initial_population=4)
    _, values = strategy.state_dict()
    with pytest.raises(FoolingError, match="cannot continue bit-identically"):
        strategy.load_state_dict({}, {**values, "generation": 3})
