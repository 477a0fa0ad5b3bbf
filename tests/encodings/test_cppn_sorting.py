"""stable_argsort is np.argsort(kind="stable"), ties included."""

from __future__ import annotations

import numpy as np
import pytest

from fooling.encodings.cppn.sorting import stable_argsort


@pytest.mark.parametrize("n, high", [(0, 1), (1, 1), (2, 1), (7, 3), (1000, 5), (5000, 40000), (33000, 2**20)])
def test_stable_argsort_equals_numpys_stable_sort(n: int, high: int) -> None:
    keys = np.random.default_rng(n).integers(0, high, n)
    order = stable_argsort(keys)
    assert order.dtype == np.int64 and np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(stable_argsort(keys.astype(np.int32)), order)
