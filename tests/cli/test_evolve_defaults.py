"""`fool evolve` with no options, as a new user runs it: the shipped paper LeNet, the default search, and a last
line that says all ten digits passed 99.99 % (a few seconds: 200 generations of 40 children)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fooling.cli import main


def test_defaults_fool_every_digit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["evolve", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("10/10 classes at >= 99.99%"), result.output
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert all(c["confidence"] >= 0.9999 for c in summary["classes"])


def test_help_names_the_default_search_and_the_files():
    """`fool evolve --help` said "MAP-Elites over classes by default" while the default preset searches direct
    genomes with snes-elites, and left classes.csv out of the run directory's files."""
    text = " ".join(CliRunner().invoke(main, ["evolve", "--help"]).output.split())
    assert "MAP-Elites over classes by default" not in text
    assert "snes-elites by default" in text
    assert "metrics.csv, classes.csv, elites/" in text
