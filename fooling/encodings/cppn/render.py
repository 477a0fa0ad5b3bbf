"""Drawing CPPNs: a whole population of differing networks in one tensor program.

:mod:`.style` (how outputs become pixels), :mod:`.compile` (the population merged into one
layered graph) and :mod:`.execute` (running it, batched or differentiably) do the work;
:func:`render` puts them together. The slow per-genome reference renderer the tests compare
against lives in the tests (``tests/helpers.py``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .compile import Layer, Program, compile_population
from .execute import run_program, run_program_differentiable
from .genome import Genome
from .mutation import Packed
from .style import COLOURS, COORDS, Style, colour_map, coordinate_tensor, coordinates

# images of at least this many pixels are drawn with their constant nodes folded (compile_population's ``fold``: drawn
# at a few pixels, then broadcast): each constant layer costs a few calls whatever the size, so below this the calls
# outweigh the pixels saved (`python scripts/bench_fold.py`: MNIST's 784 pixels drew 5-10 % slower folded)
FOLD_MIN_PIXELS = 2048

__all__ = ["COLOURS", "COORDS", "Layer", "Program", "Style", "colour_map", "compile_population", "coordinate_tensor",
           "coordinates", "render", "run_program", "run_program_differentiable"]


def render(
    genomes: Sequence[Genome], style: Style, device: torch.device, size: Optional[tuple[int, int]] = None,
    dtype: torch.dtype = torch.float32, packed: Optional[Packed] = None, cpu_math: str = "numpy",
) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] of ``genomes`` drawn at ``size`` (default ``style.size``), one program.

    packed: ``genomes`` laid end to end, if known (see :func:`~.compile.compile_population`).
    cpu_math: whose sin, tanh and exp a CPU runs (see :func:`~.execute.run_program`)."""
    size = tuple(size or style.size)
    if not genomes:
        return torch.empty((0, style.channels, *size), dtype=dtype, device=device)
    if genomes[0].num_outputs != style.channels:
        raise ValueError(f"{style.colour} images need {style.channels} CPPN outputs, not {genomes[0].num_outputs}")
    coords = coordinate_tensor(style, size, device, dtype)  # cached
    fold = size[0] * size[1] >= FOLD_MIN_PIXELS
    images = run_program(compile_population(genomes, packed, shared=True, fold=fold), coords, device, dtype,
                         colour=style.colour, cpu_math=cpu_math)
    return images.view(len(genomes), style.channels, *size)
