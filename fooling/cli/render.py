"""`fool render`: redraw an evolved CPPN (an elite's .json) at any resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..errors import FoolingError
from ..limits import (MAX_CONNECTIONS, MAX_DEPTH, MAX_GENOME_BYTES, MAX_HIDDEN_NODES, MAX_RENDER_PIXELS,
                      MAX_RENDER_SIDE)


@click.command("render", epilog=(
    f"Limits (checked before any work): images up to {MAX_RENDER_PIXELS:,} pixels ({MAX_RENDER_SIDE}x"
    f"{MAX_RENDER_SIDE}); genome files up to {MAX_GENOME_BYTES // 2**20} MiB, {MAX_HIDDEN_NODES:,} hidden "
    f"nodes, {MAX_CONNECTIONS:,} connections and a depth of {MAX_DEPTH:,} (see fooling.limits)."))
@click.argument("genome", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--size", type=click.IntRange(1, MAX_RENDER_SIDE), default=None,
              help=f"Side of the square image in pixels, at most {MAX_RENDER_SIDE} "
                   "(default: the size it was evolved at).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: GENOME's name with _HxW.png, in the current folder); "
                   "never inside a run directory.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
def command(genome: Path, size: Optional[int], out: Optional[Path], force: bool, device: str) -> None:
    """Redraw a CPPN-encoded image from its GENOME .json at any resolution.

    `fool evolve --encoding cppn` writes one .json next to each elite's PNG in
    RUN_DIR/elites/. A CPPN is a function of the pixel position, so the same
    picture can be drawn with more pixels, e.g.

        fool render RUN_DIR/elites/3_3.json --size 1024 --out three.png
    """
    from ..encodings.cppn.serialize import load_genome
    from ..outputs import check_output_file

    cppn, style = load_genome(genome)
    shape = (size, size) if size else style.size
    if shape[0] * shape[1] > MAX_RENDER_PIXELS:
        raise FoolingError(f"a {shape[1]}x{shape[0]} image has more than the {MAX_RENDER_PIXELS:,} pixels "
                           f"`fool render` draws; give a smaller --size")
    out = check_output_file(out or Path(f"{genome.stem}_{shape[1]}x{shape[0]}.png"), force, suffixes=(".png",),
                            reads=(genome,))

    import torch

    from ..classifiers.registry import resolve_device
    from ..encodings.cppn import render
    from ..imaging import save_png

    with torch.inference_mode():
        image = render([cppn], style, resolve_device(device), size=shape)[0]
    try:
        save_png(image, out)
    except OSError as err:
        raise FoolingError(f"cannot write {out}: {err}") from None
    click.echo(f"wrote {out} ({shape[1]}x{shape[0]}, {style.colour}, {cppn.num_hidden} hidden node{'' if cppn.num_hidden == 1 else 's'})")
