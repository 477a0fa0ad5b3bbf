"""The one exception type for user mistakes: the CLI prints it as a single line."""


class FoolingError(Exception):
    """A problem the user can fix (bad name, bad budget, missing file).

    The command line prints ``Error: <message>`` and exits with status 1, never a
    traceback. Library callers can catch it like any other exception.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none (for one-line reports)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
