"""Where commands may write: never into a run directory, never over a file without ``--force``.

Used by ``fool transfer``, ``fool render`` and ``fool gallery`` before any work starts, so a
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
    return folder


def check_output_file(path: str | Path, force: bool, option: str = "--out") -> Path:
    """Check that the file ``path`` may be written: not a folder, not inside a run directory,
    not an existing file unless ``force``."""
    path = Path(path)
    if path.is_dir():
        raise FoolingError(f"{option} {path} is a folder; give a file name")
    run = enclosing_run(path.parent)
    if run is not None:
        raise FoolingError(f"{option} {path} is inside the run directory {run}; pick a place outside runs")
    if path.exists() and not force:
        raise FoolingError(f"{option} {path} already exists; pick another name or add --force to replace it")
    return path


def _terminal_rows(stream) -> int:
    """Rows of the terminal ``stream`` writes to; 0 when it is not a terminal (or one of unknown size)."""
    import os

    try:
        return os.get_terminal_size(stream.fileno()).lines if stream.isatty() else 0
    except (AttributeError, OSError, ValueError):
        return 0


class ItemProgress:
    """Progress over a known number of items (runs) on stderr, for long commands.

    On a terminal: a tqdm bar with rate and ETA. Otherwise (a log file, a pipe): one plain
    line per finished item with the elapsed time and an ETA, no carriage-return redraws.
    Nothing at all when ``quiet``. Call :meth:`done` after each item, :meth:`close` at the end.
    """

    def __init__(self, total: int, what: str, quiet: bool = False) -> None:
        import sys
        import time

        self.total, self.what, self.count = total, what, 0
        self.quiet = quiet
        self._clock = time.monotonic
        self._start = time.monotonic()
        self._stream = sys.stderr
        self._bar = None
        if not quiet and _terminal_rows(sys.stderr) > 0:  # tqdm draws nothing on a 0-row pseudo-terminal
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=what, file=sys.stderr, dynamic_ncols=True)

    def done(self, name: str) -> None:
        """One more item finished (``name``: shown in the line or beside the bar)."""
        self.count += 1
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(name[-40:], refresh=False)
            self._bar.update(1)
            return
        elapsed = self._clock() - self._start
        left = elapsed / self.count * (self.total - self.count)
        eta = f", about {left:.0f} s left" if self.count < self.total else ""
        print(f"[{self.count}/{self.total}] {self.what} {name} ({elapsed:.1f} s{eta})", file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ItemProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
