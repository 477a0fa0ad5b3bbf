"""Bounded work for `fool render` and genome files: documented limits checked before any work (issue 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.encodings.cppn import CPPNEncoding
from fooling.encodings.cppn.genome import initial_genome
from fooling.errors import FoolingError
from fooling.limits import MAX_CONNECTIONS, MAX_DEPTH, MAX_HIDDEN_NODES, MAX_RENDER_PIXELS, MAX_RENDER_SIDE
from fooling.encodings.cppn.serialize import load_genome
from helpers import read_png


def fool(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def small_genome() -> dict:
    enc = CPPNEncoding((1, 8, 8))
    return enc.genome_json(initial_genome(1, np.random.default_rng(0)))


def chain(hidden: int) -> dict:
    """A genome whose hidden nodes form one chain x -> h0 -> h1 -> ... -> output: depth hidden + 1."""
    data = small_genome()
    data["hidden"] = ["clipped_identity"] * hidden
    data["connections"] = [[0, 4, 1.0]] + [[4 + i, 5 + i, 1.0] for i in range(hidden)]
    return data


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_deep_and_large_genomes_are_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    one_line_error(fool("render", write(tmp_path / "deep.json", chain(MAX_DEPTH + 10))), "deep", f"{MAX_DEPTH:,}")
    one_line_error(fool("render", write(tmp_path / "wide.json", chain(MAX_HIDDEN_NODES + 1))), "hidden nodes")
    data = small_genome()
    data["connections"] = [[0, 4, 1.0]] * (MAX_CONNECTIONS + 1)
    one_line_error(fool("render", write(tmp_path / "edges.json", data)), "connections")
    assert time.monotonic() - start < 20
    assert not list(tmp_path.glob("*.png"))
    result = fool("render", write(tmp_path / "ok.json", chain(50)), "--size", 16)  # deep, within the limit
    assert result.exit_code == 0, result.output
    assert read_png(tmp_path / "ok_16x16.png").size == (16, 16)


def test_deeply_nested_json_is_one_line(tmp_path):
    one_line_error(fool("render", write(tmp_path / "nested.json", "[" * 100_000 + "]" * 100_000)), "nested")
    with pytest.raises(FoolingError, match="nested"):
        load_genome(write(tmp_path / "nested2.json", '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}"))


def test_image_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    genome = write(tmp_path / "g.json", small_genome())
    one_line_error(fool("render", genome, "--size", 16384), f"1-{MAX_RENDER_SIDE}")
    huge = small_genome()
    huge["size"] = [100_000, 100_000]  # the default size comes from the file: checked too
    one_line_error(fool("render", write(tmp_path / "huge.json", huge)), f"{MAX_RENDER_PIXELS:,}")
    assert not list(tmp_path.glob("*.png"))
    help_text = fool("render", "--help").output
    assert str(MAX_RENDER_SIDE) in help_text and f"{MAX_DEPTH:,}" in help_text


def test_render_out_never_into_a_run_or_over_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    (run / "elites").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    genome = write(run / "elites" / "3_three.json", small_genome())
    one_line_error(fool("render", genome, "--out", run / "x.png"), "run directory")
    one_line_error(fool("render", genome, "--out", run / "elites" / "3_three_big.png", "--force"), "run directory")
    assert sorted(p.name for p in (run / "elites").iterdir()) == ["3_three.json"]
    result = fool("render", genome, "--size", 12)  # the default: the current folder, not elites/
    assert result.exit_code == 0, result.output
    assert (tmp_path / "3_three_12x12.png").is_file()
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my picture")
    one_line_error(fool("render", genome, "--out", mine), "already exists", "--force")
    assert mine.read_bytes() == b"my picture"
    assert fool("render", genome, "--out", mine, "--force").exit_code == 0
    assert read_png(mine).size == (8, 8)
    copied = write(tmp_path / "copied.json", small_genome())  # a genome outside any run: --force spared it too
    before = copied.read_bytes()
    one_line_error(fool("render", copied, "--out", copied, "--force"), "must end with .png")
    one_line_error(fool("render", copied, "--out", tmp_path / "copied.jpg"), "must end with .png")
    assert copied.read_bytes() == before and not (tmp_path / "copied.jpg").exists()
