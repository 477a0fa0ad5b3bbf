"""snes-elites' children on the CPU in one compiled pass (numba; see :mod:`fooling.jit`).

A child is ``clamp(mean + upsample(sigma * noise), 0, 1)``: :func:`fooling.search.blocks.mean_plus_step`
and a clamp, three passes in PyTorch over (k, n, G) values (on 2 cores about 11 ms of wall time and 22 ms of
CPU for 64 ImageNet children at 256 px, where this takes about 7 ms on one core). The same products, sums and
clamps in float32 without fast-math, so the children are the same bits (``tests/search/test_snes_sample_cpu.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..jit import jit, split


@jit
def _row(mean, step, out):  # pragma: no cover - compiled
    """out = clamp(mean + step, 0, 1) along one image row: (W,) float32 each (a plain loop numba vectorises)."""
    for x in range(out.shape[0]):
        v = mean[x] + step[x]
        v = np.float32(0.0) if v < np.float32(0.0) else v  # NaN stays NaN, as torch.clamp
        out[x] = np.float32(1.0) if v > np.float32(1.0) else v


@jit
def _sample(mean, sigma, noise, scale, c, h, w, out):  # pragma: no cover - compiled
    """mean (k, C*H*W), sigma (k, D), noise (k, n, D) on the grid (C, ceil(H / scale), ceil(W / scale)),
    out (k * n, C*H*W): child j of emitter e is row e * n + j."""
    k, n = noise.shape[0], noise.shape[1]
    gh, gw = -(-h // scale), -(-w // scale)
    step = np.empty(gw * scale, np.float32)  # one grid row's products, each repeated scale times
    for e in range(k):
        for j in range(n):
            for ch in range(c):
                for gy in range(gh):
                    g0 = (ch * gh + gy) * gw
                    for gx in range(gw):
                        v = sigma[e, g0 + gx] * noise[e, j, g0 + gx]
                        for d in range(scale):
                            step[gx * scale + d] = v
                    for y in range(gy * scale, min(h, gy * scale + scale)):
                        p = (ch * h + y) * w
                        _row(mean[e, p:p + w], step[:w], out[e * n + j, p:p + w])


def sample_cpu(mean: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, scale: int,
               shape: tuple[int, int, int]) -> torch.Tensor:
    """(k * n, G) float32 children ``clamp(mean[e] + upsample(sigma[e] * noise[e, j]), 0, 1)`` at row e * n + j:
    mean (k, G), sigma (k, D), noise (k, n, D) float32 on the CPU; emitters split over threads
    (:func:`fooling.jit.split`)."""
    k, n, _ = noise.shape
    c, h, w = shape
    out = torch.empty((k * n, c * h * w), dtype=torch.float32)
    arrays = [np.ascontiguousarray(t.numpy(), dtype=np.float32) for t in (mean, sigma, noise)]
    o = out.numpy()

    def run(a: int, b: int) -> None:
        _sample(arrays[0][a:b], arrays[1][a:b], arrays[2][a:b], scale, c, h, w, o[a * n:b * n])

    split(run, k, out.numel())
    return out
