"""Image helpers shared by encodings and outputs: colour conversion and PNG writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def hls_to_rgb(hls: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) hue, lightness, saturation in [0, 1] -> RGB (N, 3, H, W) in [0, 1] (as ``colorsys``)."""
    h, l, s = hls[:, 0], hls[:, 1], hls[:, 2]
    m2 = torch.where(l <= 0.5, l * (1.0 + s), l + s - l * s)
    m1 = 2.0 * l - m2

    def channel(hue: torch.Tensor) -> torch.Tensor:
        hue = torch.remainder(hue, 1.0)
        rising = m1 + (m2 - m1) * hue * 6.0
        falling = m1 + (m2 - m1) * (2.0 / 3.0 - hue) * 6.0
        return torch.where(hue < 1 / 6, rising, torch.where(hue < 0.5, m2, torch.where(hue < 2 / 3, falling, m1)))

    rgb = torch.stack([channel(h + 1 / 3), channel(h), channel(h - 1 / 3)], dim=1)
    return rgb.clamp_(0.0, 1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (N, H, W, C) on the CPU."""
    return (images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


def save_png(image: torch.Tensor | np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Write one image, (C, H, W) float in [0, 1] or (H, W, C) uint8, as a PNG (nearest-neighbour upscaled)."""
    if isinstance(image, torch.Tensor):
        image = to_uint8(image.unsqueeze(0))[0]
    array = image[..., 0] if image.shape[-1] == 1 else image
    pil = Image.fromarray(array)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    pil.save(path)


def load_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """A PNG/JPEG file -> (1, C, H, W) float32 in [0, 1]."""
    pil = Image.open(path).convert("L" if channels == 1 else "RGB")
    array = np.asarray(pil, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
