"""Bad input: one line naming the problem, a non-zero exit, no traceback, nothing destroyed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fooling.cli import main


def fool(*args: str):
    return CliRunner().invoke(main, list(args))


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error"), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "no-such-net"], ["unknown model", "no-such-net"]),
        (["--model", "mnist-lenett"], ["did you mean", "mnist-lenet"]),
        (["--model", "test-oracle", "--encoding", "voxels"], ["unknown encoding", "voxels"]),
        (["--model", "test-oracle", "--strategy", "cmaes"], ["unknown strategy", "cmaes"]),
        (["--model", "test-oracle", "--preset", "fast"], ["unknown preset"]),
        (["--model", "test-oracle", "--generations", "0"], ["--generations must be positive"]),
        (["--model", "test-oracle", "--population", "-5"], ["--population must be positive"]),
        (["--model", "test-oracle", "--strategy", "ga"], ["needs --target"]),
        (["--model", "test-oracle", "--strategy", "ga", "--target", "7"], ["class 7 does not exist"]),
        (["--model", "test-oracle", "--device", "cuda:99"], []),
        (["--model", "test-oracle", "--mutation-rate", "1.5"], ["[0, 1]"]),
    ],
)
def test_bad_evolve_options(args, words, tmp_path):
    result = fool("evolve", "--quiet", "--out", str(tmp_path / "run"), *args)
    _one_line_error(result, *words)
    assert not (tmp_path / "run").exists()


def test_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _one_line_error(fool("evolve", "--model", "test-oracle", "--quiet", "--out", str(out)), "already holds a run")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _one_line_error(fool("evolve", "--model", "test-oracle", "--quiet", "--out", str(other)), "other files")
    assert (other / "notes.txt").read_text() == "mine"
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_errors(tmp_path):
    _one_line_error(fool("evolve", "--resume", str(tmp_path / "nothing")), "not a run directory")
    out = tmp_path / "run"
    fool("evolve", "--model", "test-oracle", "--generations", "4", "--population", "8", "--quiet", "--out", str(out))
    _one_line_error(fool("evolve", "--resume", str(out), "--generations", "2"), "already at generation 4")
    _one_line_error(fool("evolve", "--resume", str(out), "--generations", "-1"), "must be positive")
    state = out / "checkpoint" / "state.json"
    arrays = out / "checkpoint" / json.loads(state.read_text())["body"]["arrays"]
    arrays.write_bytes(b"not a zip file")
    _one_line_error(fool("evolve", "--resume", str(out)), "corrupt checkpoint")
    state.unlink()
    _one_line_error(fool("evolve", "--resume", str(out)), "no checkpoint")


def test_mnist_dir_without_files(tmp_path):
    _one_line_error(fool("train", "--name", "x", "--mnist-dir", str(tmp_path)), "lacks", "train-images-idx3-ubyte")
    _one_line_error(fool("train", "--name", "x", "--mnist-dir", str(tmp_path / "missing")), "is not a folder")


def test_bad_train_options():
    _one_line_error(fool("train", "--epochs", "0"), "--epochs must be positive")


def test_every_command_has_help():
    result = fool("--help")
    assert result.exit_code == 0
    for name in ("evolve", "train", "models"):
        sub = fool(name, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.output
        assert "--help" in sub.output


def test_models_lists_the_registry():
    result = fool("models")
    assert result.exit_code == 0
    for name in ("mnist-lenet", "mnist-lenet-b", "mnist-digitcnn"):
        assert name in result.output
