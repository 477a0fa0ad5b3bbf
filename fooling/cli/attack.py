"""`fool attack`: FGSM, PGD or CW-L2 on a batch of photos, each at its own resolution."""

from __future__ import annotations

import click

from ..errors import FoolingError
from ..settings.attack import ATTACK_METHODS, AttackSettings
from .ascend import parse_epsilon
from .generated import GroupedCommand, SettingOption, collect, gather, settings_options


@click.command("attack", cls=GroupedCommand)
@settings_options(AttackSettings, skip=("epsilon", "method", "cw_linf"))
@click.option("--images", "image_paths", multiple=True, cls=SettingOption, group="model",
              help="Photo files or folders (repeatable; comma-separated also works).")
@click.option("--method", default=None, cls=SettingOption, group="attack",
              help=f"{' | '.join(ATTACK_METHODS)}  [default: pgd]")
@click.option("--epsilon", default=None, cls=SettingOption, group="attack",
              help="Largest change, a number or a fraction such as 8/255  [default: 8/255].")
@click.option("--cw-linf", "cw_linf", default=None, cls=SettingOption, group="cw-l2",
              help="CW: also keep the change within this L-infinity distance, e.g. 8/255  [default: unbounded].")
@click.option("--quiet", is_flag=True, cls=SettingOption, group="run", help="No line per photo.")
def command(image_paths, method, epsilon, cw_linf, quiet, **options) -> None:
    """Perturb photos so that MODEL labels them --target CLASS (or anything but their label, --untargeted).

    Each photo is attacked at its own size: the network's resize and normalisation sit inside the
    differentiable path. Writes RUN_DIR/adversarial/ (same size and format as the input),
    perturbation/ (the change, amplified), results.csv and results.json (clean and adversarial
    prediction and confidence, success, L0/L2/L-inf of the change), and elites/ for `fool gallery`.

    CW-L2 defaults to a fast setting (5 binary-search steps from c = 1, 100 Adam iterations);
    --cw-preset original gives Carlini & Wagner's (9 steps from c = 1e-3, up to 10,000 iterations, lr 0.01,
    early abort); --cw-linf 8/255 also bounds its change in L-infinity. Every attack scores and keeps
    images rounded to 8 bits, and results.csv reports the prediction of each file as written (re-read).

    \b
    Examples:
      fool attack --images photos/ --target goldfish --method pgd --epsilon 8/255 --out runs/pgd
      fool attack --images cat.png --untargeted --method cw-l2 --out runs/cw
    """
    from ..run.attack import AttackRun

    extra = {}
    if epsilon is not None:
        value = parse_epsilon(epsilon)
        if not 0 < value:  # at most 1 for --norm linf (AttackSettings.check_together); an L2 ball may be larger
            raise FoolingError(f"--epsilon must be positive, got {epsilon}")
        extra["epsilon"] = value
    if cw_linf is not None:
        value = parse_epsilon(cw_linf, "--cw-linf")
        if not 0 < value <= 1:
            raise FoolingError(f"--cw-linf must be in (0, 1], got {cw_linf}")
        extra["cw_linf"] = value
    if method is not None:
        if method not in ATTACK_METHODS:
            raise FoolingError(f"unknown --method {method!r}; choose from {', '.join(ATTACK_METHODS)}")
        extra["method"] = method
    images = [p for item in image_paths for p in item.split(",") if p]
    if images:
        extra["images"] = images
    values = gather(AttackSettings, options, keep_from_file=lambda key: key != "out", extra=extra)
    config = collect(AttackSettings, options, values=values)
    run = AttackRun(config)
    run.run(progress=not quiet)
    s = run.summary
    click.echo(f"{run.rundir.path}: {s['successes']}/{s['images']} succeeded (judged on the files as written, "
               f"{s['successes_in_memory']} before writing); "
               f"mean L2 {s['mean_l2']:.4f}, mean Linf {s['mean_linf'] * 255:.2f}/255")
