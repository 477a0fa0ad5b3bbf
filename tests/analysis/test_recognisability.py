"""Fooling, not drawing: real digits are recognisable as their digit, noise is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fooling.analysis.recognisability import knn_labels, recognisability
from fooling.data import load_mnist
from fooling.errors import FoolingError


@pytest.fixture(scope="module")
def digits():
    data = load_mnist()
    return data, (data.train_images, data.train_labels)  # judge held-out digits against the other 4,000


def test_real_digits_are_recognised(digits):
    data, reference = digits
    x = torch.from_numpy(data.test_images[::4]).float().div(255).unsqueeze(1)  # 250 held-out digits
    result = recognisability(x, data.test_labels[::4], reference=reference)
    assert result["images"] == 250 and result["knn_k"] == 5
    assert result["knn_target_share"] > 0.85
    assert result["digitcnn_target_confidence"] > 0.9


def test_noise_is_not(digits):
    _, reference = digits
    noise = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = np.arange(200) % 10
    result = recognisability(noise, targets, reference=reference)
    assert result["knn_target_share"] < 0.3
    assert result["digitcnn_target_confidence"] < 0.5


def test_knn_takes_uint8_any_size_and_breaks_ties_by_distance():
    ref = np.zeros((4, 28, 28), np.uint8)
    ref[1] = 100
    ref[2] = 200
    ref[3] = 255
    labels = np.array([0, 1, 1, 2])
    query = np.full((1, 28, 28), 90, np.uint8)
    assert knn_labels(query, k=1, reference=(ref, labels)).tolist() == [1]
    # k=2: one vote each for 1 and 0 (tie) -> the nearest one wins: 1 (100 is closer to 90 than 0)
    assert knn_labels(query, k=2, reference=(ref, labels)).tolist() == [1]
    big = torch.full((1, 1, 56, 56), 1.0)
    assert knn_labels(big, k=1, reference=(ref, labels)).tolist() == [2]


def test_counts_must_agree():
    with pytest.raises(FoolingError, match="targets"):
        recognisability(torch.rand(3, 1, 28, 28), [0, 1])
