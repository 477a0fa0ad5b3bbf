"""Row gathers and scatters: the CPU's row-by-row path gives exactly what torch's indexed copies give."""

import pytest
import torch

from fooling import rowcopy


@pytest.fixture(params=["row by row", "indexed"])
def path(request, monkeypatch):
    monkeypatch.setattr(rowcopy, "ROW_LOOP_MIN_VALUES", 1 if request.param == "row by row" else 1 << 30)
    return request.param


def test_gather_rows_equals_index_select(path):
    src = torch.randn(50, 40, generator=torch.Generator().manual_seed(0))
    index = torch.tensor([7, 3, 3, 49, 0])
    out = rowcopy.gather_rows(src, index)
    assert out.is_contiguous() and torch.equal(out, src.index_select(0, index))
    out[0] += 1  # a copy, not a view
    assert torch.equal(src[7], src.index_select(0, torch.tensor([7]))[0])
    assert rowcopy.gather_rows(src, torch.tensor([], dtype=torch.long)).shape == (0, 40)


@pytest.mark.parametrize("with_source_index", [False, True])
def test_scatter_rows_equals_index_copy(path, with_source_index):
    gen = torch.Generator().manual_seed(1)
    dst = torch.randn(30, 16, generator=gen)
    src = torch.randn(6, 16, generator=gen, dtype=torch.float64)  # cast to dst's dtype
    index = torch.tensor([29, 4, 11])
    src_index = torch.tensor([5, 0, 5]) if with_source_index else None
    expected = dst.clone().index_copy_(0, index, (src[src_index] if with_source_index else src[:3]).float())
    out = rowcopy.scatter_rows_(dst, index, src if with_source_index else src[:3], src_index)
    assert out is dst and torch.equal(dst, expected)


def test_the_cpu_copies_few_big_rows_one_by_one():
    big = torch.zeros(4, rowcopy.ROW_LOOP_MIN_VALUES)
    assert rowcopy._one_by_one(big, 3)
    assert not rowcopy._one_by_one(big, 0) and not rowcopy._one_by_one(big, rowcopy.ROW_LOOP_MAX + 1)
    assert not rowcopy._one_by_one(torch.zeros(4, 784), 3)  # MNIST rows: one indexed copy
