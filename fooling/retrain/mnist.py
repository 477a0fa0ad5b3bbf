"""The MNIST side of the loop: a fresh LeNet with 11 outputs per iteration.

Training data of network i: the real training digits (4,000 embedded, or full
MNIST) plus one fooling class of ``fooling_class_size()`` images, an equal share
drawn from the fooling images of each earlier iteration (see
:func:`~fooling.retrain.pool.balanced_sample`). Network i is trained from scratch
with the base LeNet's settings and seed, as the paper retrained its LeNet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..classifiers import load_classifier
from ..classifiers.lenet import LeNet, TrainSettings, train_network
from ..classifiers.mnist import DIGITS, LENET_SEEDS
from ..data import load_mnist
from .pool import Pool, balanced_sample
from ..settings.retrain import RetrainSettings
from .task import RetrainTask, held_out_metrics


class MnistTask(RetrainTask):
    """MNIST digits, LeNets."""

    def __init__(self, settings: RetrainSettings, folder: Path) -> None:
        super().__init__(settings, folder)
        self.data = load_mnist(settings.mnist_dir)

    @property
    def labels(self) -> list[str]:
        return list(DIGITS)

    def fooling_class_size(self) -> int:
        return self.settings.fooling_images or round(len(self.data.train_labels) / self.num_real)

    def train_settings(self) -> TrainSettings:
        s = self.settings
        seed = LENET_SEEDS.get(s.model, 0) if s.train_seed is None else s.train_seed
        return TrainSettings(seed=seed, epochs=s.epochs or TrainSettings.epochs, lr=s.lr or TrainSettings.lr,
                             batch_size=s.batch_size)

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
        bar = self.training_progress(settings.epochs)
        try:
            net = train_network(LeNet(self.num_real + 1), images, labels, settings,
                                lambda epoch, epochs, loss: bar.advance(epoch, extra=f"loss {loss:.4f}"))
        finally:
            bar.close()
        meta = self.meta(i, {
            "arch": "lenet", "dataset": "mnist", "data": self.data.source, "train": vars(settings),
            "fooling_images": len(fooling), "real_images": len(real),
        })
        self.save(i, net.state_dict(), meta)
        return meta
