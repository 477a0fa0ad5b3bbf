"""The classifier at device speed: memory-sized chunks, low-precision autocast, torch.compile, and (with a
GPU) channels_last, reproducible IEEE float32 kernels and the whole population in one forward pass."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from fooling.classifiers import Classifier, Preprocess, load_classifier
from fooling.classifiers import base
from fooling.errors import FoolingError

# Low-precision confidences agree with fp32 within these (absolute, per probability) on the test models.
# Measured: bf16 ~6e-3 on mnist-digitcnn and the quickly trained LeNet, fp16 ~6e-4.
TOLERANCE = {"bf16": 2e-2, "fp16": 2e-3}
# EfficientNet-Lite0 (deeper: bf16 rounding adds up): 0.023-0.037 on the CPU over 8 random 256 px images, seeds 0-5
LITE0_BF16_TOLERANCE = 6e-2


def conv_net(seed: int = 0, classes: int = 10) -> Classifier:
    """A small conv net on 28x28 grey images (resizes whatever it gets)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(256, classes))
    pre = Preprocess(size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
    return Classifier(net, name="conv", labels=[str(k) for k in range(classes)], preprocess=pre)


def big_input(crops: int = 1, device: str = "cpu") -> Classifier:
    """A cheap network that takes 224 px crops of 256 px images (ImageNet-sized preprocessing)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 7, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(32, 5))
    pre = Preprocess(size=(224, 224), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, resize=256)
    return Classifier(net, name="big", labels=list("abcde"), preprocess=pre, crops=crops, device=device)


# --- chunks ---------------------------------------------------------------------------------------------------
def test_small_populations_go_in_one_pass_on_cpu():
    c = conv_net()
    assert c.chunk_size is None
    assert c.chunk_images(torch.rand(200, 1, 28, 28)) == 200
    assert c.chunk_images(torch.rand(1000, 1, 28, 28)) == base.CPU_MAX_CHUNK


def test_cpu_chunks_stay_within_the_memory_budget():
    c = big_input()
    fixed, per = c.bytes_per_image((3, 256, 256))
    assert fixed == 0 and per > 3 * 224 * 224 * 4  # at least the prepared input
    chunk = c.chunk_images(torch.rand(400, 3, 256, 256))
    assert 1 <= chunk <= 400 and chunk * per <= base.CPU_CHUNK_BYTES
    ten = big_input(crops=10)
    assert ten.bytes_per_image((3, 256, 256))[1] == pytest.approx(10 * per, rel=0.05)  # crops count


def test_chunked_probs_equal_one_pass(monkeypatch):
    c = conv_net()
    images = torch.rand(37, 1, 28, 28)
    whole = c.probs(images)
    monkeypatch.setattr(base, "CPU_MAX_CHUNK", 5)
    assert c.chunk_images(images) == 5
    torch.testing.assert_close(c.probs(images), whole)
    c.chunk_size = 8  # a fixed chunk (network inputs) still wins
    assert c.chunk_images(images) == 8
    torch.testing.assert_close(c.probs(images), whole)


def test_fixed_chunks_count_crops():
    c = big_input(crops=10)
    c.chunk_size = 32
    assert c.chunk_images(torch.rand(50, 3, 256, 256)) == 3


def test_empty_batch():
    assert conv_net().probs(torch.rand(0, 1, 28, 28)).shape == (0, 10)


# --- precision ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_agrees_with_fp32_on_cpu(precision):
    images = torch.rand(64, 1, 28, 28)
    for c in (conv_net(1), conv_net(2)):
        reference = c.probs(images)
        c.configure(precision=precision)
        low = c.probs(images)
        assert low.dtype == torch.float32
        assert (low - reference).abs().max().item() < TOLERANCE[precision]
        torch.testing.assert_close(c.probs(images, precision="fp32"), reference)  # the fp32 override


def test_low_precision_agrees_with_fp32_on_a_trained_lenet(mnist_lenet):
    c = load_classifier(mnist_lenet, "cpu")
    images = torch.rand(64, 1, 28, 28)
    reference = c.probs(images)
    assert (c.probs(images, precision="bf16") - reference).abs().max().item() < TOLERANCE["bf16"]


def test_unknown_precision_is_refused():
    with pytest.raises(FoolingError, match="precision"):
        conv_net().configure(precision="int8")


def test_gradient_path_stays_fp32():
    c = conv_net().configure(precision="bf16")
    images = torch.rand(4, 1, 28, 28, requires_grad=True)
    logits = c.logits(images)
    assert logits.dtype == torch.float32
    logits.sum().backward()
    assert images.grad is not None


# --- compile --------------------------------------------------------------------------------------------------
def test_compile_is_opt_in_and_lazy():
    c = conv_net()
    assert not c.compiled
    c.configure(compile=True)  # torch.compile only wraps: nothing compiles until the first call
    assert c.compiled
    c.configure(compile=False)
    assert not c.compiled


class _Plain(nn.Module):
    """A network that is not a container: torch.compile's wrapper of it raises TypeError on len() (and so on
    bool()), as EfficientNet's does."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_compiled_network_that_is_not_a_container_runs(monkeypatch):
    c = conv_net()
    c.net = _Plain(c.net)
    images = torch.rand(6, 1, 28, 28)
    reference = c.probs(images)
    compile_ = torch.compile
    with pytest.raises(TypeError):
        bool(compile_(_Plain(nn.Identity()), backend="eager"))  # what `net or self.net` tripped over
    monkeypatch.setattr(torch, "compile", lambda net: compile_(net, backend="eager"))  # traced, not built
    assert torch.equal(c.configure(compile=True).probs(images), reference)


def _inductor_available() -> bool:
    return importlib.util.find_spec("torch._inductor") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _inductor_available(), reason="torch inductor is unavailable")
def test_compiled_probs_equal_eager():
    c = conv_net()
    images = torch.rand(16, 1, 28, 28)
    reference = c.probs(images)
    try:
        compiled = c.configure(compile=True).probs(images)
    except torch._dynamo.exc.BackendCompilerFailed as err:  # no C compiler or similar: inductor cannot build here
        pytest.skip(f"torch.compile cannot run here: {type(err).__name__}")
    torch.testing.assert_close(compiled, reference, atol=1e-5, rtol=1e-4)


def test_exact_cuda_numerics_turns_off_autotuning_and_tf32():
    from fooling.classifiers.base import exact_cuda_numerics

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.benchmark, cudnn.deterministic, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision,
             matmul.fp32_precision)
    try:
        cudnn.benchmark, cudnn.deterministic = True, False
        exact_cuda_numerics()
        assert not cudnn.benchmark and cudnn.deterministic
        assert cudnn.conv.fp32_precision == cudnn.rnn.fp32_precision == matmul.fp32_precision == "ieee"
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[:2]
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision = saved[2:]


def test_exact_cuda_numerics_on_a_pytorch_without_fp32_precision(monkeypatch):
    """PyTorch < 2.9 has only the legacy TF32 switches."""
    from types import SimpleNamespace

    from fooling.classifiers.base import exact_cuda_numerics

    cudnn = SimpleNamespace(benchmark=True, deterministic=False, allow_tf32=True)
    matmul = SimpleNamespace(allow_tf32=True)
    monkeypatch.setattr(torch.backends, "cudnn", cudnn)
    monkeypatch.setattr(torch.backends.cuda, "matmul", matmul)
    exact_cuda_numerics()
    assert (cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32) == (False, True, False, False)


# --- CUDA -----------------------------------------------------------------------------------------------------
@pytest.mark.cuda
def test_cuda_fp32_convolutions_are_ieee_not_tf32():
    """TF32 (PyTorch's default for cuDNN convolutions) is off once a classifier is on CUDA: a convolution over 800
    products agrees with float64 to about 1e-6, not TF32's 1e-3."""
    big_input(device="cuda")
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 32, 32, 32, generator=gen), torch.randn(64, 32, 5, 5, generator=gen)
    exact = torch.nn.functional.conv2d(x.double(), w.double())
    got = torch.nn.functional.conv2d(x.cuda(), w.cuda()).cpu().double()
    assert (got - exact).abs().max() / exact.abs().max() < 1e-5


@pytest.mark.cuda
def test_cuda_puts_the_whole_population_in_one_pass():
    c = big_input(device="cuda")
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic  # reproducible kernels
    assert c.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(400, 3, 256, 256, device="cuda")
    fixed, per = c.bytes_per_image(images.shape[1:])
    assert per > 0
    assert c.chunk_images(images) == 400
    ten = big_input(crops=10, device="cuda")
    assert ten.chunk_images(images) == 400
    torch.testing.assert_close(ten.probs(images).cpu(), big_input(crops=10).probs(images.cpu()), atol=1e-4, rtol=1e-3)


@pytest.mark.cuda
def test_cuda_chunks_follow_free_memory(monkeypatch):
    c = big_input(device="cuda")
    images = torch.rand(64, 3, 256, 256, device="cuda")
    whole = c.probs(images)
    _, per = c.bytes_per_image(images.shape[1:])
    free = int(per * 10 / base.CUDA_MEMORY_FRACTION) + torch.cuda.memory_allocated() - torch.cuda.memory_reserved()
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (max(free, 0), 1 << 40))
    assert c.chunk_images(images) < 64
    torch.testing.assert_close(c.probs(images), whole)


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_agrees_with_fp32_on_cuda(precision):
    c = conv_net()
    c.net.cuda()
    c = Classifier(c.net, name="conv", labels=c.labels, preprocess=c.spec, device="cuda")
    images = torch.rand(256, 1, 28, 28, device="cuda")
    reference = c.probs(images)
    assert (c.probs(images, precision=precision) - reference).abs().max().item() < TOLERANCE[precision]


@pytest.mark.cuda
def test_lite0_on_cuda_agrees_with_cpu_and_bf16():
    try:
        gpu = load_classifier("imagenet-efficientnet-lite0", "cuda")
    except FoolingError as err:
        pytest.skip(str(err))
    cpu = load_classifier("imagenet-efficientnet-lite0", "cpu")
    images = torch.rand(8, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    reference = cpu.probs(images)
    torch.testing.assert_close(gpu.probs(images.cuda()).cpu(), reference, atol=2e-3, rtol=0)
    low = gpu.probs(images.cuda(), precision="bf16").cpu()
    assert (low - reference).abs().max().item() < LITE0_BF16_TOLERANCE
    assert torch.equal(low.argmax(1), reference.argmax(1))


def test_lite0_bf16_agrees_with_fp32_on_the_cpu():
    """The bound the CUDA test above uses, measured where it can be: the same images, bf16 autocast on the CPU."""
    cpu = load_classifier("imagenet-efficientnet-lite0", "cpu")
    images = torch.rand(8, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    reference, low = cpu.probs(images), cpu.probs(images, precision="bf16")
    assert 1e-3 < (low - reference).abs().max().item() < LITE0_BF16_TOLERANCE  # bf16 did run, and is close
    assert torch.equal(low.argmax(1), reference.argmax(1))


@pytest.mark.cuda
def test_compile_on_cuda():
    c = big_input(device="cuda")
    images = torch.rand(32, 3, 256, 256, device="cuda")
    reference = c.probs(images)
    torch.testing.assert_close(c.configure(compile=True).probs(images), reference, atol=1e-4, rtol=1e-3)
