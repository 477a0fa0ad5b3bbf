"""New files written past the page cache (``O_DIRECT``) where the file system takes it, then fsynced.

A busy ImageNet checkpoint writes a few hundred new blocks of 786 kB. Written through the page cache, each takes
fresh page-cache pages; on a virtual machine whose host takes back the guest's free memory, each such page first
faults on the host, and the kernel's copy cost 2.6-4.9 ms of CPU a block against 0.4 ms when the same blocks were
written again onto reused pages (an ImageNet run here, 350 blocks: 0.9-1.7 s against 0.13 s of CPU). With
``O_DIRECT`` the disk reads the bytes from a page-aligned buffer that stays mapped for the process (one per
concurrent writer, reused by every checkpoint): no page-cache page is taken at all. Blocks are written once and
read back only when a run resumes, so they lose nothing by staying out of the cache.

Only sizes that are a multiple of 4096 bytes go this way (a 256 px row is 786,432); a file system that refuses
``O_DIRECT`` (tmpfs, some network file systems) gets the plain write, and is not asked again.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from pathlib import Path
from typing import Iterator, Union

ALIGN = 4096  # offsets, sizes and buffer addresses for O_DIRECT: a multiple of any disk's logical block size
_buffers: list[mmap.mmap] = []  # page-aligned buffers no writer holds now (kept: their pages stay backed)
_buffers_lock = threading.Lock()
_refused: set[str] = set()  # folders whose file system refused O_DIRECT


def write_synced(path: Union[Path, str], view: memoryview) -> None:
    """Create ``path`` with the bytes of ``view`` (C-contiguous, format "B") and fsync it."""
    if not _write_direct(str(path), view):
        with open(path, "wb") as f:
            f.write(view)
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def _buffer(size: int) -> Iterator[memoryview]:
    """A page-aligned buffer of ``size`` bytes (anonymous mmap memory is page-aligned) for the caller alone,
    taken from those kept and kept again after (a smaller one is replaced)."""
    with _buffers_lock:
        buf = _buffers.pop() if _buffers else None
    if buf is None or len(buf) < size:
        buf = mmap.mmap(-1, size)
    view = memoryview(buf)[:size]
    try:
        yield view
    finally:
        view.release()
        with _buffers_lock:
            _buffers.append(buf)


def _write_direct(path: str, view: memoryview) -> bool:
    """Write ``view`` to ``path`` with O_DIRECT and fsync it; False (nothing left behind) where it cannot."""
    size = view.nbytes
    folder = os.path.dirname(path)
    if not hasattr(os, "O_DIRECT") or size == 0 or size % ALIGN or folder in _refused:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        _refused.add(folder)
        return False
    try:
        with _buffer(size) as buf:
            buf[:] = view
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
