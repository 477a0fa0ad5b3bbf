"""A one-line progress display on stderr: generation, evals/s, coverage, median/best, ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Redraws one status line at most ``every`` seconds; silent when ``enabled`` is False."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True, stream: TextIO = sys.stderr,
                 every: float = 0.2) -> None:
        self.total, self.start, self.enabled, self.stream, self.every = total, start, enabled, stream, every
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._evals = 0

    def update(self, generation: int, evaluations: int, covered: int, cells: int, median: float, best: float,
               force: bool = False) -> None:
        if not self.enabled:
            return
        self._evals += evaluations
        now = time.perf_counter()
        if not force and now - self._last < self.every:
            return
        self._last = now
        elapsed = now - self._t0
        done = generation - self.start
        rate = self._evals / elapsed if elapsed > 0 else 0.0
        eta = elapsed / done * (self.total - generation) if done > 0 else 0.0
        line = (f"gen {generation}/{self.total} | {rate:,.0f} evals/s | coverage {covered}/{cells} | "
                f"median {median:.4f} best {best:.5f} | ETA {_clock(eta)}")
        self.stream.write("\r" + line.ljust(100))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
