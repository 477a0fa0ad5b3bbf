"""Model sources: TorchScript and ONNX files, timm:NAME, python:module:function and nn.Modules, with their
preprocessing from options or a JSON sidecar; runs made with them resume and transfer; the README examples."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import fooling
from fooling.classifiers import get_spec, load_classifier
from fooling.classifiers import sources
from fooling.classifiers.fingerprint import clear_cache, file_sha256, model_fingerprint
from fooling.cli import main
from fooling.errors import FoolingError

README = Path(__file__).resolve().parents[2] / "README.md"
BUDGET = ("--generations", "2", "--population", "8", "--device", "cpu", "--quiet")


def fool(*args: str):
    return CliRunner().invoke(main, list(args))


def one_line_error(result, *words: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error"), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def tiny_net(outputs: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, outputs)).eval()


def export_onnx(net: nn.Module, path: Path, shape=(1, 8, 8)) -> Path:
    torch.onnx.export(net, (torch.rand(2, *shape),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    return path


@pytest.fixture
def files(tmp_path, monkeypatch):
    """net.pt (TorchScript) and net.onnx of one 1x8x8 -> 3 classes network, labels.txt, in tmp_path (the cwd)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(sources.DOWNLOAD_ENV, raising=False)
    net = tiny_net()
    torch.jit.script(net).save(str(tmp_path / "net.pt"))
    export_onnx(net, tmp_path / "net.onnx")
    (tmp_path / "labels.txt").write_text("cat\ndog\n\nbird\n")
    clear_cache()
    return tmp_path


def test_torchscript_and_onnx_give_the_network_s_probabilities(files):
    net = tiny_net()
    x = torch.rand(5, 1, 8, 8)
    want = torch.softmax(net((x - 0.5) / 0.25), -1)
    for file in ("net.pt", "net.onnx"):
        name = sources.canonical_name(file, input="1x8x8", mean="0.5", std="0.25", labels="labels.txt")
        assert name.startswith(str(files / file) + "?") and "labels=" + str(files / "labels.txt") in name
        classifier = load_classifier(name, "cpu")
        assert classifier.labels == ["cat", "dog", "bird"] and classifier.input_shape == (1, 8, 8)
        torch.testing.assert_close(classifier.probs(x), want, atol=1e-5, rtol=1e-4)
        spec = get_spec(name)
        assert spec.num_classes == 3 and spec.weights_path == str(files / file)
        assert model_fingerprint(name) == file_sha256(files / file)
    assert not get_spec(str(files / "net.onnx")).differentiable  # its input 1x8x8 read from the ONNX file
    assert sources.canonical_name("mnist-lenet") == "mnist-lenet"


def test_sidecar_json_and_options_over_it(files):
    (files / "net.json").write_text(json.dumps({"input": "1x8x8", "mean": [0.5], "std": [0.25],
                                                "labels": "labels.txt"}))
    spec = get_spec(str(files / "net.pt"))
    classifier = spec.load(torch.device("cpu"), 1)
    assert classifier.labels == ["cat", "dog", "bird"] and classifier.spec.mean == (0.5,)
    assert load_classifier(sources.canonical_name("net.pt", std="2"), "cpu").spec.std == (2.0,)
    (files / "net.json").write_text(json.dumps({"inputs": "1x8x8"}))
    with pytest.raises(FoolingError, match="unknown key 'inputs'"):
        get_spec(str(files / "net.pt"))


def test_python_factory_and_binary_models(files, monkeypatch):
    (files / "my_models.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "def real_or_fake():\n    torch.manual_seed(1)\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))\n\n"
        "def one_logit():\n    torch.manual_seed(2)\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 1))\n\n"
        "def not_a_module():\n    return 3\n")
    monkeypatch.syspath_prepend(str(files))
    (files / "rf.txt").write_text("real\nfake\n")
    two = load_classifier(sources.canonical_name("python:my_models:real_or_fake", input="1x8x8",
                                                 labels="rf.txt"), "cpu")
    assert two.labels == ["real", "fake"] and two.probs(torch.rand(3, 1, 8, 8)).shape == (3, 2)
    one = load_classifier(sources.canonical_name("python:my_models:one_logit", input="1x8x8", labels="rf.txt"),
                          "cpu")
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(2)
    z = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))(x)[:, 0]
    torch.testing.assert_close(one.probs(x)[:, 1], torch.sigmoid(z))
    assert one.logits(x.requires_grad_()).requires_grad  # a python: model is differentiable
    with pytest.raises(FoolingError, match="returned int, not a torch.nn.Module"):
        get_spec("python:my_models:not_a_module?input=1x8x8")
    with pytest.raises(FoolingError, match="cannot import"):
        get_spec("python:no_such_module_here:f?input=1x8x8")
    # one logit, ONNX: sigmoid too; evolution against it runs
    export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(64, 1)), files / "bin.onnx")
    result = fooling.evolve(model="bin.onnx", labels="rf.txt", generations=2, population=8, device="cpu")
    assert [c["label"] for c in result.classes] == ["real", "fake"] and result.path.name == "bin.onnx_direct_s0"


def test_an_nn_module_from_python(files):
    net = tiny_net(2, seed=3)
    result = fooling.evolve(model=net, input="1x8x8", labels=["no", "yes"], mean=[0.5], std=0.5, generations=2,
                            population=8, device="cpu", out="runs/module")
    assert result.config["model"] == "module:Sequential" and result.finished
    assert result.config["run"]["weights_sha256"]["module:Sequential"]
    name = fooling.classifiers.from_module(net, input=(1, 8, 8), labels=["no", "yes"], mean=0.5, std=0.5,
                                           name="again")
    assert name == "module:again" and get_spec(name).num_classes == 2
    assert fooling.resume("runs/module", generations=3).summary["generation"] == 3
    ascent = fooling.ascend(model=name, steps=2, device="cpu", out="runs/module-ascent", classes=[1])
    assert ascent.summary["classes"][0]["label"] == "yes"
    with pytest.raises(FoolingError, match="needs input="):
        fooling.evolve(model=net, labels=["no", "yes"])


def test_from_module_input_that_is_not_whole_numbers_is_one_line(files):
    """input=["a", 2, 3] died with ValueError (int('a')); input=(1.5, 8, 8) was read as 1x8x8."""
    for shape, text in ((["a", 8, 8], "'ax8x8'"), ((1.5, 8, 8), "'1.5x8x8'")):
        with pytest.raises(FoolingError, match=re.escape(f"--input must be CxHxW, e.g. 3x224x224 or 1x28x28; got {text}")):
            fooling.classifiers.from_module(tiny_net(), input=shape)
    assert fooling.classifiers.from_module(tiny_net(), input=[1, 8, 8], name="listed") == "module:listed"


class _Rows(nn.Module):
    """tiny_net with its logits changed by ``change`` (the first row only, integers, ...)."""

    def __init__(self, change) -> None:
        super().__init__()
        self.net, self.change = tiny_net(), change

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.change(self.net(x))


@pytest.mark.parametrize("change, got", [(lambda y: y[:1], "(1, 3) float32"), (lambda y: y.long(), "(2, 3) int64")])
def test_an_nn_module_with_wrong_rows_or_integer_logits_is_refused_before_a_run(files, change, got):
    """A module that returns one row for a batch (or integers) was probed on one image and passed: evolve then
    failed deep in the search (ValueError: cannot reshape), an attack scored the wrong rows in silence."""
    with pytest.raises(FoolingError, match=re.escape(f"floating-point logits of shape (N, classes); for a batch of "
                                                     f"2 it returned {got}")):
        fooling.evolve(model=_Rows(change), input="1x8x8", generations=1, population=4, device="cpu", out="runs/x")
    assert not (files / "runs").exists()
    from fooling.attacks import PGD

    with pytest.raises(FoolingError, match=re.escape(f"for a batch of 2 it returned {got}")):
        PGD(_Rows(change), steps=1)(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))


def test_cli_evolve_resume_transfer_with_files(files, tmp_path):
    made = fool("evolve", "--model", "net.onnx", "--labels", "labels.txt", "--mean", "0.5", *BUDGET)
    assert made.exit_code == 0, made.output
    run = files / "runs" / "net.onnx_direct_s0"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == f"{files / 'net.onnx'}?mean=0.5&labels={files / 'labels.txt'}"
    assert config["labels"] == str(files / "labels.txt")
    assert list(config["run"]["weights_sha256"].values()) == [file_sha256(files / "net.onnx")]
    source = config["run"]["model_sources"][config["model"]]
    assert source["kind"] == "onnx" and source["input"] == "1x8x8" and source["labels"] == ["cat", "dog", "bird"]
    assert source["mean"] == [0.5] and source["std"] == [1.0] and source["weights"] == str(files / "net.onnx")
    scripted = fool("evolve", "--model", "net.pt", "--input", "1x8x8", "--labels", "labels.txt", *BUDGET)
    assert scripted.exit_code == 0, scripted.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # the recorded paths are absolute (monkeypatch.chdir in `files` restores the cwd)
    resumed = fool("evolve", "--resume", str(run), "--generations", "3", "--quiet")
    assert resumed.exit_code == 0 and "generation 3" in resumed.output, resumed.output
    out = fool("transfer", str(run), str(files / "runs" / "net.pt_direct_s0"), "--models", "../net.pt", "--input", "1x8x8",
               "--labels", str(files / "labels.txt"), "--out", str(tmp_path / "transfer"), "--quiet",
               "--device", "cpu")
    assert out.exit_code == 0, out.output
    rows = json.loads((tmp_path / "transfer" / "transfer.json").read_text())
    assert rows  # both runs scored on net.pt
    # a changed file: the resume is refused
    torch.jit.script(tiny_net(seed=9)).save(str(files / "net.pt"))
    clear_cache()
    refused = fool("evolve", "--resume", str(files / "runs" / "net.pt_direct_s0"), "--generations", "4", "--quiet")
    one_line_error(refused, "has changed since this run was made")


def test_onnx_has_no_gradients(files):
    one_line_error(fool("ascend", "--model", "net.onnx", "--steps", "2", "--device", "cpu", "--quiet",
                        "--out", str(files / "a")), "needs a differentiable model")
    assert not (files / "a").exists()
    classifier = load_classifier(str(files / "net.onnx"), "cpu")
    with pytest.raises(FoolingError, match="gives no gradients|no gradients"):
        classifier.logits(torch.rand(1, 1, 8, 8, requires_grad=True))
    with pytest.raises(FoolingError, match="differentiable"):
        fooling.ascend(model="net.onnx", steps=2, device="cpu")


@pytest.mark.parametrize("args, words", [
    (("--model", "missing.onnx"), ("missing.onnx", "does not exist")),
    (("--model", "net.pt", "--input", "8x8"), ("--input must be CxHxW",)),
    (("--model", "net.pt", "--input", "2x8x8"), ("channels must be 1 or 3",)),
    (("--model", "net.pt"), ("--input CxHxW",)),
    (("--model", "net.pt", "--input", "3x8x8", "--mean", "0.5,0.5"), ("--mean has 2 values", "3 channels")),
    (("--model", "net.onnx", "--std", "1,2"), ("--std has 2 values", "1 channels")),
    (("--model", "net.onnx", "--std", "0"), ("--std must be positive",)),
    (("--model", "net.onnx", "--labels", "two.txt"), ("gives 3 outputs", "2 classes")),
    (("--model", "net.onnx", "--labels", "nope.txt"), ("labels file", "does not exist")),
    (("--model", "net.pt", "--input", "3x8x8"), ("fails on a 3x8x8 input",)),
    (("--model", "mnist-lenet", "--input", "1x28x28"), ("--input describe a model file",)),
    (("--model", "notes.txt/x"), ("must end in .pt",)),
    (("--model", "timm:no_such_net_xyz"), ("not a timm model",)),
    (("--model", "python:nomodule"), ("python:package.module:function",)),
])
def test_bad_model_sources_give_one_error_line(files, args, words):
    (files / "two.txt").write_text("a\nb\n")
    one_line_error(fool("evolve", *args, *BUDGET, "--out", str(files / "bad")), *words)
    assert not (files / "bad").exists()


def test_retrain_refuses_model_files(files):
    one_line_error(fool("retrain", "--model", "net.pt", "--out", str(files / "r")), "fool retrain retrains")


def test_not_torchscript(files):
    torch.save(tiny_net().state_dict(), str(files / "weights.pth"))
    with pytest.raises(FoolingError, match="is not a TorchScript file"):
        get_spec(sources.canonical_name("weights.pth", input="1x8x8"))


def test_timm_offline_and_uncached_names_what_to_fetch(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(sources.DOWNLOAD_ENV, raising=False)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("downloaded"))
    result = fool("evolve", "--model", "timm:resnet18", *BUDGET, "--out", str(tmp_path / "run"))
    one_line_error(result, "timm/resnet18.a1_in1k", str(tmp_path / "hub"), "FOOLING_DOWNLOAD=1")


def test_timm_from_the_hugging_face_cache(tmp_path, monkeypatch):
    """A (randomly initialised) tiny timm model laid out in a Hugging Face cache loads and is fooled."""
    pytest.importorskip("timm")
    from fooling.compat import import_torchvision

    import_torchvision()
    import timm
    from safetensors.torch import save_file

    arch = "test_resnet.r160_in1k"
    cfg = timm.models.get_pretrained_cfg(arch)
    repo = cfg.hf_hub_id
    snapshot = tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    net = timm.create_model(arch, pretrained=False)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(snapshot / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = get_spec("timm:" + arch)
    assert spec.num_classes == 1000 and spec.input.startswith("3x160x160")
    classifier = spec.load(torch.device("cpu"), 1)
    assert classifier.probs(torch.rand(2, 3, 40, 40)).shape == (2, 1000)
    assert model_fingerprint("timm:" + arch) == file_sha256(snapshot / "model.safetensors")


def _examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Fooling your own model"):]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    examples = _examples()
    assert len(examples) == 3
    for code in examples:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "budget ['cat', 'dog', 'bird']" in out and "('fake'" in out and "module:Sequential True" in out
    assert fooling.read_run("runs/scripted").summary["generation"] == 5
    assert fooling.read_run("runs/onnx").summary["generation"] == 4
