"""The MNIST retraining loop end to end with tiny budgets, its outputs, and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fooling.classifiers import get_spec, load_classifier
from fooling.cli import main
from fooling.settings.evolve import EvolveSettings
from fooling.data import load_mnist
from fooling.errors import FoolingError
from fooling.paths import models_dir
from fooling.retrain.loop import RetrainRun
from fooling.settings.retrain import RetrainSettings
from fooling.run import EvolutionRun

from helpers import csv_rows, read_png

TINY = dict(iterations=2, generations=5, population=20, snapshot_every=2, runs_per_iteration=2, epochs=1,
            device="cpu")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory) -> Path:
    """IDX files of 300 training and 100 held-out real digits (training on them takes a blink)."""
    data = load_mnist()
    folder = tmp_path_factory.mktemp("mnist")
    pick = np.random.default_rng(0).permutation(len(data.train_labels))[:300]
    _write_idx(folder / "train-images-idx3-ubyte", data.train_images[pick])
    _write_idx(folder / "train-labels-idx1-ubyte", data.train_labels[pick])
    _write_idx(folder / "t10k-images-idx3-ubyte", data.test_images[::10])
    _write_idx(folder / "t10k-labels-idx1-ubyte", data.test_labels[::10])
    return folder


def _settings(out: Path, name: str, mnist_dir: Path, **kw) -> RetrainSettings:
    return RetrainSettings(**{**TINY, "out": str(out), "name": name, "mnist_dir": str(mnist_dir), **kw})


@pytest.fixture(scope="module")
def straight(mnist_lenet, small_mnist, tmp_path_factory) -> tuple[Path, list[dict]]:
    """An uninterrupted tiny retrain run: (its directory, its rows)."""
    out = tmp_path_factory.mktemp("retrain") / "straight"
    rows = RetrainRun.start(_settings(out, "t-straight", small_mnist), progress=False).run()
    return out, rows


def test_table_has_one_row_per_network(straight):
    out, rows = straight
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert [r["network"] for r in rows] == ["mnist-lenet", "t-straight-r1", "t-straight-r2"]
    assert rows[0]["held_out_fooling_share"] is None and rows[0]["fooling_train_images"] is None
    assert rows[0]["held_out_accuracy"] > 0.5
    for row in rows[1:]:
        assert row["fooling_train_images"] == 30  # as many as a real class: 300 digits / 10
        assert 0.0 <= row["held_out_fooling_share"] <= 1.0
    for row in rows:
        assert 0.0 <= row["held_out_accuracy"] <= 1.0
        assert list(row["confidence"]) == [str(k) for k in range(10)]
        assert 0.0 <= row["median_confidence"] <= 1.0
        assert row["evaluations"] == 2 * 20 * 6  # two runs of generations 0..5
        assert 10 <= row["evolved_images"] <= 2 * 3 * 10  # snapshots at 2, 4, 5


def test_outputs_are_written(straight):
    out, rows = straight
    table_rows = csv_rows(out / "table.csv")
    assert len(table_rows) == 3 and "confidence_9" in table_rows[0]
    assert json.loads((out / "table.json").read_text())["rows"] == rows
    markdown = (out / "table.md").read_text().splitlines()
    assert len(markdown) == 2 + 3 and markdown[0].startswith("| iteration |")
    assert read_png(out / "confidence.png").size == (720, 420)
    settings = json.loads((out / "retrain.json").read_text())
    assert settings["iterations"] == 2 and settings["out"] == str(out)
    for i in range(3):
        it = out / f"iter_{i:02d}"
        assert (it / "result.json").is_file() and (it / "pool_1.npz").is_file()
        assert (it / "run_0" / "summary.json").is_file()


def test_networks_are_saved_registered_and_usable(straight):
    out, _ = straight
    for i in (1, 2):
        name = f"t-straight-r{i}"
        meta = json.loads((models_dir() / f"{name}.json").read_text())
        assert meta["arch"] == "lenet" and meta["num_classes"] == 11
        assert meta["labels"] == [str(k) for k in range(10)] + ["fooling"]
        # mnist-lenet's own solver (Caffe's SGD, inv policy), cut to the run's 1 epoch
        assert meta["train"]["optimizer"] == "sgd" and meta["train"]["lr_policy"] == "inv"
        assert meta["train"]["epochs"] == 1 and meta["train"]["iterations"] is None and meta["recipe_name"] == "caffe"
        assert (out / "networks" / f"{name}.pt").is_file()
        assert get_spec(name).num_classes == 11
        assert load_classifier(name, "cpu").num_classes == 11
    listing = CliRunner().invoke(main, ["models"])
    assert listing.exit_code == 0 and "t-straight-r2" in listing.output


def test_retrained_network_is_a_target_for_evolution(straight, tmp_path):
    config = EvolveSettings(model="t-straight-r1", classes=list(range(10)), generations=2, population=10,
                            device="cpu", out=str(tmp_path / "ev"))
    summary = EvolutionRun.start(config).run(progress=False)
    assert [c["index"] for c in summary["classes"]] == list(range(10))


def _interrupt_after(monkeypatch, runs: int, mid_segment: bool) -> None:
    """Make the ``runs``-th evolution run opened stop like Ctrl-C: during generation 3 (between snapshots), or
    twice right after the checkpoint of generation 4, before its pool snapshot."""
    import signal

    from fooling.retrain import evolution
    from fooling.run.hooks import Hook

    class CtrlC(Hook):
        def should_stop(self, run, generation):
            if mid_segment and generation == 3:
                run._request_stop(signal.SIGINT, None)  # it finishes generation 3, checkpoints, stops
            return False

        def after_generation(self, run, record):
            if not mid_segment and record.generation == 4:
                run._request_stop(signal.SIGINT, None)
                run._request_stop(signal.SIGINT, None)  # the second one leaves at once

    original = evolution._open
    count = {"n": 0}

    def _open(*args, **kwargs):
        run = original(*args, **kwargs)
        count["n"] += 1
        if count["n"] == runs:
            run.hooks.append(CtrlC())  # run.hooks hear of a generation before the pool's snapshot
        return run

    monkeypatch.setattr(evolution, "_open", _open)


@pytest.mark.parametrize("mid_segment", [True, False])
def test_interrupted_run_resumes_to_the_same_table(straight, small_mnist, tmp_path, monkeypatch, mid_segment):
    _, expected = straight
    out = tmp_path / "split"
    # two runs per iteration: the third run opened is iteration 1's first
    _interrupt_after(monkeypatch, runs=3, mid_segment=mid_segment)
    from fooling.retrain.evolution import Interrupted

    with pytest.raises(Interrupted):
        RetrainRun.start(_settings(out, f"t-split-{mid_segment}", small_mnist), progress=False).run()
    assert (out / "iter_00" / "result.json").is_file() and not (out / "iter_01" / "result.json").exists()
    monkeypatch.undo()
    rows = RetrainRun.resume(out, progress=False).run()
    for row, want in zip(rows, expected):
        assert {k: v for k, v in row.items() if k != "network"} == {k: v for k, v in want.items() if k != "network"}


def test_resume_after_finishing_only_reads_back(straight):
    out, rows = straight
    assert RetrainRun.resume(out, progress=False).run() == rows


def test_names_of_another_experiment_are_not_overwritten(straight, small_mnist, tmp_path):
    with pytest.raises(FoolingError, match="exists already"):
        RetrainRun.start(_settings(tmp_path / "other", "t-straight", small_mnist), progress=False)


def test_retrained_network_cannot_be_a_base(straight, small_mnist, tmp_path):
    with pytest.raises(FoolingError, match="already has a fooling class"):
        RetrainRun.start(_settings(tmp_path / "x", "t-base", small_mnist, model="t-straight-r1"), progress=False)


def test_a_run_killed_before_its_first_checkpoint_is_resumed_not_deleted(tmp_path):
    from fooling.retrain.evolution import _open

    settings = RetrainSettings(model="test-oracle", generations=2, population=8, snapshot_every=1, device="cpu")
    folder = tmp_path / "it0_run0"
    EvolutionRun.start(EvolveSettings(model="test-oracle", generations=2, population=8, device="cpu",
                                      out=str(folder))).close()  # made, never checkpointed
    (folder / "notes.txt").write_text("kept")
    run = _open(settings, "test-oracle", [0, 1, 2, 3], 0, folder)
    run.run(progress=False)
    run.close()
    assert (folder / "notes.txt").read_text() == "kept"
    assert json.loads((folder / "summary.json").read_text())["finished"] is True


def test_a_retrain_directory_in_use_is_refused(mnist_lenet, small_mnist, tmp_path):
    import os

    from fooling.rundir.lock import RunLock

    out = tmp_path / "busy"
    run = RetrainRun.start(_settings(out, "t-busy", small_mnist), progress=False)
    held = RunLock(out).acquire()
    try:
        with pytest.raises(FoolingError, match=f"in use by process {os.getpid()}"):
            run.run()
    finally:
        held.release()
    assert not (out / "iter_00").exists()  # nothing was done while it was refused
