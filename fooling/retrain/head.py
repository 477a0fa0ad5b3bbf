"""A pretrained ImageNet network with its classifier head widened to n + 1 outputs.

The head is the network's last ``nn.Linear`` with n outputs (EfficientNet's
``_fc``, ResNet's ``fc``, AlexNet's ``classifier.6``). Only the head is trained,
on the features the frozen network feeds it, so features are computed once per
image. A saved head is a state dict of an ``nn.Linear(F, n + 1)`` plus JSON
metadata (``"arch": "imagenet-head"``, the base model and the head's module
path); :mod:`fooling.classifiers.retrained` makes every such file a usable model name.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..classifiers import Classifier
from ..classifiers.retrained import HEAD_ARCH, replace_module  # noqa: F401  (re-exported: saved-head format)
from ..errors import FoolingError

FEATURE_CHUNK = 32  # images per forward pass when computing features


def find_head(net: nn.Module, num_classes: int) -> tuple[str, nn.Linear]:
    """(module path, layer) of the last ``nn.Linear`` in ``net`` with ``num_classes`` outputs."""
    found = [(path, m) for path, m in net.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not found:
        raise FoolingError(f"cannot find the classifier head (a Linear layer with {num_classes} outputs) "
                           f"in {type(net).__name__}")
    return found[-1]


def head_features(classifier: Classifier, head: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """What ``head`` receives for each image: images (N, C, H, W) in [0, 1] -> features (N, F), float32 on CPU."""
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].float().cpu()))
    try:
        for start in range(0, images.shape[0], FEATURE_CHUNK):
            classifier.probs(images[start:start + FEATURE_CHUNK])
    finally:
        handle.remove()
    return torch.cat(captured) if captured else torch.zeros(0, head.in_features)


def train_head(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *,
               rows: str, epochs: int, lr: float, batch_size: int, seed: int,
               on_epoch: Optional[Callable[[int, float], None]] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit an n + 1 output head on features (N, F) with labels (N,) in 0..n; index n is the fooling class.

    Starts from the base head ``weight`` (n, F), ``bias`` (n,) and a zero fooling row. rows="fooling"
    trains only the new row (the n trained rows stay as they were); rows="all" trains every row.
    Returns the new weight (n + 1, F) and bias (n + 1,). on_epoch(epoch, mean loss) follows each epoch.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    base_w = nn.Parameter(weight.detach().clone().float(), requires_grad=rows == "all")
    base_b = nn.Parameter(bias.detach().clone().float(), requires_grad=rows == "all")
    new_w = nn.Parameter(torch.zeros(1, weight.shape[1]))
    new_b = nn.Parameter(torch.zeros(1))
    params = [p for p in (base_w, base_b, new_w, new_b) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=gen)
        total = 0.0
        for start in range(0, len(labels), batch_size):
            idx = order[start:start + batch_size]
            logits = F.linear(features[idx], torch.cat([base_w, new_w]), torch.cat([base_b, new_b]))
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if on_epoch is not None:
            on_epoch(epoch + 1, total / max(1, len(labels)))
    return torch.cat([base_w, new_w]).detach(), torch.cat([base_b, new_b]).detach()


def head_predictions(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """Top-1 classes (N,) of a head (K, F), (K,) applied to features (N, F)."""
    with torch.inference_mode():
        return F.linear(features, weight, bias).argmax(1).numpy()
