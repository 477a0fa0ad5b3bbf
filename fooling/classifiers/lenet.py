"""LeNet, the paper's MNIST network, and how the project trains it.

Caffe's LeNet: conv 5×5 ×20, max-pool, conv 5×5 ×50, max-pool, fc 500, ReLU, fc K.
Input: (N, 1, 28, 28) in [0, 1] (Caffe scaled pixels by 1/256; no mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    """(N, 1, 28, 28) in [0, 1] -> logits (N, num_classes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


@dataclass
class TrainSettings:
    """Every setting of one training run."""

    seed: int = 0
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-4
    augment: bool = True  # random shifts of up to 2 pixels


def _shift(batch: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Randomly translate each image by up to ``max_shift`` pixels (zero fill)."""
    n = batch.shape[0]
    padded = F.pad(batch, [max_shift] * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy.view(n, 1) + torch.arange(28).view(1, 28)).view(n, 1, 28, 1).expand(n, 1, 28, 28 + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(28).view(1, 28)).view(n, 1, 1, 28).expand(n, 1, 28, 28)
    return out.gather(3, cols)


def train_network(
    net: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    settings: TrainSettings,
    progress: Optional[Callable[[int, int, float], None]] = None,
) -> nn.Module:
    """Train ``net`` on uint8 images (N, 28, 28) or floats in [0, 1] (N, 1, 28, 28); deterministic for a seed.

    progress(epoch, epochs, loss) is called after each epoch.
    """
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    x = torch.as_tensor(images)
    x = (x.float() / 255.0 if x.dtype == torch.uint8 else x.float()).view(-1, 1, 28, 28)
    y = torch.as_tensor(labels, dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs)
    net.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            batch = _shift(x[idx], gen) if settings.augment else x[idx]
            loss = F.cross_entropy(net(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if progress:
            progress(epoch + 1, settings.epochs, total / len(x))
    return net.eval()


def accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray, mean: float = 0.0, std: float = 1.0) -> float:
    """Top-1 accuracy on uint8 images (N, 28, 28)."""
    with torch.inference_mode():
        x = (torch.as_tensor(images).float().view(-1, 1, 28, 28) / 255.0 - mean) / std
        pred = net(x).argmax(1).numpy()
    return float((pred == np.asarray(labels)).mean())
