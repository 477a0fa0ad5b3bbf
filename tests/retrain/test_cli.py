"""`fool retrain` on the command line: help text and one-line errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.cli.retrain import command


def test_every_option_has_help():
    for param in command.params:
        assert param.help, f"--{param.name} has no help text"
    result = CliRunner().invoke(main, ["retrain", "--help"])
    assert result.exit_code == 0 and "--runs-per-iteration" in result.output and "--resume" in result.output


@pytest.mark.parametrize("args, message", [
    (["--iterations", "0"], "--iterations must be positive"),
    (["--encoding", "pixels"], "unknown encoding"),
    (["--min-confidence", "1.5"], "--min-confidence must lie in"),
    (["--head-rows", "some"], "--head-rows must be one of"),
    (["--name", "a/b"], "not a usable model name"),
    (["--name", "n" * 300], "at most 100 characters"),  # its networks' files could not be named
    (["--model", "no-such-net"], "unknown model"),
    (["--resume", "nowhere"], "not a retrain directory"),
    (["--resume", "nowhere", "--iterations", "3"], "drop --iterations"),
    (["--resume", "", "--iterations", "0"], "--resume needs the retrain directory"),  # not a new experiment
    (["--image-size", "56"], "--image-size is for ImageNet"),
])
def test_bad_input_is_one_line_error(args, message, tmp_path):
    result = CliRunner().invoke(main, ["retrain", "--out", str(tmp_path / "r"), *args]
                                if "--resume" not in args else ["retrain", *args])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output


def test_sigterm_while_training_says_how_to_resume(tmp_path, monkeypatch):
    """SIGTERM during a network's training (not in an evolution, which stops gracefully on its own) ended the
    process with no word; it now stops as Ctrl-C does, with the command that continues it."""
    import os
    import signal

    from fooling.retrain.mnist import MnistTask

    def train(self, i, pools):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the training")

    monkeypatch.setattr(MnistTask, "train", train)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["retrain", "--iterations", "1", "--generations", "1", "--population", "8",
                                       "--runs-per-iteration", "1", "--snapshot-every", "1", "--device", "cpu",
                                       "--quiet", "--name", "t-sigterm", "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert f"Continue with: fool retrain --resume {out}" in result.output
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
