"""A run directory whose summary.json or config.json was edited by hand is read as one line naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.errors import FoolingError
from fooling.rundir import read_run


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reader") / "run"
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--generations", "1", "--population", "4",
                                       "--device", "cpu", "--quiet", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def edited(run: Path, tmp_path: Path, name: str, change) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    record = json.loads((copy / name).read_text())
    change(record)
    (copy / name).write_text(json.dumps(record))
    return copy


def classes(value):
    return lambda s: s.update(classes=value(s["classes"]))


@pytest.mark.parametrize("name, change, fragment", [
    ("summary.json", classes(lambda c: 5), '"classes"'),
    ("summary.json", classes(lambda c: [1, 2]), '"classes"'),
    ("summary.json", classes(lambda c: [{k: v for k, v in e.items() if k != "index"} for e in c]), '"classes"'),
    ("summary.json", classes(lambda c: [dict(e, index="x") for e in c]), '"classes"'),
    ("summary.json", classes(lambda c: [dict(e, confidence="high") for e in c]), '"classes"'),
    ("summary.json", classes(lambda c: [dict(e, scores=[1, 2]) for e in c]), '"classes"'),
    pytest.param("summary.json", classes(lambda c: [dict(e, confidence=-10 ** 400) for e in c]), '"classes"',
                 id="confidence-beyond-floats"),  # float() of it raised OverflowError: a traceback
    pytest.param("summary.json", classes(lambda c: [dict(e, scores={"test-oracle": 10 ** 400}) for e in c]),
                 '"classes"', id="score-beyond-floats"),
    ("summary.json", lambda s: s.update(models="test-oracle"), '"models"'),
    ("summary.json", lambda s: s.update(models=5), '"models"'),
    ("config.json", lambda c: c.update(run="x"), '"run"'),
    ("config.json", lambda c: c["run"].update(num_classes="x"), '"num_classes"'),
])
def test_hand_edited_values_are_one_line(oracle_run, tmp_path, name, change, fragment):
    run = edited(oracle_run, tmp_path, name, change)
    with pytest.raises(FoolingError, match=fragment) as err:
        read_run(run)
    assert name in str(err.value)
    result = CliRunner().invoke(main, ["gallery", str(run), "--out", str(tmp_path / "g")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and name in result.output, result.output


def test_the_run_as_written_reads(oracle_run):
    assert len(read_run(oracle_run).elites) == 4


@pytest.mark.parametrize("name", ["summary.json", "config.json"])
def test_json_nested_past_the_recursion_limit_is_one_line(oracle_run, tmp_path, name):
    run = tmp_path / "copy"
    shutil.copytree(oracle_run, run)
    (run / name).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FoolingError, match=f"{name} is not valid JSON"):
        read_run(run)


def test_a_python_model_named_by_a_run_is_never_imported(oracle_run, tmp_path, monkeypatch):
    # without "run": {"num_classes"} in config.json, read_run (fool gallery) imported the module to count classes
    (tmp_path / "reader_planted.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n"
                                                "def f(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    name = "python:reader_planted:f?input=1x8x8"

    def plant(record):
        record.update(model=name, models=[name])
        record.pop("run", None)

    run = edited(oracle_run, tmp_path, "config.json", plant)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "model": name, "models": [name]}))
    with pytest.raises(FoolingError, match="never loads a model file or code"):
        read_run(run)
    result = CliRunner().invoke(main, ["gallery", str(run), "--out", str(tmp_path / "g")])
    assert result.exit_code == 1 and "never loads" in result.output, result.output
    assert not (tmp_path / "ran").exists()


def test_a_label_too_long_for_a_file_name_is_shortened_and_read_back(tmp_path):
    import numpy as np

    from fooling.rundir.reader import read_elite_folder
    from fooling.rundir.writer import RunDirectory

    label = "x" * 300  # a model's labels file may hold any text; the file system takes 255 bytes a name
    rundir = RunDirectory(tmp_path / "run")
    (stem,) = rundir.write_elites([np.zeros((4, 4, 3), np.uint8)], [0], [label], [0.5])
    assert len(stem) < 255
    (elite,) = read_elite_folder(rundir.elites, [{"index": 0, "label": label, "confidence": 0.5}])
    assert elite.label == label and elite.png.name == f"{stem}.png"
