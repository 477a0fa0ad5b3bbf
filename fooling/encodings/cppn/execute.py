"""Running a compiled population (:class:`~.compile.Program`): batched, and differentiable in its weights.

One step per depth sums every node's weighted inputs with ``embedding_bag`` (V is the
table, a node's incoming connections its bag: a sparse-times-dense product with
no padding; its CUDA forward is not among PyTorch's nondeterministic ops), then applies each function
to its slice. The Python loop runs over depths, functions and pixel chunks (for
memory), never over genomes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ...settings.evolve import CPPN_CPU_MATHS
from .compile import Program, program_tensors
from .functions import apply_differentiable, apply_torch, apply_ufunc, settle_cpu_functions, ufunc_into
from .genome import NUM_INPUTS
from .style import colour_map

FOLDED_PIXELS = 64  # pixels a program's constant rows are drawn at (Program.constants), then broadcast


def run_program(
    program: Program, coords: np.ndarray | torch.Tensor, device: torch.device,
    dtype: torch.dtype = torch.float32, chunk_elements: Optional[int] = None, colour: Optional[str] = None,
    cpu_math: str = "numpy",
) -> torch.Tensor:
    """Output values (N, O, P) of a compiled population at the pixels ``coords`` (4, P).

    The program goes to ``device`` as one table (:func:`~.compile.program_tensors`); ``coords``
    may already be a tensor there (:func:`~.style.coordinate_tensor`, cached), read only. Its constant rows
    (compiled with ``fold``) are drawn at :data:`FOLDED_PIXELS` pixels, then broadcast to every pixel.

    Raw values, or with ``colour`` the image values (N, C, P) of :func:`colour_map`,
    converted chunk by chunk while they are in cache. Pixels go in chunks so that V
    holds at most about ``chunk_elements`` values (default: 2^22 on CPU, where
    cache-sized chunks run fastest, 2^28 on GPUs).

    cpu_math: whose sin, tanh and exp a CPU runs in float32 and float64, numpy's (faster) or PyTorch's
    (see :mod:`.functions`); other devices and dtypes always run PyTorch's.
    """
    device = torch.device(device)
    if cpu_math not in CPPN_CPU_MATHS:
        raise ValueError(f"cpu_math must be one of {', '.join(CPPN_CPU_MATHS)}, not {cpu_math!r}")
    numpy_math = device.type == "cpu" and cpu_math == "numpy" and dtype in (torch.float32, torch.float64)
    if device.type == "cpu" and not numpy_math:
        settle_cpu_functions()  # the process's first torch.sin may be inexact (see there)
    apply = apply_ufunc if numpy_math else apply_torch
    if chunk_elements is None:
        chunk_elements = 1 << (22 if device.type == "cpu" else 28)
    n, o = program.outputs.shape
    pixels = coords.shape[1]
    tables, output_rows = program_tensors(program, device, dtype)
    gather_rgb = numpy_math and colour == "hls" and o == 3 and dtype == torch.float32
    if gather_rgb:
        from ...hls_cpu import gather_hls_to_rgb_cpu  # numba loads on first use
    chunk = max(1, chunk_elements // program.rows)
    coords_t = torch.as_tensor(coords, dtype=dtype, device=device)  # no copy for a cached grid
    result = torch.empty((n, o, pixels), dtype=dtype, device=device)

    def draw(layers: list, values: torch.Tensor) -> None:  # each layer's sums, then its functions, in place
        values_np = values.numpy() if numpy_math else None  # numpy views: slicing them costs a tenth of a tensor's
        for start, sources, offsets, weights, groups in layers:
            summed = F.embedding_bag(sources, values, offsets, mode="sum", per_sample_weights=weights)
            summed_np = summed.numpy() if numpy_math else None
            for function, a, b in groups:
                if numpy_math and function != 3:
                    ufunc_into(function, summed_np[a:b], values_np[start + a:start + b])
                else:
                    apply(function, summed[a:b], values[start + a:start + b])

    constant_rows = slice(NUM_INPUTS, NUM_INPUTS + program.constants)
    if program.constants:  # drawn once at a few pixels (each value is computed alone: the same bits at any pixel)
        few = torch.empty((NUM_INPUTS + program.constants, min(pixels, FOLDED_PIXELS)), dtype=dtype, device=device)
        few[:NUM_INPUTS] = coords_t[:, :few.shape[1]]
        draw(tables[:program.constant_layers], few)
        constants = few[constant_rows, :1]
        tables = tables[program.constant_layers:]
    buffer = torch.empty((program.rows, min(chunk, pixels)), dtype=dtype, device=device)  # reused: no page faults
    for p0 in range(0, pixels, chunk):
        p1 = min(pixels, p0 + chunk)
        values = buffer if p1 - p0 == buffer.shape[1] else buffer[:, :p1 - p0].contiguous()
        values[:NUM_INPUTS] = coords_t[:, p0:p1]
        if program.constants:
            values[constant_rows] = constants  # broadcast along the pixels
        draw(tables, values)
        if gather_rgb and gather_hls_to_rgb_cpu(values, output_rows.view(n, o), result, p0):
            continue  # |outputs| read where they lie and converted into the result in one compiled pass
        if p1 - p0 == pixels:  # one chunk (MNIST's): the outputs gathered straight into the result, mapped there
            torch.index_select(values, 0, output_rows, out=result.view(n * o, pixels))
            return colour_map(result, colour, in_place=True) if colour else result
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
    if program.constants:
        raise ValueError("a program compiled with fold=True draws only: compile it without fold to differentiate")
    if device.type == "cpu":
        settle_cpu_functions()  # the process's first sin may be inexact (see there)
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
