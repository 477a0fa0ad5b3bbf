"""CPPN mutation: structural changes per genome, weights and functions over the whole population.

Each child undergoes, in this order and each with its own probability: add a
connection, delete a connection, rewire a connection, add a node (splitting a
connection), delete a node. Then every weight in the population mutates by
polynomial mutation (vectorised over all genomes at once) and every node's
function is redrawn with a small probability.

Randomness: :func:`mutate_population` draws everything for the whole population
from the numpy Generator in a few vectorised calls (which changes happen, and
three uniforms per change), so a seed fixes the result and no per-child
Generator call is paid. The single structural operators edit small Python lists
(:class:`Editable`); each takes its uniforms ``u`` in [0, 1) and keeps the invariants of
:mod:`.genome` (feed-forward, no duplicate connection, weights in range, at most
``max_hidden`` hidden nodes). :func:`mutate_population` gives the same children from
the whole population's lists laid end to end (:func:`pack`) in one compiled loop
(:mod:`.kernels`), and hands back those arrays (:class:`Packed`) so drawing the children needs no
concatenation. Children may share (never written) arrays with their parents and the
pack; ``CPPNEncoding.pick`` copies.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..operators import polynomial_mutation
from .functions import NUM_FUNCTIONS
from .genome import NUM_INPUTS, WEIGHT_RANGE, Genome, PackedGenome

UNIFORMS_PER_CHANGE = 3


@dataclass(frozen=True)
class Packed:
    """A list of genomes laid end to end (what :func:`~.compile.compile_population` would concatenate).

    hidden: (N,) int64 hidden node counts; functions: (Σ H + O,) int8, each genome's hidden then output
    functions; sources, targets: (E,) int64; weights: (E,) float64; edges: (N,) int64 connection counts.
    Never written: the genomes it describes are views of it (or equal to their slices).
    """

    hidden: np.ndarray
    functions: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    edges: np.ndarray

    @classmethod
    def join(cls, parts: Sequence["Packed"]) -> "Packed":
        """The packs of consecutive lists, as one."""
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("hidden", "functions", "sources", "targets", "weights", "edges")))


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


def pack(genomes: Sequence[Genome]) -> Packed:
    """``genomes`` (at least one) laid end to end, in new arrays.

    Parents drawn from an archive repeat (MNIST: 200 parents from 10 cells): each distinct genome's
    arrays are concatenated once and gathered from there when fewer than half are distinct.
    """
    n = len(genomes)
    seen: dict[int, int] = {}
    index = [seen.setdefault(id(g), len(seen)) for g in genomes]
    if 2 * len(seen) > n:
        return _pack_each(genomes)
    distinct = list({id(g): g for g in genomes}.values())  # first occurrences, in the order of ``seen``
    u = _pack_each(distinct)
    which = np.array(index, dtype=np.int64)
    nodes = u.hidden + len(distinct[0].outputs)
    return Packed(u.hidden[which], u.functions[_runs(np.cumsum(nodes) - nodes, nodes, which)],
                  *(a[at] for at in [_runs(np.cumsum(u.edges) - u.edges, u.edges, which)]
                    for a in (u.sources, u.targets, u.weights)), u.edges[which])


def _runs(starts: np.ndarray, lengths: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Positions of the runs [starts[i], starts[i] + lengths[i]) for i in ``which``, laid end to end."""
    counts = lengths[which]
    return np.repeat(starts[which] - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))


def _pack_each(genomes: Sequence[Genome]) -> Packed:
    """:func:`pack` by concatenating every genome's arrays."""
    n = len(genomes)
    hidden, weights = [g.hidden for g in genomes], [g.weights for g in genomes]
    functions: list[np.ndarray] = [None] * (2 * n)  # type: ignore[list-item]  # hidden, outputs, hidden, ...
    functions[::2], functions[1::2] = hidden, [g.outputs for g in genomes]
    return Packed(np.fromiter(map(len, hidden), np.int64, n), np.concatenate(functions).astype(np.int8, copy=False),
                  np.concatenate([g.sources for g in genomes]).astype(np.int64),
                  np.concatenate([g.targets for g in genomes]).astype(np.int64),
                  np.concatenate(weights).astype(np.float64, copy=False), np.fromiter(map(len, weights), np.int64, n))


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


def mutate_population(genomes: Sequence[Genome], rng: np.random.Generator, rates: MutationRates) -> list[Genome]:
    """Mutated children of ``genomes``: :func:`mutate_population_packed` without the pack."""
    return mutate_population_packed(genomes, rng, rates)[0]


def mutate_population_packed(genomes: Sequence[Genome], rng: np.random.Generator,
                             rates: MutationRates) -> tuple[list[Genome], Optional[Packed]]:
    """Mutated children of ``genomes`` (one each; the parents are left untouched).

    The same children, from the same random numbers, as :func:`mutate_structure` on each genome
    followed by :func:`mutate_weights` and :func:`mutate_functions` on the population, but the
    structural changes run over the population's lists laid end to end in one compiled loop
    (:func:`~.kernels.mutate_structure_packed`), weights and functions mutate in its new arrays, and
    the children are views of them (never written; ``CPPNEncoding.pick`` copies), or the parent itself
    where nothing changed. The children's :class:`Packed` arrays come with them (None for no genome),
    so drawing them needs no concatenation.
    """
    n = len(genomes)
    changes = rng.random((n, 5)) < rates.structural  # (N, 5) which changes each child gets
    uniforms = rng.random((n, 5, UNIFORMS_PER_CHANGE))
    if not n:
        return [], None
    from .kernels import mutate_structure_packed  # numba loads on first use: direct runs never pay for it

    p = pack(genomes)
    hidden, functions, sources, targets, weights, edge_counts = mutate_structure_packed(
        p.hidden, len(genomes[0].outputs), p.functions, p.sources, p.targets, p.weights, p.edges, changes, uniforms,
        rates.max_hidden)
    node_counts = hidden + len(genomes[0].outputs)
    narrow_s, narrow_t = sources.astype(np.int32), targets.astype(np.int32)  # a Genome's dtype
    touched = changes.any(axis=1)
    if weights.size:
        changed = _mutate_weight_array(weights, rng, rates.weight_rate, rates.weight_eta, rates.weight_variant)
        touched |= np.bincount(np.repeat(np.arange(n), edge_counts)[changed], minlength=n) > 0
    redraw = _mutate_function_array(functions, rng, rates.function_rate)
    touched |= np.bincount(np.repeat(np.arange(n), node_counts)[redraw], minlength=n) > 0
    children, f0, e0 = [], 0, 0
    for g, t, h, f1, e1 in zip(genomes, touched.tolist(), hidden.tolist(), np.cumsum(node_counts).tolist(),
                               np.cumsum(edge_counts).tolist()):
        # a child that nothing changed is its parent (as with the single operators); the others' arrays are cut
        # from the population's only when read (most never are)
        children.append(PackedGenome(functions, narrow_s, narrow_t, weights, f0, h, f1, e0, e1) if t else g)
        f0, e0 = f1, e1
    return children, Packed(hidden, functions, sources, targets, weights, edge_counts)
