"""`fool transfer`: score the elites of runs on other networks."""

from __future__ import annotations

import click

from .options import split_names


@click.command("transfer")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--models", required=True,
              help="Target networks, comma-separated, e.g. mnist-lenet,mnist-lenet-b,mnist-digitcnn.")
@click.option("--out", required=True, type=click.Path(),
              help="Folder for transfer.csv, transfer_classes.csv, transfer.json, transfer.md, transfer_heatmap.png.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda (auto: CUDA when present).")
@click.option("--quiet", is_flag=True, help="Print only the output folder, not the table.")
def command(run_dirs, models, out, device, quiet) -> None:
    """Score every elite PNG of each RUN_DIR on each target network.

    For each source -> target pair (source: the network(s) a run was evolved
    against), reports the confidence the target gives to the source's class
    (per class, median, mean), the fraction of images at >= 50% and >= 99%,
    and how often the target's top-1 class agrees. Runs with the same source
    and encoding (e.g. several seeds) are pooled.

    \b
    Example:
      fool transfer runs/mnist/direct/*_s* --models mnist-lenet,mnist-lenet-b,mnist-digitcnn --out transfer/
    """
    from ..analysis import read_run, run_transfer
    from ..analysis.transfer_report import markdown, write_report

    runs = [read_run(path) for path in run_dirs]
    targets = list(dict.fromkeys(split_names(models)))

    def progress(run) -> None:
        if not quiet:
            click.echo(f"scoring {len(run.elites)} elites of {run.path} ({run.source})", err=True)

    result = run_transfer(runs, targets, device, progress)
    paths = write_report(result, out)
    if not quiet:
        click.echo(markdown(result).split("\n## Every pair")[0].rstrip())
    click.echo(f"wrote {', '.join(p.name for p in paths.values())} to {out}")
