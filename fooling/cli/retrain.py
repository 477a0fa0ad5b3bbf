"""`fool retrain`: the paper's defence experiment (a fooling class, retrain, evolve again)."""

from __future__ import annotations

from typing import Optional

import click

from ..errors import FoolingError
from ..settings.retrain import RetrainSettings
from .generated import GroupedCommand, SettingOption, collect, gather, set_wins, settings_options
from .options import class_indices


@click.command("retrain", cls=GroupedCommand)
@settings_options(RetrainSettings, skip=("classes",))
@click.option("--classes", "class_spec", default=None, cls=SettingOption, group="model",
              help="Classes to evolve fooling images for, e.g. '0-9' or 'goldfish,king penguin' [all].")
@click.option("--resume", default=None, type=click.Path(), cls=SettingOption, group="run",
              help="Continue the retrain directory DIR from its last finished step (takes no other settings).")
@click.option("--quiet", is_flag=True, cls=SettingOption, group="run",
              help="No progress output; print only the final table.")
@click.pass_context
def command(ctx: click.Context, class_spec: Optional[str], resume: Optional[str], quiet: bool, **options) -> None:
    """Defend a network by retraining it with a class of fooling images, and measure the defence.

    Iteration 0 evolves fooling images against MODEL. Iteration i trains network i
    with n + 1 outputs on the real images plus the fooling images of iterations
    0..i-1 (class n + 1, as large as a real class), measures its held-out accuracy
    and how many real images it calls fooling, then evolves fooling images against
    it for the n real classes. Network i is saved as NAME-ri and usable as
    `--model NAME-ri` everywhere. Writes table.csv/json/md and confidence.png.
    Any setting can also be given as --set KEY=VALUE, and --config FILE starts from a
    previous experiment's retrain.json.

    \b
    Examples:
      fool retrain --iterations 5 --encoding direct --out runs/retrain-direct
      fool retrain --resume runs/retrain-direct
      fool retrain --model imagenet-efficientnet-lite0 --imagenet-dir ~/imagenet-sample \\
                   --iterations 1 --encoding cppn --classes 0-99
    """
    from ..retrain.evolution import Interrupted
    from ..retrain.loop import RetrainRun

    if resume is not None:
        if not resume.strip():
            raise FoolingError("--resume needs the retrain directory to continue, got an empty path")
        given = [p.opts[0] for p in ctx.command.params if p.name not in ("resume", "quiet") and p.opts
                 and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise FoolingError(f"--resume continues with the settings saved in its directory; drop {', '.join(given)}")
        run = RetrainRun.resume(resume, progress=not quiet)
    else:
        class_spec = set_wins(options, "classes", class_spec)  # names and ranges, as --classes
        values = gather(RetrainSettings, options, keep_from_file=lambda key: key != "out")
        settings = collect(RetrainSettings, options, values=values)
        settings.validate()
        from ..classifiers.sources import is_source

        if is_source(settings.model):
            raise FoolingError(f"fool retrain retrains the built-in MNIST networks and ImageNet heads (it needs "
                               f"the model's training data and code); {settings.model} is a model file or "
                               f"source: fool it with fool evolve, compare with fool transfer")
        if class_spec is not None:
            settings.classes = class_indices(class_spec, settings.model)
        run = RetrainRun.start(settings, progress=not quiet)
    import signal

    def stop(signum, frame):  # SIGTERM, SIGHUP while training (evolution handles its own): as Ctrl-C does
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        rows = run.run()
    except (Interrupted, KeyboardInterrupt):
        click.echo(f"Interrupted. Continue with: fool retrain --resume {run.folder}", err=True)
        raise SystemExit(130)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    from ..retrain.report import to_markdown

    click.echo(to_markdown(rows), nl=False)
    caveat = run.task.caveat()
    if caveat:
        click.echo(f"Note: {caveat}.")
    click.echo(f"{run.folder}: table.csv, table.json, table.md, confidence.png")
