"""`fool ascend`: interrupt (flag, SIGTERM), checkpoint, resume to the uninterrupted result; stop_reason."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fooling.run.ascend as ascend_module
from fooling.cli import main
from fooling.errors import FoolingError
from fooling.run.ascend import AscentRun
from fooling.settings.ascend import AscendSettings


def _config(out: Path, **kw) -> AscendSettings:
    settings = dict(model="test-oracle", classes=[0, 1, 2, 3], steps=30, device="cpu", batch_size=2, stop_at=0,
                    checkpoint_every=7, out=str(out))
    settings.update(kw)
    return AscendSettings(**settings)


def _elites(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "elites").iterdir())}


def _same_result(a: dict, b: dict) -> None:
    keys = ("index", "confidence", "start_confidence", "generation_found", "top1", "passed")
    assert [{k: c[k] for k in keys} for c in a["classes"]] == [{k: c[k] for k in keys} for c in b["classes"]]
    assert (a["generation"], a["evaluations"]) == (b["generation"], b["evaluations"])


@pytest.mark.parametrize("settings, stop_after", [
    ({"preset": "paper"}, 45),  # paper: probability, progress rate; batch 2 of 2, part-way
    ({"preset": "yosinski"}, 45),  # logit, normalised steps, blur every 4
    ({"preset": "yosinski", "rate": "adam", "step_size": 0.02}, 45),  # Adam's moments are part of the state
    ({"preset": "paper", "stop_at": 0.99, "steps": 80}, 67 + 66),  # batch 1 took steps 0-66; in batch 2 one image has dropped out
])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, settings, stop_after):
    straight = AscentRun(_config(tmp_path / "a", **settings)).run(progress=False)
    assert straight["stop_reason"] in ("budget", "until") and straight["finished"] is True

    first = AscentRun(_config(tmp_path / "b", **settings))
    partial = first.run(progress=False, stop_after=stop_after)
    assert first.interrupted
    assert partial["stop_reason"] == "interrupted" and partial["finished"] is False
    saved = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert saved == partial and len(saved["classes"]) == 4 and saved["classes_done"] == 2
    assert len(list((tmp_path / "b" / "elites").glob("*.png"))) == 4  # what it has, also for the part-done batch
    assert (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    assert "interrupted by SIGINT" in (tmp_path / "b" / "log.txt").read_text()

    resumed = AscentRun.resume(tmp_path / "b").run(progress=False)
    assert "resume" in (log := (tmp_path / "b" / "log.txt").read_text()) and "(at batch 2 of 2, step " in log
    _same_result(resumed, straight)
    assert resumed["stop_reason"] == straight["stop_reason"] and resumed["finished"] is True
    assert _elites(tmp_path / "b") == _elites(tmp_path / "a")
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert len(rows) == len((tmp_path / "a" / "metrics.csv").read_text().splitlines())


def test_resume_twice_and_between_batches(tmp_path):
    straight = AscentRun(_config(tmp_path / "a", batch_size=1)).run(progress=False)
    out = tmp_path / "b"
    AscentRun(_config(out, batch_size=1)).run(progress=False, stop_after=31)  # right after batch 1 finished
    AscentRun.resume(out).run(progress=False, stop_after=12)
    resumed = AscentRun.resume(out).run(progress=False)
    _same_result(resumed, straight)
    assert _elites(out) == _elites(tmp_path / "a")


def test_checkpoint_holds_no_pickles(tmp_path):
    AscentRun(_config(tmp_path / "b")).run(progress=False, stop_after=10)
    folder = tmp_path / "b" / "checkpoint"
    state = json.loads((folder / "state.json").read_text())
    with np.load(folder / state["body"]["arrays"], allow_pickle=False) as data:
        assert "current.params" in data.files and data["current.step"] == 10


@pytest.fixture
def sigterm_at_step(monkeypatch):
    """Make the ascent send this process SIGTERM when batch 0 reaches step ``n``."""
    def arm(n: int) -> None:
        real = ascend_module.ascend
        calls = []

        def ascend(*args, **kwargs):
            on_step = args[6]
            calls.append(1)

            def hook(step, confidence):
                on_step(step, confidence)
                if len(calls) == 1 and step == n:
                    os.kill(os.getpid(), signal.SIGTERM)
            return real(*args[:6], hook, **kwargs)

        monkeypatch.setattr(ascend_module, "ascend", ascend)
    return arm


def test_cli_sigterm_writes_what_it_has_and_resume_finishes(tmp_path, sigterm_at_step):
    args = ["ascend", "--model", "test-oracle", "--steps", "30", "--stop-at", "0", "--batch-size", "2",
            "--device", "cpu", "--quiet", "--checkpoint-every", "5"]
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    previous = signal.getsignal(signal.SIGTERM)
    sigterm_at_step(12)
    out = tmp_path / "b"
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    assert result.exit_code == 143, result.output
    assert "Interrupted (SIGTERM)" in result.output and f"fool ascend --resume {out}" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and not summary["finished"]
    assert len(list((out / "elites").glob("*.png"))) == 2

    assert "drop --steps" in CliRunner().invoke(main, ["ascend", "--resume", str(out), "--steps", "3"]).output
    result = CliRunner().invoke(main, ["ascend", "--resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    straight = json.loads((tmp_path / "a" / "summary.json").read_text())
    _same_result(json.loads((out / "summary.json").read_text()), straight)
    assert _elites(out) == _elites(tmp_path / "a")


def test_resume_refuses_what_is_not_an_ascend_run(tmp_path):
    (tmp_path / "x").mkdir()
    result = CliRunner().invoke(main, ["ascend", "--resume", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no config.json" in result.output


def test_config_records_the_weights_and_resume_refuses_others(tmp_path):
    """config.json holds the model's weights SHA-256 (fool transfer and --resume check it); a run whose recorded
    weights differ refuses to resume in one line."""
    out = tmp_path / "run"
    AscentRun(_config(out, steps=3)).run(progress=False)
    record = json.loads((out / "config.json").read_text())
    digest = record["run"]["weights_sha256"]["test-oracle"]
    assert len(digest) == 64
    record["run"]["weights_sha256"]["test-oracle"] = "0" * 64
    (out / "config.json").write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["ascend", "--resume", str(out)])
    assert result.exit_code == 1 and "has changed since this run was made" in result.output
    assert "Traceback" not in result.output


def test_error_is_recorded(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ascend_module, "ascend", broken)
    with pytest.raises(RuntimeError):
        AscentRun(_config(tmp_path / "e")).run(progress=False)
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["stop_reason"] == "error" and summary["finished"] is False


# --- CPPN weights (fool ascend --from) ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cppn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evolved") / "run"
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--encoding", "cppn", "--generations", "2",
                                       "--population", "8", "--device", "cpu", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_cppn_weight_ascent_resumes_to_the_same_genomes(cppn_run, tmp_path):
    def config(out):
        return AscendSettings(model="test-oracle", from_run=str(cppn_run), preset="cppn", steps=20, device="cpu",
                              batch_size=4, stop_at=0, checkpoint_every=6, out=str(out))

    straight = AscentRun(config(tmp_path / "a")).run(progress=False)
    AscentRun(config(tmp_path / "b")).run(progress=False, stop_after=9)
    resumed = AscentRun.resume(tmp_path / "b").run(progress=False)
    _same_result(resumed, straight)
    assert _elites(tmp_path / "b") == _elites(tmp_path / "a")  # PNGs and tuned genomes' .json


def test_a_run_in_use_is_refused(tmp_path):
    from fooling.rundir.lock import RunLock

    AscentRun(_config(tmp_path / "b")).run(progress=False, stop_after=3)
    held = RunLock(tmp_path / "b").acquire()
    try:
        with pytest.raises(FoolingError, match=f"in use by process {os.getpid()}"):
            AscentRun.resume(tmp_path / "b").run(progress=False)
    finally:
        held.release()
    assert AscentRun.resume(tmp_path / "b").run(progress=False)["finished"]
