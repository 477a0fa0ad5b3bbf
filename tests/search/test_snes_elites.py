"""snes-elites (a SNES emitter per class inside MAP-Elites): it climbs the oracle, is deterministic, resumes
exactly, and round-trips its state; presets choose it (default) or the paper's MAP-Elites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fooling.archive import Archive
from fooling.encodings import DirectEncoding
from fooling.errors import FoolingError
from fooling.run import EvolutionRun, evolve
from fooling.search import SnesElites
from fooling.search.blocks import add_upsampled_, one_pass
from fooling.search.snes_elites import rank_utilities, snes_utilities
from fooling.settings.evolve import EvolveSettings
from helpers import checkpoint_arrays

CELLS = [0, 1, 2, 3]


def _strategy(oracle, seed: int = 0, **kw) -> SnesElites:
    archive = Archive(DirectEncoding((1, 8, 8)), CELLS, oracle.labels)
    return SnesElites(archive, np.random.default_rng(seed), population=kw.pop("population", 40),
                      initial_population=kw.pop("initial_population", 40),
                      generator=torch.Generator().manual_seed(seed), **kw)


def _step(strategy: SnesElites, oracle, generations: int) -> None:
    for _ in range(generations):
        genomes = strategy.ask()
        probs = oracle.probs(strategy.encoding.decode(genomes, torch.device("cpu")))
        strategy.tell(genomes, probs[:, CELLS].double())


@pytest.mark.parametrize("start", [0.0, 0.5, -1.0])
def test_it_raises_every_class_on_the_oracle(oracle, start):
    strategy = _strategy(oracle, start=start)
    _step(strategy, oracle, 1)
    first = strategy.archive.fitness.copy()
    _step(strategy, oracle, 60)
    assert np.all(strategy.archive.fitness > first)
    assert np.all(strategy.archive.fitness > 0.99), strategy.archive.fitness  # the oracle tops out at 0.9998


def test_children_are_split_among_the_unfinished_classes_only(oracle):
    strategy = _strategy(oracle, population=40)
    _step(strategy, oracle, 1)
    strategy.archive.fitness[[0, 2]] = 0.99995  # two classes done (focus 0.9999)
    strategy.ask()
    assert sorted(set(strategy._owner.tolist())) == [1, 3]
    assert len(strategy._owner) == 40  # 20 each: the whole population goes to the other two
    strategy.archive.fitness[:] = 0.99995  # all done: every class gets children again
    strategy.ask()
    assert sorted(set(strategy._owner.tolist())) == CELLS


def test_fewer_children_than_two_per_class_go_to_a_sample_of_the_emitters(oracle):
    """population 4 over 4 unfinished classes: 2 emitters, a mirrored pair each, drawn anew each generation."""
    strategy = _strategy(oracle, population=4)
    _step(strategy, oracle, 1)
    chosen = set()
    for _ in range(12):
        genomes = strategy.ask()
        owners = strategy._owner.tolist()
        assert len(genomes) == 4 and len(set(owners)) == 2 and owners == sorted(owners)
        chosen.add(tuple(sorted(set(owners))))
        strategy.tell(genomes, oracle.probs(strategy.encoding.decode(genomes, torch.device("cpu")))[:, CELLS].double())
    assert len(chosen) > 1  # not always the same emitters


class _EagerRestarts(SnesElites):
    """Reference: restarted emitters copy their cell's elite at once."""

    def tell(self, genomes, confidence, scores=None):
        super().tell(genomes, confidence, scores)
        self._restart_means()


def test_restarts_copied_when_needed_give_the_same_run_as_restarts_copied_at_once(oracle):
    archive = lambda: Archive(DirectEncoding((1, 8, 8)), CELLS, oracle.labels)  # noqa: E731
    lazy, eager = (kind(archive(), np.random.default_rng(2), population=4, initial_population=8, start=0.5,
                        generator=torch.Generator().manual_seed(2)) for kind in (SnesElites, _EagerRestarts))
    deferred = 0
    for _ in range(30):
        _step(lazy, oracle, 1)
        _step(eager, oracle, 1)
        deferred += int(lazy.restarting.sum())
    assert deferred > 0  # some restarts waited for their emitter's turn
    np.testing.assert_array_equal(lazy.archive.fitness, eager.archive.fitness)
    assert torch.equal(lazy.archive.elites(CELLS), eager.archive.elites(CELLS))
    lazy._restart_means()
    assert torch.equal(lazy.mean, eager.mean)


class _FullStep(SnesElites):
    """Checks each generation's means and step sizes against the SNES update computed in full."""

    steps = 0

    def _update(self, confidence, children):
        utility = rank_utilities(confidence, self._cells, self._noise.shape[1])
        step = self._sigma * torch.bmm(utility, self._noise).squeeze(1)
        mean = self.mean.clone()
        mean[self._cells] = add_upsampled_(self._mean.clone(), step, self.scale, self.shape).clamp_(0.0, 1.0)
        gradient = torch.bmm(utility, self._noise * self._noise - 1.0).squeeze(1)
        sigma = self.sigma.clone()
        sigma[self._cells] = self._sigma * torch.exp(0.5 * self.lr_sigma * gradient)
        super()._update(confidence, children)
        assert torch.equal(self.mean, mean) and torch.equal(self.sigma, sigma)
        self.steps += 1


@pytest.mark.parametrize("population", [4, 40])
def test_each_step_is_the_full_snes_update_and_one_mirrored_pair_moves_onto_the_better_child(oracle, population):
    """population 4 over 4 classes: one mirrored pair an emitter, whose mean moves onto its better child (copied)
    and whose step-size gradient is exactly 0 (skipped: sigma unchanged bit for bit, its rows' cached digests
    kept); 40: ten pairs, every step adapts the step sizes."""
    strategy = _strategy(oracle, population=population)
    strategy.__class__ = _FullStep
    _step(strategy, oracle, 1)
    rows = list(range(len(CELLS)))
    strategy.sigma_digests.set_many(rows, ["0" * 64] * len(rows))  # as a checkpoint would have cached them
    _step(strategy, oracle, 10)
    assert strategy.steps == 11  # start 0.0: generation 0 is an SNES step too
    unchanged = torch.equal(strategy.sigma, torch.full_like(strategy.sigma, strategy.sigma0))
    kept = [strategy.sigma_digests.known(i) is not None for i in rows]
    if population == 4:
        assert unchanged and all(kept)
    else:
        assert not unchanged and not any(kept)


def test_a_checkpoint_from_before_emitter_sampling_is_refused_only_where_it_matters(oracle):
    small = _strategy(oracle, population=4)
    arrays, values = small.state_dict()
    del values["emitters"]  # as written by the fooling that gave every class two children
    with pytest.raises(FoolingError, match="cannot continue bit-identically"):
        _strategy(oracle, population=4).load_state_dict(arrays, values)
    _strategy(oracle, population=8).load_state_dict(arrays, values)  # 2 per class: nothing changed there


def test_utilities_are_zero_sum_and_decreasing():
    u = snes_utilities(10, torch.device("cpu"))
    assert abs(float(u.sum())) < 1e-6
    assert torch.all(u[:-1] >= u[1:]) and u[0] > 0 > u[-1]


def test_utilities_by_rank_in_numpy_equal_torch_s_stable_descending_sort():
    """The CPU ranks emitters' children in numpy: the same utilities as torch's stable descending argsort (ties in
    order, -inf last, NaN first via the torch path), for each emitter's own cell."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        k, per = int(rng.integers(1, 8)), 2 * int(rng.integers(1, 9))
        conf = rng.random((k * per, 10))
        if trial % 2:
            conf = np.round(conf, 1)  # ties
        conf[rng.random(conf.shape) < 0.1] = -np.inf
        conf[rng.random(conf.shape) < 0.05] = -0.0
        if trial % 3 == 0:
            conf[rng.random(conf.shape) < 0.1] = np.nan
        cells = torch.as_tensor(rng.choice(10, size=k, replace=False))
        values = torch.from_numpy(conf)
        own = values.view(k, per, -1).gather(2, cells.view(k, 1, 1).expand(k, per, 1)).squeeze(2)
        expected = torch.empty((k, per)).scatter_(1, torch.argsort(own, dim=1, descending=True, stable=True),
                                                   snes_utilities(per, torch.device("cpu")).expand(k, per))
        assert torch.equal(rank_utilities(values, cells, per), expected.unsqueeze(1))


def test_same_seed_same_archive_other_seed_not(oracle):
    runs = []
    for seed in (3, 3, 4):
        strategy = _strategy(oracle, seed)
        _step(strategy, oracle, 8)
        runs.append(strategy)
    a, b, c = runs
    np.testing.assert_array_equal(a.archive.fitness, b.archive.fitness)
    assert torch.equal(a.archive.elites(CELLS), b.archive.elites(CELLS))
    assert torch.equal(a.mean, b.mean) and torch.equal(a.sigma, b.sigma)
    assert not np.array_equal(a.archive.fitness, c.archive.fitness)


@pytest.mark.parametrize("start,population", [(0.0, 40), (-1.0, 40), (0.5, 4)])  # 4: emitters drawn, restarts wait
def test_state_dict_round_trip_continues_exactly(oracle, start, population):
    straight = _strategy(oracle, 5, start=start, population=population)
    _step(straight, oracle, 10)
    split = _strategy(oracle, 5, start=start, population=population)
    _step(split, oracle, 4)
    arrays, values = split.state_dict()
    assert {"generator", "mean", "sigma"} <= set(arrays) and arrays["sigma"].shape == (4, 16)  # 4x4 noise grid
    archive_state = split.archive.state_dict()
    resumed = _strategy(oracle, 99, start=start, population=population)  # other seed: all must come from the state
    resumed.archive.load_state_dict(archive_state)
    resumed.load_state_dict(arrays, values)
    assert torch.equal(resumed.mean, split.mean) and torch.equal(resumed.sigma, split.sigma)
    assert torch.equal(resumed.restarting, split.restarting)
    _step(resumed, oracle, 6)
    np.testing.assert_array_equal(straight.archive.fitness, resumed.archive.fitness)
    assert torch.equal(straight.archive.elites(CELLS), resumed.archive.elites(CELLS))
    assert torch.equal(straight.mean, resumed.mean) and torch.equal(straight.sigma, resumed.sigma)


def test_a_state_of_another_shape_is_refused(oracle):
    arrays, values = _strategy(oracle).state_dict()
    other = SnesElites(Archive(DirectEncoding((1, 8, 8)), [0, 1], oracle.labels), np.random.default_rng(0), 8, 8)
    with pytest.raises(FoolingError, match="belongs to another run"):
        other.load_state_dict(arrays, values)


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=12, population=16, seed=3, device="cpu", checkpoint_every=4,
                checkpoint_seconds=0, out=str(out))
    return EvolveSettings(**{**base, **kw})


@pytest.mark.parametrize("preset", ["default", "paper"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, preset):
    evolve(_config(tmp_path / "straight", preset=preset))
    EvolutionRun.start(_config(tmp_path / "split", preset=preset)).run(progress=False, stop_after=5)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    state = ("archive.", "strategy.")
    left, right = checkpoint_arrays(tmp_path / "straight", state), checkpoint_arrays(tmp_path / "split", state)
    assert left.keys() == right.keys()
    if preset == "default":
        assert "strategy.mean" in left
    for key in left:
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def test_a_resumed_run_of_wide_images_equals_an_uninterrupted_one(tmp_path):
    """128 px images, one mirrored pair an emitter: the CPU reads the emitters' rows in place (the compiled
    children pass, restarting emitters sampled from the archive's bank) and a resumed run still ends the same."""
    kw = dict(image_size=128, population=4, generations=14)
    probe = EvolutionRun.start(_config(tmp_path / "probe", **kw))
    assert one_pass(probe.encoding.image_shape, 2, torch.device("cpu"))  # (1, 128, 128): the pass's path
    probe.close()
    evolve(_config(tmp_path / "straight", **kw))
    EvolutionRun.start(_config(tmp_path / "split", **kw)).run(progress=False, stop_after=6)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    state = ("archive.", "strategy.")
    left, right = checkpoint_arrays(tmp_path / "straight", state), checkpoint_arrays(tmp_path / "split", state)
    assert left.keys() == right.keys() and left["strategy.mean"].shape[1] == 128 * 128
    assert left["strategy.restarting"].dtype == bool
    for key in left:
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def test_presets_choose_the_strategy_and_its_population():
    default, paper = EvolveSettings().resolved(), EvolveSettings(preset="paper").resolved()
    assert (default.strategy, default.population) == ("snes-elites", 40)
    assert (paper.strategy, paper.population, paper.mutation_eta) == ("map-elites", 200, 15.0)
    assert EvolveSettings(strategy="map-elites").resolved().population == 200
    assert EvolveSettings(preset="paper", strategy="snes-elites").resolved().population == 40
    assert EvolveSettings(population=50).resolved().population == 50
    cppn = EvolveSettings(encoding="cppn").resolved()  # snes-elites is direct-only: the CPPN keeps MAP-Elites
    assert (cppn.strategy, cppn.population) == ("map-elites", 50)
    with pytest.raises(FoolingError, match="direct encoding only"):
        EvolveSettings(encoding="cppn", strategy="snes-elites").resolved()


def test_until_stops_a_default_run_once_every_class_is_there(tmp_path):
    summary = evolve(_config(tmp_path / "run", generations=500, until=0.99))
    assert summary["generation"] < 500 and summary["strategy"] == "snes-elites"
    assert min(c["confidence"] for c in summary["classes"]) >= 0.99
    # it stopped at the very generation in which the last class passed
    assert max(c["passed"]["0.99"] for c in summary["classes"]) == summary["generation"]
