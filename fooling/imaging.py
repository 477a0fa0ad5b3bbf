"""Image helpers shared by encodings and outputs: colour conversion and PNG writing."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import FoolingError
from .limits import MAX_IMAGE_PIXELS


HLS_CHUNK_VALUES = 1 << 19  # CPU: convert this many values at a time (2 MB temporaries stay in cache)


def hls_to_rgb(hls: torch.Tensor) -> torch.Tensor:
    """(N, 3, ...) hue, lightness, saturation in [0, 1] -> RGB (N, 3, ...) in [0, 1] (as ``colorsys``).

    Uses the closed form c_n = L - a * clamp(min(k - 3, 9 - k), -1, 1) with
    k = (n + 12 H) mod 12 and a = S * min(L, 1 - L), for n = 0, 8, 4 (R, G, B).
    On the CPU, without autograd, a big batch is converted a few images at a time: the same values,
    about half the time of one pass of each operation over the whole batch (memory traffic).
    """
    if (hls.device.type == "cpu" and not (hls.requires_grad and torch.is_grad_enabled())
            and hls.numel() > HLS_CHUNK_VALUES and len(hls) > 1):
        step = max(1, HLS_CHUNK_VALUES // (hls.numel() // len(hls)))
        out = torch.empty_like(hls)
        for start in range(0, len(hls), step):
            out[start:start + step] = _hls_to_rgb(hls[start:start + step])
        return out
    return _hls_to_rgb(hls)


def _hls_to_rgb(hls: torch.Tensor) -> torch.Tensor:
    h, l, s = hls[:, 0:1], hls[:, 1:2], hls[:, 2:3]
    n = torch.tensor([0.0, 8.0, 4.0], device=hls.device, dtype=hls.dtype).view(1, 3, *[1] * (hls.dim() - 2))
    a = s * torch.minimum(l, 1.0 - l)
    # In place where autograd allows it (no op below needs its own output for the backward pass),
    # 9 − k and l − a·f in one pass each: fewer passes over a (N, 3, H, W) batch.
    k = torch.mul(h, 12.0).add(n).remainder_(12.0)
    f = torch.minimum(k.sub(3.0), torch.rsub(k, 9.0)).clamp_(-1.0, 1.0)
    return torch.sub(l, f.mul_(a)).clamp_(0.0, 1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (N, H, W, C) on the CPU, C-contiguous."""
    pixels = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def save_png(image: torch.Tensor | np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Write one image, (C, H, W) float in [0, 1] or (H, W, C) uint8, as a PNG (nearest-neighbour upscaled)."""
    Path(path).write_bytes(png_bytes(image, scale))


def png_bytes(image: torch.Tensor | np.ndarray, scale: int = 1, level: int = 6) -> bytes:
    """The PNG file of one image, (C, H, W) float in [0, 1] or (H, W, C) uint8 (nearest-neighbour upscaled).

    Images that do not compress (noise, like direct-encoding elites) are stored without deflating,
    several times faster than Pillow's encoder for the same file size; others go through Pillow at zlib
    ``level`` (1: about 2-3x faster than the default 6, files 3 % (blocky noise) to 80 % (smooth CPPN
    images) bigger).
    """
    if isinstance(image, torch.Tensor):
        image = to_uint8(image.unsqueeze(0))[0]
    array = image[..., 0] if image.shape[-1] == 1 else image
    if scale == 1 and array.dtype == np.uint8 and _incompressible(array):
        return _stored_png(array)
    pil = Image.fromarray(array)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    out = io.BytesIO()
    pil.save(out, format="PNG", compress_level=level)
    return out.getvalue()


_SAMPLE_MIN_BYTES = 16384  # smaller images always go through Pillow


def _incompressible(array: np.ndarray) -> bool:
    """True when every 16th row of a (H, W[, C]) uint8 image deflates (level 1) to over 90 % of its size,
    both as it is and as differences along the row (PNG's Sub filter: what makes gradients compress)."""
    if array.nbytes < _SAMPLE_MIN_BYTES or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        return False  # small, or not a layout the stored writer handles
    sample = np.ascontiguousarray(array[::16])
    sub = np.diff(sample, axis=1, prepend=np.zeros_like(sample[:, :1]))  # uint8: wraps around, as PNG does
    return all(len(zlib.compress(s.data, 1)) > 0.9 * s.nbytes for s in (sample, sub))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _stored_png(array: np.ndarray) -> bytes:
    """A PNG of a (H, W) grey or (H, W, 3|4) RGB(A) uint8 image: no row filters, deflate level 0 (stored)."""
    height, width = array.shape[:2]
    colour_type = 0 if array.ndim == 2 else {3: 2, 4: 6}[array.shape[2]]
    rows = np.zeros((height, 1 + array[0].size), dtype=np.uint8)  # each row: filter byte 0, then the pixels
    rows[:, 1:] = array.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(rows.data, 0)), _png_chunk(b"IEND", b"")])


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An image file, fully decoded; a one-line :class:`FoolingError` naming the file if it is missing,
    not an image, truncated or corrupt, or has more than ``max_pixels`` pixels (checked from the
    header, before decoding: a decompression bomb is never expanded)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil = Image.open(path)
            try:
                if pil.width * pil.height > max_pixels:
                    raise FoolingError(f"{path}: the image is {pil.width}x{pil.height} pixels, more than the "
                                       f"{max_pixels:,} this reads")
                pil.load()
            except BaseException:
                pil.close()
                raise
            return pil
    except FoolingError:
        raise
    except FileNotFoundError:
        raise FoolingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FoolingError(f"{path} is a folder, not an image") from None
    except UnidentifiedImageError:
        raise FoolingError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FoolingError(f"{path}: the image has too many pixels (a decompression bomb?)") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FoolingError(f"{path}: broken image file ({detail})") from None


def load_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """A PNG/JPEG file -> (1, C, H, W) float32 in [0, 1]; a one-line FoolingError for a bad file (:func:`read_image`)."""
    pil = read_image(path).convert("L" if channels == 1 else "RGB")
    array = np.asarray(pil, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
