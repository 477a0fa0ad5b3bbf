"""A stable argsort of small non-negative integer keys by one plain sort (the CPPN graph and mutation code's).

``np.argsort(kind="stable")`` of int64 is a merge sort; sorting ``key << bits | position`` instead
(every value distinct, so any sort order is the stable one) uses numpy's vectorised quicksort
and is 2-4 times faster on tens of thousands of keys.
"""

from __future__ import annotations

import numpy as np


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """(n,) int64, exactly ``np.argsort(keys, kind="stable")`` for (n,) integer ``keys`` with
    0 <= keys < 2^(62 - bits), bits the bit length of n − 1 (node ids, counts)."""
    n = keys.size
    bits = max(n - 1, 1).bit_length()
    return np.sort(keys.astype(np.int64) << bits | np.arange(n, dtype=np.int64)) & ((1 << bits) - 1)
