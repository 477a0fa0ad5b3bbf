"""The run's built-in hooks: when :class:`~fooling.run.hooks.Checkpoints` checkpoints."""

from __future__ import annotations

import time

from run_outputs import outputs

from fooling.run import EvolutionRun
from fooling.run.hooks import Hook
from fooling.settings.evolve import EvolveSettings


def _config(out, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=12, population=8, seed=2, device="cpu", checkpoint_every=2,
                out=str(out))
    return EvolveSettings(**{**base, **kw})


class _Clock(Hook):
    """A fake time.monotonic: ``seconds`` a generation, advanced after each one (so generation g sees g x seconds)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.now = seconds, 0.0

    def after_generation(self, run, record) -> None:
        self.now = (record.generation + 1) * self.seconds


def _checkpointed(run: EvolutionRun, monkeypatch, clock: _Clock) -> list[int]:
    monkeypatch.setattr(time, "monotonic", lambda: clock.now)
    done, real = [], run.checkpoint

    def checkpoint(rows, background=False):
        done.append(run.strategy.generation - 1)
        run.backgrounds.append(background)
        real(rows, background)

    run.checkpoint, run.backgrounds = checkpoint, []
    run.run(progress=False, hooks=[clock])
    return done


def test_checkpoints_come_every_n_generations_at_least_the_given_seconds_apart(tmp_path, monkeypatch):
    run = EvolutionRun.start(_config(tmp_path / "run", checkpoint_seconds=3))
    # every 2 generations, 3 s apart, 1 s a generation: the first due one, then 4 s after each, and the last
    assert _checkpointed(run, monkeypatch, _Clock(1.0)) == [0, 4, 8, 12]


def test_no_floor_checkpoints_every_n_generations_and_slow_generations_change_nothing(tmp_path, monkeypatch):
    run = EvolutionRun.start(_config(tmp_path / "a", checkpoint_seconds=0, checkpoint_background=True))
    assert _checkpointed(run, monkeypatch, _Clock(0.0)) == [0, 2, 4, 6, 8, 10, 12]
    assert run.backgrounds == [True] * 6 + [False]  # the run goes on while they are written, but not after the last
    run = EvolutionRun.start(_config(tmp_path / "b", checkpoint_seconds=3))
    assert _checkpointed(run, monkeypatch, _Clock(5.0)) == [0, 2, 4, 6, 8, 10, 12]
    assert not any(run.backgrounds)  # by default each is written before the run goes on


def test_a_fast_run_checkpoints_the_first_and_last_generation_only_and_ends_the_same(tmp_path):
    slow = EvolutionRun.start(_config(tmp_path / "every", checkpoint_seconds=0))
    slow.run(progress=False)
    fast = EvolutionRun.start(_config(tmp_path / "floor", checkpoint_seconds=3600))
    fast.run(progress=False)
    log = (tmp_path / "floor" / "log.txt").read_text()
    assert [line.split("generation ")[1].split()[0] for line in log.splitlines() if "checkpoint: generation" in line] \
        == ["0", "12"]
    a, b = outputs(tmp_path / "every"), outputs(tmp_path / "floor")
    assert a.pop("config") != b.pop("config")  # checkpoint_seconds is recorded ...
    assert a == b  # ... and changes nothing else: metrics.csv keeps every generation's row


def test_the_floor_may_change_when_a_run_resumes(tmp_path, monkeypatch):
    EvolutionRun.start(_config(tmp_path / "run", checkpoint_seconds=3600, generations=4)).run(progress=False)
    run = EvolutionRun.resume(tmp_path / "run", generations=12, checkpoint_seconds=0)
    assert run.config.checkpoint_seconds == 0
    assert _checkpointed(run, monkeypatch, _Clock(0.0)) == [6, 8, 10, 12]
