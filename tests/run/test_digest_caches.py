"""Runs whose checkpoints trust cached row digests (fooling.rowdigests) save exactly what they hold.

The big-array thresholds are lowered so that the archive's elites and the snes-elites means and step sizes of
the 1x8x8 test oracle are stored one row a block, through the digest caches; ``FOOLING_VERIFY_DIGESTS=1``
makes every checkpoint rehash the rows it trusted and raise if a write did not forget one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fooling.rowdigests import VERIFY, RowDigests
from fooling.run import EvolutionRun, evolve
from fooling.rundir import checkpoint
from fooling.settings.evolve import EvolveSettings
from helpers import assert_same_archive
from run_outputs import outputs



@pytest.fixture
def row_blocks(monkeypatch) -> list[dict]:
    """Small thresholds (every big array one row a block), verification on; the counts of every checkpoint."""
    monkeypatch.setattr(checkpoint, "BIG_BYTES", 256)
    monkeypatch.setattr(checkpoint, "BLOCK_BYTES", 64)
    monkeypatch.setenv(VERIFY, "1")
    counts: list[dict] = []
    commit = checkpoint.PreparedCheckpoint.commit

    def counted(prepared):
        counts.append(commit(prepared))
        return counts[-1]

    monkeypatch.setattr(checkpoint.PreparedCheckpoint, "commit", counted)
    return counts


def _config(out: Path, **kw) -> EvolveSettings:
    """Checkpoints in the background, so that rows change while their digests are computed."""
    return EvolveSettings(**{**dict(model="test-oracle", strategy="snes-elites", device="cpu",
                                    checkpoint_background=True), **kw, "out": str(out)})


# (population, es_start, es_focus, checkpoint_every): emitters drawn (4, 6 < 2 per class) or all; grey starts or
# the initial population's elites (restarts, fills); the run's seed and length drawn from the case's own stream
CASES = [(4, 0.0, 0.9999, 1), (6, -1.0, 0.9, 2), (16, 0.5, 0.9, 1)]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_a_resume_from_every_checkpoint_equals_the_uninterrupted_run(tmp_path, row_blocks, case):
    population, start, focus, every = CASES[case]
    rng = np.random.default_rng(case)
    config = dict(seed=int(rng.integers(1000)), population=population, generations=int(rng.integers(10, 14)),
                  checkpoint_every=every, checkpoint_seconds=0, es_start=start, es_focus=focus)
    evolve(_config(tmp_path / "straight", **config))
    straight = outputs(tmp_path / "straight")
    assert row_blocks and sum(c["blocks_cached"] for c in row_blocks) > 0  # the caches were used, not only filled
    assert set(checkpoint.load_checkpoint(tmp_path / "straight" / "checkpoint")[1]["blocks"]) == {
        "archive.elite.genes", "strategy.mean", "strategy.sigma"}
    for stop in range(1, config["generations"] - 1):  # every generation (a checkpoint each when stopped there)
        out = tmp_path / f"split{stop}"
        EvolutionRun.start(_config(out, **config)).run(progress=False, stop_after=stop)
        EvolutionRun.resume(out).run(progress=False)
        assert_same_archive(tmp_path / "straight", out, ("archive.", "strategy."))
        assert outputs(out) == straight


def test_a_run_checkpointed_in_format_3_resumes_to_the_uninterrupted_run(tmp_path, row_blocks, monkeypatch):
    """A fooling from before BLAKE3 named blocks by their SHA-256 (format 3): such a run resumes bit for bit, and
    its next checkpoint (the format now) names every block anew (its caches start empty; no SHA-256 digest is
    trusted)."""
    config = dict(seed=7, population=6, generations=9, checkpoint_every=2, checkpoint_seconds=0)
    evolve(_config(tmp_path / "straight", **config))
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "FORMAT", 3)
        patch.setattr(checkpoint, "block_digest", lambda view: hashlib.sha256(view).hexdigest())
        EvolutionRun.start(_config(tmp_path / "old", **config)).run(progress=False, stop_after=4)
    state = tmp_path / "old" / "checkpoint" / "state.json"
    assert json.loads(state.read_text())["format"] == 3
    row_blocks.clear()
    EvolutionRun.resume(tmp_path / "old").run(progress=False)
    assert json.loads(state.read_text())["format"] == checkpoint.FORMAT and row_blocks[0]["blocks_cached"] == 0
    assert_same_archive(tmp_path / "straight", tmp_path / "old", ("archive.", "strategy."))
    assert outputs(tmp_path / "old") == outputs(tmp_path / "straight")


def test_a_run_checkpointed_with_whole_rows_resumes_and_then_stores_them_coarser(tmp_path, row_blocks, monkeypatch):
    """A fooling from before coarse rows wrote format 4, every row whole: such a run resumes bit for bit, and its next
    checkpoint stores the snes-elites rows (2 x 2 squares on the 8 x 8 oracle) at a quarter of their bytes."""
    config = dict(seed=3, population=6, generations=9, checkpoint_every=2, checkpoint_seconds=0)
    evolve(_config(tmp_path / "straight", **config))
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "FORMAT", 4)
        patch.setattr(checkpoint, "coarsen", lambda row, image: (row, 1))
        EvolutionRun.start(_config(tmp_path / "old", **config)).run(progress=False, stop_after=4)
    state = tmp_path / "old" / "checkpoint" / "state.json"
    assert json.loads(state.read_text())["format"] == 4
    EvolutionRun.resume(tmp_path / "old").run(progress=False)
    assert json.loads(state.read_text())["format"] == checkpoint.FORMAT
    assert_same_archive(tmp_path / "straight", tmp_path / "old", ("archive.", "strategy."))
    assert outputs(tmp_path / "old") == outputs(tmp_path / "straight")
    for folder in ("straight", "old"):
        blocks = checkpoint.load_checkpoint(tmp_path / folder / "checkpoint")[1]["blocks"]
        for key in ("archive.elite.genes", "strategy.mean"):
            assert blocks[key]["image"] == [1, 8, 8] and set(blocks[key]["factors"]) >= {2}, (folder, key)
        sizes = {(tmp_path / folder / "checkpoint" / "blocks" / f"{h}.bin").stat().st_size
                 for h in blocks["archive.elite.genes"]["blocks"]}
        assert 64 in sizes  # 16 float32 values: an 8 x 8 image in 2 x 2 squares


def test_a_write_that_does_not_forget_its_rows_is_caught(tmp_path, row_blocks, monkeypatch):
    """Without verification this run would checkpoint old means (blocks that load and verify fine)."""
    forget = RowDigests.forget

    def forget_all_but_means(self, rows=None):
        if rows is None:  # the caches forget everything when they are (re)filled whole
            forget(self, rows)

    monkeypatch.setattr(RowDigests, "forget", forget_all_but_means)
    with pytest.raises(RuntimeError, match="changed since its digest was cached"):
        evolve(_config(tmp_path / "run", seed=1, population=8, generations=6, checkpoint_every=1, checkpoint_seconds=0))


@pytest.mark.cuda
def test_on_a_gpu_the_caches_checkpoint_what_the_cpu_run_checkpoints(tmp_path, row_blocks):
    """Device-side forgetting (index_fill_ on CUDA flags) and row fetches: a CUDA run resumed, with verification."""
    config = dict(seed=5, population=6, generations=10, checkpoint_every=2, checkpoint_seconds=0,
                  device="cuda")
    evolve(_config(tmp_path / "straight", **config))
    EvolutionRun.start(_config(tmp_path / "split", **config)).run(progress=False, stop_after=5)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert_same_archive(tmp_path / "straight", tmp_path / "split", ("archive.", "strategy."))
    assert sum(c["blocks_cached"] for c in row_blocks) > 0
