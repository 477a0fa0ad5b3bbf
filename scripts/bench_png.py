#!/usr/bin/env python
"""Cost and size of the elite PNGs a checkpoint writes (``png_bytes(image, level=1)``, elites/).

Three kinds of 256 px RGB elites, --images of each:
  snes      like snes-elites' direct elites early in a run from a black start: 2x2 blocks of dim noise
  cppn      CPPN ImageNet elites: random CPPNs grown by 20 rounds of the encoding's own mutation, drawn
  noise     uniform noise (a MAP-Elites direct elite): stored, not deflated
For each, ms per image and mean kB of ``png_bytes`` (ISA-L level 1 after the sampled row filter), of
fooling's encoder before ISA-L (row filter and deflate by zlib level 1), and of Pillow at level 1.
  elites    (with --elites DIR) the first --images PNGs of a run's elites/ folder
The last line is one JSON object.

    python scripts/bench_png.py [--images 100] [--seed 0] [--elites RUN/elites]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fooling import imaging  # noqa: E402
from fooling.imaging import png_bytes, to_uint8  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402


def snes_like(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """(256, 256, 3) uint8 images of 2x2 blocks of dim noise, like snes-elites' direct elites 40 generations
    into an ImageNet run from a black start: a fifth of the values 0, median 24, mean about 40 (there: 35)."""
    low = np.clip(rng.exponential(0.206, (n, 128, 128, 3)) - 0.0486, 0, 1)
    return list((low * 255).round().astype(np.uint8).repeat(2, 1).repeat(2, 2))


def cppn_images(n: int, seed: int) -> list[np.ndarray]:
    """(256, 256, 3) uint8 drawings of random CPPNs after 20 rounds of the encoding's mutation."""
    import torch

    from fooling.encodings import make_encoding

    config = EvolveSettings(model="imagenet-efficientnet-lite0", encoding="cppn").resolved()
    encoding = make_encoding(config, (3, 256, 256))
    rng = np.random.default_rng(seed)
    genomes = encoding.random(n, rng)
    for generation in range(20):
        genomes = encoding.mutate(genomes, rng, generation)
    images = to_uint8(encoding.decode(genomes, torch.device("cpu")))
    return [np.asarray(image) for image in images]


def zlib_level1(image: np.ndarray) -> bytes:
    """``png_bytes(image, level=1)`` as fooling wrote it before ISA-L: the row filter (None or Sub) whose sampled
    rows zlib deflates smaller (or stored), then zlib level 1."""
    sample = np.ascontiguousarray(image[::16])
    sizes = [len(zlib.compress(rows.data, 1)) for rows in (sample, imaging._sub(sample))]
    if min(sizes) > 0.9 * sample.nbytes:
        return imaging._stored_png(image)
    row_filter = int(np.argmin(sizes))
    rows = imaging._sub(image) if row_filter == 1 else image.reshape(len(image), -1)
    data = np.empty((len(image), 1 + rows.shape[1]), np.uint8)
    data[:, 0], data[:, 1:] = row_filter, rows
    header = imaging.struct.pack(">IIBBBBB", image.shape[1], image.shape[0], 8, 2, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", imaging._png_chunk(b"IHDR", header),
                     imaging._png_chunk(b"IDAT", zlib.compress(data.data, 1)), imaging._png_chunk(b"IEND", b"")])


def pillow_level1(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def measure(images: list[np.ndarray], encode: Callable[[np.ndarray], bytes]) -> dict[str, float]:
    encode(images[0])
    start = time.perf_counter()
    sizes = [len(encode(image)) for image in images]
    seconds = time.perf_counter() - start
    return {"ms": round(1e3 * seconds / len(images), 3), "kb": round(float(np.mean(sizes)) / 1e3, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--elites", type=Path, help="also time a run's elites/ PNGs (read back as RGB)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    kinds = {"snes": snes_like(args.images, rng), "cppn": cppn_images(args.images, args.seed),
             "noise": list(rng.integers(0, 256, (args.images, 256, 256, 3), dtype=np.uint8))}
    if args.elites is not None:
        files = sorted(args.elites.glob("*.png"))[:args.images]
        kinds["elites"] = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    result = {}
    for kind, images in kinds.items():
        for image in images[:3]:  # what png_bytes writes is what was drawn
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(image, level=1)))), image)
        row = {"png_bytes": measure(images, lambda image: png_bytes(image, level=1)),
               "zlib_level1": measure(images, zlib_level1), "pillow_level1": measure(images, pillow_level1)}
        result[kind] = row
        print(f"{kind:6s} " + "  ".join(f"{name} {v['ms']:.2f} ms {v['kb']:.1f} kB" for name, v in row.items()))
    print(json.dumps({"images": args.images, "kinds": result}))


if __name__ == "__main__":
    main()
