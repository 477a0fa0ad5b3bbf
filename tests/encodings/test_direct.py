"""Direct encoding: shapes, ranges, determinism, and the vectorised operators against DEAP's."""

from __future__ import annotations

import colorsys
import random

import numpy as np
import pytest
import torch
from deap import tools
from scipy import stats

from fooling.encodings import DirectEncoding
from fooling.encodings.operators import polynomial_mutation, sbx_crossover
from fooling.imaging import hls_to_rgb


def test_random_and_decode_shapes_and_range(rng):
    enc = DirectEncoding((1, 28, 28))
    genomes = enc.random(7, rng)
    assert genomes.shape == (7, 784) and genomes.dtype == np.float32
    images = enc.decode(genomes, torch.device("cpu"))
    assert images.shape == (7, 1, 28, 28)
    assert torch.equal(images.flatten(1), torch.from_numpy(genomes))


def test_colour_genes_read_as_hls(rng):
    enc = DirectEncoding((3, 4, 4), colour="hls")
    genomes = enc.random(3, rng)
    images = enc.decode(genomes, torch.device("cpu"))
    hls = genomes.reshape(3, 3, 4, 4)
    for n in range(3):
        for i, j in [(0, 0), (1, 2), (3, 3)]:
            expected = colorsys.hls_to_rgb(*hls[n, :, i, j])
            assert images[n, :, i, j].numpy() == pytest.approx(expected, abs=1e-5)
    assert torch.equal(DirectEncoding((3, 4, 4), colour="rgb").decode(genomes, "cpu").flatten(1),
                       torch.from_numpy(genomes))


def test_hls_to_rgb_matches_colorsys_everywhere():
    grid = torch.rand(500, 3, generator=torch.Generator().manual_seed(0))
    grid[:20, 2] = 0.0  # grey: saturation 0
    rgb = hls_to_rgb(grid.view(500, 3, 1, 1)).view(500, 3).numpy()
    expected = np.array([colorsys.hls_to_rgb(*row) for row in grid.tolist()])
    np.testing.assert_allclose(rgb, expected, atol=1e-5)


@pytest.mark.parametrize("variant", ["bounded", "unscaled"])
def test_mutation_keeps_genes_in_range_and_rate(variant, rng):
    genes = rng.random((200, 784), dtype=np.float32)
    before = genes.copy()
    polynomial_mutation(genes, rng, rate=0.1, eta=15.0, variant=variant)
    assert genes.min() >= 0.0 and genes.max() <= 1.0
    changed = (genes != before).mean()
    assert 0.09 < changed < 0.11  # about 10 % of genes move


def test_mutate_leaves_parents_untouched_and_is_deterministic():
    enc = DirectEncoding((1, 8, 8), crossover_rate=0.5)
    parents = enc.random(10, np.random.default_rng(0))
    frozen = parents.copy()
    a = enc.vary(parents, np.random.default_rng(5), generation=1)
    b = enc.vary(parents, np.random.default_rng(5), generation=1)
    np.testing.assert_array_equal(parents, frozen)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, parents)


def test_rate_halves_every_k_generations():
    enc = DirectEncoding((1, 4, 4), mutation_rate=0.1, rate_halving_every=1000)
    assert enc.rate_at(0) == 0.1 and enc.rate_at(999) == 0.1
    assert enc.rate_at(1000) == 0.05 and enc.rate_at(2500) == 0.025
    assert DirectEncoding((1, 4, 4), rate_halving_every=0).rate_at(10**6) == 0.1


def _deap_bounded_deltas(x: float, n: int, seed: int = 0) -> np.ndarray:
    random.seed(seed)
    out = np.empty(n)
    for i in range(n):
        ind = [x]
        tools.mutPolynomialBounded(ind, eta=15.0, low=0.0, up=1.0, indpb=1.0)
        out[i] = ind[0] - x
    return out


@pytest.mark.parametrize("x", [0.02, 0.5, 0.97])
def test_bounded_mutation_matches_deap_in_distribution(x):
    n = 4000
    ours = np.full((1, n), x)
    polynomial_mutation(ours, np.random.default_rng(1), rate=1.0, eta=15.0, variant="bounded")
    result = stats.ks_2samp(ours[0] - x, _deap_bounded_deltas(x, n))
    assert result.pvalue > 1e-3


def test_unscaled_mutation_is_the_original_formula():
    n = 20000
    genes = np.full((1, n), 0.5)
    polynomial_mutation(genes, np.random.default_rng(2), rate=1.0, eta=15.0, variant="unscaled")
    delta = genes[0] - 0.5
    # δ = ±(1 - (2v)^(1/16)) for v uniform in (0, 1/2]; its CDF is known in closed form.
    u = np.random.default_rng(3).random(n)
    reference = np.where(u < 0.5, (2 * u) ** (1 / 16) - 1, 1 - (2 * (1 - u)) ** (1 / 16))
    assert stats.ks_2samp(delta, reference).pvalue > 1e-3
    # unlike the bounded form, the step does not shrink near a bound: clamping piles genes at 0
    near = np.full((1, n), 0.001)
    polynomial_mutation(near, np.random.default_rng(4), rate=1.0, eta=15.0, variant="unscaled")
    assert (near == 0.0).mean() > 0.4


def test_sbx_matches_deap_in_distribution():
    n = 3000
    a = np.full((n, 1), 0.3)
    b = np.full((n, 1), 0.6)
    sbx_crossover(a, b, np.random.default_rng(0), eta=10.0)  # DEAP crosses each gene w.p. 1/2
    random.seed(0)
    ref = []
    for _ in range(n):
        i1, i2 = [0.3], [0.6]
        tools.cxSimulatedBinaryBounded(i1, i2, eta=10.0, low=0.0, up=1.0)
        ref.append((i1[0], i2[0]))
    ref = np.array(ref)
    assert stats.ks_2samp(a[:, 0], ref[:, 0]).pvalue > 1e-3
    assert stats.ks_2samp(b[:, 0], ref[:, 1]).pvalue > 1e-3
    assert a.min() >= 0 and b.max() <= 1


def test_arrays_round_trip(rng):
    enc = DirectEncoding((1, 5, 5))
    genomes = enc.random(4, rng)
    np.testing.assert_array_equal(enc.from_arrays(enc.to_arrays(genomes)), genomes)
    with pytest.raises(ValueError):
        DirectEncoding((1, 6, 6)).from_arrays(enc.to_arrays(genomes))


@pytest.mark.parametrize("threads", [2, 3])
def test_operators_give_the_same_genes_on_any_number_of_threads(threads, monkeypatch):
    from fooling.encodings import operators

    def vary(genes_a: np.ndarray, genes_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(11)
        a, b = genes_a.copy(), genes_b.copy()
        sbx_crossover(a, b, rng, eta=10.0)
        polynomial_mutation(a, rng, rate=0.3, eta=5.0, variant="unscaled")
        polynomial_mutation(b, rng, rate=0.3, eta=15.0, variant="bounded")
        return a, b, rng.random()

    start = np.random.default_rng(0).random((2, 6, 500), dtype=np.float32)
    start[1, :, :50] = start[0, :, :50]  # equal parents do not cross
    alone = vary(*start)
    monkeypatch.setattr(operators, "PARALLEL_MIN", 2)
    monkeypatch.setattr(operators, "_threads", lambda: threads)
    split = vary(*start)
    for x, y in zip(alone, split):
        np.testing.assert_array_equal(x, y)
