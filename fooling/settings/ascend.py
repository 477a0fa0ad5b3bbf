"""Every setting of a ``fool ascend`` run, each declared once; saved as config.json.

Presets are data (:data:`PRESETS`) over the step rule and the regularisers:
``paper`` (the fooling paper's plain ascent), ``yosinski`` (the deep visualisation toolbox's
favoured regularisation, on the logit) and ``cppn`` (ours, for tuning evolved CPPN weights).
``fooling.run.ascend`` builds the step rule and regularisers from :meth:`AscendSettings.resolved`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import FoolingError
from ..limits import MAX_EOT, MAX_GRADIENT_STEPS
from .transforms import check_spec as _check_spec
from .fields import Settings, between, distinct, non_negative, positive, setting, unit_interval
from .evolve import MEMORY_FORMATS, _image_side
from .model_source import model_source

OBJECTIVES = ("prob", "logit")  # what a step climbs: the target's softmax probability or its logit
RATES = ("progress", "normalised", "adam")  # how far a step goes (see fooling.search.gradient.rules.StepRule)
NORMS = ("linf", "l2")  # the norms that bound a perturbation
METHODS = ("pgd", "fgsm")  # perturbation attacks
INITS = ("mean", "uniform")  # anything else given as --init is a photo
STOP_AT = 0.9999  # the last milestone (fooling.archive.THRESHOLDS[-1])
# settings newer than some saved ascents, with the value that continues such a run as it began (resume fills them in)
SINCE: dict[str, Any] = {"memory_format": "channels-last-on-cuda"}

# The preset fields: the step rule (objective, rate, step_size) and the regularisers.
_PLAIN = {"decay": 0.0, "blur_radius": 0.0, "blur_every": 0, "norm_percentile": 0.0, "contribution_percentile": 0.0}
# "paper": the fooling paper's plain ascent of the probability at the progress rate, no regularisers.
PAPER: dict[str, Any] = {"objective": "prob", "rate": "progress", "step_size": 0.01, **_PLAIN}
# "yosinski": decay 1e-4, blur sigma 1.0 every 4 steps, on the logit, steps of mean size 0.01.
YOSINSKI: dict[str, Any] = {"objective": "logit", "rate": "normalised", "step_size": 0.01,
                            **_PLAIN, "decay": 1e-4, "blur_radius": 1.0, "blur_every": 4}
# "cppn": Adam on the logit, learning rate 0.03 (weights span [-10, 10]); it beat "paper" there (README).
CPPN: dict[str, Any] = {"objective": "logit", "rate": "adam", "step_size": 0.03, **_PLAIN}
# "fast" (the default): Adam on the logit, learning rate 0.01, no regularisers. Measured on EfficientNet-Lite0
# (CPU, `fool ascend --classes 'king penguin' --steps 50`): fast passes 99.99 % at step 13; paper ends at 96.1 %
# and yosinski at 96.9 % after 50 steps (they pass 99 % at steps 68 and 48+; README).
FAST: dict[str, Any] = {"objective": "logit", "rate": "adam", "step_size": 0.01, **_PLAIN}
PRESETS: dict[str, dict[str, Any]] = {"fast": FAST, "paper": PAPER, "yosinski": YOSINSKI, "cppn": CPPN}
PIXEL_ONLY = ("blur_radius", "norm_percentile", "contribution_percentile")  # regularisers that act on pixels


def _blur_radius(value: float) -> Optional[str]:
    if value < 0:
        return "must not be negative"
    return "is too small to blur; use 0 (off) or >= 0.3" if 0 < value < 0.3 else None


WHAT, ASCENT, PERTURB, BUDGET, RUN = "model", "ascent", "perturbation", "budget", "run"


@dataclass
class AscendSettings(Settings):
    """One ``fool ascend`` run. Preset fields left at None come from the preset."""

    PRESETS = PRESETS

    model: str = setting("imagenet-efficientnet-lite0", "Classifier to fool: a name from `fool models`, a "
                         "TorchScript file (.pt; it is code: load only files you trust), timm:NAME or "
                         "python:package.module:function (runs that code) [or --from's model]. ONNX files give no "
                         "gradients.", group=WHAT)
    classes: Optional[list[int]] = setting(None, "Target classes (all when unset).", group=WHAT, check=distinct)
    crops: int = setting(1, "10: optimise the softmax averaged over ten crops (the paper's ImageNet scoring).",
                         group=WHAT, check=lambda v: None if v in (1, 10) else "must be 1 or 10", metavar="[1|10]")
    image_size: Optional[int] = setting(None, "Side of the optimised images [what the network's preprocessing "
                                              "resizes to, e.g. 256].", group=WHAT, check=_image_side)

    steps: int = setting(200, "Gradient steps per image (at most).", group=BUDGET,
                         check=between(1, MAX_GRADIENT_STEPS))
    seed: int = setting(0, "Seeds each class's starting noise.", group=BUDGET, check=non_negative)
    device: str = setting("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when present).", group=BUDGET)
    memory_format: str = setting("auto", "The network's memory layout: channels-last where it runs in it (faster "
                                         "convolutions), contiguous, or channels-last-on-cuda (ascents begun before "
                                         "auto existed).", group=BUDGET, choices=MEMORY_FORMATS)
    batch_size: int = setting(32, "Classes optimised at once.", group=BUDGET, check=positive)
    stop_at: float = setting(STOP_AT, "An image stops once its target confidence reaches this (0: run every step).",
                             group=BUDGET, check=unit_interval)
    checkpoint_every: int = setting(50, "Checkpoint every N steps within a batch (0: only after each batch).",
                                    group=BUDGET, check=non_negative)

    # gradient ascent
    preset: str = setting("fast", "fast: climb the logit with Adam, learning rate 0.01, no regularisers | "
                                  "paper: climb the probability at the progress rate, no regularisers | "
                                   "yosinski: climb the logit in normalised steps, decay 1e-4, blur radius 1.0 every "
                                   "4 steps | cppn: climb the logit with Adam, learning rate 0.03 [cppn with --from].",
                          group=ASCENT, choices=tuple(PRESETS))
    init: str = setting("mean", "Start image: mean (the network's mean image plus faint noise), uniform (noise), "
                                "or a photo file.", group=ASCENT)
    objective: Optional[str] = setting(None, "Climb the target's softmax probability or its logit.", group=ASCENT,
                                       choices=OBJECTIVES, preset=True)
    rate: Optional[str] = setting(None, "Step length: progress (aim for a set gain in probability), normalised "
                                        "(mean pixel change --step-size) or adam (Adam, learning rate --step-size).",
                                  group=ASCENT, choices=RATES, preset=True)
    decay: Optional[float] = setting(None, "L2 decay per step toward the mean image.", group=ASCENT,
                                     check=between(0.0, 1.0, high_open=True), preset=True)
    blur_radius: Optional[float] = setting(None, "Gaussian blur sigma in pixels, 0 = off.", group=ASCENT,
                                           check=_blur_radius, preset=True)
    blur_every: Optional[int] = setting(None, "Blur every K steps.", group=ASCENT, check=non_negative, preset=True)
    norm_percentile: Optional[float] = setting(None, "Zero pixels whose norm is below this percentile each step "
                                                     "(0-100).", group=ASCENT,
                                               check=between(0.0, 100.0, high_open=True), preset=True)
    contribution_percentile: Optional[float] = setting(None, "Zero pixels whose contribution |x·grad| is below this "
                                                             "percentile (0-100).", group=ASCENT,
                                                       check=between(0.0, 100.0, high_open=True), preset=True)

    # perturbation of a photo (--init PHOTO --epsilon E)
    epsilon: Optional[float] = setting(None, "Perturbation mode: change the --init photo by at most this much.",
                                       group=PERTURB, check=positive)
    norm: str = setting("linf", "Norm that bounds the perturbation (pixels in [0, 1]).", group=PERTURB,
                        choices=NORMS)
    attack: str = setting("pgd", "Perturbation method: pgd (--steps steps) or fgsm (one step of --epsilon).",
                          group=PERTURB, choices=METHODS)
    step_size: Optional[float] = setting(None, "PGD step [2.5 * epsilon / steps], the mean pixel change of a "
                                               "normalised step [0.01], or Adam's learning rate [0.03].",
                                         group=ASCENT, check=positive, preset=True)
    # tuning the weights of evolved CPPNs: a `fool evolve --encoding cppn` run directory
    from_run: Optional[str] = setting(None, "Tune the weights of the CPPN elites of this `fool evolve --encoding "
                                            "cppn` run, each toward its own class (instead of starting from pixels).",
                                      group=ASCENT, flag="--from", metavar="RUN")
    out: Optional[str] = setting(None, "Run directory [runs/<model>_ascent_s<seed>].", group=RUN, metavar="PATH")
    # expectation over transformation (fooling.objective.eot)
    eot: int = setting(0, "Climb the mean over this many random transforms of each image (0: off).", group="eot",
                       check=between(0, MAX_EOT))
    transforms: str = setting("default", "EOT transforms: default (crop, flip, rotate, jitter, noise) or e.g. "
                                         "'crop=0.8,flip,rotate=10,jitter=0.1,noise=0.02,jpeg=60'.", group="eot",
                              check=_check_spec)

    # model source (fooling/settings/model_source.py): how a model file, timm: or python: model takes its input
    input: Optional[str] = model_source("input")
    mean: Optional[str] = model_source("mean")
    std: Optional[str] = model_source("std")
    labels: Optional[str] = model_source("labels")

    @property
    def perturbation(self) -> bool:
        return self.epsilon is not None

    def preset_value(self, name: str) -> Any:
        """A preset field: as given, else the preset's."""
        value = getattr(self, name)
        return PRESETS.get(self.preset, FAST)[name] if value is None else value

    def resolved(self) -> "AscendSettings":
        """A validated copy with the preset fields filled; a perturbation's step_size stays as given
        (None: PGD's own default, 2.5 * epsilon / steps)."""
        out = super().resolved()
        return out.replace(step_size=self.step_size) if self.perturbation else out

    def check_together(self) -> None:
        from .evolve import DEVICE_PATTERN

        if not DEVICE_PATTERN.fullmatch(self.device):
            raise FoolingError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if self.perturbation and self.init in INITS:
            raise FoolingError("--epsilon perturbs a photo: give it with --init PHOTO")
        if self.perturbation and self.norm == "linf" and self.epsilon > 1:  # pixels lie in [0, 1]: the whole cube
            raise FoolingError(f"--epsilon must be in (0, 1] for --norm linf, got {self.epsilon:g}")
        if self.step_size is not None and not self.perturbation and self.preset_value("rate") == "progress":
            raise FoolingError("--step-size applies to --epsilon runs and to --rate normalised or adam")
        if self.from_run is not None:
            if self.perturbation or self.init != "mean":
                raise FoolingError("--from tunes evolved CPPNs; it cannot be combined with --init or --epsilon")
            pixel_only = [name for name in PIXEL_ONLY if getattr(self, name)]
            if pixel_only:
                raise FoolingError(f"--{pixel_only[0].replace('_', '-')} acts on pixels; with --from only --decay "
                                   "applies (to the CPPN weights)")
        if self.init not in INITS and not Path(self.init).is_file():
            raise FoolingError(f"--init must be mean, uniform or an image file; {self.init!r} is none of them")
