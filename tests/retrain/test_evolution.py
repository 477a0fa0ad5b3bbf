"""One iteration's evolution runs: every snapshot generation is checkpointed before its snapshot; each run takes
the population fool evolve would unless the experiment gives one."""

from __future__ import annotations

import pytest

from fooling.retrain.evolution import _open
from fooling.settings.retrain import RetrainSettings


def test_runs_checkpoint_every_snapshot_generation_with_no_time_floor(tmp_path):
    settings = RetrainSettings(iterations=1, generations=4, population=8, snapshot_every=2, device="cpu")
    run = _open(settings, "test-oracle", [0, 1], 3, tmp_path / "run_0")
    assert (run.config.checkpoint_every, run.config.checkpoint_seconds) == (2, 0)
    run.run(progress=False)  # generations 0-4: a snapshot at 2 and 4
    log = (tmp_path / "run_0" / "log.txt").read_text()
    assert "checkpoint: generation 0 " in log and "checkpoint: generation 2 " in log
    # a run directory made before the time floor (no checkpoint_seconds in config.json) resumes without one too
    config = tmp_path / "run_0" / "config.json"
    config.write_text(config.read_text().replace('"checkpoint_seconds": 0.0,', ""))
    assert "checkpoint_seconds" not in config.read_text()
    run = _open(settings, "test-oracle", [0, 1], 3, tmp_path / "run_0")
    assert run.config.checkpoint_seconds == 0
    run.close()


@pytest.mark.parametrize("given, population", [
    (dict(), 40),  # the default preset: snes-elites, 40 children (fool retrain made 200)
    (dict(encoding="cppn"), 50),  # the default preset's CPPN search
    (dict(preset="paper"), 200),
    (dict(preset="paper", encoding="cppn"), 200),  # 400 only on ImageNet networks (tests/retrain/test_imagenet.py)
    (dict(population=8), 8),
])
def test_runs_take_the_population_fool_evolve_would(tmp_path, given, population):
    settings = RetrainSettings(iterations=1, generations=1, device="cpu", **given)
    run = _open(settings, "test-oracle", [0, 1], 0, tmp_path / "run_0")
    try:
        assert (run.config.population, run.config.initial_population) == (population, population)
    finally:
        run.close()
