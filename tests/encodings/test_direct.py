"""Direct encoding: shapes, ranges, determinism, and the vectorised torch operators against DEAP's.

The operators run on the run's device; the CPU and CUDA code paths differ (sparse positions on the
CPU, dense draws elsewhere), so each distribution test runs both paths on the CPU and on CUDA where there is
one (``DEVICES``: the CUDA ones skip without a GPU).
"""

from __future__ import annotations

import colorsys
import random

import numpy as np
import pytest
import torch
from deap import tools
from scipy import stats

from fooling.encodings import DirectEncoding
from fooling.encodings.operators import (polynomial_mutation, polynomial_mutation_torch, sbx_crossover,
                                         sbx_crossover_torch)
from fooling.imaging import hls_to_rgb
from helpers import DEVICES



def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def test_random_and_decode_shapes_and_range(rng):
    enc = DirectEncoding((1, 28, 28))
    genomes = enc.random(7, _gen(0))
    assert genomes.shape == (7, 784) and genomes.dtype == torch.float32 and genomes.device.type == "cpu"
    images = enc.decode(genomes, torch.device("cpu"))
    assert images.shape == (7, 1, 28, 28)
    assert torch.equal(images.flatten(1), genomes)
    assert torch.equal(enc.decode(genomes.numpy(), "cpu"), images)  # host arrays decode too
    assert torch.equal(enc.random(7, _gen(0)), genomes)  # same generator state, same genomes


def test_colour_genes_read_as_hls(rng):
    enc = DirectEncoding((3, 4, 4), colour="hls")
    genomes = enc.random(3, rng)  # a numpy Generator seeds a torch one
    images = enc.decode(genomes, torch.device("cpu"))
    hls = genomes.numpy().reshape(3, 3, 4, 4)
    for n in range(3):
        for i, j in [(0, 0), (1, 2), (3, 3)]:
            expected = colorsys.hls_to_rgb(*hls[n, :, i, j])
            assert images[n, :, i, j].numpy() == pytest.approx(expected, abs=1e-5)
    assert torch.equal(DirectEncoding((3, 4, 4), colour="rgb").decode(genomes, "cpu").flatten(1),
                       genomes)


def test_hls_to_rgb_matches_colorsys_everywhere():
    grid = torch.rand(500, 3, generator=torch.Generator().manual_seed(0))
    grid[:20, 2] = 0.0  # grey: saturation 0
    rgb = hls_to_rgb(grid.view(500, 3, 1, 1)).view(500, 3).numpy()
    expected = np.array([colorsys.hls_to_rgb(*row) for row in grid.tolist()])
    np.testing.assert_allclose(rgb, expected, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("variant", ["bounded", "unscaled"])
def test_mutation_keeps_genes_in_range_and_rate(variant, device):
    genes = torch.rand((200, 784), generator=_gen(1, device), device=device)
    before = genes.clone()
    polynomial_mutation_torch(genes, _gen(2, device), rate=0.1, eta=15.0, variant=variant)
    assert genes.min() >= 0.0 and genes.max() <= 1.0
    changed = (genes != before).double().mean().item()
    assert 0.09 < changed < 0.11  # about 10 % of genes move


@pytest.mark.parametrize("variant", ["bounded", "unscaled"])
def test_numpy_mutation_for_host_genomes_keeps_rate(variant, rng):
    genes = rng.random((200, 784), dtype=np.float32)  # CPPN weights still vary on the host
    before = genes.copy()
    polynomial_mutation(genes, rng, rate=0.1, eta=15.0, variant=variant)
    assert genes.min() >= 0.0 and genes.max() <= 1.0
    assert 0.09 < (genes != before).mean() < 0.11


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_mutate_leaves_parents_untouched_and_is_deterministic(device):
    enc = DirectEncoding((1, 8, 8), crossover_rate=0.5, device=device)
    parents = enc.random(10, _gen(0, device))
    frozen = parents.clone()
    a = enc.vary(parents, _gen(5, device), generation=1)
    b = enc.vary(parents, _gen(5, device), generation=1)
    assert torch.equal(parents, frozen)
    assert torch.equal(a, b) and a.device == parents.device
    assert not torch.equal(a, parents)
    owned = parents.clone()
    assert torch.equal(enc.vary_owned(owned, _gen(5, device), generation=1), a)  # in place: the same children


def test_vary_crosses_only_the_chosen_pairs():
    enc = DirectEncoding((1, 4, 4), crossover_rate=1.0, mutation_rate=0.0)
    parents = torch.cat([torch.zeros(1, 16), torch.ones(1, 16), torch.full((1, 16), 0.5), torch.full((1, 16), 0.5)])
    children = enc.vary(parents, _gen(0), generation=1)
    assert not torch.equal(children[:2], parents[:2])  # the differing pair crossed somewhere
    assert torch.equal(children[2:], parents[2:])  # equal parents do not cross
    assert torch.equal(children[0] + children[1], torch.ones(16))  # SBX at the bounds: values mirror
    none = DirectEncoding((1, 4, 4), crossover_rate=1e-12, mutation_rate=0.0)
    assert torch.equal(none.vary(parents, _gen(0), generation=1), parents)


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


def _mutated_only(x: float, n: int, variant: str, device: str, rate: float, seed: int) -> np.ndarray:
    """Deltas of the genes that mutated, from genes all equal to ``x`` (rate < 1 tests the rate-scaled draws)."""
    genes = torch.full((1, int(n / rate * 1.2)), x, device=device)
    polynomial_mutation_torch(genes, _gen(seed, device), rate=rate, eta=15.0, variant=variant)
    delta = (genes[0] - torch.tensor(x, dtype=torch.float32)).double().cpu().numpy()
    moved = genes[0].cpu().numpy() != np.float32(x)
    return delta[moved][:n] if rate < 1 else delta[:n]


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("rate", [1.0, 0.1])
@pytest.mark.parametrize("x", [0.02, 0.5, 0.97])
def test_bounded_mutation_matches_deap_in_distribution(x, rate, device):
    n = 4000
    ours = _mutated_only(x, n, "bounded", device, rate, seed=1)
    assert len(ours) == n
    result = stats.ks_2samp(ours, _deap_bounded_deltas(x, n))
    assert result.pvalue > 1e-3


@pytest.mark.parametrize("x", [0.02, 0.5])
def test_numpy_bounded_mutation_matches_deap_in_distribution(x):
    n = 4000
    ours = np.full((1, n), x)
    polynomial_mutation(ours, np.random.default_rng(1), rate=1.0, eta=15.0, variant="bounded")
    assert stats.ks_2samp(ours[0] - x, _deap_bounded_deltas(x, n)).pvalue > 1e-3


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_unscaled_mutation_is_the_original_formula(device):
    n = 20000
    delta = _mutated_only(0.5, n, "unscaled", device, 1.0, seed=2)
    # δ = ±(1 - (2v)^(1/16)) for v uniform in (0, 1/2]; its CDF is known in closed form.
    u = np.random.default_rng(3).random(n)
    reference = np.where(u < 0.5, (2 * u) ** (1 / 16) - 1, 1 - (2 * (1 - u)) ** (1 / 16))
    assert stats.ks_2samp(delta, reference).pvalue > 1e-3
    # unlike the bounded form, the step does not shrink near a bound: clamping piles genes at 0
    near = torch.full((1, n), 0.001, device=device)
    polynomial_mutation_torch(near, _gen(4, device), rate=1.0, eta=15.0, variant="unscaled")
    assert (near == 0.0).double().mean().item() > 0.4


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_sbx_matches_deap_in_distribution(device):
    n = 3000
    a = torch.full((n, 1), 0.3, device=device)
    b = torch.full((n, 1), 0.6, device=device)
    sbx_crossover_torch(a, b, _gen(0, device), eta=10.0)  # DEAP crosses each gene w.p. 1/2
    a, b = a.double().cpu().numpy(), b.double().cpu().numpy()
    random.seed(0)
    ref = []
    for _ in range(n):
        i1, i2 = [0.3], [0.6]
        tools.cxSimulatedBinaryBounded(i1, i2, eta=10.0, low=0.0, up=1.0)
        ref.append((i1[0], i2[0]))
    ref = np.array(ref)
    ref = ref.astype(np.float32).astype(np.float64)  # genes are float32: an uncrossed 0.3 reads 0.30000001
    assert stats.ks_2samp(a[:, 0], ref[:, 0]).pvalue > 1e-3
    assert stats.ks_2samp(b[:, 0], ref[:, 1]).pvalue > 1e-3
    assert a.min() >= 0 and b.max() <= 1


def test_numpy_sbx_matches_deap_in_distribution():
    n = 3000
    a, b = np.full((n, 1), 0.3), np.full((n, 1), 0.6)
    sbx_crossover(a, b, np.random.default_rng(0), eta=10.0)
    random.seed(0)
    ref = []
    for _ in range(n):
        i1, i2 = [0.3], [0.6]
        tools.cxSimulatedBinaryBounded(i1, i2, eta=10.0, low=0.0, up=1.0)
        ref.append((i1[0], i2[0]))
    ref = np.array(ref)
    assert stats.ks_2samp(a[:, 0], ref[:, 0]).pvalue > 1e-3


def test_arrays_round_trip(rng):
    enc = DirectEncoding((1, 5, 5))
    genomes = enc.random(4, rng)
    arrays = enc.to_arrays(genomes)
    assert isinstance(arrays["genes"], np.ndarray) and arrays["genes"].dtype == np.float32
    assert torch.equal(enc.from_arrays(arrays), genomes)
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


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_sbx_on_pairs_of_a_population_matches_deap_in_distribution(device):
    n = 3000
    children = torch.empty((2 * n + 1, 2), device=device)  # an odd one out that never crosses
    children[0::2], children[1::2] = 0.3, 0.6
    children[-1] = 0.9
    rows = torch.ones(n, dtype=torch.bool, device=device)
    rows[::3] = False  # these pairs stay as they are
    from fooling.encodings.operators import sbx_pairs_torch

    sbx_pairs_torch(children, rows, _gen(0, device), eta=10.0)
    out = children.cpu().double().numpy()
    assert np.all(out[0:6 * (n // 3):6] == np.float32(0.3)) and out[-1, 0] == np.float32(0.9)
    crossed = np.flatnonzero(rows.cpu().numpy())
    a, b = out[2 * crossed, 0], out[2 * crossed + 1, 0]
    random.seed(0)
    ref = []
    for _ in range(len(crossed)):
        i1, i2 = [0.3], [0.6]
        tools.cxSimulatedBinaryBounded(i1, i2, eta=10.0, low=0.0, up=1.0)
        ref.append((i1[0], i2[0]))
    ref = np.array(ref).astype(np.float32).astype(np.float64)
    assert stats.ks_2samp(a, ref[:, 0]).pvalue > 1e-3 and stats.ks_2samp(b, ref[:, 1]).pvalue > 1e-3
    assert np.all(out[2 * crossed + 1, 1] >= 0) and out.max() <= 1


def test_compile_setting_reaches_the_hls_decode(monkeypatch):
    from fooling import imaging
    from fooling.encodings import make_encoding
    from fooling.settings.evolve import EvolveSettings

    seen = []
    monkeypatch.setattr(imaging, "_fused", [lambda hls: seen.append(hls.shape) or imaging._hls_to_rgb(hls)])
    genomes = torch.rand(3, 3 * 16 * 16, generator=torch.Generator().manual_seed(0))
    plain = make_encoding(EvolveSettings(encoding="direct").resolved(), (3, 16, 16))
    fused = make_encoding(EvolveSettings(encoding="direct", compile=True).resolved(), (3, 16, 16))
    assert torch.equal(fused.decode(genomes, torch.device("cpu")), plain.decode(genomes, torch.device("cpu")))
    assert seen == [(3, 3, 16, 16)]  # only the compiled encoding went through the fused function
