"""Where the project keeps trained weights (the user cache, overridable by $FOOLING_CACHE), checks on the folders a
command writes to, and the SHA-256 of a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .errors import FoolingError

# Kernel file systems: nothing the user makes belongs under them, even where root may create files.
SYSTEM_ROOTS = ("/proc", "/sys", "/dev")


def _make_dir(path: Path, what: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FoolingError(f"cannot make {what} {path}: {err.strerror or err}") from None
    return path


def cache_dir() -> Path:
    """Return (and create) the cache folder: ``$FOOLING_CACHE``, else ``$XDG_CACHE_HOME/fooling``."""
    root = os.environ.get("FOOLING_CACHE")
    if root:
        path = Path(root).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "fooling"
    return _make_dir(path, "the cache folder ($FOOLING_CACHE)")


def models_dir() -> Path:
    """Folder of trained networks (``<name>.pt`` state dicts + ``<name>.json`` metadata)."""
    return _make_dir(cache_dir() / "models", "the models folder")


def check_writable_dir(path: str | os.PathLike) -> None:
    """Raise :class:`FoolingError` unless ``path`` is, or can be made, a folder this process can write in.

    Refuses a path under a file, a path under /proc, /sys or /dev, and a folder whose nearest existing
    ancestor cannot be written (tried with a probe file that is removed at once). Creates nothing.
    """
    given = os.fspath(path)
    if not given:
        raise FoolingError("an output folder cannot be an empty path")
    absolute = Path(os.path.abspath(os.path.expanduser(given)))
    for candidate in (absolute, Path(os.path.realpath(absolute))):  # also through symbolic links
        for root in SYSTEM_ROOTS:
            if candidate == Path(root) or Path(root) in candidate.parents:
                raise FoolingError(f"{given} lies under {root}, a system folder; choose a folder of your own")
    existing = absolute
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir():
        if existing == absolute:
            raise FoolingError(f"{given} is a file, not a folder")
        raise FoolingError(f"{given} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FoolingError(f"{given} cannot be made: no permission to write in {existing}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fooling-probe-", dir=existing)
    except OSError as err:
        raise FoolingError(f"{given} cannot be made: cannot write in {existing} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(probe)


def not_a_run_directory(path: str | os.PathLike) -> FoolingError:
    """The one-line error for a run directory that is no folder: missing, or a file."""
    why = "a file, not a folder" if Path(path).exists() else "no such folder"
    return FoolingError(f"{path} is not a run directory ({why})")


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
