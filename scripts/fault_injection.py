"""Fault injection for `fool evolve` run directories: every way a run can be cut short must resume to the same files.

Four campaigns, each against the files of a run that was never interrupted (summary.json without its
timings, metrics.csv without elapsed seconds, elites/ byte for byte, the checkpoint's arrays):

1. kills at every file-system write: a subprocess with FOOLING_FAULT_AT_WRITE=N exits (os._exit, like a
   SIGKILL) just before its N-th write / rename / removal, for every N; then `--resume` (or a fresh
   start, if it died before config.json) must give the reference files;
2. bit flips: every single-bit flip of every checkpoint file (state.json, the arrays .npz, blocks) must either
   load identically or be refused with a one-line error, never load silently different;
3. random SIGKILLs of a real `python -m fooling evolve` process (mnist-digitcnn), then resume;
4. concurrency: two `--resume` of one run at once, and two starts into one --out at once: exactly one
   proceeds, the other gets a one-line "in use" / "already holds" error, and the result is the reference.

Prints what it did and ends with one JSON line of counts. Not part of the test suite (a few minutes):

    python scripts/fault_injection.py [--kills 20] [--workers 2] [--seed 0] [--checkpoint-background]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from run_outputs import outputs  # noqa: E402

from fooling.errors import FoolingError  # noqa: E402
from fooling.rundir.atomic import FAULT_ENV, FAULT_EXIT  # noqa: E402
from fooling.rundir.checkpoint import load_checkpoint  # noqa: E402

ORACLE = [sys.executable, str(ROOT / "tests" / "run" / "oracle_fool.py")]  # `fool` with test-oracle registered
REAL = [sys.executable, "-m", "fooling"]
ORACLE_ARGS = ["--model", "test-oracle", "--generations", "3", "--population", "8", "--seed", "7",
               "--checkpoint-every", "2", "--checkpoint-seconds", "0", "--device", "cpu", "--quiet"]
REAL_ARGS = ["--model", "mnist-digitcnn", "--generations", "16", "--population", "12", "--seed", "3",
             "--checkpoint-every", "2", "--checkpoint-seconds", "0", "--device", "cpu", "--quiet"]


def run(cmd: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def one_line_error(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def finish(cmd: list[str], args: list[str], out: Path) -> subprocess.CompletedProcess:
    """Resume ``out`` (or start it again, if it died before config.json)."""
    if (out / "config.json").is_file():
        return run([*cmd, "evolve", "--resume", str(out)])
    return run([*cmd, "evolve", *args, "--out", str(out)])


# --- 1. a kill before every file-system step --------------------------------------------------------------
def kills_at_every_write(work: Path, workers: int) -> dict:
    reference = work / "w-reference"
    assert run([*ORACLE, "evolve", *ORACLE_ARGS, "--out", str(reference)]).returncode == 0
    expected = outputs(reference)

    def attempt(step: int) -> str:
        out = work / f"w-{step}"
        first = run([*ORACLE, "evolve", *ORACLE_ARGS, "--out", str(out)], env={FAULT_ENV: str(step)})
        if first.returncode == 0:
            outcome = "no-crash"
        elif first.returncode != FAULT_EXIT:
            return f"unexpected exit {first.returncode}: {first.stderr.strip()[-300:]}"
        else:
            outcome = "crash"
            second = finish(ORACLE, ORACLE_ARGS, out)
            if second.returncode != 0:
                return f"resume failed: {second.stderr.strip()[-300:]}"
        same = outputs(out) == expected
        shutil.rmtree(out)
        return outcome if same else "different"

    results, step = {}, 1
    with ThreadPoolExecutor(workers) as pool:
        while "no-crash" not in results.values():
            batch = list(range(step, step + workers))
            results.update(zip(batch, pool.map(attempt, batch)))
            step += len(batch)
    last = min(s for s, r in results.items() if r == "no-crash")
    crashes = {s: r for s, r in results.items() if s < last}
    bad = {s: r for s, r in crashes.items() if r != "crash"}
    for s, r in bad.items():
        print(f"  kill before step {s}: {r}")
    print(f"kills at every write: {len(crashes)} crash points, {len(crashes) - len(bad)} resumed to the "
          f"reference files, {len(bad)} did not")
    return {"write_kill_points": len(crashes), "write_kills_resumed_identical": len(crashes) - len(bad),
            "write_kills_failed": len(bad)}


# --- 2. every single-bit flip of every checkpoint file ------------------------------------------------------
def bit_flips(work: Path) -> dict:
    out = work / "flips"
    assert run([*ORACLE, "evolve", *ORACLE_ARGS, "--out", str(out)]).returncode == 0
    folder = out / "checkpoint"
    arrays, values = load_checkpoint(folder)
    counts = {"bit_flips": 0, "bit_flips_identical": 0, "bit_flips_refused": 0, "bit_flips_silently_different": 0}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):  # state.json, the npz, blocks/ if any
        good = path.read_bytes()
        for bit in range(len(good) * 8):
            flipped = bytearray(good)
            flipped[bit // 8] ^= 1 << (bit % 8)
            path.write_bytes(bytes(flipped))
            counts["bit_flips"] += 1
            try:
                got_arrays, got_values = load_checkpoint(folder)
            except FoolingError as err:
                counts["bit_flips_refused" if "\n" not in str(err) else "bit_flips_silently_different"] += 1
                continue
            same = got_values == values and got_arrays.keys() == arrays.keys() and all(
                got_arrays[k].dtype == arrays[k].dtype and np.array_equal(got_arrays[k], arrays[k], equal_nan=True)
                for k in arrays)
            counts["bit_flips_identical" if same else "bit_flips_silently_different"] += 1
            if not same:
                print(f"  {path.name} bit {bit}: loaded different values")
        path.write_bytes(good)
        print(f"bit flips of {path.name}: {len(good) * 8}")
    print(f"bit flips: {counts['bit_flips']} flips, {counts['bit_flips_identical']} loaded identically, "
          f"{counts['bit_flips_refused']} refused in one line, {counts['bit_flips_silently_different']} silently different")
    return counts


# --- 3. random SIGKILLs of a real run ------------------------------------------------------------------------
def random_kills(work: Path, kills: int, workers: int, seed: int) -> dict:
    reference = work / "k-reference"
    started = time.perf_counter()
    result = run([*REAL, "evolve", *REAL_ARGS, "--out", str(reference)])
    assert result.returncode == 0, result.stderr
    duration = time.perf_counter() - started
    expected = outputs(reference)
    delays = random.Random(seed).sample(range(1000), kills)

    def attempt(i: int) -> str:
        out = work / f"k-{i}"
        proc = subprocess.Popen([*REAL, "evolve", *REAL_ARGS, "--out", str(out)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delays[i] / 1000 * duration)
        proc.kill()
        proc.wait()
        state = "mid-run" if (out / "config.json").is_file() else "before config.json"
        second = finish(REAL, REAL_ARGS, out)
        if second.returncode != 0:
            return f"resume failed: {second.stderr.strip()[-300:]}"
        same = outputs(out) == expected
        shutil.rmtree(out)
        return state if same else "different"

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(attempt, range(kills)))
    bad = [r for r in results if r not in ("before config.json", "mid-run")]
    for r in bad:
        print(f"  random kill: {r}")
    early = results.count("before config.json")
    print(f"random SIGKILLs of `python -m fooling evolve` ({duration:.1f} s a run): {kills} kills ({early} before "
          f"config.json existed: started again), {kills - len(bad)} resumed to the reference files, {len(bad)} did not")
    return {"sigkills": kills, "sigkills_before_config": early, "sigkills_resumed_identical": kills - len(bad),
            "sigkills_failed": len(bad)}


# --- 4. two processes at once ---------------------------------------------------------------------------------
def concurrency(work: Path, rounds: int = 3) -> dict:
    args = [a if a != "3" else "40" for a in ORACLE_ARGS]  # 40 generations: the two overlap
    reference = work / "c-reference"
    assert run([*ORACLE, "evolve", *args, "--out", str(reference)]).returncode == 0
    expected = outputs(reference)
    tally = {"refused": 0, "serialized": 0, "failed": 0}
    for r in range(rounds):
        out = work / f"c-resume-{r}"
        assert run([*ORACLE, "evolve", *args, "--out", str(out)], env={FAULT_ENV: "30"}).returncode == FAULT_EXIT
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda _: run([*ORACLE, "evolve", "--resume", str(out)], env={"ORACLE_SLOW": "0.02"}),
                                 range(2)))
        # "in use by process N", or "by another process" when the holder has locked but not yet written its pid
        verdict = judge(both, out, expected, "is in use by")
        tally[verdict] += 1
        if verdict == "failed":
            print(f"  two resumes: exits {[b.returncode for b in both]}: {[b.stderr.strip()[-200:] for b in both]}")
        out = work / f"c-start-{r}"
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda _: run([*ORACLE, "evolve", *args, "--out", str(out)], env={"ORACLE_SLOW": "0.02"}),
                                 range(2)))
        verdict = judge(both, out, expected, "")
        tally[verdict] += 1
        if verdict == "failed":
            print(f"  two starts: exits {[b.returncode for b in both]}: {[b.stderr.strip()[-200:] for b in both]}")
    print(f"concurrent processes: {sum(tally.values())} pairs: {tally['refused']} with one refused in one line, "
          f"{tally['serialized']} ran one after the other, {tally['failed']} failed (wrong result or error)")
    return {"concurrent_pairs": sum(tally.values()), "concurrent_one_refused": tally["refused"],
            "concurrent_serialized": tally["serialized"], "concurrent_failed": tally["failed"]}


def judge(both: list[subprocess.CompletedProcess], out: Path, expected: dict, words: str) -> str:
    """refused: one went ahead, the other got one error line; serialized: the second came after the first."""
    if outputs(out) != expected:
        return "failed"
    codes = sorted(b.returncode for b in both)
    if codes == [0, 0] and any("--resume" in " ".join(b.args) for b in both):
        return "serialized"
    refused = [b for b in both if b.returncode != 0]
    if codes == [0, 1] and one_line_error(refused[0]) and words in refused[0].stderr:
        return "refused"
    return "failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="random SIGKILLs of a real run [20]")
    parser.add_argument("--workers", type=int, default=2, help="subprocesses at a time [2]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-background", action="store_true",
                        help="every run with fool evolve --checkpoint-background (checkpoints written by a thread)")
    opts = parser.parse_args()
    if opts.checkpoint_background:
        for args in (ORACLE_ARGS, REAL_ARGS):
            args.append("--checkpoint-background")
    started = time.perf_counter()
    counts: dict = {}
    with tempfile.TemporaryDirectory(prefix="fault-injection-") as tmp:
        work = Path(tmp)
        counts.update(kills_at_every_write(work, opts.workers))
        counts.update(bit_flips(work))
        counts.update(random_kills(work, opts.kills, opts.workers, opts.seed))
        counts.update(concurrency(work))
    counts["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
