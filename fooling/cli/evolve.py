"""`fool evolve`: evolve fooling images against a classifier."""

from __future__ import annotations

from typing import Optional

import click

from ..config import ENCODINGS, PRESETS, STRATEGIES, EvolveConfig
from ..errors import FoolingError
from .options import split_names


def _classes(spec: Optional[str], model: str) -> Optional[list[int]]:
    if spec is None:
        return None
    from ..classes import parse_classes
    from ..classifiers import get_spec, load_classifier

    get_spec(model)
    labels = load_classifier(model, "cpu").labels
    return parse_classes(spec, labels)


def _target(value: Optional[str], model: str) -> Optional[int]:
    if value is None:
        return None
    if value.strip().lstrip("-").isdigit():
        return int(value)
    classes = _classes(value, model)
    if not classes or len(classes) != 1:
        raise FoolingError(f"--target must name one class, got {value!r}")
    return classes[0]


@click.command("evolve")
@click.option("--model", default="mnist-lenet", show_default=True, help="Classifier to fool (see `fool models`).")
@click.option("--models", default=None, help="Several classifiers at once, comma-separated (ensemble fitness).")
@click.option("--combine", type=click.Choice(["mean", "min"]), default="mean", show_default=True,
              help="How an ensemble's confidences make one fitness.")
@click.option("--encoding", default="direct", show_default=True, help=f"Genome encoding: {' | '.join(ENCODINGS)}.")
@click.option("--strategy", default="map-elites", show_default=True,
              help=f"Search: {' | '.join(STRATEGIES)} (ga needs --target).")
@click.option("--preset", default="default", show_default=True,
              help=f"Operator settings: {' | '.join(PRESETS)} (paper = the 2015 code's).")
@click.option("--classes", "class_spec", default=None,
              help="Classes to evolve for: names, indices or ranges, e.g. '0-4' or 'king penguin,goldfish'.")
@click.option("--target", default=None, help="The one class a --strategy ga run fools (index or name).")
@click.option("--generations", type=int, default=None, help="Generations after the initial population [200].")
@click.option("--population", type=int, default=200, show_default=True, help="Children per generation.")
@click.option("--initial-population", type=int, default=None, help="Random genomes in generation 0 [population].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds every random number of the run.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda (auto: CUDA when present).")
@click.option("--crops", type=click.Choice(["1", "10"]), default="1", show_default=True,
              help="10: average the softmax over ten crops (the paper's ImageNet scoring).")
@click.option("--image-size", type=int, default=None, help="Side of the evolved images [network input; 256 for direct ImageNet].")
@click.option("--mutation-rate", type=float, default=None, help="Per-gene mutation probability [preset].")
@click.option("--until", type=float, default=None, help="Stop early once every class reaches this confidence.")
@click.option("--snapshot-every", type=int, default=0, show_default=True,
              help="Also keep every Nth generation's elites in snapshots/<gen>/ (0: never).")
@click.option("--checkpoint-every", type=int, default=10, show_default=True, help="Checkpoint every N generations.")
@click.option("--out", default=None, type=click.Path(), help="Run directory [runs/<model>_<encoding>_s<seed>].")
@click.option("--resume", default=None, type=click.Path(), help="Continue the run in this directory.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(model, models, combine, encoding, strategy, preset, class_spec, target, generations, population,
            initial_population, seed, device, crops, image_size, mutation_rate, until, snapshot_every, checkpoint_every,
            out, resume, quiet) -> None:
    """Evolve images that MODEL labels with near certainty (MAP-Elites over classes by default).

    Writes a run directory: config.json, summary.json, metrics.csv, elites/ (one
    PNG per class), checkpoint/ and log.txt. Ctrl-C (or SIGTERM, SIGHUP) finishes
    the generation, checkpoints and stops; a second one stops at once;
    `fool evolve --resume DIR [--generations N]` continues.

    \b
    Examples:
      fool evolve --generations 200 --out runs/mnist
      fool evolve --preset paper --seed 3
      fool evolve --strategy ga --target 7
      fool evolve --resume runs/mnist --generations 400
    """
    from ..run import EvolutionRun

    if resume:
        run = EvolutionRun.resume(resume, generations)
    else:
        names = split_names(models)
        first = names[0] if names else model
        config = EvolveConfig(
            model=first, models=names, combine=combine, encoding=encoding, strategy=strategy, preset=preset,
            classes=_classes(class_spec, first), target=_target(target, first),
            generations=200 if generations is None else generations, population=population,
            initial_population=initial_population, seed=seed, device=device, crops=int(crops),
            image_size=image_size, mutation_rate=mutation_rate, until=until, snapshot_every=snapshot_every,
            checkpoint_every=checkpoint_every,
            out=out,
        )
        run = EvolutionRun.start(config)
    summary = run.run(progress=not quiet)
    if run.interrupted:
        click.echo(f"Interrupted: {run.stop_message()}. Continue with: fool evolve --resume {run.rundir.path}",
                   err=True)
        raise SystemExit(128 + (run.stop_signal or 2))  # 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
    done = [c for c in summary["classes"] if c["confidence"] is not None]
    top = sum(c["confidence"] >= 0.9999 for c in done)
    click.echo(f"{run.rundir.path}: generation {summary['generation']}, {summary['evaluations']:,} evaluations "
               f"({summary['evals_per_s'] or 0:,.0f}/s); median confidence {summary['median_confidence']:.4f}; "
               f"{top}/{len(summary['classes'])} classes at >= 99.99%")
    click.echo(f"stopped: {run.stop_message()}")

