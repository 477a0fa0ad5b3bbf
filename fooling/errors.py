"""The one exception type for user mistakes: the CLI prints it as a single line."""

import math


class FoolingError(Exception):
    """A problem the user can fix (bad name, bad budget, missing file).

    The command line prints ``Error: <message>`` and exits with status 1, never a
    traceback. Library callers can catch it like any other exception.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none (for one-line reports)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a one-line message: cut to ``limit`` characters with "...", and a huge int named by its
    size (its str() raises a ValueError past 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**24:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"a {'negative ' if value < 0 else ''}number of about {digits:,} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
