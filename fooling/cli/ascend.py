"""`fool ascend`: gradient ascent toward target classes, or a bounded perturbation of a photo."""

from __future__ import annotations

import statistics
from fractions import Fraction
from typing import Optional

import click

from ..errors import FoolingError


def parse_epsilon(value: Optional[str]) -> Optional[float]:
    """'8/255' or '0.03' -> float; None stays None."""
    if value is None:
        return None
    try:
        return float(Fraction(value.strip()))
    except (ValueError, ZeroDivisionError):
        raise FoolingError(f"--epsilon must be a number or a fraction such as 8/255, not {value!r}") from None


@click.command("ascend")
@click.option("--model", default=None,
              help="Classifier to fool (see `fool models`) [imagenet-efficientnet-lite0, or --from's model].")
@click.option("--classes", "class_spec", default=None,
              help="Target classes: names, indices or ranges, e.g. '0-9' or 'king penguin,goldfish' [all].")
@click.option("--steps", type=int, default=200, show_default=True, help="Gradient steps per image (at most).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds each class's starting noise.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda (auto: CUDA when present).")
@click.option("--out", default=None, type=click.Path(), help="Run directory [runs/<model>_ascent_s<seed>].")
@click.option("--quiet", is_flag=True, help="No progress line.")
@click.option("--preset", default=None,
              help="paper: climb the probability at the progress rate, no regularisers | yosinski: climb the "
                   "logit in normalised steps, decay 1e-4, blur radius 1.0 every 4 steps | cppn: climb the logit "
                   "with Adam, learning rate 0.03 [paper; cppn with --from].")
@click.option("--objective", type=click.Choice(["prob", "logit"]), default=None,
              help="Climb the target's softmax probability or its logit [preset].")
@click.option("--rate", type=click.Choice(["progress", "normalised", "adam"]), default=None,
              help="Step length: progress (aim for a set gain in probability), normalised "
                   "(mean pixel change --step-size) or adam (Adam, learning rate --step-size) [preset].")
@click.option("--decay", type=float, default=None, help="L2 decay per step toward the mean image [preset].")
@click.option("--blur-radius", type=float, default=None, help="Gaussian blur sigma in pixels, 0 = off [preset].")
@click.option("--blur-every", type=int, default=None, help="Blur every K steps [preset].")
@click.option("--norm-percentile", type=float, default=None,
              help="Zero pixels whose norm is below this percentile each step (0-100) [preset].")
@click.option("--contribution-percentile", type=float, default=None,
              help="Zero pixels whose contribution |x·grad| is below this percentile (0-100) [preset].")
@click.option("--from", "from_run", default=None, type=click.Path(),
              help="Tune the weights of the CPPN elites of this `fool evolve --encoding cppn` run, each toward "
                   "its own class (instead of starting from pixels).")
@click.option("--init", default="mean", show_default=True,
              help="Start image: mean (the network's mean image plus faint noise), uniform (noise), or a photo file.")
@click.option("--epsilon", default=None,
              help="Perturbation mode: change the --init photo by at most this much (e.g. 8/255 for linf).")
@click.option("--norm", type=click.Choice(["linf", "l2"]), default="linf", show_default=True,
              help="Norm that bounds the perturbation (pixels in [0, 1]).")
@click.option("--attack", type=click.Choice(["pgd", "fgsm"]), default="pgd", show_default=True,
              help="Perturbation method: pgd (--steps steps) or fgsm (one step of --epsilon).")
@click.option("--step-size", type=float, default=None,
              help="PGD step [2.5 * epsilon / steps], the mean pixel change of a normalised step [0.01], "
                   "or Adam's learning rate [0.03].")
@click.option("--stop-at", type=float, default=0.9999, show_default=True,
              help="An image stops once its target confidence reaches this (0: run every step).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Classes optimised at once.")
@click.option("--checkpoint-every", type=int, default=50, show_default=True,
              help="Checkpoint every N steps within a batch (0: only after each batch).")
@click.option("--resume", default=None, type=click.Path(),
              help="Continue the interrupted run in this directory (takes no other settings).")
@click.option("--crops", type=click.Choice(["1", "10"]), default="1", show_default=True,
              help="10: optimise the softmax averaged over ten crops (the paper's ImageNet scoring).")
@click.option("--image-size", type=int, default=None,
              help="Side of the optimised images [what the network's preprocessing resizes to, e.g. 256].")
def command(model, class_spec, steps, seed, device, out, quiet, preset, objective, rate, decay, blur_radius,
            blur_every, norm_percentile, contribution_percentile, from_run, init, epsilon, norm, attack, step_size,
            stop_at, batch_size, checkpoint_every, resume, crops, image_size) -> None:
    """Find images that MODEL labels as each target class with near certainty, by gradient ascent.

    The paper's third method: from (nearly) the mean image, step up the gradient of
    the target's softmax probability with a progress-based learning rate. The
    yosinski preset climbs the logit under Yosinski et al. (2015)'s regularisers
    (decay, blur) and gives more structured images. Records when each class became
    top-1 and passed 99%, 99.9% and 99.99%. With --init PHOTO --epsilon E it instead changes a
    real photo within an L-inf or L2 ball (targeted PGD or FGSM). With --from RUN it
    tunes the connection weights of a CPPN run's evolved elites (topologies unchanged)
    and writes the tuned genomes' .json beside the PNGs, ready for `fool render`.

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
    from ..run.ascend import AscendConfig, AscentRun, run_model

    if resume:
        ctx = click.get_current_context()
        given = [p.opts[0] for p in ctx.command.params
                 if p.name not in ("resume", "quiet")
                 and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise FoolingError(f"--resume continues with the settings saved in its directory; drop {', '.join(given)}")
        _finish(AscentRun.resume(resume), quiet)
        return
    if model is None:
        model = (run_model(from_run) if from_run else None) or "imagenet-efficientnet-lite0"
    if preset is None:
        preset = "cppn" if from_run else "paper"

    config = AscendConfig(
        model=model, steps=steps, seed=seed, device=device, crops=int(crops), image_size=image_size,
        batch_size=batch_size, stop_at=stop_at, checkpoint_every=checkpoint_every, preset=preset, init=init,
        objective=objective, rate=rate,
        decay=decay, blur_radius=blur_radius,
        blur_every=blur_every, norm_percentile=norm_percentile, contribution_percentile=contribution_percentile,
        epsilon=parse_epsilon(epsilon), norm=norm, attack=attack, step_size=step_size, from_run=from_run, out=out,
    )
    config.validate()
    classifier = load_classifier(model, resolve_device(device), int(crops))
    if class_spec is not None:
        config.classes = parse_classes(class_spec, classifier.labels)
    _finish(AscentRun(config, classifier), quiet)


def _finish(run, quiet: bool) -> None:
    """Run ``run`` and report; on a stop signal, say what was written and exit 128 + the signal."""
    import signal

    config = run.config
    try:
        summary = run.run(progress=not quiet)
    except KeyboardInterrupt:
        click.echo(f"Stopped at once: the last checkpoint is in {run.rundir.path}. "
                   f"Continue with: fool ascend --resume {run.rundir.path}", err=True)
        raise SystemExit(130) from None
    if run.interrupted:
        name = signal.Signals(run.stop_signal).name
        click.echo(f"Interrupted ({name}): {summary['classes_done']} of {len(run.classes)} classes finished; "
                   f"elites of {len(summary['classes'])} classes and summary.json (finished: false) written to "
                   f"{run.rundir.path}. Continue with: fool ascend --resume {run.rundir.path}", err=True)
        raise SystemExit(128 + int(run.stop_signal))
    classes = summary["classes"]
    top = sum(c["passed"]["0.99"] is not None for c in classes)
    line = (f"{run.rundir.path}: {len(classes)} classes, {summary['evaluations']:,} evaluations; "
            f"median confidence {summary['median_confidence']:.4f}; {top}/{len(classes)} at >= 99%")
    if config.from_run:
        start = statistics.median(c["start_confidence"] for c in classes)
        line += f" (evolved elites: median {start:.4f})"
    if config.perturbation:
        line += f"; largest change linf {max(c['linf'] for c in classes):.4f}, l2 {max(c['l2'] for c in classes):.3f}"
    click.echo(line)
