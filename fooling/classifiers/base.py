"""The classifier wrapper every strategy talks to.

A :class:`Classifier` takes images in [0, 1] of any size, shape (N, C, H, W),
does the network's own resizing, cropping and normalisation inside, and returns
softmax probabilities (N, K). ``probs`` runs in chunks under ``inference_mode``;
``logits`` is the differentiable path used by gradient ascent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FoolingError

# An evolved image reaches the network resized; it may be at most this many times smaller (a side)
# than the network's input. Smaller images would reach it as a few flat blocks of colour.
MAX_UPSCALE = 4


@dataclass(frozen=True)
class Preprocess:
    """How a network wants its input.

    size: (H, W) the network sees. resize: shorter side to resize to before
    cropping (None: resize straight to ``size``). channels: 1 (grey) or 3 (RGB).
    mean / std: per-channel normalisation applied after resizing.
    """

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: Optional[int] = None


def centre_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> the central (N, C, h, w) window (a view)."""
    h, w = size
    H, W = images.shape[-2:]
    top, left = (H - h) // 2, (W - w) // 2
    return images[..., top : top + h, left : left + w]


def ten_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Four corners, centre and their mirrors: (N, C, H, W) -> (10, N, C, h, w)."""
    h, w = size
    H, W = images.shape[-2:]
    crops = [
        images[..., :h, :w],
        images[..., :h, W - w :],
        images[..., H - h :, :w],
        images[..., H - h :, W - w :],
        centre_crop(images, size),
    ]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops)


class Classifier:
    """A frozen network plus its preprocessing: images (N, C, H, W) in [0, 1] -> probabilities (N, K).

    ``crops=10`` averages the softmax over the ten crops of :func:`ten_crop` (the
    paper's ImageNet scoring); ``crops=1`` resizes (and centre-crops) once.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        labels: Sequence[str],
        preprocess: Preprocess,
        device: torch.device | str = "cpu",
        crops: int = 1,
        chunk_size: int = 256,
    ) -> None:
        if crops not in (1, 10):
            raise ValueError("crops must be 1 or 10")
        if crops == 10 and not (preprocess.resize is not None and preprocess.resize > min(preprocess.size)):
            h, w = preprocess.size
            raise FoolingError(f"--crops 10 is for networks that take crops of a larger image (ImageNet ones); "
                               f"{name} sees its whole {h}x{w} input, so use --crops 1")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.name = name
        self.labels = list(labels)
        self.spec = preprocess
        self.crops = crops
        self.chunk_size = chunk_size
        self._mean = torch.tensor(preprocess.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(preprocess.std, device=self.device).view(1, -1, 1, 1)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the network itself sees: the natural size of images to evolve."""
        return (self.spec.channels, *self.spec.size)

    @property
    def min_image_side(self) -> int:
        """The smallest side of an image this classifier takes: its input side / MAX_UPSCALE."""
        return max(1, math.ceil(min(self.spec.size) / MAX_UPSCALE))

    def _channels(self, images: torch.Tensor) -> torch.Tensor:
        c = images.shape[1]
        if c == self.spec.channels:
            return images
        if c == 3 and self.spec.channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype)
            return (images * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
        if c == 1 and self.spec.channels == 3:
            return images.expand(-1, 3, -1, -1)
        raise ValueError(f"cannot feed {c}-channel images to {self.name}")

    def _resize(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(images.shape[-2:]) == tuple(size):
            return images
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> normalised network input (N·crops, C', h, w), crops outermost."""
        images = self._channels(images.to(self.device, torch.float32))
        spec = self.spec
        if spec.resize is not None:
            H, W = images.shape[-2:]
            scale = spec.resize / min(H, W)
            images = self._resize(images, (max(spec.size[0], round(H * scale)), max(spec.size[1], round(W * scale))))
            if self.crops == 10:
                images = ten_crop(images, spec.size).flatten(0, 1)
            else:
                images = centre_crop(images, spec.size)
        elif self.crops == 10:
            images = ten_crop(self._resize(images, spec.size), spec.size).flatten(0, 1)
        else:
            images = self._resize(images, spec.size)
        return (images - self._mean) / self._std

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable logits (N, K); with 10 crops, the mean of the crops' logits."""
        n = images.shape[0]
        out = self.net(self.prepare(images))
        return out.view(self.crops, n, -1).mean(0) if self.crops > 1 else out

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable log-softmax (N, K), averaged in probability space over crops."""
        n = images.shape[0]
        logp = torch.log_softmax(self.net(self.prepare(images)).float(), dim=-1)
        if self.crops > 1:
            logp = torch.logsumexp(logp.view(self.crops, n, -1), dim=0) - torch.log(torch.tensor(float(self.crops)))
        return logp

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities (N, K), float32 on the classifier's device, no gradient."""
        out = []
        with torch.inference_mode():
            step = max(1, self.chunk_size // self.crops)
            for start in range(0, images.shape[0], step):
                chunk = images[start : start + step]
                n = chunk.shape[0]
                p = torch.softmax(self.net(self.prepare(chunk)).float(), dim=-1)
                out.append(p.view(self.crops, n, -1).mean(0) if self.crops > 1 else p)
        return torch.cat(out) if len(out) != 1 else out[0]

    __call__ = probs
