"""numba's ``njit`` as fooling uses it: compiled once per machine and cached, or in memory where it cannot be.

numba keeps the machine code in ``__pycache__`` beside the module, or in its user cache where that folder is
read-only; where it has nowhere to write it raises at decoration, and :func:`jit` then compiles in memory for
each process instead. Modules that use it are imported on first use, so runs that never need them never
import numba. No fast-math: the kernels give IEEE results, the same bits as the PyTorch ops they replace.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import numba

F = TypeVar("F", bound=Callable)


def jit(function: F) -> F:
    """``numba.njit(cache=True, nogil=True)``, or without the cache where numba finds no writable place."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)

