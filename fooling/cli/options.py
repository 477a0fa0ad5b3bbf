"""Small helpers shared by the commands."""

from __future__ import annotations

from typing import Any, Optional

import click

from .generated import set_wins


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


def class_options(options: dict[str, Any], class_spec: Optional[str], target: Optional[str]
                  ) -> tuple[Optional[str], Optional[str]]:
    """--classes and --target as given: ``--set classes=`` / ``target=`` (taken out of ``options``) win over them,
    as --set wins everywhere, and are read the same way (names, indices, ranges)."""
    return set_wins(options, "classes", class_spec), set_wins(options, "target", target)


def resolve_class_options(values: dict[str, Any], model: str, class_spec: Optional[str],
                          target: Optional[str]) -> None:
    """Put --classes and --target into ``values`` as indices, names read against ``model`` (a model file with
    the --input, --mean, --std and --labels in ``values``)."""
    if class_spec is None and target is None:
        return
    from ..classifiers.sources import canonical_name, is_source

    if is_source(model):  # a model file: its labels may come from --labels
        model = canonical_name(model, **{k: values.get(k) for k in ("input", "mean", "std", "labels")})
    if class_spec is not None:
        values["classes"] = class_indices(class_spec, model)
    if target is not None:
        values["target"] = target_index(target, model)
