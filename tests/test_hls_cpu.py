"""The compiled CPU conversion HLS -> RGB: PyTorch's numbers bit for bit, split over threads or not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fooling import hls_cpu, imaging
from fooling.imaging import hls_to_rgb


def _bits(x: torch.Tensor) -> np.ndarray:
    return x.contiguous().view(torch.int32).numpy()


def _sweep() -> torch.Tensor:
    """(N, 3, 1, 1): every hue in [0, 1] densely, each twelfth and its float neighbours; random lightness and
    saturation with their ends, and NaN lightness and saturation (NaN out, as PyTorch's)."""
    twelfths = torch.tensor([k / 12 for k in range(13)])
    hue = torch.cat([torch.linspace(0, 1, 200_001), twelfths, torch.nextafter(twelfths, torch.tensor(2.0)),
                     torch.nextafter(twelfths, torch.tensor(-1.0))]).clamp(0, 1)
    rest = torch.rand(2, len(hue), generator=torch.Generator().manual_seed(2))
    rest[:, :6] = torch.tensor([[0.0, 1.0, 0.5, 0.5, float("nan"), 0.3],
                                [1.0, 1.0, 0.0, 1.0, 0.4, float("nan")]])
    return torch.stack([hue, rest[0], rest[1]], 1).view(-1, 3, 1, 1)


def test_the_compiled_conversion_is_pytorchs_bit_for_bit() -> None:
    hls = _sweep()
    got = hls_cpu.hls_to_rgb_cpu(hls, threads=1)
    assert got is not None and got.shape == hls.shape and got.dtype == torch.float32
    expected = imaging._hls_to_rgb(hls)
    assert np.array_equal(_bits(got), _bits(expected))
    assert torch.isnan(got[4]).all() and torch.isnan(got[5]).all() and not torch.isnan(got[6:]).any()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_images_split_over_threads_give_the_same_bits(monkeypatch, threads: int) -> None:
    monkeypatch.setattr(hls_cpu, "MIN_VALUES_A_THREAD", 1)
    hls = torch.rand(7, 3, 16, 12, generator=torch.Generator().manual_seed(3))
    got = hls_cpu.hls_to_rgb_cpu(hls, threads=threads)
    assert np.array_equal(_bits(got), _bits(imaging._hls_to_rgb(hls)))


def test_a_hue_outside_0_1_is_left_to_pytorch() -> None:
    """The unit-hue form does not wrap hues: the kernel says so, and hls_to_rgb wraps them with PyTorch."""
    hls = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    for bad in (1.5, -0.25, float("nan")):
        odd = hls.clone()
        odd[1, 0, 2, 2] = bad
        assert hls_cpu.hls_to_rgb_cpu(odd) is None
        torch.testing.assert_close(hls_to_rgb(odd), imaging._hls_to_rgb(odd), rtol=0, atol=0, equal_nan=True)


def test_hls_to_rgb_uses_it_for_float32_genomes_on_the_cpu(monkeypatch) -> None:
    calls = []
    real = hls_cpu.hls_to_rgb_cpu
    monkeypatch.setattr(hls_cpu, "hls_to_rgb_cpu", lambda x: calls.append(x.dtype) or real(x))
    hls = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    strided = hls.transpose(2, 3)  # not contiguous: made so first
    assert torch.equal(hls_to_rgb(strided), imaging._hls_to_rgb(strided))
    hls_to_rgb(hls.double())  # float64: PyTorch's passes
    with torch.enable_grad():
        hls_to_rgb(hls.clone().requires_grad_(True))  # autograd: PyTorch's passes
    assert calls == [torch.float32]
    with torch.no_grad():  # a tracked tensor with autograd off: the kernel, and a plain result
        got = hls_to_rgb(hls.clone().requires_grad_(True))
    assert calls == [torch.float32] * 2 and not got.requires_grad and torch.equal(got, imaging._hls_to_rgb(hls))


@pytest.mark.parametrize("threads", [1, 2])
def test_rows_converted_where_they_lie_equal_gathering_then_converting(monkeypatch, threads: int) -> None:
    """gather_hls_to_rgb_cpu (a CPPN drawing's last step): the RGB of |values[rows]| written into a slice of the
    result, the same bits as the gathered absolute values through hls_to_rgb_cpu; nothing else written."""
    monkeypatch.setattr(hls_cpu, "MIN_VALUES_A_THREAD", 1)
    g = torch.Generator().manual_seed(3)
    values = torch.rand(12, 257, generator=g) * 2 - 1  # CPPN outputs lie in [-1, 1]
    values[0, :4] = torch.tensor([-1.0, 1.0, -0.0, 0.0])
    rows = torch.randint(0, 12, (7, 3), generator=g)
    rows[0] = 0
    out = torch.full((7, 3, 300), float("nan"))
    assert hls_cpu.gather_hls_to_rgb_cpu(values, rows, out, 20, threads=threads)
    want = hls_cpu.hls_to_rgb_cpu(values[rows].abs(), threads=1)
    assert np.array_equal(_bits(out[:, :, 20:277]), _bits(want))
    assert torch.isnan(out[:, :, :20]).all() and torch.isnan(out[:, :, 277:]).all()

    values[rows[4, 0], 9] = 1.5  # a hue outside [0, 1]: not this conversion's to draw
    assert not hls_cpu.gather_hls_to_rgb_cpu(values, rows, out, 20, threads=threads)
