"""numba's ``njit`` as fooling uses it, and a batch split over threads for the kernels it compiles.

numba keeps the machine code in ``__pycache__`` beside the module, or in its user cache where that folder is
read-only; where it has nowhere to write it raises at decoration, and :func:`jit` then compiles in memory for
each process instead. Modules that use it are imported on first use, so runs that never need them never
import numba. No fast-math: the kernels give IEEE results, the same bits as the PyTorch ops they replace.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, TypeVar

import numba
import numpy as np
import torch

F = TypeVar("F", bound=Callable)
T = TypeVar("T")

MIN_VALUES_A_THREAD = 1 << 20  # a batch is split over threads only in pieces of at least this many values
_pools: dict[int, ThreadPoolExecutor] = {}  # by thread count, made on first use


def jit(function: F) -> F:
    """``numba.njit(cache=True, nogil=True)``, or without the cache where numba finds no writable place."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


def split(call: Callable[[int, int], T], n: int, values: int, threads: Optional[int] = None) -> list[T]:
    """``[call(start, stop), ...]`` over ranges that cut ``range(n)`` in order: one per thread, run at once (the
    kernels release the GIL), up to ``threads`` (default: PyTorch's intra-op count, so one inside
    :func:`fooling.hostwork.host_threads`) and at most one per :data:`MIN_VALUES_A_THREAD` of the ``values``."""
    threads = min(threads or torch.get_num_threads(), n, max(1, values // MIN_VALUES_A_THREAD))
    if threads <= 1:
        return [call(0, n)]
    pool = _pools.get(threads) or _pools.setdefault(threads, ThreadPoolExecutor(threads, "fooling-kernel"))
    bounds = np.linspace(0, n, threads + 1).astype(int).tolist()
    return list(pool.map(call, bounds[:-1], bounds[1:]))
