"""fooling.outputs: where commands may write, and per-run progress."""

from __future__ import annotations

import io
import sys

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


def test_progress_draws_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(outputs, "_terminal_rows", lambda s: 40)
    with outputs.ItemProgress(2, "run") as bar:
        bar.done("a")
        bar.done("b")
    assert "\r" in stream.getvalue() and "2/2" in stream.getvalue()
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(outputs, "_terminal_rows", lambda s: 0)
    with outputs.ItemProgress(2, "run") as bar:
        bar.done("a")
        bar.done("b")
    assert "\r" not in stream.getvalue()
    assert [line.split(" ")[0] for line in stream.getvalue().splitlines()] == ["[1/2]", "[2/2]"]
    with outputs.ItemProgress(2, "run", quiet=True) as bar:
        bar.done("a")
    assert stream.getvalue().count("\n") == 2
