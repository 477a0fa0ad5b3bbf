"""numba's ``njit`` as fooling uses it: compiled once per machine and cached, or in memory where it cannot be.

numba keeps the machine code in ``__pycache__`` beside the module, or in its user cache where that folder is
read-only; where it has nowhere to write it raises at decoration, and :func:`jit` then compiles in memory for
each process instead. Modules that use it are imported on first use, so runs that never need them never
import numba. No fast-math: the kernels give IEEE results, the same bits as the PyTorch ops they replace.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar

import numba

F = TypeVar("F", bound=Callable)


def jit(function: Optional[F] = None, **options: Any) -> F:
    """``numba.njit(cache=True, nogil=True, **options)``, or without the cache where numba finds no writable place.
    ``@jit`` or ``@jit(error_model="numpy")`` (no zero-division checks, so loops with a division can vectorise)."""
    if function is None:
        return functools.partial(jit, **options)  # type: ignore[return-value]
    try:
        return numba.njit(cache=True, nogil=True, **options)(function)
    except RuntimeError:
        return numba.njit(nogil=True, **options)(function)

