"""`fool gallery`: a static HTML gallery of runs."""

from __future__ import annotations

import click


@click.command("gallery")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="Folder for index.html and the copied images: new, empty, or one an earlier `fool gallery` "
                   "made (only what that build made is replaced).")
@click.option("--transfer", "transfer_dirs", multiple=True, type=click.Path(),
              help="A `fool transfer` output folder to include (heatmap and table); may be repeated.")
@click.option("--title", default="Fooling images", show_default=True, help="Title of the page.")
@click.option("--force", is_flag=True,
              help="Add the gallery to a folder that holds other files (they are never deleted or replaced).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def command(run_dirs, out, transfer_dirs, title, force, quiet) -> None:
    """Make one self-contained HTML page showing the elites of each RUN_DIR.

    Per run: a grid of each class's image with its label, confidence,
    generation found, encoding and model, links to the full-size PNG and
    genome, a contact sheet (PNG, like the paper's Figure 1) and, where the run
    kept RUN_DIR/snapshots/<generation>/, each class's progression. A
    confidence filter hides weaker images. Open OUT/index.html in a browser;
    no server is needed.

    The gallery never deletes or overwrites anything it did not make: it is
    built in a temporary folder and moved into place, OUT/.fooling-gallery
    lists what it made, and OUT may not be (or be inside) a run directory.

    \b
    Example:
      fool gallery runs/mnist-sweep/*_s0 --transfer transfer/ --out gallery/
    """
    from ..gallery.build import build_gallery
    from ..progress import ItemProgress

    with ItemProgress(len(run_dirs), "run", quiet) as progress:
        page = build_gallery(run_dirs, out, transfer_dirs, title, force=force, progress=progress.done)
    click.echo(f"wrote {page} ({len(run_dirs)} run{'s' if len(run_dirs) != 1 else ''})")
