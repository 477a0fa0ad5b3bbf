"""`fool evolve`: evolve fooling images against a classifier."""

from __future__ import annotations

import click
from click.core import ParameterSource

from ..errors import FoolingError
from ..settings.evolve import PLACEMENT_SETTINGS, RESUME_SETTINGS, EvolveSettings
from .generated import GroupedCommand, SettingOption, collect, gather, settings_options
from .options import class_options, resolve_class_options

# the parameters that may accompany --resume (where the evaluations run, too: it never changes the result)
RESUME_OPTIONS = (*RESUME_SETTINGS, *PLACEMENT_SETTINGS, "quiet", "resume", "tensorboard")


def _tensorboard():
    from ..run.tensorboard import TensorBoard

    return TensorBoard()


def _given(ctx: click.Context, name: str) -> bool:
    """Whether the user set parameter ``name`` (on the command line or through the environment)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
                                              ParameterSource.PROMPT)


def _check_resume(ctx: click.Context, resume: str) -> None:
    """--resume takes the run's own settings: refuse an empty path and any setting but the budget's
    (--set and --config included)."""
    if not resume.strip():
        raise FoolingError("--resume needs the run directory to continue, got an empty path")
    fixed = [p.opts[0] for p in ctx.command.params
             if p.name not in RESUME_OPTIONS and p.opts and _given(ctx, p.name)]
    if fixed:
        allowed = ", ".join(f"--{n.replace('_', '-')}" for n in (*RESUME_SETTINGS, *PLACEMENT_SETTINGS))
        raise FoolingError(f"{', '.join(fixed)} cannot change on resume: the run keeps the settings in its "
                           f"config.json (only {allowed} and --quiet may accompany --resume)")


@click.command("evolve", cls=GroupedCommand)
@settings_options(EvolveSettings, skip=("classes", "target"))
@click.option("--classes", "class_spec", default=None, cls=SettingOption, group="model",
              help="Classes to evolve for: names, indices or ranges, e.g. '0-4' or 'king penguin,goldfish' [all].")
@click.option("--target", default=None, cls=SettingOption, group="search",
              help="The one class a --strategy ga run fools (index or name).")
@click.option("--resume", default=None, type=click.Path(), cls=SettingOption, group="run",
              help="Continue the run in this directory (only --generations, --until, --checkpoint-every, "
                   "--checkpoint-seconds, --checkpoint-background, --quiet and where it runs, --workers and co., "
                   "may accompany it).")
@click.option("--seeds", "seed_spec", default=None, cls=SettingOption, group="budget", metavar="SPEC",
              help="Several seeds as one batched population (one forward pass for all), e.g. 0-4 or 0,2,7: "
                   "one run directory each, OUT/s<seed>; `--resume OUT` continues them all.")
@click.option("--encodings", "encoding_spec", default=None, cls=SettingOption, group="budget", metavar="LIST",
              help="With --seeds, several encodings too, e.g. direct,cppn: OUT/<encoding>_s<seed> each, every "
                   "encoding with its preset's own values.")
@click.option("--quiet", is_flag=True, cls=SettingOption, group="run", help="No progress bar.")
@click.option("--tensorboard", is_flag=True, cls=SettingOption, group="run",
              help="Also write TensorBoard events to RUN_DIR/tensorboard/ (needs the tensorboard package).")
@click.pass_context
def command(ctx, class_spec, target, resume, seed_spec, encoding_spec, quiet, tensorboard, **options) -> None:
    """Evolve images that MODEL labels with near certainty (snes-elites by default; MAP-Elites for CPPNs).

    Writes a run directory: config.json, summary.json, metrics.csv, classes.csv,
    elites/ (one PNG per class), checkpoint/ and log.txt. Ctrl-C (or SIGTERM, SIGHUP) finishes
    the generation, checkpoints and stops; a second one stops at once;
    `fool evolve --resume DIR [--generations N]` continues. Every setting below can
    also be given as --set KEY=VALUE (its config.json name), and --config FILE starts
    from a previous run's config.json (its out is not taken, and values its preset chose,
    such as the paper's 10 crops or snes-elites' 40 children, are chosen again for the new
    run's networks, encoding and strategy; --out and others given win).

    \b
    Examples:
      fool evolve --generations 200 --out runs/mnist
      fool evolve --preset paper --seed 3
      fool evolve --set mutation_eta=9 --set crossover_rate=0.3
      fool evolve --config runs/mnist/config.json --out runs/mnist-again
      fool evolve --strategy ga --target 7
      fool evolve --resume runs/mnist --generations 400
      fool evolve --seeds 0-4 --out runs/mnist-5   # runs/mnist-5/s0 ... s4, one forward pass
      fool evolve --seeds 0-2 --encodings direct,cppn --out runs/both   # direct_s0 ... cppn_s2
      fool evolve --workers 4 --gpus-per-worker 1   # one run scored on 4 Ray actors, one GPU each
    """
    from .. import api

    hooks = (lambda run: [_tensorboard()]) if tensorboard else ()  # one TensorBoard writer per run
    if seed_spec is not None:
        from ..run.multi import parse_seeds

        if resume is not None:
            raise FoolingError(f"--seeds starts new runs; continue a group of seeds with `fool evolve --resume "
                               f"{resume}` alone")
        if _given(ctx, "seed"):
            raise FoolingError("give either --seed or --seeds, not both")
        seeds = parse_seeds(seed_spec)
    if encoding_spec is not None:
        if seed_spec is None:
            raise FoolingError("--encodings makes a group of runs: give --seeds too (e.g. --seeds 0)")
        if _given(ctx, "encoding"):
            raise FoolingError("give either --encoding or --encodings, not both")
        encodings = [e.strip() for e in encoding_spec.split(",")]
    if resume is not None:
        _check_resume(ctx, resume)
        changes = {name: options[name] for name in (*RESUME_SETTINGS, *PLACEMENT_SETTINGS)
                   if name != "generations" and _given(ctx, name)}
        result = api.resume(resume, generations=options["generations"], progress=not quiet, command="evolve",
                            hooks=hooks, **changes)
    else:
        class_spec, target = class_options(options, class_spec, target)
        values = gather(EvolveSettings, options, keep_from_file=lambda key: key != "out")
        if values.get("models"):
            values["model"] = values["models"][0]  # the ensemble's first network names the run
        first = (values.get("models") or [values.get("model", EvolveSettings.model)])[0]
        resolve_class_options(values, first, class_spec, target)
        if seed_spec is not None:
            values["seeds"] = seeds
        if encoding_spec is not None:
            values["encodings"] = encodings
        result = api.evolve(collect(EvolveSettings, options, values=values), progress=not quiet, hooks=hooks)
    results = result if isinstance(result, list) else [result]  # a group of seeds: one result per run
    stopped = [r for r in results if r.interrupted]
    if stopped and not isinstance(result, list):
        click.echo(f"Interrupted: {result.message}. Continue with: fool evolve --resume {result.path}", err=True)
    elif stopped:
        for r in stopped:
            click.echo(f"Interrupted: {r.path}: {r.message}.", err=True)
        click.echo(f"Continue with: fool evolve --resume {results[0].path.parent}", err=True)
    if stopped:
        raise SystemExit(128 + (stopped[0].stop_signal or 2))  # 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
    for r in results:
        _report(r)


def _report(result) -> None:
    """Two lines per run: where it is and why it stopped, then the result (the last line says how many classes
    reached 99.99 %)."""
    summary = result.summary
    done = [c for c in summary["classes"] if c["confidence"] is not None]
    top = sum(c["confidence"] >= 0.9999 for c in done)
    if not done and summary["evaluations"]:  # NaN is never an elite: a model of NaN logits leaves an empty archive
        click.echo(f"Warning: no image got a finite confidence in {summary['evaluations']:,} evaluations; does the "
                   "model give NaN or infinite logits?", err=True)
    click.echo(f"{result.path}: generation {summary['generation']}, {summary['evaluations']:,} evaluations "
               f"({summary['evals_per_s'] or 0:,.0f}/s); stopped: {result.message}")
    click.echo(f"{top}/{len(summary['classes'])} classes at >= 99.99% (median confidence "
               f"{summary['median_confidence']:.4f})")
