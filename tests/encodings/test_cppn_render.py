"""CPPN drawing: the batched renderer equals the per-genome reference; coordinates; `fool render`."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fooling.cli.render import command
from fooling.encodings.cppn import CPPNEncoding, Genome, Style, render
from fooling.encodings.cppn.genome import initial_genome, make_genome
from fooling.encodings.cppn.render import compile_population, coordinates, run_program
from helpers import read_png, render_reference
from fooling.errors import FoolingError

from helpers import mutated_cppns

CPU = torch.device("cpu")

population = partial(mutated_cppns, n=24, generations=40)


def reference(genomes: list[Genome], style: Style, size: tuple[int, int] | None = None) -> torch.Tensor:
    return torch.stack([render_reference(g, style, size) for g in genomes])


@pytest.mark.parametrize("coords", ["scaled", "pixel"])
@pytest.mark.parametrize("shape, colour", [((1, 28, 28), "hls"), ((3, 20, 14), "hls"), ((3, 9, 16), "rgb")])
def test_batched_renderer_equals_reference(coords: str, shape: tuple[int, int, int], colour: str) -> None:
    enc = CPPNEncoding(shape, coords=coords, colour=colour)
    genomes = population(enc)
    assert len({g.num_hidden for g in genomes}) > 5  # differing topologies in one batch
    batched = render(genomes, enc.style, CPU, dtype=torch.float64)
    assert torch.allclose(batched, reference(genomes, enc.style), rtol=0, atol=1e-5)


def test_float32_decode_matches_reference() -> None:
    """decode runs in float32; with scaled coordinates the pre-activations stay small enough for 1e-4."""
    enc = CPPNEncoding((3, 28, 28))
    genomes = population(enc, seed=1)
    images = enc.decode(genomes, CPU)
    assert images.dtype == torch.float32
    assert torch.allclose(images.double(), reference(genomes, enc.style), rtol=0, atol=1e-4)


def test_other_sizes_redraw_the_same_picture() -> None:
    for coords in ("scaled", "pixel"):
        enc = CPPNEncoding((1, 15, 15), coords=coords)
        genomes = population(enc, n=6, seed=2)
        small = render(genomes, enc.style, CPU, dtype=torch.float64)
        large = render(genomes, enc.style, CPU, size=(29, 29), dtype=torch.float64)
        assert torch.allclose(large[..., ::2, ::2], small, atol=1e-9)  # every other pixel of 2n-1 lies on the grid
        assert torch.allclose(large, reference(genomes, enc.style, (29, 29)), atol=1e-5)


def test_pixel_chunks_and_batch_company_do_not_change_pixels() -> None:
    enc = CPPNEncoding((3, 16, 16))
    genomes = population(enc, seed=3)
    program = compile_population(genomes)
    coords = coordinates(enc.style)
    whole = run_program(program, coords, CPU)
    chunked = run_program(program, coords, CPU, chunk_elements=program.rows * 100)  # 3 chunks
    assert torch.equal(whole, chunked)
    for colour in ("hls", "rgb", "grey"):  # one chunk maps the gathered outputs in place, several chunk by chunk
        assert torch.equal(run_program(program, coords, CPU, colour=colour),
                           run_program(program, coords, CPU, chunk_elements=program.rows * 100, colour=colour))
    alone = torch.cat([run_program(compile_population([g]), coords, CPU) for g in genomes])
    assert torch.allclose(alone, whole, rtol=0, atol=1e-6)


def test_colour_drawn_from_the_node_rows_equals_the_outputs_mapped(monkeypatch) -> None:
    """On the CPU an HLS population's outputs go from the node values to RGB in one compiled pass (no gathered
    copy): the same bits as the outputs gathered, then colour_map; and where that pass declines a chunk, it is
    mapped as before."""
    from fooling import hls_cpu
    from fooling.encodings.cppn.style import colour_map

    enc = CPPNEncoding((3, 16, 16))
    program = compile_population(population(enc, seed=6), shared=True)
    coords = coordinates(enc.style)
    want = colour_map(run_program(program, coords, CPU), "hls").view(torch.int32)
    calls = []
    gather = hls_cpu.gather_hls_to_rgb_cpu
    monkeypatch.setattr(hls_cpu, "gather_hls_to_rgb_cpu", lambda *a, **k: calls.append(1) or gather(*a, **k))
    for chunk in (None, program.rows * 100):
        assert torch.equal(run_program(program, coords, CPU, colour="hls", chunk_elements=chunk).view(torch.int32),
                           want)
    assert len(calls) == 1 + 3
    monkeypatch.setattr(hls_cpu, "gather_hls_to_rgb_cpu", lambda *a, **k: False)  # declined: mapped as before
    assert torch.equal(run_program(program, coords, CPU, colour="hls", chunk_elements=program.rows * 100)
                       .view(torch.int32), want)


def test_nodes_that_reach_no_output_are_not_drawn() -> None:
    # hidden 4 feeds the output 6; hidden 5 (fed by 4) feeds nothing
    genome = make_genome([0, 1], [2], [0, 4, 1], [4, 6, 5], [2.0, 3.0, 1.0])
    style = Style("scaled", "grey", (6, 6))
    assert compile_population([genome, genome]).rows == 4 + 2 * 2
    assert torch.allclose(render([genome], style, CPU, dtype=torch.float64)[0], render_reference(genome, style))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 16)])
def test_nodes_shared_between_genomes_draw_the_same_images_bit_for_bit(shape) -> None:
    """compile_population(shared=True) (what render does): nodes with the same function of the same inputs with
    the same weights (siblings' unmutated nodes) are drawn once, for every genome that has one; the images are the
    same bits as a program with a row per node, and a node differing in one weight or its function is not shared."""
    enc = CPPNEncoding(shape)
    parents = population(enc, n=6, seed=4)
    children = enc.mutate([p for p in parents for _ in range(8)], np.random.default_rng(5), 1)  # 8 siblings each
    genomes = parents + children
    coords = coordinates(enc.style)
    plain, shared = compile_population(genomes), compile_population(genomes, shared=True)
    assert shared.rows < plain.rows
    for colour in ("grey",) if shape[0] == 1 else ("hls", "rgb"):
        want = run_program(plain, coords, CPU, colour=colour).view(torch.int32)
        assert torch.equal(want, run_program(shared, coords, CPU, colour=colour).view(torch.int32))
        chunked = run_program(shared, coords, CPU, colour=colour, chunk_elements=shared.rows * 100)  # 3+ chunks
        assert torch.equal(want, chunked.view(torch.int32))
    assert torch.equal(render(genomes, enc.style, CPU).view(torch.int32),
                       run_program(plain, coords, CPU, colour=enc.style.colour).view(len(genomes), *shape)
                       .view(torch.int32))

    genome = make_genome([0, 1], [2], [0, 4, 1], [4, 6, 5], [2.0, 3.0, 1.0])  # hidden 5 reaches no output
    assert compile_population([genome, genome], shared=True).rows == 4 + 2  # one row each for hidden 4, output 6
    other_weight = make_genome([0, 1], [2], [0, 4, 1], [4, 6, 5], [2.0, 3.5, 1.0])
    assert compile_population([genome, other_weight], shared=True).rows == 4 + 3  # hidden 4 shared, not the output
    other_function = make_genome([1, 1], [2], [0, 4, 1], [4, 6, 5], [2.0, 3.0, 1.0])
    assert compile_population([genome, other_function], shared=True).rows == 4 + 4  # nothing shared downstream


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 16)])
def test_folded_constant_nodes_draw_the_same_images_bit_for_bit(shape) -> None:
    """compile_population(fold=True) (what render does for big images): nodes fed by the bias alone, by nothing or by
    such nodes come first and are drawn at a few pixels, then broadcast; every drawing (colours, numpy's or
    PyTorch's functions, float64, pixel chunks) is the same bits as the plain program's."""
    enc = CPPNEncoding(shape)
    genomes = population(enc, n=60, generations=60, seed=7)
    coords = coordinates(enc.style)
    plain, folded = compile_population(genomes, shared=True), compile_population(genomes, shared=True, fold=True)
    assert plain.constants == 0 and folded.rows == plain.rows and 0 < folded.constants < folded.rows // 2
    for colour in ("grey",) if shape[0] == 1 else ("hls", "rgb"):
        for dtype in (torch.float32, torch.float64):
            for cpu_math in ("numpy", "torch"):
                for chunk in (None, folded.rows * 50):  # 16 or more chunks, short ones included
                    want, got = (run_program(p, coords, CPU, dtype, chunk, colour, cpu_math) for p in (plain, folded))
                    assert torch.equal(want, got), (colour, dtype, cpu_math, chunk)


def test_constant_nodes_are_found_and_drawn_first() -> None:
    # hidden 4 (bias -> 4) and 5 (no input) are constant, 6 (4 and x -> 6) is not, nor the output 7 (5, 6 -> 7);
    # a second genome whose output reads the bias alone is constant throughout
    genome = make_genome([0, 1, 0], [2], [3, 4, 0, 5, 6], [4, 6, 6, 7, 7], [1.5, 2.0, 1.0, 0.5, 1.0])
    flat = make_genome([], [0], [3], [4], [2.0])
    program = compile_population([genome, flat], fold=True)
    assert (program.rows, program.constants, program.constant_layers) == (4 + 5, 3, 1)
    constant, rest = program.layers[:1], program.layers[1:]
    assert all((layer.sources == 3).all() for layer in constant)  # read the bias alone
    assert [len(layer.offsets) for layer in rest] == [1, 1]  # 6, then 7: depths counted past the constants
    assert all((layer.sources < layer.start).all() for layer in program.layers)
    style = Style("scaled", "grey", (48, 48))  # big enough for render to fold
    want = torch.stack([render_reference(g, style) for g in (genome, flat)]).float()
    assert torch.allclose(render([genome, flat], style, CPU), want, atol=1e-5)
    with pytest.raises(ValueError, match="fold"):
        from fooling.encodings.cppn.execute import run_program_differentiable

        run_program_differentiable(program, coordinates(style), torch.ones(6, dtype=torch.float64))


def test_unwired_nodes_see_zero() -> None:
    """An output with no input draws its function of 0: gaussian -> 1, sine -> 0."""
    genome = make_genome([], [2, 0, 2], [], [], [])
    image = render([genome], Style("scaled", "rgb", (4, 4)), CPU)[0]
    assert torch.equal(image, torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 4, 4))


def test_coordinates() -> None:
    scaled = coordinates(Style("scaled", "grey", (5, 7))).reshape(4, 5, 7)
    assert np.allclose(scaled[0, 0], np.linspace(-1, 1, 7)) and np.allclose(scaled[1, :, 0], np.linspace(-1, 1, 5))
    assert scaled[2, 2, 3] == -1 and np.allclose(scaled[2, [0, 0, -1, -1], [0, -1, 0, -1]], 1)
    assert np.all(scaled[3] == 1)
    pixel = coordinates(Style("pixel", "grey", (5, 7))).reshape(4, 5, 7)
    assert np.array_equal(pixel[0, 0], np.arange(7)) and np.array_equal(pixel[1, :, 0], np.arange(5))
    assert np.array_equal(pixel[2], scaled[2])  # d is scaled to [-1, 1] in both modes
    doubled = coordinates(Style("pixel", "grey", (5, 7)), size=(9, 13)).reshape(4, 9, 13)
    assert np.allclose(doubled[0, 0], np.arange(13) / 2)


def test_initial_patterns_are_smooth_not_noise() -> None:
    enc = CPPNEncoding((3, 96, 96))
    images = enc.decode(enc.random(8, np.random.default_rng(0)), CPU)
    step = (images[..., 1:, :] - images[..., :-1, :]).abs().mean() + (images[..., 1:] - images[..., :-1]).abs().mean()
    assert step < 0.1 and images.std() > 0.1


@pytest.mark.cuda
def test_cuda_matches_cpu_and_is_deterministic() -> None:
    enc = CPPNEncoding((3, 64, 64))
    genomes = population(enc, n=64, seed=4)
    gpu = enc.decode(genomes, torch.device("cuda"))
    assert torch.equal(gpu, enc.decode(genomes, torch.device("cuda")))
    assert torch.allclose(gpu.cpu(), enc.decode(genomes, CPU), atol=1e-4)
    coords = coordinates(enc.style)  # constant nodes folded (as decode does at 64 px) or not: the same bits here too
    plain, folded = (run_program(compile_population(genomes, shared=True, fold=fold), coords, torch.device("cuda"),
                                 colour="hls") for fold in (False, True))
    assert torch.equal(plain, folded)


# --- fool render -------------------------------------------------------------------------
@pytest.fixture
def elite_json(tmp_path: Path) -> Path:
    enc = CPPNEncoding((1, 28, 28))
    path = tmp_path / "3_three_0.99.json"
    genomes = population(enc, n=8, generations=10)
    patterned = max(genomes, key=lambda g: float(enc.decode([g], CPU).std()))  # a flat image proves nothing
    path.write_text(json.dumps(enc.genome_json(patterned)))
    return path


def test_render_command_draws_at_any_size(elite_json: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default output goes into the current folder
    out = tmp_path / "big.png"
    result = CliRunner().invoke(command, [str(elite_json), "--size", "96", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    genome_image = np.asarray(read_png(out))
    assert genome_image.shape == (96, 96) and genome_image.std() > 0
    result = CliRunner().invoke(command, [str(elite_json), "--device", "cpu"])  # native size, default name
    assert result.exit_code == 0 and (tmp_path / "3_three_0.99_28x28.png").exists()


def test_render_command_names_a_wide_genome_width_by_height(tmp_path: Path, monkeypatch) -> None:
    """A genome evolved at 16 rows x 24 columns is drawn 24 wide and 16 high, and its default file name says so as
    the message does (width x height; the name said 16x24)."""
    monkeypatch.chdir(tmp_path)
    enc = CPPNEncoding((1, 16, 24))
    genome = max(population(enc, n=8, generations=5), key=lambda g: float(enc.decode([g], CPU).std()))
    (tmp_path / "wide.json").write_text(json.dumps(enc.genome_json(genome)))
    result = CliRunner().invoke(command, [str(tmp_path / "wide.json"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "(24x16," in result.output and read_png(tmp_path / "wide_24x16.png").size == (24, 16)


def test_render_command_help() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0 and "--size" in result.output and "GENOME" in result.output


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), ("{not json", "not valid JSON"), ('{"format": "x"}', "not a CPPN genome"),
])
def test_render_command_rejects_bad_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "elite.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(command, [str(path)])
    assert isinstance(result.exception, FoolingError) and message in str(result.exception)
    assert "\n" not in str(result.exception)


def test_initial_genome_renders_in_every_colour_mode() -> None:
    rng = np.random.default_rng(0)
    for colour, outputs in (("grey", 1), ("hls", 3), ("rgb", 3)):
        image = render([initial_genome(outputs, rng)], Style("scaled", colour, (8, 8)), CPU)
        assert image.shape == (1, 1 if colour == "grey" else 3, 8, 8)
    with pytest.raises(ValueError, match="outputs"):
        render([initial_genome(1, rng)], Style("scaled", "hls", (8, 8)), CPU)


@pytest.mark.parametrize("apply", ["apply_torch", "apply_ufunc"])
def test_gaussian_is_exact_above_the_smallest_normal_and_zero_below(apply) -> None:
    """The Gaussian: exp(-x²) bit for bit (as its library computes it) wherever -x² > GAUSSIAN_FLOOR (exp:
    1.65e-38), else exactly 0 (never a subnormal, which would cost the CPU a microcode assist per value)."""
    from fooling.encodings.cppn import functions

    x = torch.cat([torch.linspace(-12.0, 12.0, 20001), torch.tensor([9.3, 9.32, 9.33, 9.35, 10.0, 0.0])])
    out = torch.empty_like(x)
    getattr(functions, apply)(2, x.clone(), out)
    exact = torch.exp(-x.square()) if apply == "apply_torch" else torch.from_numpy(np.exp(-x.square().numpy()))
    keep = -x.square() > functions.GAUSSIAN_FLOOR
    assert keep.any() and (~keep).any()
    assert torch.equal(out[keep], exact[keep])
    assert (out[~keep] == 0).all()
    tiny = torch.finfo(torch.float32).tiny
    assert not ((out != 0) & (out.abs() < tiny)).any()  # no subnormal


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_math_is_torch_math_within_a_few_ulp_and_any_split_gives_the_same_values(monkeypatch, dtype) -> None:
    """apply_ufunc (cppn_cpu_math numpy) against apply_torch: each function within 3 ulp of PyTorch's value (both
    within about 2 of the exact one), and the same bits whether numpy's call is split among threads or not."""
    from fooling.encodings.cppn import functions

    x = torch.linspace(-30.0, 30.0, 3 * (functions.SPLIT_VALUES + 7), dtype=dtype).view(3, -1)
    for function in range(functions.NUM_FUNCTIONS):
        want = functions.apply_torch(function, x.clone(), torch.empty_like(x))
        whole = functions.apply_ufunc(function, x.clone(), torch.empty_like(x))
        ulp = torch.from_numpy(np.spacing(np.abs(want.numpy())))
        assert ((whole - want).abs() <= 3 * ulp).all(), functions.FUNCTION_NAMES[function]
        for threads in (1, 2, 3):
            monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
            assert torch.equal(functions.apply_ufunc(function, x.clone(), torch.empty_like(x)), whole)
        monkeypatch.undo()


def test_cpu_math_chooses_whose_functions_draw_and_only_on_the_cpu(monkeypatch) -> None:
    """run_program's cpu_math: numpy's ufuncs by default on a CPU, PyTorch's with "torch" (and for dtypes numpy
    lacks); the two drawings agree to float32 rounding; an unknown name is refused."""
    from fooling.encodings.cppn import execute

    enc = CPPNEncoding((3, 20, 14))
    genomes = population(enc)
    program = compile_population(genomes)
    coords = coordinates(enc.style)
    used: list[str] = []
    for name in ("apply_torch", "apply_ufunc", "ufunc_into"):
        real = getattr(execute, name)
        monkeypatch.setattr(execute, name, lambda f, x, out, real=real, name=name: used.append(name) or real(f, x, out))
    fast = run_program(program, coords, CPU, colour="hls")
    assert "ufunc_into" in used and set(used) <= {"apply_ufunc", "ufunc_into"}  # numpy arrays, or clamp's tensors
    used.clear()
    torch_drawn = run_program(program, coords, CPU, colour="hls", cpu_math="torch")
    assert set(used) == {"apply_torch"}
    used.clear()
    run_program(program, coords, CPU, dtype=torch.bfloat16, colour="hls")
    assert set(used) == {"apply_torch"}
    assert torch.allclose(fast, torch_drawn, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="cpu_math"):
        run_program(program, coords, CPU, cpu_math="mkl")
    with pytest.raises(ValueError, match="cpu_math"):
        CPPNEncoding((1, 8, 8), cpu_math="mkl")


def test_the_node_functions_are_settled_once_before_the_first_cpu_drawing(monkeypatch) -> None:
    """A process's first multi-threaded torch.sin was once inexact in one thread's share (PyTorch 2.13, MKL):
    every CPU drawing path that runs PyTorch's functions first runs each once on a throwaway batch
    (scripts/cppn_first_call.py); numpy's (the default cpu_math) need no settling."""
    from fooling.encodings.cppn import functions
    from fooling.encodings.cppn.execute import run_program_differentiable

    enc = CPPNEncoding((3, 20, 14))
    genomes = population(enc)
    program = compile_population(genomes)
    coords = coordinates(enc.style)
    weights = torch.tensor(np.concatenate([g.weights for g in genomes]), dtype=torch.float32)
    calls: list[int] = []
    monkeypatch.setattr(functions, "_settled", [])
    real = functions.apply_torch
    monkeypatch.setattr(functions, "apply_torch", lambda f, x, out: calls.append(x.numel()) or real(f, x, out))
    functions._settled.clear()
    run_program(program, coords, CPU, colour="hls")
    assert functions._settled == [] and calls == []
    for draw in (lambda: run_program(program, coords, CPU, colour="hls", cpu_math="torch"),
                 lambda: run_program_differentiable(program, coords, weights, colour="hls")):
        functions._settled.clear()
        calls.clear()
        first = draw()
        assert functions._settled == [True] and calls == [functions.SETTLE_VALUES] * 4  # each function, once
        calls.clear()
        assert torch.equal(draw(), first) and calls == []  # once per process; the same drawing


def test_a_run_records_its_cpu_math_and_one_begun_before_numpy_math_resumes_with_torch(tmp_path) -> None:
    """A CPPN run records cppn_cpu_math (numpy by default); a run whose config.json lacks it (begun before it
    existed) resumes with PyTorch's functions and ends bit for bit as an uninterrupted torch-math run."""
    from fooling.run import EvolutionRun
    from fooling.settings.evolve import EvolveSettings

    settings = dict(model="test-oracle", encoding="cppn", generations=4, population=8, seed=3, device="cpu",
                    checkpoint_every=1, checkpoint_seconds=0)
    new = EvolutionRun.start(EvolveSettings(**settings, out=str(tmp_path / "new")))
    assert new.encoding.cpu_math == "numpy"
    new.close()
    assert json.loads((tmp_path / "new" / "config.json").read_text())["cppn_cpu_math"] == "numpy"

    expected = EvolutionRun.start(EvolveSettings(**settings, cppn_cpu_math="torch", out=str(tmp_path / "a"))
                                  ).run(progress=False)
    EvolutionRun.start(EvolveSettings(**settings, cppn_cpu_math="torch", out=str(tmp_path / "b"))
                       ).run(progress=False, stop_after=2)
    path = tmp_path / "b" / "config.json"
    record = json.loads(path.read_text())
    del record["cppn_cpu_math"]  # as an older fooling wrote it
    path.write_text(json.dumps(record))
    resumed = EvolutionRun.resume(tmp_path / "b")
    assert resumed.config.cppn_cpu_math == "torch" and resumed.encoding.cpu_math == "torch"
    assert resumed.run(progress=False)["classes"] == expected["classes"]
    assert (tmp_path / "b" / "classes.csv").read_text() == (tmp_path / "a" / "classes.csv").read_text()


def _flushes_now() -> bool:
    """Whether the calling thread writes subnormal float32 results as 0 (x86's FTZ)."""
    tiny = np.array([np.finfo(np.float32).tiny], dtype=np.float32)
    return bool(np.multiply(tiny, np.float32(0.5))[0] == 0)


def test_numpy_math_reads_and_writes_subnormals_as_zero_in_its_own_call_only(monkeypatch) -> None:
    """numpy's sin, tanh and Gaussian run with subnormal floats flushed to 0 (a subnormal operand costs an x86
    core a microcode assist), whole or split among threads; normal values are untouched, and every thread's mode
    is as it was after the call. FLUSH_SUBNORMALS False keeps them (as before)."""
    from fooling.encodings.cppn import functions
    from fooling.hostwork import split

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats (torch.set_flush_denormal)")
    sub, small = np.float32(1e-39), np.float32(1e-20)
    x = np.array([sub, -sub, small, 1e-13, 0.5, 0.0], dtype=np.float32)
    for function, exact in ((0, np.sin), (1, np.tanh)):
        out = np.empty_like(x)
        functions.ufunc_into(function, x.copy(), out)
        assert out[0] == 0 and out[1] == 0 and not np.signbit(out[0])  # read as +0: sin(0), tanh(0)
        assert np.array_equal(out[2:], exact(x[2:]))  # normal inputs: the same bits (sin(1e-20) is 1e-20)
        assert not _flushes_now()  # restored
    out = np.empty_like(x)
    functions.ufunc_into(2, np.array([1e-20, 9.0], dtype=np.float32), out[:2])
    assert out[0] == 1 and out[1] == np.exp(np.float32(-81.0))  # x² = 1e-40 read as 0; exp(-81) ~ 6.6e-36 kept

    # split among pool threads: each flushes within its call and is restored
    big = np.full(2 * functions.SPLIT_VALUES, sub, dtype=np.float32)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    out = np.ones_like(big)
    functions.ufunc_into(0, big.copy(), out)
    assert not out.any()
    assert not any(split(lambda a, b: _flushes_now(), 2, 2, 1, threads=2))

    monkeypatch.setattr(functions, "FLUSH_SUBNORMALS", False)
    out = np.empty_like(x)
    functions.ufunc_into(0, x.copy(), out)
    assert out[0] == sub and out[1] == -sub


def test_flushing_subnormals_evolves_the_same_run(monkeypatch, tmp_path) -> None:
    """A MNIST CPPN run whose drawings hit tiny sines (|x| < 2e-13: the slow case) ends with the same archive,
    genome for genome, whether numpy's functions flush subnormal floats or not."""
    from fooling.encodings.cppn import execute, functions
    from fooling.run import EvolutionRun
    from fooling.settings.evolve import EvolveSettings

    tiny = [0]
    real = execute.ufunc_into

    def counting(function, x, out):
        tiny[0] += int(((x != 0) & (np.abs(x) < 2e-13)).sum())
        real(function, x, out)

    monkeypatch.setattr(execute, "ufunc_into", counting)
    ends = []
    for flush in (True, False):
        monkeypatch.setattr(functions, "FLUSH_SUBNORMALS", flush)
        run = EvolutionRun.start(EvolveSettings(model="mnist-lenet", encoding="cppn", population=50, generations=40,
                                                seed=0, device="cpu", checkpoint_every=10**6,
                                                out=str(tmp_path / f"flush{flush}")))
        run.run(progress=False)
        ends.append((run.archive.fitness.copy(), [run.encoding.genome_json(g) for g in run.archive.genomes]))
        run.close()
    assert tiny[0] > 1000
    assert np.array_equal(ends[0][0], ends[1][0]) and ends[0][1] == ends[1][1]
