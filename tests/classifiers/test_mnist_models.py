"""MNIST classifiers: they classify real digits, load safely, and preprocess any input size."""

from __future__ import annotations

import pickle

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
    assert (first.probs(x).argmax(1).numpy() == y).mean() > 0.9  # 2 test epochs; the real one reaches ~98 %
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


@pytest.mark.parametrize("device", ["mps", "meta", "xla", "cpu:0:1", "cuda:99"])
def test_resolve_device_refuses_other_devices(device):
    from fooling.classifiers import resolve_device
    from fooling.errors import FoolingError

    with pytest.raises(FoolingError):
        resolve_device(device)
