"""Models from outside the registry: a TorchScript or ONNX file, ``timm:NAME``, ``python:pkg.mod:function``
and, from Python, an ``nn.Module`` (:func:`from_module`).

A source's *name* says everything needed to load it again, so that config.json (and through it
``--resume``, ``fool transfer`` and the gallery) finds the model with nothing else:

- ``/abs/path/net.onnx`` or ``/abs/path/net.pt`` (TorchScript), with preprocessing and labels from a
  JSON sidecar beside the file (``net.json``: ``{"input": "3x224x224", "mean": [...], "std": [...],
  "labels": "labels.txt" or [...], "resize": 256}``) and/or options appended to the name:
  ``/abs/net.onnx?input=3x224x224&mean=0.485,0.456,0.406&std=0.229,0.224,0.225&labels=/abs/labels.txt``
  (options win over the sidecar). :func:`canonical_name` turns what a user typed (a relative path,
  ``--input`` …) into that form.
- ``timm:NAME``: a timm model with its pretrained weights from the Hugging Face cache
  (``$HF_HUB_CACHE``); nothing is downloaded unless ``FOOLING_DOWNLOAD=1``.
- ``python:package.module:function``: a function returning an ``nn.Module`` (logits), imported and called.
- ``module:NAME``: an ``nn.Module`` registered in this process by :func:`from_module`.

Loading runs no code from a weights file: ONNX files run in onnxruntime; timm weights are read as
safetensors or with ``torch.load(weights_only=True)``. The exceptions are the ones the user names as
code: a TorchScript file *is* a program (``torch.jit.load`` runs it) and ``python:`` imports a module.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from urllib.parse import quote, unquote

import torch
from torch import nn

from ..errors import FoolingError
from .base import Classifier, Preprocess
from .registry import ModelSpec, register

TIMM_PREFIX, PYTHON_PREFIX, MODULE_PREFIX = "timm:", "python:", "module:"
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".jit", ".ts", ".torchscript")
ONNX_SUFFIXES = (".onnx",)
OPTIONS = ("input", "mean", "std", "labels")  # what --input, --mean, --std, --labels set
SIDECAR_KEYS = (*OPTIONS, "resize")
DOWNLOAD_ENV = "FOOLING_DOWNLOAD"
NOT_DIFFERENTIABLE = ("{name} runs in onnxruntime, which gives no gradients: {what} needs a differentiable model "
                      "(a TorchScript file, timm:, python: or a built-in model); `fool evolve` and `fool transfer` "
                      "work with it")
_OPTION_TAIL = re.compile(r"^(input|mean|std|labels)=[^&]*(&(input|mean|std|labels)=[^&]*)*$")
_INPUT = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*$")
_cache: dict[tuple, ModelSpec] = {}
_described: dict[str, dict[str, Any]] = {}  # name -> what it resolved to (describe_sources)


# --- names ----------------------------------------------------------------------------------------
def split_name(name: str) -> tuple[str, dict[str, str]]:
    """``base?key=value&...`` -> (base, {key: value}); a name without options -> (name, {})."""
    if "?" in name:
        base, tail = name.rsplit("?", 1)
        if _OPTION_TAIL.match(tail):
            return base, {k: unquote(v) for k, v in (part.split("=", 1) for part in tail.split("&"))}
    return name, {}


def kind(name: str) -> Optional[str]:
    """torchscript | onnx | timm | python | module, or None for a registry name."""
    base, _ = split_name(name) if isinstance(name, str) else ("", {})
    if base.startswith(TIMM_PREFIX):
        return "timm"
    if base.startswith(PYTHON_PREFIX):
        return "python"
    if base.startswith(MODULE_PREFIX):
        return "module"
    suffix = Path(base).suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    return None


def is_source(name: str) -> bool:
    return kind(name) is not None


def runs_code(name: str) -> bool:
    """Whether loading ``name`` runs a program: ``python:`` imports and calls a function, a TorchScript file
    holds one. A model named only by a run directory's files is never loaded if so (see :func:`same_source`)."""
    return kind(name) in ("python", "torchscript")


def same_source(a: str, b: str) -> bool:
    """Whether two model names load the same thing (options such as ?input= aside; files compared by path)."""
    base_a, base_b = split_name(a)[0], split_name(b)[0]
    if base_a == base_b:
        return True
    return is_file_source(a) and is_file_source(b) and Path(base_a).resolve() == Path(base_b).resolve()


def is_file_source(name: str) -> bool:
    return kind(name) in ("torchscript", "onnx")


def short_name(name: str) -> str:
    """A name fit for a folder: ``net.onnx`` for a file, ``timm-resnet18`` for ``timm:resnet18``."""
    base, _ = split_name(name)
    if is_file_source(name):
        return Path(base).name
    return base.replace(":", "-").replace("/", "-")


def _join(base: str, options: dict[str, str]) -> str:
    tail = "&".join(f"{k}={quote(options[k], safe='/,.:-_ ')}" for k in OPTIONS if options.get(k) is not None)
    return f"{base}?{tail}" if tail else base


def _as_text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def canonical_name(name: str, input: Optional[str] = None, mean: Any = None, std: Any = None,
                   labels: Optional[str] = None) -> str:
    """What a user typed -> the name a run records: a file's absolute path, the options (checked) appended,
    a labels file's path made absolute. A registry name comes back unchanged (options: a FoolingError)."""
    given = {"input": _as_text(input), "mean": _as_text(mean), "std": _as_text(std), "labels": _as_text(labels)}
    given = {k: v for k, v in given.items() if v is not None}
    source = kind(name)
    if source is None:
        if given:
            flags = ", ".join(f"--{k}" for k in given)
            raise FoolingError(f"{flags} describe a model file (.pt, .onnx), timm: or python: model; "
                               f"{name} is a built-in model with its own")
        return name
    base, options = split_name(name)
    if source in ("torchscript", "onnx"):
        base = os.path.abspath(os.path.expanduser(base))
    options = {**options, **given}
    if options.get("labels"):
        options["labels"] = os.path.abspath(os.path.expanduser(options["labels"]))
    _check_options(options, name)
    return _join(base, options)


def canonical_names(names: Sequence[str], input: Optional[str] = None, mean: Any = None, std: Any = None,
                    labels: Optional[str] = None) -> list[str]:
    """:func:`canonical_name` for each of an ensemble's models; the options go to its model sources (an error
    if none is one)."""
    opts = {"input": input, "mean": mean, "std": std, "labels": labels}
    if not any(is_source(n) for n in names):
        return [canonical_name(n, **opts) for n in names]  # raises if options were given
    return [canonical_name(n, **opts) if is_source(n) else n for n in names]


def _check_options(options: dict[str, str], name: str) -> None:
    channels = parse_input(options["input"])[0] if options.get("input") else None
    for key in ("mean", "std"):
        if options.get(key):
            values = parse_floats(options[key], key)
            if channels is not None and len(values) not in (1, channels):
                raise FoolingError(f"--{key} has {len(values)} values but --input {options['input']} has "
                                   f"{channels} channels")
    if options.get("labels") and not Path(options["labels"]).is_file():
        raise FoolingError(f"labels file {options['labels']} does not exist")


# --- options --------------------------------------------------------------------------------------
def parse_input(value: str) -> tuple[int, int, int]:
    """'3x224x224' -> (3, 224, 224): channels 1 or 3, sides 1-4096."""
    match = _INPUT.match(str(value))
    if not match:
        raise FoolingError(f"--input must be CxHxW, e.g. 3x224x224 or 1x28x28; got {value!r}")
    c, h, w = (int(v) for v in match.groups())
    if c not in (1, 3) or not (0 < h <= 4096 and 0 < w <= 4096):
        raise FoolingError(f"--input {value}: channels must be 1 or 3 and sides 1-4096")
    return c, h, w


def parse_floats(value: Any, what: str) -> tuple[float, ...]:
    """'0.485,0.456,0.406' (or a list) -> floats; std must be positive."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        values = tuple(float(v) for v in parts if str(v).strip())
    except ValueError:
        raise FoolingError(f"--{what} must be numbers separated by commas, got {value!r}") from None
    if not values or any(v != v for v in values):
        raise FoolingError(f"--{what} must be numbers separated by commas, got {value!r}")
    if what == "std" and any(v <= 0 for v in values):
        raise FoolingError(f"--std must be positive, got {value!r}")
    return values


def read_labels(value: Any, folder: Optional[Path] = None) -> list[str]:
    """Labels: a list, or a file (one label a line, blank lines skipped; or a JSON list) relative to ``folder``."""
    if isinstance(value, (list, tuple)):
        labels = [str(v) for v in value]
    else:
        path = Path(value)
        if folder is not None and not path.is_absolute():
            path = folder / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise FoolingError(f"cannot read labels file {path}: {getattr(err, 'strerror', None) or err}") from None
        if path.suffix.lower() == ".json":
            try:
                labels = json.loads(text)
            except (ValueError, RecursionError):
                raise FoolingError(f"labels file {path} is not valid JSON") from None
            if not isinstance(labels, list):
                raise FoolingError(f"labels file {path} must hold a JSON list of names")
            labels = [str(v) for v in labels]
        else:
            labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise FoolingError(f"no labels in {value}")
    return labels


def _preprocess(values: dict[str, Any], name: str, default_input: Optional[tuple[int, int, int]] = None
                ) -> Preprocess:
    if values.get("input"):
        c, h, w = parse_input(values["input"])
    elif default_input is not None:
        c, h, w = default_input
    else:
        raise FoolingError(f"{name}: say what the network takes with --input CxHxW (e.g. --input 3x224x224) "
                           f"or an \"input\" in its sidecar JSON")
    stats = {}
    for key, default in (("mean", 0.0), ("std", 1.0)):
        raw = values.get(key)
        vals = parse_floats(raw, key) if raw is not None and raw != "" else (default,)
        if len(vals) == 1:
            vals = vals * c
        if len(vals) != c:
            raise FoolingError(f"{name}: --{key} has {len(vals)} values but the input has {c} channels")
        stats[key] = vals
    resize = values.get("resize")
    if resize is not None and (not isinstance(resize, int) or resize < min(h, w)):
        raise FoolingError(f"{name}: \"resize\" must be a whole number of pixels, at least the input side")
    return Preprocess(size=(h, w), channels=c, mean=stats["mean"], std=stats["std"], resize=resize)


def _sidecar(path: Path) -> tuple[dict[str, Any], Optional[Path]]:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}, None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        raise FoolingError(f"sidecar {side} is not readable JSON") from None
    if not isinstance(data, dict):
        raise FoolingError(f"sidecar {side} must hold a JSON object with {', '.join(SIDECAR_KEYS)}")
    unknown = sorted(set(data) - set(SIDECAR_KEYS))
    if unknown:
        raise FoolingError(f"sidecar {side} has unknown key {unknown[0]!r} (known: {', '.join(SIDECAR_KEYS)})")
    for key in ("mean", "std"):
        if isinstance(data.get(key), list):
            data[key] = ",".join(str(v) for v in data[key])
    return data, side


# --- the networks -----------------------------------------------------------------------------------
class SingleLogit(nn.Module):
    """A binary classifier with one output z (sigmoid(z) = P(second class)) as two logits (0, z)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x).reshape(x.shape[0], 1)
        return torch.cat([torch.zeros_like(z), z], dim=1)


class OnnxNet(nn.Module):
    """An ONNX model run by onnxruntime, as a module: (N, C, H, W) -> (N, K) logits, no gradients."""

    differentiable = False

    def __init__(self, path: Path, name: str) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise FoolingError(f"{name} is an ONNX model: pip install onnxruntime (or fooling[onnx])") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own types for bad files
            raise FoolingError(f"{path} is not an ONNX model onnxruntime can run: "
                               f"{str(err).strip().splitlines()[0][:200]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise FoolingError(f"{path} takes {len(inputs)} inputs; a classifier takes one image batch")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.batch = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
        dims = shape[1:] if len(shape) == 4 else []
        self.input_shape = tuple(dims) if len(dims) == 3 and all(isinstance(d, int) and d > 0 for d in dims) else None
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise FoolingError(NOT_DIFFERENTIABLE.format(name=self.name, what="a gradient method"))
        import numpy as np

        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        step = self.batch or max(1, len(arr))
        outs = [self.session.run(None, {self.input_name: arr[i:i + step]})[0] for i in range(0, len(arr), step)]
        out = np.concatenate(outs) if len(outs) != 1 else outs[0]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)


def _torchscript(path: Path) -> nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise FoolingError(f"{path} is not a TorchScript file ({first}); save one with "
                           f"torch.jit.script(model).save(...) or torch.jit.trace, or name a function that builds "
                           f"the model with python:package.module:function") from None


def _python_factory(target: str) -> Callable[[], nn.Module]:
    module_name, _, func = target.rpartition(":")
    if not module_name or not func:
        raise FoolingError(f"python:{target}: write python:package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise FoolingError(f"python:{target}: cannot import {module_name} ({err})") from None
    factory = getattr(module, func, None)
    if not callable(factory):
        raise FoolingError(f"python:{target}: {module_name} has no function {func}")

    def build() -> nn.Module:
        net = factory()
        if not isinstance(net, nn.Module):
            raise FoolingError(f"python:{target} returned {type(net).__name__}, not a torch.nn.Module")
        return net

    return build


def _outputs(net: nn.Module, preprocess: Preprocess, name: str) -> int:
    """The number of outputs of ``net`` on a batch of two blank inputs (one row of floating-point logits each)."""
    x = torch.zeros(2, preprocess.channels, *preprocess.size)
    try:
        with torch.inference_mode():
            out = net(x)
    except FoolingError:
        raise
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise FoolingError(f"{name} fails on a {preprocess.channels}x{preprocess.size[0]}x{preprocess.size[1]} "
                           f"input (is --input right?): {first}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2 or not out.is_floating_point():
        shape = (f"{tuple(out.shape)} {str(out.dtype).replace('torch.', '')}" if isinstance(out, torch.Tensor)
                 else type(out).__name__)
        raise FoolingError(f"{name} must return floating-point logits of shape (N, classes); for a batch of 2 it "
                           f"returned {shape}")
    return int(out.shape[1])


def _fit_labels(net: nn.Module, labels: Optional[list[str]], preprocess: Preprocess, name: str
                ) -> tuple[nn.Module, list[str]]:
    """Check the outputs against the labels (none: numbered); a single output with two labels: sigmoid."""
    k = _outputs(net, preprocess, name)
    if labels is None:
        labels = [str(i) for i in range(k)] if k > 1 else ["0", "1"]
    if k == 1 and len(labels) == 2:
        wrapped = SingleLogit(net)
        if getattr(net, "differentiable", True) is False:
            wrapped.differentiable = False  # type: ignore[attr-defined]
        return wrapped, labels
    if k != len(labels):
        raise FoolingError(f"{name} gives {k} outputs but its labels name {len(labels)} classes")
    if k < 2:
        raise FoolingError(f"{name} gives {k} output; a classifier needs 2 or more classes (or one logit and "
                           f"two labels)")
    return net, labels


def _spec(name: str, build: Callable[[], nn.Module], preprocess: Preprocess, labels: Optional[list[str]],
          description: str, weights_path: Optional[str] = None, differentiable: bool = True,
          net: Optional[nn.Module] = None) -> ModelSpec:
    """A spec whose loader builds the network, checked once against its labels here."""
    checked, labels = _fit_labels(net if net is not None else build(), labels, preprocess, name)
    single = isinstance(checked, SingleLogit)
    first = [checked]

    def load(device: torch.device, crops: int) -> Classifier:
        net = first.pop() if first else build()
        if single and not isinstance(net, SingleLogit):
            net = SingleLogit(net)
        return Classifier(net, name=name, labels=labels, preprocess=preprocess, device=device, crops=crops)

    c, (h, w) = preprocess.channels, preprocess.size
    _described[name] = {"kind": kind(name), "weights": weights_path, "input": f"{c}x{h}x{w}",
                        "mean": list(preprocess.mean), "std": list(preprocess.std), "resize": preprocess.resize,
                        "labels": list(labels)}
    return ModelSpec(name=name, dataset="custom", input=f"{c}x{h}x{w} {'RGB' if c == 3 else 'grey'}",
                     num_classes=len(labels), description=description, load=load, weights_path=weights_path,
                     differentiable=differentiable)


def _file_spec(name: str) -> ModelSpec:
    base, options = split_name(name)
    path = Path(base)
    if not path.is_file():
        raise FoolingError(f"model file {path} does not exist")
    source = kind(name)
    data, side = _sidecar(path)
    values = {**data, **{k: v for k, v in options.items() if v != ""}}
    labels_value = options.get("labels") or data.get("labels")
    labels = read_labels(labels_value, side.parent if side and not options.get("labels") else None) \
        if labels_value else None
    if source == "onnx":
        net: nn.Module = OnnxNet(path, name)
        preprocess = _preprocess(values, name, net.input_shape)  # type: ignore[arg-type]
        return _spec(name, lambda: OnnxNet(path, name), preprocess, labels, f"ONNX file {path} (onnxruntime)",
                     str(path), differentiable=False, net=net)
    preprocess = _preprocess(values, name)
    return _spec(name, lambda: _torchscript(path), preprocess, labels, f"TorchScript file {path}", str(path))


# --- timm:NAME --------------------------------------------------------------------------------------
def _hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def _timm_weights(arch: str, cfg: Any, name: str) -> Path:
    """The cached weights of a timm model (downloaded only with FOOLING_DOWNLOAD=1); else a FoolingError."""
    repo = getattr(cfg, "hf_hub_id", None)
    if not repo:
        raise FoolingError(f"{name}: timm has no Hugging Face weights for {arch}")
    repo = repo.split("@")[0]
    from huggingface_hub import try_to_load_from_cache

    cache = _hub_cache()
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, cache_dir=str(cache))
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    if os.environ.get(DOWNLOAD_ENV) != "1":
        raise FoolingError(f"{name} needs its weights from Hugging Face {repo} (model.safetensors) in {cache} "
                           f"(fetch them with `HF_HUB_CACHE={cache} hf download {repo} model.safetensors` where "
                           f"there is internet and copy that folder here, or set {DOWNLOAD_ENV}=1 to download them)")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, "model.safetensors", cache_dir=str(cache)))
    except Exception as err:
        raise FoolingError(f"could not download {repo}: {str(err).splitlines()[0]}") from None


def _timm_spec(name: str) -> ModelSpec:
    base, options = split_name(name)
    arch = base[len(TIMM_PREFIX):]
    from ..compat import import_torchvision

    import_torchvision()  # timm imports torchvision: let the compat shim go first
    try:
        import timm
    except ImportError:
        raise FoolingError(f"{name} needs timm: pip install timm (or fooling[timm])") from None
    if not arch or not timm.is_model(arch):
        raise FoolingError(f"{arch!r} is not a timm model (e.g. timm:resnet18, timm:vit_small_patch16_224)")
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        raise FoolingError(f"{name}: timm has no pretrained weights for {arch}")
    path = _timm_weights(arch, cfg, name)
    c, h, w = cfg.input_size
    resize = int(h / cfg.crop_pct) if cfg.crop_pct else None
    values = {"input": f"{c}x{h}x{w}", "mean": ",".join(map(str, cfg.mean)), "std": ",".join(map(str, cfg.std)),
              "resize": resize if resize and resize > min(h, w) else None}
    values.update({k: v for k, v in options.items() if k != "labels" and v})
    preprocess = _preprocess(values, name)
    labels: Optional[list[str]] = read_labels(options["labels"]) if options.get("labels") else None
    if labels is None and cfg.num_classes == 1000:
        from .imagenet import imagenet_labels

        labels = list(imagenet_labels())

    def build() -> nn.Module:
        from .weights import load_state_dict

        net = timm.create_model(arch, pretrained=False, num_classes=cfg.num_classes)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = load_state_dict(path)
        net.load_state_dict(state)
        return net.eval()

    return _spec(name, build, preprocess, labels, f"timm {arch}, weights {path.parent.parent.parent.name}",
                 str(path))


# --- python:package.module:function and nn.Module ------------------------------------------------------
def _python_spec(name: str) -> ModelSpec:
    base, options = split_name(name)
    build = _python_factory(base[len(PYTHON_PREFIX):])
    preprocess = _preprocess(options, name)
    labels = read_labels(options["labels"]) if options.get("labels") else None
    return _spec(name, build, preprocess, labels, f"nn.Module from {base[len(PYTHON_PREFIX):]}()")


def from_module(net: nn.Module, *, input: str | Sequence[int], labels: Optional[Sequence[str] | str] = None,
                mean: Any = None, std: Any = None, name: Optional[str] = None) -> str:
    """Register an ``nn.Module`` (images (N, C, H, W) normalised by mean/std -> logits (N, K)) as a model;
    returns its name (``module:<name>``, default the class name) for ``fooling.evolve(model=...)``,
    ``fooling.ascend``, transfer targets. input: "CxHxW" or (C, H, W); labels: names or a labels file
    (None: numbered); mean / std: per channel (default 0 and 1). The network is copied, so training it
    further does not change the registered one. It lives in this process only: to resume a run made with it,
    register it again under the same name (the weights SHA-256 is checked)."""
    if not isinstance(net, nn.Module):
        raise FoolingError(f"from_module takes a torch.nn.Module, not {type(net).__name__}")
    text = "x".join(map(str, input)) if isinstance(input, (list, tuple)) else str(input)  # checked by _preprocess
    full = f"{MODULE_PREFIX}{name or type(net).__name__}" if not (name or "").startswith(MODULE_PREFIX) else name
    values = {"input": text, "mean": _as_text(mean), "std": _as_text(std)}
    preprocess = _preprocess({k: v for k, v in values.items() if v is not None}, full)
    names = read_labels(labels) if labels is not None else None
    frozen = copy.deepcopy(net).eval()
    spec = _spec(full, lambda: copy.deepcopy(frozen), preprocess, names, f"nn.Module {type(net).__name__} "
                 f"(Python API)", net=copy.deepcopy(frozen))
    register(spec)
    from .fingerprint import clear_cache

    clear_cache()  # the same name may now hold other weights
    return full


# --- the registry's entry point ---------------------------------------------------------------------
def _stamp(path: Any) -> tuple:
    try:
        st = Path(path).stat()
        return (str(path), st.st_size, st.st_mtime_ns)
    except (OSError, TypeError, ValueError):
        return (str(path), None)


def source_spec(name: str) -> ModelSpec:
    """The spec of a model source name (cached while its files are unchanged)."""
    source = kind(name)
    base, options = split_name(name)
    if source == "module":
        raise FoolingError(f"{name} was an nn.Module given to the Python API in another process; register it "
                           f"again with fooling.classifiers.from_module(net, name={base!r}, ...) first")
    stamps: tuple = (name,)
    if source in ("torchscript", "onnx"):
        stamps += (_stamp(base), _stamp(Path(base).with_suffix(".json")))
    if options.get("labels"):
        stamps += (_stamp(options["labels"]),)
    if stamps not in _cache:
        if source == "timm":
            spec = _timm_spec(name)
        elif source == "python":
            spec = _python_spec(name)
        else:
            spec = _file_spec(name)
        _cache[stamps] = spec
    return _cache[stamps]


def describe_sources(names: Sequence[str]) -> dict[str, Any]:
    """``{"model_sources": {name: {kind, weights, sidecar, input, mean, std, resize, labels}}}`` for the model
    sources among ``names`` (what their files and options resolved to, for config.json); {} if none is one."""
    found = {}
    for name in names:
        if is_source(name):
            from .registry import get_spec

            get_spec(name)
            record = dict(_described.get(name, {}))
            base, _ = split_name(name)
            if is_file_source(name) and Path(base).with_suffix(".json").is_file():
                record["sidecar"] = str(Path(base).with_suffix(".json"))
            found[name] = record
    return {"model_sources": found} if found else {}


def require_gradients(name: str, what: str) -> None:
    """A one-line FoolingError if model ``name`` gives no gradients (an ONNX file); ``what`` needs them."""
    from .registry import get_spec

    if not get_spec(name).differentiable:
        raise FoolingError(NOT_DIFFERENTIABLE.format(name=name, what=what))
