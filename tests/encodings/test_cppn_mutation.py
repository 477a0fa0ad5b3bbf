"""CPPN mutation: every child is a valid network, each operator does its one kind of change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fooling.encodings.cppn import CPPNEncoding, Genome
from fooling.encodings.cppn.functions import NUM_FUNCTIONS
from fooling.encodings.cppn.genome import NUM_INPUTS, WEIGHT_RANGE, check_genome, initial_genome, make_genome
from fooling.encodings.cppn.mutation import (
    Editable, MutationRates, add_connection, add_node, delete_connection, delete_node, mutate_functions,
    mutate_population, mutate_weights, pack, rewire_connection,
)


def grown(seed: int, hidden: int, outputs: int = 1) -> Genome:
    """A random genome with ``hidden`` hidden nodes, built by splitting and adding connections."""
    rng = np.random.default_rng(seed)
    net = Editable.of(initial_genome(outputs, rng))
    while len(net.hidden) < hidden:
        add_node(net, rng.random(3), max_hidden=hidden)
        add_connection(net, rng.random(2))
    return net.freeze()


def pairs(g: Genome | Editable) -> set[tuple[int, int]]:
    return set(zip(list(g.sources), list(g.targets)))


@pytest.mark.parametrize("cap, outputs", [(200, 1), (3, 3), (0, 1)])
def test_every_mutated_genome_is_valid(cap: int, outputs: int) -> None:
    rates = MutationRates(max_hidden=cap, add_node=0.9, delete_node=0.05)
    rng = np.random.default_rng(cap)
    genomes = [initial_genome(outputs, rng) for _ in range(40)]
    sizes = []
    for _ in range(60):
        genomes = mutate_population(genomes, rng, rates)
        for g in genomes:
            check_genome(g, outputs, max_hidden=cap)  # acyclic, no duplicates, weights in range, cap kept
        sizes.append(max(g.num_hidden for g in genomes))
    assert max(sizes) == cap if cap <= 3 else max(sizes) >= 10  # the cap is reached, never passed


def test_add_connection_reaches_every_free_pair_and_only_those() -> None:
    g = grown(0, hidden=3)
    free = {(s, t) for s in range(NUM_INPUTS + 3) for t in range(max(s + 1, NUM_INPUTS), g.num_nodes)} - pairs(g)
    reached = set()
    for u in np.linspace(0, 1, 4 * len(free), endpoint=False):
        net = Editable.of(g)
        add_connection(net, [u, 0.25])
        (new,) = pairs(net) - pairs(g)
        assert len(net.sources) == g.num_connections + 1 and net.weights[-1] == -0.5 * WEIGHT_RANGE
        reached.add(new)
    assert reached == free


def test_add_connection_on_a_full_network_changes_nothing() -> None:
    net = Editable.of(make_genome([0], [0], [0, 1, 2, 3, 0, 1, 2, 3, 4], [4] * 4 + [5] * 5, [1.0] * 9))
    add_connection(net, [0.5, 0.5])
    assert len(net.sources) == 9


def test_delete_connection_removes_exactly_one() -> None:
    g = grown(1, hidden=4)
    removed = set()
    for u in np.linspace(0, 1, 50, endpoint=False):
        net = Editable.of(g)
        delete_connection(net, [u])
        assert len(net.sources) == g.num_connections - 1 and pairs(net) < pairs(g)
        removed |= pairs(g) - pairs(net)
    assert removed == pairs(g)


def test_rewire_moves_sources_and_targets_and_keeps_weights() -> None:
    g = grown(2, hidden=5)
    moved_source = moved_target = 0
    for u in itertools.product(np.linspace(0, 1, 7, endpoint=False), [0.2, 0.8], [0.1, 0.6, 0.95]):
        net = Editable.of(g)
        rewire_connection(net, u)
        child = net.freeze()
        check_genome(child)
        changed = np.flatnonzero((child.sources != g.sources) | (child.targets != g.targets))
        assert len(changed) <= 1 and np.array_equal(child.weights, g.weights)
        if len(changed):
            moved_source += child.sources[changed[0]] != g.sources[changed[0]]
            moved_target += child.targets[changed[0]] != g.targets[changed[0]]
    assert moved_source > 0 and moved_target > 0


def test_add_node_splits_a_connection() -> None:
    g = grown(3, hidden=2, outputs=3)
    positions = set()
    for u in itertools.product(np.linspace(0, 1, 9, endpoint=False), [0.0, 0.5, 0.99], [0.3]):
        net = Editable.of(g)
        add_node(net, u, max_hidden=10)
        child = net.freeze()
        check_genome(child, 3)
        assert child.num_hidden == 3 and child.num_connections == g.num_connections + 1
        node = int(child.sources[-1])  # the split s->t became s->node (weight 1), node->t (old weight)
        split = int(u[0] * g.num_connections)
        target = g.targets[split] + 1  # every node from the new one on moves up by one
        assert (child.sources[-2], child.targets[-2], child.weights[-2]) == (g.sources[split], node, 1.0)
        assert (child.targets[-1], child.weights[-1]) == (target, g.weights[split])
        assert child.hidden[node - NUM_INPUTS] == int(0.3 * NUM_FUNCTIONS)
        positions.add(node)
    assert len(positions) >= 2  # the new node lands at different places in the order


def test_add_node_respects_the_cap() -> None:
    g = grown(4, hidden=3)
    net = Editable.of(g)
    add_node(net, [0.5, 0.5, 0.5], max_hidden=3)
    assert net.freeze().same_as(g)


def test_delete_node_removes_a_node_and_its_connections() -> None:
    g = grown(5, hidden=4)
    for u in np.linspace(0, 1, 4, endpoint=False):
        net = Editable.of(g)
        delete_node(net, [u])
        child = net.freeze()
        check_genome(child)
        node = NUM_INPUTS + int(u * 4)
        touching = np.sum((g.sources == node) | (g.targets == node))
        assert child.num_hidden == 3 and child.num_connections == g.num_connections - touching


def test_weight_mutation_keeps_range_and_untouched_weights_exact() -> None:
    genomes = [grown(s, hidden=3) for s in range(20)]
    rng = np.random.default_rng(0)
    same = mutate_weights(genomes, rng, rate=0.0, eta=15.0, variant="bounded")
    assert all(a is b for a, b in zip(same, genomes))
    for variant in ("bounded", "unscaled"):
        children = mutate_weights(genomes, rng, rate=0.3, eta=15.0, variant=variant)
        before = np.concatenate([g.weights for g in genomes])
        after = np.concatenate([c.weights for c in children])
        changed = before != after
        assert 0.2 < changed.mean() < 0.4 and np.all(np.abs(after) <= WEIGHT_RANGE)
        assert np.all(np.abs(after - before)[changed] > 0)
        for g, c in zip(genomes, children):
            assert np.array_equal(g.sources, c.sources) and np.array_equal(g.hidden, c.hidden)


def test_function_mutation_redraws_about_rate_of_the_nodes() -> None:
    genomes = [grown(s, hidden=6, outputs=3) for s in range(30)]
    children = mutate_functions(genomes, np.random.default_rng(0), rate=0.5)
    before = np.concatenate([g.functions for g in genomes])
    after = np.concatenate([c.functions for c in children])
    # redrawn with probability 0.5, and a redraw keeps the old function 1 time in 4
    assert 0.3 < np.mean(before != after) < 0.45 and set(after.tolist()) == set(range(NUM_FUNCTIONS))


def test_population_mutation_applies_each_change_at_its_rate() -> None:
    rates = MutationRates(weight_rate=0.0, function_rate=0.0)
    rng = np.random.default_rng(0)
    parents = [grown(s, hidden=4) for s in range(400)]
    children = mutate_population(parents, rng, rates)
    hidden_delta = np.array([c.num_hidden - p.num_hidden for c, p in zip(children, parents)])
    # add node 0.5, delete node 0.2: P(+1) = 0.5·0.8, P(-1) = 0.5·0.2
    assert abs(np.mean(hidden_delta == 1) - 0.4) < 0.06 and abs(np.mean(hidden_delta == -1) - 0.1) < 0.04
    assert sum(c is p for c, p in zip(children, parents)) / 400 == pytest.approx(
        0.5 * 0.7 * 0.5 * 0.5 * 0.8, abs=0.03)  # no structural change at all: the same object


def test_mutating_genomes_together_is_distributed_as_mutating_each_alone() -> None:
    """What the GA on CPPNs relies on when it mutates a generation's mutants in one call instead of varOr's one call
    each: a genome's child has the same distribution either way (structural changes, weights and functions
    changed), only the numbers are drawn in another order. Each statistic within 4.5 standard errors."""
    parent, n = grown(2, hidden=4), 1500
    rates = MutationRates(add_connection=0.3, delete_connection=0.2, add_node=0.3, delete_node=0.2)

    def samples(children: list[Genome]) -> list[np.ndarray]:
        same = np.array([np.array_equal(c.sources, parent.sources) and np.array_equal(c.targets, parent.targets)
                         for c in children])
        delta = np.array([c.num_hidden - parent.num_hidden for c in children])
        kept = [c for c, k in zip(children, same) if k]
        weights = np.array([np.sum(c.weights != parent.weights) for c in kept])
        functions = np.array([np.sum(c.functions != parent.functions) for c in kept])
        return [delta == -1, delta == 0, delta == 1, same, weights, functions]

    together = samples(mutate_population([parent] * n, np.random.default_rng(0), rates))
    rng = np.random.default_rng(1)
    alone = samples([mutate_population([parent], rng, rates)[0] for _ in range(n)])
    for k, (a, b) in enumerate(zip(together, alone)):
        error = np.sqrt(a.var() / a.size + b.var() / b.size)
        assert abs(a.mean() - b.mean()) < 4.5 * error, (k, a.mean(), b.mean(), error)
    assert together[4].mean() > 0.8 and together[0].mean() > 0.05  # weights and the structure did change


def test_mutation_is_deterministic_and_leaves_parents_untouched() -> None:
    enc = CPPNEncoding((3, 8, 8))
    parents = [grown(s, hidden=5, outputs=3) for s in range(50)]
    copies = [p.copy() for p in parents]
    a = enc.mutate(parents, np.random.default_rng(7), 0)
    b = enc.mutate(parents, np.random.default_rng(7), 0)
    assert all(x.same_as(y) for x, y in zip(a, b))
    assert all(x.same_as(y) for x, y in zip(parents, copies))


def test_operators_are_registered_in_a_deap_toolbox() -> None:
    enc = CPPNEncoding((1, 8, 8))
    for name in ("mutate_population", "mutate_structure", "add_connection", "delete_connection",
                 "rewire_connection", "add_node", "delete_node", "mutate_weights", "mutate_functions"):
        assert callable(getattr(enc.toolbox, name))
    net = Editable.of(grown(0, hidden=2))
    enc.toolbox.add_node(net, [0.1, 0.2, 0.3])
    assert len(net.hidden) == 3


@pytest.mark.parametrize("outputs", [1, 3])
def test_population_mutation_matches_the_single_operators(outputs: int) -> None:
    """mutate_population (the structural edits of the whole population in one compiled loop) gives exactly the
    children of mutate_structure per genome, then mutate_weights and mutate_functions, from the same numbers;
    complete networks (initial genomes), empty and grown ones included."""
    from fooling.encodings.cppn.mutation import UNIFORMS_PER_CHANGE, mutate_structure

    rng = np.random.default_rng(3)
    full = make_genome([0], [1] * outputs, [0, 1, 2, 3, 4] * outputs + [0, 1, 2, 3],
                       sorted([NUM_INPUTS + 1 + o for o in range(outputs)] * 5) + [NUM_INPUTS] * 4,
                       [1.0] * (5 * outputs + 4))
    empty = make_genome([2, 3], [0] * outputs, [], [], [])
    genomes = [initial_genome(outputs, rng), full, empty] + [grown(s, h, outputs) for s, h in
                                                             zip(range(40), itertools.cycle([0, 1, 3, 8, 20]))]
    for g in genomes:
        check_genome(g)
    rates = MutationRates(add_connection=0.9, delete_connection=0.5, rewire_connection=0.5, add_node=0.5,
                          delete_node=0.3, max_hidden=22)
    for seed in range(5):
        batched = mutate_population(genomes, np.random.default_rng(seed), rates)
        r = np.random.default_rng(seed)
        changes = r.random((len(genomes), 5)) < rates.structural
        uniforms = r.random((len(genomes), 5, UNIFORMS_PER_CHANGE))
        single = [mutate_structure(g, c, u, rates.max_hidden) for g, c, u in zip(genomes, changes, uniforms)]
        single = mutate_weights(single, r, rates.weight_rate, rates.weight_eta, rates.weight_variant)
        single = mutate_functions(single, r, rates.function_rate)
        assert all(a.same_as(b) for a, b in zip(batched, single))
        for child in batched:
            check_genome(child, outputs, rates.max_hidden)
        genomes = batched


@pytest.mark.parametrize("rates", [MutationRates(), MutationRates(0.9, 0.1, 0.9, 0.9, 0.05, max_hidden=12),
                                   MutationRates(0.2, 0.8, 0.9, 0.3, 0.6)])
def test_population_mutation_matches_the_single_operators_over_many_generations(rates: MutationRates) -> None:
    """The compiled structural edits stay identical to the per-genome operators as networks grow, shrink and
    reach the cap (rewires both ways, splits next to outputs, deletions that renumber nodes)."""
    from fooling.encodings.cppn.mutation import UNIFORMS_PER_CHANGE, mutate_structure

    rng = np.random.default_rng(11)
    genomes = [initial_genome(3, rng) for _ in range(30)]
    for step in range(25):
        batched = mutate_population(genomes, np.random.default_rng(step), rates)
        r = np.random.default_rng(step)
        changes = r.random((len(genomes), 5)) < rates.structural
        uniforms = r.random((len(genomes), 5, UNIFORMS_PER_CHANGE))
        single = [mutate_structure(g, c, u, rates.max_hidden) for g, c, u in zip(genomes, changes, uniforms)]
        single = mutate_weights(single, r, rates.weight_rate, rates.weight_eta, rates.weight_variant)
        single = mutate_functions(single, r, rates.function_rate)
        assert all(a.same_as(b) for a, b in zip(batched, single)), step
        genomes = batched


@pytest.mark.parametrize("repeats", [False, True])
def test_pack_lays_genomes_end_to_end(repeats: bool) -> None:
    """pack() equals concatenating every genome's arrays, also when most genomes repeat (gathered then)."""
    distinct = [grown(seed, hidden=seed % 4, outputs=3) for seed in range(9)] + [initial_genome(3, np.random.default_rng(1))]
    genomes = [distinct[(i * 7) % 10] for i in range(60)] if repeats else distinct
    packed = pack(genomes)
    expected = (np.array([g.num_hidden for g in genomes]), np.concatenate([np.concatenate([g.hidden, g.outputs])
                                                                           for g in genomes]),
                np.concatenate([g.sources for g in genomes]), np.concatenate([g.targets for g in genomes]),
                np.concatenate([g.weights for g in genomes]), np.array([g.num_connections for g in genomes]))
    for got, want, dtype in zip((packed.hidden, packed.functions, packed.sources, packed.targets, packed.weights,
                                 packed.edges), expected, (np.int64, np.int8, np.int64, np.int64, np.float64, np.int64)):
        assert got.dtype == dtype and np.array_equal(got, want)


def test_children_read_their_arrays_from_the_population_and_travel_as_plain_genomes() -> None:
    """A mutated child is a PackedGenome: its arrays are slices of the generation's arrays, cut when read; a copy,
    and a pickle, is a plain Genome holding only its own arrays."""
    import pickle

    from fooling.encodings.cppn.genome import PackedGenome
    from fooling.encodings.cppn.mutation import mutate_population_packed

    rng = np.random.default_rng(5)
    parents = [grown(s, 8, 3) for s in range(40)]
    children, packed = mutate_population_packed(parents, rng, MutationRates(weight_rate=1.0))
    child = children[7]
    assert isinstance(child, PackedGenome) and isinstance(child, Genome)
    check_genome(child, 3)
    assert np.shares_memory(child.weights, packed.weights) and np.shares_memory(child.hidden, packed.functions)
    data = pickle.dumps(child)
    assert len(data) < packed.weights.nbytes // 4  # its own arrays, not the generation's
    for copy in (pickle.loads(data), child.copy()):
        assert type(copy) is Genome and copy.same_as(child)
        assert not np.shares_memory(copy.weights, packed.weights)
    assert repr(child).startswith("PackedGenome(hidden=array(")
