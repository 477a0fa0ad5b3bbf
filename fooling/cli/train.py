"""`fool train`: (re)train one of the project's LeNets and print its held-out accuracy."""

from __future__ import annotations

import click

from ..errors import FoolingError


@click.command("train")
@click.option("--name", default="mnist-lenet", show_default=True,
              help="Model name to save as (mnist-lenet, mnist-lenet-b, or a new name).")
@click.option("--seed", type=int, default=None, help="Training seed [0 for mnist-lenet, 1 for mnist-lenet-b, else 0].")
@click.option("--epochs", type=int, default=12, show_default=True, help="Passes over the training digits.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Digits per step.")
@click.option("--no-augment", is_flag=True, help="Train without random 2-pixel shifts.")
@click.option("--mnist-dir", default=None, type=click.Path(), help="Full MNIST IDX files [the embedded 5k digits].")
@click.option("--quiet", is_flag=True, help="No progress output.")
def command(name, seed, epochs, lr, batch_size, no_augment, mnist_dir, quiet) -> None:
    """Train a LeNet on MNIST, cache it under NAME, and print its held-out accuracy.

    The trained network is then usable as `--model NAME` everywhere.
    """
    from ..classifiers.lenet import TrainSettings
    from ..classifiers.mnist import LENET_SEEDS, train_lenet

    for value, flag in ((epochs, "--epochs"), (batch_size, "--batch-size")):
        if value <= 0:
            raise FoolingError(f"{flag} must be positive, got {value}")
    if lr <= 0:
        raise FoolingError(f"--lr must be positive, got {lr}")
    if not name or "/" in name or ":" in name:
        raise FoolingError(f"--name {name!r} is not a usable model name")
    seed = LENET_SEEDS.get(name, 0) if seed is None else seed
    settings = TrainSettings(seed=seed, epochs=epochs, lr=lr, batch_size=batch_size, augment=not no_augment)
    _, acc = train_lenet(name, settings, mnist_dir=mnist_dir, quiet=quiet)
    click.echo(f"{name}: held-out accuracy {acc:.2%}")
