"""One process at a time per run directory: an exclusive ``fcntl`` lock on ``RUN_DIR/.lock``.

The lock file holds the PID of the process working on the run. The kernel drops the
lock when that process ends, however it ends (even SIGKILL), so a stale ``.lock``
file never blocks anyone: only a held lock does. Readers (``fool gallery``,
``fool transfer``, a future ``fool runs``) ask :func:`lock_holder` whether a run is live.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional

from ..errors import FoolingError

try:  # POSIX only; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _read_pid(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunLock:
    """An exclusive lock on one run directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        """Take the lock (a no-op if this object holds it); a :class:`FoolingError` naming the holder if taken."""
        if self._fd is not None or fcntl is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            pid = _read_pid(self.path)
            holder = f"process {pid}" if pid is not None else "another process"
            raise FoolingError(f"{self.run_dir} is in use by {holder}; wait for it to finish or stop it first") \
                from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the .lock file stays: removing it would race with a process about to lock it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # the kernel would drop it at exit anyway; this frees it with the object
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def lock_holder(run_dir: str | Path) -> Optional[int]:
    """The PID of the process working on ``run_dir`` now (0 if it could not be read), or None if the run is not live.

    Never blocks and never takes the lock for longer than the test itself.
    """
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(path)
            return pid if pid is not None else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def is_live(run_dir: str | Path) -> bool:
    """True while some process holds ``run_dir``'s lock (a run in progress)."""
    return lock_holder(run_dir) is not None
