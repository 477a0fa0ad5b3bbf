"""CPPN genomes: construction, validity checks, the Encoding contract, array and JSON round trips."""

from __future__ import annotations

import io
import json
from functools import partial

import numpy as np
import pytest
import torch

from fooling.settings.evolve import EvolveSettings
from fooling.encodings import make_encoding
from fooling.encodings.cppn import CPPNEncoding, Genome, Style, genome_from_json
from fooling.encodings.cppn.genome import NUM_INPUTS, WEIGHT_RANGE, check_genome, initial_genome, make_genome

from helpers import mutated_cppns

evolved = partial(mutated_cppns, n=30, generations=25)


def assert_same(a: list[Genome], b: list[Genome]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.same_as(y)


@pytest.mark.parametrize("outputs", [1, 3])
def test_initial_genome_wires_every_input_to_every_output(outputs: int) -> None:
    g = initial_genome(outputs, np.random.default_rng(1))
    check_genome(g, outputs, max_hidden=0)
    assert g.num_hidden == 0 and g.num_outputs == outputs
    pairs = set(zip(g.sources.tolist(), g.targets.tolist()))
    assert pairs == {(i, NUM_INPUTS + o) for i in range(NUM_INPUTS) for o in range(outputs)}
    assert np.all(np.abs(g.weights) <= WEIGHT_RANGE) and len(np.unique(g.weights)) == len(g.weights)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(sources=[4], targets=[4], weights=[1.0]), "starts outside"),  # output as a source
        (dict(hidden=[0, 1], sources=[5], targets=[4], weights=[1.0]), "backwards"),  # hidden 5 -> hidden 4
        (dict(sources=[0, 0], targets=[4, 4], weights=[1.0, 2.0]), "duplicate"),
        (dict(sources=[0], targets=[3], weights=[1.0]), "ends outside"),  # into an input
        (dict(sources=[0], targets=[4], weights=[10.5]), "weight outside"),
        (dict(sources=[0], targets=[4], weights=[np.nan]), "weight outside"),
        (dict(hidden=[4]), "unknown node function"),
    ],
)
def test_check_genome_rejects_malformed_networks(change: dict, message: str) -> None:
    parts = dict(hidden=[], outputs=[0], sources=[], targets=[], weights=[])
    parts.update(change)
    with pytest.raises(ValueError, match=message):
        check_genome(make_genome(**parts))


def test_from_config_reads_presets_and_channels() -> None:
    paper = CPPNEncoding.from_config(EvolveSettings(encoding="cppn", preset="paper"), (1, 28, 28))
    assert paper.style == Style("pixel", "grey", (28, 28))
    default = make_encoding(EvolveSettings(encoding="cppn").resolved(), (3, 64, 48))
    assert isinstance(default, CPPNEncoding)
    assert default.style == Style("scaled", "hls", (64, 48))
    rgb = CPPNEncoding.from_config(EvolveSettings(encoding="cppn", colour="rgb", cppn_max_hidden=7), (3, 8, 8))
    assert rgb.style.colour == "rgb" and rgb.rates.max_hidden == 7
    settings = paper.settings()
    assert settings["name"] == "cppn" and settings["coords"] == "pixel" and settings["colour"] == "grey"
    assert settings["add_connection"] == 0.5 and settings["delete_node"] == 0.2 and settings["max_hidden"] == 200
    assert settings["weight_mutation"] == "unscaled"  # the paper preset's polynomial variant
    json.dumps(settings)


def test_encoding_contract() -> None:
    enc = CPPNEncoding((3, 12, 10))
    rng = np.random.default_rng(0)
    parents = enc.random(6, rng)
    assert enc.size(parents) == 6
    before = [g.copy() for g in parents]
    children = enc.mutate(parents, rng, 0)
    assert_same(parents, before)  # parents untouched
    images = enc.decode(children, torch.device("cpu"))
    assert images.shape == (6, 3, 12, 10) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert enc.decode([], torch.device("cpu")).shape == (0, 3, 12, 10)
    picked = enc.pick(children, 2)
    assert picked.same_as(children[2])
    assert type(picked) is Genome  # an archive's elite holds its own arrays, not a view of a generation's
    for name in ("hidden", "outputs", "sources", "targets", "weights"):
        assert not np.shares_memory(getattr(picked, name), getattr(children[2], name))
    assert enc.stack([picked, children[0]])[0] is picked
    a, b = enc.crossover(parents[:2], parents[2:4], rng)  # no crossover: copies
    assert_same(a, parents[:2]) and assert_same(b, parents[2:4])


def test_random_is_deterministic_for_a_seed() -> None:
    enc = CPPNEncoding((1, 8, 8))
    assert_same(evolved(enc, seed=5), evolved(enc, seed=5))
    assert not evolved(enc, seed=5)[0].same_as(evolved(enc, seed=6)[0])


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8)])
def test_array_round_trip_is_exact_and_pickle_free(shape: tuple[int, int, int]) -> None:
    enc = CPPNEncoding(shape)
    genomes = evolved(enc) + [make_genome([], [1] * shape[0], [], [], [])]  # include an unwired one
    arrays = enc.to_arrays(genomes)
    assert all(a.dtype.kind in "iuf" for a in arrays.values())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        restored = enc.from_arrays(dict(loaded))
    assert_same(restored, genomes)
    assert enc.to_arrays([])["weights"].shape == (0, 0)
    assert enc.from_arrays(enc.to_arrays([])) == []


def test_from_arrays_rejects_bad_tables() -> None:
    enc = CPPNEncoding((1, 8, 8))
    arrays = enc.to_arrays(evolved(enc, n=3, generations=5))
    with pytest.raises(ValueError, match="outputs"):
        CPPNEncoding((3, 8, 8)).from_arrays(arrays)
    broken = dict(arrays, targets=np.zeros_like(arrays["targets"]))
    with pytest.raises(ValueError):
        enc.from_arrays(broken)
    with pytest.raises(ValueError, match="lack"):
        enc.from_arrays({k: v for k, v in arrays.items() if k != "weights"})


@pytest.mark.parametrize("shape, preset", [((1, 28, 28), "paper"), ((3, 16, 24), "default")])
def test_json_round_trip_is_exact(shape: tuple[int, int, int], preset: str) -> None:
    enc = CPPNEncoding.from_config(EvolveSettings(encoding="cppn", preset=preset), shape)
    for genome in evolved(enc, n=10):
        data = json.loads(json.dumps(enc.genome_json(genome)))
        assert data["coords"] == enc.style.coords and data["channels"] == shape[0]
        restored, style = genome_from_json(data)
        assert restored.same_as(genome) and style == enc.style


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="other"), "not a CPPN genome"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.pop("connections"), "lacks connections"),
        (lambda d: d.update(channels=2), "channels"),
        (lambda d: d.update(coords="polar"), "coords"),
        (lambda d: d.update(size=[0, 4]), "size"),
        (lambda d: d.update(hidden=["cosine"]), "function names"),
        (lambda d: d.update(connections=[[0, 4, "1"]]), "source, target, weight"),
        (lambda d: d.update(connections=[[0.5, 4, 1.0]]), "whole"),
        (lambda d: d.update(connections=[[4, 0, 1.0]]), "outside"),
        (lambda d: d.update(connections=[[0, 4, 11.0]]), "weight outside"),
        (lambda d: d.update(connections=[[0, 4, 10 ** 400]]), "weight outside"),  # too big for a float64
    ],
)
def test_genome_from_json_rejects_malformed_data(edit, message: str) -> None:
    enc = CPPNEncoding((1, 8, 8))
    data = enc.genome_json(evolved(enc, n=1, generations=0)[0])
    edit(data)
    with pytest.raises(ValueError, match=message):
        genome_from_json(data)
    with pytest.raises(ValueError, match="not a CPPN genome"):
        genome_from_json([1, 2])
