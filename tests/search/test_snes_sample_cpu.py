"""snes-elites' compiled CPU sampling: PyTorch's children bit for bit, for every grid and thread split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fooling import jit
from fooling.search.blocks import mean_plus_step
from fooling.search.snes_sample_cpu import sample_cpu


def _case(k: int, n: int, shape: tuple[int, int, int], scale: int, seed: int):
    c, h, w = shape
    d = c * -(-h // scale) * -(-w // scale)
    g = torch.Generator().manual_seed(seed)
    mean = torch.rand(k, c * h * w, generator=g)
    sigma = torch.rand(k, d, generator=g) * 0.5  # big enough steps that many children clamp at 0 and 1
    noise = torch.randn(k, n, d, generator=g)
    return mean, sigma, noise


@pytest.mark.parametrize("shape,scale", [((3, 32, 32), 2), ((1, 28, 28), 3), ((3, 17, 10), 4), ((1, 28, 28), 1),
                                         ((3, 8, 8), 8)])
def test_the_children_are_pytorchs_bit_for_bit(shape, scale) -> None:
    mean, sigma, noise = _case(5, 4, shape, scale, seed=scale)
    expected = mean_plus_step(mean, sigma, noise, scale, shape).reshape(-1, mean.shape[1]).clamp_(0.0, 1.0)
    got = sample_cpu(mean, sigma, noise, scale, shape)
    assert got.shape == (20, mean.shape[1]) and got.dtype == torch.float32
    assert np.array_equal(got.view(torch.int32).numpy(), expected.view(torch.int32).numpy())
    assert (got == 0).any() and (got == 1).any()


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_emitters_split_over_threads_give_the_same_children(monkeypatch, threads: int) -> None:
    mean, sigma, noise = _case(7, 2, (3, 16, 16), 2, seed=9)
    alone = sample_cpu(mean, sigma, noise, 2, (3, 16, 16))
    monkeypatch.setattr(jit, "MIN_VALUES_A_THREAD", 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert torch.equal(sample_cpu(mean, sigma, noise, 2, (3, 16, 16)), alone)
