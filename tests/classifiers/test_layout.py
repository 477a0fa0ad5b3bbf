"""--memory-format: channels-last networks where they run so (a probe at load), contiguous otherwise, and the
layout older runs used when they are resumed (bit for bit)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from fooling.classifiers import Classifier, Preprocess, load_classifier
from fooling.errors import FoolingError
from fooling.run.ascend import AscentRun
from fooling.run.evolve import EvolutionRun
from fooling.settings.ascend import AscendSettings
from fooling.settings.evolve import EvolveSettings

GREY = Preprocess(size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this PyTorch has no oneDNN")


class ViewAfterConv(nn.Module):
    """A network that flattens with .view (as many hand-written ones do): it cannot run channels-last."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 24 * 24, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).view(x.shape[0], -1))


def small_conv() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 8 * 8, 10))


def conv_net(memory_format: str = "auto") -> Classifier:
    return Classifier(small_conv(), name="conv", labels=[str(k) for k in range(10)], preprocess=GREY,
                      memory_format=memory_format)


def weights_layout(c: Classifier) -> str:
    weight = next(p for p in c.net.parameters() if p.dim() == 4 and p.shape[1] > 1)  # one channel: both layouts
    return "channels-last" if weight.is_contiguous(memory_format=torch.channels_last) \
        and not weight.is_contiguous() else "contiguous"


@needs_onednn
def test_auto_runs_a_conv_net_channels_last_with_the_same_probabilities():
    fast, plain = conv_net(), conv_net("contiguous")
    assert fast.memory_format == weights_layout(fast) == "channels-last"
    assert plain.memory_format == weights_layout(plain) == "contiguous"
    images = torch.rand(64, 1, 28, 28)
    torch.testing.assert_close(fast.probs(images), plain.probs(images), atol=1e-5, rtol=0)
    # the gradient path (ascent, attacks) runs in the same layout and agrees too
    x = images[:4].clone().requires_grad_(True)
    fast.logits(x)[:, 3].sum().backward()
    y = images[:4].clone().requires_grad_(True)
    plain.logits(y)[:, 3].sum().backward()
    torch.testing.assert_close(x.grad, y.grad, atol=1e-5, rtol=1e-4)


@needs_onednn
def test_the_shipped_networks_run_channels_last():
    for name in ("mnist-lenet", "mnist-digitcnn"):
        assert load_classifier(name, "cpu").memory_format == "channels-last"


def test_a_network_that_cannot_run_channels_last_stays_contiguous():
    c = Classifier(ViewAfterConv(), name="viewer", labels=list("abc"), preprocess=GREY)
    assert c.memory_format == weights_layout(c) == "contiguous"
    assert c.probs(torch.rand(5, 1, 28, 28)).shape == (5, 3)
    with pytest.raises(FoolingError, match="viewer cannot run channels-last .*--memory-format auto or contiguous"):
        c.configure(memory_format="channels-last")
    mlp = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(784, 3)), name="mlp", labels=list("abc"), preprocess=GREY)
    assert mlp.memory_format == "contiguous" and mlp._takes_channels_last == "it has no 4-D weights"


def test_unknown_memory_format_is_refused():
    with pytest.raises(FoolingError, match="--memory-format must be one of auto, channels-last"):
        conv_net("nhwc")


def test_the_probe_draws_no_random_numbers():
    net = small_conv()
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    Classifier(net, name="conv", labels=[str(k) for k in range(10)], preprocess=GREY)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_the_older_layout_gives_the_contiguous_numbers_bit_for_bit():
    """channels-last-on-cuda is contiguous on a CPU: a network turned channels-last and back scores as one never
    turned (what lets runs from before --memory-format resume bit for bit)."""
    images = torch.rand(32, 1, 28, 28)
    plain = conv_net("contiguous").probs(images)
    c = conv_net()
    c.configure(memory_format="channels-last-on-cuda")
    assert c.memory_format == weights_layout(c) == "contiguous"
    assert torch.equal(c.probs(images), plain)


def _drop_memory_format(run_dir) -> None:
    """Make config.json look as a run's from before --memory-format existed."""
    path = run_dir / "config.json"
    record = json.loads(path.read_text())
    del record["memory_format"]
    record["run"].pop("memory_formats", None)
    path.write_text(json.dumps(record, indent=2))


def test_an_evolve_run_records_its_layout_and_an_older_one_resumes_in_its_own(tmp_path):
    settings = dict(model="mnist-lenet", population=16, generations=6, checkpoint_every=3, checkpoint_seconds=0,
                    device="cpu", seed=2)
    straight = EvolutionRun.start(EvolveSettings(**settings, memory_format="channels-last-on-cuda",
                                                 out=str(tmp_path / "a")))
    expected = straight.run(progress=False)
    record = json.loads((tmp_path / "a" / "config.json").read_text())
    assert record["memory_format"] == "channels-last-on-cuda"
    assert record["run"]["memory_formats"] == {"mnist-lenet": "contiguous"}

    old = EvolutionRun.start(EvolveSettings(**settings, memory_format="channels-last-on-cuda",
                                            out=str(tmp_path / "b")))
    old.run(progress=False, stop_after=3)
    _drop_memory_format(tmp_path / "b")
    resumed = EvolutionRun.resume(tmp_path / "b")
    assert resumed.config.memory_format == "channels-last-on-cuda"
    assert resumed.classifiers[0].memory_format == "contiguous"
    assert resumed.run(progress=False)["classes"] == expected["classes"]
    assert (tmp_path / "b" / "classes.csv").read_text() == (tmp_path / "a" / "classes.csv").read_text()


def test_an_older_ascent_resumes_in_its_own_layout(tmp_path):
    config = AscendSettings(model="mnist-lenet", classes=[0], steps=4, device="cpu", checkpoint_every=2,
                            out=str(tmp_path / "a"))
    run = AscentRun(config)
    assert run.classifier.memory_format == ("channels-last" if torch.backends.mkldnn.is_available() else "contiguous")
    run.run(progress=False, stop_after=2)
    _drop_memory_format(tmp_path / "a")
    resumed = AscentRun.resume(tmp_path / "a")
    assert resumed.config.memory_format == "channels-last-on-cuda"
    assert resumed.classifier.memory_format == "contiguous"


@pytest.mark.cuda
def test_auto_is_channels_last_on_cuda():
    c = Classifier(conv_net().net, name="conv", labels=[str(k) for k in range(10)], preprocess=GREY, device="cuda")
    assert c.memory_format == weights_layout(c) == "channels-last"
    viewer = Classifier(ViewAfterConv(), name="viewer", labels=list("abc"), preprocess=GREY, device="cuda")
    assert viewer.memory_format == "contiguous"  # before auto, such a network failed on CUDA
