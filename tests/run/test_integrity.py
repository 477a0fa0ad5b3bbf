"""A run's record of itself: weights fingerprints, settings types, log.txt, stop reasons, stable elite names."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from run_outputs import reseal
from torch import nn

from fooling.rundir import read_elite_folder, read_run
from fooling.classifiers import Classifier, ModelSpec, Preprocess, register
from fooling.classifiers.fingerprint import check_fingerprints, model_fingerprint, state_dict_sha256
from fooling.cli import main
from fooling.settings.evolve import EvolveSettings
from fooling.errors import FoolingError
from fooling.run import EvolutionRun, evolve
from helpers import read_png


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=4, population=8, seed=5, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def _one_line_error(args: list[str], *words: str) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    for word in words:
        assert word in result.output, result.output
    return result.output


# --- weights fingerprints -------------------------------------------------------------------------------
def _register_linear(name: str, seed: int) -> None:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    register(ModelSpec(name=name, dataset="test", input="1x8x8 grey", num_classes=3, description="linear",
                       load=lambda device, crops: Classifier(
                           net, name=name, labels=["x", "y", "z"], device=device, crops=crops,
                           preprocess=Preprocess(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,)))))


def test_config_records_each_models_weights_and_resume_refuses_changed_ones(tmp_path):
    _register_linear("test-linear-fp", seed=0)
    out = tmp_path / "run"
    evolve(_config(out, model="test-linear-fp"))
    record = json.loads((out / "config.json").read_text())
    recorded = record["run"]["weights_sha256"]["test-linear-fp"]
    assert re.fullmatch(r"[0-9a-f]{64}", recorded) and recorded == model_fingerprint("test-linear-fp")
    check_fingerprints(record)  # unchanged: fine
    _register_linear("test-linear-fp", seed=1)  # same name, other weights
    now = model_fingerprint("test-linear-fp")
    assert now != recorded
    with pytest.raises(FoolingError, match="test-linear-fp has changed"):
        check_fingerprints(record)
    output = _one_line_error(["evolve", "--resume", str(out), "--generations", "6", "--quiet"],
                             "test-linear-fp", recorded[:12], now[:12])
    assert "Traceback" not in output
    assert json.loads((out / "config.json").read_text()) == record  # nothing rewritten


def test_a_run_from_before_fingerprints_resumes_with_a_warning(tmp_path):
    out = tmp_path / "run"
    evolve(_config(out))
    record = json.loads((out / "config.json").read_text())
    del record["run"]["weights_sha256"]
    (out / "config.json").write_text(json.dumps(record))
    EvolutionRun.resume(out, generations=6).run(progress=False)
    assert re.search(r"WARNING this run was made before model weights were fingerprinted", (out / "log.txt").read_text())
    assert "weights_sha256" in json.loads((out / "config.json").read_text())["run"]


def test_state_dict_hash_depends_on_every_tensor():
    net = nn.Linear(4, 2)
    before = state_dict_sha256(net)
    with torch.no_grad():
        net.bias[1] += 1e-6
    assert state_dict_sha256(net) != before


# --- config.json and the checkpoint must agree --------------------------------------------------------------
@pytest.mark.parametrize("key, value, words", [
    ("population", "8", ["population must be an integer or null, got '8'"]),
    ("generations", 4.5, ["generations must be an integer"]),
    ("classes", [0, "b"], ["classes must be a list of integers"]),
    ("until", True, ["until must be a number"]),
    ("model", None, ["model must be a string"]),
])
def test_config_json_with_wrong_types_is_one_line(tmp_path, key, value, words):
    out = tmp_path / "run"
    evolve(_config(out))
    record = json.loads((out / "config.json").read_text())
    record[key] = value
    (out / "config.json").write_text(json.dumps(record))
    _one_line_error(["evolve", "--resume", str(out)], "config.json", *words)


def test_config_json_that_is_not_an_object_is_one_line(tmp_path):
    out = tmp_path / "run"
    evolve(_config(out))
    (out / "config.json").write_text("[1, 2]")
    _one_line_error(["evolve", "--resume", str(out)], "does not hold a JSON object")


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    evolve(_config(tmp_path / "a"))
    evolve(_config(tmp_path / "b", classes=[0, 1]))
    shutil.rmtree(tmp_path / "a" / "checkpoint")
    shutil.copytree(tmp_path / "b" / "checkpoint", tmp_path / "a" / "checkpoint")
    _one_line_error(["evolve", "--resume", str(tmp_path / "a"), "--generations", "8"], "does not fit this run",
                    "classes")


def test_nan_in_a_checkpoint_is_refused(tmp_path):
    out = tmp_path / "run"
    evolve(_config(out))
    folder = out / "checkpoint"
    name = json.loads((folder / "state.json").read_text())["body"]["arrays"]
    with np.load(folder / name) as data:
        arrays = dict(data)
    arrays["archive.fitness"][1] = np.nan
    np.savez(folder / name, **arrays)
    reseal(folder)
    _one_line_error(["evolve", "--resume", str(out), "--generations", "8"], "archive.fitness holds NaN")


def test_a_checkpoint_from_before_device_genomes_is_refused_in_one_line(tmp_path):
    """Direct runs checkpointed with a numpy random state (before variation moved to the device) cannot continue
    bit-identically: one line says so."""
    out = tmp_path / "run"
    evolve(_config(out))
    folder = out / "checkpoint"
    state = json.loads((folder / "state.json").read_text())
    name = state["body"]["arrays"]
    with np.load(folder / name) as data:
        arrays = {k: v for k, v in data.items() if k != "strategy.generator"}
    assert arrays.keys() != dict(np.load(folder / name)).keys()
    np.savez(folder / name, **arrays)
    state["body"]["strategy"].pop("generator_device")
    (folder / "state.json").write_text(json.dumps(state))
    reseal(folder)
    _one_line_error(["evolve", "--resume", str(out), "--generations", "8"], "cannot continue bit-identically")


def test_the_generator_state_is_checkpointed_as_bytes(tmp_path):
    out = tmp_path / "run"
    evolve(_config(out))
    folder = out / "checkpoint"
    body = json.loads((folder / "state.json").read_text())["body"]
    with np.load(folder / body["arrays"]) as data:
        assert data["strategy.generator"].dtype == np.uint8 and data["strategy.generator"].ndim == 1
    assert body["strategy"]["generator_device"] == "cpu"


# --- log.txt, stop reasons -------------------------------------------------------------------------------
def test_log_and_summary_say_what_happened(tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["evolve", "--model", "test-oracle", "--generations", "4", "--population", "8", "--checkpoint-every",
            "2", "--checkpoint-seconds", "0", "--device", "cpu", "--quiet", "--out", str(out)]
    monkeypatch.setattr("sys.argv", ["fool", *args])  # what the log records: the process's command line
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    *_, where, last = result.output.splitlines()
    assert where.endswith("; stopped: budget reached (generation 4)")
    assert re.fullmatch(r"\d+/\d+ classes at >= 99\.99% \(median confidence [01]\.\d{4}\)", last), last
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "budget" and summary["finished"] is True
    log = (out / "log.txt").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO "
    assert re.match(stamp + r"start: fool evolve --model test-oracle .* --out " + re.escape(str(out)), log[0])
    assert re.match(stamp + r"versions: fooling .*torch .*numpy", log[1])
    assert [re.sub(r"\(.*\)", "", line.split("INFO ")[1]) for line in log[2:]] == [
        "checkpoint: generation 0 ", "checkpoint: generation 2 ", "checkpoint: generation 4 ",
        "stopped: budget reached "]
    CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "6", "--quiet"])
    assert "INFO resume at generation 4 (budget 6)" in (out / "log.txt").read_text()


def test_until_is_a_stop_reason(tmp_path):
    summary = evolve(_config(tmp_path / "run", generations=500, until=0.9))
    assert summary["stop_reason"] == "until" and summary["finished"] is True


def test_an_unexpected_error_is_logged_with_its_traceback_and_marked(tmp_path, monkeypatch):
    out = tmp_path / "run"
    run = EvolutionRun.start(_config(out, generations=10))
    real, calls = type(run.objective).fitness_tensor, []

    def failing(self, images):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("the GPU fell off")
        return real(self, images)

    monkeypatch.setattr(type(run.objective), "fitness_tensor", failing)
    with pytest.raises(RuntimeError, match="fell off"):
        run.run(progress=False)
    log = (out / "log.txt").read_text()
    assert "ERROR error during generation 4: the GPU fell off" in log and "Traceback" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "error" and summary["finished"] is False and summary["generation"] == 2
    monkeypatch.undo()
    EvolutionRun.resume(out).run(progress=False)  # and it resumes
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "budget"


# --- elite names stay put; readers take both formats --------------------------------------------------------
def test_readers_take_stable_and_old_names(tmp_path):
    out = tmp_path / "run"
    summary = evolve(_config(out))
    run = read_run(out)
    assert [e.png.name for e in run.elites] == ["0_a.png", "1_b.png", "2_c.png", "3_d.png"]
    assert [e.confidence for e in run.elites] == [c["confidence"] for c in summary["classes"]]
    loose = read_elite_folder(out / "elites")  # without summary.json: the confidence from the PNG
    assert [e.confidence for e in loose] == [c["confidence"] for c in summary["classes"]]
    old = tmp_path / "old"  # a run made before names were stable
    shutil.copytree(out, old)
    for c in summary["classes"]:
        (old / "elites" / f"{c['index']}_{c['label']}.png").rename(
            old / "elites" / f"{c['index']}_{c['label']}_{c['confidence']:.5f}.png")
    assert [(e.index, e.confidence) for e in read_run(old).elites] == [(e.index, e.confidence) for e in run.elites]
    assert [e.confidence for e in read_elite_folder(old / "elites")] == \
        [float(f"{c['confidence']:.5f}") for c in summary["classes"]]


def test_a_live_run_is_readable_at_every_checkpoint(tmp_path, monkeypatch):
    """What fool gallery / transfer see of a run in progress: every file summary.json names exists."""
    out = tmp_path / "run"
    run = EvolutionRun.start(_config(out, generations=12, checkpoint_every=1))
    seen = []
    real = run.rundir.write_summary

    def write_summary(summary):
        real(summary)
        elites = read_run(out).elites
        assert all(read_png(e.png).size == (8, 8) for e in elites)
        seen.append(len(elites))

    monkeypatch.setattr(run.rundir, "write_summary", write_summary)
    run.run(progress=False)
    assert seen and seen[-1] == 4


def test_transfer_refuses_a_run_whose_network_changed(tmp_path):
    _register_linear("test-linear-fp2", seed=0)
    out = tmp_path / "run"
    evolve(_config(out, model="test-linear-fp2"))
    assert CliRunner().invoke(main, ["transfer", str(out), "--models", "test-linear-fp2", "--out",
                                     str(tmp_path / "t1"), "--quiet"]).exit_code == 0
    _register_linear("test-linear-fp2", seed=1)  # same name, other weights
    _one_line_error(["transfer", str(out), "--models", "test-linear-fp2", "--out", str(tmp_path / "t2"),
                     "--quiet"], "test-linear-fp2 has changed")
    assert not (tmp_path / "t2").exists()


def test_ascend_from_refuses_a_cppn_run_whose_network_changed(tmp_path):
    _register_linear("test-linear-fp3", seed=0)
    out = tmp_path / "run"
    evolve(_config(out, model="test-linear-fp3", encoding="cppn"))
    args = ["ascend", "--from", str(out), "--steps", "2", "--quiet", "--device", "cpu"]
    assert CliRunner().invoke(main, args + ["--out", str(tmp_path / "a1")]).exit_code == 0
    _register_linear("test-linear-fp3", seed=1)
    _one_line_error(args + ["--out", str(tmp_path / "a2")], "test-linear-fp3 has changed")
