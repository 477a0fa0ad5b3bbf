"""fool evolve --tensorboard / hooks=[TensorBoard()]: scalars and elite grids readable by TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import fooling  # noqa: E402
from fooling.cli import main  # noqa: E402
from fooling.run import EvolutionRun  # noqa: E402
from fooling.run.tensorboard import TensorBoard  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=4, population=8, seed=5, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def _events(logdir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(logdir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_scalars_and_elite_grids_are_written(tmp_path):
    out = tmp_path / "run"
    fooling.evolve(_config(out), hooks=[TensorBoard()])
    acc = _events(out / "tensorboard")
    tags = acc.Tags()
    assert {"confidence/median", "confidence/max", "coverage", "classes/>=99%", "classes/>=99.99%",
            "evals_per_s"} <= set(tags["scalars"])
    median = acc.Scalars("confidence/median")
    assert [e.step for e in median] == [0, 1, 2, 3, 4]
    with open(out / "metrics.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    assert [e.value for e in median] == pytest.approx([float(r[3]) for r in rows], rel=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    top = sum(c["confidence"] is not None and c["confidence"] >= 0.99 for c in summary["classes"])
    assert acc.Scalars("classes/>=99%")[-1].value == top
    assert [e.step for e in acc.Images("elites")] == [0, 2, 4]  # the checkpoints


def test_a_resume_purges_the_redone_generations(tmp_path):
    out = tmp_path / "run"
    EvolutionRun.start(_config(out)).run(progress=False, stop_after=2, hooks=[TensorBoard()])
    fooling.resume(out, hooks=[TensorBoard()])
    steps = [e.step for e in _events(out / "tensorboard").Scalars("coverage")]
    assert steps == [0, 1, 2, 3, 4]


def test_the_cli_flag(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--generations", "2", "--population", "8",
                                       "--device", "cpu", "--quiet", "--tensorboard", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    result = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "3", "--quiet",
                                       "--tensorboard"])
    assert result.exit_code == 0, result.output
    assert _events(out / "tensorboard").Scalars("coverage")[-1].step == 3
