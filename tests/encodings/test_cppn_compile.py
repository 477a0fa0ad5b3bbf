"""The population graph's depths and reachability: both algorithms (all-connection rounds for small graphs,
level by level for large ones) against a per-node reference, on evolved and deep hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest

from fooling.encodings.cppn import CPPNEncoding
from fooling.encodings.cppn import compile as C
from fooling.encodings.cppn.genome import NUM_INPUTS
from helpers import mutated_cppns


def reference(num_nodes: int, sources: np.ndarray, targets: np.ndarray, ends: np.ndarray):
    """Depths and reachability node by node, in the topological numbering (sources < targets)."""
    depth = np.ones(num_nodes, dtype=np.int64)
    depth[:NUM_INPUTS] = 0
    for t in range(num_nodes):
        into = sources[targets == t]
        if into.size:
            depth[t] = depth[into].max() + 1
    reach = np.zeros(num_nodes, dtype=bool)
    reach[ends] = True
    for s in range(num_nodes - 1, -1, -1):
        reach[s] |= bool(reach[targets[sources == s]].any())
    return depth, reach


def graphs():
    """(num_nodes, sources, targets, ends): an evolved population merged like compile_population, and a chain."""
    genomes = mutated_cppns(CPPNEncoding((1, 8, 8)), 12, 25)
    counts = np.array([g.num_hidden + g.num_outputs for g in genomes])
    first = np.cumsum(counts) - counts
    shift = np.repeat(first, [g.num_connections for g in genomes])
    sources = np.concatenate([g.sources for g in genomes]).astype(np.int64)
    targets = np.concatenate([g.targets for g in genomes]).astype(np.int64) + shift
    sources += shift * (sources >= NUM_INPUTS)
    ends = NUM_INPUTS + first + np.array([g.num_hidden for g in genomes])
    yield NUM_INPUTS + int(counts.sum()), sources, targets, ends
    chain = np.arange(NUM_INPUTS - 1, 40)  # a path 3 -> 4 -> ... -> 40 plus shortcuts and a dead branch
    sources = np.concatenate([chain[:-1], [0, 1, 10, 20, 5]])
    targets = np.concatenate([chain[1:], [40, 30, 35, 41, 42]])
    yield 43, sources, targets, np.array([40])


@pytest.mark.parametrize("limits", [(0, 0), (10**9, 10**9)], ids=["by_level", "all_connections"])
def test_depths_and_reaching_match_the_reference(limits, monkeypatch) -> None:
    monkeypatch.setattr(C, "BELLMAN_FORD_EDGES", limits)
    for num_nodes, sources, targets, ends in graphs():
        depth, reach = reference(num_nodes, sources, targets, ends)
        assert np.array_equal(C._depths(num_nodes, sources, targets), depth)
        assert np.array_equal(C._reaching(num_nodes, sources, targets, ends), reach)
        assert reach.sum() < num_nodes  # some node is dead: the test can tell


def test_graph_without_connections() -> None:
    assert C._depths(6, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 0, 0, 0, 1, 1]
    assert C._reaching(6, np.zeros(0, np.int64), np.zeros(0, np.int64), np.array([5])).tolist() == [0] * 5 + [1]
