"""Image rows stored at a coarser resolution where their pixels repeat in squares: lossless, checked bit for bit.

A checkpoint's biggest rows are images: the archive's direct elites and snes-elites' means (C, H, W) and step
sizes (on the noise grid). snes-elites draws its noise on ``--es-scale`` x ``--es-scale`` blocks of pixels and
starts from a flat image, so every row it makes repeats each value over 2 x 2 pixels (a 256 px ImageNet row: 786 kB
that is 196 kB of information). :func:`coarsen` finds the largest power of two ``f`` such that a row is made of
f x f squares of equal bits, and gives the row at every f-th pixel of every f-th line (f = 1: the row itself);
:func:`refine_into` writes it back at full size. Equality is of the bit patterns, so -0.0 beside 0.0, or two NaNs
with different payloads, are not merged: a refined row is the original byte for byte.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

Image = tuple[int, int, int]


def _bits(row: memoryview | np.ndarray, image: Image) -> Optional[np.ndarray]:
    """``row`` (its bytes, or an array) as unsigned integers of its item size, shaped ``image`` (None: an item size
    without such a type, or a row that is not C·H·W items)."""
    if isinstance(row, memoryview):
        data = np.frombuffer(row, dtype=np.uint8)
    else:
        data = np.ascontiguousarray(row).reshape(-1).view(np.uint8)
    items = image[0] * image[1] * image[2]
    itemsize = data.size // items if items else 0
    kind = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(itemsize)
    if kind is None or itemsize * items != data.size:
        return None
    return data.view(kind).reshape(image)


def _halved(bits: np.ndarray) -> Optional[np.ndarray]:
    """(C, H / 2, W / 2) the value of every 2 x 2 square of ``bits`` (C, H, W) if each holds one; else None."""
    c, h, w = bits.shape
    if h % 2 or w % 2 or not h or not w:
        return None
    from .coarse_cpu import halve  # numba loads on first use

    out = np.empty((c, h // 2, w // 2), dtype=bits.dtype)
    return out if halve(bits, out) else None


def coarsen(row: memoryview | np.ndarray, image: Image) -> tuple[memoryview, int]:
    """(bytes, factor): a C-order row of an image ``image`` (C, H, W) at every ``factor``-th pixel of every
    ``factor``-th line, ``factor`` the largest power of two whose squares each hold one bit pattern; factor 1:
    ``row``'s own bytes (not copied)."""
    bits = _bits(row, image)
    factor, coarse = 1, bits
    while coarse is not None:
        halved = _halved(coarse)
        if halved is None:
            break
        coarse, factor = halved, factor * 2
    if factor == 1:
        whole = row if isinstance(row, memoryview) else memoryview(np.ascontiguousarray(row))
        return whole.cast("B") if whole.format != "B" else whole, 1
    return memoryview(np.ascontiguousarray(coarse)).cast("B"), factor


def coarse_bytes(row_bytes: int, factor: int) -> int:
    """The bytes of a row of ``row_bytes`` stored at ``factor``."""
    return row_bytes // (factor * factor)


def valid_factor(image: Image, factor: int) -> bool:
    """Whether rows of ``image`` (C, H, W) can be stored at ``factor``: a power of two dividing H and W."""
    _, h, w = image
    return factor >= 1 and factor & (factor - 1) == 0 and h % factor == 0 and w % factor == 0


def refine_into(coarse: memoryview | np.ndarray, image: Image, factor: int, out: np.ndarray) -> None:
    """Write the row :func:`coarsen` stored (``coarse``, at ``factor``) into ``out`` (C·H·W items, C-order) at
    full size."""
    c, h, w = image
    small = np.frombuffer(coarse, dtype=out.dtype).reshape(c, h // factor, 1, w // factor, 1)
    out.reshape(c, h // factor, factor, w // factor, factor)[...] = small
