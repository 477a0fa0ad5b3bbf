"""LeNet, the paper's MNIST network, and the two recipes the project trains it with.

Caffe's LeNet example: conv 5×5 ×20, max-pool 2, conv 5×5 ×50, max-pool 2, fc 500, ReLU, fc K
(431,080 parameters for K = 10). Input: (N, 1, 28, 28) in [0, 1] (Caffe scaled the bytes
by 1/256; no mean image in Caffe's example).

Recipes (:class:`TrainSettings`):

- :func:`caffe_recipe`, the paper's (``examples/mnist/lenet_solver.prototxt``): SGD with
  momentum 0.9, base learning rate 0.01 (biases ×2, Caffe's ``lr_mult: 2``), weight decay
  5e-4 on every parameter, the "inv" policy lr = base·(1 + γ·iter)^(−power) with γ 1e-4 and
  power 0.75, batch 64, 10,000 iterations, Xavier-uniform weights and zero biases, no
  augmentation.
- :func:`robust_recipe`, the project's hardened LeNets: Adam 1e-3, cosine schedule, 12 epochs,
  random shifts of up to 2 pixels, PyTorch's default initialisation. These are the bare
  :class:`TrainSettings` defaults.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .pooling import max_pool2


class LeNet(nn.Module):
    """(N, 1, 28, 28) in [0, 1] -> logits (N, num_classes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = max_pool2(self.conv1(x))
        x = max_pool2(self.conv2(x))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def caffe_xavier_(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """Caffe's ``xavier`` filler on every conv / linear weight, ``constant`` 0 on every bias.

    Caffe's xavier (variance_norm FAN_IN): uniform(−a, a) with a = sqrt(3 / fan_in), where
    fan_in = in_channels·kh·kw for a convolution and in_features for an inner product.
    """
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                a = math.sqrt(3.0 / fan_in)
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * (2 * a) - a)
                if module.bias is not None:
                    module.bias.zero_()
    return net


def inv_lr(base: float, iteration: int, gamma: float, power: float) -> float:
    """Caffe's "inv" learning-rate policy: base · (1 + gamma · iteration) ** (−power)."""
    return base * (1.0 + gamma * iteration) ** (-power)


@dataclass
class TrainSettings:
    """Every setting of one training run (the defaults are the robust recipe; see :func:`caffe_recipe`)."""

    seed: int = 0
    epochs: int = 12  # length when iterations is None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-4
    augment: bool = True  # random shifts of up to 2 pixels
    optimizer: str = "adam"  # "adam" or "sgd" (Caffe's SGD: momentum inside the learning rate)
    momentum: float = 0.9  # SGD only
    lr_policy: str = "cosine"  # "cosine" (per epoch) or "inv" (per iteration)
    gamma: float = 1e-4  # inv only
    power: float = 0.75  # inv only
    bias_lr_mult: float = 1.0  # Caffe's lr_mult for biases (2 in its LeNet)
    init: str = "torch"  # "torch" (PyTorch's default) or "xavier" (Caffe's filler, zero biases)
    iterations: Optional[int] = None  # training length in batches; None: `epochs` passes over the data

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.lr_policy not in ("cosine", "inv"):
            raise ValueError(f"lr_policy must be cosine or inv, got {self.lr_policy!r}")
        if self.init not in ("torch", "xavier"):
            raise ValueError(f"init must be torch or xavier, got {self.init!r}")

    def steps(self, n_train: int) -> int:
        """Number of batches this run takes on ``n_train`` training images."""
        if self.iterations is not None:
            return self.iterations
        return self.epochs * math.ceil(n_train / self.batch_size)

    def recipe(self) -> dict:
        """The settings that say *how* a network is trained: all but the seed and the length."""
        out = asdict(self)
        for key in ("seed", "epochs", "iterations"):
            out.pop(key)
        return out


RECIPE_VERSION = 2  # bump when training code changes what a recipe produces


def recipe_key(settings: TrainSettings) -> str:
    """A short hash of :meth:`TrainSettings.recipe` and :data:`RECIPE_VERSION` (stored in model metadata)."""
    text = json.dumps({"version": RECIPE_VERSION, **settings.recipe()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def caffe_recipe(seed: int = 0, iterations: int = 10_000) -> TrainSettings:
    """The paper's training: Caffe's ``lenet_solver.prototxt`` (see the module docstring)."""
    return TrainSettings(seed=seed, batch_size=64, lr=0.01, weight_decay=5e-4, augment=False, optimizer="sgd",
                         momentum=0.9, lr_policy="inv", gamma=1e-4, power=0.75, bias_lr_mult=2.0, init="xavier",
                         iterations=iterations)


def robust_recipe(seed: int = 0, epochs: int = 12) -> TrainSettings:
    """The project's hardened LeNets: Adam, cosine schedule, random 2-pixel shifts."""
    return TrainSettings(seed=seed, epochs=epochs)


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


def _as_float_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) (÷255, the project's [0, 1]; Caffe's ×1/256 differs by < 0.4 %) or floats -> (N, 1, 28, 28)."""
    x = torch.as_tensor(images)
    return (x.float() / 255.0 if x.dtype == torch.uint8 else x.float()).view(-1, 1, 28, 28)


class _CaffeSGD:
    """Caffe's SGD step: v = momentum·v + lr·(grad + decay·w); w -= v (lr per parameter group)."""

    def __init__(self, groups: list[tuple[list[nn.Parameter], float]], momentum: float, weight_decay: float) -> None:
        self.groups = groups  # (params, lr multiplier)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.history = {id(p): torch.zeros_like(p) for params, _ in groups for p in params}

    @torch.no_grad()
    def step(self, lr: float) -> None:
        for params, mult in self.groups:
            for p in params:
                if p.grad is None:
                    continue
                v = self.history[id(p)]
                v.mul_(self.momentum).add_(p.grad + self.weight_decay * p, alpha=lr * mult)
                p.sub_(v)

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None


def train_network(
    net: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    settings: TrainSettings,
    progress: Optional[Callable[[int, int, float], None]] = None,
) -> nn.Module:
    """Train ``net`` on uint8 images (N, 28, 28) or floats in [0, 1] (N, 1, 28, 28); deterministic for a seed.

    Batches are drawn in a fresh random order every pass over the data. progress(done, total, loss)
    is called after each epoch (epoch-based settings) or every 100 iterations (``iterations`` set),
    with the mean loss since the last call.
    """
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    if settings.init == "xavier":
        caffe_xavier_(net, gen)
    else:  # PyTorch's default initialisation, drawn from the seed (not from whatever the global RNG held)
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.reset_parameters()
    x = _as_float_images(images)
    y = torch.as_tensor(labels, dtype=torch.long)
    steps = settings.steps(len(x))
    per_epoch = math.ceil(len(x) / settings.batch_size)
    weights = [p for n, p in net.named_parameters() if not n.endswith("bias")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    if settings.optimizer == "sgd":
        opt = _CaffeSGD([(weights, 1.0), (biases, settings.bias_lr_mult)], settings.momentum, settings.weight_decay)
    else:
        opt = torch.optim.Adam([{"params": weights, "lr": settings.lr},
                                {"params": biases, "lr": settings.lr * settings.bias_lr_mult}],
                               weight_decay=settings.weight_decay)
        base_lrs = [g["lr"] for g in opt.param_groups]
    epochs_total = max(1, math.ceil(steps / per_epoch))
    net.train()
    order = torch.empty(0, dtype=torch.long)
    total, count = 0.0, 0
    for it in range(steps):
        if len(order) < settings.batch_size:  # a new pass: reshuffle, keep what is left of the last one first
            order = torch.cat([order, torch.randperm(len(x), generator=gen)])
        idx, order = order[: settings.batch_size], order[settings.batch_size:]
        epoch = it // per_epoch
        if settings.lr_policy == "inv":
            lr = inv_lr(settings.lr, it, settings.gamma, settings.power)
        else:  # cosine annealing per epoch, as torch's CosineAnnealingLR stepped once per epoch
            lr = settings.lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs_total))
        batch = _shift(x[idx], gen) if settings.augment else x[idx]
        loss = F.cross_entropy(net(batch), y[idx])
        opt.zero_grad()
        loss.backward()
        if settings.optimizer == "sgd":
            opt.step(lr)
        else:
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * lr / settings.lr
            opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
        done = it + 1
        if progress is not None:
            if settings.iterations is None and (done % per_epoch == 0 or done == steps):
                progress(math.ceil(done / per_epoch), epochs_total, total / count)
                total, count = 0.0, 0
            elif settings.iterations is not None and (done % 100 == 0 or done == steps):
                progress(done, steps, total / count)
                total, count = 0.0, 0
    return net.eval()


def accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray, mean: float = 0.0, std: float = 1.0) -> float:
    """Top-1 accuracy on uint8 images (N, 28, 28), evaluated in chunks."""
    hits = 0
    with torch.inference_mode():
        for start in range(0, len(images), 2000):
            x = (torch.as_tensor(images[start:start + 2000]).float().view(-1, 1, 28, 28) / 255.0 - mean) / std
            hits += int((net(x).argmax(1).numpy() == np.asarray(labels[start:start + 2000])).sum())
    return hits / len(images)


__all__ = ["LeNet", "TrainSettings", "caffe_recipe", "robust_recipe", "recipe_key", "inv_lr", "caffe_xavier_",
           "train_network", "accuracy", "replace"]
