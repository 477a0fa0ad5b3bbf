"""The one progress display: plain lines off a terminal (at an interval, fake clock), a bar that fits
the terminal's width with an ETA, segments that share one display, and the commands that use it."""

from __future__ import annotations

import io
import re
import sys

import pytest
from click.testing import CliRunner

import fooling.progress as progress
from fooling.cli import main
from fooling.progress import EVERY_ENV, Progress, continued, plain_every


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(bar: Progress, clock: FakeClock, generations: int, seconds_each: float) -> None:
    for g in range(generations + 1):
        clock.now += seconds_each
        bar.update(g, 200, min(g, 10), 10, 0.5 + g / 1000, 0.9 + g / 10000, force=g == generations)
    bar.close()


def test_plain_stream_gets_a_line_per_interval_and_a_final_line():
    stream, clock = io.StringIO(), FakeClock()
    _run(Progress(100, 0, stream=stream, every=30, clock=clock), clock, 100, 1.0)
    out = stream.getvalue()
    assert "\r" not in out
    lines = out.splitlines()
    # after 30, 60 and 90 s (generations 29, 59, 89), then the final one (forced at generation 100)
    assert [int(re.match(r"gen (\d+)/100", line)[1]) for line in lines] == [29, 59, 89, 100]
    assert "ETA 01:13" in lines[0]  # 30 s for 29 generations past the start: 71 × 30/29 s left
    assert "median 0.5290 best 0.90290" in lines[0] and "coverage 10/10" in lines[0] and "evals/s" in lines[0]
    assert "ETA 00:00" in lines[-1]


def test_plain_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv(EVERY_ENV, "5")
    assert plain_every() == 5.0
    stream, clock = io.StringIO(), FakeClock()
    _run(Progress(20, 0, stream=stream, clock=clock), clock, 20, 1.0)
    assert len(stream.getvalue().splitlines()) == 5  # at 5, 10, 15, 20 s, and the final line
    monkeypatch.setenv(EVERY_ENV, "nonsense")
    assert plain_every() == 30.0


def test_quiet_writes_nothing():
    stream, clock = io.StringIO(), FakeClock()
    _run(Progress(10, 0, enabled=False, stream=stream, clock=clock), clock, 10, 100.0)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("width", [80, 40])
def test_terminal_bar_fits_the_width_and_shows_the_eta(width):
    stream, clock = Terminal(), FakeClock()
    _run(Progress(200, 0, stream=stream, ncols=width, clock=clock), clock, 200, 0.01)
    out = stream.getvalue()
    assert "\r" in out and out.endswith("\n")
    pieces = re.split(r"[\r\n]", out)
    assert max(len(p) for p in pieces) <= width
    assert all("ETA" in p for p in pieces if p.strip())
    assert "gen 200/200" in out


def test_a_resumed_run_counts_from_where_it_starts():
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(100, 50, stream=stream, every=10, clock=clock)
    for g in range(50, 61):
        clock.now += 1
        bar.update(g, 1, 0, 0, 0.0, 0.0)
    assert "gen 59/100" in stream.getvalue() and "ETA 00:45" in stream.getvalue()  # 10 s for 9: 41 × 10/9 s


def test_segments_share_one_display():
    stream, clock = io.StringIO(), FakeClock()
    with continued():
        for start, stop in ((0, 10), (11, 20)):
            bar = Progress(20, start, stream=stream, every=1000, clock=clock)
            for g in range(start, stop + 1):
                clock.now += 1
                bar.update(g, 1, 0, 0, 0.0, 0.0)
            bar.close()
        assert stream.getvalue() == ""  # no final line after the first segment
    assert stream.getvalue().splitlines() == [stream.getvalue().strip()]
    assert stream.getvalue().startswith("gen 20/20")


def test_ascend_prints_plain_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setenv(EVERY_ENV, "0")
    result = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--classes", "0-3", "--steps", "5",
                                       "--stop-at", "0", "--batch-size", "2", "--device", "cpu",
                                       "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("step ")]
    assert "\r" not in result.output and lines
    assert lines[-1].startswith("step 10/10 | ETA") and "median" in lines[-1] and "classes done" in lines[-1]


def test_evolve_prints_plain_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setenv(EVERY_ENV, "0")
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--generations", "3", "--population",
                                       "4", "--device", "cpu", "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("gen ")]
    assert "\r" not in result.output and lines[-1].startswith("gen 3/3 | ETA 00:00")
    assert "median" in lines[-1] and "coverage 4/4" in lines[-1]


def test_item_progress_draws_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress, "_terminal_rows", lambda s: 40)
    with progress.ItemProgress(2, "run") as bar:
        bar.done("a")
        bar.done("b")
    assert "\r" in stream.getvalue() and "2/2" in stream.getvalue()
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress, "_terminal_rows", lambda s: 0)
    with progress.ItemProgress(2, "run") as bar:
        bar.done("a")
        bar.done("b")
    assert "\r" not in stream.getvalue()
    assert [line.split(" ")[0] for line in stream.getvalue().splitlines()] == ["[1/2]", "[2/2]"]
    with progress.ItemProgress(2, "run", quiet=True) as bar:
        bar.done("a")
    assert stream.getvalue().count("\n") == 2
