"""Drawing helpers shared by the contact sheet and the heatmap: fonts, colours, number formats."""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal, localcontext
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# A light-to-dark yellow-green-blue ramp (ColorBrewer YlGnBu), for values in [0, 1].
RAMP = [(255, 255, 217), (237, 248, 177), (199, 233, 180), (127, 205, 187), (65, 182, 196),
        (29, 145, 192), (34, 94, 168), (37, 52, 148), (8, 29, 88)]


@lru_cache(maxsize=None)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` px (the bitmap default on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def text_size(text: str, size: int) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` drawn at ``size``."""
    left, top, right, bottom = ImageDraw.Draw(_scratch()).textbbox((0, 0), text, font=font(size))
    return right - left, bottom - top


@lru_cache(maxsize=1)
def _scratch() -> Image.Image:
    return Image.new("L", (1, 1))


def ramp(value: float) -> tuple[int, int, int]:
    """The colour of ``value`` in [0, 1] on :data:`RAMP`, linearly interpolated."""
    x = min(max(value, 0.0), 1.0) * (len(RAMP) - 1)
    i = min(int(x), len(RAMP) - 2)
    t = x - i
    return tuple(round(a + (b - a) * t) for a, b in zip(RAMP[i], RAMP[i + 1]))  # type: ignore[return-value]


def ink_for(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background``."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def format_confidence(confidence: float) -> str:
    """A probability as a percentage, cut (never rounded up) to 2 decimals, with more while they are all nines and
    the cut is not exact, up to 6: 0.9999971 -> '99.9997%', 0.99986 -> '99.98%' (not '99.99%', a threshold it has
    not reached), 0.9999 -> '99.99%'. Any number formats, also one a hand edit left outside [0, 1]."""
    try:
        value = float(confidence)
    except OverflowError:  # an integer beyond floats
        value = math.inf if confidence > 0 else -math.inf
    if value >= 1.0:
        return "100%"
    if not math.isfinite(value):
        return f"{100 * value}%"
    with localcontext() as context:
        context.prec = 400  # every digit of any float to 6 decimals (28, the default, fails from -1e26 down)
        # the digits a reader sees in the value, no binary tail; a float32's own (networks score in float32: its
        # 0.9 is 0.899999976 as a float64, and would read 89.99%)
        with np.errstate(over="ignore"):  # -1e300 is no float32: -inf, not equal, so the float64 digits
            single = np.float32(value)
        percent = Decimal(str(single) if float(single) == value else repr(value)) * 100
        digits = 2
        cut = percent.quantize(Decimal(1).scaleb(-digits), ROUND_FLOOR)
        while digits < 6 and cut == 100 - Decimal(1).scaleb(-digits) and cut != percent:
            digits += 1
            cut = percent.quantize(Decimal(1).scaleb(-digits), ROUND_FLOOR)
    return f"{cut}%"
