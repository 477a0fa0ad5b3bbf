"""HLS -> RGB on the CPU as one compiled pass over a batch (numba; see :mod:`fooling.jit`).

PyTorch's eager conversion makes eleven elementwise passes: on 2 cores a generation of 64 ImageNet genomes
(12.6 million values) took 24-26 ms of wall time and 48-51 ms of CPU in the loop, this pass 7-8 and 17-18
(``scripts/bench_imagenet_phases.py``), by then bound by memory rather than arithmetic. The arithmetic is
:func:`fooling.imaging._hls_to_rgb`'s unit-hue form, operation for operation in float32 without fast-math, so the
images are the same bits (``tests/test_hls_cpu.py``). NaN lightness or saturation gives NaN, as there.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .hostwork import split
from .jit import jit

MIN_VALUES_A_THREAD = 1 << 20  # images split over threads only in pieces of at least this many values (memory-bound)


@jit
def rgb_channel(h, l, s, shift, out):  # pragma: no cover - compiled
    """One RGB channel of a row of pixels: h, l, s, out (M,) float32; shift 0, 8 or 4 (R, G, B)."""
    for p in range(h.shape[0]):
        light = l[p]
        dark = np.float32(1.0) - light
        a = s[p] * (light if light < dark else dark)  # NaN in light or dark gives NaN, as torch.minimum
        k = h[p] * np.float32(12.0) + shift
        rise, fall = k - np.float32(3.0), np.float32(9.0) - k
        f = rise if rise < fall else fall
        wrapped = k - np.float32(15.0)
        f = wrapped if wrapped > f else f
        f = np.float32(-1.0) if f < np.float32(-1.0) else f  # clamps keep NaN, as torch.clamp
        f = np.float32(1.0) if f > np.float32(1.0) else f
        v = light - f * a
        v = np.float32(0.0) if v < np.float32(0.0) else v
        out[p] = np.float32(1.0) if v > np.float32(1.0) else v


@jit
def _convert(hls, out):  # pragma: no cover - compiled
    """hls, out (N, 3, M) float32, C-contiguous; returns how many hues lie outside [0, 1] (NaN included):
    where any does, ``out`` is not the conversion (the unit-hue form does not wrap them)."""
    outside = 0
    for i in range(hls.shape[0]):
        h, l, s = hls[i, 0], hls[i, 1], hls[i, 2]
        for p in range(h.shape[0]):
            outside += not (h[p] >= np.float32(0.0) and h[p] <= np.float32(1.0))
        rgb_channel(h, l, s, np.float32(0.0), out[i, 0])
        rgb_channel(h, l, s, np.float32(8.0), out[i, 1])
        rgb_channel(h, l, s, np.float32(4.0), out[i, 2])
    return outside


@jit
def _gather_convert(values, rows, out, start):  # pragma: no cover - compiled
    """values (R, M) float32 rows of M pixels; rows (N, 3) int64 each image's hue, lightness and saturation rows;
    out (N, 3, P) float32 C-contiguous. Writes the RGB of |values[rows[i]]| into out[i, :, start:start + M]; returns
    how many of those hues lie outside [0, 1] (NaN included; see :func:`_convert`)."""
    m = values.shape[1]
    h, l, s = np.empty(m, np.float32), np.empty(m, np.float32), np.empty(m, np.float32)
    outside = 0
    for i in range(rows.shape[0]):
        hue, light, sat = values[rows[i, 0]], values[rows[i, 1]], values[rows[i, 2]]
        for p in range(m):
            h[p], l[p], s[p] = abs(hue[p]), abs(light[p]), abs(sat[p])
            outside += not (h[p] >= np.float32(0.0) and h[p] <= np.float32(1.0))
        rgb_channel(h, l, s, np.float32(0.0), out[i, 0, start:start + m])
        rgb_channel(h, l, s, np.float32(8.0), out[i, 1, start:start + m])
        rgb_channel(h, l, s, np.float32(4.0), out[i, 2, start:start + m])
    return outside


# False under NUMBA_DISABLE_JIT=1 (debugging): the loops would run as Python, minutes for an ImageNet generation
COMPILED = hasattr(_convert, "py_func")


def hls_to_rgb_cpu(hls: torch.Tensor, threads: Optional[int] = None) -> Optional[torch.Tensor]:
    """(N, 3, ...) float32 HLS on the CPU -> RGB (N, 3, ...), or None when a hue lies outside [0, 1] or numba does
    not compile (the caller then converts with PyTorch). Split by images over up to ``threads`` threads
    (:func:`fooling.hostwork.split`)."""
    if not COMPILED:
        return None
    n = len(hls)
    hls = hls.detach().contiguous()  # no autograd here (hls_to_rgb sends grad-tracked batches to PyTorch)
    out = torch.empty_like(hls)
    flat_in, flat_out = hls.view(n, 3, -1).numpy(), out.view(n, 3, -1).numpy()
    outside = split(lambda a, b: _convert(flat_in[a:b], flat_out[a:b]), n, hls.numel(), MIN_VALUES_A_THREAD,
                    threads)
    return None if sum(outside) else out


def gather_hls_to_rgb_cpu(values: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, start: int,
                          threads: Optional[int] = None) -> bool:
    """Draw pixels [start, start + M) of ``out`` (N, 3, P) float32, C-contiguous: the RGB of the HLS values
    |``values``[``rows``[i]]| (values (R, M) float32 CPU rows, e.g. a CPPN program's node values; rows (N, 3) int64),
    with no gathered, absolute or converted copy between: the same bits as gathering the rows, taking their
    absolute values and :func:`hls_to_rgb_cpu`. False when a hue lies outside [0, 1] or numba does not compile:
    then those pixels of ``out`` are not the conversion, and the caller converts them otherwise."""
    if not COMPILED:
        return False
    n, m = len(rows), values.shape[1]
    values_np, rows_np, out_np = values.numpy(), rows.numpy(), out.numpy()
    outside = split(lambda a, b: _gather_convert(values_np, rows_np[a:b], out_np[a:b], start), n, 3 * n * m,
                    MIN_VALUES_A_THREAD, threads)
    return not sum(outside)
