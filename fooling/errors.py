"""The one exception type for user mistakes: the CLI prints it as a single line."""


class FoolingError(Exception):
    """A problem the user can fix (bad name, bad budget, missing file).

    The command line prints ``Error: <message>`` and exits with status 1, never a
    traceback. Library callers can catch it like any other exception.
    """
