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
the whole population's lists laid end to end (:func:`pack`, :class:`_Population`),
and hands back those arrays (:class:`Packed`) so drawing the children needs no
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
from .genome import NUM_INPUTS, WEIGHT_RANGE, Genome

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


def _pick_all(u: np.ndarray, count: np.ndarray) -> np.ndarray:
    """:func:`_pick` over arrays: uniform indices in [0, count) from ``u`` in [0, 1) (count ≥ 1 where used)."""
    return np.minimum((u * count).astype(np.int64), count - 1)


def _source_of_rank(rank: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The source of the rank-th valid pair (source-major, as :func:`add_connection` ranks them) of genomes with
    ``nodes`` nodes: the last s with starts(s) <= rank, solved in closed form (no per-source table).

    An input s < 4 starts at s·(n − 4); hidden node 4 + h at 4·(n − 4) + C(h), C(h) = h·(2n − 9 − h) / 2,
    increasing over the hidden nodes: h is the root of C(h) = r' rounded down, then corrected by one
    either way against C in integers (the float root is never off by more).
    """
    per_input = nodes - NUM_INPUTS
    inputs = NUM_INPUTS * per_input
    r = np.maximum(rank - inputs, 0)  # rank past the inputs' pairs
    b = 2 * nodes - 9
    h = np.floor((b - np.sqrt(np.maximum(b * b - 8 * r, 0).astype(np.float64))) / 2).astype(np.int64)

    def c(h: np.ndarray) -> np.ndarray:
        return h * (b - h) // 2

    h = h - 1 + (c(h) <= r) + (c(h + 1) <= r)
    return np.where(rank < inputs, rank // np.maximum(per_input, 1), NUM_INPUTS + h)


def _skip_taken(owner: np.ndarray, taken: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """(n,) ``rank`` made the rank-th value not among ``taken`` (each genome's distinct values, non-negative,
    ``owner`` its genome): rank + the number of sorted taken values T_j (j from 0) with T_j − j ≤ rank."""
    if not owner.size:
        return rank
    pairs = np.sort(owner << 32 | taken)  # by genome, then value
    owner, taken = pairs >> 32, pairs & 0xFFFFFFFF
    counts = np.bincount(owner, minlength=n)
    local = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank + np.bincount(owner, weights=taken - local <= rank[owner], minlength=n).astype(np.int64)


@dataclass
class _Population:
    """Every genome's lists laid end to end, for structural edits of the whole population in numpy.

    hidden: (N,) hidden node counts; functions: (Σ H + O,) int8, each genome's hidden then output functions;
    owner, sources, targets, weights: (E,) each connection's genome and fields, genome by genome in list order.
    """

    hidden: np.ndarray
    outputs: int
    functions: np.ndarray
    owner: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray

    _counted: Optional[np.ndarray] = None  # the owner array _counts and _firsts were computed from
    _counts: Optional[np.ndarray] = None
    _firsts: Optional[np.ndarray] = None

    @classmethod
    def of(cls, genomes: Sequence[Genome]) -> "_Population":
        p = pack(genomes)
        pop = cls(p.hidden, len(genomes[0].outputs), p.functions, np.repeat(np.arange(len(genomes)), p.edges),
                  p.sources, p.targets, p.weights)
        pop._counted, pop._counts = pop.owner, p.edges
        return pop

    @property
    def size(self) -> int:
        return len(self.hidden)

    def edge_counts(self) -> np.ndarray:
        """(N,) each genome's connections (cached until the connections are next kept or appended to)."""
        if self._counted is not self.owner:
            self._counted, self._counts, self._firsts = self.owner, np.bincount(self.owner, minlength=self.size), None
        return self._counts

    def edge_index(self, genomes: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Positions in the edge arrays of connection ``local`` of each of ``genomes``."""
        counts = self.edge_counts()
        if self._firsts is None:
            self._firsts = np.cumsum(counts) - counts
        return self._firsts[genomes] + local

    def keep_edges(self, keep: np.ndarray) -> None:
        self.owner, self.sources, self.targets, self.weights = (
            a[keep] for a in (self.owner, self.sources, self.targets, self.weights))

    def append_edges(self, owner: np.ndarray, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                     drop: Optional[np.ndarray] = None) -> None:
        """Connections appended to the end of their genomes' lists (``owner`` sorted; several per genome in order),
        after removing the connections at positions ``drop`` (distinct) if given.

        No sort: every connection's place in the new lists is computed (a kept one moves back by the new
        ones of earlier genomes and forward by the dropped ones before it; a new one follows its genome's
        kept ones) and the arrays are scattered there; dropped ones land past the end, cut off.
        """
        n, old, m = self.size, self.owner.size, owner.size
        counts = self.edge_counts()
        add = np.bincount(owner, minlength=n)
        position = np.arange(old) + (np.cumsum(add) - add)[self.owner]
        placed = np.cumsum(counts)[owner] + np.arange(m)
        kept = counts + add
        d = 0 if drop is None else drop.size
        if d:
            gone = np.zeros(old, dtype=np.int64)
            gone[drop] = 1
            position -= np.cumsum(gone) - gone
            dropped = np.bincount(self.owner[drop], minlength=n)
            placed -= np.cumsum(dropped)[owner]
            kept -= dropped
        length = old - d + m
        if d:
            position[drop] = length + np.arange(d)
        for name, new in (("sources", sources), ("targets", targets), ("weights", weights)):
            current = getattr(self, name)
            out = np.empty(length + d, dtype=current.dtype)
            out[position] = current
            out[placed] = new
            setattr(self, name, out[:length])
        self.owner = np.repeat(np.arange(n), kept)
        self._counted, self._counts, self._firsts = self.owner, kept, None

    def add_connections(self, mask: np.ndarray, u: np.ndarray) -> None:
        """:func:`add_connection` in the genomes of ``mask`` (N,), from (N, 2) ``u``.

        Free rank r becomes r plus the number of taken ranks T_i (sorted, i from 0) with T_i − i ≤ r
        (:func:`_skip_taken`); the source is the last s with starts(s) ≤ r.
        """
        n, hidden = self.size, self.hidden
        nodes = NUM_INPUTS + hidden + self.outputs
        first_output = NUM_INPUTS + hidden

        def starts(s: np.ndarray, nodes: np.ndarray) -> np.ndarray:
            """The rank of the first valid pair from source s (``starts`` of :func:`add_connection`)."""
            h = np.maximum(s - NUM_INPUTS, 0)
            return np.minimum(s, NUM_INPUTS) * (nodes - NUM_INPUTS) + h * (nodes - 1) - h * (s + NUM_INPUTS - 1) // 2

        free = starts(first_output, nodes) - self.edge_counts()
        g = np.flatnonzero(mask & (free > 0))
        if not g.size:
            return
        rank = np.zeros(n, dtype=np.int64)
        rank[g] = _pick_all(u[g, 0], free[g])
        adding = np.zeros(n, dtype=bool)
        adding[g] = True
        e = adding[self.owner]
        owner, s, t = self.owner[e], self.sources[e], self.targets[e]
        rank = _skip_taken(owner, starts(s, nodes[owner]) + t - np.maximum(s + 1, NUM_INPUTS), rank, n)[g]
        source = _source_of_rank(rank, nodes[g])
        target = np.maximum(source + 1, NUM_INPUTS) + rank - starts(source, nodes[g])
        self.append_edges(g, source, target, WEIGHT_RANGE * (2.0 * u[g, 1] - 1.0))

    def delete_connections(self, mask: np.ndarray, u: np.ndarray) -> None:
        """:func:`delete_connection` in the genomes of ``mask`` (N,), from (N,) ``u``."""
        counts = self.edge_counts()
        g = np.flatnonzero(mask & (counts > 0))
        if g.size:
            keep = np.ones(self.owner.size, dtype=bool)
            keep[self.edge_index(g, _pick_all(u[g], counts[g]))] = False
            self.keep_edges(keep)

    def rewire_connections(self, mask: np.ndarray, u: np.ndarray) -> None:
        """:func:`rewire_connection` in the genomes of ``mask``, from (N, 3) ``u``."""
        n, counts = self.size, self.edge_counts()
        g = np.flatnonzero(mask & (counts > 0))
        if not g.size:
            return
        at = self.edge_index(g, _pick_all(u[g, 0], counts[g]))
        source, target = self.sources[at], self.targets[at]
        new_target = u[g, 1] < 0.5
        first_output = NUM_INPUTS + self.hidden[g]
        low = np.where(new_target, np.maximum(source + 1, NUM_INPUTS), 0)  # the range of the new end
        high = np.where(new_target, first_output + self.outputs, np.minimum(target, first_output))
        # the ends taken: targets of connections from the same source, or sources into the same target
        end = np.full(n, -1, dtype=np.int64)
        along = np.zeros(n, dtype=bool)
        end[g] = np.where(new_target, source, target)
        along[g] = new_target
        own = self.owner
        match = np.where(along[own], self.sources, self.targets) == end[own]
        value = np.where(along[own], self.targets, self.sources)[match]
        taken_owner = own[match]
        start = np.zeros(n, dtype=np.int64)
        start[g] = low
        options = high - low - np.bincount(taken_owner, minlength=n)[g]
        rank = np.zeros(n, dtype=np.int64)
        rank[g] = _pick_all(u[g, 2], np.maximum(options, 1))
        chosen = (start + _skip_taken(taken_owner, value - start[taken_owner], rank, n))[g]
        ok = options > 0
        t_at, s_at = at[ok & new_target], at[ok & ~new_target]
        self.targets[t_at] = chosen[ok & new_target]
        self.sources[s_at] = chosen[ok & ~new_target]

    def add_nodes(self, mask: np.ndarray, u: np.ndarray, max_hidden: int) -> None:
        """:func:`add_node` in the genomes of ``mask``, from (N, 3) ``u``."""
        counts = self.edge_counts()
        g = np.flatnonzero(mask & (counts > 0) & (self.hidden < max_hidden))
        if not g.size:
            return
        at = self.edge_index(g, _pick_all(u[g, 0], counts[g]))
        source, target, weight = self.sources[at], self.targets[at], self.weights[at]
        lowest, highest = np.maximum(source + 1, NUM_INPUTS), np.minimum(target, NUM_INPUTS + self.hidden[g])
        node = lowest + _pick_all(u[g, 1], highest - lowest + 1)
        split = np.full(self.size, np.iinfo(np.int64).max)
        split[g] = node
        limit = split[self.owner]
        self.sources += self.sources >= limit  # (the split connections too: dropped below)
        self.targets += self.targets >= limit
        self.append_edges(np.repeat(g, 2), np.stack([source, node], 1).reshape(-1),
                          np.stack([node, target + 1], 1).reshape(-1),
                          np.stack([np.ones_like(weight), weight], 1).reshape(-1), drop=at)
        # the new hidden function goes in at position node − 4 of its genome's functions
        sizes = self.hidden + self.outputs
        added = np.zeros(self.size, dtype=np.int64)
        added[g] = 1
        new_first = np.cumsum(sizes + added) - sizes - added
        f_owner = np.repeat(np.arange(self.size), sizes)
        local = np.arange(f_owner.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        functions = np.empty(f_owner.size + g.size, dtype=np.int8)
        functions[new_first[f_owner] + local + (local >= split[f_owner] - NUM_INPUTS)] = self.functions
        functions[new_first[g] + node - NUM_INPUTS] = _pick_all(u[g, 2], NUM_FUNCTIONS)
        self.functions = functions
        self.hidden = self.hidden + added

    def delete_nodes(self, mask: np.ndarray, u: np.ndarray) -> None:
        """:func:`delete_node` in the genomes of ``mask``, from (N,) ``u``."""
        g = np.flatnonzero(mask & (self.hidden > 0))
        if not g.size:
            return
        node = np.full(self.size, np.iinfo(np.int64).max)
        node[g] = NUM_INPUTS + _pick_all(u[g], self.hidden[g])
        gone = node[self.owner]
        self.keep_edges((self.sources != gone) & (self.targets != gone))
        gone = node[self.owner]
        self.sources -= self.sources > gone
        self.targets -= self.targets > gone
        sizes = self.hidden + self.outputs
        f_owner = np.repeat(np.arange(self.size), sizes)
        local = np.arange(f_owner.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        self.functions = self.functions[local != node[f_owner] - NUM_INPUTS]
        self.hidden = self.hidden - (node < np.iinfo(np.int64).max)


def mutate_population(genomes: Sequence[Genome], rng: np.random.Generator, rates: MutationRates) -> list[Genome]:
    """Mutated children of ``genomes``: :func:`mutate_population_packed` without the pack."""
    return mutate_population_packed(genomes, rng, rates)[0]


def mutate_population_packed(genomes: Sequence[Genome], rng: np.random.Generator,
                             rates: MutationRates) -> tuple[list[Genome], Optional[Packed]]:
    """Mutated children of ``genomes`` (one each; the parents are left untouched).

    The same children, from the same random numbers, as :func:`mutate_structure` on each genome
    followed by :func:`mutate_weights` and :func:`mutate_functions` on the population, but every
    structural change runs for the whole population at once on its lists laid end to end
    (:class:`_Population`: a few numpy calls per kind of change, no Python per child), weights and
    functions mutate in those arrays, and the children are views of them (never written;
    ``CPPNEncoding.pick`` copies), or the parent itself where nothing changed. The children's
    :class:`Packed` arrays come with them (None for no genome), so drawing them needs no concatenation.
    """
    n = len(genomes)
    changes = rng.random((n, 5)) < rates.structural  # (N, 5) which changes each child gets
    uniforms = rng.random((n, 5, UNIFORMS_PER_CHANGE))
    if not n:
        return [], None
    pop = _Population.of(genomes)
    pop.add_connections(changes[:, 0], uniforms[:, 0, :2])
    pop.delete_connections(changes[:, 1], uniforms[:, 1, 0])
    pop.rewire_connections(changes[:, 2], uniforms[:, 2])
    pop.add_nodes(changes[:, 3], uniforms[:, 3], rates.max_hidden)
    pop.delete_nodes(changes[:, 4], uniforms[:, 4, 0])
    functions, weights = pop.functions, pop.weights
    sources, targets = pop.sources.astype(np.int32), pop.targets.astype(np.int32)
    edge_counts = pop.edge_counts()
    node_counts = pop.hidden + pop.outputs
    touched = changes.any(axis=1)
    if weights.size:
        changed = _mutate_weight_array(weights, rng, rates.weight_rate, rates.weight_eta, rates.weight_variant)
        touched |= np.bincount(pop.owner[changed], minlength=n) > 0
    redraw = _mutate_function_array(functions, rng, rates.function_rate)
    touched |= np.bincount(np.repeat(np.arange(n), node_counts)[redraw], minlength=n) > 0
    children, f0, e0 = [], 0, 0
    for g, t, h, f1, e1 in zip(genomes, touched.tolist(), pop.hidden.tolist(), np.cumsum(node_counts).tolist(),
                               np.cumsum(edge_counts).tolist()):
        # a child that nothing changed is its parent (as with the single operators)
        children.append(Genome(functions[f0:f0 + h], functions[f0 + h:f1], sources[e0:e1], targets[e0:e1],
                               weights[e0:e1]) if t else g)
        f0, e0 = f1, e1
    return children, Packed(pop.hidden, functions, pop.sources, pop.targets, weights, edge_counts)
