"""fooling.outputs: where commands may write."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import fooling.outputs as outputs
from fooling.cli import main
from fooling.encodings.cppn import CPPNEncoding
from fooling.encodings.cppn.genome import initial_genome
from fooling.errors import FoolingError


def test_output_checks(tmp_path):
    run = tmp_path / "run"
    (run / "elites").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for path in (run, run / "elites", run / "elites" / "new"):
        with pytest.raises(FoolingError, match="run directory"):
            outputs.check_output_folder(path, ["a.csv"], force=True)
        with pytest.raises(FoolingError, match="run directory"):
            outputs.check_output_file(path / "x.png", force=True)
    (tmp_path / "a.csv").write_text("mine")
    with pytest.raises(FoolingError, match="--force"):
        outputs.check_output_folder(tmp_path, ["a.csv", "b.csv"], force=False)
    assert outputs.check_output_folder(tmp_path, ["a.csv"], force=True) == tmp_path
    with pytest.raises(FoolingError, match="already exists"):
        outputs.check_output_file(tmp_path / "a.csv", force=False)
    with pytest.raises(FoolingError, match="is a file"):
        outputs.check_output_folder(tmp_path / "a.csv", [], force=True)


def test_an_output_file_is_never_an_input_and_has_its_suffix(tmp_path):
    genome = tmp_path / "g.png"
    genome.write_text("{}")
    with pytest.raises(FoolingError, match="the file this reads"):
        outputs.check_output_file(tmp_path / "." / "g.png", force=True, reads=[genome])
    assert outputs.check_output_file(genome, force=True, reads=[tmp_path / "other.json"]) == genome
    with pytest.raises(FoolingError, match="must end with .png"):
        outputs.check_output_file(tmp_path / "x.PNG.json", force=True, suffixes=[".png"])
    assert outputs.check_output_file(tmp_path / "x.PNG", force=False, suffixes=[".png"]).name == "x.PNG"


def test_a_link_into_a_run_is_never_written_through(tmp_path):
    """An output file that is a symbolic link to a run's elite: --force wrote the plot or render through it,
    replacing the elite (the checks looked only at the folder the link lies in). fool plot, render, transfer."""
    run = tmp_path / "run"
    (run / "elites").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    elite = run / "elites" / "0_0.png"
    elite.write_bytes(b"an elite")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "link.png").symlink_to(elite)
    (mine / "transfer.csv").symlink_to(elite)
    with pytest.raises(FoolingError, match="is a link into the run directory"):
        outputs.check_output_file(mine / "link.png", force=True)
    with pytest.raises(FoolingError, match="leads into the run directory"):
        outputs.check_output_folder(mine, ["transfer.csv"], force=True)
    genome = CPPNEncoding((1, 8, 8)).genome_json(initial_genome(1, np.random.default_rng(0)))
    (tmp_path / "g.json").write_text(json.dumps(genome))
    for args in (["plot", str(run), "--out", str(mine / "link.png"), "--force"],
                 ["render", str(tmp_path / "g.json"), "--out", str(mine / "link.png"), "--force"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "is a link into the run directory" in result.output, result.output
    assert elite.read_bytes() == b"an elite"
    (mine / "plain.png").symlink_to(tmp_path / "elsewhere.png")  # a link elsewhere is checked as before
    assert outputs.check_output_file(mine / "plain.png", force=False) == mine / "plain.png"
