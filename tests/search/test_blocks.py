"""Direct variation in seeded blocks: any piece cut on blocks realises to the same children as the whole plan
(what lets Ray actors vary their own pieces), and old checkpoints of the unblocked stream are refused."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fooling.archive import Archive
from fooling.encodings import DirectEncoding
from fooling.errors import FoolingError
from fooling.search import GeneticAlgorithm, MapElites, noise
from fooling.search.blocks import (
    SHORT_ROWS, Plan, add_upsampled_, grid_cells, mean_plus_step, noise_grid, plus_upsampled, realise, upsample,
)
from fooling.search.snes_elites import SnesElites


def _strategy(kind: str, oracle, device: str = "cpu"):
    enc = DirectEncoding((1, 8, 8), mutation_rate=0.2, crossover_rate=0.5, device=torch.device(device))
    if kind == "ga":
        archive = Archive(enc, [1], oracle.labels)
        return GeneticAlgorithm(archive, np.random.default_rng(3), random.Random(3), mu=20, lambda_=70, cxpb=0.4,
                                mutpb=0.4)
    archive = Archive(enc, range(4), oracle.labels)
    if kind == "snes":
        return SnesElites(archive, np.random.default_rng(3), population=60, initial_population=70, start=-1)
    return MapElites(archive, np.random.default_rng(3), population=70, initial_population=70)


def _step(strategy, oracle, genomes):
    classes = [1] if isinstance(strategy, GeneticAlgorithm) else [0, 1, 2, 3]
    probs = oracle.probs(strategy.encoding.decode(genomes, torch.device("cpu")))[:, classes].double()
    strategy.tell(genomes, probs)


def _elites(strategy):
    return strategy.mirror_source()[1] if hasattr(strategy, "mirror_source") else None


@pytest.mark.parametrize("kind", ["map-elites", "ga", "snes"])
def test_pieces_on_block_boundaries_realise_the_whole_plans_children(oracle, kind):
    strategy = _strategy(kind, oracle)
    kinds = set()
    for _ in range(4):
        plan = strategy.plan()
        kinds.add(plan.kind)
        whole = strategy.take(plan)
        assert whole.shape == (plan.n, 64)
        for cuts in ([0, plan.n], sorted({0, min(plan.block, plan.n), plan.n}),
                     list(range(0, plan.n, plan.block)) + [plan.n]):
            pieces = [realise(plan.piece(a, b), strategy.encoding, _elites(strategy))[0]
                      for a, b in zip(cuts, cuts[1:])]
            assert torch.equal(torch.cat(pieces), whole)
        _step(strategy, oracle, whole)
    assert kinds == {"random", {"map-elites": "vary", "ga": "ga", "snes": "snes"}[kind]}


def test_one_draw_snes_pieces_realise_the_whole_plan_and_checkpoints_name_the_stream(oracle, monkeypatch):
    monkeypatch.setattr(noise, "ONE_DRAW_DEVICES", ("cpu",))  # CUDA's rule, on this CPU
    strategy = _strategy("snes", oracle)
    _step(strategy, oracle, strategy.ask())  # the random initial population
    for _ in range(2):
        plan = strategy.plan()
        whole = strategy.take(plan)
        half = plan.block // 2
        draw = torch.randn((len(plan.seeds), half, strategy.sigma.shape[1]),
                           generator=torch.Generator().manual_seed(int(plan.seeds[0])))
        assert plan.kind == "snes" and len(plan.seeds) > 2 and torch.equal(strategy._noise[:, :half], draw)
        for cuts in ([0, plan.block, plan.n], list(range(0, plan.n, plan.block)) + [plan.n]):
            pieces = [realise(plan.piece(a, b), strategy.encoding)[0] for a, b in zip(cuts, cuts[1:])]
            assert torch.equal(torch.cat(pieces), whole)
        _step(strategy, oracle, whole)
    arrays, values = strategy.state_dict()
    assert values["variation"] == "blocks-1+one-draw"
    monkeypatch.setattr(noise, "ONE_DRAW_DEVICES", ("cuda",))
    with pytest.raises(FoolingError, match=r"random stream \(not blocks-1\)"):
        _strategy("snes", oracle).load_state_dict(arrays, values)


def test_block_size_is_a_power_of_two_from_the_population_alone():
    from fooling.search.blocks import block_size

    assert [block_size(n) for n in (1, 70, 400, 512, 513, 1000, 4096)] == [32, 32, 32, 32, 64, 64, 256]


def test_a_piece_off_the_blocks_is_refused():
    plan = Plan("random", 70, 32, np.arange(3))
    with pytest.raises(ValueError, match="not on blocks of 32"):
        plan.piece(0, 40)
    assert plan.piece(64, 70).n == 6 and plan.piece(64, 70).seeds.tolist() == [2]


def test_block_seeds_decide_the_children_and_the_plan_is_small(oracle):
    strategy = _strategy("map-elites", oracle)
    _step(strategy, oracle, strategy.ask())
    plan = strategy.plan()
    first = realise(plan, strategy.encoding, strategy.archive.elites)[0]
    again = realise(plan, strategy.encoding, strategy.archive.elites)[0]
    assert torch.equal(first, again)  # the plan alone decides them
    plan.seeds = plan.seeds.copy()
    plan.seeds[1] += 1
    other = realise(plan, strategy.encoding, strategy.archive.elites)[0]
    assert torch.equal(other[:32], first[:32]) and not torch.equal(other[32:64], first[32:64])
    assert plan.nbytes() == 70 * 8 + 3 * 8  # parent cells and three seeds, not 70 x 64 genes


def test_vary_blocks_are_varied_even_when_the_encoding_varies_a_copy(oracle):
    """An encoding whose device is spelled unlike its tensors' (``cpu:0`` against ``cpu``; on a GPU ``cuda``
    against ``cuda:0``) varies a copy of each block: the children must still be the varied genes, not the parents
    (they once were, silently: every MAP-Elites child on ``--device cuda`` was an unchanged elite)."""
    strategy = _strategy("map-elites", oracle)
    _step(strategy, oracle, strategy.ask())
    plan = strategy.plan()
    assert plan.kind == "vary"
    here = realise(plan, strategy.encoding, strategy.archive.elites)[0]
    spelled = DirectEncoding((1, 8, 8), mutation_rate=0.2, crossover_rate=0.5, device=torch.device("cpu", 0))
    assert spelled.device != torch.device("cpu")  # so vary_owned copies
    children = realise(plan, spelled, strategy.archive.elites)[0]
    parents = strategy.archive.elites(plan.parents)
    assert not torch.equal(children, parents) and torch.equal(children, here)


def test_resuming_on_another_device_type_names_the_device_first(oracle):
    strategy = _strategy("snes", oracle)
    _step(strategy, oracle, strategy.ask())
    arrays, values = strategy.state_dict()
    values = dict(values, generator_device="cuda", variation="blocks-1+one-draw")  # as a CUDA run records them
    with pytest.raises(FoolingError, match=r"random state is for device cuda, not cpu: resume it with --device cuda"):
        _strategy("snes", oracle).load_state_dict(arrays, values)


@pytest.mark.parametrize("kind", ["map-elites", "ga", "snes"])
def test_a_checkpoint_of_the_old_random_stream_is_refused_in_one_line(oracle, kind):
    strategy = _strategy(kind, oracle)
    _step(strategy, oracle, strategy.ask())
    arrays, values = strategy.state_dict()
    assert values["variation"] == ("blocks-1" if kind == "snes" else "blocks-1+counters")
    fresh = _strategy(kind, oracle)
    fresh.load_state_dict(arrays, dict(values))
    del values["variation"]
    with pytest.raises(FoolingError, match="checkpointed by an older fooling") as err:
        _strategy(kind, oracle).load_state_dict(arrays, values)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["map-elites", "ga"])
def test_the_cpu_varies_from_counters_and_continues_a_run_begun_on_torch_generators(oracle, kind):
    strategy = _strategy(kind, oracle)
    _step(strategy, oracle, strategy.ask())
    assert strategy.plan().counters and strategy.state_dict()[1]["variation"] == "blocks-1+counters"
    old = _strategy(kind, oracle)
    old.counters = False  # as fooling before the counter-based stream varied every run on the CPU
    _step(old, oracle, old.ask())
    _step(old, oracle, old.ask())
    arrays, values = old.state_dict()
    assert values["variation"] == "blocks-1"
    resumed = _strategy(kind, oracle)
    resumed.archive.load_state_dict(old.archive.state_dict())
    resumed.load_state_dict(arrays, values)
    assert not resumed.counters and resumed.variation == "blocks-1"
    for _ in range(2):  # the same children as the run would have made on
        expected, got = old.ask(), resumed.ask()
        assert torch.equal(got, expected)
        _step(old, oracle, expected)
        _step(resumed, oracle, got)


def test_a_counter_plan_gives_the_same_children_where_genomes_lie_off_the_host(oracle, monkeypatch):
    """A plan (MAP-Elites' or the GA's) of the CPU's counter-based stream, realised where the genomes are device
    tensors (an actor on a GPU): varied on the CPU, the same children."""
    from fooling import hostwork

    for kind in ("map-elites", "ga"):
        monkeypatch.undo()
        strategy = _strategy(kind, oracle)
        _step(strategy, oracle, strategy.ask())
        plan = strategy.plan()
        assert plan.counters
        here = realise(plan, strategy.encoding, _elites(strategy))[0]
        monkeypatch.setattr(hostwork, "HOST_DEVICES", ())
        assert torch.equal(realise(plan, strategy.encoding, _elites(strategy))[0], here)


def test_resuming_a_run_checkpointed_before_blocks_is_one_line(tmp_path):
    from click.testing import CliRunner

    from fooling.cli import main
    from fooling.rundir.checkpoint import load_checkpoint, save_checkpoint
    from fooling.run import evolve
    from fooling.settings.evolve import EvolveSettings

    out = tmp_path / "run"
    evolve(EvolveSettings(model="test-oracle", strategy="map-elites", population=20, generations=2, device="cpu",
                          out=str(out)))
    folder = out / "checkpoint"
    arrays, values = load_checkpoint(folder)
    del values["strategy"]["variation"]  # what the code before seeded blocks wrote
    generation = values.pop("generation")
    for key in ("arrays", "arrays_sha256"):
        values.pop(key, None)
    save_checkpoint(folder, generation, arrays, values)
    result = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "4"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: this run was checkpointed by an older fooling") and "blocks-1" in last


@pytest.mark.parametrize("shape,scale", [((1, 28, 28), 2), ((1, 27, 27), 2), ((3, 10, 7), 3), ((3, 8, 8), 1)])
def test_upsample_repeats_each_noise_value_over_its_block(shape, scale):
    c, h, w = noise_grid(shape, scale)
    x = torch.randn(2, 3, c * h * w, generator=torch.Generator().manual_seed(0))
    grid = x.reshape(6, c, h, w)
    expected = grid.repeat_interleave(scale, 2).repeat_interleave(scale, 3)[:, :, :shape[1], :shape[2]]
    assert torch.equal(upsample(x, scale, shape), expected.reshape(2, 3, -1))


@pytest.mark.parametrize("shape,scale", [((1, 28, 28), 2), ((1, 27, 27), 2), ((3, 12, 8), 4), ((3, 8, 8), 1),
                                         ((2, 4, SHORT_ROWS), 2), ((1, 6, SHORT_ROWS + 1), 2)])
def test_plus_upsampled_equals_adding_the_upsampled_noise(shape, scale):
    c, h, w = noise_grid(shape, scale)
    g = torch.Generator().manual_seed(1)
    base, x = torch.rand(4, 1, c * h * w * scale * scale, generator=g)[..., :shape[0] * shape[1] * shape[2]], \
        torch.randn(4, 3, c * h * w, generator=g)
    assert torch.equal(plus_upsampled(base, x, scale, shape), base + upsample(x, scale, shape))  # (4, 3, G)
    rows = base[:, 0].contiguous()  # (4, G), stepped in place by one noise row each
    expected = rows + upsample(x[:, 0], scale, shape)
    assert add_upsampled_(rows, x[:, 0], scale, shape) is rows and torch.equal(rows, expected)


def test_snes_noise_is_each_blocks_seeded_draw_then_its_mirror():
    """The stream a snes plan stands for: block j's first half is torch.randn from a generator seeded with
    seeds[j], its second half the same draws negated; children are clip(mean + upsample(sigma * noise))."""
    shape, scale, per = (1, 6, 6), 2, 4
    enc = DirectEncoding(shape)
    dims = int(np.prod(noise_grid(shape, scale)))
    g = torch.Generator().manual_seed(0)
    mean, sigma = torch.rand(3, 36, generator=g), torch.rand(3, dims, generator=g)
    seeds = np.array([5, 2**62 + 7, 11], dtype=np.int64)
    plan = Plan("snes", 3 * per, per, seeds, cells=torch.arange(3), mean=mean, sigma=sigma, scale=scale)
    children, noise = realise(plan, enc)
    for j, seed in enumerate(seeds.tolist()):
        draws = torch.randn((per // 2, dims), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(noise[j, :per // 2], draws) and torch.equal(noise[j, per // 2:], -draws)
    expected = plus_upsampled(mean.unsqueeze(1), sigma.unsqueeze(1) * noise, scale, shape).clamp(0.0, 1.0)
    assert torch.equal(children, expected.reshape(-1, 36))
    empty = realise(Plan("snes", 0, per, seeds[:0], cells=torch.arange(0), mean=mean[:0], sigma=sigma[:0],
                         scale=scale), enc)
    assert empty[0].shape == (0, 36) and empty[1].shape == (0, per, dims)


@pytest.mark.parametrize("shape,scale", [((1, 28, 28), 2), ((1, 27, 27), 2), ((3, 12, 8), 4), ((3, 8, 8), 1),
                                         ((3, 10, 14), 2), ((2, 4, SHORT_ROWS), 2), ((3, 8, SHORT_ROWS + 4), 4),
                                         ((1, 6, SHORT_ROWS + 1), 2)])
def test_mean_plus_step_equals_adding_the_upsampled_product(shape, scale):
    """Short rows gather the products, wide ones broadcast widened blocks (or upsample, for partial blocks):
    the same sums either way."""
    dims = int(np.prod(noise_grid(shape, scale)))
    g = torch.Generator().manual_seed(2)
    mean, sigma = torch.rand(4, int(np.prod(shape)), generator=g), torch.rand(4, dims, generator=g)
    noise = torch.randn(4, 6, dims, generator=g)
    expected = plus_upsampled(mean.unsqueeze(1), sigma.unsqueeze(1) * noise, scale, shape)
    assert torch.equal(mean_plus_step(mean, sigma, noise, scale, shape), expected)
    strided = noise.transpose(1, 2).contiguous().transpose(1, 2)  # the same values, not contiguous
    assert torch.equal(mean_plus_step(mean, sigma, strided, scale, shape), expected)


@pytest.mark.parametrize("shape,scale", [((1, 28, 28), 2), ((3, 10, 7), 3)])
def test_grid_cells_name_each_pixels_noise_cell(shape, scale):
    grid = noise_grid(shape, scale)
    cells = torch.arange(int(np.prod(grid)), dtype=torch.float32)
    assert torch.equal(grid_cells(shape, scale, torch.device("cpu")).float(), upsample(cells, scale, shape))


OFF_THE_CPU = ["cpu-device-path", pytest.param("cuda", marks=pytest.mark.cuda)]  # what CUDA runs, and CUDA itself


@pytest.mark.parametrize("device", OFF_THE_CPU, indirect=True)
@pytest.mark.parametrize("mode", ["whole", "dense"])
def test_the_ga_off_the_cpu_varies_at_once_in_pieces(oracle, device, mode):
    """On the device path (what CUDA runs) and on CUDA: a new GA varies its generation at once (blocks-1+whole:
    one SBX of every child's parents and one mutation, kept where the plan says), a run checkpointed on
    blocks-1+dense each block at once; either way pieces cut on blocks (the short last one included) realise the
    whole plan's children, copies are their parents, and the others changed."""
    strategy = _strategy("ga", oracle, device)
    assert not strategy.counters and strategy.whole and not strategy.dense
    assert strategy.variation == "blocks-1+whole"
    if mode == "dense":
        strategy.whole, strategy.dense = False, True
        assert strategy.variation == "blocks-1+dense"
    _step(strategy, oracle, strategy.ask())
    for _ in range(3):
        plan = strategy.plan()
        assert (plan.whole, plan.dense) == (mode == "whole", mode == "dense")
        assert plan.kind == "ga" and set(plan.ops.tolist()) == {0, 1, 2} and plan.n % plan.block
        whole = strategy.take(plan)
        for cuts in (list(range(0, plan.n, plan.block)) + [plan.n], [0, 2 * plan.block, plan.n]):
            pieces = [realise(plan.piece(a, b), strategy.encoding, _elites(strategy))[0]
                      for a, b in zip(cuts, cuts[1:])]
            assert torch.equal(torch.cat(pieces), whole)
        parents = strategy._parents(plan.parents[:, 0])
        for op in (0, 1, 2):
            rows = plan.ops == op
            assert torch.equal(whole[rows], parents[rows]) == (op == 2), op
        _step(strategy, oracle, whole)


@pytest.mark.parametrize("kind", ["map-elites", "ga"])
def test_a_generation_too_big_to_vary_at_once_is_varied_block_by_block(oracle, monkeypatch, kind):
    """Above WHOLE_MAX_GENES genes a generation (children x genes: its dense ops' temporaries come to some eight
    times that) a device run varies block by block, as before (MAP-Elites per block, the GA each block at once; a
    function of the settings: a resume does the same); below, at once."""
    from helpers import take_the_device_path

    from fooling.search import blocks

    take_the_device_path(monkeypatch)
    assert _strategy(kind, oracle).whole
    monkeypatch.setattr(blocks, "WHOLE_MAX_GENES", 70 * 64 - 1)  # one gene less than a generation of 70 x 64
    strategy = _strategy(kind, oracle)
    assert not strategy.whole and strategy.variation == ("blocks-1+dense" if kind == "ga" else "blocks-1")
    _step(strategy, oracle, strategy.ask())
    plan = strategy.plan()
    assert not plan.whole and plan.dense == (kind == "ga") and len(plan.seeds) > 1
    _step(strategy, oracle, strategy.take(plan))


@pytest.mark.parametrize("variation", ["blocks-1", "blocks-1+dense"])
def test_a_device_ga_run_begun_child_by_child_or_block_by_block_continues_so(oracle, monkeypatch, variation):
    from helpers import take_the_device_path

    take_the_device_path(monkeypatch)
    old = _strategy("ga", oracle)
    old.whole, old.dense = False, variation == "blocks-1+dense"  # as fooling before a device run varied at once
    _step(old, oracle, old.ask())
    _step(old, oracle, old.ask())
    arrays, values = old.state_dict()
    assert values["variation"] == variation
    resumed = _strategy("ga", oracle)
    resumed.archive.load_state_dict(old.archive.state_dict())
    resumed.load_state_dict(arrays, values)
    assert not resumed.whole and resumed.dense == old.dense and resumed.variation == variation
    for _ in range(2):
        expected, got = old.ask(), resumed.ask()
        assert torch.equal(got, expected)
        _step(old, oracle, expected)
        _step(resumed, oracle, got)


@pytest.mark.parametrize("device", OFF_THE_CPU, indirect=True)
def test_map_elites_off_the_cpu_varies_a_generation_at_once_in_pieces_and_continues_a_block_by_block_run(
        oracle, device):
    """On the device path (what CUDA runs) and on CUDA: MAP-Elites' generation is varied as one batch from a
    Generator seeded by its first block seed (recorded as blocks-1+whole); pieces cut on blocks, the short last one
    included, realise the whole plan's children; a run checkpointed block by block (blocks-1) continues so, bit for
    bit."""
    strategy = _strategy("map-elites", oracle, device)
    assert not strategy.counters and strategy.whole and strategy.variation == "blocks-1+whole"
    _step(strategy, oracle, strategy.ask())
    for _ in range(3):
        plan = strategy.plan()
        assert plan.whole and plan.kind == "vary" and plan.n % plan.block  # a short last block
        whole = strategy.take(plan)
        parents = strategy.archive.elites(plan.parents)
        generator = torch.Generator(device=strategy.encoding.device).manual_seed(int(plan.seeds[0]))
        assert torch.equal(whole, strategy.encoding.vary(parents, generator, plan.generation))
        for cuts in (list(range(0, plan.n, plan.block)) + [plan.n], [0, 2 * plan.block, plan.n]):
            pieces = [realise(plan.piece(a, b), strategy.encoding, _elites(strategy))[0]
                      for a, b in zip(cuts, cuts[1:])]
            assert torch.equal(torch.cat(pieces), whole)
        by_block = realise(Plan(**{**plan.__dict__, "whole": False}), strategy.encoding, _elites(strategy))[0]
        assert not torch.equal(by_block, whole) and not torch.equal(whole, parents)
        _step(strategy, oracle, whole)

    old = _strategy("map-elites", oracle, device)
    old.whole = False  # as fooling before a device run's generation was varied at once
    _step(old, oracle, old.ask())
    _step(old, oracle, old.ask())
    arrays, values = old.state_dict()
    assert values["variation"] == "blocks-1"
    resumed = _strategy("map-elites", oracle, device)
    resumed.archive.load_state_dict(old.archive.state_dict())
    resumed.load_state_dict(arrays, values)
    assert not resumed.whole and resumed.variation == "blocks-1"
    for _ in range(2):
        expected, got = old.ask(), resumed.ask()
        assert torch.equal(got, expected)
        _step(old, oracle, expected)
        _step(resumed, oracle, got)


@pytest.mark.parametrize("mode", ["dense", "whole"])
def test_a_ga_varied_at_once_draws_deaps_first_crossover_child_and_mutant(monkeypatch, mode):
    """A GA block varied at once on the device path, or a generation (``whole``): a crossover child is distributed
    as DEAP's ``ind1`` of cxSimulatedBinaryBounded, a mutant as mutPolynomialBounded (each gene of its row), a copy
    is its parent."""
    from deap import tools
    from scipy import stats

    from fooling import hostwork
    from fooling.search.blocks import _ga_block

    monkeypatch.setattr(hostwork, "HOST_DEVICES", ())
    n = 3000
    enc = DirectEncoding((1, 1, n), mutation_rate=1.0, mutation_eta=15.0, crossover_eta=2.0)
    population = torch.stack([torch.full((n,), 0.05), torch.full((n,), 0.6)])
    elites = lambda rows: population[torch.as_tensor(np.asarray(rows))].clone()  # noqa: E731
    ops, parents = np.array([0, 1, 2]), np.array([[0, 1], [1, -1], [0, -1]])
    if mode == "dense":
        children = _ga_block(ops, parents, torch.Generator().manual_seed(0), enc, elites, 1)
    else:
        plan = Plan("ga", 3, 32, np.array([0]), 1, parents=parents, ops=ops, whole=True)
        children = realise(plan, enc, elites)[0]
    random.seed(0)
    crossed, mutated = [], []
    for _ in range(n):
        a, b = [0.05], [0.6]
        tools.cxSimulatedBinaryBounded(a, b, eta=2.0, low=0.0, up=1.0)
        crossed.append(a[0])
        c = [0.6]
        tools.mutPolynomialBounded(c, eta=15.0, low=0.0, up=1.0, indpb=1.0)
        mutated.append(c[0])
    assert stats.ks_2samp(children[0].double().numpy(), np.float32(crossed)).pvalue > 1e-3
    assert stats.ks_2samp(children[1].double().numpy(), np.float32(mutated)).pvalue > 1e-3
    assert torch.equal(children[2], population[0])
