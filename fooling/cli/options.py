"""Small helpers shared by the commands."""

from __future__ import annotations

from typing import Optional

import click


def split_names(value: Optional[str]) -> Optional[list[str]]:
    """'a,b , c' -> ['a', 'b', 'c']; None stays None."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter("give at least one name")
    return names


def class_indices(spec: Optional[str], model: str) -> Optional[list[int]]:
    """--classes SPEC (names, indices, ranges: :func:`fooling.classes.parse_classes`) read against ``model``'s
    labels; None stays None."""
    if spec is None:
        return None
    from ..classes import parse_classes
    from ..classifiers import get_spec, load_classifier

    get_spec(model)  # an unknown model: one line before anything loads
    return parse_classes(spec, load_classifier(model, "cpu").labels)


def target_index(value: Optional[str], model: str) -> Optional[int]:
    """--target CLASS (an index or one name) read against ``model``'s labels; None stays None."""
    if value is None:
        return None
    if str(value).strip().lstrip("-").isdigit():
        return int(value)
    classes = class_indices(str(value), model)
    if not classes or len(classes) != 1:
        from ..errors import FoolingError

        raise FoolingError(f"--target must name one class, got {value!r}")
    return classes[0]
