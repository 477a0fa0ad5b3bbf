"""The run loop: a complete run directory, and resumed runs equal uninterrupted ones."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fooling.settings.evolve import EvolveSettings
from fooling.run import EvolutionRun, evolve
from fooling.rundir.checkpoint import load_checkpoint
from helpers import assert_same_archive, csv_rows, read_png


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=12, population=16, seed=3, device="cpu", checkpoint_every=4,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def test_run_directory_is_complete(tmp_path):
    summary = evolve(_config(tmp_path / "run"))
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "summary.json", "metrics.csv", "elites",
                                                 "checkpoint", "log.txt"}
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 3 and config["model"] == "test-oracle"
    assert (config["mutation"], config["mutation_eta"]) == ("unscaled", 5.0)
    assert "torch" in config["run"]["versions"]
    saved = json.loads((run / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["generation"] == 12 and saved["evaluations"] == 16 * 13
    assert [c["index"] for c in saved["classes"]] == [0, 1, 2, 3]
    rows = csv_rows(run / "metrics.csv")
    assert [int(r["generation"]) for r in rows] == list(range(13))
    assert float(rows[-1]["median_confidence"]) >= float(rows[0]["median_confidence"])
    pngs = sorted((run / "elites").glob("*.png"))
    assert len(pngs) == 4
    for png, entry in zip(pngs, saved["classes"]):
        assert png.name == f"{entry['index']}_{entry['label']}.png"
        with Image.open(png) as image:
            assert image.size == (8, 8) and float(image.text["confidence"]) == entry["confidence"]


def test_resume_equals_uninterrupted(tmp_path):
    evolve(_config(tmp_path / "straight"))
    EvolutionRun.start(_config(tmp_path / "split")).run(progress=False, stop_after=6)
    assert load_checkpoint(tmp_path / "split" / "checkpoint")[1]["generation"] == 6
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert_same_archive(tmp_path / "straight", tmp_path / "split")
    rows = csv_rows(tmp_path / "split" / "metrics.csv")
    assert [int(r["generation"]) for r in rows] == list(range(13))


def test_resume_with_more_generations_equals_a_longer_run(tmp_path):
    evolve(_config(tmp_path / "long", generations=20))
    evolve(_config(tmp_path / "short", generations=8))
    EvolutionRun.resume(tmp_path / "short", generations=20).run(progress=False)
    assert_same_archive(tmp_path / "long", tmp_path / "short")


def test_the_loop_keeps_genomes_and_scores_on_the_device(tmp_path, monkeypatch):
    """Direct genomes are tensors on the run's device from ask() to the archive's store, and the loop scores with
    Objective.fitness_tensor (never the numpy fitness, which reads the whole probability matrix back)."""
    from fooling.archive import TensorStore
    from fooling.objective import Objective

    def host_fitness(self, images):
        raise AssertionError("the loop read the probability matrix back to the host")

    monkeypatch.setattr(Objective, "fitness", host_fitness)
    run = EvolutionRun.start(_config(tmp_path / "run", crossover_rate=0.5, laggard_bias=0.3))
    asked = []
    real_ask = run.strategy.ask
    monkeypatch.setattr(run.strategy, "ask", lambda: asked.append(real_ask()) or asked[-1])
    run.run(progress=False)
    assert all(isinstance(g, torch.Tensor) and g.device == run.device for g in asked)
    assert isinstance(run.archive.store, TensorStore) and run.archive.fitness_tensor.device == run.device
    assert np.array_equal(run.archive.fitness, run.archive.fitness_tensor.cpu().numpy())


@pytest.mark.cuda
def test_a_cuda_run_is_deterministic_and_resumes_to_the_same_archive(tmp_path):
    kw = dict(device="cuda", crossover_rate=0.5)
    evolve(_config(tmp_path / "straight", **kw))
    evolve(_config(tmp_path / "again", **kw))
    assert_same_archive(tmp_path / "straight", tmp_path / "again")
    EvolutionRun.start(_config(tmp_path / "split", **kw)).run(progress=False, stop_after=6)
    state = json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())
    assert state["body"]["strategy"]["generator_device"] == "cuda"
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert_same_archive(tmp_path / "straight", tmp_path / "split")


@pytest.mark.cuda
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_map_elites_on_cuda_varies_its_children(tmp_path, device):
    """``--device cuda`` once meant an encoding on ``cuda`` varying tensors on ``cuda:0``: a copy, thrown away."""
    run = EvolutionRun.start(_config(tmp_path / "run", device=device, strategy="map-elites", crossover_rate=0.5))
    run.run(progress=False, stop_after=2)
    assert run.device == torch.device("cuda", torch.cuda.current_device())
    plan = run.strategy.plan()
    children = run.strategy.take(plan)
    assert plan.kind == "vary" and not torch.equal(children, run.archive.elites(plan.parents))


@pytest.mark.parametrize("encoding", ["direct", "cppn"])
def test_ga_resume_equals_uninterrupted(tmp_path, encoding):
    kw = dict(strategy="ga", target=2, generations=10, encoding=encoding)
    evolve(_config(tmp_path / "straight", **kw))
    EvolutionRun.start(_config(tmp_path / "split", **kw)).run(progress=False, stop_after=4)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert_same_archive(tmp_path / "straight", tmp_path / "split")
    summary = json.loads((tmp_path / "split" / "summary.json").read_text())
    assert [c["index"] for c in summary["classes"]] == [2]


@pytest.mark.parametrize("strategy, ignored", [("map-elites", {"target": 2}), ("ga", {"classes": [0, 1]})])
def test_a_run_that_recorded_a_class_setting_its_strategy_ignored_still_resumes(tmp_path, strategy, ignored):
    """Before --target without --strategy ga (or --classes with it) was refused, such runs began and recorded the
    setting they ignored in config.json: they resume, and end as a run without it."""
    kw = dict(strategy=strategy, generations=8, **({"target": 2} if strategy == "ga" else {}))
    evolve(_config(tmp_path / "straight", **kw))
    EvolutionRun.start(_config(tmp_path / "old", **kw)).run(progress=False, stop_after=4)
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    (tmp_path / "old" / "config.json").write_text(json.dumps({**config, **ignored}))  # as an older fooling wrote it
    EvolutionRun.resume(tmp_path / "old").run(progress=False)
    assert_same_archive(tmp_path / "straight", tmp_path / "old")


def test_paper_preset_is_recorded(tmp_path):
    evolve(_config(tmp_path / "run", preset="paper", generations=2))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["mutation"], config["mutation_rate"], config["crossover_rate"]) == ("unscaled", 0.1, 0.5)
    assert config["rate_halving_every"] == 1000


def _fool(*args: str) -> list[str]:
    return [sys.executable, "-m", "fooling", *args]


def _wait_for_checkpoint(path: Path, generation: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    state = path / "checkpoint" / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read().decode()}")
        if state.exists():
            try:
                if json.loads(state.read_text())["body"]["generation"] >= generation:
                    return
            except ValueError:
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_or_interrupted_run_resumes_to_the_same_archive(tmp_path, mnist_lenet, sig):
    args = ["--model", mnist_lenet, "--generations", "40", "--population", "50", "--seed", "5",
            "--checkpoint-every", "2", "--checkpoint-seconds", "0", "--device", "cpu", "--quiet"]
    evolve(EvolveSettings(model=mnist_lenet, generations=40, population=50, seed=5, device="cpu",
                          out=str(tmp_path / "straight")))
    proc = subprocess.Popen(_fool("evolve", *args, "--out", str(tmp_path / "killed")), env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_checkpoint(tmp_path / "killed", 4, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and b"fool evolve --resume" in err and b"Traceback" not in err
    done = load_checkpoint(tmp_path / "killed" / "checkpoint")[1]["generation"]
    assert done < 40, "the run finished before it was stopped; make it longer"
    subprocess.run(_fool("evolve", "--resume", str(tmp_path / "killed"), "--quiet"), check=True,
                   env=os.environ.copy())
    assert_same_archive(tmp_path / "straight", tmp_path / "killed")


def test_until_stops_once_every_class_is_there(tmp_path):
    summary = evolve(_config(tmp_path / "run", generations=500, until=0.9))
    assert summary["generation"] < 500
    assert min(c["confidence"] for c in summary["classes"]) >= 0.9
    assert "every class reached 0.9" in (tmp_path / "run" / "log.txt").read_text()


def test_evolution_raises_confidence_on_a_real_lenet(tmp_path, mnist_lenet):
    summary = evolve(EvolveSettings(model=mnist_lenet, generations=25, population=100, seed=0, device="cpu",
                                    out=str(tmp_path / "run")))
    rows = csv_rows(tmp_path / "run" / "metrics.csv")
    first, last = float(rows[0]["median_confidence"]), float(rows[-1]["median_confidence"])
    # the test LeNet (Caffe's recipe cut to 300 iterations) is less sure of noise than the real one
    # (generation 0 median about 0.08, the fully trained replica's about 0.01): ask for a clear rise
    assert last > 0.5 and last > 4 * first
    assert summary["max_confidence"] > 0.99


def test_snapshots_keep_the_elites_of_every_nth_generation(tmp_path):
    evolve(_config(tmp_path / "run", generations=6, snapshot_every=3))
    snaps = sorted(int(p.name) for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snaps == [0, 3, 6]
    assert len(list((tmp_path / "run" / "snapshots" / "3").glob("*.png"))) == 4


def _elite_files(folder: Path) -> dict[int, list[str]]:
    files: dict[int, list[str]] = {}
    for path in folder.iterdir():
        files.setdefault(int(path.name.split("_")[0]), []).append(path.name)
    return files


def _mark_elite_files(folder: Path) -> None:
    """Overwrite every elite file with a marker: a file that still holds it was not rewritten."""
    for path in folder.iterdir():
        path.write_bytes(b"untouched")


def _rewritten(folder: Path) -> set[int]:
    return {int(p.name.split("_")[0]) for p in folder.iterdir() if p.read_bytes() != b"untouched"}


def test_checkpoints_rewrite_only_the_elites_that_changed(tmp_path):
    from fooling.imaging import to_uint8

    run = EvolutionRun.start(_config(tmp_path / "run", generations=40, checkpoint_every=1))
    run.run(progress=False, stop_after=3)
    elites = tmp_path / "run" / "elites"
    _mark_elite_files(elites)
    # one candidate that beats the elite of class "b" (cell 1) only
    before = run.archive.fitness.copy()
    candidate = run.encoding.random(1, np.random.default_rng(0))
    confidence = np.zeros((1, len(run.archive)))
    confidence[0, 1] = before[1] + 1e-7  # so small a gain that the file name may not change
    run.archive.add(candidate, confidence, generation=run.strategy.generation)
    run.checkpoint([])
    assert _rewritten(elites) == {1}
    name = "1_b.png"
    assert [p.name for p in elites.glob("1_*")] == [name]
    assert float(read_png(elites / name).text["confidence"]) == before[1] + 1e-7
    image = np.asarray(read_png(elites / name))
    assert np.array_equal(image, to_uint8(run.encoding.decode(candidate, "cpu"))[0, ..., 0])

    # then generations with a checkpoint after each: the classes whose elite improved are rewritten, only they
    _mark_elite_files(elites)
    before = run.archive.fitness.copy()
    run.run(progress=False, stop_after=12)
    changed = set(np.flatnonzero(run.archive.fitness != before).tolist())
    assert changed and _rewritten(elites) == changed
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    files = _elite_files(elites)
    assert files == {c["index"]: [f"{c['index']}_{c['label']}.png"] for c in summary["classes"]}
    for cell in sorted(changed):
        image = np.asarray(read_png(elites / files[int(run.archive.classes[cell])][0]))
        elite = to_uint8(run.encoding.decode(run.archive.elites(np.array([cell])), "cpu"))[0, ..., 0]
        assert np.array_equal(image, elite)


def test_summary_json_never_names_a_checkpoint_whose_save_failed(tmp_path, monkeypatch):
    """The save runs beside the elite PNGs, in the background: when it fails, elites/ may be ahead of the
    checkpoint (a resume rewrites it), but summary.json, whose generation the stop message reports as
    checkpointed, stays at the durable one; the run fails at its next checkpoint, naming the one that failed."""
    from fooling.rundir import checkpoint
    from fooling.rundir.writer import RunDirectory

    commit, write_elites = checkpoint.PreparedCheckpoint.commit, RunDirectory.write_elites
    elite_writes: list[int] = []
    elites_at_failure = []

    def failing(prepared):
        if prepared.generation == 8:
            before, deadline = len(elite_writes), time.monotonic() + 30
            while len(elite_writes) == before and time.monotonic() < deadline:  # the elites of generation 8
                time.sleep(0.001)  # are written meanwhile, in another thread
            elites_at_failure.append(len(elite_writes) > before)
            raise OSError(28, "No space left on device")
        return commit(prepared)

    def counted(rundir, *args, **kw):
        write_elites(rundir, *args, **kw)
        elite_writes.append(1)

    monkeypatch.setattr(checkpoint.PreparedCheckpoint, "commit", failing)
    monkeypatch.setattr(RunDirectory, "write_elites", counted)
    run = EvolutionRun.start(_config(tmp_path / "run", checkpoint_background=True))
    with pytest.raises(OSError, match="No space left"):
        run.run(progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["generation"] == 4 and summary["stop_reason"] == "error" and elites_at_failure == [True]
    assert load_checkpoint(tmp_path / "run" / "checkpoint")[1]["generation"] == 4
    assert "checkpoint of generation 8 failed: [Errno 28] No space left" in (tmp_path / "run" / "log.txt").read_text()
    monkeypatch.undo()
    EvolutionRun.resume(tmp_path / "run").run(progress=False)
    evolve(_config(tmp_path / "straight"))
    assert_same_archive(tmp_path / "straight", tmp_path / "run")


def test_the_run_goes_on_while_a_checkpoint_is_written(tmp_path, monkeypatch):
    """Generation 4's checkpoint is held until generation 6 has been scored: the generations between run while it
    is written, it is complete once durable, and the run ends as an uninterrupted one does."""
    import threading

    from fooling.rundir import checkpoint
    from fooling.run.hooks import Hook

    commit = checkpoint.PreparedCheckpoint.commit
    reached = threading.Event()
    held = []

    def slow(prepared):
        if prepared.generation == 4:
            held.append(reached.wait(30))
        return commit(prepared)

    class Reached(Hook):
        def after_generation(self, run, record):
            if record.generation == 6:
                summary = json.loads((tmp_path / "run" / "summary.json").read_text())
                held.append(summary["generation"])  # still the durable checkpoint: generation 0
                reached.set()

    monkeypatch.setattr(checkpoint.PreparedCheckpoint, "commit", slow)
    run = EvolutionRun.start(_config(tmp_path / "run", checkpoint_background=True))
    run.hooks.append(Reached())
    run.run(progress=False)
    assert held == [0, True]
    monkeypatch.undo()
    evolve(_config(tmp_path / "straight"))
    assert_same_archive(tmp_path / "straight", tmp_path / "run")
    rows = [list(csv.DictReader((tmp_path / name / "metrics.csv").read_text().splitlines()))
            for name in ("run", "straight")]
    for row in rows[0] + rows[1]:
        del row["elapsed_s"]
    assert len(rows[0]) == 13 and rows[0] == rows[1]  # the same rows, but for the time taken
    assert "checkpoint: generation 4" in (tmp_path / "run" / "log.txt").read_text()


def test_a_resumed_run_rewrites_every_elite_once(tmp_path):
    EvolutionRun.start(_config(tmp_path / "run")).run(progress=False, stop_after=4)
    elites = tmp_path / "run" / "elites"
    for path in elites.iterdir():  # as if an older version or a crash had left stale or extra files behind
        path.rename(path.with_name(path.stem + "_0.12345.png"))
    (elites / "3_d_0.00001.png").write_bytes(b"stale")
    (elites / "2_c.png").write_bytes(b"stale")
    EvolutionRun.resume(tmp_path / "run").run(progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert _elite_files(elites) == {c["index"]: [f"{c['index']}_{c['label']}.png"] for c in summary["classes"]}
    assert all(p.read_bytes() != b"stale" for p in elites.iterdir())
