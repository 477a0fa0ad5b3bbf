"""A contact sheet like the paper's Figure 1: each image with its label and confidence underneath."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw

from ..analysis.draw import font, format_confidence, text_size

LABEL, CONF, GAP = 15, 13, 12


def tile_size(width: int, height: int) -> int:
    """Side of a tile: small images (MNIST) are upscaled to 112 px, large ones shown at up to 160 px."""
    side = max(width, height)
    return 112 if side <= 64 else min(side, 160)


def contact_sheet(
    images: Sequence[Image.Image],
    labels: Sequence[str],
    confidences: Sequence[float],
    title: str = "",
    columns: int = 0,
) -> Image.Image:
    """Tile ``images`` in a grid, each with ``label`` and its confidence underneath; returns an RGB image.

    columns: 0 picks 5 for up to 10 images, else 8. Small images are upscaled
    with nearest-neighbour so their pixels stay sharp.
    """
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    columns = columns or (5 if len(images) <= 10 else 8)
    side = tile_size(*images[0].size)
    label_w = max(text_size(label, LABEL)[0] for label in labels)
    cell_w = max(side, min(label_w, 2 * side)) + GAP
    cell_h = side + LABEL + CONF + 14 + GAP
    rows = -(-len(images) // columns)
    top = GAP + (text_size(title, LABEL + 2)[1] + GAP if title else 0)
    width = max(columns * cell_w + GAP, text_size(title, LABEL + 2)[0] + 2 * GAP if title else 0)
    sheet = Image.new("RGB", (width, top + rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((GAP, GAP), title, fill="black", font=font(LABEL + 2))
    for i, (image, label, confidence) in enumerate(zip(images, labels, confidences)):
        x = GAP + (i % columns) * cell_w
        y = top + (i // columns) * cell_h
        scale = side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resample = Image.NEAREST if scale >= 1 else Image.LANCZOS
        tile = image.convert("RGB").resize(size, resample)
        sheet.paste(tile, (x + (cell_w - GAP - size[0]) // 2, y))
        cx = x + (cell_w - GAP) // 2
        draw.text((cx, y + side + 4), _fit(label, cell_w - 4), fill="black", font=font(LABEL), anchor="ma")
        draw.text((cx, y + side + LABEL + 8), format_confidence(confidence), fill=(70, 70, 70), font=font(CONF),
                  anchor="ma")
    return sheet


def _fit(text: str, width: int) -> str:
    """``text`` shortened with '...' until it is at most ``width`` px wide."""
    if text_size(text, LABEL)[0] <= width:
        return text
    while len(text) > 1 and text_size(text + "...", LABEL)[0] > width:
        text = text[:-1]
    return text + "..."
