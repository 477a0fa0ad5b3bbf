"""How a CPPN's outputs become an image: the :class:`Style` (coordinates, colour, native size), the
input coordinates at every pixel, and the colour map from output values to pixel values."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import torch

from ...imaging import hls_to_rgb

COORDS = ("scaled", "pixel")
COLOURS = ("grey", "hls", "rgb")


@dataclass(frozen=True)
class Style:
    """How a genome's outputs become an image.

    coords: "scaled" (x, y in [-1, 1]) or "pixel" (x, y = raw pixel indices of the
    ``size`` grid, the original's quirk; d is in [-1, 1] either way).
    colour: "grey" (1 output, |v|), "hls" (3 outputs read as H, L, S = |v|, then RGB)
    or "rgb" (3 outputs, R, G, B = |v|).
    size: (H, W) the genome was evolved at; other sizes redraw the same picture.
    """

    coords: str
    colour: str
    size: tuple[int, int]

    def __post_init__(self) -> None:
        if self.coords not in COORDS:
            raise ValueError(f"CPPN coords must be one of {', '.join(COORDS)}, not {self.coords!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"CPPN colour must be one of {', '.join(COLOURS)}, not {self.colour!r}")

    @property
    def channels(self) -> int:
        return 1 if self.colour == "grey" else 3


def coordinates(style: Style, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """The CPPN inputs at every pixel of an image of ``size`` (default ``style.size``): (4, H·W) float64.

    Rows are x (column), y (row), d and bias. Scaled x, y run from -1 to 1 across the
    image. Pixel x, y count pixels of ``style.size`` (0..W-1); at another size they
    take the fractional positions of the same grid. d = √2·√(x̂² + ŷ²) − 1 with x̂, ŷ the
    scaled coordinates: -1 at the centre, 1 at the corners.
    """
    height, width = size or style.size

    def axis(n: int, native: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.linspace(0.0, 1.0, n) if n > 1 else np.full(1, 0.5)
        return 2.0 * t - 1.0, t * (native - 1)

    x_scaled, x_pixel = axis(width, style.size[1])
    y_scaled, y_pixel = axis(height, style.size[0])
    xs, ys = np.meshgrid(x_scaled, y_scaled)
    d = np.sqrt(2.0) * np.sqrt(xs**2 + ys**2) - 1.0
    if style.coords == "pixel":
        xs, ys = np.meshgrid(x_pixel, y_pixel)
    return np.stack([xs.ravel(), ys.ravel(), d.ravel(), np.ones(height * width)])


@lru_cache(maxsize=32)
def _coordinate_tensor(style: Style, size: tuple[int, int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(coordinates(style, size), dtype=dtype, device=device)


def coordinate_tensor(
    style: Style, size: Optional[tuple[int, int]], device: torch.device, dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """:func:`coordinates` as a (4, H·W) tensor on ``device``, cached per (style, size, device, dtype): read only."""
    return _coordinate_tensor(style, tuple(size or style.size), torch.device(device), dtype)


def colour_map(values: torch.Tensor, colour: str, in_place: bool = False) -> torch.Tensor:
    """Output values (N, O, P) -> image values (N, C, P) in [0, 1]: |v|, then HLS -> RGB for "hls".
    in_place: |v| written over ``values`` (which grey images then are)."""
    values = values.abs_() if in_place else values.abs()
    return hls_to_rgb(values) if colour == "hls" else values
