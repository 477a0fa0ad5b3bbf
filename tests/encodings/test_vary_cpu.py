"""MAP-Elites' and the GA's direct children on the CPU (fooling.encodings.vary_cpu): DEAP's distributions, the rates
asked for, and the same bits for any number of threads, buffer sizes and pieces."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from deap import tools
from scipy import stats

from fooling.encodings import vary_cpu
from fooling.encodings.vary_cpu import ga_children, vary_blocks


def _vary(genes: torch.Tensor, block: int = 32, seed: int = 0, **settings) -> torch.Tensor:
    settings = {"crossover_rate": 0.0, "crossover_eta": 10.0, "rate": 0.0, "eta": 15.0, "variant": "bounded",
                **settings}
    seeds = np.arange(-(-len(genes) // block), dtype=np.int64) * 1_000_003 + seed
    return vary_blocks(genes, seeds, block, **settings)


def _deap_mutated(x: float, n: int, eta: float) -> np.ndarray:
    random.seed(0)
    out = np.empty(n)
    for i in range(n):
        ind = [x]
        tools.mutPolynomialBounded(ind, eta=eta, low=0.0, up=1.0, indpb=1.0)
        out[i] = ind[0]
    return out.astype(np.float32).astype(np.float64)  # genes are float32


def _deap_crossed(n: int, eta: float, parents: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    random.seed(0)
    out = np.empty((n, 2))
    for i in range(n):
        a, b = [parents[0]], [parents[1]]
        tools.cxSimulatedBinaryBounded(a, b, eta=eta, low=0.0, up=1.0)
        out[i] = a[0], b[0]
    return out.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("eta", [15.0, 14.5])  # a whole η + 1 is taken by squaring, another by numpy's power
@pytest.mark.parametrize("rate", [1.0, 0.1])
@pytest.mark.parametrize("x", [0.02, 0.5, 0.97])
def test_bounded_mutation_matches_deap_in_distribution(x, rate, eta):
    n = 4000
    genes = torch.full((2, int(n / rate * 0.6)), x)
    _vary(genes, rate=rate, eta=eta)
    moved = genes.numpy().ravel()
    moved = moved[moved != np.float32(x)].astype(np.float64)
    assert len(moved) > n * 0.9
    assert stats.ks_2samp(moved, _deap_mutated(x, n, eta)).pvalue > 1e-3


def test_unscaled_mutation_is_the_original_formula():
    n = 20000
    genes = torch.full((2, n // 2), 0.5)
    _vary(genes, rate=1.0, variant="unscaled")
    delta = genes.numpy().ravel().astype(np.float64) - 0.5
    u = np.random.default_rng(3).random(n)  # δ = ±(1 - (2v)^(1/16)), v uniform in (0, 1/2]
    reference = np.where(u < 0.5, (2 * u) ** (1 / 16) - 1, 1 - (2 * (1 - u)) ** (1 / 16))
    assert stats.ks_2samp(delta, reference).pvalue > 1e-3
    near = torch.full((2, n // 2), 0.001)  # the step does not shrink near a bound: clamping piles genes at 0
    _vary(near, rate=1.0, variant="unscaled")
    assert (near == 0.0).double().mean().item() > 0.4


@pytest.mark.parametrize("eta", [10.0, 10.5])
def test_sbx_matches_deap_in_distribution(eta):
    n = 3000
    children = torch.empty((2 * n, 1))
    children[0::2], children[1::2] = 0.3, 0.6
    _vary(children, crossover_rate=1.0, crossover_eta=eta)
    a, b = children[0::2, 0].double().numpy(), children[1::2, 0].double().numpy()
    ref = _deap_crossed(n, eta)  # DEAP crosses each gene w.p. 1/2 and swaps the children w.p. 1/2
    assert stats.ks_2samp(a, ref[:, 0]).pvalue > 1e-3 and stats.ks_2samp(b, ref[:, 1]).pvalue > 1e-3
    assert a.min() >= 0 and b.max() <= 1


def test_pairs_cross_and_genes_mutate_at_the_rates_asked():
    n, g = 2000, 50
    parents = torch.rand((n, g), generator=torch.Generator().manual_seed(0))
    crossed = _vary(parents.clone(), crossover_rate=0.3)
    pairs = (crossed != parents).view(n // 2, 2 * g).any(1).double().numpy()
    assert abs(pairs.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / (n // 2))
    genes_moved = (crossed != parents).view(n // 2, 2 * g)[pairs > 0].double().mean().item()
    assert abs(genes_moved - 0.5) < 0.02  # each gene of a crossing pair w.p. 1/2 (both children change)
    mutated = _vary(parents.clone(), rate=0.05)
    assert abs((mutated != parents).double().mean().item() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / (n * g))
    assert _vary(parents.clone(), rate=0.0).equal(parents)
    assert mutated.min() >= 0 and mutated.max() <= 1


def test_an_odd_child_out_only_mutates():
    parents = torch.rand((5, 40), generator=torch.Generator().manual_seed(1))
    children = _vary(parents.clone(), block=4, crossover_rate=1.0)
    assert children[4].equal(parents[4]) and not children[:4].equal(parents[:4])


def test_the_same_bits_for_any_threads_buffer_and_pieces(monkeypatch):
    parents = torch.rand((70, 3000), generator=torch.Generator().manual_seed(2))
    settings = dict(crossover_rate=0.5, rate=0.2, variant="unscaled")
    one = _vary(parents.clone(), threads=1, **settings)
    monkeypatch.setattr(vary_cpu, "MIN_VALUES_A_THREAD", 1)
    assert _vary(parents.clone(), threads=3, **settings).equal(one)
    monkeypatch.setattr(vary_cpu, "BUFFER", 7)  # many small gathers, cut inside pairs and rows
    assert _vary(parents.clone(), threads=2, **settings).equal(one)
    seeds = np.arange(3, dtype=np.int64) * 1_000_003
    pieces = [vary_blocks(parents[a:b].clone(), seeds[a // 32:], 32, crossover_rate=0.5, crossover_eta=10.0,
                          rate=0.2, eta=15.0, variant="unscaled") for a, b in ((0, 32), (32, 70))]
    assert torch.cat(pieces).equal(one)
    assert not _vary(parents.clone(), seed=1, **settings).equal(one)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="variant"):
        _vary(torch.zeros((2, 2)), variant="gaussian")
    with pytest.raises(ValueError, match="odd"):
        _vary(torch.zeros((2, 2)), block=3)


def _ga(population: torch.Tensor, ops, parents, block: int = 32, seed: int = 0, **settings) -> torch.Tensor:
    settings = {"crossover_eta": 10.0, "rate": 0.0, "eta": 15.0, "variant": "bounded", **settings}
    seeds = np.arange(-(-len(ops) // block), dtype=np.int64) * 1_000_003 + seed
    return ga_children(population, np.asarray(ops, dtype=np.int8), np.asarray(parents), seeds, block, **settings)


@pytest.mark.parametrize("eta", [2.0, 2.5])  # a small η: the bounds shape the spread (squared, or numpy's power)
def test_a_ga_crossover_child_is_deaps_first_child_in_distribution(eta):
    """varOr keeps ``ind1`` of cxSimulatedBinaryBounded(ind1, ind2): either side of the spread, by the swap coin,
    whichever parent was the lower."""
    n = 3000
    population = torch.tensor([[0.05], [0.6]])  # the lower near its bound: each side's spread differs
    for first in (0, 1):
        pair = (0.05, 0.6) if first == 0 else (0.6, 0.05)
        parents = np.tile([first, 1 - first], (n, 1))
        child = _ga(population, np.zeros(n), parents, crossover_eta=eta)[:, 0].double().numpy()
        reference = _deap_crossed(n, eta, pair)[:, 0]
        assert stats.ks_2samp(child, reference).pvalue > 1e-3
        assert abs((child != np.float32(pair[0])).mean() - 0.5) < 0.04  # genes cross w.p. 1/2


@pytest.mark.parametrize("x", [0.02, 0.5])
def test_a_ga_mutant_is_deaps_mutpolynomialbounded_in_distribution(x):
    n = 4000
    population = torch.full((1, n), x)
    child = _ga(population, [1], [[0, -1]], rate=1.0)[0].double().numpy()
    assert stats.ks_2samp(child, _deap_mutated(x, n, 15.0)).pvalue > 1e-3


def test_ga_children_cross_mutate_or_copy_as_their_ops_say():
    n, g = 600, 200
    population = torch.rand((40, g), generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    ops = rng.integers(0, 3, size=n)
    parents = np.stack([rng.integers(40, size=n), np.where(ops == 0, rng.integers(40, size=n), -1)], 1)
    parents[ops == 0, 1] = (parents[ops == 0, 0] + 1) % 40  # two parents that differ everywhere (almost surely)
    children = _ga(population, ops, parents, rate=0.05)
    first = population[parents[:, 0]]
    changed = (children != first).double()
    assert torch.equal(children[ops == 2], first[ops == 2])
    assert abs(changed[ops == 1].mean().item() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / ((ops == 1).sum() * g))
    assert abs(changed[ops == 0].mean().item() - 0.5) < 0.02  # crossed genes, and nothing mutated
    partner = population[np.maximum(parents[:, 1], 0)]
    lo, hi = torch.minimum(first, partner), torch.maximum(first, partner)
    crossed = children[ops == 0]
    assert (crossed >= 0).all() and (crossed <= 1).all()
    inside = ((crossed >= lo[ops == 0]) & (crossed <= hi[ops == 0])).double().mean().item()
    assert 0.3 < inside < 1  # SBX spreads around the parents, mostly between them at eta 10


def test_ga_children_are_the_same_bits_for_any_threads_buffer_and_pieces(monkeypatch):
    population = torch.rand((30, 3000), generator=torch.Generator().manual_seed(2))
    rng = np.random.default_rng(1)
    ops = rng.integers(0, 3, size=70)
    parents = np.stack([rng.integers(30, size=70), np.where(ops == 0, rng.integers(30, size=70), -1)], 1)
    settings = dict(rate=0.2, variant="unscaled")
    one = _ga(population, ops, parents, threads=1, **settings)
    monkeypatch.setattr(vary_cpu, "MIN_VALUES_A_THREAD", 1)
    assert _ga(population, ops, parents, threads=3, **settings).equal(one)
    monkeypatch.setattr(vary_cpu, "BUFFER", 7)
    assert _ga(population, ops, parents, threads=2, **settings).equal(one)
    seeds = np.arange(3, dtype=np.int64) * 1_000_003
    pieces = [ga_children(population, ops[a:b].astype(np.int8), parents[a:b], seeds[a // 32:], 32, crossover_eta=10.0,
                          rate=0.2, eta=15.0, variant="unscaled") for a, b in ((0, 32), (32, 70))]
    assert torch.cat(pieces).equal(one)
    assert not _ga(population, ops, parents, seed=1, **settings).equal(one)
    with pytest.raises(ValueError, match="variant"):
        _ga(population, ops, parents, variant="gaussian")
