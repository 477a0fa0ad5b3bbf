"""Every file-system change a run makes to its directory goes through here.

Files are replaced atomically: written to a temporary name unique to this process
(``.<name>.<pid>.tmp``), optionally fsynced, then ``os.replace``d over the old one,
so a reader or a crash only ever sees the old file or the new one.

:func:`fault_point` is called before each step (create a temp file, replace, remove,
append). It is the single place where fault-injection tests crash a run: they
monkeypatch it, or set ``FOOLING_FAULT_AT_WRITE=N`` so that the process exits
(``os._exit``, like a SIGKILL) just before its N-th step (see scripts/fault_injection.py).
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import BinaryIO, Callable, Union

FAULT_ENV = "FOOLING_FAULT_AT_WRITE"
FAULT_EXIT = 86  # exit status of a process stopped by FOOLING_FAULT_AT_WRITE
TMP_NAME = re.compile(r"^\..+\.(?:\d+\.)?tmp$")  # what tmp_path makes (and the older shared ``.<name>.tmp``)

_steps = itertools.count(1)  # next() is atomic: a checkpoint's save thread and the main thread both count


def fault_point(step: str) -> None:
    """Called before every file-system step; exits at once at step ``$FOOLING_FAULT_AT_WRITE`` (testing hook)."""
    count = next(_steps)
    at = os.environ.get(FAULT_ENV)
    if at and count == int(at):
        os._exit(FAULT_EXIT)


def tmp_path(path: Path) -> Path:
    """``.<name>.<pid>.tmp`` next to ``path``: two processes never share a temporary file."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write(path: Path, data: Union[bytes, str, Callable[[BinaryIO], None]], durable: bool = False) -> None:
    """Replace ``path`` atomically by ``data`` (bytes, text, or a function writing to a binary file).

    durable: fsync the file before the replace and the folder after it (checkpoints).
    """
    path = Path(path)
    fault_point(f"write {path}")
    tmp = tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        fault_point(f"replace {path}")
        os.replace(tmp, path)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        sync_folder(path.parent)


def append(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` (one write call)."""
    fault_point(f"append {path}")
    with open(path, "a") as f:
        f.write(text)


def remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    fault_point(f"remove {path}")
    Path(path).unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that renames in it survive a power cut (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def remove_stale_tmp(folder: Path) -> int:
    """Delete temporary files a killed writer left in ``folder`` (call only while holding the run's lock)."""
    removed = 0
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and TMP_NAME.match(path.name):
                path.unlink(missing_ok=True)
                removed += 1
    return removed
