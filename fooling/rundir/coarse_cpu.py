"""The compiled pass of :mod:`.coarse`: a row's 2 x 2 squares checked and halved in one read (numba: loaded on
first use, so a run that stores no image rows never imports it)."""

from __future__ import annotations

import numpy as np

from ..jit import jit


@jit
def halve(bits: np.ndarray, out: np.ndarray) -> bool:
    """Whether every 2 x 2 square of ``bits`` (C, H, W) unsigned integers, H and W even, holds one value; writes
    each square's value into ``out`` (C, H / 2, W / 2) as it goes, and stops at the first square that does not
    (a row of noise: at its first pixel)."""
    c, h, w = bits.shape
    for k in range(c):
        for i in range(h // 2):
            top, bottom = bits[k, 2 * i], bits[k, 2 * i + 1]
            for j in range(w // 2):
                v = top[2 * j]
                if top[2 * j + 1] != v or bottom[2 * j] != v or bottom[2 * j + 1] != v:
                    return False
                out[k, i, j] = v
    return True
