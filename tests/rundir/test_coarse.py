"""Image rows stored coarser where their pixels repeat in squares: found exactly, and refined bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from fooling.rundir.coarse import coarsen, refine_into, valid_factor


def _squares(rng: np.random.Generator, image: tuple[int, int, int], factor: int, dtype=np.float32) -> np.ndarray:
    """A C-order row of ``image`` made of ``factor`` x ``factor`` squares of random values."""
    c, h, w = image
    small = (rng.integers(0, 256, (c, h // factor, w // factor)) if dtype == np.uint8
             else rng.random((c, h // factor, w // factor))).astype(dtype)
    return np.repeat(np.repeat(small, factor, 1), factor, 2).reshape(-1)


def _refined(data: memoryview, image, factor: int, dtype) -> np.ndarray:
    out = np.empty(int(np.prod(image)), dtype=dtype)
    refine_into(data, image, factor, out)
    return out


@pytest.mark.parametrize("image, factor", [((3, 8, 8), 2), ((1, 28, 28), 2), ((3, 16, 8), 4), ((2, 12, 20), 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.uint8])
def test_a_row_of_squares_is_stored_at_its_squares_and_refined_to_the_same_bytes(image, factor, dtype):
    rng = np.random.default_rng(factor)
    row = _squares(rng, image, factor, dtype)
    data, found = coarsen(row, image)
    assert found == factor and data.nbytes == row.nbytes // factor ** 2
    assert _refined(data, image, found, dtype).tobytes() == row.tobytes()
    assert coarsen(memoryview(row).cast("B"), image) == (data, found)  # the bytes alone (what a checkpoint reads)


def test_a_flat_image_halves_until_a_side_is_odd():
    data, factor = coarsen(np.full(3 * 24 * 40, 0.25, np.float32), (3, 24, 40))
    assert factor == 8 and np.frombuffer(data, np.float32).tolist() == [0.25] * (3 * 3 * 5)


def test_rows_that_do_not_repeat_are_stored_whole_without_a_copy():
    rng = np.random.default_rng(0)
    noise = rng.random(3 * 8 * 8, dtype=np.float32)
    data, factor = coarsen(noise, (3, 8, 8))
    assert factor == 1 and np.shares_memory(np.frombuffer(data, np.float32), noise)
    row = _squares(rng, (3, 8, 8), 2)
    row[-1] = np.nextafter(row[-1], 2)  # one pixel of the last square differs in its last bit
    assert coarsen(row, (3, 8, 8))[1] == 1
    assert coarsen(_squares(rng, (3, 7, 8), 1), (3, 7, 8))[1] == 1  # an odd side: no squares
    assert coarsen(np.zeros(10, np.float32), (3, 8, 8))[1] == 1  # not an image of that shape
    assert coarsen(np.zeros(3 * 8 * 8, np.complex128), (3, 8, 8))[1] == 1  # 16-byte items


def test_squares_are_equal_in_their_bits_not_their_values():
    """-0.0 == 0.0 and NaN != NaN as numbers: stored coarser by value, a row would not come back byte for byte."""
    row = np.zeros(1 * 4 * 4, np.float32)
    row[1] = -0.0
    assert coarsen(row, (1, 4, 4))[1] == 1
    nans = np.full(16, np.nan, np.float32)
    assert coarsen(nans, (1, 4, 4))[1] == 4  # one NaN bit pattern: one value
    bits = nans.view(np.uint32)
    bits[5] += 1  # another NaN payload
    assert coarsen(nans, (1, 4, 4))[1] == 1


def test_valid_factors_are_powers_of_two_that_divide_both_sides():
    assert [f for f in range(0, 20) if valid_factor((3, 16, 8), f)] == [1, 2, 4, 8]
    assert [f for f in range(0, 20) if valid_factor((1, 28, 28), f)] == [1, 2, 4]
