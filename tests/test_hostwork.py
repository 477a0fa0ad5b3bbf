"""The hot loop's device path, what CUDA runs, taken on the CPU (fooling.hostwork): whole runs are deterministic,
resume to the archive they would have reached, raise confidence, and make the host path's choices where both
paths draw the same numbers. No GPU has run this project's tests; these check the device path's logic here."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest
import torch

from fooling import hostwork
from fooling.run import EvolutionRun, evolve
from fooling.search import MapElites, SnesElites, noise
from fooling.settings.evolve import EvolveSettings
from helpers import assert_same_archive, assert_same_run, csv_rows, take_the_device_path


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=12, population=16, seed=5, device="cpu", checkpoint_every=4,
                checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


def test_only_the_cpu_takes_the_host_path():
    assert hostwork.on_host("cpu") and hostwork.on_host(torch.device("cpu"))
    assert not hostwork.on_host("cuda") and not hostwork.on_host(torch.device("meta"))


SEARCHES = {
    "snes-elites": dict(strategy="snes-elites"),
    "map-elites": dict(strategy="map-elites", crossover_rate=0.5, laggard_bias=0.3),  # dense SBX and mutation
    "ga": dict(strategy="ga", target=2),
    "cppn": dict(encoding="cppn", population=8),
}


@pytest.mark.parametrize("search", list(SEARCHES))
def test_a_device_path_run_is_deterministic_and_resumes_to_the_same_archive(tmp_path, monkeypatch, search):
    take_the_device_path(monkeypatch)
    kw = SEARCHES[search]
    evolve(_config(tmp_path / "straight", **kw))
    evolve(_config(tmp_path / "again", **kw))
    assert_same_archive(tmp_path / "straight", tmp_path / "again")
    EvolutionRun.start(_config(tmp_path / "split", **kw)).run(progress=False, stop_after=6)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert_same_archive(tmp_path / "straight", tmp_path / "split")
    rows = csv_rows(tmp_path / "split" / "metrics.csv")
    assert [int(r["generation"]) for r in rows] == list(range(13))
    assert float(rows[-1]["median_confidence"]) > float(rows[0]["median_confidence"])


def test_the_device_paths_variation_differs_from_the_hosts(tmp_path, monkeypatch):
    """Guards the test above: the map-elites run really took the device path (dense draws give other children)."""
    kw = SEARCHES["map-elites"]
    evolve(_config(tmp_path / "host", **kw))
    take_the_device_path(monkeypatch)
    evolve(_config(tmp_path / "device", **kw))
    with pytest.raises(AssertionError):
        assert_same_archive(tmp_path / "host", tmp_path / "device")


@pytest.mark.parametrize("population", [16, 6])
def test_snes_elites_on_the_device_path_ends_with_the_host_paths_archive(tmp_path, monkeypatch, population):
    """With the same noise (a generation's noise in one draw on both), every other step of a snes-elites run
    (ranks, row gathers and scatters, the archive's books, the checkpoint's row digests) chooses as the host
    path does: the same archive bit for bit, the same checkpoints, and a resume across the two paths works."""
    monkeypatch.setattr(noise, "ONE_DRAW_DEVICES", ("cpu",))
    kw = dict(strategy="snes-elites", population=population)
    evolve(_config(tmp_path / "host", **kw))
    EvolutionRun.start(_config(tmp_path / "split", **kw)).run(progress=False, stop_after=5)
    monkeypatch.setattr(hostwork, "HOST_DEVICES", ())
    evolve(_config(tmp_path / "device", **kw))
    assert_same_archive(tmp_path / "host", tmp_path / "device", prefixes=("archive.", "strategy."))
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert_same_archive(tmp_path / "host", tmp_path / "split", prefixes=("archive.", "strategy."))


def test_a_group_on_the_device_path_equals_lone_runs(tmp_path, monkeypatch):
    """`fool evolve --seeds 0-2` as a GPU runs it (one forward pass for all, the device path): each run directory
    ends as the same seed run alone on the device path."""
    from fooling.run.multi import RunGroup

    take_the_device_path(monkeypatch)
    kw = dict(strategy="map-elites", crossover_rate=0.5, generations=8)
    RunGroup.start(_config(tmp_path / "g", seeds=[0, 1, 2], **kw), one_pass=True).run(progress=False)
    for seed in (0, 1, 2):
        evolve(_config(tmp_path / f"alone{seed}", seed=seed, **kw))
        assert_same_run(tmp_path / "g" / f"s{seed}", tmp_path / f"alone{seed}")


@pytest.fixture
def two_threads():
    """torch on two intra-op threads, as on the 2-core CI machine (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_host_threads_gives_small_host_work_one_thread_and_restores_the_count(two_threads):
    with hostwork.host_threads("cpu", 200 * 784):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(KeyError):
        with hostwork.host_threads("cpu", 1):
            raise KeyError
    assert torch.get_num_threads() == 2
    for device, values in (("cpu", hostwork.SMALL_WORK), ("cpu", 64 * 3 * 256 * 256), ("cuda", 1), ("meta", 1)):
        with hostwork.host_threads(device, values):
            assert torch.get_num_threads() == 2, (device, values)


def test_split_cuts_the_work_in_order_over_threads_in_pieces_of_at_least_min_values(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    pieces = hostwork.split(lambda a, b: (a, b, threading.current_thread().name), 10, 1000, 300)
    assert [p[:2] for p in pieces] == [(0, 3), (3, 6), (6, 10)]
    assert all(name.startswith("fooling-host") for *_, name in pieces)
    assert [p[:2] for p in hostwork.split(lambda a, b: (a, b, 0), 10, 1000, 600)] == [(0, 10)]  # 1000 < 2 x 600
    assert [p[:2] for p in hostwork.split(lambda a, b: (a, b, 0), 10, 1000, 300, threads=2)] == [(0, 5), (5, 10)]
    assert hostwork.split(lambda a, b: b - a, 2, 10**6, 1) == [1, 1]  # never more pieces than items


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_split_in_a_forked_child_makes_its_own_threads(monkeypatch):
    """A child forked after the parent's pool was made (its threads do not exist there) still runs its pieces."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert hostwork.split(lambda a, b: b - a, 4, 4, 1) == [2, 2]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_split_in_child).get(timeout=60) == [2, 2]


def _split_in_child() -> list:
    return hostwork.split(lambda a, b: b - a, 4, 4, 1, threads=2)


@pytest.mark.parametrize("search", ["snes-elites", "map-elites", "cppn"])
def test_a_run_whose_host_work_takes_one_thread_equals_one_on_two(tmp_path, monkeypatch, two_threads, search):
    """The loop's bookkeeping on one thread (what the run does for small images) computes the values it computes
    on two: the same archive, strategy state and metrics. 64 children of 784 values make the element-wise ops big
    enough for torch to split across two threads."""
    kw = {**SEARCHES[search], "population": 64}
    threads = []
    cls = SnesElites if search == "snes-elites" else MapElites
    for name in ("ask", "tell"):  # the threads the strategy's own steps run on, inside the loop
        def spy(self, *args, step=getattr(cls, name)):
            threads.append(torch.get_num_threads())
            return step(self, *args)
        monkeypatch.setattr(cls, name, spy)
    evolve(_config(tmp_path / "one", **kw))
    assert set(threads) == {1}
    monkeypatch.setattr(hostwork, "SMALL_WORK", 0)  # every size is big: the threads stay two
    evolve(_config(tmp_path / "two", **kw))
    assert set(threads) == {1, 2}
    assert_same_run(tmp_path / "one", tmp_path / "two")
    assert_same_archive(tmp_path / "one", tmp_path / "two", prefixes=("archive.", "strategy."))


HOST_READS = ("item", "cpu", "numpy", "tolist", "__bool__", "__int__", "__float__", "__index__")


@pytest.mark.parametrize("strategy", ["snes-elites", "map-elites"])
def test_a_device_path_generation_reads_one_thing_back_to_the_host(tmp_path, monkeypatch, strategy):
    """On the device path (what a GPU runs) a whole generation, hooks included, reads back one tensor: the
    archive's per-class best values (metrics and progress read them). Each further ``.item()``, ``.cpu()``,
    ``.numpy()``, ``.tolist()`` or truth test of a tensor would be a host round trip on a GPU. (Syncs inside torch
    ops, such as the archive's ``nonzero`` of the improved cells, are not seen here.)"""
    take_the_device_path(monkeypatch)
    run = EvolutionRun.start(_config(tmp_path / "run", strategy=strategy, population=32, generations=10**6,
                                     checkpoint_every=10**6))
    run.run(progress=False, stop_after=3)
    run.checkpoint = lambda rows, background=False: None  # checkpoints read the state back, by design; not every generation
    reads = []
    for name in HOST_READS:
        def spy(self, *args, read=getattr(torch.Tensor, name), name=name):
            reads.append(name)
            return read(self, *args)
        monkeypatch.setattr(torch.Tensor, name, spy)
    run.run(progress=False, stop_after=13)
    monkeypatch.undo()
    assert run.strategy.generation == 14
    assert reads == ["numpy"] * 10


SYNC_OPS = {"_local_scalar_dense", "nonzero", "_unique2", "unique_dim", "unique_consecutive", "masked_select"}
SYNCS_A_GENERATION = {"snes-elites": 4, "map-elites": 3, "ga": 3, "cppn": 1}  # today's counts: at most


@pytest.mark.parametrize("search", list(SEARCHES))
def test_a_device_path_generation_waits_for_the_device_only_a_few_times(tmp_path, monkeypatch, search):
    """Ops that must know a device result on the host (an item(), nonzero, unique, a boolean mask) make a GPU's
    queue run dry before the host goes on: a generation on the device path issues at most today's few (the
    archive's insertion: which cells improved, their distinct rows, the free bank rows; snes-elites' restarting
    emitters), whatever the population; one more is a regression. (The reads of the test above are not ops.)"""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Syncs(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func).split(".")[1]
            boolean_index = name in ("index", "index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None)
            Syncs.count += name in SYNC_OPS or boolean_index
            return func(*args, **(kwargs or {}))

    take_the_device_path(monkeypatch)
    for population in (16, 40):
        run = EvolutionRun.start(_config(tmp_path / f"p{population}", **{"population": population,
                                                                          **SEARCHES[search]}))
        run.run(progress=False, stop_after=1)
        run.checkpoint = lambda rows, background=False: None  # the loop's generations alone
        Syncs.count = 0
        with Syncs():
            run.run(progress=False, stop_after=6)
        run.close()
        assert Syncs.count <= 5 * SYNCS_A_GENERATION[search], (population, Syncs.count)
