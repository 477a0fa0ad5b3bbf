"""2x2 max pooling: the same values as PyTorch's max_pool2d, and PyTorch's own kernel under autograd."""

import pytest
import torch
import torch.nn.functional as F

from fooling.classifiers.pooling import MaxPool2, max_pool2


@pytest.mark.parametrize("shape", [(5, 20, 24, 24), (3, 50, 8, 8), (2, 64, 7, 7), (1, 1, 3, 5)])
def test_max_pool2_equals_torch_bit_for_bit(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, :2] = 1.5  # a tie
    with torch.no_grad():
        assert torch.equal(max_pool2(x), F.max_pool2d(x, 2))
        assert torch.equal(MaxPool2()(x), torch.nn.MaxPool2d(2)(x))


def test_max_pool2_keeps_torch_gradient_under_autograd():
    x = torch.zeros(1, 1, 2, 2, requires_grad=True)  # a four-way tie: PyTorch's kernel sends it to one element
    max_pool2(x).sum().backward()
    assert x.grad.sum().item() == 1.0 and (x.grad == 1.0).sum().item() == 1
