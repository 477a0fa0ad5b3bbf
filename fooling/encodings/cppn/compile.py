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
from typing import Optional, Sequence

import numpy as np
import torch

from .functions import INPUT_SCALE, NUM_FUNCTIONS
from .genome import NUM_INPUTS, Genome
from .mutation import Packed, pack
from .sorting import stable_argsort


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
    edge_begin, edge_end: where the layer's connections lie in the program's ``table``
    (its ``sources``, ``weights``, ``edges`` and ``scales`` are views of whole-program arrays).
    """

    start: int
    sources: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray
    groups: list[tuple[int, int, int]]
    edges: np.ndarray
    scales: np.ndarray
    edge_begin: int = 0
    edge_end: int = 0


@dataclass
class Program:
    """A population compiled for drawing. outputs: (N, O) int64 rows of each genome's outputs.

    table: (2·E + R + N·O,) int64, the whole program in one array for one host→device copy:
    every layer's sources (E, layer after layer), then every node's offset into its layer's
    sources (R = rows − 4), then the output rows (N·O), then the E weights as float64 bits
    (see :func:`program_tensors`).
    """

    rows: int
    layers: list[Layer]
    outputs: np.ndarray
    table: Optional[np.ndarray] = None


# Above these numbers of connections (depths, reaching) the level-by-level walks, which touch each connection once,
# beat the all-connection rounds (measured on 2 CPU cores with graphs 8-16 deep: MNIST populations of 200 have
# about 3,000 connections, colour ones of 400 after 150 generations about 20,000).
BELLMAN_FORD_EDGES = (3072, 5120)


def _run_starts(ids: np.ndarray, num_nodes: int) -> np.ndarray:
    """(num_nodes + 1,) where each node's run begins in the sorted ``ids`` (``np.searchsorted`` of 0..num_nodes)."""
    first = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(ids, minlength=num_nodes), out=first[1:])
    return first


def _gather(first: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Positions of the CSR runs [first[v], first[v + 1]) of ``nodes``, laid end to end."""
    begin, end = first[nodes], first[nodes + 1]
    counts = end - begin
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(begin - (np.cumsum(counts) - counts), counts) + np.arange(total)


def _distinct(values: np.ndarray, stamp: np.ndarray) -> np.ndarray:
    """``values`` (node ids) without repeats (in no set order), in O(len) with the scratch ``stamp`` (num_nodes,)."""
    where = np.arange(values.size)
    stamp[values] = where  # one write per value lands (which one numpy does not say): that occurrence is kept
    return values[stamp[values] == where]


def _depths_by_level(num_nodes: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:func:`_depths` for large graphs: each connection touched once.

    Level by level, vectorised: a node's depth is final once all its incoming connections
    have been seen; the connections out of the nodes finalised in one round are relaxed
    together (``np.maximum.at``), so each connection is touched once and the rounds number
    the graph's depth; a round's work is its connections', never the node count's.
    """
    depth = np.ones(num_nodes, dtype=np.int64)
    depth[:NUM_INPUTS] = 0
    if not len(sources):
        return depth
    order = stable_argsort(sources)
    by_source, to = sources[order], targets[order]
    first = _run_starts(by_source, num_nodes)
    waiting = np.bincount(targets, minlength=num_nodes)  # incoming connections not yet relaxed
    stamp = np.empty(num_nodes, dtype=np.int64)
    frontier = np.flatnonzero(waiting == 0)
    while frontier.size:
        at = _gather(first, frontier)
        if not at.size:
            break
        s, t = by_source[at], to[at]
        np.maximum.at(depth, t, depth[s] + 1)
        np.subtract.at(waiting, t, 1)
        frontier = _distinct(t[waiting[t] == 0], stamp)
    return depth


def _reaching_by_level(num_nodes: int, sources: np.ndarray, targets: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """:func:`_reaching` for large graphs: each connection touched once.

    Breadth first from ``ends`` against the connections, one vectorised step per depth, each
    step's work its connections'.
    """
    reach = np.zeros(num_nodes, dtype=bool)
    frontier = np.unique(ends)
    reach[frontier] = True
    if not len(sources):
        return reach
    order = stable_argsort(targets)
    by_target, frm = targets[order], sources[order]
    first = _run_starts(by_target, num_nodes)
    stamp = np.empty(num_nodes, dtype=np.int64)
    while frontier.size:
        s = frm[_gather(first, frontier)]
        frontier = _distinct(s[~reach[s]], stamp)
        reach[frontier] = True
    return reach


def _depths(num_nodes: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(num_nodes,) int64 longest-path depth of every node (inputs 0, other nodes at least 1) of a DAG.

    Vectorised Bellman-Ford: the connections, sorted by target once, are relaxed all together
    (``np.maximum.reduceat`` over each target's run) until nothing changes, so the rounds number
    the graph's depth + 1 and each costs a few numpy calls over all connections: fewer calls than
    :func:`_depths_by_level`, more work per connection, so that one takes the large graphs.
    """
    if len(sources) > BELLMAN_FORD_EDGES[0]:
        return _depths_by_level(num_nodes, sources, targets)
    depth = np.ones(num_nodes, dtype=np.int64)
    depth[:NUM_INPUTS] = 0
    if not len(sources):
        return depth
    order = stable_argsort(targets)
    frm, to = sources[order], targets[order]
    runs = np.flatnonzero(np.concatenate([[True], to[1:] != to[:-1]]))  # each target's first connection
    ends = to[runs]
    current = depth[ends]
    while True:
        relaxed = np.maximum.reduceat(depth[frm], runs) + 1
        if np.array_equal(relaxed, current):
            return depth
        depth[ends] = current = relaxed


def _reaching(num_nodes: int, sources: np.ndarray, targets: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(num_nodes,) bool: the nodes with a path to one of ``ends`` (ends included), same numbering as :func:`_depths`.

    Every connection into a reached node marks its source, all connections at once, until no
    node is added (the rounds number the longest path to an end + 1); large graphs go to
    :func:`_reaching_by_level` (see :func:`_depths`).
    """
    if len(sources) > BELLMAN_FORD_EDGES[1]:
        return _reaching_by_level(num_nodes, sources, targets, ends)
    reach = np.zeros(num_nodes, dtype=bool)
    reach[ends] = True
    if not len(sources):
        return reach
    count = np.count_nonzero(reach)
    while True:
        reach[sources[reach[targets]]] = True
        now = np.count_nonzero(reach)
        if now == count:
            return reach
        count = now


def compile_population(genomes: Sequence[Genome], packed: Optional[Packed] = None) -> Program:
    """Merge ``genomes`` (all with the same number of outputs) into one layered :class:`Program`.

    Nodes without a path to an output (common after deletions and rewiring) are left out.
    packed: ``genomes`` already laid end to end (from :func:`~.mutation.mutate_population_packed`),
    read instead of concatenating every genome's arrays; the same program either way.
    """
    if packed is None:
        num_outputs = {len(g.outputs) for g in genomes}
        if len(num_outputs) > 1:
            raise ValueError(f"CPPNs in one batch must have the same number of outputs, got {sorted(num_outputs)}")
        packed = pack(genomes)
    hidden, edges = packed.hidden, packed.edges
    counts = hidden + len(genomes[0].outputs)  # non-input nodes of each genome
    first_node = np.cumsum(counts) - counts  # each genome's node 4 in the merged numbering, minus 4
    functions = packed.functions.astype(np.int64)
    # merged node ids: 0..3 the shared inputs, then every genome's nodes 4.. shifted by its offset
    shift = np.repeat(first_node, edges)
    sources = packed.sources.astype(np.int64)  # a copy: written below
    targets = packed.targets.astype(np.int64) + shift
    sources += shift * (sources >= NUM_INPUTS)
    scales = np.asarray(INPUT_SCALE)[functions[targets - NUM_INPUTS]]
    weights = packed.weights * scales
    edge_ids = np.arange(len(weights), dtype=np.int64)
    num_nodes = NUM_INPUTS + int(counts.sum())
    output_ids = NUM_INPUTS + (first_node + hidden)[:, None] + np.arange(len(genomes[0].outputs))  # (N, O)

    live = _reaching(num_nodes, sources, targets, output_ids.reshape(-1))
    used = live[targets]  # an edge into a live node comes from a live node
    sources, targets, weights, edge_ids, scales = (a[used] for a in (sources, targets, weights, edge_ids, scales))
    nodes = NUM_INPUTS + np.flatnonzero(live[NUM_INPUTS:])  # the live non-input nodes
    depth = _depths(num_nodes, sources, targets)[nodes]
    functions = functions[nodes - NUM_INPUTS]
    order = stable_argsort(depth * NUM_FUNCTIONS + functions)  # by depth, then function; genome order breaks ties
    row = np.arange(num_nodes, dtype=np.int64)  # inputs keep rows 0..3
    row[nodes[order]] = NUM_INPUTS + np.arange(order.size)
    depth, functions = depth[order], functions[order]

    source_rows, target_rows = row[sources], row[targets]
    by_target = stable_argsort(target_rows)
    source_rows, target_rows, weights, edge_ids, scales = (
        a[by_target] for a in (source_rows, target_rows, weights, edge_ids, scales))

    # every layer's connections and rows are contiguous: slice whole-program arrays, no per-layer work but views
    num_layers = int(depth.max(initial=0))
    bounds = np.searchsorted(depth, np.arange(1, num_layers + 2))  # each layer's nodes, in row order minus 4
    edge_bounds = np.searchsorted(target_rows, NUM_INPUTS + bounds)  # each layer's connections
    node_first = _run_starts(target_rows - NUM_INPUTS, order.size)[:-1]  # each node's first connection
    offsets = node_first - np.repeat(edge_bounds[:-1], np.diff(bounds))  # relative to its layer's first connection
    keys = depth * NUM_FUNCTIONS + functions  # sorted: rows go by depth, then function
    f_bounds = np.searchsorted(keys, np.arange(NUM_FUNCTIONS, (num_layers + 1) * NUM_FUNCTIONS + 1)).tolist()
    layers = []
    for k, (begin, end, e0, e1) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(),
                                                 edge_bounds[:-1].tolist(), edge_bounds[1:].tolist())):
        f = f_bounds[k * NUM_FUNCTIONS:(k + 1) * NUM_FUNCTIONS + 1]
        groups = [(j, f[j] - begin, f[j + 1] - begin) for j in range(NUM_FUNCTIONS) if f[j + 1] > f[j]]
        layers.append(Layer(NUM_INPUTS + begin, source_rows[e0:e1], offsets[begin:end], weights[e0:e1], groups,
                            edge_ids[e0:e1], scales[e0:e1], e0, e1))

    outputs = row[output_ids]
    table = np.concatenate([source_rows, offsets, outputs.reshape(-1), weights.view(np.int64)])
    return Program(NUM_INPUTS + nodes.size, layers, outputs, table)


def program_tensors(program: Program, device: torch.device, dtype: torch.dtype) -> tuple[
        list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]], torch.Tensor]:
    """The program on ``device`` in one host→device copy: per layer (start, sources, offsets, weights in
    ``dtype``, groups), and the output rows (N·O,)."""
    table = program.table
    if table is None:  # a Program built by hand
        table = np.concatenate([np.concatenate([l.sources for l in program.layers] or [np.zeros(0, np.int64)]),
                                np.concatenate([l.offsets for l in program.layers] or [np.zeros(0, np.int64)]),
                                program.outputs.reshape(-1),
                                np.concatenate([np.asarray(l.weights, np.float64) for l in program.layers]
                                               or [np.zeros(0)]).view(np.int64)])
        e = 0
        for l in program.layers:
            l.edge_begin, l.edge_end = e, e + len(l.sources)
            e = l.edge_end
    on_device = torch.as_tensor(table, device=device)
    edges = sum(len(l.sources) for l in program.layers)
    rows = program.rows - NUM_INPUTS
    outputs_end = edges + rows + program.outputs.size
    if torch.device(device).type == "mps":  # no float64 there: convert on the host
        weights = torch.as_tensor(table[outputs_end:].view(np.float64), dtype=dtype).to(device)
    else:
        weights = on_device[outputs_end:].view(torch.float64).to(dtype)
    layers = []
    for l in program.layers:
        r0 = l.start - NUM_INPUTS
        layers.append((l.start, on_device[l.edge_begin:l.edge_end], on_device[edges + r0:edges + r0 + len(l.offsets)],
                       weights[l.edge_begin:l.edge_end], l.groups))
    return layers, on_device[edges + rows:outputs_end]
