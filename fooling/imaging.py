"""Image helpers shared by encodings and outputs: colour conversion and PNG writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def hls_to_rgb(hls: torch.Tensor) -> torch.Tensor:
    """(N, 3, ...) hue, lightness, saturation in [0, 1] -> RGB (N, 3, ...) in [0, 1] (as ``colorsys``).

    Uses the closed form c_n = L - a * clamp(min(k - 3, 9 - k), -1, 1) with
    k = (n + 12 H) mod 12 and a = S * min(L, 1 - L), for n = 0, 8, 4 (R, G, B).
    """
    h, l, s = hls[:, 0:1], hls[:, 1:2], hls[:, 2:3]
    n = torch.tensor([0.0, 8.0, 4.0], device=hls.device, dtype=hls.dtype).view(1, 3, *[1] * (hls.dim() - 2))
    k = torch.remainder(n + 12.0 * h, 12.0)
    a = s * torch.minimum(l, 1.0 - l)
    return (l - a * torch.minimum(k - 3.0, 9.0 - k).clamp(-1.0, 1.0)).clamp_(0.0, 1.0)


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
