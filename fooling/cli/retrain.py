"""`fool retrain`: the paper's defence experiment (a fooling class, retrain, evolve again)."""

from __future__ import annotations

from typing import Optional

import click

from ..config import ENCODINGS, PRESETS
from ..errors import FoolingError

SETTING_OPTIONS = (
    "model", "iterations", "encoding", "preset", "class_spec", "generations", "population", "runs_per_iteration",
    "snapshot_every", "min_confidence", "fooling_images", "image_size", "epochs", "lr", "batch_size",
    "train_seed", "name", "seed", "device", "mnist_dir", "imagenet_dir", "held_out", "head_rows", "out",
)


def _classes(spec: Optional[str], model: str) -> Optional[list[int]]:
    if spec is None:
        return None
    from ..classes import parse_classes
    from ..classifiers import load_classifier

    return parse_classes(spec, load_classifier(model, "cpu").labels)


@click.command("retrain")
@click.option("--model", default=None, help="Base network to defend (see `fool models`) [mnist-lenet].")
@click.option("--iterations", type=int, default=None, help="Retraining iterations K: networks 1..K are trained [5].")
@click.option("--encoding", default=None, help=f"Genome encoding of the fooling images: {' | '.join(ENCODINGS)} [direct].")
@click.option("--preset", default=None, help=f"Evolution operator settings: {' | '.join(PRESETS)} [default].")
@click.option("--classes", "class_spec", default=None,
              help="Classes to evolve fooling images for, e.g. '0-9' or 'goldfish,king penguin' [all].")
@click.option("--generations", type=int, default=None, help="Generations of each evolution run [200].")
@click.option("--population", type=int, default=None, help="Children per generation of each run [200].")
@click.option("--runs-per-iteration", type=int, default=None,
              help="Independent evolution runs (seeds) per iteration [2].")
@click.option("--snapshot-every", type=int, default=None,
              help="Every N generations each class's elite, if new, joins the fooling images [10].")
@click.option("--min-confidence", type=float, default=None,
              help="Pool only elites at least this confident [0: every snapshotted elite].")
@click.option("--fooling-images", type=int, default=None,
              help="Size of the fooling class in each training [the mean size of a real class].")
@click.option("--image-size", type=int, default=None, help="Side of evolved ImageNet images [as fool evolve].")
@click.option("--epochs", type=int, default=None, help="Training epochs [12 for a LeNet, 30 for an ImageNet head].")
@click.option("--lr", type=float, default=None, help="Adam learning rate of the training [0.001].")
@click.option("--batch-size", type=int, default=None, help="Training batch size [64].")
@click.option("--train-seed", type=int, default=None,
              help="Training seed [the base LeNet's: 0 for mnist-lenet, 1 for mnist-lenet-b; --seed for ImageNet].")
@click.option("--name", default=None, help="Save the networks as NAME-r1..NAME-rK [<model>-<encoding>].")
@click.option("--seed", type=int, default=None, help="Seeds every evolution run and the fooling-image sampling [0].")
@click.option("--device", default=None, help="auto | cpu | cuda [auto: CUDA when present].")
@click.option("--mnist-dir", default=None, type=click.Path(), help="Full MNIST IDX files [the embedded 5k digits].")
@click.option("--imagenet-dir", default=None, type=click.Path(),
              help="Real images for ImageNet networks: one sub-folder per class, named by index or class name.")
@click.option("--held-out", type=float, default=None,
              help="Share of each --imagenet-dir class held out for measuring [0.2].")
@click.option("--head-rows", default=None,
              help="ImageNet head training: 'fooling' (only the new row) or 'all' (every row) [fooling].")
@click.option("--out", default=None, type=click.Path(), help="Retrain directory [runs/retrain_<name>_s<seed>].")
@click.option("--resume", default=None, type=click.Path(),
              help="Continue the retrain directory DIR from its last finished step (takes no other settings).")
@click.option("--quiet", is_flag=True, help="No progress output; print only the final table.")
def command(resume: Optional[str], quiet: bool, **options) -> None:
    """Defend a network by retraining it with a class of fooling images, and measure the defence.

    Iteration 0 evolves fooling images against MODEL. Iteration i trains network i
    with n + 1 outputs on the real images plus the fooling images of iterations
    0..i-1 (class n + 1, as large as a real class), measures its held-out accuracy
    and how many real images it calls fooling, then evolves fooling images against
    it for the n real classes. Network i is saved as NAME-ri and usable as
    `--model NAME-ri` everywhere. Writes table.csv/json/md and confidence.png.

    \b
    Examples:
      fool retrain --iterations 5 --encoding direct --out runs/retrain-direct
      fool retrain --resume runs/retrain-direct
      fool retrain --model imagenet-efficientnet-lite0 --imagenet-dir ~/imagenet-sample \\
                   --iterations 1 --encoding cppn --classes 0-99
    """
    from ..retrain.loop import RetrainRun
    from ..retrain.settings import RetrainSettings
    from ..retrain.evolution import Interrupted

    given = [key for key in SETTING_OPTIONS if options[key] is not None]
    if resume:
        if given:
            flags = ", ".join("--" + ("classes" if k == "class_spec" else k.replace("_", "-")) for k in given)
            raise FoolingError(f"--resume continues with the settings saved in its directory; drop {flags}")
        run = RetrainRun.resume(resume, progress=not quiet)
    else:
        values = {k: v for k, v in options.items() if v is not None and k != "class_spec"}
        settings = RetrainSettings(**values)
        settings.validate()
        settings.classes = _classes(options["class_spec"], settings.model)
        run = RetrainRun.start(settings, progress=not quiet)
    try:
        rows = run.run()
    except (Interrupted, KeyboardInterrupt):
        click.echo(f"Interrupted. Continue with: fool retrain --resume {run.folder}", err=True)
        raise SystemExit(130)
    from ..retrain.report import to_markdown

    click.echo(to_markdown(rows), nl=False)
    click.echo(f"{run.folder}: table.csv, table.json, table.md, confidence.png")
