"""Keep freed memory in the process instead of handing it back to the OS after every big tensor.

glibc serves blocks above a threshold (at most 32 MB by default) with ``mmap`` and unmaps them on
``free``; the next block of that size then faults in and zeroes every page again. A CPU forward pass
of a batch of ImageNet images allocates and frees activations of tens to hundreds of MB per layer,
and the evolve loop's genome batches are 50 MB, so a process can spend as long in page faults as in
arithmetic: on a 2-core VM, EfficientNet-Lite0 on 64 images took 4.9-5.1 s with the defaults and
2.2-2.5 s with the thresholds raised (same load). Raising glibc's mmap and trim thresholds keeps the
freed memory for reuse; the peak resident size stays about the same, it is only not given back
between generations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
HOLD_BYTES = 1 << 30  # blocks up to this size come from the heap; up to this much free memory is kept

_applied: bool | None = None


def keep_freed_memory(limit: int = HOLD_BYTES) -> bool:
    """Raise glibc's mmap and trim thresholds to ``limit`` bytes for this process (once); True if applied.

    Does nothing (and returns False) off glibc Linux or when the environment sets FOOLING_KEEP_MEMORY=0.
    Only allocations made after the call are affected.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("FOOLING_KEEP_MEMORY", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = mallopt(M_MMAP_THRESHOLD, limit) == 1 and mallopt(M_TRIM_THRESHOLD, limit) == 1
    return _applied
