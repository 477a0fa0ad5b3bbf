"""SIGTERM and SIGHUP stop a run like Ctrl-C; a second signal still leaves a resumable run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_outputs import outputs

from fooling.settings.evolve import EvolveSettings
from fooling.run import EvolutionRun, evolve

ORACLE_FOOL = str(Path(__file__).with_name("oracle_fool.py"))
ARGS = ["--model", "test-oracle", "--population", "8", "--seed", "4", "--checkpoint-every", "3",
        "--checkpoint-seconds", "0", "--device", "cpu", "--quiet"]


def _fool(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, ORACLE_FOOL, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _reference(tmp_path: Path, generations: int) -> dict:
    evolve(EvolveSettings(model="test-oracle", population=8, seed=4, checkpoint_every=3, checkpoint_seconds=0,
                        device="cpu", generations=generations, out=str(tmp_path / "reference")))
    return outputs(tmp_path / "reference")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])  # SIGINT: test_evolve.py
def test_a_stop_signal_checkpoints_prints_the_resume_command_and_exits_128_plus_signal(tmp_path, sig, code):
    out = tmp_path / "run"
    proc = _fool("evolve", *ARGS, "--generations", "100000", "--out", str(out), env={"ORACLE_SLOW": "0.01"})
    _wait_for(out / "summary.json", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"Continue with: fool evolve --resume {out}" in err.splitlines()[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["finished"] is False
    assert 0 < summary["generation"] < 100000
    log = (out / "log.txt").read_text()
    assert f"stopped: interrupted by {signal.Signals(sig).name}; checkpointed generation {summary['generation']}" in log


def test_a_second_ctrl_c_stops_at_once_and_the_run_still_resumes(tmp_path):
    reference = _reference(tmp_path, 12)
    out = tmp_path / "run"
    proc = _fool("evolve", *ARGS, "--generations", "12", "--out", str(out),
                 env={"ORACLE_SELF_SIGNALS": "5:SIGINT,SIGINT"})  # both during generation 5
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    assert "stopped without finishing the generation" in err and f"fool evolve --resume {out}" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generation"] == 3 and summary["stop_reason"] == "interrupted"  # the last checkpoint
    resumed = _fool("evolve", "--resume", str(out))
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err.decode()
    assert outputs(out) == reference


def test_a_second_ctrl_c_before_the_first_checkpoint_leaves_a_resumable_run(tmp_path):
    reference = _reference(tmp_path, 12)
    out = tmp_path / "run"
    proc = _fool("evolve", *ARGS, "--generations", "12", "--out", str(out),
                 env={"ORACLE_SELF_SIGNALS": "0:SIGINT,SIGINT"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"before the first checkpoint" in err and b"--resume" in err, err
    resumed = _fool("evolve", "--resume", str(out))
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err.decode()
    assert outputs(out) == reference


def test_in_process_second_signal_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where pytest runs as a background job
    run = EvolutionRun.start(EvolveSettings(model="test-oracle", population=8, seed=4, checkpoint_every=3,
                                          checkpoint_seconds=0, device="cpu", generations=12, out=str(out)))
    real, calls = type(run.objective).fitness_tensor, []

    def scorer(self, images):
        calls.append(1)
        if len(calls) == 8:  # generation 7
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        return real(self, images)

    monkeypatch.setattr(type(run.objective), "fitness_tensor", scorer)
    summary = run.run(progress=False)
    assert run.interrupted and summary["generation"] == 6 and summary["stop_reason"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
