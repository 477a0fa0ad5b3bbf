"""Where commands may write: never into a run directory, never over a file without ``--force``.

Used by ``fool transfer``, ``fool render``, ``fool plot`` and ``fool gallery`` before any work starts, so a
bad ``--out`` costs the user one ``Error: ...`` line and nothing they made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from .errors import FoolingError


def is_run_directory(path: Path) -> bool:
    """A folder written by ``fool evolve`` / ``ascend`` / ``retrain`` (it holds config.json)."""
    return path.is_dir() and (path / "config.json").is_file()


def enclosing_run(path: str | Path) -> Optional[Path]:
    """The run directory that ``path`` is (or lies inside), if any: ``path`` and its ancestors are checked."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if is_run_directory(folder):
            return folder
    return None


def run_holding(path: str | Path) -> Optional[Path]:
    """The run directory a file written at ``path`` would land in, if any: its folder's, or (``path`` being a
    symbolic link, which a write follows) its target's."""
    path = Path(path)
    return enclosing_run(path.parent) or enclosing_run(path.resolve().parent)


def check_output_folder(folder: str | Path, files: Iterable[str], force: bool, option: str = "--out") -> Path:
    """Check that ``files`` may be written into ``folder`` (created later if missing).

    A :class:`FoolingError` if ``folder`` is a file, is or lies inside a run directory, or
    already holds one of ``files`` (unless ``force``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FoolingError(f"{option} {folder} is a file, not a folder")
    run = enclosing_run(folder)
    if run is not None:
        raise FoolingError(f"{option} {folder} is inside the run directory {run}; pick a folder outside runs")
    taken = [name for name in files if (folder / name).exists()]
    if taken and not force:
        raise FoolingError(f"{option} {folder} already holds {', '.join(taken)}; "
                           "pick another folder or add --force to replace them")
    for name in taken:
        if (folder / name).is_dir():
            raise FoolingError(f"{folder / name} is a folder; it is not replaced even with --force")
        run = run_holding(folder / name)  # a link to a file of a run: --force wrote through it
        if run is not None:
            raise FoolingError(f"{folder / name} leads into the run directory {run}; it is not replaced even "
                               "with --force")
    return folder


def check_output_file(path: str | Path, force: bool, option: str = "--out", suffixes: Iterable[str] = (),
                      reads: Iterable[str | Path] = ()) -> Path:
    """Check that the file ``path`` may be written: not a folder, not inside a run directory, not one of the
    files the command ``reads`` (even with ``force``), not an existing file unless ``force``; ending with one
    of ``suffixes`` (any when empty)."""
    path = Path(path)
    suffixes = tuple(suffixes)
    if suffixes and path.suffix.lower() not in suffixes:
        raise FoolingError(f"{option} must end with {' or '.join(suffixes)}, got {path}")
    if path.is_dir():
        raise FoolingError(f"{option} {path} is a folder; give a file name")
    if path.exists() and any(path.resolve() == Path(r).resolve() for r in reads):
        raise FoolingError(f"{option} {path} is the file this reads; it is not replaced, even with --force")
    run = run_holding(path)  # a link to an elite's PNG: --force wrote through it
    if run is not None:
        where = "is inside" if enclosing_run(path.parent) else "is a link into"
        raise FoolingError(f"{option} {path} {where} the run directory {run}; pick a place outside runs")
    if path.exists() and not force:
        raise FoolingError(f"{option} {path} already exists; pick another name or add --force to replace it")
    return path
