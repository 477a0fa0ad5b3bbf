"""`fool render`: redraw an evolved CPPN (an elite's .json) at any resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..errors import FoolingError


@click.command("render")
@click.argument("genome", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--size", type=click.IntRange(1, 16384), default=None,
              help="Side of the square image in pixels (default: the size it was evolved at).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: GENOME's name with _SIZE.png, next to it).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
def command(genome: Path, size: Optional[int], out: Optional[Path], device: str) -> None:
    """Redraw a CPPN-encoded image from its GENOME .json at any resolution.

    `fool evolve --encoding cppn` writes one .json next to each elite's PNG in
    RUN_DIR/elites/. A CPPN is a function of the pixel position, so the same
    picture can be drawn with more pixels, e.g.

        fool render RUN_DIR/elites/3_3_0.99999.json --size 1024 --out three.png
    """
    import torch

    from ..classifiers.registry import resolve_device
    from ..encodings.cppn import render
    from ..encodings.cppn.serialize import load_genome
    from ..imaging import save_png

    cppn, style = load_genome(genome)
    shape = (size, size) if size else style.size
    out = out or genome.with_name(f"{genome.stem}_{shape[0]}x{shape[1]}.png")
    with torch.inference_mode():
        image = render([cppn], style, resolve_device(device), size=shape)[0]
    try:
        save_png(image, out)
    except OSError as err:
        raise FoolingError(f"cannot write {out}: {err}") from None
    click.echo(f"wrote {out} ({shape[1]}x{shape[0]}, {style.colour}, {cppn.num_hidden} hidden nodes)")
