"""`fool render --size`: N (a square) or WxH; anything else one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fooling.cli import main
from fooling.encodings.cppn import CPPNEncoding, render
from fooling.encodings.cppn.serialize import load_genome
from fooling.limits import MAX_RENDER_SIDE
from helpers import mutated_cppns, read_png


def fool(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def genome(tmp_path: Path, monkeypatch) -> Path:
    """A patterned CPPN evolved at 6 rows x 10 columns; the current folder is tmp_path."""
    monkeypatch.chdir(tmp_path)
    enc = CPPNEncoding((1, 6, 10))
    best = max(mutated_cppns(enc, 8, 5), key=lambda g: float(enc.decode([g], torch.device("cpu")).std()))
    path = tmp_path / "g.json"
    path.write_text(json.dumps(enc.genome_json(best)))
    return path


def test_size_takes_width_by_height(genome: Path, tmp_path: Path) -> None:
    """--size 40x24 draws 40 wide and 24 high (--size took only a square side: 'Invalid value')."""
    result = fool("render", genome, "--size", "40x24", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "(40x24," in result.output
    drawn = np.asarray(read_png(tmp_path / "g_40x24.png"))
    assert drawn.shape == (24, 40)
    cppn, style = load_genome(genome)
    expected = render([cppn], style, torch.device("cpu"), size=(24, 40))[0, 0].mul(255).round().numpy()
    assert np.abs(drawn.astype(float) - expected).max() <= 1  # the same picture, at that size
    assert fool("render", genome, "--size", "8X9", "--out", "tall.png").exit_code == 0
    assert read_png(tmp_path / "tall.png").size == (8, 9)
    assert fool("render", genome, "--size", "12").exit_code == 0  # a square, as before
    assert read_png(tmp_path / "g_12x12.png").size == (12, 12)
    side = f"{MAX_RENDER_SIDE}x1"  # the largest side is allowed either way
    assert fool("render", genome, "--size", side).exit_code == 0, side


@pytest.mark.parametrize("size, words", [
    ("0", "each side must lie in 1-"), ("-5", "each side must lie in 1-"), ("0x3", "each side must lie in 1-"),
    ("3x0", "each side must lie in 1-"), (str(MAX_RENDER_SIDE + 1), "each side must lie in 1-"),
    (f"16x{MAX_RENDER_SIDE + 1}", "each side must lie in 1-"), ("9" * 5000, "each side must lie in 1-"),
    ("12x", "must be N (a square) or WxH"), ("x3", "must be N (a square) or WxH"),
    ("1e3", "must be N (a square) or WxH"), ("640x480x3", "must be N (a square) or WxH"),
    ("12.5", "must be N (a square) or WxH"), ("", "must be N (a square) or WxH"),
    ("640*480", "must be N (a square) or WxH"),
])
def test_bad_sizes_are_one_line(genome: Path, tmp_path: Path, size: str, words: str) -> None:
    result = fool("render", genome, "--size", size)
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --size") and words in lines[0], result.output
    assert len(lines[0]) < 200  # 5000 nines are not echoed back
    if "1-" in words:
        assert str(MAX_RENDER_SIDE) in lines[0]
    assert not list(tmp_path.glob("*.png"))


def test_help_says_wxh() -> None:
    assert "WxH" in fool("render", "--help").output


def test_an_image_given_as_the_genome_says_what_render_reads(tmp_path: Path, monkeypatch) -> None:
    """A direct-encoded run's elite (a PNG) given to fool render said "cannot read it ('utf-8' codec can't
    decode byte 0x89 ...)"."""
    monkeypatch.chdir(tmp_path)
    Image.new("L", (8, 8)).save(tmp_path / "0_0.png")
    result = fool("render", tmp_path / "0_0.png")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "not a CPPN genome" in lines[0] and "--encoding cppn" in lines[0] and "utf-8" not in lines[0]
