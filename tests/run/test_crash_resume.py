"""Crashes at every file-system write of a run resume to exactly the files of a run never interrupted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.settings.evolve import EvolveSettings
from fooling.run import EvolutionRun, evolve
from fooling.rundir import atomic
from run_outputs import outputs

class Crash(BaseException):
    """What a SIGKILL would be: nothing after it runs (not an Exception, so no error handling writes)."""


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=4, population=8, seed=11, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


@pytest.fixture
def reference(tmp_path) -> dict:
    evolve(_config(tmp_path / "reference"))
    return outputs(tmp_path / "reference")


def _count_steps(monkeypatch, out: Path) -> int:
    steps = []
    monkeypatch.setattr(atomic, "fault_point", steps.append)
    evolve(_config(out))
    monkeypatch.undo()
    return len(steps)


def _crash_at(monkeypatch, step: int) -> None:
    """From file-system step ``step`` on, every step raises Crash (so nothing more is written)."""
    seen = []

    def point(what: str) -> None:
        seen.append(what)
        if len(seen) >= step:
            raise Crash(what)

    monkeypatch.setattr(atomic, "fault_point", point)


@pytest.mark.parametrize("background", [False, True])
def test_a_crash_at_every_write_resumes_to_the_same_files(tmp_path, monkeypatch, background):
    """With --checkpoint-background, the steps of a checkpoint come from another thread, interleaved with
    the next generations' (classes.csv): a crash in either stops the run."""
    evolve(_config(tmp_path / "reference", checkpoint_background=background))
    reference = outputs(tmp_path / "reference")
    steps = _count_steps(monkeypatch, tmp_path / "count")
    assert steps > 30  # start, three checkpoints of arrays, state, metrics, elites, summary
    for step in range(1, steps + 2):
        out = tmp_path / f"crash{step}"
        _crash_at(monkeypatch, step)
        crashed = False
        try:
            evolve(_config(out, checkpoint_background=background))
        except Crash:
            crashed = True
        monkeypatch.undo()
        assert crashed == (step <= steps)
        if (out / "config.json").is_file():
            EvolutionRun.resume(out).run(progress=False)
        else:  # killed before config.json: nothing but the lock file; a new run may start there
            assert {p.name for p in out.iterdir() if not p.name.endswith(".tmp")} <= {".lock"}
            evolve(_config(out, checkpoint_background=background))
        assert outputs(out) == reference, f"crash before step {step}"
        shutil.rmtree(out)


def test_a_crash_while_resuming_still_resumes(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    EvolutionRun.start(_config(out)).run(progress=False, stop_after=2)
    saved = tmp_path / "saved"
    shutil.copytree(out, saved)
    step = 0
    while True:
        step += 1
        _crash_at(monkeypatch, step)
        try:
            EvolutionRun.resume(out).run(progress=False)
            done = True
        except Crash:
            done = False
        monkeypatch.undo()
        EvolutionRun.resume(out).run(progress=False)
        assert outputs(out) == reference, f"crash before step {step} of the resume"
        shutil.rmtree(out)
        shutil.copytree(saved, out)
        if done:
            break
    assert step > 10


def test_a_finished_run_whose_outputs_were_lost_is_restored_by_resume(tmp_path, reference):
    out = tmp_path / "run"
    evolve(_config(out))
    for path in (out / "elites").iterdir():
        path.unlink()
    (out / "summary.json").unlink()
    lines = (out / "metrics.csv").read_bytes().split(b"\r\n")
    (out / "metrics.csv").write_bytes(b"\r\n".join(lines[:4]) + b"\r\n3,3")  # rows 0-2, then one cut short
    result = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "stopped: budget reached" in result.output.splitlines()[-2]
    assert outputs(out) == reference


def test_killed_in_generation_zero_resumes_from_scratch(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    run = EvolutionRun.start(_config(out))

    def killed(*args):
        raise Crash("killed during generation 0")

    monkeypatch.setattr(run.objective, "fitness_tensor", killed, raising=False)
    monkeypatch.setattr(type(run.objective), "fitness_tensor", killed)
    with pytest.raises(Crash):
        run.run(progress=False)
    monkeypatch.undo()
    assert (out / "config.json").is_file() and not (out / "checkpoint" / "state.json").exists()
    result = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert outputs(out) == reference
    assert "no checkpoint yet; starting again from generation 0" in (out / "log.txt").read_text()


def test_a_lost_checkpoint_of_a_run_with_results_is_refused_not_restarted(tmp_path):
    out = tmp_path / "run"
    evolve(_config(out))
    (out / "checkpoint" / "state.json").unlink()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "log.txt"}
    result = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "no checkpoint" in result.output and "cannot be resumed" in result.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "log.txt"} == before


def test_no_elite_file_is_ever_deleted_while_a_run_goes_on(tmp_path, monkeypatch):
    removed = []
    real = atomic.remove
    monkeypatch.setattr(atomic, "remove", lambda path: (removed.append(Path(path)), real(path)))
    names = []
    run = EvolutionRun.start(_config(tmp_path / "run", generations=12))
    for stop in (2, 4, 8, 12):
        run.run(progress=False, stop_after=stop)
        names.append(sorted(p.name for p in (tmp_path / "run" / "elites").iterdir()))
    assert all(p.parent.name == "checkpoint" for p in removed)  # only superseded arrays files
    assert names[0] == names[-1] == ["0_a.png", "1_b.png", "2_c.png", "3_d.png"]
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_nan_fitness_never_becomes_an_elite(tmp_path, monkeypatch):
    run = EvolutionRun.start(_config(tmp_path / "run", generations=6))
    real = type(run.objective).fitness_tensor

    def broken(self, images):
        fitness, scores = real(self, images)
        fitness = fitness.clone()
        fitness[::2] = np.nan  # half the candidates score NaN for every class
        fitness[1::4, 0] = np.nan
        return fitness, scores

    monkeypatch.setattr(type(run.objective), "fitness_tensor", broken)
    summary = run.run(progress=False)
    assert np.all(np.isfinite(run.archive.fitness))
    assert all(c["confidence"] is not None for c in summary["classes"])
    EvolutionRun.resume(tmp_path / "run", generations=8).run(progress=False)  # and the checkpoint loads
