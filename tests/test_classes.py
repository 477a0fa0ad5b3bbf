"""Class specs: names (any case), indices, ranges, 'all', and one-line errors."""

from __future__ import annotations

import pytest

from fooling.classes import parse_classes
from fooling.errors import FoolingError

LABELS = ["tench", "goldfish", "great white shark", "king penguin", "tiger cat", "Egyptian cat", "3-D glasses"]
DIGITS = [str(i) for i in range(10)]


def test_names_indices_and_ranges_mix_in_order_without_repeats():
    assert parse_classes("King Penguin, goldfish,0-2, 6", LABELS) == [3, 1, 0, 2, 6]


def test_all_and_single_range():
    assert parse_classes("all", LABELS) == list(range(len(LABELS)))
    assert parse_classes("0-9", DIGITS) == list(range(10))


def test_exact_label_wins_over_a_range_reading():
    labels = ["a", "1-2", "b", "c"]
    assert parse_classes("1-2", labels) == [1]
    assert parse_classes("3-D glasses", LABELS) == [6]


def test_digit_labels_are_their_own_indices():
    assert parse_classes("7,3", DIGITS) == [7, 3]


@pytest.mark.parametrize("spec, message", [
    ("pengiun", "did you mean 'king penguin'"),
    ("cat", "'tiger cat', 'Egyptian cat'"),
    ("7", "class 7 does not exist"),
    ("5-99", "class 7 does not exist"),
    ("4-2", "runs backwards"),
    (" , ", "empty"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(FoolingError, match=message) as err:
        parse_classes(spec, LABELS)
    assert "\n" not in str(err.value)


def test_ambiguous_name_asks_for_the_index():
    with pytest.raises(FoolingError, match="several classes"):
        parse_classes("crane", ["crane", "heron", "crane"])
