"""New files written past the page cache (``O_DIRECT``) where the file system takes it, then fsynced.

A busy ImageNet checkpoint writes a few hundred new blocks of 786 kB. Written through the page cache, each takes
fresh page-cache pages; on a virtual machine whose host takes back the guest's free memory, each such page first
faults on the host, and the kernel's copy cost 2.6-4.3 ms of CPU a block against 0.4 ms when the same blocks were
written again onto reused pages (an ImageNet run here, 350 blocks: 0.9-1.7 s against 0.13 s of CPU). With
``O_DIRECT`` the disk reads the bytes from one page-aligned buffer per thread, which stays mapped: no page-cache
page is taken at all. Blocks are written once and read back only when a run resumes, so they lose nothing by
staying out of the cache.

Only sizes that are a multiple of 4096 bytes go this way (a 256 px row is 786,432); a file system that refuses
``O_DIRECT`` (tmpfs, some network file systems) gets the plain write, and is not asked again.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path
from typing import Union

ALIGN = 4096  # offsets, sizes and buffer addresses for O_DIRECT: a multiple of any disk's logical block size
_local = threading.local()  # each writer thread's page-aligned buffer
_refused: set[str] = set()  # folders whose file system refused O_DIRECT


def write_synced(path: Union[Path, str], view: memoryview) -> None:
    """Create ``path`` with the bytes of ``view`` (C-contiguous, format "B") and fsync it."""
    if not _write_direct(str(path), view):
        with open(path, "wb") as f:
            f.write(view)
            f.flush()
            os.fsync(f.fileno())


def _buffer(size: int) -> memoryview:
    """This thread's page-aligned buffer, at least ``size`` bytes (anonymous mmap memory is page-aligned)."""
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        buf = _local.buf = mmap.mmap(-1, size)
    return memoryview(buf)[:size]


def _write_direct(path: str, view: memoryview) -> bool:
    """Write ``view`` to ``path`` with O_DIRECT and fsync it; False (nothing left behind) where it cannot."""
    size = view.nbytes
    folder = os.path.dirname(path)
    if not hasattr(os, "O_DIRECT") or size == 0 or size % ALIGN or folder in _refused:
        return False
    buf = _buffer(size)
    buf[:] = view
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        _refused.add(folder)
        return False
    try:
        done = 0
        while done < size:
            done += os.write(fd, buf[done:])
        os.fsync(fd)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        _refused.add(folder)  # opened but not written that way (alignment the device does not take)
        return False  # the caller rewrites the file (truncated) the plain way
    finally:
        os.close(fd)
    return True
