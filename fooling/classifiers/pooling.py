"""2x2 max pooling (stride 2, floor mode) for the MNIST networks, fast on the CPU when no gradient is needed.

PyTorch's CPU ``max_pool2d`` kernel took about half of a LeNet forward pass here (a batch of 200: 12 ms for the
first pooling layer against 1.5 ms as two elementwise maxima over strided views; ``scripts/bench_evolve.py``
measures the whole loop). The maxima give the same values bit for bit. With autograd recording, PyTorch's
kernel is kept: its gradient goes to one element of a tie, as training and gradient ascent always had it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def max_pool2(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H // 2, W // 2): the maximum of each 2x2 block (a last odd row or column dropped)."""
    if x.requires_grad and torch.is_grad_enabled():
        return F.max_pool2d(x, 2)
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    rows = torch.maximum(x[:, :, 0::2], x[:, :, 1::2])  # (N, C, H // 2, W'): whole rows first (contiguous)
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class MaxPool2(nn.Module):
    """``nn.MaxPool2d(2)`` as :func:`max_pool2` (no parameters: state dicts are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2(x)
