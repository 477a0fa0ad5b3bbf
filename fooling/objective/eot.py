"""Expectation over transformation (Athalye et al. 2018): score each image by the mean over K random
transforms of it, all K·N copies in one batched forward pass on the classifier's device.

The transforms are kornia's augmentations (random resized crop, flip, rotation, colour jitter,
Gaussian noise, differentiable JPEG) built from a spec (:mod:`fooling.settings.transforms`).
Determinism: fresh draws for a batch come from a torch generator seeded by (seed, the batch's own
pixels, quantised and hashed with integer arithmetic on the device), so the same batch always gets
the same transforms; fixed draws (common random numbers, evolution's default) are K draws from the
seed alone, applied to every image. Either way a resumed run draws exactly what the uninterrupted one
drew, with no RNG state to checkpoint, and the global RNGs are left untouched (forked around the draw).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..errors import FoolingError
from ..limits import MAX_EOT
from ..settings.transforms import DEFAULT, fixed_draws, parse_transforms

__all__ = ["EOT", "build_transforms", "parse_transforms", "DEFAULT"]


def _kornia():
    try:
        import kornia.augmentation as K
    except ImportError:  # pragma: no cover - kornia is a dependency
        raise FoolingError("EOT and --transforms need kornia: pip install kornia") from None
    return K


class _Grey3(torch.nn.Module):
    """Run a colour-only augmentation on one-channel images (as grey RGB, then back to one channel)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 1:
            return self.inner(x)
        return self.inner(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True)


class _SharedNoise(torch.nn.Module):
    """Gaussian noise of standard deviation ``std``, one (1, C, H, W) draw added to every image of the batch
    (the fixed draws' noise: the same for each image, whatever its place in the batch)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn((1, *x.shape[1:]), device=x.device, dtype=x.dtype)


def build_transforms(spec: str, channels: int, size: tuple[int, int], same: bool = False) -> torch.nn.Module:
    """A kornia pipeline (batched, differentiable, on any device) for images (N, channels, *size).

    same: one draw of every transform for the whole batch (kornia's ``same_on_batch``)."""
    K = _kornia()
    layers: list[torch.nn.Module] = []
    for name, v in parse_transforms(spec):
        if name == "crop":
            layers.append(K.RandomResizedCrop(tuple(size), scale=(v, 1.0), ratio=(3 / 4, 4 / 3), p=1.0,
                                              same_on_batch=same))
        elif name == "flip":
            layers.append(K.RandomHorizontalFlip(p=v, same_on_batch=same))
        elif name == "rotate":
            layers.append(K.RandomRotation(v, p=1.0, same_on_batch=same))
        elif name == "jitter":
            layers.append(K.ColorJitter(v, v, v if channels == 3 else 0.0, min(v, 0.5) / 2 if channels == 3 else 0.0,
                                        p=1.0, same_on_batch=same))
        elif name == "noise":
            layers.append(_SharedNoise(v) if same else K.RandomGaussianNoise(std=v, p=1.0))
        elif name == "jpeg":
            layers.append(_Grey3(K.RandomJPEG(jpeg_quality=(v, 95.0), p=1.0, same_on_batch=same)))
    return torch.nn.Sequential(*layers)


def batch_key(images: torch.Tensor) -> int:
    """A deterministic 62-bit number from a batch's pixels (quantised to 1/65535, integer sums on the device)."""
    flat = images.detach().flatten()
    stride = max(1, flat.numel() // 65536)
    q = (flat[::stride].float().clamp(0, 1) * 65535).round().to(torch.int64)
    w = torch.arange(1, q.numel() + 1, device=q.device, dtype=torch.int64) % 65521 + 1
    value = int((q * w).sum().item()) ^ (int((q[::7] * w[: q[::7].numel()].flip(0)).sum().item()) << 20)
    return (value ^ hash(tuple(images.shape))) & ((1 << 62) - 1)


class EOT:
    """K random transforms of every image. :meth:`expand`: (N, C, H, W) -> (K·N, C, H, W), K outermost;
    :meth:`mean`: (K·N, ...) -> (N, ...) the mean over the K copies.

    fixed (the spec's token ``fixed`` or ``fresh`` overrides it): common random numbers, the same K
    transforms for every image in every call (K draws made from ``seed`` alone), so an image's score is
    a deterministic function of its pixels and images are compared under the same transforms; a
    selection on it cannot keep an image for lucky draws. Otherwise (fresh, as in EOT for gradient
    attacks) each image gets its own draws, new for every batch. :meth:`for_selection` defaults to
    fixed: evolution selects on the scores, and with fresh draws it keeps images for lucky draws
    (scripts/eot_survival.py measures it)."""

    def __init__(self, samples: int, spec: str = "default", seed: int = 0, fixed: Optional[bool] = None) -> None:
        if samples < 1:
            raise FoolingError(f"--eot must be at least 1, got {samples}")
        if samples > MAX_EOT:  # as the settings' check: each sample is a forward pass of every image
            raise FoolingError(f"--eot must be at most {MAX_EOT:,}")
        parse_transforms(spec)  # a bad spec fails here, in one line
        self.samples, self.spec, self.seed = int(samples), spec, int(seed)
        chosen = fixed_draws(spec)  # the spec's token, if any, wins; else ``fixed``; else fresh
        self.fixed = chosen if chosen is not None else bool(fixed)
        self.generator = torch.Generator()  # reseeded for every batch: see the module's docstring
        self._pipes: dict[tuple, torch.nn.Module] = {}

    @classmethod
    def for_selection(cls, samples: int, spec: str = "default", seed: int = 0) -> "EOT":
        """EOT for a fitness that evolution selects on: fixed draws unless the spec says ``fresh``."""
        return cls(samples, spec, seed, fixed=True)

    def pipeline(self, channels: int, size: tuple[int, int], device: torch.device) -> torch.nn.Module:
        key = (channels, tuple(size), str(device))
        if key not in self._pipes:
            self._pipes[key] = build_transforms(self.spec, channels, size, same=self.fixed).to(device)
        return self._pipes[key]

    def seed_for(self, images: torch.Tensor) -> int:
        return int(np.random.SeedSequence([self.seed, batch_key(images)]).generate_state(1, np.uint64)[0] >> 1)

    def expand(self, images: torch.Tensor, seed: Optional[int] = None) -> torch.Tensor:
        """images (N, C, H, W) -> K random transforms of each (K·N, C, H, W), differentiable. seed: the
        fresh draws' seed for this batch (default from (seed, the batch's pixels)); fixed draws ignore it."""
        n, c, h, w = images.shape
        pipe = self.pipeline(c, (h, w), images.device)
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=images.device.type if devices else "cuda"):
            if self.fixed:  # transform k: one draw from (seed, k), applied to every image
                parts = []
                for k in range(self.samples):
                    torch.manual_seed(int(np.random.SeedSequence([self.seed, k]).generate_state(1, np.uint64)[0] >> 2))
                    parts.append(pipe(images))
                out = torch.cat(parts)
            else:
                self.generator.manual_seed(self.seed_for(images) if seed is None else seed)
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.generator)))
                out = pipe(images.repeat(self.samples, 1, 1, 1))
        return out.clamp(0.0, 1.0)

    def mean(self, scores: torch.Tensor) -> torch.Tensor:
        """(K·N, ...) -> (N, ...): the mean over the K transforms of each image."""
        return scores.view(self.samples, -1, *scores.shape[1:]).mean(0)

    def log_mean_exp(self, logp: torch.Tensor) -> torch.Tensor:
        """(K·N, K') log-probabilities -> (N, K') the log of the mean probability over the K transforms."""
        return torch.logsumexp(logp.view(self.samples, -1, *logp.shape[1:]), dim=0) - math.log(self.samples)

    def to_json(self) -> dict:
        return {"samples": self.samples, "transforms": self.spec, "seed": self.seed, "fixed": self.fixed}
