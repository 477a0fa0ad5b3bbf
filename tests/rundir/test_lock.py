"""One process at a time per run directory; readers can tell a live run from a finished one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_outputs import outputs

from fooling.cli import main
from fooling.settings.evolve import EvolveSettings
from fooling.errors import FoolingError
from fooling.run import EvolutionRun, evolve
from fooling.rundir.lock import RunLock, is_live, lock_holder

ORACLE_FOOL = str(Path(__file__).parents[1] / "run" / "oracle_fool.py")


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=4, population=8, seed=2, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def test_a_second_holder_gets_one_line_naming_the_first(tmp_path):
    assert lock_holder(tmp_path) is None and not is_live(tmp_path)
    with RunLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid() and is_live(tmp_path)
        with pytest.raises(FoolingError, match=f"is in use by process {os.getpid()}") as err:
            RunLock(tmp_path).acquire()
        assert "\n" not in str(err.value)
    assert lock_holder(tmp_path) is None  # released; the .lock file itself stays
    RunLock(tmp_path).acquire().release()


def test_a_run_holds_its_directory_from_start_to_the_end_of_run(tmp_path):
    out = tmp_path / "run"
    run = EvolutionRun.start(_config(out))
    assert lock_holder(out) == os.getpid()
    with pytest.raises(FoolingError, match="is in use by process"):
        EvolutionRun.resume(out)
    run.run(progress=False, stop_after=2)
    assert not is_live(out)
    resumed = EvolutionRun.resume(out)
    assert is_live(out)
    with pytest.raises(FoolingError, match="is in use by process"):
        EvolutionRun.resume(out)
    resumed.run(progress=False)
    assert not is_live(out)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from fooling.rundir.lock import RunLock; held = RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)"), str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert lock_holder(tmp_path) == holder.pid
        with pytest.raises(FoolingError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.communicate()
    assert lock_holder(tmp_path) is None
    RunLock(tmp_path).acquire().release()


def test_two_resumes_at_once_one_refused_the_result_unchanged(tmp_path):
    evolve(_config(tmp_path / "reference", generations=30))
    out = tmp_path / "run"
    EvolutionRun.start(_config(out, generations=30)).run(progress=False, stop_after=2)
    cmd = [sys.executable, ORACLE_FOOL, "evolve", "--resume", str(out), "--quiet"]
    # the second starts once the first holds the lock, which it keeps ~8 s: longer than a start takes
    first = subprocess.Popen(cmd, env={**os.environ, "ORACLE_SLOW": "0.3"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while lock_holder(out) != first.pid and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs = [first, second]
    results = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        results.append((p.returncode, err.decode()))
    assert sorted(rc for rc, _ in results) == [0, 1], results
    refused = next(err for rc, err in results if rc == 1)
    assert refused.count("\n") == 1 and "is in use by process" in refused, refused
    assert outputs(out) == outputs(tmp_path / "reference")


def test_cli_refuses_a_live_run(tmp_path):
    out = tmp_path / "run"
    run = EvolutionRun.start(_config(out))
    result = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--quiet"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"is in use by process {os.getpid()}" in result.output
    run.close()
    assert CliRunner().invoke(main, ["evolve", "--resume", str(out), "--quiet"]).exit_code == 0
