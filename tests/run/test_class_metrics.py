"""RUN_DIR/classes.csv: each class's confidence whenever it rose; a crash at any write resumes to the same bytes."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from fooling.rundir import atomic
from fooling.run import EvolutionRun, evolve
from fooling.settings.evolve import EvolveSettings


class Crash(BaseException):
    """A SIGKILL: nothing after it runs."""


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=5, population=8, seed=3, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def _rows(run: Path) -> list[dict]:
    with open(run / "classes.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_rows_are_the_improvements_and_end_at_the_summary(tmp_path):
    summary = evolve(_config(tmp_path / "run"))
    rows = _rows(tmp_path / "run")
    assert rows and list(rows[0]) == ["generation", "index", "label", "confidence"]
    generations = [int(r["generation"]) for r in rows]
    assert generations == sorted(generations) and generations[0] == 0 and generations[-1] <= 5
    last: dict[int, dict] = {}
    for r in rows:
        k = int(r["index"])
        if k in last:  # a class's confidence only rises
            assert float(r["confidence"]) > float(last[k]["confidence"])
        last[k] = r
    for c in summary["classes"]:
        if c["confidence"] is not None:
            assert float(last[c["index"]]["confidence"]) == c["confidence"]
            assert int(last[c["index"]]["generation"]) == c["generation_found"]
            assert last[c["index"]]["label"] == c["label"]


def test_a_paused_and_resumed_run_writes_the_same_file(tmp_path):
    evolve(_config(tmp_path / "reference"))
    out = tmp_path / "paused"
    EvolutionRun.start(_config(out)).run(progress=False, stop_after=1)  # generation 1: not a checkpoint
    with open(out / "classes.csv", "a") as f:
        f.write("9,0,0,0.5")  # a line a crash cut short
    EvolutionRun.resume(out).run(progress=False)
    assert (out / "classes.csv").read_bytes() == (tmp_path / "reference" / "classes.csv").read_bytes()


def test_a_crash_at_every_write_resumes_to_the_same_file(tmp_path, monkeypatch):
    evolve(_config(tmp_path / "reference"))
    reference = (tmp_path / "reference" / "classes.csv").read_bytes()
    steps: list[str] = []
    monkeypatch.setattr(atomic, "fault_point", steps.append)
    evolve(_config(tmp_path / "count"))
    monkeypatch.undo()
    assert any("classes.csv" in s for s in steps)
    for step in range(1, len(steps) + 1):
        out = tmp_path / f"crash{step}"
        seen: list[str] = []

        def point(what: str) -> None:
            seen.append(what)
            if len(seen) >= step:
                raise Crash(what)

        monkeypatch.setattr(atomic, "fault_point", point)
        try:
            evolve(_config(out))
        except Crash:
            pass
        monkeypatch.undo()
        if (out / "config.json").is_file():
            EvolutionRun.resume(out).run(progress=False)
        else:
            shutil.rmtree(out)
            evolve(_config(out))
        assert (out / "classes.csv").read_bytes() == reference, f"crash before step {step}: {seen[-1]}"
        shutil.rmtree(out)


def test_a_generations_lines_are_what_a_csv_writer_makes_of_its_rows(tmp_path):
    """generation_text (the hook's fast path) writes the bytes csv.writer writes for the same rows, labels that CSV
    must quote and float32 confidences included."""
    from types import SimpleNamespace

    import numpy as np

    from fooling.run.class_metrics import _text, class_heads, generation_text

    labels = np.array(["plain", "a, comma", 'a "quote"', "new\nline", ""], dtype=object)
    for dtype in (np.float64, np.float32):
        fitness = np.array([0.25, 1 / 3, -np.inf, 0.999912345678, 1e-7], dtype=dtype)
        archive = SimpleNamespace(classes=np.array([3, 10, 11, 500, 7]), labels=labels, fitness=fitness,
                                  generation_found=np.array([4, 4, 4, 2, 4]))
        run = SimpleNamespace(archive=archive)
        rows = [(4, int(archive.classes[c]), str(labels[c]), float(fitness[c])) for c in (0, 1, 4)]
        assert generation_text(run, 4, class_heads(run)) == _text(rows)
        assert generation_text(run, 3, class_heads(run)) == ""
