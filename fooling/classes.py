"""Class specs on the command line: ``"king penguin,goldfish"``, ``"0-9"``, ``"3,7,10-12"``, ``"all"``."""

from __future__ import annotations

import difflib
import re
from typing import Sequence

from .errors import FoolingError

_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")


def _index(value: int, labels: Sequence[str]) -> int:
    if not 0 <= value < len(labels):
        raise FoolingError(f"class {value} does not exist: the classes are 0-{len(labels) - 1}")
    return value


def _unknown(token: str, labels: Sequence[str]) -> FoolingError:
    """The error for a name no class has, suggesting close or containing names."""
    lowered = [label.lower() for label in labels]
    word = re.compile(rf"\b{re.escape(token.lower())}\b")
    close = [label for label in lowered if word.search(label)][:3]
    close += [c for c in difflib.get_close_matches(token.lower(), lowered, n=3, cutoff=0.6) if c not in close]
    close = close[:3]
    hint = f"; did you mean {', '.join(repr(labels[lowered.index(c)]) for c in close)}?" if close else ""
    return FoolingError(f"unknown class {token!r}{hint}")


def parse_classes(spec: str, labels: Sequence[str]) -> list[int]:
    """Class indices named by ``spec``: comma-separated names (any case), indices and ranges ``a-b``.

    A token that is exactly a class name wins over reading it as a number or a
    range (MNIST's labels are the digits themselves). ``"all"`` means every class.
    The result keeps the order given, without repeats. Unknown or ambiguous names
    and out-of-range indices raise :class:`FoolingError`.
    """
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens:
        raise FoolingError("--classes is empty; give names, indices or ranges such as 0-9")
    by_name: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_name.setdefault(label.lower(), []).append(i)
    chosen: list[int] = []
    for token in tokens:
        named = by_name.get(token.lower())
        if named is not None:
            if len(named) > 1:
                raise FoolingError(f"{token!r} names several classes ({', '.join(map(str, named))}); give the index")
            chosen.append(named[0])
        elif token.lower() == "all":
            chosen.extend(range(len(labels)))
        elif token.isdigit():
            chosen.append(_index(int(token), labels))
        elif (m := _RANGE.fullmatch(token)) is not None:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise FoolingError(f"range {token!r} runs backwards; write {hi}-{lo}")
            chosen.extend(_index(k, labels) for k in range(lo, hi + 1))
        else:
            raise _unknown(token, labels)
    return list(dict.fromkeys(chosen))
