"""A labelled heatmap drawn with PIL: rows × columns of values in [0, 1], each cell printed.

Text is kept to ASCII: Pillow's built-in font has no arrows or maths signs.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from PIL import Image, ImageDraw

from .draw import font, format_confidence, ink_for, ramp, text_size

CELL_W, CELL_H, PAD = 190, 64, 16
LABEL, VALUE, NOTE, TITLE = 15, 20, 13, 18
MAX_NINES = 4  # the colour scale saturates at 99.99%
FRAME = (230, 85, 13)


def draw_heatmap(
    values: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    notes: Optional[Sequence[Sequence[str]]] = None,
    outlined: Optional[Sequence[Sequence[bool]]] = None,
    row_axis: str = "source",
    col_axis: str = "target",
    outline_note: str = "",
) -> Image.Image:
    """values[r][c] in [0, 1] (NaN: no data) -> an RGB image.

    Colour follows the "nines" of a value (see :func:`nines`), since the
    differences that matter for fooling images lie between 90% and 99.99%. Each
    cell shows its value as a percentage and, below it, ``notes[r][c]``; cells
    with ``outlined[r][c]`` get an orange frame, explained by ``outline_note``.
    """
    left = max([text_size(label, LABEL)[0] for label in row_labels] + [text_size(f"rows: {row_axis}", LABEL)[0]])
    left += 2 * PAD
    top = PAD + text_size(title, TITLE)[1] + PAD + text_size(col_axis, LABEL)[1] + 8 + 2 * (LABEL + 4) + 8
    cell_w = max([CELL_W] + [text_size(label, LABEL)[0] + 12 for label in col_labels])
    width = max(left + cell_w * len(col_labels) + PAD, text_size(title, TITLE)[0] + 2 * PAD,
                left + 320 + 100 + text_size(outline_note, NOTE)[0] + PAD)
    height = top + CELL_H * len(row_labels) + PAD + 44
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((PAD, PAD), title, fill="black", font=font(TITLE))
    y_axis = PAD + text_size(title, TITLE)[1] + PAD
    draw.text((left, y_axis), f"columns: {col_axis}", fill=(90, 90, 90), font=font(LABEL))
    draw.text((PAD, top - LABEL - 8), f"rows: {row_axis}", fill=(90, 90, 90), font=font(LABEL))
    for c, label in enumerate(col_labels):
        x = left + c * cell_w + cell_w // 2
        draw.text((x, top - 8), label, fill="black", font=font(LABEL), anchor="md")
    for r, label in enumerate(row_labels):
        y = top + r * CELL_H + CELL_H // 2
        draw.text((left - PAD, y), label, fill="black", font=font(LABEL), anchor="rm")
        for c in range(len(col_labels)):
            value = values[r][c]
            box = (left + c * cell_w, top + r * CELL_H, left + (c + 1) * cell_w - 1, top + (r + 1) * CELL_H - 1)
            missing = value is None or math.isnan(value)
            colour = (225, 225, 225) if missing else ramp(nines(value))
            draw.rectangle(box, fill=colour, outline="white")
            if outlined is not None and outlined[r][c]:
                draw.rectangle((box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2), outline=FRAME, width=3)
            ink = ink_for(colour)
            cx = (box[0] + box[2]) // 2
            draw.text((cx, box[1] + 24), "-" if missing else format_confidence(value), fill=ink,
                      font=font(VALUE), anchor="ms")
            if notes is not None and notes[r][c]:
                draw.text((cx, box[1] + 46), notes[r][c], fill=ink, font=font(NOTE), anchor="ms")
    _legend(draw, left, height - PAD - 30, 320)
    if outline_note:
        x = left + 320 + 70
        draw.rectangle((x, height - PAD - 32, x + 18, height - PAD - 18), outline=FRAME, width=3)
        draw.text((x + 26, height - PAD - 25), outline_note, fill="black", font=font(NOTE), anchor="lm")
    return image


def nines(value: float) -> float:
    """Position on the colour scale: 0 at 0%, 0.25 at 90%, 0.5 at 99%, 0.75 at 99.9%, 1 at >= 99.99%."""
    return min(max(-math.log10(max(1.0 - value, 1e-12)), 0.0), MAX_NINES) / MAX_NINES


def _legend(draw: ImageDraw.ImageDraw, x: int, y: int, length: int) -> None:
    """A colour bar at (x, y) with ticks at 0%, 90%, 99%, 99.9% and 99.99%."""
    for i in range(length):
        draw.line((x + i, y, x + i, y + 10), fill=ramp(i / max(1, length - 1)))
    for k, label in enumerate(["0%", "90%", "99%", "99.9%", "99.99%"]):
        tick = x + round(k / MAX_NINES * (length - 1))
        draw.line((tick, y + 10, tick, y + 13), fill="black")
        draw.text((tick, y + 14), label, fill="black", font=font(NOTE), anchor="ma")
