"""`fool gallery`: a static HTML gallery of runs."""

from __future__ import annotations

import click


@click.command("gallery")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="Folder for index.html and the copied images (its runs/ and transfer/ are replaced).")
@click.option("--transfer", "transfer_dirs", multiple=True, type=click.Path(),
              help="A `fool transfer` output folder to include (heatmap and table); may be repeated.")
@click.option("--title", default="Fooling images", show_default=True, help="Title of the page.")
def command(run_dirs, out, transfer_dirs, title) -> None:
    """Make one self-contained HTML page showing the elites of each RUN_DIR.

    Per run: a grid of each class's image with its label, confidence,
    generation found, encoding and model, links to the full-size PNG and
    genome, a contact sheet (PNG, like the paper's Figure 1) and, where the run
    kept RUN_DIR/snapshots/<generation>/, each class's progression. A
    confidence filter hides weaker images. Open OUT/index.html in a browser;
    no server is needed.

    \b
    Example:
      fool gallery runs/mnist/direct/mnist-lenet_s0 --transfer transfer/ --out gallery/
    """
    from ..gallery.build import build_gallery

    page = build_gallery(run_dirs, out, transfer_dirs, title)
    click.echo(f"wrote {page} ({len(run_dirs)} run{'s' if len(run_dirs) != 1 else ''})")
