"""`fool transfer`: score the elites of runs on other networks."""

from __future__ import annotations

import click

from .options import split_names


@click.command("transfer")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--models", required=True,
              help="Target networks, comma-separated, e.g. mnist-lenet,mnist-lenet-b,mnist-digitcnn.")
@click.option("--out", required=True, type=click.Path(),
              help="Folder for transfer.csv, transfer_classes.csv, transfer.json, transfer.md, transfer_heatmap.png "
                   "(not a run directory; existing report files are replaced only with --force).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda (auto: CUDA when present).")
@click.option("--force", is_flag=True, help="Replace the report files of an earlier `fool transfer` in --out.")
@click.option("--quiet", is_flag=True, help="Print only the output folder: no table, no progress.")
@click.option("--input", "input_", default=None, metavar="CxHxW",
              help="Target model files' input, e.g. 3x224x224 [their sidecar JSON; an ONNX file's own].")
@click.option("--mean", default=None, metavar="M1,M2,M3", help="Target model files' per-channel mean [0].")
@click.option("--std", default=None, metavar="S1,S2,S3", help="Target model files' per-channel std [1].")
@click.option("--labels", default=None, type=click.Path(), metavar="FILE",
              help="Target model files' class names, one a line [numbered].")
@click.option("--transforms", default=None, help="Survival: also score each image under --samples random transforms "
                                                 "(default, or e.g. 'crop=0.8,flip,rotate=10,jpeg=60').")
@click.option("--samples", default=None, type=int, help="Survival: transforms per image [32 with --transforms].")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the survival transforms.")
def command(run_dirs, models, out, device, force, quiet, input_, mean, std, labels, transforms, samples,
            seed) -> None:
    """Score every elite PNG of each RUN_DIR on each target network.

    For each source -> target pair (source: the network(s) a run was evolved
    against), reports the confidence the target gives to the source's class
    (per class, median, mean), the fraction of images at >= 50% and >= 99%,
    and how often the target's top-1 class agrees. Runs with the same source
    and encoding (e.g. several seeds) are pooled. Progress (one line per run,
    with an ETA) goes to stderr.

    A target may be a model file (net.pt: TorchScript, which is code; net.onnx), timm:NAME or
    python:package.module:function, like --model of `fool evolve`; --input, --mean, --std and
    --labels describe the target files that have no sidecar JSON.

    With --transforms SPEC --samples K it also reports survival: per image and model the mean and
    minimum confidence under K random transforms and the share still >= 99%.

    \b
    Examples:
      fool transfer runs/mnist-sweep/*_direct_s* --models mnist-lenet,mnist-lenet-b,mnist-digitcnn --out transfer/
      fool transfer runs/net.onnx_direct_s0 --models other.onnx --labels labels.txt --out transfer/
    """
    from ..analysis import run_transfer
    from ..analysis.transfer_report import FILES, markdown, write_report
    from ..outputs import check_output_folder
    from ..progress import ItemProgress
    from ..rundir import read_run

    eot = None
    if transforms is not None or samples is not None:
        from ..errors import FoolingError, shown
        from ..objective.eot import EOT

        from ..limits import MAX_EOT

        if samples is not None and not 1 <= samples <= MAX_EOT:  # each is a forward pass of every elite
            raise FoolingError(f"--samples must lie in 1-{MAX_EOT:,}, got {shown(samples)}")
        eot = EOT(samples or 32, transforms or "default", seed)
    check_output_folder(out, FILES.values(), force)  # before any work: a bad --out costs nothing
    from ..classifiers.sources import canonical_names

    runs = [read_run(path) for path in run_dirs]
    targets = list(dict.fromkeys(canonical_names(split_names(models), input_, mean, std, labels)))

    with ItemProgress(len(runs), "run", quiet) as bar:
        pending: list = []

        def progress(run) -> None:  # called before each run is scored: the previous one is done
            if pending:
                bar.done(f"{pending.pop()} scored")
            pending.append(str(run.path))

        result = run_transfer(runs, targets, device, progress, eot)
        if pending:
            bar.done(f"{pending.pop()} scored")
    paths = write_report(result, out)
    if not quiet:
        click.echo(markdown(result).split("\n## Every pair")[0].rstrip())
    click.echo(f"wrote {', '.join(p.name for p in paths.values())} to {out}")
