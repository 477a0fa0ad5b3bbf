"""Drawing CPPNs: a whole population of differing networks in one tensor program.

The population's networks are merged into one big feed-forward graph whose node
values live in a single tensor V of shape (rows, pixels): rows 0..3 are the shared
inputs (x, y, d, bias), every other row is one node of one genome (nodes with no
path to an output, frequent after deletions and rewiring, are dropped). Rows are sorted
by depth (longest path from an input), then by function, so each depth is a
contiguous block of rows and each function a contiguous slice of that block. One
step per depth sums every node's weighted inputs with ``embedding_bag`` (V is the
table, a node's incoming connections its bag: a sparse-times-dense product with
no padding; its CUDA forward is not among PyTorch's nondeterministic ops), then applies each function
to its slice. The Python loop runs over depths, functions and pixel chunks (for
memory), never over genomes. :func:`render_reference` is the plain per-genome
version the tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...imaging import hls_to_rgb
from .functions import INPUT_SCALE, NUM_FUNCTIONS, apply_differentiable, apply_numpy, apply_torch
from .genome import NUM_INPUTS, Genome

COORDS = ("scaled", "pixel")
COLOURS = ("grey", "hls", "rgb")


@dataclass(frozen=True)
class Style:
    """How a genome's outputs become an image.

    coords: "scaled" (x, y in [-1, 1]) or "pixel" (x, y = raw pixel indices of the
    ``size`` grid, the original's quirk; d is in [-1, 1] either way).
    colour: "grey" (1 output, |v|), "hls" (3 outputs read as H, L, S = |v|, then RGB)
    or "rgb" (3 outputs, R, G, B = |v|).
    size: (H, W) the genome was evolved at; other sizes redraw the same picture.
    """

    coords: str
    colour: str
    size: tuple[int, int]

    def __post_init__(self) -> None:
        if self.coords not in COORDS:
            raise ValueError(f"CPPN coords must be one of {', '.join(COORDS)}, not {self.coords!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"CPPN colour must be one of {', '.join(COLOURS)}, not {self.colour!r}")

    @property
    def channels(self) -> int:
        return 1 if self.colour == "grey" else 3


def coordinates(style: Style, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """The CPPN inputs at every pixel of an image of ``size`` (default ``style.size``): (4, H·W) float64.

    Rows are x (column), y (row), d and bias. Scaled x, y run from -1 to 1 across the
    image. Pixel x, y count pixels of ``style.size`` (0..W-1); at another size they
    take the fractional positions of the same grid. d = √2·√(x̂² + ŷ²) − 1 with x̂, ŷ the
    scaled coordinates: -1 at the centre, 1 at the corners.
    """
    height, width = size or style.size

    def axis(n: int, native: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.linspace(0.0, 1.0, n) if n > 1 else np.full(1, 0.5)
        return 2.0 * t - 1.0, t * (native - 1)

    x_scaled, x_pixel = axis(width, style.size[1])
    y_scaled, y_pixel = axis(height, style.size[0])
    xs, ys = np.meshgrid(x_scaled, y_scaled)
    d = np.sqrt(2.0) * np.sqrt(xs**2 + ys**2) - 1.0
    if style.coords == "pixel":
        xs, ys = np.meshgrid(x_pixel, y_pixel)
    return np.stack([xs.ravel(), ys.ravel(), d.ravel(), np.ones(height * width)])


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


def run_program(
    program: Program, coords: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32,
    chunk_elements: Optional[int] = None, colour: Optional[str] = None,
) -> torch.Tensor:
    """Output values (N, O, P) of a compiled population at the pixels ``coords`` (4, P).

    Raw values, or with ``colour`` the image values (N, C, P) of :func:`colour_map`,
    converted chunk by chunk while they are in cache. Pixels go in chunks so that V
    holds at most about ``chunk_elements`` values (default: 2^22 on CPU, where
    cache-sized chunks run fastest, 2^28 on GPUs).
    """
    device = torch.device(device)
    if chunk_elements is None:
        chunk_elements = 1 << (22 if device.type == "cpu" else 28)
    n, o = program.outputs.shape
    pixels = coords.shape[1]
    tables = [
        (layer.start, torch.as_tensor(layer.sources, device=device), torch.as_tensor(layer.offsets, device=device),
         torch.as_tensor(layer.weights, dtype=dtype, device=device), layer.groups)
        for layer in program.layers
    ]
    chunk = max(1, chunk_elements // program.rows)
    coords_t = torch.as_tensor(coords, dtype=dtype, device=device)
    output_rows = torch.as_tensor(program.outputs.reshape(-1), device=device)
    result = torch.empty((n, o, pixels), dtype=dtype, device=device)
    buffer = torch.empty((program.rows, min(chunk, pixels)), dtype=dtype, device=device)  # reused: no page faults
    for p0 in range(0, pixels, chunk):
        p1 = min(pixels, p0 + chunk)
        values = buffer if p1 - p0 == buffer.shape[1] else buffer[:, :p1 - p0].contiguous()
        values[:NUM_INPUTS] = coords_t[:, p0:p1]
        for start, sources, offsets, weights, groups in tables:
            summed = F.embedding_bag(sources, values, offsets, mode="sum", per_sample_weights=weights)
            for function, a, b in groups:
                apply_torch(function, summed[a:b], values[start + a:start + b])
        outputs = values.index_select(0, output_rows).view(n, o, p1 - p0)
        result[:, :, p0:p1] = colour_map(outputs, colour) if colour else outputs
    return result


def run_program_differentiable(
    program: Program, coords: np.ndarray, weights: torch.Tensor, colour: Optional[str] = None,
) -> torch.Tensor:
    """Output values (N, O, P) of a compiled population at ``coords`` (4, P), differentiable in ``weights``.

    weights: (W,) every genome's connection weights laid end to end (see ``Layer.edges``),
    on the device and in the dtype to compute in; they replace the weights compiled
    into ``program``, so one compiled topology serves every step of a gradient ascent.
    The same sums as :func:`run_program`, but each depth's node values are a new
    tensor (autograd keeps them), so memory grows with depth × rows × pixels: no chunks.
    """
    device, dtype = weights.device, weights.dtype
    n, o = program.outputs.shape
    values = torch.as_tensor(coords, dtype=dtype, device=device)
    for layer in program.layers:
        scaled = weights[torch.as_tensor(layer.edges, device=device)] * torch.as_tensor(
            layer.scales, dtype=dtype, device=device)
        summed = F.embedding_bag(torch.as_tensor(layer.sources, device=device), values,
                                 torch.as_tensor(layer.offsets, device=device), mode="sum",
                                 per_sample_weights=scaled)
        nodes = torch.cat([apply_differentiable(function, summed[a:b]) for function, a, b in layer.groups])
        values = torch.cat([values, nodes])
    outputs = values[torch.as_tensor(program.outputs.reshape(-1), device=device)].view(n, o, -1)
    return colour_map(outputs, colour) if colour else outputs


def colour_map(values: torch.Tensor, colour: str) -> torch.Tensor:
    """Output values (N, O, P) -> image values (N, C, P) in [0, 1]: |v|, then HLS -> RGB for "hls"."""
    values = values.abs()
    return hls_to_rgb(values) if colour == "hls" else values


def render(
    genomes: Sequence[Genome], style: Style, device: torch.device, size: Optional[tuple[int, int]] = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] of ``genomes`` drawn at ``size`` (default ``style.size``), one program."""
    size = tuple(size or style.size)
    if not genomes:
        return torch.empty((0, style.channels, *size), dtype=dtype, device=device)
    if genomes[0].num_outputs != style.channels:
        raise ValueError(f"{style.colour} images need {style.channels} CPPN outputs, not {genomes[0].num_outputs}")
    images = run_program(compile_population(genomes), coordinates(style, size), device, dtype, colour=style.colour)
    return images.view(len(genomes), style.channels, *size)


def render_reference(genome: Genome, style: Style, size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """One genome drawn node by node in float64 numpy, for tests: (C, H, W) float64 tensor."""
    size = tuple(size or style.size)
    coords = coordinates(style, size)
    values = list(coords)
    functions = genome.functions
    for node in range(NUM_INPUTS, genome.num_nodes):
        total = np.zeros(coords.shape[1])
        for source, weight in zip(genome.sources[genome.targets == node], genome.weights[genome.targets == node]):
            total = total + weight * values[source]
        values.append(apply_numpy(int(functions[node - NUM_INPUTS]), total))
    outputs = torch.from_numpy(np.stack(values[genome.num_nodes - genome.num_outputs:]))
    return colour_map(outputs[None], style.colour)[0].view(style.channels, *size)
