"""Retrained MNIST networks are trained with the base network's own recipe (the paper retrained its
LeNet with its own solver), with the run's overrides on top."""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from fooling.classifiers.lenet import LeNet, caffe_recipe, robust_recipe
from fooling.retrain.mnist import MnistTask, base_recipe
from fooling.settings.retrain import RetrainSettings


def test_builtin_networks_are_retrained_with_their_own_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOLING_CACHE", str(tmp_path / "cache"))
    assert base_recipe("mnist-lenet") == caffe_recipe(0)
    assert base_recipe("mnist-lenet-b") == caffe_recipe(1)
    assert base_recipe("mnist-lenet-robust") == robust_recipe(0)
    assert base_recipe("mnist-lenet-robust-b") == robust_recipe(1)
    assert base_recipe("mnist-digitcnn") == caffe_recipe(0)  # not a LeNet: the paper's solver


def test_a_saved_lenet_is_retrained_with_its_recorded_settings(tmp_path, monkeypatch):
    from dataclasses import asdict

    monkeypatch.setenv("FOOLING_CACHE", str(tmp_path / "cache"))
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    own = replace(robust_recipe(7), augment=False, epochs=40)
    torch.save(LeNet(10).state_dict(), models / "my-net.pt")
    (models / "my-net.json").write_text(json.dumps({"arch": "lenet", "num_classes": 10, "train": asdict(own)}))
    assert base_recipe("my-net") == own
    # a built-in name the user retrained with settings of their own (`fool train --name mnist-lenet --lr 0.02`)
    custom = replace(caffe_recipe(0), lr=0.02)
    torch.save(LeNet(10).state_dict(), models / "mnist-lenet.pt")
    (models / "mnist-lenet.json").write_text(json.dumps({"arch": "lenet", "num_classes": 10, "train": asdict(custom),
                                                        "recipe": "x" * 16, "recipe_name": "custom"}))
    assert base_recipe("mnist-lenet") == custom


def test_run_overrides_apply_on_top_of_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOLING_CACHE", str(tmp_path / "cache"))
    task = MnistTask(RetrainSettings(model="mnist-lenet-b", out=str(tmp_path / "r")), tmp_path / "r")
    assert task.train_settings() == caffe_recipe(1)  # the paper's solver, 10,000 iterations, seed 1
    task = MnistTask(RetrainSettings(model="mnist-lenet-robust", epochs=3, lr=0.01, train_seed=5,
                                     out=str(tmp_path / "r")), tmp_path / "r")
    assert task.train_settings() == replace(robust_recipe(5), epochs=3, lr=0.01)
    task = MnistTask(RetrainSettings(model="mnist-lenet", epochs=2, out=str(tmp_path / "r")), tmp_path / "r")
    assert task.train_settings() == replace(caffe_recipe(0), epochs=2, iterations=None)


def test_a_base_trained_on_other_digits_than_the_embedded_ones_is_flagged(tmp_path, monkeypatch):
    """Falling back on the 5,000 embedded digits (drawn from MNIST's training set) to retrain the shipped
    mnist-lenet (trained on full MNIST) makes network 0's held-out accuracy count its own training digits: the
    table says so. With the base's own kind of data, or a base trained on the embedded digits, it does not."""
    import fooling.retrain.mnist as retrain_mnist
    from fooling.data.mnist import EMBEDDED_SOURCE, load_embedded
    from fooling.retrain.report import write_report

    monkeypatch.setenv("FOOLING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(retrain_mnist, "load_training_mnist", lambda mnist_dir=None: load_embedded())
    task = MnistTask(RetrainSettings(model="mnist-lenet", out=str(tmp_path / "r")), tmp_path / "r")
    caveat = task.caveat()
    assert caveat and "full MNIST" in caveat and EMBEDDED_SOURCE in caveat and "does not compare" in caveat
    row = {"iteration": 0, "network": "mnist-lenet", "fooling_train_images": 0, "held_out_accuracy": 1.0,
           "held_out_fooling_share": None, "median_confidence": 1.0, "classes_99": 10, "classes_9999": 10,
           "evolved_images": 0, "evaluations": 0, "confidence": {"0": 1.0}}
    (tmp_path / "r").mkdir()
    write_report(tmp_path / "r", [row], {"model": "mnist-lenet", "encoding": "direct"}, caveat=caveat)
    assert f"Note: {caveat}." in (tmp_path / "r" / "table.md").read_text()
    assert json.loads((tmp_path / "r" / "table.json").read_text())["caveat"] == caveat
    # a LeNet trained on the embedded digits themselves: like for like
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True, exist_ok=True)
    torch.save(LeNet(10).state_dict(), models / "small-net.pt")
    (models / "small-net.json").write_text(json.dumps({"arch": "lenet", "num_classes": 10, "data": EMBEDDED_SOURCE}))
    assert MnistTask(RetrainSettings(model="small-net", out=str(tmp_path / "r")), tmp_path / "r").caveat() is None
    # full MNIST data: no caveat
    full = replace(load_embedded(), source="IDX files in /data/mnist")
    monkeypatch.setattr(retrain_mnist, "load_training_mnist", lambda mnist_dir=None: full)
    assert MnistTask(RetrainSettings(model="mnist-lenet", out=str(tmp_path / "r")), tmp_path / "r").caveat() is None
