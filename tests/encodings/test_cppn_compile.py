"""Compiling a CPPN population: depths and reachability (the compiled loops of cppn.kernels) against a per-node
reference, and batches compiled from their mutation packs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from fooling.encodings.cppn import CPPNEncoding
from fooling.encodings.cppn import compile as C
from fooling.encodings.cppn import kernels as K
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


def graphs(genomes=None):
    """(num_nodes, sources, targets, ends): an evolved population (``genomes``, or 12 grey ones) merged like
    compile_population, then a chain."""
    genomes = genomes or mutated_cppns(CPPNEncoding((1, 8, 8)), 12, 25)
    counts = np.array([g.num_hidden + g.num_outputs for g in genomes])
    first = np.cumsum(counts) - counts
    shift = np.repeat(first, [g.num_connections for g in genomes])
    sources = np.concatenate([g.sources for g in genomes]).astype(np.int64)
    targets = np.concatenate([g.targets for g in genomes]).astype(np.int64) + shift
    sources += shift * (sources >= NUM_INPUTS)
    outputs = genomes[0].num_outputs  # every genome's outputs, genome by genome
    ends = ((NUM_INPUTS + first + np.array([g.num_hidden for g in genomes]))[:, None] + np.arange(outputs)).reshape(-1)
    yield NUM_INPUTS + int(counts.sum()), sources, targets, ends
    chain = np.arange(NUM_INPUTS - 1, 40)  # a path 3 -> 4 -> ... -> 40 plus shortcuts and a dead branch
    sources = np.concatenate([chain[:-1], [0, 1, 10, 20, 5]])
    targets = np.concatenate([chain[1:], [40, 30, 35, 41, 42]])
    yield 43, sources, targets, np.array([40])


def test_depths_and_reaching_match_the_reference() -> None:
    for num_nodes, sources, targets, ends in graphs():
        depth, reach = reference(num_nodes, sources, targets, ends)
        assert np.array_equal(K.depths(num_nodes, sources, targets), depth)
        assert np.array_equal(K.reaching(num_nodes, sources, targets, ends), reach)
        assert reach.sum() < num_nodes  # some node is dead: the test can tell


def test_graph_without_connections() -> None:
    assert K.depths(6, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 0, 0, 0, 1, 1]
    assert K.reaching(6, np.zeros(0, np.int64), np.zeros(0, np.int64), np.array([5])).tolist() == [0] * 5 + [1]


def test_counting_sort_is_a_stable_argsort_with_each_keys_run() -> None:
    keys = np.random.default_rng(1).integers(0, 13, 500)
    starts, order = K._counting_sort(keys, 14)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(starts, np.searchsorted(np.sort(keys), np.arange(15)))


@pytest.mark.parametrize("channels", [1, 3])
def test_a_compiled_program_lays_out_the_live_nodes_by_depth_then_function(channels: int) -> None:
    """The program against one built from the per-node reference: live nodes only, rows by depth, then function,
    then genome order; each layer's connections sorted by target row (their packed order within one target),
    weights times the target function's input scale, and every source computed in an earlier layer."""
    from fooling.encodings.cppn.functions import INPUT_SCALE, NUM_FUNCTIONS

    genomes = mutated_cppns(CPPNEncoding((channels, 8, 8)), 40, 30, seed=3)
    num_nodes, sources, targets, ends = next(graphs(genomes))
    depth, live = reference(num_nodes, sources, targets, ends)
    functions = np.concatenate([g.functions for g in genomes]).astype(np.int64)
    nodes = np.flatnonzero(live[NUM_INPUTS:]) + NUM_INPUTS
    nodes = nodes[np.lexsort((nodes, functions[nodes - NUM_INPUTS], depth[nodes]))]
    row = np.arange(num_nodes)
    row[nodes] = NUM_INPUTS + np.arange(nodes.size)
    used = np.flatnonzero(live[targets])
    used = used[np.argsort(row[targets[used]], kind="stable")]
    scales = np.asarray(INPUT_SCALE)[functions[targets[used] - NUM_INPUTS]]
    weights = np.concatenate([g.weights for g in genomes])[used] * scales

    program = C.compile_population(genomes)
    assert program.rows == NUM_INPUTS + nodes.size
    assert np.array_equal(program.outputs.reshape(-1), row[ends])
    layers = program.layers
    assert np.array_equal(np.concatenate([l.sources for l in layers]), row[sources[used]])
    assert np.array_equal(np.concatenate([l.edges for l in layers]), used)
    assert np.array_equal(np.concatenate([l.weights for l in layers]), weights)
    assert np.array_equal(np.concatenate([l.scales for l in layers]), scales)
    for k, layer in enumerate(layers):
        rows = nodes[layer.start - NUM_INPUTS:layer.start - NUM_INPUTS + len(layer.offsets)]
        assert (depth[rows] == k + 1).all()
        assert all(functions[rows[a:b] - NUM_INPUTS].tolist() == [f] * (b - a) for f, a, b in layer.groups)
        assert [f for f, _, _ in layer.groups] == sorted({int(f) for f in functions[rows - NUM_INPUTS]})
        assert (layer.sources < layer.start).all()
    assert max(f for l in layers for f, _, _ in l.groups) < NUM_FUNCTIONS


def same_program(a: C.Program, b: C.Program) -> bool:
    if a.rows != b.rows or len(a.layers) != len(b.layers) or not np.array_equal(a.table, b.table):
        return False
    return all(x.start == y.start and x.groups == y.groups and x.edge_begin == y.edge_begin
               and all(np.array_equal(getattr(x, f), getattr(y, f)) and getattr(x, f).dtype == getattr(y, f).dtype
                       for f in ("sources", "offsets", "weights", "edges", "scales"))
               for x, y in zip(a.layers, b.layers))


def test_mutated_batches_compile_from_their_pack_to_the_same_program() -> None:
    """decode() reads the arrays mutate() laid end to end (joined when a batch is several mutate() results,
    as MAP-Elites' children + lineage children), and compiles exactly what concatenating the genomes gives."""
    enc = CPPNEncoding((3, 8, 8))
    rng = np.random.default_rng(5)
    parents = mutated_cppns(enc, 30, 8)
    for generation in range(6):
        children = enc.mutate(parents, rng, generation)
        bred = enc.mutate(parents[:7], rng, generation)
        batch = [*children, *bred]
        packed = enc._packed(batch)
        assert packed is not None
        assert same_program(C.compile_population(batch, packed), C.compile_population(batch))
        assert same_program(C.compile_population(children, enc._packed(children)), C.compile_population(children))
        assert enc._packed(batch[::-1]) is None and enc._packed([*bred, *children]) is None
        assert enc._packed(batch[:-1]) is None and enc._packed([g.copy() for g in batch]) is None
        parents = children
    children[0] = parents[1]  # a caller changing its own list does not change what the pack describes
    assert enc._packed(children) is None


def test_run_starts_is_a_searchsorted() -> None:
    ids = np.sort(np.random.default_rng(0).integers(0, 30, 200))
    assert np.array_equal(C._run_starts(ids, 35), np.searchsorted(ids, np.arange(36)))


def test_a_pickled_encoding_carries_no_recent_batches() -> None:
    enc = CPPNEncoding((1, 8, 8))
    children = enc.mutate(mutated_cppns(enc, 5, 2), np.random.default_rng(0), 0)
    assert enc._packed(children) is not None
    copy = pickle.loads(pickle.dumps(enc))
    assert copy._packs == [] and copy._packed(children) is None
    assert torch.equal(copy.decode(children, "cpu"), enc.decode(children, "cpu"))
