"""Fooling-image pools: saving, balanced sampling across iterations."""

from __future__ import annotations

import numpy as np
import pytest

from fooling.errors import FoolingError
from fooling.retrain.pool import Pool, balanced_sample


def _pool(n: int, value: int, upto: int = 5) -> Pool:
    images = np.full((n, 1, 4, 4), value, np.uint8)
    return Pool(images, np.arange(n) % 3, np.linspace(0.1, 0.9, n), np.full(n, upto), upto)


def test_save_and_load_round_trip(tmp_path):
    pool = _pool(5, 7, upto=20)
    pool.save(tmp_path / "pool.npz")
    back = Pool.load(tmp_path / "pool.npz")
    assert back.upto == 20 and len(back) == 5
    for key in ("images", "classes", "confidence", "generation"):
        np.testing.assert_array_equal(getattr(back, key), getattr(pool, key))


def test_unreadable_pool_is_a_fooling_error(tmp_path):
    (tmp_path / "pool.npz").write_text("not a zip")
    with pytest.raises(FoolingError):
        Pool.load(tmp_path / "pool.npz")


def test_extend_and_last_confidence():
    pool = Pool.empty((1, 4, 4))
    assert pool.last_confidence(0) == -np.inf
    pool = pool.extend(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 2]), np.array([0.3, 0.6]), 10)
    pool = pool.extend(np.zeros((1, 1, 4, 4), np.uint8), np.array([0]), np.array([0.8]), 20)
    assert pool.upto == 20 and len(pool) == 3
    assert pool.last_confidence(0) == 0.8 and pool.last_confidence(2) == 0.6
    np.testing.assert_array_equal(pool.generation, [10, 10, 20])


def test_balanced_sample_gives_each_iteration_an_equal_share():
    pools = [_pool(50, 1), _pool(50, 2), _pool(50, 3)]
    images = balanced_sample(pools, 30, np.random.default_rng(0))
    assert images.shape == (30, 1, 4, 4)
    counts = [(images[:, 0, 0, 0] == v).sum() for v in (1, 2, 3)]
    assert counts == [10, 10, 10]


def test_balanced_sample_repeats_small_pools_and_skips_empty_ones():
    pools = [_pool(3, 1), Pool.empty((1, 4, 4)), _pool(40, 2)]
    images = balanced_sample(pools, 20, np.random.default_rng(0))
    assert (images[:, 0, 0, 0] == 1).sum() == 10  # 3 images, each used 3 or 4 times
    assert (images[:, 0, 0, 0] == 2).sum() == 10


def test_balanced_sample_without_images_is_a_fooling_error():
    with pytest.raises(FoolingError, match="no fooling images"):
        balanced_sample([Pool.empty((1, 4, 4))], 10, np.random.default_rng(0))
