"""Progress of a long command on stderr: position, ETA, rate and the current median/best confidence.

On a terminal a tqdm bar is redrawn in place, fitted to the terminal's width (the ETA comes
first, so a narrow terminal trims the bar and the extras, not the ETA). Anywhere else (a log
file, a pipe, CI) there are no ``\\r`` redraws: one plain line every ``every`` seconds
(default 30, or ``$FOOLING_PROGRESS_EVERY``) and a final line when the display closes.

One class serves every loop: ``fool evolve`` (generations), ``fool ascend`` (steps),
``fool train`` and ``fool retrain`` (epochs). :func:`continued` makes the Progress objects
created inside it share one display, for a loop that runs in segments (``fool retrain``
evolves each run a snapshot interval at a time). :class:`ItemProgress` counts finished items (runs)
for ``fool transfer`` and ``fool gallery``: the same bar on a terminal, one line per item elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable, Iterator, Optional, TextIO

from tqdm import tqdm

EVERY_ENV = "FOOLING_PROGRESS_EVERY"
DEFAULT_EVERY = 30.0  # seconds between plain lines when stderr is not a terminal
REDRAW = 0.2  # seconds between terminal redraws


def plain_every() -> float:
    """Seconds between plain progress lines: ``$FOOLING_PROGRESS_EVERY`` or 30."""
    value = os.environ.get(EVERY_ENV)
    try:
        return max(0.0, float(value)) if value else DEFAULT_EVERY
    except ValueError:
        return DEFAULT_EVERY


def _clock(seconds: float) -> str:
    return tqdm.format_interval(max(0.0, seconds))


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _terminal_rows(stream: TextIO) -> int:
    """Rows of the terminal ``stream`` writes to; 0 when it is not a terminal (or one of unknown size)."""
    try:
        return os.get_terminal_size(stream.fileno()).lines if stream.isatty() else 0
    except (AttributeError, OSError, ValueError):
        return 0


class Progress:
    """Shows ``unit`` ``position``/``total`` with an ETA; silent when ``enabled`` is False.

    total: the last position (e.g. the last generation); start: the position the loop resumes
    from (the ETA counts only work done here). every: seconds between plain lines (None: the
    environment's or 30). ncols: terminal width (None: follow the terminal). clock: the time
    source of plain lines (tests inject a fake one). cells_label names ``covered/cells``.
    """

    def __init__(self, total: int, start: int = 0, enabled: bool = True, stream: Optional[TextIO] = None,
                 every: Optional[float] = None, *, unit: str = "gen", cells_label: str = "coverage",
                 ncols: Optional[int] = None, clock: Callable[[], float] = time.monotonic,
                 tty: Optional[bool] = None) -> None:
        self.total, self.start, self.enabled = total, start, enabled
        self.unit, self.cells_label = unit, cells_label
        self.stream = stream if stream is not None else sys.stderr
        self.every = plain_every() if every is None else every
        self.clock = clock
        self.tty = _is_tty(self.stream) if tty is None else tty
        self.ncols = ncols
        self.position = start
        self._evals = 0
        self._extra = ""
        self._bar: Optional[tqdm] = None
        self._closed = False
        shared = _SHARED[-1] if _SHARED else None
        if shared is not None and shared.total == total and shared.unit == unit and not shared._closed:
            self._parent: Optional[Progress] = shared  # continue the display of an earlier segment
            return
        self._parent = None
        self._t0 = clock()
        self._last_line = self._t0
        self._printed_at: Optional[int] = None
        if enabled and self.tty:
            self._bar = tqdm(total=total, initial=start, file=self.stream, unit=unit, smoothing=0,
                             mininterval=REDRAW, dynamic_ncols=ncols is None, ncols=ncols, leave=True,
                             bar_format="{desc}{n_fmt}/{total_fmt} ETA {remaining} [{elapsed}]{postfix} {bar}",
                             desc=f"{unit} ")
        if enabled and _SHARED and _SHARED[-1] is None:
            _SHARED[-1] = self

    # --- reporting -------------------------------------------------------------------------------
    def update(self, generation: int, evaluations: int, covered: int, cells: int, median: float, best: float,
               force: bool = False) -> None:
        """Position ``generation`` reached, ``evaluations`` more images scored, ``covered`` of ``cells`` filled."""
        parts = [f"median {median:.4f} best {best:.5f}"]
        if cells:
            parts.append(f"{self.cells_label} {covered}/{cells}")
        self.advance(generation, evaluations, " | ".join(parts), force)

    def advance(self, position: int, evaluations: int = 0, extra: str = "", force: bool = False) -> None:
        """Move to ``position``; ``extra`` is shown after the ETA (e.g. 'loss 0.0312')."""
        if self._parent is not None:
            self._parent.advance(position, evaluations, extra, force)
            return
        if not self.enabled or self._closed:
            return
        self._evals += evaluations
        self.position = position
        self._extra = extra
        now = self.clock()
        if self._bar is not None:
            rate = self._rate(now)
            self._bar.set_postfix_str(" | ".join(x for x in (extra, rate) if x), refresh=False)
            self._bar.update(position - self._bar.n)
            if force:
                self._bar.refresh()
        elif force or now - self._last_line >= self.every:
            self._write_line(now)

    def _rate(self, now: float) -> str:
        elapsed = now - self._t0
        if not self._evals or elapsed <= 0:
            return ""
        return f"{self._evals / elapsed:,.0f} evals/s"

    def line(self, now: Optional[float] = None) -> str:
        """The plain status line: 'gen 50/200 | ETA 0:30 | elapsed 0:10 | median … | 3,000 evals/s'."""
        now = self.clock() if now is None else now
        elapsed = now - self._t0
        done = self.position - self.start
        eta = _clock(elapsed / done * (self.total - self.position)) if done > 0 else "?"
        parts = [f"{self.unit} {self.position}/{self.total}", f"ETA {eta}", f"elapsed {_clock(elapsed)}"]
        parts += [p for p in (self._extra, self._rate(now)) if p]
        return " | ".join(parts)

    def _write_line(self, now: float) -> None:
        self.stream.write(self.line(now) + "\n")
        self.stream.flush()
        self._last_line = now
        self._printed_at = self.position

    def close(self) -> None:
        """End the display: the bar stays on screen; a plain stream gets a final line."""
        if self._parent is not None or self._closed:
            return
        if _SHARED and _SHARED[-1] is self:
            return  # a segment of a continued display: :func:`continued` closes it
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.refresh()
            self._bar.close()
        elif self._printed_at != self.position or self.position == self.start:
            self._write_line(self.clock())


_SHARED: list[Optional[Progress]] = []


@contextlib.contextmanager
def continued() -> Iterator[None]:
    """Progress objects created inside share the first one's display, closed when the block ends."""
    _SHARED.append(None)
    try:
        yield
    finally:
        first = _SHARED.pop()
        if first is not None:
            first._finish()


class ItemProgress:
    """Progress over a known number of items (runs) on stderr, for long commands.

    On a terminal: the :class:`Progress` bar (position, ETA, the last item's name). Otherwise (a log
    file, a pipe): one plain line per finished item with the elapsed time and an ETA, no carriage-return
    redraws. Nothing at all when ``quiet``. Call :meth:`done` after each item, :meth:`close` at the end.
    """

    def __init__(self, total: int, what: str, quiet: bool = False, stream: Optional[TextIO] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.what, self.count = total, what, 0
        self.quiet = quiet
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._start = clock()
        self._bar: Optional[Progress] = None
        if not quiet and _terminal_rows(self._stream) > 0:  # tqdm draws nothing on a 0-row pseudo-terminal
            self._bar = Progress(total, stream=self._stream, unit=what, clock=clock, tty=True)

    def done(self, name: str) -> None:
        """One more item finished (``name``: shown in the line or beside the bar)."""
        self.count += 1
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.advance(self.count, extra=name[-40:], force=self.count == self.total)
            return
        elapsed = self._clock() - self._start
        left = elapsed / self.count * (self.total - self.count)
        eta = f", about {left:.0f} s left" if self.count < self.total else ""
        self._stream.write(f"[{self.count}/{self.total}] {self.what} {name} ({elapsed:.1f} s{eta})\n")
        self._stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ItemProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
