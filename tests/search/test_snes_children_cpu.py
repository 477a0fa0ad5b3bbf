"""The CPU's compiled pass for snes-elites' children: the same bits as PyTorch's sum and clamp, on any threads, and
their RGB images the same bits as decoding them; an in-process run that reads its rows in place equals one that ships
gathered plans (as Ray workers get them)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from fooling.archive import Archive
from fooling.encodings import DirectEncoding
from fooling.search import SnesElites
from fooling.search.blocks import Plan, mean_plus_step, one_pass, realise
from fooling.hls_cpu import hls_to_rgb_cpu
from fooling.search.snes_children_cpu import COMPILED, snes_children, snes_children_rgb

pytestmark = pytest.mark.skipif(not COMPILED, reason="numba does not compile here (NUMBA_DISABLE_JIT)")


def _reference(means, mean_rows, sigma, sigma_rows, noise, scale, shape, elites, elite_rows):
    drawn = torch.stack([elites[e] if e >= 0 else means[m] for m, e in zip(mean_rows, elite_rows)])
    children = mean_plus_step(drawn, sigma[torch.as_tensor(sigma_rows)], noise, scale, shape)
    return children.reshape(-1, drawn.shape[1]).clamp_(0.0, 1.0)


@pytest.mark.parametrize("shape,scale", [((3, 256, 256), 2), ((1, 128, 128), 4), ((3, 128, 192), 1),
                                         ((2, 132, 144), 3)])
def test_children_are_the_same_bits_as_pytorch_s_sum_and_clamp(shape, scale):
    gen = torch.Generator().manual_seed(sum(shape) + scale)
    c, h, w = shape
    genes, dims = c * h * w, c * (h // scale) * (w // scale)
    means = torch.rand(9, genes, generator=gen) * 1.4 - 0.2  # beyond [0, 1] too: the clamp matters
    elites = torch.rand(5, genes, generator=gen)
    sigma = torch.rand(9, dims, generator=gen) * 0.3
    k, n = 4, 4
    first = torch.randn(k, n // 2, dims, generator=gen)
    noise = torch.cat([first, -first], dim=1)  # mirrored, as snes-elites draws it
    mean_rows, sigma_rows = np.array([7, 0, 3, 7]), np.array([2, 8, 3, 2])
    elite_rows = np.array([-1, 4, -1, 0])  # emitters 1 and 3 restart at an elite
    means[3, 5] = float("nan")  # NaN stays NaN, as torch.clamp keeps it
    got = snes_children(means, mean_rows, sigma, sigma_rows, noise, scale, shape, elites, elite_rows)
    want = _reference(means, mean_rows, sigma, sigma_rows, noise, scale, shape, elites, elite_rows)
    assert got.shape == (k * n, genes) and got.dtype == torch.float32
    nan = torch.isnan(want)
    assert torch.equal(torch.isnan(got), nan) and int(nan.sum()) == n  # emitter 2's four children, one pixel each
    assert torch.equal(got[~nan].view(torch.int32), want[~nan].view(torch.int32))
    assert 0.0 < float((want[~nan] == 0.0).float().mean()) and 0.0 < float((want[~nan] == 1.0).float().mean())


@pytest.mark.parametrize("shape,scale,n", [((3, 256, 256), 2, 2), ((1, 128, 128), 4, 4), ((2, 132, 144), 3, 6)])
def test_mirrored_pairs_made_together_are_the_same_bits(shape, scale, n):
    """Children j and j + n / 2 are made in one pass (m + s * e and m - s * e): the same bits as the reference on
    the mirrored draws, and the second half of the draws is not read; an odd count is refused."""
    gen = torch.Generator().manual_seed(n + scale)
    c, h, w = shape
    genes, dims = c * h * w, c * (h // scale) * (w // scale)
    means = torch.rand(5, genes, generator=gen) * 1.4 - 0.2
    sigma = torch.rand(5, dims, generator=gen) * 0.3
    first = torch.randn(3, n // 2, dims, generator=gen)
    noise = torch.cat([first, -first], dim=1)
    rows = np.array([4, 0, 2])
    means[0, 7] = float("nan")
    want = _reference(means, rows, sigma, rows, noise, scale, shape, means, np.full(3, -1))
    unread = noise.clone()
    unread[:, n // 2:] = float("nan")
    got = snes_children(means, rows, sigma, rows, unread, scale, shape)
    nan = torch.isnan(want)
    assert torch.equal(torch.isnan(got), nan) and int(nan.sum()) == n
    assert torch.equal(got[~nan].view(torch.int32), want[~nan].view(torch.int32))
    with pytest.raises(ValueError, match="even"):
        snes_children(means, rows, sigma, rows, noise[:, :n - 1], scale, shape)


def test_the_children_do_not_depend_on_the_threads():
    gen = torch.Generator().manual_seed(3)
    shape, scale = (3, 256, 256), 2
    means, sigma = torch.rand(6, 3 * 256 * 256, generator=gen), torch.rand(6, 3 * 128 * 128, generator=gen) * 0.1
    first = torch.randn(6, 1, 3 * 128 * 128, generator=gen)
    noise = torch.cat([first, -first], dim=1)
    rows = np.arange(6)[::-1].copy()
    one, two = (snes_children(means, rows, sigma, rows, noise, scale, shape, threads=t) for t in (1, 2))
    assert torch.equal(one, two)


@pytest.mark.parametrize("shape,scale,n,threads", [((3, 256, 256), 2, 2, 1), ((3, 256, 256), 2, 2, 2),
                                                   ((3, 132, 144), 3, 4, 2)])
def test_children_converted_in_the_pass_are_decode_s_images_bit_for_bit(shape, scale, n, threads):
    gen = torch.Generator().manual_seed(scale + n)
    c, h, w = shape
    genes, dims = c * h * w, c * (h // scale) * (w // scale)
    means = torch.rand(7, genes, generator=gen) * 1.4 - 0.2  # clipped children: hues of 0 and 1 too
    elites = torch.rand(3, genes, generator=gen)
    sigma = torch.rand(7, dims, generator=gen) * 0.3
    first = torch.randn(4, n // 2, dims, generator=gen)
    noise = torch.cat([first, -first], dim=1)
    rows, elite_rows = np.array([6, 1, 3, 0]), np.array([-1, 2, -1, 0])
    children, images = snes_children_rgb(means, rows, sigma, rows, noise, scale, shape, elites, elite_rows,
                                         threads=threads)
    assert torch.equal(children, snes_children(means, rows, sigma, rows, noise, scale, shape, elites, elite_rows))
    assert images.shape == (4 * n, *shape) and images.dtype == torch.float32
    decoded = hls_to_rgb_cpu(children.view(-1, *shape))
    assert torch.equal(images.view(torch.int32), decoded.view(torch.int32))
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0 and float(images.std()) > 0.1
    means[rows[0], 5] = float("nan")  # a NaN hue: no images (decode converts the children as PyTorch does)
    nan_children, none = snes_children_rgb(means, rows, sigma, rows, noise, scale, shape, elites, elite_rows)
    assert none is None and bool(torch.isnan(nan_children[0, 5]))
    with pytest.raises(ValueError, match="3 channels"):
        snes_children_rgb(means[:, :genes // 3], rows, sigma[:, :dims // 3], rows, noise[..., :dims // 3], scale,
                          (1, h, w))


def test_an_in_process_ask_hands_decode_its_images_and_decode_uses_them_only_for_that_batch_unchanged():
    encoding = DirectEncoding((3, 128, 128))
    archive = Archive(encoding, CELLS, [str(c) for c in CELLS])
    strategy = SnesElites(archive, np.random.default_rng(4), population=8, initial_population=8, start=0.5,
                          generator=torch.Generator().manual_seed(4))
    children = strategy.ask()
    kept = encoding._decoded[2]
    images = encoding.decode(children, torch.device("cpu"))
    assert images is kept and encoding._decoded is None  # used once, then let go
    assert torch.equal(images, hls_to_rgb_cpu(children.view(-1, 3, 128, 128)))
    assert encoding.decode(children, torch.device("cpu")) is not kept  # a second decode converts again
    children = strategy.ask()
    kept = encoding._decoded[2]
    children.mul_(0.5)  # written in place after its ask: the kept images are not its images any more
    assert not torch.equal(encoding.decode(children, torch.device("cpu")), kept)
    children = strategy.ask()
    other, kept = children.clone(), encoding._decoded[2]
    images = encoding.decode(other, torch.device("cpu"))  # another tensor (the same values): converted again
    assert images is not kept and torch.equal(images, kept)
    for colour_or_compile in (DirectEncoding((3, 128, 128), colour="rgb"), DirectEncoding((3, 128, 128), compile=True),
                              DirectEncoding((1, 128, 128))):
        assert not colour_or_compile.decodes_hls_on_cpu
    assert encoding.decodes_hls_on_cpu
    strategy.ask()
    assert pickle.loads(pickle.dumps(encoding))._decoded is None  # a pickled copy carries no images


def test_where_the_pass_is_used():
    cpu = torch.device("cpu")
    assert one_pass((3, 256, 256), 2, cpu) and one_pass((3, 128, 128), 1, cpu)
    assert not one_pass((1, 28, 28), 2, cpu)  # MNIST's short rows: PyTorch's gathered path
    assert not one_pass((3, 256, 255), 2, cpu)  # rows not in whole blocks
    assert not one_pass((3, 256, 256), 2, torch.device("meta"))  # off the host: the device's kernels


CELLS = list(range(8))


class _Shipped(SnesElites):
    """Reference: every generation from a plan with gathered rows, as a Ray worker is sent it."""

    def ask(self):
        return self.take(self.plan())


def _fitness(genomes: torch.Tensor) -> torch.Tensor:
    """(N, 8) float64 stand-in confidences: class c rewards chunk c of the genes and, less, all of them (so one
    emitter's children often beat another class's elite: restarts)."""
    chunks = genomes.view(len(genomes), len(CELLS), -1).mean(-1).double()
    return 0.5 * chunks + 0.5 * genomes.mean(-1, keepdim=True).double()


@pytest.mark.parametrize("start", [0.5, -1.0])
def test_an_in_process_run_reading_rows_in_place_equals_one_of_shipped_plans(start):
    def strategy(kind):
        archive = Archive(DirectEncoding((3, 128, 128)), CELLS, [str(c) for c in CELLS])
        return kind(archive, np.random.default_rng(5), population=8, initial_population=8, start=start,
                    generator=torch.Generator().manual_seed(5))

    in_place, shipped = strategy(SnesElites), strategy(_Shipped)
    restarts_read = 0
    for _ in range(25):
        plan = in_place.plan(in_place=True)
        if in_place.started or start >= 0:
            assert plan.in_place is not None
            restarts_read += int((plan.in_place.elite_rows >= 0).sum())
        ours, theirs = in_place.take(plan), shipped.ask()
        assert torch.equal(ours, theirs)
        if plan.kind == "snes":  # the in-place plan's draws come without their mirror, which its tell never reads
            assert in_place._noise.shape[1] == 1 and shipped._noise.shape[1] == 2
            assert torch.equal(in_place._noise[:, 0], shipped._noise[:, 0])
        for s, genomes in ((in_place, ours), (shipped, theirs)):
            s.tell(genomes, _fitness(genomes))
        assert torch.equal(in_place.mean, shipped.mean) and torch.equal(in_place.sigma, shipped.sigma)
        assert torch.equal(in_place.restarting, shipped.restarting)
        np.testing.assert_array_equal(in_place.archive.fitness, shipped.archive.fitness)
        assert torch.equal(in_place.archive.elites(CELLS), shipped.archive.elites(CELLS))
    assert restarts_read > 0  # some emitters sampled around their cell's elite, read in place
    with pytest.raises(ValueError, match="in place"):
        in_place.plan(in_place=True).piece(0, 2)


def test_a_shipped_plan_of_wide_images_realises_in_pieces_as_whole_through_the_pass():
    """What a Ray actor does with its piece of a gathered plan: the compiled pass over its emitters' rows."""
    shape, scale, per = (3, 4, 128), 2, 4
    genes, dims = 3 * 4 * 128, 3 * 2 * 64
    g = torch.Generator().manual_seed(1)
    mean, sigma = torch.rand(5, genes, generator=g), torch.rand(5, dims, generator=g)
    plan = Plan("snes", 5 * per, per, np.arange(5, dtype=np.int64) + 40, cells=torch.arange(5), mean=mean,
                sigma=sigma, scale=scale)
    encoding = DirectEncoding(shape)
    assert one_pass(shape, scale, torch.device("cpu"))
    whole, noise = realise(plan, encoding)
    expected = mean_plus_step(mean, sigma, noise, scale, shape).reshape(-1, genes).clamp(0.0, 1.0)
    assert torch.equal(whole, expected)
    pieces = [realise(plan.piece(a, b), encoding)[0] for a, b in ((0, 8), (8, 12), (12, 20))]
    assert torch.equal(torch.cat(pieces), whole)
