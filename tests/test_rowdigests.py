"""Row digest caches: what is known, what is forgotten, and rows read without copying the array."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from fooling.rowdigests import RowDigests, Rows


def test_digests_are_unknown_until_set_and_forgotten_by_any_kind_of_index():
    cache = RowDigests(5)
    assert len(cache) == 5 and [cache.known(i) for i in range(5)] == [None] * 5
    for i in range(5):
        cache.set_many([i], [f"{i:064x}"])
    assert cache.known(3) == f"{3:064x}"
    cache.forget(torch.tensor([1, 3]))
    cache.forget(np.array([4]))
    cache.forget([0])
    assert cache.known_many(np.arange(5)) == [None, None, f"{2:064x}", None, None]
    cache.set_many([0, 1], ["a" * 64, "b" * 64])
    cache.forget()
    assert cache.known_many(np.arange(5)) == [None] * 5


def test_rows_are_views_of_the_source_in_the_index_order_and_share_its_digests():
    source = torch.arange(24, dtype=torch.float32).view(4, 6)
    cache = RowDigests(4)
    rows = Rows(source, cache, np.array([2, 0]))
    assert rows.shape == (2, 6) and rows.dtype == np.float32 and rows.nbytes == 48 and rows.ndim == 2
    np.testing.assert_array_equal(np.asarray(rows), source.numpy()[[2, 0]])
    views = rows.host_rows([1, 0])
    assert bytes(views[0]) == source[0].numpy().tobytes() and bytes(views[1]) == source[2].numpy().tobytes()
    source[0] += 1  # a view on the CPU: no copy was taken
    assert bytes(views[0]) == source[0].numpy().tobytes()
    assert rows.known() == [None, None]
    rows.remember([0], [hashlib.sha256(views[1]).hexdigest()])
    assert cache.known(2) == hashlib.sha256(source[2].numpy().tobytes()).hexdigest() and cache.known(0) is None
    whole = Rows(source, cache)
    assert np.shares_memory(np.asarray(whole), source.numpy()) and whole.known()[2] == cache.known(2)
    assert np.asarray(whole, dtype=np.float64).dtype == np.float64


def test_rows_need_a_contiguous_source_with_a_digest_per_row():
    with pytest.raises(ValueError):
        Rows(torch.zeros(4, 6).t(), RowDigests(6))
    with pytest.raises(ValueError):
        Rows(torch.zeros(4, 6), RowDigests(3))


def test_rows_that_are_images_must_hold_one_image_each():
    assert Rows(torch.zeros(4, 12), RowDigests(4), image=(3, 2, 2)).image == (3, 2, 2)
    for image in ((3, 2, 1), (12,), (1, 3, 2, 2)):
        with pytest.raises(ValueError, match="are not images"):
            Rows(torch.zeros(4, 12), RowDigests(4), image=image)


@pytest.mark.cuda
def test_on_a_gpu_only_the_rows_asked_for_come_to_the_host():
    source = torch.arange(40, dtype=torch.float32, device="cuda").view(5, 8)
    cache = RowDigests(5, source.device)
    cache.forget(torch.tensor([1], device="cuda"))
    rows = Rows(source, cache, np.array([4, 1]))
    views = rows.host_rows([1])
    assert len(views) == 1 and bytes(views[0]) == source[1].cpu().numpy().tobytes()
    rows.remember([0], ["c" * 64])
    assert cache.known(4) == "c" * 64 and rows.known() == ["c" * 64, None]


def test_digests_read_before_a_write_are_not_cached_after_it():
    """A checkpoint committed in another thread hashes rows as they were at its clock: rows forgotten since (by
    index, or all at once) keep no digest, the others get theirs."""
    cache = RowDigests(4)
    then = cache.clock
    cache.forget([1])
    cache.set_many([0, 1, 2], ["a" * 64, "b" * 64, "c" * 64], since=then)
    assert cache.known_many(np.arange(4)) == ["a" * 64, None, "c" * 64, None]
    now = cache.clock
    cache.set_many([1], ["b" * 64], since=now)
    assert cache.known(1) == "b" * 64
    cache.forget()
    cache.set_many([3], ["d" * 64], since=now)
    assert cache.known(3) is None
    rows = Rows(torch.zeros(4, 2), cache, np.array([3, 2]))
    clock = rows.clock()
    copies = rows.copied_rows([0])
    rows.source[3] += 1
    cache.forget([3])
    assert bytes(copies[0]) == bytes(8)  # a copy: as the row was when read
    rows.remember([0, 1], ["e" * 64, "f" * 64], since=clock)
    assert cache.known(3) is None and cache.known(2) == "f" * 64
