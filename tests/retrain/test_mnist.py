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
