"""Which of its two code paths the hot loop takes for a device: host work or device kernels.

On the CPU every tensor is already in host memory, so the loop does its small bookkeeping there: it finds
positions with numpy, draws random numbers only for the genes that change, copies big rows one by one and keeps
the archive's books on numpy views. On a GPU the same steps stay on the device: dense draws, masked selections
and indexed kernels, with no host synchronisation. Both paths make the same choices from the same numbers (the
archive, the ranks, the row copies) or draw from the same distributions (the variation operators).

:data:`HOST_DEVICES` is the one place that says which devices take the host path. The tests empty it to run the
device path, what CUDA runs, on the CPU (``tests/test_hostwork.py``).

:func:`host_threads` is how many intra-op threads that host work gets: one, for small images; :func:`split` runs
a piece of host work that releases the GIL (a compiled kernel, numpy's ufuncs) over that many Python threads.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Optional, TypeVar

import numpy as np
import torch

T = TypeVar("T")

HOST_DEVICES: tuple[str, ...] = ("cpu",)  # device types whose loop does its bookkeeping on the host


def on_host(device: torch.device | str) -> bool:
    """True where the loop's bookkeeping for tensors on ``device`` runs on the host (the CPU)."""
    return torch.device(device).type in HOST_DEVICES


# values in a generation's images below which its host work runs on one intra-op thread: torch splits an
# element-wise op over more than 32,768 values across its threads, and waking them costs more than such an op
# takes alone below about a million (80-115 µs per op with OMP_WAIT_POLICY=PASSIVE on the 2-core bench machine,
# against 5-20 µs for an op on MNIST's 200 x 784 values on one thread)
SMALL_WORK = 1 << 20


@contextlib.contextmanager
def host_threads(device: torch.device | str, values: int) -> Iterator[None]:
    """Within: one intra-op thread for host work on ``device`` whose tensors hold at most ``values`` values
    (a generation's images) when that is below :data:`SMALL_WORK`; otherwise the threads as they are. The
    previous count is restored on exit. The loop's bookkeeping is element-wise ops, gathers, scatters and small
    batched products whose values do not depend on the thread count (``tests/test_hostwork.py`` checks a run
    against one on two threads); the forward pass outside keeps every thread."""
    threads = torch.get_num_threads()
    if threads == 1 or values >= SMALL_WORK or not on_host(device):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process, thread count): a forked child makes its own


def split(call: Callable[[int, int], T], n: int, values: int, min_values: int,
          threads: Optional[int] = None) -> list[T]:
    """``[call(start, stop), ...]`` over ranges that cut ``range(n)`` in order, run at once (``call`` must
    release the GIL to gain): as many as ``threads`` (default: PyTorch's intra-op count, so one inside
    :func:`host_threads`'s small work), at most one per ``min_values`` of the work's ``values``."""
    threads = min(threads or torch.get_num_threads(), n, max(1, values // min_values))
    if threads <= 1:
        return [call(0, n)]
    key = (os.getpid(), threads)
    pool = _pools.get(key) or _pools.setdefault(key, ThreadPoolExecutor(threads, "fooling-host"))
    bounds = np.linspace(0, n, threads + 1).astype(int).tolist()
    return list(pool.map(call, bounds[:-1], bounds[1:]))
