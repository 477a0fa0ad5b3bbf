"""MAP-Elites and the GA raise confidence on a known oracle; the GA selects as DEAP's selBest; parents come from
occupied cells; the lineages that the default CPPN search keeps for the class furthest from done."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fooling.archive import Archive
from fooling.encodings import DirectEncoding
from fooling.errors import FoolingError
from fooling.search import GeneticAlgorithm, MapElites


def _loop(strategy, classifier, classes, generations):
    for _ in range(generations + 1):
        genomes = strategy.ask()
        probs = classifier.probs(strategy.encoding.decode(genomes, torch.device("cpu")))
        strategy.tell(genomes, probs[:, classes].double())


def test_map_elites_raises_every_class(oracle):
    enc = DirectEncoding((1, 8, 8), mutation_rate=0.05)
    archive = Archive(enc, range(4), oracle.labels)
    strategy = MapElites(archive, np.random.default_rng(0), population=40, initial_population=40)
    _loop(strategy, oracle, [0, 1, 2, 3], 0)
    start = archive.fitness.copy()
    _loop(strategy, oracle, [0, 1, 2, 3], 60)
    assert np.all(archive.fitness > start)
    assert np.all(archive.fitness > 0.97), archive.fitness  # the oracle tops out at 0.9998


def test_parents_are_drawn_from_occupied_cells_only(oracle):
    enc = DirectEncoding((1, 8, 8))
    archive = Archive(enc, range(4), oracle.labels)
    strategy = MapElites(archive, np.random.default_rng(0), population=50, initial_population=10)
    first = strategy.ask()
    assert first.shape == (10, 64)  # the initial population
    conf = torch.full((10, 4), -np.inf, dtype=torch.float64)
    conf[3, 2] = 0.5  # only cell 2 gets an elite
    strategy.tell(first, conf)
    strategy.ask()
    assert set(strategy._parents.tolist()) == {2}


def test_ga_improves_its_target(oracle):
    enc = DirectEncoding((1, 8, 8), mutation_rate=0.05)
    archive = Archive(enc, [1], oracle.labels)
    ga = GeneticAlgorithm(archive, np.random.default_rng(0), random.Random(0), mu=20, lambda_=40, cxpb=0.3,
                          mutpb=0.7)
    _loop(ga, oracle, [1], 0)
    start = archive.fitness[0]
    _loop(ga, oracle, [1], 30)
    assert archive.fitness[0] > max(start, 0.9)
    assert len(ga.population) == 20
    assert all(ind.fitness.valid for ind in ga.population)


def test_the_ga_selects_as_deaps_selbest_ties_included(oracle):
    """The direct GA selects with a stable sort of the fitness values and keeps its population's genomes in one
    tensor: the same survivors, in the same order, as DEAP's selBest over Individuals holding their genomes, also
    when many fitness values tie (coarse fitness: the order population first, then children, decides)."""
    from deap import tools

    enc = DirectEncoding((1, 8, 8), mutation_rate=0.2, crossover_rate=0.5)
    ga = GeneticAlgorithm(Archive(enc, [1], oracle.labels), np.random.default_rng(0), random.Random(0), mu=15,
                          lambda_=40, cxpb=0.4, mutpb=0.4)
    reference = []  # (fitness, genome) of the population, selected by selBest as DEAP would
    for generation in range(8):
        genomes = ga.ask()
        fitness = (oracle.probs(enc.decode(genomes, torch.device("cpu")))[:, [1]] * 4).floor().double() / 4
        pool = reference + [(value, genome) for value, genome in zip(fitness[:, 0].tolist(), genomes)]
        people = []
        for value, genome in pool:
            ind = ga._individual(genome)
            ind.fitness.values = (value,)
            people.append(ind)
        reference = [(ind.fitness.values[0], ind.genome) for ind in tools.selBest(people, 15)]
        ga.tell(genomes, fitness)
        assert [ind.fitness.values[0] for ind in ga.population] == [value for value, _ in reference]
        assert torch.equal(ga._pool, torch.stack([genome for _, genome in reference]))
    assert len({value for value, _ in reference}) < len(reference)  # ties were broken


def test_the_ga_on_cppns_clones_by_sharing_genomes_and_evolves_as_with_deep_copies(oracle):
    """On the path of runs begun while varOr mutated CPPN genomes one at a time: its clones hold their parent's genome
    object (no operator writes a genome in place) and a fitness of their own; a GA on CPPN genomes ends with the same
    population as with DEAP's deep copies."""
    import copy

    from fooling.encodings.cppn import CPPNEncoding
    from fooling.search.ga import share_genome

    ends = []
    for clone in (share_genome, copy.deepcopy):
        enc = CPPNEncoding((1, 8, 8))
        ga = GeneticAlgorithm(Archive(enc, [1], oracle.labels), np.random.default_rng(0), random.Random(0), mu=10,
                              lambda_=20, cxpb=0.3, mutpb=0.5)
        assert ga.batched
        ga.batched = False  # varOr itself, child by child
        ga.toolbox.register("clone", clone)
        _loop(ga, oracle, [1], 6)
        ends.append(([ind.fitness.values for ind in ga.population],
                     [enc.genome_json(ind.genome) for ind in ga.population]))
    assert ends[0] == ends[1]
    parent = ga.population[0]
    child = share_genome(parent)
    assert child.genome is parent.genome and child.fitness.values == parent.fitness.values
    del child.fitness.values
    assert parent.fitness.valid and not child.fitness.valid


def _cppn_ga(oracle, batched: bool, seed: int = 0) -> GeneticAlgorithm:
    from fooling.encodings.cppn import CPPNEncoding

    ga = GeneticAlgorithm(Archive(CPPNEncoding((1, 8, 8)), [1], oracle.labels), np.random.default_rng(seed),
                          random.Random(seed), mu=12, lambda_=30, cxpb=0.3, mutpb=0.5)
    ga.batched = batched
    return ga


def test_the_batched_cppn_ga_draws_as_varor_and_mutates_only_its_mutants(oracle):
    """Each child's operator and parents come from varOr's draws in its order (the same Python random state after a
    generation); crossovers' and reproductions' children are their (first) parent's genome, unchanged; the mutants,
    mutated in one call, change."""
    ga = _cppn_ga(oracle, batched=True)
    _loop(ga, oracle, [1], 2)
    pool, state = list(ga._pool), ga.py_random.getstate()
    ops, parents = ga._draws()
    ga.py_random.setstate(state)
    children = ga.ask()
    assert ga.py_random.getstate() != state
    replay = random.Random()
    replay.setstate(state)
    random.setstate(replay.getstate())
    from deap import algorithms

    people = []
    for genome, ind in zip(pool, ga.population):
        people.append(ga._individual(genome))
        people[-1].fitness.values = ind.fitness.values
    varor = algorithms.varOr(people, ga.toolbox, ga.lambda_, ga.cxpb, ga.mutpb)  # varOr's own draws
    assert random.getstate() == ga.py_random.getstate()
    assert len(varor) == len(children) == 30 and {0, 1, 2} <= set(ops.tolist())
    changed = 0
    for k, (op, (a, b)) in enumerate(zip(ops.tolist(), parents.tolist())):
        if op == 1:  # mutated (a small CPPN's mutant may come out as its parent)
            changed += not children[k].same_as(pool[a])
        else:
            assert children[k] is pool[a] and (b >= 0) == (op == 0)
    assert changed >= 3


def test_the_batched_cppn_ga_selects_as_selbest_and_raises_confidence(oracle):
    """The batched GA's population is the best mu of population and children (selBest's order), its genomes in
    _pool; it raises its target's confidence as the child-by-child GA does."""
    from deap import tools

    ends = {}
    for batched in (True, False):
        ga = _cppn_ga(oracle, batched, seed=4)
        _loop(ga, oracle, [1], 0)
        start = ga.archive.fitness[0]
        for _ in range(25):
            genomes = ga.ask()
            fitness = oracle.probs(ga.encoding.decode(genomes, torch.device("cpu")))[:, [1]].double()
            if batched:
                people = []
                for value, genome in zip([i.fitness.values[0] for i in ga.population] + fitness[:, 0].tolist(),
                                         ga._pool + genomes):
                    ind = ga._individual(genome)
                    ind.fitness.values = (value,)
                    people.append(ind)
                best = tools.selBest(people, ga.mu)
            ga.tell(genomes, fitness)
            if batched:
                assert [i.fitness.values[0] for i in ga.population] == [i.fitness.values[0] for i in best]
                assert all(a is i.genome for a, i in zip(ga._pool, best))
        ends[batched] = (start, ga.archive.fitness[0])
    for start, end in ends.values():
        assert end > start + 0.1, ends


def test_a_cppn_ga_strategy_resumes_on_the_path_it_began(oracle):
    """A state without the batched marker (begun child by child) goes on child by child; a batched one batched; both
    equal an uninterrupted strategy."""
    for batched in (True, False):
        straight, split = _cppn_ga(oracle, batched), _cppn_ga(oracle, batched)
        _loop(straight, oracle, [1], 8)
        _loop(split, oracle, [1], 4)
        arrays, values = split.state_dict()
        assert ("mutants" in values) == batched
        resumed = _cppn_ga(oracle, True, seed=9)  # a fresh strategy: batched until the state says otherwise
        resumed.archive.load_state_dict(split.archive.state_dict())
        resumed.load_state_dict(arrays, values)
        assert resumed.batched == batched
        _loop(resumed, oracle, [1], 3)
        assert [i.fitness.values for i in resumed.population] == [i.fitness.values for i in straight.population]
        mine = resumed._pool if batched else [i.genome for i in resumed.population]
        theirs = straight._pool if batched else [i.genome for i in straight.population]
        assert all(a.same_as(b) for a, b in zip(mine, theirs))


def test_laggard_bias_sends_parents_to_unfinished_classes(oracle):
    enc = DirectEncoding((1, 8, 8))

    def parent_counts(bias: float) -> np.ndarray:
        archive = Archive(enc, range(4), oracle.labels)
        archive.add(enc.random(4, np.random.default_rng(0)), torch.diag(torch.tensor([0.9999, 0.9999, 0.9999, 0.5])), 0)
        strategy = MapElites(archive, np.random.default_rng(1), population=4000, initial_population=4,
                             laggard_bias=bias)
        strategy.generation = 1
        strategy.ask()
        return np.bincount(np.asarray(strategy._parents), minlength=4) / 4000

    uniform, biased = parent_counts(0.0), parent_counts(0.5)
    np.testing.assert_allclose(uniform, 0.25, atol=0.03)
    assert biased[3] == pytest.approx(0.5 * 0.25 + 0.5, abs=0.03)  # uniform half, plus nearly all the weighted half


def test_same_generator_same_archive_and_generator_state_round_trips(oracle):
    def run(stop: int, restart: bool = False) -> Archive:
        enc = DirectEncoding((1, 8, 8), crossover_rate=0.5)
        archive = Archive(enc, range(4), oracle.labels)
        strategy = MapElites(archive, np.random.default_rng(0), population=20, initial_population=20,
                             generator=torch.Generator().manual_seed(3))
        _loop(strategy, oracle, [0, 1, 2, 3], stop)
        if restart:  # a fresh strategy and archive from the saved states, then on to the same end
            arrays, values = strategy.state_dict()
            assert arrays["generator"].dtype == np.uint8
            state = archive.state_dict()
            archive = Archive(enc, range(4), oracle.labels)
            archive.load_state_dict(state)
            strategy = MapElites(archive, np.random.default_rng(99), population=20, initial_population=20,
                                 generator=torch.Generator().manual_seed(99))
            strategy.load_state_dict(arrays, values)
            for _ in range(6):  # generations 5..10
                genomes = strategy.ask()
                probs = oracle.probs(enc.decode(genomes, torch.device("cpu")))
                strategy.tell(genomes, probs[:, [0, 1, 2, 3]].double())
        return archive

    straight, resumed = run(10), run(4, restart=True)
    np.testing.assert_array_equal(straight.fitness, resumed.fitness)
    assert torch.equal(straight.elites([0, 1, 2, 3]), resumed.elites([0, 1, 2, 3]))


def test_an_old_numpy_state_cannot_resume_device_genomes(oracle):
    archive = Archive(DirectEncoding((1, 8, 8)), range(4), oracle.labels)
    strategy = MapElites(archive, np.random.default_rng(0), population=4, initial_population=4)
    _, values = strategy.state_dict()
    with pytest.raises(FoolingError, match="cannot continue bit-identically"):
        strategy.load_state_dict({}, {**values, "generation": 3})


# --- lineages (CPPN genomes): hill climbers for the class furthest from done -----------------------------

def _cppn_strategy(oracle, seed: int = 0, **kw) -> MapElites:
    from fooling.encodings.cppn import CPPNEncoding

    archive = Archive(CPPNEncoding((1, 8, 8)), range(4), oracle.labels)
    return MapElites(archive, np.random.default_rng(seed), population=kw.pop("population", 16),
                     initial_population=16, laggard_bias=0.5, **{"lineages": 3, "lineage_children": 4, **kw})


def _cppn_loop(strategy, oracle, generations):
    for _ in range(generations):
        genomes = strategy.ask()
        strategy.tell(genomes, oracle.probs(strategy.encoding.decode(genomes, torch.device("cpu"))).double())


def test_lineages_breed_for_the_least_confident_class_and_keep_their_best(oracle):
    from fooling.search.map_elites import LINEAGE_START

    strategy = _cppn_strategy(oracle)
    _cppn_loop(strategy, oracle, LINEAGE_START)
    assert strategy._target == -1  # none before LINEAGE_START
    genomes = strategy.ask()
    fitness = strategy.archive.fitness
    assert len(genomes) == 16 + 3 * 4 and len(strategy._parents) == 16 + 3 * 4
    assert strategy._target == int(np.argmin(fitness))
    # each lineage's 4 children come from its own genome: their parent cell is where the lineage started
    np.testing.assert_array_equal(strategy._parents[16:], np.repeat(strategy._lineage_origin, 4))
    strategy.tell(genomes, oracle.probs(strategy.encoding.decode(genomes, torch.device("cpu"))).double())
    kept = 0
    for _ in range(10):
        before, target = strategy._lineage_fitness.copy(), strategy._target
        _cppn_loop(strategy, oracle, 1)
        if strategy._target == target:  # (another class furthest from done starts the lineages afresh)
            kept += 1
            assert np.all(strategy._lineage_fitness >= before)  # a lineage only takes a better child
    assert kept
    # each lineage holds the genome that scored its fitness
    images = strategy.encoding.decode(strategy._lineage, torch.device("cpu"))
    np.testing.assert_allclose(oracle.probs(images).double()[:, strategy._target].numpy(), strategy._lineage_fitness,
                               rtol=1e-6)


def test_no_lineage_children_once_every_class_is_done_and_stalled_lineages_restart(oracle):
    from fooling.search.map_elites import LINEAGE_START

    strategy = _cppn_strategy(oracle, lineage_patience=3)
    _cppn_loop(strategy, oracle, LINEAGE_START + 1)
    target = strategy._target
    strategy._lineage_age[:] = [0, 4, 4]
    strategy._lineage_fitness[:] = [0.0, 0.0, 1.0]  # lineage 1 stalled below the elite; 2 stalled above it
    kept = [strategy._lineage[0], strategy._lineage[2]]
    strategy.ask()
    assert strategy._lineage_fitness[1] == -np.inf and strategy._lineage_age[1] == 0  # started again
    assert strategy._lineage[0] is kept[0] and strategy._lineage[2] is kept[1]
    assert strategy._target == target
    strategy.archive.fitness[:] = 0.99995  # every class at focus (0.9999): MAP-Elites children only
    assert len(strategy.ask()) == 16 and strategy._bred == 0


def test_lineages_are_off_for_device_genomes_and_by_default(oracle):
    archive = Archive(DirectEncoding((1, 8, 8)), range(4), oracle.labels)
    assert MapElites(archive, np.random.default_rng(0), 8, 8, lineages=5).lineages == 0
    assert _cppn_strategy(oracle, lineages=0).ask() is not None


def test_lineage_state_round_trips(oracle):
    from fooling.search.map_elites import LINEAGE_START

    straight = _cppn_strategy(oracle, 5, lineage_patience=2)
    _cppn_loop(straight, oracle, LINEAGE_START + 10)
    split = _cppn_strategy(oracle, 5, lineage_patience=2)
    _cppn_loop(split, oracle, LINEAGE_START + 4)
    arrays, values = split.state_dict()
    assert values["lineage_target"] == split._target and "lineage_fitness" in arrays
    state = split.archive.state_dict()
    resumed = _cppn_strategy(oracle, 99, lineage_patience=2)  # other seed: everything must come from the state
    resumed.archive.load_state_dict(state)
    resumed.load_state_dict(arrays, values)
    _cppn_loop(resumed, oracle, 6)
    np.testing.assert_array_equal(straight.archive.fitness, resumed.archive.fitness)
    np.testing.assert_array_equal(straight._lineage_fitness, resumed._lineage_fitness)
    assert all(a.same_as(b) for a, b in zip(straight._lineage, resumed._lineage))
    other = _cppn_strategy(oracle, 5, lineages=2)
    other.archive.load_state_dict(state)
    with pytest.raises(FoolingError, match="lineages do not fit"):
        other.load_state_dict(arrays, values)


def test_a_resumed_default_cppn_run_with_lineages_equals_an_uninterrupted_one(tmp_path):
    from fooling.run import EvolutionRun, evolve
    from fooling.settings.evolve import EvolveSettings
    from helpers import assert_same_archive, checkpoint_arrays

    def config(out):
        return EvolveSettings(model="test-oracle", encoding="cppn", generations=30, population=16, seed=3,
                              device="cpu", checkpoint_every=4, checkpoint_seconds=0, out=str(out))

    assert config(tmp_path).resolved().cppn_lineages == 10  # the default preset's CPPN search breeds lineages
    evolve(config(tmp_path / "straight"))
    EvolutionRun.start(config(tmp_path / "split")).run(progress=False, stop_after=25)
    EvolutionRun.resume(tmp_path / "split").run(progress=False)
    assert "strategy.lineage_fitness" in checkpoint_arrays(tmp_path / "straight", ("strategy.",))
    assert_same_archive(tmp_path / "straight", tmp_path / "split", ("archive.", "strategy."))



def test_a_cppn_run_saved_before_lineages_existed_resumes_without_them(tmp_path):
    import json

    from fooling.run import EvolutionRun
    from fooling.settings.evolve import EvolveSettings

    EvolutionRun.start(EvolveSettings(model="test-oracle", encoding="cppn", generations=4, population=8, seed=1,
                                      device="cpu", checkpoint_every=1, checkpoint_seconds=0, out=str(tmp_path / "old"))
                       ).run(progress=False, stop_after=2)
    path = tmp_path / "old" / "config.json"
    record = json.loads(path.read_text())
    assert record["cppn_lineages"] == 10
    for key in ("cppn_lineages", "cppn_lineage_children", "cppn_lineage_patience"):
        del record[key]  # as an older fooling wrote it
    path.write_text(json.dumps(record))
    run = EvolutionRun.resume(tmp_path / "old")
    try:
        assert run.config.cppn_lineages == 0 and run.strategy.lineages == 0  # it goes on as it began
    finally:
        run.close()
