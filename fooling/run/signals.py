"""Stop signals: route SIGINT, SIGTERM and SIGHUP to a handler for a run's lifetime."""

from __future__ import annotations

import signal
import threading
from typing import Any

_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def install_stop_handlers(handler) -> list[tuple[int, Any]]:
    """Route SIGINT, SIGTERM and SIGHUP to ``handler``; returns the previous handlers (none off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [(sig, signal.signal(sig, handler)) for sig in _STOP_SIGNALS]


def restore_handlers(previous: list[tuple[int, Any]]) -> None:
    """Put back the handlers :func:`install_stop_handlers` returned."""
    for sig, handler in previous:
        signal.signal(sig, handler)
