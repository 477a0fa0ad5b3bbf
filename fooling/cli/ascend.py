"""`fool ascend`: gradient ascent toward target classes, or a bounded perturbation of a photo."""

from __future__ import annotations

import statistics
from fractions import Fraction
from typing import Optional

import click

from ..errors import FoolingError
from ..settings.ascend import AscendSettings
from .generated import GroupedCommand, SettingOption, collect, gather, set_wins, settings_options


def parse_epsilon(value: Optional[str], option: str = "--epsilon") -> Optional[float]:
    """'8/255' or '0.03' -> float; None stays None. ``option`` names the option in the error."""
    if value is None:
        return None
    try:
        return float(Fraction(value.strip()))
    except (ValueError, ZeroDivisionError):
        raise FoolingError(f"{option} must be a number or a fraction such as 8/255, not {value!r}") from None


@click.command("ascend", cls=GroupedCommand)
@settings_options(AscendSettings, skip=("classes", "epsilon"))
@click.option("--classes", "class_spec", default=None, cls=SettingOption, group="model",
              help="Target classes: names, indices or ranges, e.g. '0-9' or 'king penguin,goldfish' [all].")
@click.option("--epsilon", default=None, cls=SettingOption, group="perturbation",
              help="Perturbation mode: change the --init photo by at most this much (e.g. 8/255 for linf).")
@click.option("--resume", default=None, type=click.Path(), cls=SettingOption, group="run",
              help="Continue the interrupted run in this directory (takes no other settings).")
@click.option("--quiet", is_flag=True, cls=SettingOption, group="run", help="No progress line.")
def command(class_spec, epsilon, resume, quiet, **options) -> None:
    """Find images that MODEL labels as each target class with near certainty, by gradient ascent.

    The paper's third method: from (nearly) the mean image, step up the gradient of
    the target's score. The default preset (fast) climbs the logit with Adam (learning
    rate 0.01); the paper preset climbs the softmax probability with the paper's
    progress-based learning rate. The yosinski preset climbs the logit under Yosinski et al. (2015)'s regularisers
    (decay, blur) and gives more structured images. Records when each class became
    top-1 and passed 99%, 99.9% and 99.99%. With --init PHOTO --epsilon E it instead changes a
    real photo within an L-inf or L2 ball (targeted PGD or FGSM). With --from RUN it
    tunes the connection weights of a CPPN run's evolved elites (topologies unchanged)
    and writes the tuned genomes' .json beside the PNGs, ready for `fool render`.
    Any setting can also be given as --set KEY=VALUE, and --config FILE starts from a
    previous run's config.json.

    Writes a run directory like `fool evolve`: config.json, summary.json, metrics.csv
    (one row per step), elites/, log.txt, milestones.csv and checkpoint/. Ctrl-C (or
    SIGTERM, SIGHUP) stops after the current step, writes the elites so far and a
    checkpoint; `fool ascend --resume DIR` continues to the result an uninterrupted run gives.

    \b
    Examples:
      fool ascend --classes 'king penguin,goldfish' --steps 100 --out runs/ascent
      fool ascend --model mnist-lenet --classes 0-9 --preset yosinski
      fool ascend --classes goldfish --init cat.png --epsilon 8/255 --norm linf
      fool ascend --from runs/mnist-lenet_cppn_s0 --steps 100
      fool ascend --resume runs/ascent
    """
    from ..classes import parse_classes
    from ..classifiers import load_classifier, resolve_device
    from .. import api
    from ..run.ascend import run_model

    if resume is not None:
        if not resume.strip():
            raise FoolingError("--resume needs the run directory to continue, got an empty path")
        ctx = click.get_current_context()
        given = [p.opts[0] for p in ctx.command.params
                 if p.name not in ("resume", "quiet")
                 and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise FoolingError(f"--resume continues with the settings saved in its directory; drop {', '.join(given)}")
        _report(lambda: api.resume(resume, progress=not quiet, command="ascend"))
        return
    class_spec = set_wins(options, "classes", class_spec)  # names and ranges, as --classes
    values = gather(AscendSettings, options, keep_from_file=lambda key: key != "out",
                    extra={"epsilon": parse_epsilon(epsilon)} if epsilon is not None else None)
    from_run = values.get("from_run")
    if "model" not in values:
        values["model"] = (run_model(from_run) if from_run else None) or AscendSettings.model
        from ..classifiers.sources import runs_code

        if from_run and runs_code(values["model"]):  # a run directory is data: a name in it must not run code
            raise FoolingError(f"--from {from_run} was evolved against {values['model']}, which runs code when "
                               f"loaded; name it yourself with --model {values['model']} if you trust it")
    if "preset" not in values:
        values["preset"] = "cppn" if from_run else "fast"
    config = collect(AscendSettings, options, values=values)
    config.validate()
    config = api.with_model_sources(config)  # a model file: its absolute path, --input & co. recorded with it
    from ..classifiers.sources import require_gradients

    require_gradients(config.model, "fool ascend")
    classifier = load_classifier(config.model, resolve_device(config.device), config.crops)
    if class_spec is not None:
        config.classes = parse_classes(class_spec, classifier.labels)
    _report(lambda: api.ascend(config, progress=not quiet, classifier=classifier))


def _report(start) -> None:
    """Run ``start()`` (an :mod:`fooling.api` call) and report; on a stop signal, say what was written and
    exit 128 + the signal."""
    import signal

    from ..api import StoppedAtOnce

    try:
        result = start()
    except StoppedAtOnce as stop:
        click.echo(f"Stopped at once: the last checkpoint is in {stop.path}. "
                   f"Continue with: fool ascend --resume {stop.path}", err=True)
        raise SystemExit(130) from None
    summary = result.summary
    if result.interrupted:
        name = signal.Signals(result.stop_signal).name
        click.echo(f"Interrupted ({name}): {result.message}; elites of {len(summary['classes'])} classes and "
                   f"summary.json (finished: false) written to {result.path}. "
                   f"Continue with: fool ascend --resume {result.path}", err=True)
        raise SystemExit(128 + int(result.stop_signal))
    classes = summary["classes"]
    top = sum(c["passed"]["0.99"] is not None for c in classes)
    line = (f"{result.path}: {len(classes)} classes, {summary['evaluations']:,} evaluations; "
            f"median confidence {summary['median_confidence']:.4f}; {top}/{len(classes)} at >= 99%")
    if result.config.get("from_run"):
        start_median = statistics.median(c["start_confidence"] for c in classes)
        line += f" (evolved elites: median {start_median:.4f})"
    if result.config.get("epsilon") is not None:
        line += f"; largest change linf {max(c['linf'] for c in classes):.4f}, l2 {max(c['l2'] for c in classes):.3f}"
    click.echo(line)
