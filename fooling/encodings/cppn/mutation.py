"""CPPN mutation: structural changes per genome, weights and functions over the whole population.

Each child undergoes, in this order and each with its own probability: add a
connection, delete a connection, rewire a connection, add a node (splitting a
connection), delete a node. Then every weight in the population mutates by
polynomial mutation (vectorised over all genomes at once) and every node's
function is redrawn with a small probability.

Randomness: :func:`mutate_population` draws everything for the whole population
from the numpy Generator in a few vectorised calls (which changes happen, and
three uniforms per change), so a seed fixes the result and no per-child
Generator call is paid. Structural operators edit small Python lists
(:class:`Editable`), which is faster than numpy for networks of tens of nodes;
each takes its uniforms ``u`` in [0, 1) and keeps the invariants of
:mod:`.genome` (feed-forward, no duplicate connection, weights in range, at most
``max_hidden`` hidden nodes). Children may share (never written) arrays with
their parents; ``CPPNEncoding.pick`` copies.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..operators import polynomial_mutation
from .functions import NUM_FUNCTIONS
from .genome import NUM_INPUTS, WEIGHT_RANGE, Genome

UNIFORMS_PER_CHANGE = 3


@dataclass(frozen=True)
class MutationRates:
    """Per-child probabilities of each structural change, and the weight/function settings."""

    add_connection: float = 0.5
    delete_connection: float = 0.3
    rewire_connection: float = 0.5
    add_node: float = 0.5
    delete_node: float = 0.2
    weight_rate: float = 0.1
    weight_eta: float = 15.0
    weight_variant: str = "bounded"  # polynomial mutation variant, see operators.polynomial_mutation
    function_rate: float = 0.1
    max_hidden: int = 200

    @property
    def structural(self) -> np.ndarray:
        """(5,) the structural probabilities in the order they are applied."""
        return np.array([self.add_connection, self.delete_connection, self.rewire_connection,
                         self.add_node, self.delete_node])


@dataclass
class Editable:
    """A genome as Python lists, for structural edits (same numbering as :class:`Genome`)."""

    hidden: list[int]
    outputs: list[int]
    sources: list[int]
    targets: list[int]
    weights: list[float]

    @classmethod
    def of(cls, g: Genome) -> "Editable":
        return cls(g.hidden.tolist(), g.outputs.tolist(), g.sources.tolist(), g.targets.tolist(), g.weights.tolist())

    def freeze(self) -> Genome:
        return Genome(np.array(self.hidden, dtype=np.int8), np.array(self.outputs, dtype=np.int8),
                      np.array(self.sources, dtype=np.int32), np.array(self.targets, dtype=np.int32),
                      np.array(self.weights, dtype=np.float64))

    @property
    def first_output(self) -> int:
        return NUM_INPUTS + len(self.hidden)

    @property
    def num_nodes(self) -> int:
        return NUM_INPUTS + len(self.hidden) + len(self.outputs)

    def remove(self, i: int) -> tuple[int, int, float]:
        """Connection ``i`` removed; returns it as (source, target, weight)."""
        return self.sources.pop(i), self.targets.pop(i), self.weights.pop(i)

    def append(self, source: int, target: int, weight: float) -> None:
        self.sources.append(source)
        self.targets.append(target)
        self.weights.append(weight)


def _pick(u: float, count: int) -> int:
    """A uniform index in [0, count) from u in [0, 1)."""
    return min(int(u * count), count - 1)


def _first_target(source: int) -> int:
    """The lowest node a connection from ``source`` may reach."""
    return max(source + 1, NUM_INPUTS)


def add_connection(net: Editable, u: Sequence[float]) -> None:
    """A new connection, uniform among the absent feed-forward ones (u[0]), weight uniform in range (u[1]).

    Valid pairs are ranked source-major; the u[0]-th free rank skips the ranks taken
    by existing connections.
    """
    n, first_output = net.num_nodes, net.first_output
    starts = [0]  # starts[s]: rank of the first valid pair from source s
    for s in range(first_output):
        starts.append(starts[-1] + n - (s + 1 if s >= NUM_INPUTS else NUM_INPUTS))
    free = starts[-1] - len(net.sources)
    if free <= 0:
        return
    rank = _pick(u[0], free)
    for taken in sorted([starts[s] + t - (s + 1 if s >= NUM_INPUTS else NUM_INPUTS)
                         for s, t in zip(net.sources, net.targets)]):
        if taken > rank:
            break
        rank += 1
    source = bisect_right(starts, rank) - 1
    net.append(source, _first_target(source) + rank - starts[source], WEIGHT_RANGE * (2.0 * u[1] - 1.0))


def delete_connection(net: Editable, u: Sequence[float]) -> None:
    """One connection, chosen uniformly (u[0]), removed."""
    if net.sources:
        net.remove(_pick(u[0], len(net.sources)))


def rewire_connection(net: Editable, u: Sequence[float]) -> None:
    """One connection (u[0]) gets a new source or, equally likely (u[1]), a new target.

    The new end is uniform (u[2]) among the nodes that keep the network feed-forward
    and duplicate-free; the weight stays. Nothing changes when no such node exists.
    """
    if not net.sources:
        return
    i = _pick(u[0], len(net.sources))
    source, target = net.sources[i], net.targets[i]
    if u[1] < 0.5:
        taken = {t for s, t in zip(net.sources, net.targets) if s == source}
        options = [t for t in range(_first_target(source), net.num_nodes) if t not in taken]
        if options:
            net.targets[i] = options[_pick(u[2], len(options))]
    else:
        taken = {s for s, t in zip(net.sources, net.targets) if t == target}
        options = [s for s in range(min(target, net.first_output)) if s not in taken]
        if options:
            net.sources[i] = options[_pick(u[2], len(options))]


def add_node(net: Editable, u: Sequence[float], max_hidden: int) -> None:
    """Split a uniformly chosen connection s→t (u[0]) with a new hidden node n.

    s→t is replaced by s→n (weight 1) and n→t (the old weight), as in NEAT; n is
    placed at a uniform position (u[1]) in the evaluation order between s and t and
    gets a uniform function (u[2]). Nothing changes at the cap of ``max_hidden``
    hidden nodes or without connections.
    """
    if len(net.hidden) >= max_hidden or not net.sources:
        return
    source, target, weight = net.remove(_pick(u[0], len(net.sources)))
    lowest, highest = _first_target(source), min(target, net.first_output)
    node = lowest + _pick(u[1], highest - lowest + 1)
    net.sources = [s + (s >= node) for s in net.sources]
    net.targets = [t + (t >= node) for t in net.targets]
    net.hidden.insert(node - NUM_INPUTS, _pick(u[2], NUM_FUNCTIONS))
    net.append(source, node, 1.0)
    net.append(node, target + 1, weight)


def delete_node(net: Editable, u: Sequence[float]) -> None:
    """A uniformly chosen hidden node (u[0]) removed with all its connections."""
    if not net.hidden:
        return
    node = NUM_INPUTS + _pick(u[0], len(net.hidden))
    kept = [(s - (s > node), t - (t > node), w) for s, t, w in zip(net.sources, net.targets, net.weights)
            if s != node and t != node]
    net.sources, net.targets, net.weights = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    del net.hidden[node - NUM_INPUTS]


def _replace_where(
    genomes: Sequence[Genome], changed: np.ndarray, counts: list[int], rebuild: Callable[[Genome, int, int], Genome]
) -> list[Genome]:
    """Genomes whose slice [a, b) of the concatenated ``changed`` flags has a True get ``rebuild(g, a, b)``."""
    owner = np.repeat(np.arange(len(genomes)), counts)  # the genome each flag belongs to
    touched = np.bincount(owner[changed], minlength=len(genomes)) > 0
    ends = np.cumsum(counts).tolist()
    return [rebuild(g, b - n, b) if t else g for g, t, n, b in zip(genomes, touched.tolist(), counts, ends)]


def _mutate_weight_array(weights: np.ndarray, rng: np.random.Generator, rate: float, eta: float,
                         variant: str) -> np.ndarray:
    """Polynomial mutation of the (W,) weights in place (see :func:`mutate_weights`); returns which changed."""
    unit = (weights + WEIGHT_RANGE) / (2.0 * WEIGHT_RANGE)
    mutated = polynomial_mutation(unit.copy()[None, :], rng, rate=rate, eta=eta, variant=variant)[0]
    changed = mutated != unit
    weights[changed] = np.clip(mutated[changed] * 2.0 * WEIGHT_RANGE - WEIGHT_RANGE, -WEIGHT_RANGE, WEIGHT_RANGE)
    return changed


def _mutate_function_array(functions: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Each of the (F,) int8 function ids redrawn in place with probability ``rate``; returns which were drawn."""
    redraw = rng.random(functions.size) < rate
    if redraw.any():
        functions[redraw] = rng.integers(0, NUM_FUNCTIONS, size=int(redraw.sum()))
    return redraw


def mutate_weights(
    genomes: Sequence[Genome], rng: np.random.Generator, rate: float, eta: float, variant: str
) -> list[Genome]:
    """Polynomial mutation of every weight of every genome in one vectorised call.

    Weights are mapped from [-R, R] to [0, 1], mutated there (each with probability
    ``rate``) and mapped back; weights that did not mutate keep their exact value.
    """
    counts = [g.num_connections for g in genomes]
    if not sum(counts):
        return list(genomes)
    weights = np.concatenate([g.weights for g in genomes])
    changed = _mutate_weight_array(weights, rng, rate, eta, variant)
    return _replace_where(genomes, changed, counts, lambda g, a, b: Genome(g.hidden, g.outputs, g.sources,
                                                                            g.targets, weights[a:b]))


def mutate_functions(genomes: Sequence[Genome], rng: np.random.Generator, rate: float) -> list[Genome]:
    """Each hidden and output node's function redrawn uniformly with probability ``rate`` (one vectorised draw)."""
    functions = np.concatenate([g.functions for g in genomes]) if genomes else np.zeros(0, np.int8)
    redraw = _mutate_function_array(functions, rng, rate)
    if not redraw.any():
        return list(genomes)
    counts = [g.num_hidden + g.num_outputs for g in genomes]
    return _replace_where(genomes, redraw, counts, lambda g, a, b: Genome(
        functions[a:a + g.num_hidden], functions[a + g.num_hidden:b], g.sources, g.targets, g.weights))


def mutate_structure(genome: Genome, changes: np.ndarray, uniforms: np.ndarray, max_hidden: int) -> Genome:
    """Apply the structural changes flagged in ``changes`` (5,) bool, using ``uniforms`` (5, 3)."""
    if not changes.any():
        return genome
    net = Editable.of(genome)
    u = uniforms.tolist()
    if changes[0]:
        add_connection(net, u[0])
    if changes[1]:
        delete_connection(net, u[1])
    if changes[2]:
        rewire_connection(net, u[2])
    if changes[3]:
        add_node(net, u[3], max_hidden)
    if changes[4]:
        delete_node(net, u[4])
    return net.freeze()


def _added_connections(genomes: Sequence[Genome], u: np.ndarray) -> list[Optional[tuple[int, int, float]]]:
    """:func:`add_connection` for every genome at once (numpy over the population), from (N, 2) ``u``.

    Returns per genome the new (source, target, weight), or None where no pair is free. The
    same choice as :func:`add_connection`: free rank r becomes r plus the number of taken ranks
    T_i (sorted, i from 0) with T_i − i ≤ r.
    """
    n = len(genomes)
    hidden = np.array([g.num_hidden for g in genomes], dtype=np.int64)
    nodes = NUM_INPUTS + hidden + np.array([g.num_outputs for g in genomes], dtype=np.int64)
    first_output = NUM_INPUTS + hidden

    def starts(s: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """The rank of the first valid pair from source s (``starts`` of :func:`add_connection`)."""
        h = np.maximum(s - NUM_INPUTS, 0)
        return np.minimum(s, NUM_INPUTS) * (nodes - NUM_INPUTS) + h * (nodes - 1) - h * (s + NUM_INPUTS - 1) // 2

    edges = np.array([g.num_connections for g in genomes], dtype=np.int64)
    free = starts(first_output, nodes) - edges
    rank = np.minimum((u[:, 0] * free).astype(np.int64), free - 1)
    if edges.sum():
        owner = np.repeat(np.arange(n), edges)
        s = np.concatenate([g.sources for g in genomes]).astype(np.int64)
        t = np.concatenate([g.targets for g in genomes]).astype(np.int64)
        taken = starts(s, nodes[owner]) + t - np.maximum(s + 1, NUM_INPUTS)
        taken = np.sort(owner << 32 | taken) & 0xFFFFFFFF  # sorted within each genome
        local = np.arange(owner.size) - np.repeat(np.cumsum(edges) - edges, edges)
        rank += np.bincount(owner, weights=taken - local <= rank[owner], minlength=n).astype(np.int64)
    rank = np.maximum(rank, 0)  # (complete genomes: unused)
    # the source: the last s with starts(s) <= rank, among each genome's 0 .. first_output - 1
    owner = np.repeat(np.arange(n), first_output)
    s = np.arange(owner.size) - np.repeat(np.cumsum(first_output) - first_output, first_output)
    keys = owner << 32 | starts(s, nodes[owner])
    at = np.searchsorted(keys, np.arange(n) << 32 | rank, side="right") - 1
    source = s[at]
    target = np.maximum(source + 1, NUM_INPUTS) + rank - (keys[at] & 0xFFFFFFFF)
    weight = WEIGHT_RANGE * (2.0 * u[:, 1] - 1.0)
    return [(a, b, c) if f > 0 else None
            for a, b, c, f in zip(source.tolist(), target.tolist(), weight.tolist(), free.tolist())]


def _edit(genome: Genome, changes: Sequence[bool], u: list[list[float]], max_hidden: int,
          added: Optional[tuple[int, int, float]]) -> tuple[list, ...]:
    """The structural changes of :func:`mutate_structure` on one genome, returned as lists
    (hidden, outputs, sources, targets, weights); ``added``: the connection add_connection made, if any
    (:func:`_added_connections`)."""
    net = Editable.of(genome)
    if added is not None:
        net.append(*added)
    if changes[1]:
        delete_connection(net, u[1])
    if changes[2]:
        rewire_connection(net, u[2])
    if changes[3]:
        add_node(net, u[3], max_hidden)
    if changes[4]:
        delete_node(net, u[4])
    return net.hidden, net.outputs, net.sources, net.targets, net.weights


def mutate_population(genomes: Sequence[Genome], rng: np.random.Generator, rates: MutationRates) -> list[Genome]:
    """Mutated children of ``genomes`` (one each; the parents are left untouched).

    The same children, from the same random numbers, as :func:`mutate_structure` on each genome
    followed by :func:`mutate_weights` and :func:`mutate_functions` on the population, but the
    structural edits' lists go into one array per field for the whole population (a few numpy
    calls, not five per child), weights and functions mutate in those arrays, and the children
    are views of them (never written; ``CPPNEncoding.pick`` copies), or the parent itself where
    nothing changed.
    """
    n = len(genomes)
    changes = rng.random((n, 5)) < rates.structural  # (N, 5) which changes each child gets
    uniforms = rng.random((n, 5, UNIFORMS_PER_CHANGE))
    if not n:
        return []
    adding = np.flatnonzero(changes[:, 0])
    added: list = [None] * n
    for i, new in zip(adding.tolist(), _added_connections([genomes[i] for i in adding], uniforms[adding, 0, :2])):
        added[i] = new
    edited = [_edit(g, c, u, rates.max_hidden, a) if any(c) else
              (g.hidden.tolist(), g.outputs.tolist(), g.sources.tolist(), g.targets.tolist(), g.weights.tolist())
              for g, c, u, a in zip(genomes, changes.tolist(), uniforms.tolist(), added)]
    chain = itertools.chain.from_iterable
    functions = np.array(list(chain(h + o for h, o, _, _, _ in edited)), dtype=np.int8)
    sources = np.array(list(chain(e[2] for e in edited)), dtype=np.int32)
    targets = np.array(list(chain(e[3] for e in edited)), dtype=np.int32)
    weights = np.array(list(chain(e[4] for e in edited)), dtype=np.float64)
    hidden = [len(e[0]) for e in edited]
    node_counts = [h + len(e[1]) for h, e in zip(hidden, edited)]
    edge_counts = [len(e[2]) for e in edited]
    touched = changes.any(axis=1)
    if weights.size:
        changed = _mutate_weight_array(weights, rng, rates.weight_rate, rates.weight_eta, rates.weight_variant)
        touched |= np.bincount(np.repeat(np.arange(n), edge_counts)[changed], minlength=n) > 0
    redraw = _mutate_function_array(functions, rng, rates.function_rate)
    touched |= np.bincount(np.repeat(np.arange(n), node_counts)[redraw], minlength=n) > 0
    children, f0, e0 = [], 0, 0
    for g, t, h, f1, e1 in zip(genomes, touched.tolist(), hidden, np.cumsum(node_counts).tolist(),
                               np.cumsum(edge_counts).tolist()):
        # a child that nothing changed is its parent (as with the single operators)
        children.append(Genome(functions[f0:f0 + h], functions[f0 + h:f1], sources[e0:e1], targets[e0:e1],
                               weights[e0:e1]) if t else g)
        f0, e0 = f1, e1
    return children
