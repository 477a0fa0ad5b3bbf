"""The MAP-Elites archive: every candidate offered to every cell, shared elites, state round trip."""

from __future__ import annotations

import numpy as np

from fooling.archive import Archive
from fooling.encodings import DirectEncoding


def _archive(cells: int = 3) -> Archive:
    return Archive(DirectEncoding((1, 2, 2)), list(range(cells)), [f"c{i}" for i in range(cells)])


def test_every_candidate_is_offered_to_every_cell():
    archive = _archive()
    genomes = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    conf = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3], [0.5, 0.1, 0.2]])
    improved = archive.add(genomes, conf, generation=0)
    assert sorted(improved) == [0, 1, 2]
    np.testing.assert_allclose(archive.fitness, [0.9, 0.8, 0.3])
    # candidate 0 is the elite of two classes at once, stored once
    assert archive.genomes[0] is archive.genomes[1]
    np.testing.assert_array_equal(archive.genomes[2], genomes[1])


def test_only_strict_improvements_replace_and_milestones_are_recorded():
    archive = _archive(1)
    archive.add(np.zeros((1, 4), np.float32), np.array([[0.995]]), generation=0, parents=np.array([-1]))
    archive.add(np.ones((1, 4), np.float32), np.array([[0.995]]), generation=1, parents=np.array([0]))
    assert archive.generation_found[0] == 0 and archive.genomes[0][0] == 0.0
    archive.add(np.ones((1, 4), np.float32), np.array([[0.99995]]), generation=5, parents=np.array([0]))
    assert archive.generation_found[0] == 5 and archive.parent[0] == 0
    np.testing.assert_array_equal(archive.passed[0], [0, 5, 5])


def test_state_dict_round_trip_keeps_sharing():
    archive = _archive()
    rng = np.random.default_rng(0)
    for g in range(4):
        archive.add(rng.random((5, 4), dtype=np.float32), rng.random((5, 3)), generation=g)
    state = archive.state_dict()
    fresh = _archive()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.fitness, archive.fitness)
    np.testing.assert_array_equal(fresh.passed, archive.passed)
    for a, b in zip(archive.genomes, fresh.genomes):
        np.testing.assert_array_equal(a, b)
    shared = [(i, j) for i in range(3) for j in range(i) if archive.genomes[i] is archive.genomes[j]]
    assert all(fresh.genomes[i] is fresh.genomes[j] for i, j in shared)
    assert state["elite.genes"].shape[0] == len({id(g) for g in archive.genomes})
