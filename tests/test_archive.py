"""The MAP-Elites archive: every candidate offered to every cell, shared elites, state round trip, both stores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fooling.archive import Archive, ListStore, TensorStore
from fooling.encodings import DirectEncoding


def _archive(cells: int = 3, device: str = "cpu") -> Archive:
    return Archive(DirectEncoding((1, 2, 2), device=device), list(range(cells)), [f"c{i}" for i in range(cells)])


def test_every_candidate_is_offered_to_every_cell():
    archive = _archive()
    assert isinstance(archive.store, TensorStore) and archive.store.genes.shape == (3, 4)
    genomes = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 12
    conf = torch.tensor([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3], [0.5, 0.1, 0.2]], dtype=torch.float64)
    improved = archive.add(genomes, conf, generation=0)
    assert sorted(improved) == [0, 1, 2]
    np.testing.assert_allclose(archive.fitness, [0.9, 0.8, 0.3])
    assert torch.equal(archive.fitness_tensor, torch.tensor([0.9, 0.8, 0.3], dtype=torch.float64))
    # candidate 0 is the elite of two classes at once: the cells share a key (stored once in a checkpoint)
    keys = archive.elite_keys()
    assert keys[0] == keys[1] != keys[2]
    assert torch.equal(archive.elites([0, 1, 2]), genomes[[0, 0, 1]])
    assert archive.state_dict()["elite.genes"].shape == (2, 4)
    rows = archive.elite_rows(np.array([2, 0, 1]))  # read in place: the bank and which of its rows
    assert rows.source.data_ptr() == archive.store.genes.data_ptr()  # no copy
    assert rows.index[1] == rows.index[2] != rows.index[0]
    assert torch.equal(rows.source[torch.from_numpy(rows.index)], genomes[[1, 0, 0]])


def test_the_bank_copies_each_winning_child_once_and_matches_a_per_cell_copy():
    """Random generations over 12 cells: every cell's elite equals a naive per-cell record, a child that wins
    many cells takes one bank row, and rows freed by replaced elites are reused (12 rows suffice)."""
    cells, rng = 12, np.random.default_rng(0)
    archive = Archive(DirectEncoding((1, 2, 3)), list(range(cells)), [f"c{i}" for i in range(cells)])
    naive_fit, naive = np.full(cells, -np.inf), [None] * cells
    copied = []
    put = archive.store.genes.index_copy_
    archive.store.genes.index_copy_ = lambda dim, index, source: (copied.append(len(index)), put(dim, index, source))
    for generation in range(40):
        n = int(rng.integers(1, 9))
        genomes = torch.from_numpy(rng.random((n, 6), dtype=np.float32))
        conf = rng.random((n, cells)) * (1 + generation / 10)
        conf[:, rng.random(cells) < 0.5] *= 3  # some children win many cells at once
        copied.clear()
        archive.add(genomes, torch.from_numpy(conf), generation)
        best, improved = conf.argmax(0), np.flatnonzero(conf.max(0) > naive_fit)
        assert sum(copied) == len(np.unique(best[improved]))  # one row per distinct winner, not per cell
        for c in improved:
            naive_fit[c], naive[c] = conf[best[c], c], genomes[best[c]].clone()
        filled = np.flatnonzero(np.isfinite(naive_fit))
        assert torch.equal(archive.elites(filled), torch.stack([naive[c] for c in filled]))
        keys = archive.elite_keys()
        slots = archive.store.slot.numpy()
        assert all((keys[a] == keys[b]) == (slots[a] == slots[b]) for a in filled for b in filled)


def test_the_cpu_books_in_numpy_match_the_device_path():
    """On the CPU, add() and the bank's put() choose in numpy; the torch path (what CUDA runs) chooses the same
    cells, rows, bank slots, keys, parents and improvement flags, generation after generation."""
    cells, rng = 9, np.random.default_rng(1)
    host, device = (Archive(DirectEncoding((1, 2, 3)), list(range(cells)), [f"c{i}" for i in range(cells)])
                    for _ in range(2))
    device._offer_host = device._offer_device
    store = device.store
    store._put_host = lambda c, batch, r, k: store._put_device(torch.as_tensor(c), batch, torch.as_tensor(r),
                                                               torch.as_tensor(k))
    for generation in range(30):
        n = int(rng.integers(1, 7))
        genomes = torch.from_numpy(rng.random((n, 6), dtype=np.float32))
        conf = np.round(rng.random((n, cells)) * (1 + generation / 10), 1)  # ties between children
        parents = torch.from_numpy(rng.integers(-1, cells, size=n))
        improved = [a.add(genomes, torch.from_numpy(conf), generation, parents=parents) for a in (host, device)]
        assert np.array_equal(*improved)
        assert (host.better is None) == (device.better is None)
        if host.better is not None:
            assert torch.equal(host.better, device.better)
        for name in ("fitness_tensor", "parent_tensor"):
            assert torch.equal(getattr(host, name), getattr(device, name))
        for name in ("slot", "keys"):
            assert torch.equal(getattr(host.store, name), getattr(device.store, name))
        filled = np.flatnonzero(np.isfinite(host.fitness))
        assert torch.equal(host.elites(filled), device.elites(filled))


def test_numpy_batches_are_accepted():
    archive = _archive()
    archive.add(np.full((2, 4), 0.5, np.float32), np.array([[0.9, 0.1, 0.2], [0.1, 0.7, 0.3]]), generation=0)
    np.testing.assert_allclose(archive.fitness, [0.9, 0.7, 0.3])
    assert torch.equal(archive.elites(np.array([1])), torch.full((1, 4), 0.5))


def test_only_strict_improvements_replace_and_milestones_are_recorded():
    archive = _archive(1)
    archive.add(torch.zeros((1, 4)), torch.tensor([[0.995]]), generation=0, parents=torch.tensor([-1]))
    archive.add(torch.ones((1, 4)), torch.tensor([[0.995]]), generation=1, parents=torch.tensor([0]))
    assert archive.generation_found[0] == 0 and archive.elites([0])[0, 0] == 0.0
    archive.add(torch.ones((1, 4)), torch.tensor([[0.99995]]), generation=5, parents=torch.tensor([0]))
    assert archive.generation_found[0] == 5 and archive.parent[0] == 0
    np.testing.assert_array_equal(archive.passed[0], [0, 5, 5])


def test_ties_go_to_the_first_candidate_and_nan_free_minus_inf_never_enters():
    archive = _archive(2)
    genomes = torch.stack([torch.full((4,), 0.1), torch.full((4,), 0.2)])
    archive.add(genomes, torch.tensor([[0.5, -np.inf], [0.5, -np.inf]], dtype=torch.float64), generation=0)
    assert archive.elites([0])[0, 0] == pytest.approx(0.1)
    assert list(archive.occupied) == [0] and archive.elite_keys()[1] == -1


def _fill(archive: Archive, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for g in range(4):
        archive.add(torch.from_numpy(rng.random((5, 4), dtype=np.float32)), torch.from_numpy(rng.random((5, 3))),
                    generation=g, scores=torch.from_numpy(rng.random((5, 3, 2))))


def test_state_dict_round_trip_keeps_sharing():
    archive = _archive()
    _fill(archive)
    state = archive.state_dict()
    fresh = _archive()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.fitness, archive.fitness)
    np.testing.assert_array_equal(fresh.passed, archive.passed)
    np.testing.assert_array_equal(fresh.scores, archive.scores)
    assert torch.equal(fresh.elites([0, 1, 2]), archive.elites([0, 1, 2]))
    keys, fresh_keys = archive.elite_keys(), fresh.elite_keys()
    assert all((keys[i] == keys[j]) == (fresh_keys[i] == fresh_keys[j]) for i in range(3) for j in range(3))
    assert state["elite.genes"].shape[0] == len(set(keys.tolist()))
    again = fresh.state_dict()
    assert state.keys() == again.keys() and all(np.array_equal(state[k], again[k]) for k in state)
    # keys stay unique after a load: a new elite never looks shared with an old one
    fresh.add(torch.full((1, 4), 0.5), torch.tensor([[2.0, -np.inf, -np.inf]], dtype=torch.float64), generation=9)
    assert fresh.elite_keys()[0] not in fresh.elite_keys()[1:]


def test_list_store_for_host_genomes():
    class Objects(DirectEncoding):  # host genomes (lists), as CPPN networks are
        rng_kind = "numpy"

        def pick(self, genomes, i):
            return list(np.asarray(genomes[i]).tolist())

        def stack(self, genomes):
            return [list(g) for g in genomes]

        def size(self, genomes):
            return len(genomes)

        def to_arrays(self, genomes):
            return {"genes": np.asarray(genomes, dtype=np.float32).reshape(len(genomes), 4)}

        def from_arrays(self, arrays):
            return [list(row) for row in arrays["genes"].tolist()]

    archive = Archive(Objects((1, 2, 2)), [0, 1, 2], ["a", "b", "c"])
    assert isinstance(archive.store, ListStore)
    genomes = [[0.0] * 4, [1.0] * 4]
    archive.add(genomes, torch.tensor([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3]], dtype=torch.float64), generation=0)
    assert archive.genomes[0] is archive.genomes[1] and archive.genomes[2] == [1.0] * 4
    with pytest.raises(TypeError, match="not rows of a bank"):
        archive.elite_rows(np.array([0]))
    fresh = Archive(Objects((1, 2, 2)), [0, 1, 2], ["a", "b", "c"])
    fresh.load_state_dict(archive.state_dict())
    assert fresh.genomes[0] is fresh.genomes[1] and fresh.genomes == archive.genomes


@pytest.mark.cuda
def test_the_archive_lives_on_the_gpu():
    archive = _archive(device="cuda")
    genomes = torch.rand(5, 4, device="cuda")
    archive.add(genomes, torch.rand(5, 3, device="cuda", dtype=torch.float64), generation=0)
    assert archive.store.genes.device.type == "cuda" and archive.fitness_tensor.device.type == "cuda"
    assert archive.elites([0, 1]).device.type == "cuda"
    fresh = _archive(device="cuda")
    fresh.load_state_dict(archive.state_dict())
    assert torch.equal(fresh.elites([0, 1, 2]), archive.elites([0, 1, 2]))
