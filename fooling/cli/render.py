"""`fool render`: redraw an evolved CPPN (an elite's .json) at any resolution."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import click

from ..errors import FoolingError, shown
from ..limits import (MAX_CONNECTIONS, MAX_DEPTH, MAX_GENOME_BYTES, MAX_HIDDEN_NODES, MAX_RENDER_PIXELS,
                      MAX_RENDER_SIDE)


_SIZE = re.compile(r"\s*(-?[0-9]+)\s*(?:[xX]\s*(-?[0-9]+)\s*)?")  # N, or W x H (a minus: refused by range)


class ImageSize(click.ParamType):
    """--size N (a square) or WxH (W columns, H rows), each side 1-MAX_RENDER_SIDE -> (height, width); anything
    else is one line ('12x', 'x3', '1e3', '0', '-5', '640x480x3')."""

    name = "N|WxH"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]
                ) -> tuple[int, int]:
        if isinstance(value, tuple):  # already converted (a default)
            return value
        text = str(value).strip()
        match = _SIZE.fullmatch(text)
        if not match:
            raise click.ClickException(f"--size must be N (a square) or WxH, e.g. 1024 or 640x480; got "
                                       f"{shown(text, limit=42)}")
        sides = [s for s in match.groups() if s is not None]
        # compared as text first: int() of thousands of digits is refused by Python itself
        if any(len(s.lstrip("-0")) > len(str(MAX_RENDER_SIDE)) or not 0 < int(s) <= MAX_RENDER_SIDE for s in sides):
            raise click.ClickException(f"--size {shown(text, limit=42)}: each side must lie in 1-{MAX_RENDER_SIDE}")
        width, height = int(sides[0]), int(sides[-1])
        return height, width


@click.command("render", epilog=(
    f"Limits (checked before any work): images up to {MAX_RENDER_PIXELS:,} pixels ({MAX_RENDER_SIDE}x"
    f"{MAX_RENDER_SIDE}); genome files up to {MAX_GENOME_BYTES // 2**20} MiB, {MAX_HIDDEN_NODES:,} hidden "
    f"nodes, {MAX_CONNECTIONS:,} connections and a depth of {MAX_DEPTH:,} (see fooling.limits)."))
@click.argument("genome", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--size", type=ImageSize(), default=None, metavar="N|WxH",
              help=f"N for an N x N image, or WxH (e.g. 640x480: 640 wide, 480 high); each side at most "
                   f"{MAX_RENDER_SIDE} pixels (default: the size it was evolved at).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: GENOME's name with _WxH.png, in the current folder); "
                   "never inside a run directory.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
def command(genome: Path, size: Optional[tuple[int, int]], out: Optional[Path], force: bool, device: str) -> None:
    """Redraw a CPPN-encoded image from its GENOME .json at any resolution.

    `fool evolve --encoding cppn` writes one .json next to each elite's PNG in
    RUN_DIR/elites/. A CPPN is a function of the pixel position, so the same
    picture can be drawn with more pixels, e.g.

    \b
        fool render RUN_DIR/elites/3_3.json --size 1024 --out three.png
        fool render RUN_DIR/elites/3_3.json --size 640x480 --out three-wide.png

    A size of another shape than the genome's stretches the picture to it. Direct-encoded
    runs write no genome: their elites are the PNGs themselves, at the size they were evolved at.
    """
    from ..encodings.cppn.serialize import load_genome
    from ..outputs import check_output_file

    cppn, style = load_genome(genome)
    shape = size or style.size
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
