"""Image helpers shared by encodings and outputs: colour conversion and PNG writing."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from isal import isal_zlib
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FoolingError, first_line
from .limits import MAX_ASPECT, MAX_IMAGE_PIXELS


HLS_CHUNK_VALUES = 1 << 19  # CPU: convert this many values at a time (2 MB temporaries stay in cache)


def hls_to_rgb(hls: torch.Tensor, compiled: bool = False) -> torch.Tensor:
    """(N, 3, ...) hue, lightness, saturation in [0, 1] -> RGB (N, 3, ...) in [0, 1] (as ``colorsys``).

    Uses the closed form c_n = L - a * clamp(min(k - 3, 9 - k), -1, 1) with
    k = (n + 12 H) mod 12 and a = S * min(L, 1 - L), for n = 0, 8, 4 (R, G, B).
    On the CPU, without autograd, float32 batches whose hues lie in [0, 1] (genomes) are converted in one
    compiled pass (:mod:`fooling.hls_cpu`, the same bits); other big batches a few images at a time: the same
    values, about half the time of one pass of each operation over the whole batch (memory traffic).
    compiled (``--compile``; without autograd): one fused kernel from ``torch.compile`` instead of eleven
    elementwise passes (a GPU reads and writes the batch once; 2x faster on the CPU here); if it cannot be
    compiled (no compiler for the device), the eager passes, with one warning.
    """
    grad = hls.requires_grad and torch.is_grad_enabled()
    if compiled and not grad:
        fused = _fused_hls_to_rgb()
        if fused is not None:
            try:
                return fused(hls)
            except Exception as err:  # noqa: BLE001 - torch.compile raises many kinds; eager gives the same image
                _give_up_fusing(err)
    if hls.device.type == "cpu" and not grad and hls.dtype == torch.float32 and hls.numel() and hls.shape[1] == 3:
        from .hls_cpu import hls_to_rgb_cpu  # numba loads on first use

        rgb = hls_to_rgb_cpu(hls)
        if rgb is not None:
            return rgb
    if (hls.device.type == "cpu" and not grad
            and hls.numel() > HLS_CHUNK_VALUES and len(hls) > 1):
        step = max(1, HLS_CHUNK_VALUES // (hls.numel() // len(hls)))
        out = torch.empty_like(hls)
        for start in range(0, len(hls), step):
            chunk = hls[start:start + step]
            low, high = torch.aminmax(chunk[:, 0])  # the hue: a few µs, the chunk is about to be read anyway
            out[start:start + step] = _hls_to_rgb(chunk, unit_hue=0.0 <= low.item() and high.item() <= 1.0)
        return out
    return _hls_to_rgb(hls)


_fused: list = []  # [the torch.compile'd _hls_to_rgb, or None once it failed]: made on first use


def _fused_hls_to_rgb() -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    if not _fused:
        _fused.append(torch.compile(_hls_to_rgb))
    return _fused[0]


def _give_up_fusing(err: Exception) -> None:
    _fused[:] = [None]
    detail = first_line(err)
    warnings.warn(f"torch.compile could not fuse the HLS decode ({detail[:200]}); decoding with eager passes",
                  RuntimeWarning, stacklevel=3)


def _hls_to_rgb(hls: torch.Tensor, unit_hue: bool = False) -> torch.Tensor:
    """:func:`hls_to_rgb` in one pass of each operation. unit_hue (no autograd; every hue in [0, 1], as in evolved
    genomes): the same numbers bit for bit, 30 % faster on the CPU. k = 12 H + n then lies in [0, 20], so instead
    of wrapping it (a float remainder, the dearest pass) the second period's ramp joins the first by a maximum: for
    k in [12, 20], clamp(k - 15) is clamp(min(k' - 3, 9 - k')) of the wrapped k' = k - 12 (exact), and below 12
    the maximum keeps the first period's value (k - 15 < -3)."""
    h, l, s = hls[:, 0:1], hls[:, 1:2], hls[:, 2:3]
    n = torch.tensor([0.0, 8.0, 4.0], device=hls.device, dtype=hls.dtype).view(1, 3, *[1] * (hls.dim() - 2))
    a = s * torch.minimum(l, 1.0 - l)
    # In place where autograd allows it (no op below needs its own output for the backward pass),
    # 9 − k and l − a·f in one pass each: fewer passes over a (N, 3, H, W) batch.
    k = torch.mul(h, 12.0).add(n)
    if unit_hue:
        first = torch.minimum(k.sub(3.0), torch.rsub(k, 9.0))
        f = torch.maximum(first, k.sub_(15.0), out=first)
    else:
        k.remainder_(12.0)
        f = torch.minimum(k.sub(3.0), torch.rsub(k, 9.0))
    return torch.sub(l, f.clamp_(-1.0, 1.0).mul_(a)).clamp_(0.0, 1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (N, H, W, C) on the CPU, C-contiguous."""
    pixels = images.detach().float().clamp(0, 1).mul_(255).round_().to(torch.uint8)  # clamp's copy, in place
    return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def save_png(image: torch.Tensor | np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Write one image, (C, H, W) float in [0, 1] or (H, W, C) uint8, as a PNG (nearest-neighbour upscaled)."""
    Path(path).write_bytes(png_bytes(image, scale))


def png_bytes(image: torch.Tensor | np.ndarray, scale: int = 1, level: int = 6) -> bytes:
    """The PNG file of one image, (C, H, W) float in [0, 1] or (H, W, C) uint8 (nearest-neighbour upscaled).

    Images that do not compress (noise, like direct-encoding elites) are stored without deflating,
    several times faster than Pillow's encoder for the same file size. At ``level`` 1 (elites/, rewritten at
    every checkpoint) the others are written here too: every row with the one filter (None or Sub) that
    deflates a sample of rows best, then deflated by ISA-L (``isal``) at its level 1, which releases the GIL:
    0.5 ms for a 256 px elite against 2.0-2.8 with zlib's level 1, files 4 % smaller for CPPN drawings and
    20-30 % bigger for snes-elites' 2x2-blocky noise (``python scripts/bench_png.py``). Other levels go through
    Pillow (6, its default: smallest, slowest).
    """
    if isinstance(image, torch.Tensor):
        image = to_uint8(image.unsqueeze(0))[0]
    array = image[..., 0] if image.shape[-1] == 1 else image
    if scale == 1 and array.dtype == np.uint8:
        row_filter = _row_filter(array)
        if row_filter == STORED:
            return _stored_png(array)
        if row_filter is not None and level <= 1:
            return _deflated_png(array, row_filter, level)
    pil = Image.fromarray(array)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    out = io.BytesIO()
    pil.save(out, format="PNG", compress_level=level)
    return out.getvalue()


_SAMPLE_MIN_BYTES = 16384  # smaller images always go through Pillow
STORED = -1  # _row_filter's answer for an image that does not compress


def _row_filter(array: np.ndarray) -> int | None:
    """For a (H, W[, C]) uint8 image: STORED when every 16th row deflates (ISA-L level 1) to over 90 % of its size both
    as it is and as differences along the row (PNG's Sub filter: what makes gradients compress); else the PNG
    filter (0 None, 1 Sub) that deflates those rows smaller. None: small, or a layout Pillow writes.

    (PNG's Up filter is left out: judged on sampled rows it looks best for images of 2-row blocks, where
    unfiltered rows deflate better still, their repeats being matched whole.)"""
    if array.nbytes < _SAMPLE_MIN_BYTES or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        return None
    sample = np.ascontiguousarray(array[::16])
    sizes = [len(isal_zlib.compress(rows.data, 1)) for rows in (sample, _sub(sample))]
    if min(sizes) > 0.9 * sample.nbytes:
        return STORED
    return int(np.argmin(sizes))


def _sub(array: np.ndarray) -> np.ndarray:
    """PNG's Sub filter of (H, W[, C]) uint8 rows (H, W·C): each byte minus the same channel's byte to its left
    (uint8 differences wrap, as PNG's do; the first pixel as it is)."""
    flat = array.reshape(len(array), -1)
    step = 1 if array.ndim == 2 else array.shape[2]
    return np.concatenate([flat[:, :step], flat[:, step:] - flat[:, :-step]], axis=1)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _png(array: np.ndarray, row_filter: int, rows: np.ndarray, level: int) -> bytes:
    """A PNG of a (H, W) grey or (H, W, 3|4) RGB(A) uint8 image from its filtered ``rows`` (H, W·C)."""
    height, width = array.shape[:2]
    colour_type = 0 if array.ndim == 2 else {3: 2, 4: 6}[array.shape[2]]
    data = np.empty((height, 1 + rows.shape[1]), dtype=np.uint8)  # each row: its filter byte, then the bytes
    data[:, 0] = row_filter
    data[:, 1:] = rows
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", _deflate(data.data, level)), _png_chunk(b"IEND", b"")])


def _deflate(data: memoryview, level: int) -> bytes:
    """zlib-format bytes of ``data``: stored (level 0) by zlib, else deflated by ISA-L at its ``level`` (0-3)."""
    return zlib.compress(data, 0) if level == 0 else isal_zlib.compress(data, min(level, 3))


def _stored_png(array: np.ndarray) -> bytes:
    """A PNG of a (H, W) grey or (H, W, 3|4) RGB(A) uint8 image: no row filters, deflate level 0 (stored)."""
    return _png(array, 0, array.reshape(len(array), -1), 0)


def _deflated_png(array: np.ndarray, row_filter: int, level: int) -> bytes:
    """A PNG of a (H, W) grey or (H, W, 3|4) RGB(A) uint8 image, every row with ``row_filter`` (0 None, 1 Sub)."""
    return _png(array, row_filter, _sub(array) if row_filter == 1 else array.reshape(len(array), -1), level)


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An image file, fully decoded; a one-line :class:`FoolingError` naming the file if it is missing,
    not an image, truncated or corrupt, or has more than ``max_pixels`` pixels (checked from the
    header, before decoding: a decompression bomb is never expanded), or one side more than
    :data:`~fooling.limits.MAX_ASPECT` times the other (resized for a network, it would take gigabytes)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil = Image.open(path)
            try:
                if pil.width * pil.height > max_pixels:
                    raise FoolingError(f"{path}: the image is {pil.width}x{pil.height} pixels, more than the "
                                       f"{max_pixels:,} this reads")
                if max(pil.size) > MAX_ASPECT * min(pil.size):
                    raise FoolingError(f"{path}: the image is {pil.width}x{pil.height} pixels, one side more than "
                                       f"{MAX_ASPECT} times the other; crop it first")
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
        raise FoolingError(f"{path}: broken image file ({first_line(err)})") from None


FLOAT_UNIT_SLACK = 1e-3  # how far over 1 a float image's values may lie and still be read as 0-1


def load_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """A PNG/JPEG file -> (1, C, H, W) float32 in [0, 1]; a one-line FoolingError for a bad file (:func:`read_image`).
    16-bit grey (Pillow's modes I;16 and I) is scaled from 0-65535 (Pillow's own conversion clips it at 255), 32-bit
    float grey (mode F) read in 0-1, or in 0-255 when a value is above 1.001 (other values: a FoolingError); a photo
    with an EXIF orientation (a camera held sideways) is turned upright, as viewers show it."""
    pil = ImageOps.exif_transpose(read_image(path))
    if pil.mode.startswith("I;16") or pil.mode == "I":
        array = np.clip(np.asarray(pil, dtype=np.float32) / 65535.0, 0.0, 1.0)[..., None]
        if channels == 3:
            array = np.repeat(array, 3, axis=-1)
    elif pil.mode == "F":  # 32-bit float grey (a TIFF): Pillow's conversion would round 0-1 values to black
        array = np.asarray(pil, dtype=np.float32)
        if not np.isfinite(array).all():
            raise FoolingError(f"{path}: a floating-point image with NaN or infinite values; this reads values in "
                               f"0-1 (or 0-255): replace them, or save it as an 8- or 16-bit image")
        low, high = float(array.min()), float(array.max())
        if not (0.0 <= low and high <= 255.0):
            raise FoolingError(f"{path}: a floating-point image with values from {low:g} to {high:g}; this reads "
                               f"them in 0-1 (or 0-255): rescale it, or save it as an 8- or 16-bit image")
        # up to 1 + FLOAT_UNIT_SLACK is a 0-1 image that rounding pushed a hair over 1 (read as 0-255 it is black)
        array = np.clip(array / (1.0 if high <= 1.0 + FLOAT_UNIT_SLACK else 255.0), 0.0, 1.0)[..., None]
        if channels == 3:
            array = np.repeat(array, 3, axis=-1)
    else:
        pil = pil.convert("L" if channels == 1 else "RGB")
        array = np.asarray(pil, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
