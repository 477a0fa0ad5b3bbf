"""The transformation spec of EOT and survival: ``default`` or ``name[=value],...``.

Names (value: its default): crop=0.8 (random resized crop keeping 80-100 % of the area), flip
(horizontal, p = 0.5), rotate=10 (degrees, ±), jitter=0.1 (brightness and contrast ±; saturation
and hue too for colour images), noise=0.02 (Gaussian, std), jpeg=60 (JPEG quality drawn from
[value, 95], differentiable). ``default`` = crop, flip, rotate, jitter, noise.

The tokens ``fixed`` and ``fresh`` (not transforms) choose how EOT draws: ``fixed``, the same K
transforms for every image in every call (common random numbers), ``fresh``, new draws for every
batch; by default evolution draws fixed and gradient ascent, attacks and survival fresh
(:class:`fooling.objective.eot.EOT`), e.g. ``crop,rotate,fresh``.
"""

from __future__ import annotations

from typing import Optional

from ..errors import FoolingError

TRANSFORMS = {"crop": 0.8, "flip": 0.5, "rotate": 10.0, "jitter": 0.1, "noise": 0.02, "jpeg": 60.0}
DEFAULT = "crop,flip,rotate,jitter,noise"
FIXED, FRESH = "fixed", "fresh"
RANGES = {"crop": (0.05, 1.0), "flip": (0.0, 1.0), "rotate": (0.0, 180.0), "jitter": (0.0, 1.0),
          "noise": (0.0, 1.0), "jpeg": (1.0, 95.0)}


def parse_transforms(spec: str) -> list[tuple[str, float]]:
    """'default' or 'crop=0.8,flip,...' -> [(name, value)]; a one-line FoolingError for anything else."""
    text = (spec or "").strip()
    fixed_draws(text)
    if text in ("", "none"):
        raise FoolingError("--transforms is empty; give default or names such as crop,flip,rotate=10")
    items = []
    for token in (DEFAULT if text == "default" else text).split(","):
        token = token.strip()
        if not token or token in (FIXED, FRESH):
            continue
        if token == "default":
            items += parse_transforms("default")
            continue
        name, _, value = token.partition("=")
        name = name.strip()
        if name not in TRANSFORMS:
            raise FoolingError(f"unknown transform {name!r} in --transforms; choose from default, "
                               f"{', '.join(TRANSFORMS)}")
        try:
            number = float(value) if value.strip() else TRANSFORMS[name]
        except ValueError:
            raise FoolingError(f"--transforms: {name}={value!r} is not a number") from None
        low, high = RANGES[name]
        if not low <= number <= high:
            raise FoolingError(f"--transforms: {name} must be in [{low:g}, {high:g}], got {number:g}")
        items.append((name, number))
    if not items:
        raise FoolingError(f"--transforms {spec!r} names no transform; give default or names such as crop,rotate=10")
    return items


def fixed_draws(spec: str) -> Optional[bool]:
    """True if ``spec`` holds the token ``fixed``, False for ``fresh``, None for neither (see the module's
    docstring); both: a one-line FoolingError."""
    tokens = [t.strip() for t in (spec or "").split(",")]
    if FIXED in tokens and FRESH in tokens:
        raise FoolingError("--transforms: fixed and fresh exclude each other")
    return True if FIXED in tokens else False if FRESH in tokens else None


def check_spec(spec: str):
    """A settings check (None or the message) for a transformation spec."""
    try:
        parse_transforms(spec)
    except FoolingError as err:
        return f"is not a transformation spec: {err}"
    return None
