"""Tiny models for sweep tests that a Ray worker can load too: ``python:sweep_models:oracle?input=1x8x8``
(tests/run on the worker's PYTHONPATH). The same oracle as tests/conftest.py's ``test-oracle``."""

from __future__ import annotations

import torch
from torch import nn


class Oracle(nn.Module):
    """Class-k logit = 12 · (mean brightness of horizontal band k of the image), 4 classes, 8×8 grey images."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = x.view(x.shape[0], 4, -1).mean(-1)
        return 12.0 * (bands - bands.mean(-1, keepdim=True))


def oracle() -> nn.Module:
    return Oracle()


class Broken(Oracle):
    """Loads and scores two images (what loading checks), fails on a run's batches: a sweep point that errors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 2:
            raise RuntimeError("simulated failure on a batch")
        return super().forward(x)


def broken() -> nn.Module:
    return Broken()
