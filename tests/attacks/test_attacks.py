"""fooling.attacks: FGSM, PGD and CW-L2 on tiny models — shapes, ranges, direction, ε-balls, CW's search,
the torchattacks call convention, EOT, `fool attack` and its one-line errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from fooling.attacks import CW, FGSM, PGD, as_objective
from fooling.cli import main
from fooling.errors import FoolingError
from fooling.objective import Objective
from fooling.objective.eot import EOT

from helpers import csv_rows, read_png


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))


def batch(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def probs(net, x):
    with torch.no_grad():
        return torch.softmax(net(x), 1)


@pytest.mark.parametrize("make", [lambda m: FGSM(m), lambda m: PGD(m, steps=10), lambda m: CW(m, steps=30)])
def test_untargeted_attacks_lower_the_true_class_and_keep_shape_and_range(make):
    net, x = linear(), batch()
    y = probs(net, x).argmax(1)
    adv = make(net)(x, y)
    assert adv.shape == x.shape and adv.dtype == torch.float32
    assert adv.min() >= 0 and adv.max() <= 1
    before = probs(net, x).gather(1, y.view(-1, 1))
    after = probs(net, adv).gather(1, y.view(-1, 1))
    assert (after <= before + 1e-6).all() and (after < before).any()


@pytest.mark.parametrize("make", [lambda m: FGSM(m, eps=0.1), lambda m: PGD(m, eps=0.1, steps=20),
                                  lambda m: CW(m, steps=50)])
def test_targeted_attacks_raise_the_target(make):
    net, x = linear(), batch()
    target = (probs(net, x).argmax(1) + 1) % 5
    atk = make(net).set_mode_targeted_by_label()
    adv = atk(x, target)
    before = probs(net, x).gather(1, target.view(-1, 1))
    after = probs(net, adv).gather(1, target.view(-1, 1))
    assert (after > before).all()


@pytest.mark.parametrize("norm, eps", [("linf", 4 / 255), ("l2", 0.3)])
def test_pgd_and_fgsm_respect_the_ball(norm, eps):
    net, x = linear(), batch()
    y = probs(net, x).argmax(1)
    for atk in (FGSM(net, eps=eps, norm=norm), PGD(net, eps=eps, norm=norm, steps=15, restarts=2)):
        r = atk.run(x, y)
        size = r.linf if norm == "linf" else r.l2
        assert (size <= eps + 1e-5).all(), (atk.name, size)
        assert r.images.min() >= 0 and r.images.max() <= 1
        assert r.l0.dtype.kind in "iu" and (r.l0 <= x[0].numel()).all()


def test_pgd_random_start_depends_on_seed_and_is_reproducible():
    net, x = linear(), batch()
    y = probs(net, x).argmax(1)
    a = PGD(net, steps=3, seed=1)(x, y)
    b = PGD(net, steps=3, seed=1)(x, y)
    c = PGD(net, steps=3, seed=2)(x, y)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_cw_binary_search_lowers_c_after_success_and_raises_it_after_failure():
    net, x = linear(), batch(4)
    y = probs(net, x).argmax(1)
    atk = CW(net, c=1.0, steps=60, search_steps=4)
    r = atk.run(x, y)
    hist = np.stack(atk.history)
    assert hist.shape == (4, 4) and np.allclose(hist[0], 1.0)
    for i in range(4):  # each image's c moved: halved toward 0 on success, x10 on failure
        assert hist[1, i] in (0.5, 10.0)
    assert r.success.all()
    # the smaller change of CW versus an unbounded-norm PGD that also succeeds
    assert (r.l2 < 3.0).all()


def test_cw_original_settings_are_the_papers():
    assert CW.ORIGINAL == {"c": 1e-3, "kappa": 0.0, "steps": 10_000, "lr": 0.01, "search_steps": 9,
                           "abort_early": True}
    atk = CW.original(linear())
    assert (atk.c, atk.steps, atk.search_steps, atk.lr) == (1e-3, 10_000, 9, 0.01)


def test_cw_kappa_demands_a_margin():
    net, x = linear(), batch(3)
    y = probs(net, x).argmax(1)
    r = CW(net, steps=60, kappa=2.0).run(x, y)
    with torch.no_grad():
        z = net(r.images)
    other = z.clone()
    other[torch.arange(3), y] = -1e9
    ok = r.success
    assert ((other.amax(1) - z[torch.arange(3), y])[torch.as_tensor(ok)] >= 2.0 - 1e-3).all()


def test_classifier_and_objective_models_work_and_agree(oracle):
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = oracle.probs(x).argmax(1).cpu()
    a = PGD(oracle, steps=5, random_start=False)(x, y)
    b = PGD(Objective([oracle], range(4)), steps=5, random_start=False)(x, y)
    assert torch.equal(a, b)
    assert (oracle.probs(a).gather(1, y.view(-1, 1)) < oracle.probs(x).gather(1, y.view(-1, 1))).all()


def test_classifier_takes_photos_of_any_size_differentiably(oracle):
    x = torch.rand(1, 1, 37, 23, requires_grad=True)
    out = Objective([oracle], range(4)).rows(x)[1][0, 2]
    (g,) = torch.autograd.grad(out, x)
    assert g.shape == x.shape and g.abs().sum() > 0
    adv = FGSM(oracle, eps=0.05)(x.detach(), torch.tensor([0]))
    assert adv.shape == (1, 1, 37, 23)


def test_api_parity_with_torchattacks():
    torchattacks = pytest.importorskip("torchattacks")
    net, x = linear(), batch(8)
    y = probs(net, x).argmax(1)
    ours = FGSM(net, eps=8 / 255)(x, y)
    theirs = torchattacks.FGSM(net, eps=8 / 255)(x, y)
    assert ours.shape == theirs.shape
    moved = (ours != x).flatten(1).any(1)  # where our step helped it is exactly torchattacks' step
    assert torch.allclose(ours[moved], theirs[moved], atol=1e-6)
    ours = PGD(net, eps=8 / 255, alpha=2 / 255, steps=10)(x, y)
    theirs = torchattacks.PGD(net, eps=8 / 255, alpha=2 / 255, steps=10)(x, y)
    assert (probs(net, ours).argmax(1) != y).sum() >= (probs(net, theirs).argmax(1) != y).sum() - 1


def test_bad_api_input_is_one_line():
    net, x = linear(), batch(2)
    with pytest.raises(FoolingError, match="epsilon"):
        PGD(net, eps=0)
    with pytest.raises(FoolingError, match="epsilon"):
        FGSM(net, eps=1.5)
    with pytest.raises(FoolingError, match="does not exist"):
        PGD(net).set_mode_targeted_by_label()(x, torch.tensor([1, 7]))
    with pytest.raises(FoolingError, match="one label per image"):
        PGD(net)(x, torch.tensor([1]))
    with pytest.raises(FoolingError, match="channel"):
        PGD(as_objective(linear(), x))(torch.rand(2, 2, 8, 8), torch.tensor([0, 1]))
    nan = float("nan")
    for make in (lambda: PGD(net, steps=-1), lambda: PGD(net, alpha=-0.1), lambda: PGD(net, alpha=nan),
                 lambda: PGD(net, restarts=0)):  # AttributeError in the engine; downhill; NaN images; 1 restart
        with pytest.raises(FoolingError, match="PGD needs steps >= 0, restarts >= 1 and a positive step size"):
            make()
    with pytest.raises(FoolingError, match="--epsilon must be a positive number, got inf"):
        PGD(net, eps=float("inf"), norm="l2")  # NaN images, blamed on the model
    for kw in (dict(kappa=nan), dict(lr=nan), dict(c=nan)):  # ran (kappa) or died in torch's Adam (lr)
        with pytest.raises(FoolingError, match="CW needs c > 0"):
            CW(net, **kw)
    assert PGD(net, eps=0.1, steps=0).run(x, torch.tensor([0, 1])).images.shape == x.shape  # was ZeroDivisionError
    with pytest.raises(FoolingError, match="N >= 1"):
        PGD(net)(x[:0], torch.tensor([], dtype=torch.long))  # RuntimeError: min() of an empty tensor
    with pytest.raises(FoolingError, match=re.escape("Sequential fails on images of shape (1, 8, 8): mat1 and mat2")):
        PGD(net)(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))  # the module's own RuntimeError
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        PGD(net)([[0.5]], torch.tensor([0]))  # AttributeError: 'list' object has no attribute 'dim'
    double = PGD(net, steps=1)(x.double(), torch.tensor([0, 1]))  # was: mat1 and mat2 must have the same dtype
    assert double.shape == x.shape


def test_settings_of_the_wrong_kind_are_one_line():
    """A string where a number belongs ("8/255", as on the command line) was a TypeError from a comparison deep
    inside; every attack's numbers are now checked as numbers first. Whole-number settings take 10 or 10.0."""
    net = linear()
    for make, words in [(lambda: PGD(net, eps="8/255"), "epsilon must be a number, not '8/255'"),
                        (lambda: FGSM(net, eps=None), "epsilon must be a number, not None"),
                        (lambda: PGD(net, steps="10"), "steps must be a number, not '10'"),
                        (lambda: PGD(net, steps=2.5), "steps must be a whole number, not 2.5"),
                        (lambda: PGD(net, alpha="0.01"), "alpha must be a number"),
                        (lambda: PGD(net, restarts=True), "restarts must be a number, not True"),
                        (lambda: CW(net, c="1"), "c must be a number"),
                        (lambda: CW(net, search_steps=float("inf")), "search_steps must be a whole number"),
                        (lambda: CW(net, linf="8/255"), "linf must be a number"),
                        (lambda: FGSM(net, seed="0"), "seed must be a number")]:
        with pytest.raises(FoolingError, match=re.escape(words)):
            make()
    assert PGD(net, eps=np.float32(0.25), steps=10.0).steps == 10 and PGD(net, eps=torch.tensor(0.25)).eps == 0.25
    assert FGSM(net, seed=np.int64(2**62 + 1)).seed == 2**62 + 1  # exact


def test_numbers_out_of_range_or_of_a_bool_dtype_are_one_line():
    """An int too big for a float (eps=10**400) was an OverflowError; a seed PyTorch cannot take (2**64, -1) made
    PGD die mid-attack with "Overflow when unpacking long long" (`fool attack --seed 18446744073709551616` too); numpy
    and torch booleans passed as 1 where Python's True is refused."""
    net = linear()
    for make, words in [(lambda: FGSM(net, eps=10**400), "--epsilon must be in (0, 1], got inf"),
                        (lambda: CW(net, c=-10**400), "CW needs c > 0"),
                        (lambda: PGD(net, seed=2**64), f"seed must be in 0-{2**64 - 1}, not {2**64}"),
                        (lambda: PGD(net, seed=-1), f"seed must be in 0-{2**64 - 1}, not -1"),
                        (lambda: FGSM(net, eps=np.bool_(True)), "epsilon must be a number, not np.True_"),
                        (lambda: PGD(net, steps=torch.tensor(True)), "steps must be a number, not tensor(True)")]:
        with pytest.raises(FoolingError, match=re.escape(words)):
            make()
    x = batch(1)
    assert PGD(net, steps=1, seed=2**64 - 1)(x, torch.tensor([1])).shape == x.shape  # the largest seed runs
    from fooling.settings.attack import AttackSettings

    with pytest.raises(FoolingError, match=re.escape(f"--seed must lie in 0-{2**64 - 1}")):  # before a folder is made
        AttackSettings(images=["x.png"], target="0", seed=2**64).validate()


@pytest.mark.parametrize("make", [FGSM, PGD, lambda m: CW(m, steps=2, search_steps=1)])
def test_nan_logits_are_one_line(make):
    """FGSM and PGD died with AttributeError ('NoneType' object has no attribute 'cpu'); CW reported success."""
    net = nn.Sequential(linear(), nn.Hardtanh(float("nan"), float("nan")))
    with pytest.raises(FoolingError, match="gave NaN or infinite logits"):
        make(net).run(batch(2), torch.tensor([0, 1]))


# --- EOT -------------------------------------------------------------------------------------------
def test_eot_is_deterministic_per_batch_and_varies_between_batches(oracle):
    obj = Objective([oracle], range(4)).with_eot(EOT(8, "crop=0.5,rotate=20,noise=0.05", seed=3))
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    f1, _ = obj.fitness(x)
    f2, _ = Objective([oracle], range(4)).with_eot(EOT(8, "crop=0.5,rotate=20,noise=0.05", seed=3)).fitness(x)
    np.testing.assert_array_equal(f1, f2)
    f3, _ = Objective([oracle], range(4)).with_eot(EOT(8, "crop=0.5,rotate=20,noise=0.05", seed=4)).fitness(x)
    assert not np.array_equal(f1, f3)
    plain, _ = Objective([oracle], range(4)).fitness(x)
    assert not np.allclose(f1, plain) and f1.shape == plain.shape
    np.testing.assert_allclose(f1.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("spec", ["crop=0.5,rotate=20,noise=0.05,fixed", "crop,flip,rotate,jitter,noise,jpeg=50,fixed"])
def test_fixed_eot_scores_each_image_alike_in_any_batch(oracle, spec):
    """Fixed draws (the spec's token ``fixed``): the same K transforms for every image, so an image's score
    depends on its pixels only, not on its batch or place in it; fresh draws differ between batches."""
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fixed = Objective([oracle], range(4)).with_eot(EOT(6, spec, seed=3))
    assert fixed.eot.fixed
    whole, _ = fixed.fitness(x)
    part, _ = fixed.fitness(torch.cat([x[4:], x[:1]]))
    np.testing.assert_allclose(part, whole[[4, 5, 0]], atol=1e-6)
    copies = fixed.eot.expand(x[:1].expand(3, -1, -1, -1).contiguous()).view(6, 3, -1)
    assert torch.equal(copies[:, 0], copies[:, 2])  # the same image, the same K transforms at any place
    fresh = Objective([oracle], range(4)).with_eot(EOT(6, spec.replace(",fixed", ""), seed=3))
    assert not fresh.eot.fixed
    assert not np.allclose(fresh.fitness(torch.cat([x[4:], x[:1]]))[0], fresh.fitness(x)[0][[4, 5, 0]])


def test_evolution_draws_fixed_and_attacks_fresh_unless_the_spec_says():
    assert EOT.for_selection(4, "crop").fixed and not EOT.for_selection(4, "crop,fresh").fixed
    assert not EOT(4, "crop").fixed and EOT(4, "crop,fixed").fixed


def test_eot_gradients_flow_through_every_transform(oracle):
    obj = Objective([oracle], range(4)).with_eot(EOT(4, "crop,flip,rotate,jitter,noise,jpeg=50", seed=0))
    x = torch.rand(2, 1, 16, 16, requires_grad=True)
    lp = obj.log_probs(x)
    assert lp.shape == (2, 4)
    (g,) = torch.autograd.grad(lp[:, 1].sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_eot_attack_runs(oracle):
    obj = Objective([oracle], range(4)).with_eot(EOT(4, "default", seed=0))
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    r = PGD(obj, eps=0.1, steps=5).set_mode_targeted_by_label().run(x, [2, 2])
    assert r.images.shape == x.shape and (r.linf <= 0.1 + 1e-6).all()


@pytest.mark.parametrize("spec, words", [("blur", "unknown transform"), ("crop=2", "crop must be in"),
                                         ("rotate=x", "not a number"), ("", "empty"), ("fixed", "no transform"),
                                         ("crop,fixed,fresh", "exclude")])
def test_bad_transform_specs(spec, words):
    with pytest.raises(FoolingError, match=words):
        EOT(2, spec)


# --- fool attack -----------------------------------------------------------------------------------
def _photos(tmp_path, n=3):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        size = (12 + 4 * i, 10 + 2 * i)
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(folder / f"p{i}.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / "q.jpg", quality=90)
    return folder


@pytest.mark.parametrize("method", ["fgsm", "pgd", "cw-l2"])
def test_fool_attack_writes_full_size_results(tmp_path, method):
    folder = _photos(tmp_path)
    out = tmp_path / "run"
    extra = ["--steps", "20"] if method != "fgsm" else []
    extra += ["--cw-linf", "0.2", "--cw-search-steps", "3"] if method == "cw-l2" else []
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder), "--target", "c",
                                    "--method", method, "--epsilon", "0.2", "--out", str(out), "--quiet", *extra])
    assert res.exit_code == 0, res.output
    rows = csv_rows(out / "results.csv")
    assert len(rows) == 4
    for row in rows:
        src = read_png(row["file"])
        adv = read_png(out / "adversarial" / (row["file"].rsplit("/", 1)[-1]))
        assert adv.size == src.size and adv.format == src.format
        assert (out / "perturbation" / (row["file"].rsplit("/", 1)[-1].rsplit(".", 1)[0] + ".png")).is_file()
        if row["file"].endswith(".png"):  # a JPEG's own loss adds to the change
            assert float(row["linf"]) <= 0.2 + 1e-5
        assert {"clean_label", "adv_label", "adv_confidence", "success", "l0", "l2", "linf"} <= set(row)
    data = json.loads((out / "results.json").read_text())
    assert sum(r["success"] for r in data) >= 3
    _assert_results_are_the_written_files(out, data)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["classes"]) == 4
    from fooling.rundir import read_run

    assert len(read_run(out).elites) == 4  # fool gallery reads it


def _assert_results_are_the_written_files(out, data):
    """Each row's adversarial prediction, confidence, success and change sizes are those of the file as written
    (re-read from disk here, through the model as `fool attack` loads it); PNG files never lose a success."""
    from fooling.classifiers import load_classifier
    from fooling.imaging import load_image

    net = load_classifier("test-oracle", "cpu", 1)
    for row in data:
        name = row["file"].rsplit("/", 1)[-1]
        clean = load_image(row["file"], net.spec.channels)
        written = load_image(out / "adversarial" / name, net.spec.channels)
        with torch.no_grad():
            p = net.probs(written)[0]
        assert int(p.argmax()) == row["adv_class"] and abs(float(p.max()) - row["adv_confidence"]) < 1e-5
        assert row["success"] == (row["adv_class"] == row["target"])
        assert abs(float((written - clean).abs().max()) - row["linf"]) < 1e-6
        if name.endswith(".png"):  # lossless: what was judged in memory is what was written
            assert row["success"] == row["success_in_memory"]


@pytest.mark.parametrize("make", [lambda m: FGSM(m, eps=8 / 255), lambda m: PGD(m, eps=8 / 255, steps=10),
                                  lambda m: CW(m, steps=40, search_steps=3), lambda m: CW(m, steps=40, linf=8 / 255)])
@pytest.mark.parametrize("targeted", [False, True])
def test_quantized_attacks_judge_and_return_8_bit_images(make, targeted):
    """quantized: the images returned are 8-bit (a PNG holds them exactly), within the L∞ ball, and the
    success reported is that of those very images."""
    net, x = linear(), (batch() * 255).round() / 255
    y = probs(net, x).argmax(1)
    labels = (y + 1) % 5 if targeted else y
    atk = make(net)
    atk.quantized = True
    if targeted:
        atk.set_mode_targeted_by_label()
    r = atk.run(x, labels)
    assert torch.equal(r.images, (r.images * 255).round() / 255)
    top = probs(net, r.images).argmax(1).numpy()
    np.testing.assert_array_equal(r.success, top == labels.numpy() if targeted else top != labels.numpy())
    if not isinstance(atk, CW) or atk.linf is not None:
        assert r.linf.max() <= 8 / 255 + 1e-6
    assert r.success.any()


def test_cw_keeps_only_successes_that_survive_rounding():
    """A CW success is judged on the rounded image: with quantisation every kept change is a success of the
    8-bit image; the unquantised attack's smallest changes sit on the boundary (most fail once rounded)."""
    net, x = linear(), (batch() * 255).round() / 255
    y = probs(net, x).argmax(1)
    quantized = CW(net, steps=60, search_steps=4, quantized=True).run(x, y)
    plain = CW(net, steps=60, search_steps=4).run(x, y)
    rounded = (plain.images * 255).round() / 255
    plain_after_rounding = probs(net, rounded).argmax(1) != y
    assert quantized.success.sum() >= plain_after_rounding.sum().item()
    assert quantized.success.all()


def test_fool_attack_photos_of_one_name_each_keep_their_result(tmp_path):
    """x.png from two folders (and x.jpg beside one): each photo's adversarial and perturbation file replaced
    the one before; now the later ones are x_2, x_3, in the order of results.csv."""
    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(tmp_path / folder / "x.png")
    Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "a" / "X.jpg")
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", f"{tmp_path / 'a'},{tmp_path / 'b'}",
                                    "--untargeted", "--method", "fgsm", "--epsilon", "0.1", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    files = [row["file"] for row in csv_rows(out / "results.csv")]
    assert files == [str(tmp_path / "a" / "X.jpg"), str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")]
    assert sorted(p.name for p in (out / "adversarial").iterdir()) == ["X.jpg", "x_2.png", "x_3.png"]
    assert sorted(p.name for p in (out / "perturbation").iterdir()) == ["X.png", "x_2.png", "x_3.png"]
    for name, source in (("x_2.png", tmp_path / "a" / "x.png"), ("x_3.png", tmp_path / "b" / "x.png")):
        written = np.asarray(read_png(out / "adversarial" / name), dtype=np.int16)
        assert np.abs(written - np.asarray(read_png(source), dtype=np.int16)).max() <= 26  # its own photo


def test_fool_attack_holds_one_photo_at_a_time(tmp_path, monkeypatch):
    """Every photo was loaded as a float32 tensor before the first attack and all were held to the end: a folder
    of 200 12-megapixel photos asked for 29 GB. Each is still read (checked) first, but kept only while attacked."""
    import gc
    import weakref

    import fooling.run.attack as attack_run

    folder, alive, real = _photos(tmp_path), [], attack_run.load_image

    def load_image(path, channels=3):
        image = real(path, channels)
        if path.parent == folder:  # the photos, not the adversarial files read back
            gc.collect()
            alive.append(sum(ref() is not None for ref in refs))  # the one before may still be held
            refs.append(weakref.ref(image))
        return image

    refs: list = []
    monkeypatch.setattr(attack_run, "load_image", load_image)
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder), "--untargeted",
                                    "--method", "fgsm", "--epsilon", "0.1", "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(alive) == 8 and max(alive) <= 1, alive  # 4 checked, then 4 attacked


def test_fool_attack_gallery(tmp_path):
    folder = _photos(tmp_path, 1)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder), "--untargeted",
                                    "--method", "fgsm", "--epsilon", "0.1", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["gallery", str(out), "--out", str(tmp_path / "g"), "--quiet"])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "g" / "index.html").read_text()
    assert "-&gt;" in page or "->" in page


def test_fool_attack_takes_an_l2_ball_larger_than_1(tmp_path):
    """--norm l2 --epsilon 3 (a common ImageNet L2 budget: the whole image's change) was refused, 'must be in
    (0, 1]', though the Python API took it; an L-infinity epsilon above 1 is still refused."""
    folder = _photos(tmp_path, 1)
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder), "--untargeted",
                                    "--norm", "l2", "--epsilon", "3", "--steps", "2", "--out", str(tmp_path / "r"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epsilon"] == 3
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder), "--untargeted",
                                    "--epsilon", "3", "--out", str(tmp_path / "r2")])
    assert res.exit_code != 0 and "--epsilon must be in (0, 1] for --norm linf, got 3" in res.output, res.output
    with pytest.raises(FoolingError, match="must be a positive number"):
        PGD(linear(), eps=-1.0, norm="l2")


@pytest.mark.parametrize("args, words", [
    (["--epsilon", "0"], "epsilon"), (["--epsilon", "1.5"], "epsilon"), (["--method", "deepfool"], "unknown --method"),
    (["--target", "zebra"], "--target"), (["--target", "a", "--untargeted"], "exclude"),
    (["--eot", "2", "--transforms", "blur"], "unknown transform"), (["--cw-linf", "0"], "--cw-linf"),
    (["--cw-linf", "2/1"], "--cw-linf"), (["--eot", "2", "--transforms", "fixed"], "no transform"),
    (["--cw-linf", "abc"], "--cw-linf must be a number"),  # it said --epsilon
    (["--target", ""], "--target is empty"),  # it said '--classes is empty'
    (["--target", "0-2"], "--target must name one class"),  # it attacked towards class 0 without a word
])
def test_fool_attack_bad_input_is_one_line(tmp_path, args, words):
    folder = _photos(tmp_path, 1)
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder),
                                    "--out", str(tmp_path / "r"), *args])
    assert res.exit_code != 0
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert lines[-1].startswith("Error") and words in res.output and "Traceback" not in res.output, res.output


def test_fool_attack_bad_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(empty)])
    assert res.exit_code != 0 and "no images" in res.output
    folder = _photos(tmp_path, 1)
    data = (folder / "p0.png").read_bytes()
    (folder / "p0.png").write_bytes(data[: len(data) // 2])
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder / "p0.png"),
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "p0.png" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("make", [lambda m: FGSM(m, eps=0.1), lambda m: PGD(m, eps=0.1, steps=3),
                                  lambda m: CW(m, steps=3, search_steps=1)])
def test_a_users_module_comes_back_as_it_was(make):
    """Attacking a model mid-way through (adversarial) training must not leave it frozen and in eval mode; during
    the attack it is in eval mode (dropout off) with no parameter gradients."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.5), nn.Linear(32, 4))
    net[1].weight.requires_grad_(False)  # a user's own choice, kept too
    seen = []
    net.register_forward_hook(lambda m, i, o: seen.append((m.training, any(p.requires_grad for p in m.parameters()))))
    x = torch.rand(5, 1, 8, 8)
    adv = make(net)(x, torch.tensor([0, 1, 2, 3, 0]))
    assert adv.shape == x.shape and seen and set(seen) == {(False, False)}
    assert net.training and all(m.training for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == [False, True, True, True]


def test_side_by_side_of_a_very_wide_photo_stays_small():
    """A 60000x1 photo made a 256 x 15,360,000 sheet per panel (gigabytes, then an out-of-memory kill)."""
    from fooling.run.attack import side_by_side

    wide = torch.rand(1, 3, 1, 60000)
    sheet = side_by_side(wide, wide, wide)
    assert sheet.shape[-1] <= 3 * 4 * 256 + 8 and sheet.shape[-2] == 1
    photo = torch.rand(1, 3, 30, 40)  # an ordinary photo: 256 high, as before
    assert side_by_side(photo, photo, photo).shape[-2:] == (256, 3 * 341 + 8)


def test_step_counts_are_bounded():
    """PGD(model, steps=10**400) was accepted (its default step size then raised OverflowError; a large finite count
    ran for ever and asked for a confidence per image and step); so were restarts and CW's binary-search steps.
    Each is bounded by its limit in fooling.limits, named in one line; the limits themselves are accepted."""
    from fooling.limits import MAX_EOT, MAX_GRADIENT_STEPS, MAX_RESTARTS, MAX_SEARCH_STEPS

    net = linear()
    for make, words in [(lambda: PGD(net, steps=10**400), "steps must be at most 100,000, not a number of about 401"),
                        (lambda: PGD(net, steps=MAX_GRADIENT_STEPS + 1), f"steps must be at most 100,000, not "
                                                                         f"{MAX_GRADIENT_STEPS + 1}"),
                        (lambda: PGD(net, steps=1e12), "steps must be at most"),
                        (lambda: PGD(net, restarts=MAX_RESTARTS + 1), "restarts must be at most"),
                        (lambda: CW(net, steps=10**400), "steps must be at most"),
                        (lambda: CW(net, search_steps=MAX_SEARCH_STEPS + 1), "search_steps must be at most"),
                        (lambda: FGSM(net, seed=-10**5000), "seed must be in 0-"),  # str() of it raised ValueError
                        (lambda: EOT(MAX_EOT + 1), f"--eot must be at most {MAX_EOT:,}")]:
        with pytest.raises(FoolingError, match=re.escape(words)) as info:
            make()
        assert "\n" not in str(info.value) and len(str(info.value)) < 200
    assert PGD(net, steps=MAX_GRADIENT_STEPS, restarts=MAX_RESTARTS).steps == MAX_GRADIENT_STEPS
    assert CW(net, steps=MAX_GRADIENT_STEPS, search_steps=MAX_SEARCH_STEPS).search_steps == MAX_SEARCH_STEPS


@pytest.mark.parametrize("args, words", [
    (["--steps", str(10**30)], "--steps must lie in [1, 100000]"), (["--steps", "100001"], "--steps must lie in"),
    (["--restarts", "1001"], "--restarts must lie in [1, 1000]"),
    (["--method", "cw-l2", "--cw-search-steps", "101"], "--cw-search-steps must lie in [1, 100]"),
    (["--set", "steps=100001"], "--steps must lie in"),
])
def test_fool_attack_step_counts_are_bounded(tmp_path, args, words):
    folder = _photos(tmp_path, 1)
    res = CliRunner().invoke(main, ["attack", "--model", "test-oracle", "--images", str(folder),
                                    "--out", str(tmp_path / "r"), *args])
    assert res.exit_code != 0 and "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error") and words in lines[0], res.output
    assert not (tmp_path / "r").exists()
    if args[0] == "--steps":  # fool ascend's --steps too: the same engine
        res = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--out", str(tmp_path / "a"), *args])
        assert res.exit_code != 0 and words in res.output and not (tmp_path / "a").exists(), res.output


def test_fool_attack_over_a_run_or_a_users_folder_offers_no_resume(tmp_path):
    """fool attack --out over an earlier attack said 'pick another --out or --resume it': attack has no --resume
    (and a folder of the user's files cannot be resumed either). Nothing there is touched."""
    folder = _photos(tmp_path, 1)
    args = ["attack", "--model", "test-oracle", "--images", str(folder / "p0.png"), "--steps", "1", "--quiet"]
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r")]).exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for out, words in ((tmp_path / "r", "already holds a run"), (mine, "already holds other files")):
        res = CliRunner().invoke(main, [*args, "--out", str(out)])
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert res.exit_code == 1 and len(lines) == 1 and words in lines[0], res.output
        assert "--resume" not in res.output
    assert {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()} == before
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
