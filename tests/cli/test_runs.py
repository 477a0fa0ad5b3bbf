"""fool runs: the runs under a folder with their state (finished, interrupted, running, error)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.run import EvolutionRun, evolve
from fooling.rundir.lock import RunLock
from fooling.settings.evolve import EvolveSettings


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=4, population=8, seed=2, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def test_states_table_and_json(tmp_path):
    root = tmp_path / "runs"
    evolve(_config(root / "done"))
    EvolutionRun.start(_config(root / "paused", seed=3)).run(progress=False, stop_after=1)
    evolve(_config(root / "nested" / "live", seed=4))
    errored = root / "broken"
    evolve(_config(errored, seed=5))
    summary = json.loads((errored / "summary.json").read_text())
    summary.update(stop_reason="error", finished=False)
    (errored / "summary.json").write_text(json.dumps(summary))
    with RunLock(root / "nested" / "live"):  # a process working on it
        result = CliRunner().invoke(main, ["runs", str(root), "--json"])
        table = CliRunner().invoke(main, ["runs", str(root)])
    assert result.exit_code == 0, result.output
    records = {r["run"]: r for r in json.loads(result.output)}
    assert set(records) == {"done", "paused", "nested/live", "broken"}
    assert {k: r["state"] for k, r in records.items()} == {
        "done": "finished", "paused": "interrupted", "nested/live": "running", "broken": "error"}
    done = records["done"]
    assert (done["model"], done["encoding"], done["strategy"], done["seed"]) == ("test-oracle", "direct",
                                                                                 "snes-elites", 2)
    assert (done["generation"], done["budget"]) == (4, 4) and done["evaluations"] > 0
    top = json.loads((root / "done" / "summary.json").read_text())["classes"]
    assert done["classes_top"] == sum(c["confidence"] >= 0.9999 for c in top) and done["classes"] == len(top)
    assert records["paused"]["generation"] == 1 and records["nested/live"]["pid"] is not None
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["RUN", "MODEL", "ENCODING"] and len(lines) == 5
    assert any("running" in line and "nested/live" in line for line in lines)
    after = json.loads(CliRunner().invoke(main, ["runs", str(root), "--json"]).output)
    assert {r["run"]: r["state"] for r in after}["nested/live"] == "finished"  # the lock released


def test_a_killed_run_without_summary_is_interrupted_and_empty_folders_say_so(tmp_path):
    run = tmp_path / "killed"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "test-oracle", "encoding": "direct", "generations": 9}))
    result = CliRunner().invoke(main, ["runs", str(tmp_path), "--json"])
    [record] = json.loads(result.output)
    assert record["state"] == "interrupted" and record["budget"] == 9 and record["generation"] is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no runs" in CliRunner().invoke(main, ["runs", str(empty)]).output
    bad = CliRunner().invoke(main, ["runs", str(tmp_path / "nope")])
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [f"Error: {tmp_path / 'nope'} is not a folder"]
    blank = CliRunner().invoke(main, ["runs", " "])  # it listed the working directory
    assert blank.exit_code == 1 and blank.output.strip().splitlines() == ["Error: fool runs needs a folder, got an "
                                                                          "empty path"]


def test_odd_values_in_config_and_summary_are_listed_not_a_traceback(tmp_path):
    run = tmp_path / "edited"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": 5, "encoding": "direct", "generations": 9}))
    (run / "summary.json").write_text(json.dumps({"classes": 3, "generation": 2, "stop_reason": "budget"}))
    for args in ([], ["--json"]):
        result = CliRunner().invoke(main, ["runs", str(tmp_path), *args])
        assert result.exit_code == 0 and result.exception is None, result.output
    [record] = json.loads(result.output)
    assert record["model"] == "5" and record["classes"] == 0 and record["state"] == "finished"


def test_json_nested_past_the_recursion_limit_is_listed_not_a_traceback(tmp_path):
    run = tmp_path / "deep"
    run.mkdir()
    for name in ("config.json", "summary.json"):
        (run / name).write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(main, ["runs", str(tmp_path), "--json"])
    assert result.exit_code == 0 and result.exception is None, result.output
    [record] = json.loads(result.output)
    assert record["run"] == "deep" and record["state"] == "unreadable"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_called_summary_json_is_listed_not_waited_on(tmp_path):
    run = tmp_path / "pipe"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "m", "generations": 9}))
    os.mkfifo(run / "summary.json")  # reading it waited for a writer forever

    def unblock() -> None:  # a regression fails the test instead of hanging the suite
        time.sleep(10)
        with open(run / "summary.json", "w"):
            pass

    threading.Thread(target=unblock, daemon=True).start()
    start = time.monotonic()
    result = CliRunner().invoke(main, ["runs", str(tmp_path), "--json"])
    assert time.monotonic() - start < 5 and result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["state"] == "interrupted"
