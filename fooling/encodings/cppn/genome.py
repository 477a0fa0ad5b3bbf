"""A CPPN genome: a feed-forward network of function nodes with weighted connections.

Nodes are numbered in one topological order, which every genome keeps:

- 0..3: the inputs x, y, d (distance from the centre) and the bias 1,
- 4..4+H−1: the H hidden nodes, in evaluation order,
- 4+H..4+H+O−1: the O outputs (1 for grey, 3 for colour).

A connection always runs from a lower to a higher number, never out of an output
and never into an input, so every genome is acyclic by construction. A node
without incoming connections sees 0 (and outputs its function of 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .functions import NUM_FUNCTIONS

INPUT_NAMES: tuple[str, ...] = ("x", "y", "d", "bias")
NUM_INPUTS = len(INPUT_NAMES)
WEIGHT_RANGE = 10.0  # weights live in [-WEIGHT_RANGE, WEIGHT_RANGE]


@dataclass(eq=False)
class Genome:
    """One CPPN. Arrays are never modified in place: mutation builds new genomes.

    hidden: (H,) int8 function id of each hidden node, in evaluation order.
    outputs: (O,) int8 function id of each output node.
    sources, targets: (E,) int32 node numbers of each connection (sources < targets).
    weights: (E,) float64 in [-WEIGHT_RANGE, WEIGHT_RANGE].
    """

    hidden: np.ndarray
    outputs: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray

    @property
    def num_hidden(self) -> int:
        return len(self.hidden)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    @property
    def num_connections(self) -> int:
        return len(self.weights)

    @property
    def num_nodes(self) -> int:
        """Inputs + hidden + outputs."""
        return NUM_INPUTS + len(self.hidden) + len(self.outputs)

    @property
    def functions(self) -> np.ndarray:
        """(H + O,) int8 function ids of nodes 4, 5, … (hidden then outputs)."""
        return np.concatenate([self.hidden, self.outputs])

    def copy(self) -> "Genome":
        return Genome(self.hidden.copy(), self.outputs.copy(), self.sources.copy(), self.targets.copy(),
                      self.weights.copy())

    def same_as(self, other: "Genome") -> bool:
        """Exactly the same network (same arrays, same connection order)."""
        return all(
            a.dtype == b.dtype and np.array_equal(a, b)
            for a, b in zip(
                (self.hidden, self.outputs, self.sources, self.targets, self.weights),
                (other.hidden, other.outputs, other.sources, other.targets, other.weights),
            )
        )


def _cut(array: int, start: int, stop: int) -> property:
    """A :class:`PackedGenome` array: ``_packed[array][_packed[start]:_packed[stop]]``, sliced when read."""
    return property(lambda self: self._packed[array][self._packed[start]:self._packed[stop]])


class PackedGenome(Genome):
    """A :class:`Genome` whose arrays are slices of a population's arrays laid end to end (a child of
    :func:`~.mutation.mutate_population_packed`), cut when read: a generation makes hundreds of children, and
    only the few the archive or a lineage keeps are ever read one by one (the batch is drawn from the packed
    arrays). Read only, like every genome; copies and pickles are plain :class:`Genome` objects.

    functions (F,) int8, sources, targets (E,) int32, weights (E,) float64: the population's arrays; this
    genome's nodes are functions[f0:f1] (its first ``hidden`` hidden), its connections [e0:e1).
    """

    def __init__(self, functions: np.ndarray, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                 f0: int, hidden: int, f1: int, e0: int, e1: int) -> None:  # no Genome.__init__: nothing to set
        self._packed = (functions, sources, targets, weights, f0, f0 + hidden, f1, e0, e1)

    hidden = _cut(0, 4, 5)  # type: ignore[assignment]
    outputs = _cut(0, 5, 6)  # type: ignore[assignment]
    sources = _cut(1, 7, 8)  # type: ignore[assignment]
    targets = _cut(2, 7, 8)  # type: ignore[assignment]
    weights = _cut(3, 7, 8)  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        """Pickled as a plain :class:`Genome` of its own slices (never the population's arrays)."""
        return Genome, (self.hidden, self.outputs, self.sources, self.targets, self.weights)


def make_genome(
    hidden: np.ndarray, outputs: np.ndarray, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray
) -> Genome:
    """A genome from array-likes, cast to the canonical dtypes (copies)."""
    return Genome(
        np.array(hidden, dtype=np.int8).reshape(-1), np.array(outputs, dtype=np.int8).reshape(-1),
        np.array(sources, dtype=np.int32).reshape(-1), np.array(targets, dtype=np.int32).reshape(-1),
        np.array(weights, dtype=np.float64).reshape(-1),
    )


def initial_genome(num_outputs: int, rng: np.random.Generator) -> Genome:
    """Every input wired to every output, no hidden node, uniform random weights and output functions."""
    sources = np.tile(np.arange(NUM_INPUTS, dtype=np.int32), num_outputs)
    targets = np.repeat(np.arange(NUM_INPUTS, NUM_INPUTS + num_outputs, dtype=np.int32), NUM_INPUTS)
    weights = rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE, size=len(sources))
    outputs = rng.integers(0, NUM_FUNCTIONS, size=num_outputs).astype(np.int8)
    return Genome(np.zeros(0, dtype=np.int8), outputs, sources, targets, weights)


def check_genome(genome: Genome, num_outputs: Optional[int] = None, max_hidden: Optional[int] = None) -> None:
    """Raise ValueError unless ``genome`` is a well-formed acyclic CPPN."""
    g = genome
    if g.hidden.dtype != np.int8 or g.outputs.dtype != np.int8 or g.sources.dtype != np.int32 \
            or g.targets.dtype != np.int32 or g.weights.dtype != np.float64:
        raise ValueError("CPPN genome arrays have the wrong dtypes")
    if not (g.hidden.ndim == g.outputs.ndim == g.sources.ndim == g.targets.ndim == g.weights.ndim == 1):
        raise ValueError("CPPN genome arrays must be one-dimensional")
    if not len(g.sources) == len(g.targets) == len(g.weights):
        raise ValueError("CPPN connection arrays differ in length")
    if num_outputs is not None and g.num_outputs != num_outputs:
        raise ValueError(f"CPPN has {g.num_outputs} outputs, expected {num_outputs}")
    if g.num_outputs < 1:
        raise ValueError("CPPN has no output")
    if max_hidden is not None and g.num_hidden > max_hidden:
        raise ValueError(f"CPPN has {g.num_hidden} hidden nodes, more than the cap {max_hidden}")
    functions = g.functions
    if functions.size and (functions.min() < 0 or functions.max() >= NUM_FUNCTIONS):
        raise ValueError("CPPN has an unknown node function id")
    first_output = NUM_INPUTS + g.num_hidden
    if g.num_connections:
        if g.sources.min() < 0 or g.sources.max() >= first_output:
            raise ValueError("CPPN connection starts outside the inputs and hidden nodes")
        if g.targets.min() < NUM_INPUTS or g.targets.max() >= g.num_nodes:
            raise ValueError("CPPN connection ends outside the hidden and output nodes")
        if np.any(g.sources >= g.targets):
            raise ValueError("CPPN connection runs backwards (the network must be feed-forward)")
        pairs = g.sources.astype(np.int64) * g.num_nodes + g.targets
        if len(np.unique(pairs)) != len(pairs):
            raise ValueError("CPPN has a duplicate connection")
    if not np.all(np.abs(g.weights) <= WEIGHT_RANGE):
        raise ValueError(f"CPPN weight outside [-{WEIGHT_RANGE:g}, {WEIGHT_RANGE:g}] (or not finite)")
