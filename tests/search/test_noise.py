"""Block noise: per-block draws on the CPU, one draw a generation on CUDA; a piece is always its blocks of the whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fooling.search import noise
from fooling.search.noise import block_noise, one_draw

SEEDS = np.random.default_rng(0).integers(2**63 - 1, size=7, dtype=np.int64)


def test_on_the_cpu_each_block_is_its_own_seeds_draw():
    assert not one_draw(torch.device("cpu"))
    whole = block_noise(SEEDS, (3, 11), "cpu")
    assert whole.shape == (7, 3, 11) and whole.dtype == torch.float32
    for j, seed in enumerate(SEEDS):
        assert torch.equal(whole[j], torch.randn((3, 11), generator=torch.Generator().manual_seed(int(seed))))
    assert torch.equal(block_noise(SEEDS[2:5], (3, 11), "cpu", first=2, total=7, draw_seed=SEEDS[0]), whole[2:5])
    assert block_noise(SEEDS[:0], (3, 11), "cpu").shape == (0, 3, 11)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_big_blocks_drawn_on_threads_are_each_block_s_own_draw(monkeypatch, threads):
    monkeypatch.setattr(noise, "MIN_DRAWS_A_THREAD", 64)  # 7 blocks of 99 draws: split over up to 3 threads
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        whole = block_noise(SEEDS, (9, 11), "cpu")
    finally:
        torch.set_num_threads(previous)
    for j, seed in enumerate(SEEDS):
        assert torch.equal(whole[j], torch.randn((9, 11), generator=torch.Generator().manual_seed(int(seed))))


@pytest.fixture
def one_draw_here(monkeypatch):
    """The one-draw rule on this machine's CPU (CUDA's rule, testable without a GPU)."""
    monkeypatch.setattr(noise, "ONE_DRAW_DEVICES", ("cpu",))


def test_one_draw_pieces_are_the_blocks_of_the_whole_generation(one_draw_here):
    assert one_draw(torch.device("cpu"))
    whole = block_noise(SEEDS, (2, 50), "cpu")
    assert torch.equal(whole, torch.randn((7, 2, 50), generator=torch.Generator().manual_seed(int(SEEDS[0]))))
    pieces = [block_noise(SEEDS[a:b], (2, 50), "cpu", first=a, total=7, draw_seed=SEEDS[0])
              for a, b in ((0, 3), (3, 4), (4, 7))]
    assert torch.equal(torch.cat(pieces), whole)
    assert not torch.equal(block_noise(SEEDS[1:], (2, 50), "cpu")[0], whole[1])  # another generation, other noise


@pytest.mark.cuda
def test_on_cuda_a_generation_is_one_draw_and_pieces_agree():
    device = torch.device("cuda")
    assert one_draw(device)
    whole = block_noise(SEEDS, (4, 4096), device)
    assert whole.device.type == "cuda" and whole.shape == (7, 4, 4096)
    assert abs(float(whole.mean())) < 0.02 and abs(float(whole.std()) - 1.0) < 0.02
    piece = block_noise(SEEDS[3:6], (4, 4096), device, first=3, total=7, draw_seed=SEEDS[0])
    assert torch.equal(piece, whole[3:6])
    assert torch.equal(block_noise(SEEDS, (4, 4096), device), whole)  # same plan, same noise
