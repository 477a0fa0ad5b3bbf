"""`fool plot`: a run's (or several runs') confidence curves, threshold counts and speed, as a PNG or SVG."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", default=None, type=click.Path(),
              help="The image to write: .png, .svg or .pdf, outside any run directory [RUN_NAME.png for one run, "
                   "runs.png for several].")
@click.option("--title", default=None, help="Title above the plots [the run's name].")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def command(run_dirs, out, title, force) -> None:
    """Plot RUN_DIR's progress: each class's best confidence per generation on a
    log-odds axis (99%, 99.9%, 99.99% apart), how many classes are past each of
    those thresholds, and evaluations per second. Several runs are overlaid, one
    colour each.

    \b
    Examples:
      fool plot runs/mnist
      fool plot runs/mnist_direct_s0 runs/mnist_cppn_s0 --out compare.svg
    """
    from ..outputs import enclosing_run, run_holding
    from ..errors import FoolingError
    from ..plots.figure import plot_runs

    if out is None:
        out = f"{Path(run_dirs[0]).resolve().name or 'run'}.png" if len(run_dirs) == 1 else "runs.png"
    run = run_holding(out)
    if run is not None:  # --force there could replace an elite's PNG (also through a link to it)
        where = "is inside" if enclosing_run(Path(out).parent) else "is a link into"
        raise FoolingError(f"--out {out} {where} the run directory {run}; pick a place outside runs")
    click.echo(f"wrote {plot_runs(run_dirs, out, force=force, title=title)}")
