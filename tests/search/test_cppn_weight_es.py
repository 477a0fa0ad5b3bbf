"""cppn-weight-es (MAP-Elites plus a SNES on each unfinished class's CPPN weights): it climbs the oracle, gives
weight-search children only to unfinished classes, is deterministic, resumes exactly, and the default preset
picks it for the CPPN encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fooling.archive import Archive
from fooling.encodings.cppn import CPPNEncoding
from fooling.errors import FoolingError
from fooling.run import EvolutionRun, evolve
from fooling.search import CppnWeightEs
from fooling.settings.evolve import EvolveSettings, Network
from helpers import assert_same_archive, checkpoint_arrays

CELLS = [0, 1, 2, 3]


def _strategy(oracle, seed: int = 0, **kw) -> CppnWeightEs:
    archive = Archive(CPPNEncoding((1, 8, 8)), CELLS, oracle.labels)
    return CppnWeightEs(archive, np.random.default_rng(seed), population=kw.pop("population", 40),
                        initial_population=kw.pop("initial_population", 40),
                        es_children=kw.pop("es_children", 20), generator=torch.Generator().manual_seed(seed), **kw)


def _step(strategy: CppnWeightEs, oracle, generations: int) -> None:
    for _ in range(generations):
        genomes = strategy.ask()
        probs = oracle.probs(strategy.encoding.decode(genomes, torch.device("cpu")))
        strategy.tell(genomes, probs[:, CELLS].double())


def _weights(strategy: CppnWeightEs) -> list[np.ndarray]:
    return [np.concatenate([strategy.mean[k].numpy(), strategy.sigma[k].numpy()]) for k in range(len(CELLS))]


def test_it_raises_every_class_on_the_oracle(oracle):
    strategy = _strategy(oracle)
    _step(strategy, oracle, 1)
    first = strategy.archive.fitness.copy()
    _step(strategy, oracle, 30)
    assert np.all(strategy.archive.fitness >= first) and np.any(strategy.archive.fitness > first)
    assert all(m is not None for m in strategy.mean)  # every emitter started on its cell's elite


def test_weight_children_go_to_the_unfinished_classes_only(oracle):
    strategy = _strategy(oracle, population=40, es_children=20)
    _step(strategy, oracle, 1)
    strategy.archive.fitness[[0, 2]] = 0.99995  # two classes done (focus 0.9999)
    genomes = strategy.ask()
    assert len(genomes) == 40 and len(strategy._parents) == 40
    assert strategy._slots == [1, 3] and strategy._per == 10
    for i, k in enumerate(strategy._slots):  # each emitter's children share its topology, weights differ
        base = strategy.base[k]
        kids = genomes[20 + 10 * i: 30 + 10 * i]
        assert all(np.array_equal(g.sources, base.sources) and np.array_equal(g.hidden, base.hidden) for g in kids)
        assert all(np.all(np.abs(g.weights) <= 10.0) for g in kids)
        np.testing.assert_allclose(kids[0].weights + kids[5].weights, 2 * strategy.mean[k].numpy(), atol=1e-9,
                                   err_msg="mirrored pairs (before clipping)") if np.all(
            np.abs(kids[0].weights) < 10) and np.all(np.abs(kids[5].weights) < 10) else None
    strategy.archive.fitness[:] = 0.99995  # all done: everything goes to MAP-Elites
    strategy.ask()
    assert strategy._slots == [] and len(strategy._parents) == 40


def test_same_seed_same_archive_other_seed_not(oracle):
    runs = []
    for seed in (3, 3, 4):
        strategy = _strategy(oracle, seed)
        _step(strategy, oracle, 8)
        runs.append(strategy)
    a, b, c = runs
    np.testing.assert_array_equal(a.archive.fitness, b.archive.fitness)
    for x, y in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.archive.fitness, c.archive.fitness)


def test_state_dict_round_trip_continues_exactly(oracle):
    straight = _strategy(oracle, 5)
    _step(straight, oracle, 10)
    split = _strategy(oracle, 5)
    _step(split, oracle, 4)
    arrays, values = split.state_dict()
    archive_state = split.archive.state_dict()
    resumed = _strategy(oracle, 99)  # other seed: everything must come from the state
    resumed.archive.load_state_dict(archive_state)
    resumed.load_state_dict(arrays, values)
    for x, y in zip(_weights(split), _weights(resumed)):
        np.testing.assert_array_equal(x, y)
    _step(resumed, oracle, 6)
    np.testing.assert_array_equal(straight.archive.fitness, resumed.archive.fitness)
    for x, y in zip(_weights(straight), _weights(resumed)):
        np.testing.assert_array_equal(x, y)


def test_direct_genomes_are_refused(oracle):
    from fooling.encodings import DirectEncoding

    with pytest.raises(FoolingError, match="CPPN weights"):
        CppnWeightEs(Archive(DirectEncoding((1, 8, 8)), CELLS, oracle.labels), np.random.default_rng(0), 8, 8)


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", encoding="cppn", generations=12, population=16, seed=3, device="cpu",
                checkpoint_every=4, checkpoint_seconds=0, out=str(out), strategy="cppn-weight-es", cppn_es_children=8)
    return EvolveSettings(**{**base, **kw})


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    evolve(_config(tmp_path / "straight"))
    EvolutionRun.start(_config(tmp_path / "split")).run(progress=False, stop_after=5)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert "strategy.es_mean" in checkpoint_arrays(tmp_path / "straight", ("strategy.",))
    assert_same_archive(tmp_path / "straight", tmp_path / "split", ("archive.", "strategy."))


def test_settings_check_the_encoding_and_the_split():
    with pytest.raises(FoolingError, match="CPPN encoding only"):
        EvolveSettings(strategy="cppn-weight-es").resolved()
    with pytest.raises(FoolingError, match="exceeds --population"):
        EvolveSettings(encoding="cppn", strategy="cppn-weight-es", population=50, cppn_es_children=60).resolved()


def test_the_default_preset_has_its_own_cppn_search_and_any_value_can_still_be_set():
    cppn = EvolveSettings(encoding="cppn").resolved()
    assert (cppn.strategy, cppn.population, cppn.initial_population, cppn.laggard_bias) == ("map-elites", 50, 50, 0.5)
    assert (cppn.cppn_lineages, cppn.cppn_lineage_children, cppn.cppn_lineage_patience) == (10, 5, 20)
    assert cppn.mutation_eta == 5.0 and cppn.cppn_coords == "scaled"  # the rest of the default preset
    direct = EvolveSettings().resolved()  # the direct encoding keeps the preset's own values
    assert (direct.strategy, direct.population, direct.laggard_bias) == ("snes-elites", 40, 0.0)
    # the paper's CPPN population waits for the networks (400 on ImageNet ones: IMAGENET_PRESETS); MNIST: 200
    paper = EvolveSettings(encoding="cppn", preset="paper").resolved(Network(imagenet=False, takes_crops=False))
    assert (paper.strategy, paper.population, paper.laggard_bias, paper.cppn_lineages) == ("map-elites", 200, 0.0, 0)
    assert direct.cppn_lineages == 0
    mine = EvolveSettings(encoding="cppn", population=200, laggard_bias=0.0).resolved()
    assert (mine.population, mine.laggard_bias) == (200, 0.0)
    es = EvolveSettings(encoding="cppn", strategy="cppn-weight-es").resolved()  # another strategy: its population
    assert (es.strategy, es.population, es.laggard_bias) == ("cppn-weight-es", 200, 0.5)
