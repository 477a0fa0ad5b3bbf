"""The classifier wrapper every strategy talks to.

A :class:`Classifier` takes images in [0, 1] of any size, shape (N, C, H, W),
does the network's own resizing, cropping and normalisation inside, and returns
softmax probabilities (N, K). ``probs`` runs in chunks under ``inference_mode``, sized to the device's memory (the whole
population in one forward pass when it fits; see :meth:`Classifier.chunk_images`), optionally in
bf16 / fp16 autocast (``precision``) and through ``torch.compile`` (``compile``);
``logits`` is the differentiable path used by gradient ascent (always the plain fp32 network).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FoolingError
from ..settings.evolve import MEMORY_FORMATS

# An evolved image reaches the network resized; it may be at most this many times smaller (a side)
# than the network's input. Smaller images would reach it as a few flat blocks of colour.
MAX_UPSCALE = 4

PRECISIONS = ("fp32", "bf16", "fp16")  # what the no-gradient forward pass (probs) may run in
# How the network's 4-D weights (and the no-gradient pass's input) are laid out in memory (MEMORY_FORMATS):
#   auto                  channels-last wherever the network runs in it and gives the same outputs (a probe at load;
#                         networks with no 4-D weights, or on a CPU build without oneDNN, stay contiguous);
#   channels-last         always (an error if the network cannot run in it);
#   contiguous            never: PyTorch's default layout;
#   channels-last-on-cuda what fooling did before `auto` existed (runs begun then resume with it: same numbers).
# Channels-last is what oneDNN's and cuDNN's fastest convolutions want: on the CPU here, 1.5x mnist-lenet's forward
# pass, 1.2x mnist-digitcnn's and 1.45x EfficientNet-Lite0's (scripts/bench_layout.py). The layout changes the
# order of the sums, so outputs differ from the contiguous network's in the 6th-7th digit: a run records its
# choice and keeps it when resumed.
LAYOUT_PROBE_TOLERANCE = 1e-3  # a probe's channels-last probabilities must match the contiguous ones this closely
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# Chunking of probs(): on CUDA a chunk is as many images as fit in CUDA_MEMORY_FRACTION of the free device
# memory, by the bytes per image that two probe batches measured (torch.cuda.max_memory_allocated); on CPU
# as many as fit in CPU_CHUNK_BYTES by an estimate of the activations per image (the largest layer output,
# times CPU_PEAK_FACTOR), at most CPU_MAX_CHUNK images (bigger chunks gain nothing on CPU; see
# tests/classifiers/test_chunking.py and scripts/bench_gpu.py).
CUDA_MEMORY_FRACTION = 0.8
CUDA_PROBES = (2, 10)  # probe batch sizes: the difference of their peaks is the cost of 8 images
CPU_CHUNK_BYTES = 1 << 29
CPU_PEAK_FACTOR = 3
CPU_MAX_CHUNK = 256
SCRIPTED_ACTIVATIONS = 16  # a TorchScript network's largest layer output, guessed in copies of its input


def exact_cuda_numerics() -> None:
    """Reproducible IEEE float32 on CUDA for this process (set when a classifier is built there).

    cuDNN's autotuner (``benchmark``) times candidate kernels and keeps the fastest, so another process (a resumed
    run) may pick another kernel and round otherwise, and the run would no longer equal an uninterrupted one;
    ``deterministic`` keeps cuDNN to kernels that give the same bits every time; and PyTorch lets cuDNN
    convolutions use TF32 (a 10-bit mantissa) by default on Ampere and later GPUs, which would make "fp32"
    confidences (and the fp32 re-scoring of a bf16 run's elites) good to about 1e-3, too coarse for 99.99 %.
    Costs some speed; ``--precision bf16`` is the fast option. On PyTorch >= 2.9 it sets the new-style
    ``fp32_precision`` flags (mixing the two APIs raises there): code in the same process should not then read the
    legacy ``torch.backends.cudnn.allow_tf32`` or enter ``torch.backends.cudnn.flags()``."""
    cudnn = torch.backends.cudnn
    cudnn.benchmark, cudnn.deterministic = False, True
    if hasattr(cudnn, "conv") and hasattr(cudnn.conv, "fp32_precision"):  # PyTorch >= 2.9 (mixing the APIs raises)
        cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def autocast(device: torch.device, precision: str) -> ContextManager[Any]:
    """The autocast context of ``precision`` on ``device`` ("fp32": none)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


@dataclass(frozen=True)
class Preprocess:
    """How a network wants its input.

    size: (H, W) the network sees. resize: shorter side to resize to before
    cropping (None: resize straight to ``size``). channels: 1 (grey) or 3 (RGB).
    mean / std: per-channel normalisation applied after resizing.
    """

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: Optional[int] = None


def centre_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> the central (N, C, h, w) window (a view)."""
    h, w = size
    H, W = images.shape[-2:]
    top, left = (H - h) // 2, (W - w) // 2
    return images[..., top : top + h, left : left + w]


def ten_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Four corners, centre and their mirrors: (N, C, H, W) -> (10, N, C, h, w)."""
    h, w = size
    H, W = images.shape[-2:]
    crops = [
        images[..., :h, :w],
        images[..., :h, W - w :],
        images[..., H - h :, :w],
        images[..., H - h :, W - w :],
        centre_crop(images, size),
    ]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops)


class Classifier:
    """A frozen network plus its preprocessing: images (N, C, H, W) in [0, 1] -> probabilities (N, K).

    ``crops=10`` averages the softmax over the ten crops of :func:`ten_crop` (the
    paper's ImageNet scoring); ``crops=1`` resizes (and centre-crops) once.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        labels: Sequence[str],
        preprocess: Preprocess,
        device: torch.device | str = "cpu",
        crops: int = 1,
        chunk_size: Optional[int] = None,
        precision: str = "fp32",
        compile: bool = False,
        memory_format: str = "auto",
    ) -> None:
        self.name = name
        self.spec = preprocess
        self._bytes_per_image: dict[tuple, tuple[float, float]] = {}  # (shape, precision) -> (fixed, per image)
        self.crops = 1
        self.set_crops(crops)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.labels = list(labels)
        self.chunk_size = chunk_size  # network inputs (images x crops) per forward pass; None: by memory
        self._mean = torch.tensor(preprocess.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(preprocess.std, device=self.device).view(1, -1, 1, 1)
        self.precision = "fp32"
        self.memory_format = "contiguous"  # the layout in force: "channels-last" or "contiguous" (see MEMORY_FORMATS)
        self._compiled: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
        self._takes_channels_last: "Optional[bool | str]" = None  # the probe's answer (True, or why not), once asked
        if self.device.type == "cuda":
            exact_cuda_numerics()
        self.configure(precision=precision, compile=compile, memory_format=memory_format)

    @property
    def takes_crops(self) -> bool:
        """Whether the network takes crops of a larger image (resize before cropping): only then can ``crops=10``
        score it (the paper's ImageNet networks do; MNIST ones see their whole input)."""
        return self.spec.resize is not None and self.spec.resize > min(self.spec.size)

    def set_crops(self, crops: int) -> "Classifier":
        """Score with ``crops`` (1, or 10: :func:`ten_crop`); a one-line FoolingError for 10 on a network that sees
        its whole input (:attr:`takes_crops`). Returns self."""
        if crops not in (1, 10):
            raise ValueError("crops must be 1 or 10")
        if crops == 10 and not self.takes_crops:
            h, w = self.spec.size
            raise FoolingError(f"--crops 10 is for networks that take crops of a larger image (ImageNet ones); "
                               f"{self.name} sees its whole {h}x{w} input, so use --crops 1")
        if crops != self.crops:
            self.crops = crops
            self._bytes_per_image.clear()  # measured on prepared inputs, crops included
        return self

    def configure(self, *, precision: Optional[str] = None, compile: Optional[bool] = None,
                  memory_format: Optional[str] = None) -> "Classifier":
        """Set the no-gradient forward pass's ``precision`` (fp32 | bf16 | fp16: autocast), whether it runs
        through ``torch.compile``, and the network's ``memory_format`` (one of MEMORY_FORMATS; it applies to the
        gradient paths too). None leaves a setting as it is. Returns self."""
        if precision is not None:
            if precision not in PRECISIONS:
                raise FoolingError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
            self.precision = precision
        if memory_format is not None:
            layout = self._layout(memory_format)
            if layout != self.memory_format:
                self.net = self.net.to(memory_format=torch.channels_last if layout == "channels-last"
                                       else torch.contiguous_format)
                self.memory_format = layout
                self._bytes_per_image.clear()
                if self._compiled is not None:  # compile the network in its new layout
                    self._compiled = torch.compile(self.net)
        if compile is not None:
            if compile and self._compiled is None:
                self._compiled = torch.compile(self.net)
            elif not compile:
                self._compiled = None
        return self

    def _layout(self, memory_format: str) -> str:
        """The layout ("channels-last" or "contiguous") that ``memory_format`` means for this network here."""
        if memory_format not in MEMORY_FORMATS:
            raise FoolingError(f"--memory-format must be one of {', '.join(MEMORY_FORMATS)}, not {memory_format!r}")
        if memory_format == "channels-last-on-cuda":
            return "channels-last" if self.device.type == "cuda" else "contiguous"
        if memory_format == "contiguous":
            return "contiguous"
        if self._takes_channels_last is None:
            self._takes_channels_last = self._probe_channels_last()
        if self._takes_channels_last is True:
            return "channels-last"
        if memory_format == "channels-last":
            raise FoolingError(f"{self.name} cannot run channels-last ({self._takes_channels_last}); "
                               "use --memory-format auto or contiguous")
        return "contiguous"

    def _probe_channels_last(self) -> "bool | str":
        """True if the network runs channels-last and gives the contiguous network's probabilities on a probe
        batch (within LAYOUT_PROBE_TOLERANCE); else why not (a short phrase). Leaves the network as it found it."""
        if not any(p.dim() == 4 for p in [*self.net.parameters(), *self.net.buffers()]):
            return "it has no 4-D weights"
        if self.device.type == "cpu" and not torch.backends.mkldnn.is_available():
            return "this PyTorch has no oneDNN"
        before = torch.channels_last if self.memory_format == "channels-last" else torch.contiguous_format
        c, h, w = self.input_shape
        probe = torch.linspace(0.0, 1.0, 2 * c * h * w, device=self.device).view(2, c, h, w)  # no random draws
        try:
            with torch.inference_mode():
                x = self.prepare(probe)
                want = torch.softmax(self.net.to(memory_format=torch.contiguous_format)(x).float(), dim=-1)
                got = torch.softmax(self.net.to(memory_format=torch.channels_last)(
                    x.contiguous(memory_format=torch.channels_last)).float(), dim=-1)
        except Exception as err:  # noqa: BLE001 - a network that cannot run channels-last raises anything
            return f"{type(err).__name__} in its forward pass"
        finally:
            self.net = self.net.to(memory_format=before)
        if got.shape != want.shape or not bool((got - want).abs().max() <= LAYOUT_PROBE_TOLERANCE):
            return "its outputs change"
        return True

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the network itself sees: the natural size of images to evolve."""
        return (self.spec.channels, *self.spec.size)

    @property
    def min_image_side(self) -> int:
        """The smallest side of a (square) image this classifier takes: its longer input side / MAX_UPSCALE, so
        that neither side is scaled up more than MAX_UPSCALE times (a 4x4 image on a 16x24 input: 6 times)."""
        return max(1, math.ceil(max(self.spec.size) / MAX_UPSCALE))

    def _channels(self, images: torch.Tensor) -> torch.Tensor:
        c = images.shape[1]
        if c == self.spec.channels:
            return images
        if c == 3 and self.spec.channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype)
            return (images * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
        if c == 1 and self.spec.channels == 3:
            return images.expand(-1, 3, -1, -1)
        raise ValueError(f"cannot feed {c}-channel images to {self.name}")

    def _resize(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(images.shape[-2:]) == tuple(size):
            return images
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)

    def prepare(self, images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> normalised network input (N·crops, C', h, w), crops outermost;
        ``channels_last``: laid out so (normalised straight into that layout: no copy after)."""
        images = self._channels(images.to(self.device, torch.float32))
        spec = self.spec
        if spec.resize is not None:
            H, W = images.shape[-2:]
            scale = spec.resize / min(H, W)
            images = self._resize(images, (max(spec.size[0], round(H * scale)), max(spec.size[1], round(W * scale))))
            if self.crops == 10:
                images = ten_crop(images, spec.size).flatten(0, 1)
            else:
                images = centre_crop(images, spec.size)
        elif self.crops == 10:
            images = ten_crop(self._resize(images, spec.size), spec.size).flatten(0, 1)
        else:
            images = self._resize(images, spec.size)
        out = torch.empty_like(images, memory_format=torch.channels_last) if channels_last else None
        return torch.sub(images, self._mean, out=out).div_(self._std)  # one new batch, not two: the same values

    def outputs(self, x: torch.Tensor, net: Optional[Callable] = None) -> torch.Tensor:
        """The network's (``net``'s) logits for a prepared input ``x`` (n, C, h, w); a one-line FoolingError
        unless they are floating-point and of shape (n, classes): a network that drops or merges rows, or
        returns integers, would otherwise be scored wrongly without a word."""
        out = (self.net if net is None else net)(x)
        if not (isinstance(out, torch.Tensor) and out.is_floating_point()
                and tuple(out.shape) == (x.shape[0], self.num_classes)):
            got = (f"{tuple(out.shape)} {str(out.dtype).replace('torch.', '')}" if isinstance(out, torch.Tensor)
                   else type(out).__name__)
            raise FoolingError(f"{self.name} must return floating-point logits of shape (N, {self.num_classes}); "
                               f"for a batch of {x.shape[0]} it returned {got}")
        return out

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable logits (N, K); with 10 crops, the mean of the crops' logits."""
        n = images.shape[0]
        out = self.outputs(self.prepare(images))
        return out.view(self.crops, n, -1).mean(0) if self.crops > 1 else out

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable log-softmax (N, K), averaged in probability space over crops."""
        n = images.shape[0]
        logp = torch.log_softmax(self.outputs(self.prepare(images)).float(), dim=-1)
        if self.crops > 1:
            logp = torch.logsumexp(logp.view(self.crops, n, -1), dim=0) - torch.log(torch.tensor(float(self.crops)))
        return logp

    def _forward_probs(self, images: torch.Tensor, precision: str, net: Optional[Callable] = None) -> torch.Tensor:
        """One chunk, no gradient: images (n, C, H, W) -> crop-averaged softmax (n, K) float32."""
        n = images.shape[0]
        x = self.prepare(images, channels_last=self.memory_format == "channels-last")
        if net is None:
            net = self._compiled if self._compiled is not None else self.net
        with autocast(self.device, precision):
            out = self.outputs(x, net)
        p = torch.softmax(out.float(), dim=-1)
        return p.view(self.crops, n, -1).mean(0) if self.crops > 1 else p

    def bytes_per_image(self, shape: Sequence[int], precision: Optional[str] = None) -> tuple[float, float]:
        """(fixed bytes, bytes per image) one forward pass of :meth:`probs` holds beyond its input, for images of
        ``shape`` (C, H, W), crops included; measured once per shape and precision. CUDA: the peak allocated
        memory (torch.cuda.max_memory_allocated) of two probe batches; CPU: CPU_PEAK_FACTOR times the
        largest layer output plus the prepared input, from one probe image (fixed bytes 0)."""
        precision = precision or self.precision
        key = (tuple(int(v) for v in shape), precision)
        if key not in self._bytes_per_image:
            self._bytes_per_image[key] = (self._measure_cuda(key[0], precision) if self.device.type == "cuda"
                                          else (0.0, self._estimate_cpu(key[0])))
        return self._bytes_per_image[key]

    def _measure_cuda(self, shape: tuple[int, ...], precision: str) -> tuple[float, float]:
        peaks = []
        with torch.inference_mode():
            for n in CUDA_PROBES:
                images = torch.rand(n, *shape, device=self.device)
                torch.cuda.synchronize(self.device)
                base = torch.cuda.memory_allocated(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                self._forward_probs(images, precision, net=self.net)  # the plain network: no compile for probes
                torch.cuda.synchronize(self.device)
                peaks.append(torch.cuda.max_memory_allocated(self.device) - base)
                del images
        (n0, n1), (p0, p1) = CUDA_PROBES, peaks
        per = max((p1 - p0) / (n1 - n0), p1 / n1 / 4, 1.0)  # a floor against noise (allocator rounding)
        return max(0.0, p1 - n1 * per), per

    def _estimate_cpu(self, shape: tuple[int, ...]) -> float:
        largest = [0]

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                largest[0] = max(largest[0], output.numel() * output.element_size())

        # TorchScript modules take no hooks: their layers are unseen, so guess SCRIPTED_ACTIVATIONS input copies
        leaves = [m for m in self.net.modules() if not list(m.children())
                  and not isinstance(m, torch.jit.ScriptModule)]
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            with torch.inference_mode():
                prepared = self.prepare(torch.rand(1, *shape, device=self.device))
                self.net(prepared)
        finally:
            for h in handles:
                h.remove()
        if any(isinstance(m, torch.jit.ScriptModule) for m in self.net.modules()):
            largest[0] = max(largest[0], SCRIPTED_ACTIVATIONS * prepared.numel() * prepared.element_size())
        return float(CPU_PEAK_FACTOR * largest[0] + prepared.numel() * prepared.element_size())

    def chunk_images(self, images: torch.Tensor, precision: Optional[str] = None) -> int:
        """How many of ``images`` (N, C, H, W) one forward pass of :meth:`probs` takes: all N when they fit.

        A fixed ``chunk_size`` (network inputs, crops included) wins; otherwise CUDA fits the chunk into
        CUDA_MEMORY_FRACTION of the free memory (free on the device plus what PyTorch's allocator holds
        unused) by :meth:`bytes_per_image`, and CPU into CPU_CHUNK_BYTES (at most CPU_MAX_CHUNK images)."""
        n = images.shape[0]
        if self.chunk_size is not None:
            return max(1, min(n, self.chunk_size // self.crops))
        fixed, per = self.bytes_per_image(images.shape[1:], precision)
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            fit = int((CUDA_MEMORY_FRACTION * free - fixed) // per)
        else:
            fit = min(CPU_MAX_CHUNK, int(CPU_CHUNK_BYTES // per))
        return max(1, min(n, fit))

    def probs(self, images: torch.Tensor, precision: Optional[str] = None) -> torch.Tensor:
        """Softmax probabilities (N, K), float32 on the classifier's device, no gradient.

        ``precision`` (fp32 | bf16 | fp16) overrides the classifier's own for this call (``"fp32"``: the
        reference numbers, e.g. to re-score elites found in low precision)."""
        precision = precision or self.precision
        out = []
        with torch.inference_mode():
            step = self.chunk_images(images, precision) if images.shape[0] else 1
            for start in range(0, images.shape[0], step):
                out.append(self._forward_probs(images[start : start + step], precision,
                                               net=self.net if precision == "fp32" and self.precision != "fp32"
                                               else None))
        if not out:
            return torch.empty(0, self.num_classes, device=self.device)
        return torch.cat(out) if len(out) != 1 else out[0]

    __call__ = probs
