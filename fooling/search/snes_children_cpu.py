"""snes-elites' children on the CPU as one compiled pass (numba; see :mod:`fooling.jit`).

Child j of emitter i is ``clip(mean_i + up(sigma_i * noise[i, j]), 0, 1)`` (:func:`.blocks.mean_plus_step`, then
clamped). PyTorch makes that three passes over the batch (a broadcast addition over the widened blocks, a clamp,
and before them a gathered copy of the emitters' mean rows): 9-10 ms for 64 children at 256 px on 2 cores, timed
alone. This pass reads each mean row where it lies (the emitters' means, or the archive's elites for a restarting
emitter) and writes each child once: 2.3-3 ms timed alone, about 6 in the loop, where the rows come cold from memory
(``scripts/bench_imagenet_phases.py`` measures the loop's ask). A mirrored pair (draws e and -e, as snes-elites
samples) is made in one pass, one read of the mean row and one product for both children: the loop's ask 12.5-12.9
-> 10.9-11.1 ms a generation of 64 (its children 10.6-12 -> 8.4-8.6 ms timed alone with cold caches). The product and
the sum are float32 operation for operation, without fast-math, and the clamp keeps NaN as torch's does, so the
children are the same bits (``tests/search/test_snes_children_cpu.py``).

Used for images whose rows divide into whole noise blocks and are at least :data:`.blocks.SHORT_ROWS` wide
(:func:`.blocks.one_pass`; MNIST's 28-pixel rows take PyTorch's gathered path, faster there). For HLS genomes decoded
on the CPU, :func:`snes_children_rgb` converts each image row to RGB in the same pass, while it is in cache.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..hls_cpu import rgb_channel
from ..hostwork import split
from ..jit import jit

MIN_VALUES_A_THREAD = 1 << 20  # children split over threads only in pieces of at least this many values


@jit
def _widen(s, e, g0, gw, scale, widened):  # pragma: no cover - compiled
    """widened (gw * scale,) = the products s[g0 + gx] * e[g0 + gx] of a row of noise blocks, each repeated
    ``scale`` times: one row of a child's step."""
    for gx in range(gw):
        p = s[g0 + gx] * e[g0 + gx]
        for sx in range(scale):
            widened[gx * scale + sx] = p


@jit
def _pair_row(row, widened, plus, minus):  # pragma: no cover - compiled
    """plus = clip(row + widened, 0, 1) and minus = clip(row - widened, 0, 1), (W,) float32 each; NaN stays NaN,
    as torch.clamp keeps it."""
    for x in range(row.shape[0]):
        v = row[x] + widened[x]
        u = row[x] - widened[x]
        v = np.float32(0.0) if v < np.float32(0.0) else v
        u = np.float32(0.0) if u < np.float32(0.0) else u
        plus[x] = np.float32(1.0) if v > np.float32(1.0) else v
        minus[x] = np.float32(1.0) if u > np.float32(1.0) else u


@jit
def _children(means, mean_rows, elites, elite_rows, sigma, sigma_rows, noise, h, w, scale, out, start,
              stop):  # pragma: no cover - compiled
    """The children of emitters ``start .. stop - 1``. means (R, G), elites (E, G), sigma (S, D), noise (k, n, D),
    out (k * n, G) float32 C-contiguous; mean_rows, elite_rows, sigma_rows (k,) int64 (elite_rows -1: the mean is
    ``means[mean_rows[i]]``, else ``elites[elite_rows[i]]``). n is even and each emitter's second half of draws is
    its first negated (not read): children j and j + n / 2 are made together, from one read of the mean and one
    product (m + s * -e is m - s * e bit for bit)."""
    half = noise.shape[1] // 2
    n = 2 * half
    gh, gw = h // scale, w // scale
    c = means.shape[1] // (h * w)
    widened = np.empty(w, np.float32)  # one row of a child's step, each block repeated ``scale`` times
    for i in range(start, stop):
        m = elites[elite_rows[i]] if elite_rows[i] >= 0 else means[mean_rows[i]]
        s = sigma[sigma_rows[i]]
        for j in range(half):
            e = noise[i, j]
            plus, minus = out[i * n + j], out[i * n + j + half]
            for ch in range(c):
                for gr in range(gh):
                    _widen(s, e, (ch * gh + gr) * gw, gw, scale, widened)
                    for sr in range(scale):  # the block's image rows
                        base = (ch * h + gr * scale + sr) * w
                        _pair_row(m[base:base + w], widened, plus[base:base + w], minus[base:base + w])


@jit
def _children_rgb(means, mean_rows, elites, elite_rows, sigma, sigma_rows, noise, h, w, scale, out, rgb, start,
                  stop):  # pragma: no cover - compiled
    """:func:`_children` of HLS images (3 channels), and into ``rgb`` (k * n, G) their RGB conversion (the
    arithmetic of :func:`fooling.hls_cpu.rgb_channel`), each image row converted while its three channels' rows are
    in cache. Returns how many of those hues are NaN (children are clipped to [0, 1], so no other lies outside)."""
    half = noise.shape[1] // 2
    n = 2 * half
    gh, gw = h // scale, w // scale
    plane = h * w
    widened = np.empty((3, w), np.float32)  # a row of each channel's step
    nan = 0
    for i in range(start, stop):
        m = elites[elite_rows[i]] if elite_rows[i] >= 0 else means[mean_rows[i]]
        s = sigma[sigma_rows[i]]
        for j in range(half):
            e = noise[i, j]
            for gr in range(gh):
                for ch in range(3):
                    _widen(s, e, (ch * gh + gr) * gw, gw, scale, widened[ch])
                for sr in range(scale):
                    r0 = (gr * scale + sr) * w
                    for ch in range(3):
                        base = ch * plane + r0
                        _pair_row(m[base:base + w], widened[ch], out[i * n + j, base:base + w],
                                  out[i * n + j + half, base:base + w])
                    for child in (i * n + j, i * n + j + half):
                        hue = out[child, r0:r0 + w]
                        light = out[child, plane + r0:plane + r0 + w]
                        sat = out[child, 2 * plane + r0:2 * plane + r0 + w]
                        for x in range(w):
                            nan += hue[x] != hue[x]
                        rgb_channel(hue, light, sat, np.float32(0.0), rgb[child, r0:r0 + w])
                        rgb_channel(hue, light, sat, np.float32(8.0), rgb[child, plane + r0:plane + r0 + w])
                        rgb_channel(hue, light, sat, np.float32(4.0), rgb[child, 2 * plane + r0:2 * plane + r0 + w])
    return nan


# False under NUMBA_DISABLE_JIT=1 (debugging): the loops would run as Python
COMPILED = hasattr(_children, "py_func")


def snes_children(means: torch.Tensor, mean_rows: np.ndarray, sigma: torch.Tensor, sigma_rows: np.ndarray,
                  noise: torch.Tensor, scale: int, shape: tuple[int, int, int],
                  elites: Optional[torch.Tensor] = None, elite_rows: Optional[np.ndarray] = None,
                  threads: Optional[int] = None) -> torch.Tensor:
    """(k * n, G) float32: child j of emitter i at row ``i * n + j``, ``clip(mean_i + up(sigma_i * noise[i, j]), 0,
    1)``, on the CPU. means (R, G) and sigma (S, D) contiguous, read at rows ``mean_rows`` and ``sigma_rows`` (k,);
    noise (k, n, D) on the noise grid; emitter i's mean is ``elites[elite_rows[i]]`` instead where that is >= 0.
    H and W must be multiples of ``scale`` (:func:`.blocks.one_pass` says where this pass is used). The noise is
    mirrored, as snes-elites draws it: ``noise[:, n // 2:]`` is ``-noise[:, :n // 2]`` (n even), so each pair is
    made in one pass (the same bits; the second half is not read). Split by emitters over up to ``threads`` threads."""
    return _make(means, mean_rows, sigma, sigma_rows, noise, scale, shape, elites, elite_rows, threads, False)[0]


def snes_children_rgb(means: torch.Tensor, mean_rows: np.ndarray, sigma: torch.Tensor, sigma_rows: np.ndarray,
                      noise: torch.Tensor, scale: int, shape: tuple[int, int, int],
                      elites: Optional[torch.Tensor] = None, elite_rows: Optional[np.ndarray] = None,
                      threads: Optional[int] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(children, images): :func:`snes_children` of HLS genomes (shape (3, H, W)), and in the same pass their RGB
    images (k * n, 3, H, W), the same bits as :func:`fooling.hls_cpu.hls_to_rgb_cpu` of the children, but each
    image row converted while it is in cache instead of read again from memory (docs/benchmarks.md, issue 12's
    twenty-fourth pass). images is None where a hue is NaN (:func:`fooling.imaging.hls_to_rgb` then converts the
    children itself)."""
    return _make(means, mean_rows, sigma, sigma_rows, noise, scale, shape, elites, elite_rows, threads, True)


def _make(means: torch.Tensor, mean_rows: np.ndarray, sigma: torch.Tensor, sigma_rows: np.ndarray,
          noise: torch.Tensor, scale: int, shape: tuple[int, int, int], elites: Optional[torch.Tensor],
          elite_rows: Optional[np.ndarray], threads: Optional[int], rgb: bool
          ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    if noise.shape[1] % 2:
        raise ValueError(f"mirrored noise has an even number of draws an emitter, not {noise.shape[1]}")
    if rgb and shape[0] != 3:
        raise ValueError(f"HLS images have 3 channels, not {shape[0]}")
    k, n, _ = noise.shape
    g = means.shape[1]
    out = torch.empty((k * n, g), dtype=torch.float32)
    images = torch.empty((k * n, *shape), dtype=torch.float32) if rgb else None
    if k == 0:
        return out, images
    if elites is None or elite_rows is None:
        elites, elite_rows = means, np.full(k, -1, dtype=np.int64)
    arrays = [np.ascontiguousarray(np.asarray(a, dtype=np.int64)) for a in (mean_rows, elite_rows, sigma_rows)]
    m, e, s, eps, o = (t.detach().contiguous().numpy() for t in (means, elites, sigma, noise, out))
    _, h, w = shape
    if images is None:
        split(lambda a, b: _children(m, arrays[0], e, arrays[1], s, arrays[2], eps, h, w, scale, o, a, b), k,
              k * n * g, MIN_VALUES_A_THREAD, threads)
        return out, None
    r = images.view(k * n, g).numpy()
    nan = split(lambda a, b: _children_rgb(m, arrays[0], e, arrays[1], s, arrays[2], eps, h, w, scale, o, r, a, b),
                k, k * n * g, MIN_VALUES_A_THREAD, threads)
    return out, None if sum(nan) else images
