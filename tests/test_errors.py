"""fooling.errors: the one-line error's helpers."""

from fooling.errors import first_line, shown


def test_shown():
    assert shown("abc") == "'abc'" and shown(7) == "7" and shown(True) == "True"
    assert shown("x" * 100) == "'" + "x" * 76 + "..." and len(shown("x" * 100, limit=20)) == 20
    assert shown(10**5000) == "a number of about 5,001 digits" and shown(-10**30).startswith("a negative number")


def test_first_line():
    assert first_line(ValueError("one\ntwo")) == "one" and first_line(KeyError()) == "KeyError"
