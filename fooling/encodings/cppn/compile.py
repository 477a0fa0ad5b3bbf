"""Compiling a population of differing CPPNs into one layered graph (:class:`Program`).

The population's networks are merged into one big feed-forward graph whose node
values live in a single tensor V of shape (rows, pixels): rows 0..3 are the shared
inputs (x, y, d, bias), every other row is one node of one genome (nodes with no
path to an output, frequent after deletions and rewiring, are dropped). Rows are sorted
by depth (longest path from an input), then by function, so each depth is a
contiguous block of rows and each function a contiguous slice of that block
(:mod:`.execute` runs it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .functions import INPUT_SCALE, NUM_FUNCTIONS
from .genome import NUM_INPUTS, Genome


@dataclass
class Layer:
    """One depth of the merged graph: rows [start, start + R) computed from earlier rows.

    sources: (E,) int64 rows feeding the layer's nodes, node by node (each node's "bag").
    offsets: (R,) int64 where each node's sources begin in ``sources``.
    weights: (E,) float64 the connection weights, aligned with ``sources``, times the
    target's ``INPUT_SCALE`` (see :mod:`.functions`).
    groups: (function, begin, end) row slices inside the layer, one per function present.
    edges: (E,) int64 where each weight comes from: its position in the population's
    weights laid end to end (genome 0's connections, then genome 1's, ...).
    scales: (E,) float64 the ``INPUT_SCALE`` factor folded into each of ``weights``.
    """

    start: int
    sources: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray
    groups: list[tuple[int, int, int]]
    edges: np.ndarray
    scales: np.ndarray


@dataclass
class Program:
    """A population compiled for drawing. outputs: (N, O) int64 rows of each genome's outputs."""

    rows: int
    layers: list[Layer]
    outputs: np.ndarray


def _depths(num_nodes: int, sources: np.ndarray, targets: np.ndarray) -> list[int]:
    """Longest-path depth of every node (inputs 0, other nodes at least 1) of a graph numbered in topological order.

    One pass over the edges sorted by target: every edge into a node's source has a
    lower target, so the source's depth is final when the edge is reached.
    """
    depth = [0] * NUM_INPUTS + [1] * (num_nodes - NUM_INPUTS)
    order = np.argsort(targets, kind="stable")
    for source, target in zip(sources[order].tolist(), targets[order].tolist()):
        if depth[source] >= depth[target]:
            depth[target] = depth[source] + 1
    return depth


def _reaching(num_nodes: int, sources: np.ndarray, targets: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(num_nodes,) bool: the nodes with a path to one of ``ends`` (ends included), same numbering as :func:`_depths`.

    One pass over the edges by decreasing source: a target's answer is final before
    any edge into it is reached.
    """
    reach = [False] * num_nodes
    for end in ends.tolist():
        reach[end] = True
    order = np.argsort(-sources, kind="stable")
    for source, target in zip(sources[order].tolist(), targets[order].tolist()):
        if reach[target]:
            reach[source] = True
    return np.array(reach, dtype=bool)


def compile_population(genomes: Sequence[Genome]) -> Program:
    """Merge ``genomes`` (all with the same number of outputs) into one layered :class:`Program`.

    Nodes without a path to an output (common after deletions and rewiring) are left out.
    """
    num_outputs = {len(g.outputs) for g in genomes}
    if len(num_outputs) > 1:
        raise ValueError(f"CPPNs in one batch must have the same number of outputs, got {sorted(num_outputs)}")
    hidden = np.array([len(g.hidden) for g in genomes], dtype=np.int64)
    counts = hidden + len(genomes[0].outputs)  # non-input nodes of each genome
    first_node = np.cumsum(counts) - counts  # each genome's node 4 in the merged numbering, minus 4
    edges = np.array([len(g.weights) for g in genomes], dtype=np.int64)
    functions = np.concatenate([a for g in genomes for a in (g.hidden, g.outputs)]).astype(np.int64)
    # merged node ids: 0..3 the shared inputs, then every genome's nodes 4.. shifted by its offset
    shift = np.repeat(first_node, edges)
    sources = np.concatenate([g.sources for g in genomes]).astype(np.int64)
    targets = np.concatenate([g.targets for g in genomes]).astype(np.int64) + shift
    sources += shift * (sources >= NUM_INPUTS)
    scales = np.asarray(INPUT_SCALE)[functions[targets - NUM_INPUTS]]
    weights = np.concatenate([g.weights for g in genomes]) * scales
    edge_ids = np.arange(len(weights), dtype=np.int64)
    num_nodes = NUM_INPUTS + int(counts.sum())
    output_ids = NUM_INPUTS + (first_node + hidden)[:, None] + np.arange(len(genomes[0].outputs))  # (N, O)

    live = _reaching(num_nodes, sources, targets, output_ids.reshape(-1))
    used = live[targets]  # an edge into a live node comes from a live node
    sources, targets, weights, edge_ids, scales = (a[used] for a in (sources, targets, weights, edge_ids, scales))
    nodes = NUM_INPUTS + np.flatnonzero(live[NUM_INPUTS:])  # the live non-input nodes
    depth = np.array(_depths(num_nodes, sources, targets), dtype=np.int64)[nodes]
    functions = functions[nodes - NUM_INPUTS]
    order = np.lexsort((functions, depth))  # stable: genome order breaks ties
    row = np.arange(num_nodes, dtype=np.int64)  # inputs keep rows 0..3
    row[nodes[order]] = NUM_INPUTS + np.arange(order.size)
    depth, functions = depth[order], functions[order]

    source_rows, target_rows = row[sources], row[targets]
    by_target = np.argsort(target_rows, kind="stable")
    source_rows, target_rows, weights, edge_ids, scales = (
        a[by_target] for a in (source_rows, target_rows, weights, edge_ids, scales))

    layers = []
    bounds = np.searchsorted(depth, np.arange(1, int(depth.max(initial=0)) + 2))
    for begin, end in zip(bounds[:-1], bounds[1:]):
        start, stop = NUM_INPUTS + int(begin), NUM_INPUTS + int(end)
        e0, e1 = np.searchsorted(target_rows, [start, stop])
        offsets = np.searchsorted(target_rows[e0:e1], np.arange(start, stop))
        f_bounds = np.searchsorted(functions[begin:end], np.arange(NUM_FUNCTIONS + 1))
        groups = [(f, int(a), int(b)) for f, a, b in zip(range(NUM_FUNCTIONS), f_bounds[:-1], f_bounds[1:]) if b > a]
        layers.append(Layer(start, source_rows[e0:e1], offsets, weights[e0:e1], groups, edge_ids[e0:e1],
                            scales[e0:e1]))

    return Program(NUM_INPUTS + nodes.size, layers, row[output_ids])
