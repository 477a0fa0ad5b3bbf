"""`fool sweep`: a grid of evolution runs (seeds x models x encodings ...), in sequence or as Ray tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click
from click.core import ParameterSource

from ..errors import FoolingError, shown
from ..settings.evolve import PLACEMENT_SETTINGS, RESUME_SETTINGS, EvolveSettings
from ..settings.sweep import AXIS_OPTIONS, AXIS_SETTINGS, SweepSettings, parse_models, split_list
from .generated import GroupedCommand, SettingOption, gather, settings_options
from .options import class_options, resolve_class_options

GROUP = "sweep"
HOW_OPTIONS = ("workers", "ray_address", "cpus_per_run", "gpus_per_run", "quiet", "resume")


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _fixed_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The settings every run shares: --config (minus the axes and out), the options given, then --set.
    An axis given with --set is refused in one line (it has its own option); --config's axes are
    :func:`_file_axes`."""
    from ..settings.fields import parse_assignments

    for key in parse_assignments(EvolveSettings, options.get("assignments") or ()):
        if key in AXIS_SETTINGS:
            raise FoolingError(f"--set {key}=...: {key} is an axis of the sweep; give it with {AXIS_OPTIONS[key]}")
    return gather(EvolveSettings, options, keep_from_file=lambda k: k not in AXIS_SETTINGS + PLACEMENT_SETTINGS)


def _file_axes(options: dict[str, Any]) -> dict[str, Any]:
    """What --config's file says of the axes (by EvolveSettings name: model, models, encoding, encodings, strategy,
    preset, combine, seed, seeds), for the axes not given on the command line: a sweep of a run's config.json
    repeats that run's experiment, not the defaults'; a file naming a group's seeds or encodings (as `fool evolve
    --config` takes it) sweeps them. Its strategy only if the run chose it (left to the preset, each point's preset
    chooses: EvolveSettings.read drops it). A value no run takes (a repeated seed, an empty list): one line naming
    the file."""
    if not options.get("config_file"):
        return {}
    path = options["config_file"]
    axes = {k: v for k, v in EvolveSettings.read(path).items() if k in AXIS_SETTINGS and k != "out"}
    for key, value in axes.items():
        check = EvolveSettings.field(key).metadata.get("check")
        message = check(value) if check is not None and value is not None else None
        if message:
            raise FoolingError(f"{path}: {key} {message}, got {shown(value)}")
    return axes


def _table(outcomes: list, out: Path) -> str:
    from ..plots.runs import format_table, run_record

    rows = []
    for o in outcomes:
        if (o.path / "config.json").is_file():
            record = run_record(o.path, out)
        else:
            record = {"run": o.name, "model": None, "encoding": None, "strategy": None, "preset": None,
                      "seed": None, "generation": None, "budget": None, "evaluations": None, "classes": None,
                      "classes_top": None, "state": "not run", "pid": None}
        if o.action == "failed":
            record["state"] = f"error: {o.error}"
        elif o.action == "not run":
            record["state"] = "not run"
        rows.append(record)
    return format_table(rows)


@click.command("sweep", cls=GroupedCommand)
@settings_options(EvolveSettings, skip=AXIS_SETTINGS + PLACEMENT_SETTINGS + ("classes", "target"))
@click.option("--classes", "class_spec", default=None, cls=SettingOption, group="model",
              help="Classes to evolve for: names (read against the first network of --models), indices or ranges, "
                   "e.g. '0-4' [all].")
@click.option("--target", default=None, cls=SettingOption, group="search",
              help="The one class a --strategy ga run fools (index or name, read against the first network).")
@click.option("--seeds", "seed_spec", default=None, cls=SettingOption, group=GROUP, metavar="SPEC",
              help="Seeds, e.g. 0-4 or 0,2,7 (an axis).  [default: 0]")
@click.option("--models", "model_specs", multiple=True, cls=SettingOption, group=GROUP, metavar="A,B,C+D",
              help="Networks (an axis), comma-separated or as repeated --models; 'C+D' is an ensemble of C "
                   "and D.  [default: mnist-lenet]")
@click.option("--encodings", multiple=True, cls=SettingOption, group=GROUP, metavar="direct,cppn",
              help="Encodings (an axis).  [default: direct]")
@click.option("--strategies", multiple=True, cls=SettingOption, group=GROUP, metavar="S1,S2",
              help="Strategies (an axis; then part of the run names) [each point's preset's].")
@click.option("--presets", multiple=True, cls=SettingOption, group=GROUP, metavar="P1,P2",
              help="Presets (an axis; then part of the run names) [default].")
@click.option("--combines", multiple=True, cls=SettingOption, group=GROUP, metavar="mean,min",
              help="How ensembles combine their confidences (an axis for the ensemble entries of --models only).  "
                   "[default: mean]")
@click.option("--out", default=None, type=click.Path(), cls=SettingOption, group=GROUP, metavar="DIR",
              help="The sweep's folder: DIR/sweep.json and one run directory per point.")
@click.option("--resume", default=None, type=click.Path(), cls=SettingOption, group=GROUP, metavar="DIR",
              help="Continue the sweep in DIR (its grid from DIR/sweep.json; --generations, --until, "
                   "--checkpoint-every, --checkpoint-seconds and the Ray options may accompany it).")
@click.option("--workers", type=int, default=None, cls=SettingOption, group=GROUP,
              help="Run N points at a time as Ray tasks on a local Ray instance (needs the ray extra).")
@click.option("--ray-address", default=None, cls=SettingOption, group=GROUP, metavar="ADDR",
              help="Run the points as Ray tasks on this cluster (auto or HOST:PORT; see `ray start`).")
@click.option("--cpus-per-run", type=float, default=1.0, cls=SettingOption, group=GROUP,
              help="CPUs each Ray task reserves.  [default: 1]")
@click.option("--gpus-per-run", type=float, default=None, cls=SettingOption, group=GROUP,
              help="GPUs each Ray task reserves (fractions share a GPU) [1 where the cluster has GPUs, else 0].")
@click.option("--quiet", is_flag=True, cls=SettingOption, group=GROUP, help="No progress bar.")
@click.pass_context
def command(ctx, class_spec, target, seed_spec, model_specs, encodings, strategies, presets, combines, out, resume, workers,
            ray_address, cpus_per_run, gpus_per_run, quiet, **options) -> None:
    """Run a grid of evolution runs: one run directory per point under DIR, named
    by its values (model entry, encoding, [strategy], [preset], s<seed>: e.g.
    DIR/mnist-lenet_direct_s0, DIR/mnist-lenet+mnist-lenet-b-min_cppn_s3), and
    DIR/sweep.json recording the grid.

    Every other setting of `fool evolve` is one value for all runs (its option,
    --set KEY=VALUE or --config FILE); an axis not given takes --config's value
    (a run's config.json: its model, encoding, preset, seed, ...). Running the same command again (or
    `fool sweep --resume DIR`) skips finished runs, resumes interrupted ones and
    starts the rest; a grid may add points to DIR's but not change it otherwise.
    Without --workers / --ray-address the runs go one after another in this
    process; with them each run is a Ray task on its own worker (device auto
    there). A failed run is reported in the final table (`fool runs` format) and
    the others go on; the exit status is 1 if any run did not finish.

    \b
    Examples:
      fool sweep --seeds 0-4 --models mnist-lenet,mnist-digitcnn --encodings direct,cppn --out runs/grid
      fool sweep --seeds 0-1 --models mnist-lenet+mnist-lenet-b --combines min,mean --out runs/ens
      fool sweep --seeds 0-9 --strategies snes-elites,map-elites --generations 100 --out runs/s --workers 2
      fool sweep --resume runs/grid --generations 400 --ray-address auto --gpus-per-run 0.5
    """
    from ..run import sweep as sweeping

    if resume is not None:
        fixed = [p.opts[0] for p in ctx.command.params if p.name not in (*RESUME_SETTINGS, *HOW_OPTIONS)
                 and p.opts and _given(ctx, p.name)]
        if fixed:
            raise FoolingError(f"{', '.join(fixed)} cannot accompany --resume: the sweep keeps the grid in its "
                               f"sweep.json (only --generations, --until, --checkpoint-every, --checkpoint-seconds, "
                               f"--quiet and the Ray options may)")
        if not str(resume).strip():
            raise FoolingError("--resume needs the sweep's folder, got an empty path")
        settings = sweeping.recorded(resume)
        settings.settings.update({k: options[k] for k in RESUME_SETTINGS if options.get(k) is not None})
    else:
        if out is None:
            raise FoolingError("fool sweep needs --out DIR (the folder of its run directories)")
        from ..run.multi import parse_seeds

        class_spec, target = class_options(options, class_spec, target)
        axes = _file_axes(options)  # the axes not given take --config's values (else the defaults)
        given_models = axes.get("models") or [axes.get("model", EvolveSettings.model)]
        models = parse_models(model_specs) if model_specs else [list(given_models)]
        fixed = _fixed_settings(options)
        resolve_class_options(fixed, models[0][0], class_spec, target)  # names read against the first network
        settings = SweepSettings(
            out=out, seeds=parse_seeds(seed_spec) if seed_spec is not None else
            list(axes.get("seeds") or [axes.get("seed", 0)]),  # a group's seeds, as fool evolve --config runs them
            models=models,
            encodings=split_list(encodings, "--encodings") if encodings else
            list(axes.get("encodings") or [axes.get("encoding", "direct")]),
            strategies=split_list(strategies, "--strategies") if strategies else
            [axes["strategy"]] if axes.get("strategy") else None,
            presets=split_list(presets, "--presets") if presets else
            [axes["preset"]] if axes.get("preset", "default") != "default" else None,
            combines=split_list(combines, "--combines") if combines else
            [axes["combine"]] if axes.get("combine", "mean") != "mean" else None,  # as fool evolve --config --models
            settings=fixed)
    settings = settings.replace(workers=workers, ray_address=ray_address, cpus_per_run=cpus_per_run,
                                gpus_per_run=gpus_per_run)

    def announce(points: list) -> None:
        where = f"Ray tasks on {ray_address}" if ray_address else \
            f"Ray tasks, {workers} at a time" if workers else "one after another"
        click.echo(f"{settings.out}: {len(points)} runs ({where})", err=True)

    try:
        outcomes = sweeping.sweep(settings, progress=not quiet, on_start=announce)
    except KeyboardInterrupt:
        click.echo(f"Interrupted. Continue with: fool sweep --resume {settings.out}", err=True)
        raise SystemExit(130)
    click.echo(_table(outcomes, Path(settings.out).expanduser().absolute()))  # the runs' paths are absolute
    _exit(outcomes, settings.out)


def _exit(outcomes: list, out: Optional[str]) -> None:
    finished = sum(o.ok for o in outcomes)
    if any(o.action in ("interrupted", "not run") for o in outcomes):
        click.echo(f"Interrupted: {finished} of {len(outcomes)} runs finished. Continue with: "
                   f"fool sweep --resume {out}", err=True)
        raise SystemExit(130)
    if finished < len(outcomes):
        failed = [o for o in outcomes if not o.ok]
        raise FoolingError(f"{len(failed)} of {len(outcomes)} runs did not finish ({failed[0].name}: "
                           f"{failed[0].error or failed[0].action})")
