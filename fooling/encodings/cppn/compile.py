"""Compiling a population of differing CPPNs into one layered graph (:class:`Program`).

The population's networks are merged into one big feed-forward graph whose node
values live in a single tensor V of shape (rows, pixels): rows 0..3 are the shared
inputs (x, y, d, bias), every other row is one node of one genome (nodes with no
path to an output, frequent after deletions and rewiring, are dropped), or for drawing one node that
several genomes hold alike (``shared``: siblings' unmutated nodes). Rows are sorted
by depth (longest path from an input), then by function, so each depth is a
contiguous block of rows and each function a contiguous slice of that block
(:mod:`.execute` runs it). For drawing, the nodes that hold one value at every pixel may come first
(``fold``: fed by the bias alone, or by nothing), to be drawn at a few pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .functions import INPUT_SCALE, NUM_FUNCTIONS
from .genome import NUM_INPUTS, Genome
from .mutation import Packed, pack


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
    constants: rows 4 .. 4 + constants − 1 hold the same value at every pixel (compiled with ``fold``); they are
    the rows of the first ``constant_layers`` layers, which read only the bias and each other.
    """

    rows: int
    layers: list[Layer]
    outputs: np.ndarray
    table: Optional[np.ndarray] = None
    constants: int = 0
    constant_layers: int = 0


_INPUT_SCALE = np.asarray(INPUT_SCALE, dtype=np.float64)


def _run_starts(ids: np.ndarray, num_nodes: int) -> np.ndarray:
    """(num_nodes + 1,) where each node's run begins in the sorted ``ids`` (``np.searchsorted`` of 0..num_nodes)."""
    first = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(ids, minlength=num_nodes), out=first[1:])
    return first


def compile_population(genomes: Sequence[Genome], packed: Optional[Packed] = None, shared: bool = False,
                       fold: bool = False) -> Program:
    """Merge ``genomes`` (all with the same number of outputs) into one layered :class:`Program`.

    Nodes without a path to an output (common after deletions and rewiring) are left out.
    packed: ``genomes`` already laid end to end (from :func:`~.mutation.mutate_population_packed`),
    read instead of concatenating every genome's arrays; the same program either way.
    shared: nodes of different genomes that compute the same values (the same function of the same inputs
    with the same weights, as siblings' unmutated nodes do) share one row: the same images from fewer rows (a
    third fewer in a MNIST run's generation), for drawing only (:func:`~.execute.run_program`; a shared
    row's weights are one genome's, so :func:`~.execute.run_program_differentiable` needs a program without).
    fold: the constant nodes (fed by the bias and other constant nodes alone, or by nothing: the same value at
    every pixel; a fifth of a MNIST run's rows after 1,000 generations) get the first rows and layers
    (:attr:`Program.constants`), which :func:`~.execute.run_program` draws at a few pixels and broadcasts: the
    same images from less work, for drawing only, like ``shared``.
    """
    if packed is None:
        num_outputs = {len(g.outputs) for g in genomes}
        if len(num_outputs) > 1:
            raise ValueError(f"CPPNs in one batch must have the same number of outputs, got {sorted(num_outputs)}")
        packed = pack(genomes)
    from .kernels import merge_population  # numba loads on first use: direct runs never pay for it

    num_outputs = len(genomes[0].outputs)
    rows, source_rows, target_rows, weights, edge_ids, scales, depth, functions, outputs, constants = merge_population(
        packed.hidden, num_outputs, packed.functions, packed.sources, packed.targets, packed.weights, packed.edges,
        _INPUT_SCALE, shared, fold)
    outputs = outputs.reshape(len(genomes), num_outputs)

    # every layer's connections and rows are contiguous: slice whole-program arrays, no per-layer work but views
    num_layers = int(depth.max(initial=0))
    bounds = np.searchsorted(depth, np.arange(1, num_layers + 2))  # each layer's nodes, in row order minus 4
    edge_bounds = np.searchsorted(target_rows, NUM_INPUTS + bounds)  # each layer's connections
    node_first = _run_starts(target_rows - NUM_INPUTS, depth.size)[:-1]  # each node's first connection
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

    table = np.concatenate([source_rows, offsets, outputs.reshape(-1), weights.view(np.int64)])
    constant_layers = int(depth[constants - 1]) if constants else 0  # the constants' rows fill the first layers
    return Program(rows, layers, outputs, table, int(constants), constant_layers)


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
