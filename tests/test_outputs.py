"""fooling.outputs: where commands may write."""

from __future__ import annotations

import pytest

import fooling.outputs as outputs
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
