"""`fool train`: (re)train one of the project's LeNets and print its held-out accuracy."""

from __future__ import annotations

import math
import re

import click

from ..errors import FoolingError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a model name is also a file name in the models folder


@click.command("train")
@click.option("--name", default="mnist-lenet", show_default=True,
              help="Model name to save as (mnist-lenet, mnist-lenet-b, or a new name).")
@click.option("--seed", type=int, default=None, help="Training seed [0 for mnist-lenet, 1 for mnist-lenet-b, else 0].")
@click.option("--epochs", type=int, default=12, show_default=True, help="Passes over the training digits.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Digits per step.")
@click.option("--no-augment", is_flag=True, help="Train without random 2-pixel shifts.")
@click.option("--mnist-dir", default=None, type=click.Path(), help="Full MNIST IDX files [the embedded 5k digits].")
@click.option("--force", is_flag=True, help="Replace a model already saved under NAME.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def command(name, seed, epochs, lr, batch_size, no_augment, mnist_dir, force, quiet) -> None:
    """Train a LeNet on MNIST, cache it under NAME, and print its held-out accuracy.

    The trained network is then usable as `--model NAME` everywhere. A model
    already saved under NAME is only replaced with --force.
    """
    from ..classifiers.lenet import TrainSettings
    from ..classifiers.mnist import LENET_SEEDS, train_lenet
    from ..classifiers.registry import static_names
    from ..paths import models_dir

    for value, flag in ((epochs, "--epochs"), (batch_size, "--batch-size")):
        if value <= 0:
            raise FoolingError(f"{flag} must be positive, got {value}")
    if not math.isfinite(lr) or lr <= 0:
        raise FoolingError(f"--lr must be a positive finite number, got {lr}")
    if seed is not None and seed < 0:
        raise FoolingError(f"--seed must be 0 or positive, got {seed}")
    if not NAME_PATTERN.fullmatch(name):
        raise FoolingError(f"--name {name!r} is not a usable model name: use letters, digits, '.', '_' and '-', "
                           f"starting with a letter or digit")
    if name in static_names() and name not in LENET_SEEDS:
        raise FoolingError(f"--name {name} is a built-in model; choose another name")
    saved = [p for p in (models_dir() / f"{name}.pt", models_dir() / f"{name}.json") if p.exists()]
    if saved and not force:
        raise FoolingError(f"a model named {name} already exists ({saved[0]}); add --force to replace it")
    seed = LENET_SEEDS.get(name, 0) if seed is None else seed
    settings = TrainSettings(seed=seed, epochs=epochs, lr=lr, batch_size=batch_size, augment=not no_augment)
    _, acc = train_lenet(name, settings, mnist_dir=mnist_dir, quiet=quiet)
    click.echo(f"{name}: held-out accuracy {acc:.2%}")
