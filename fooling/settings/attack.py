"""Settings of a ``fool attack`` run: perturbation attacks on a batch of photos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import FoolingError
from ..limits import MAX_EOT, MAX_GRADIENT_STEPS, MAX_RESTARTS, MAX_SEARCH_STEPS, TORCH_SEEDS
from .fields import Settings, between, non_negative, positive, setting

ATTACK_METHODS = ("fgsm", "pgd", "cw-l2")
ATTACK_NORMS = ("linf", "l2")
CW_PRESETS = ("fast", "original")


def _seed(value: int) -> Optional[str]:
    return None if 0 <= value < TORCH_SEEDS else f"must lie in 0-{TORCH_SEEDS - 1} (PyTorch's seeds)"


WHAT, HOW, CW, EOT, RUN = "model", "attack", "cw-l2", "eot", "run"


@dataclass
class AttackSettings(Settings):
    """One ``fool attack`` run."""

    model: str = setting("imagenet-efficientnet-lite0", "Classifier to attack (see `fool models`).", group=WHAT)
    images: list[str] = setting([], "Photos to attack: files and/or folders (their PNG/JPEG/BMP/WebP files).",
                                group=WHAT, cli=False)
    target: Optional[str] = setting(None, "Targeted: the class every photo should become (name or index).",
                                    group=WHAT)
    untargeted: bool = setting(False, "Untargeted: move each photo away from its clean prediction (the default "
                                      "without --target).", group=WHAT)
    method: str = setting("pgd", "fgsm (one step of epsilon) | pgd (--steps steps, random start, --restarts) | "
                                 "cw-l2 (Carlini-Wagner L2).", group=HOW, choices=ATTACK_METHODS)
    epsilon: float = setting(8 / 255, "Largest change (in --norm, pixels in [0, 1]) for fgsm and pgd, e.g. 8/255 "
                                      "(linf: at most 1; l2: the whole image's change, e.g. 3).",
                             group=HOW, check=positive)
    norm: str = setting("linf", "Norm that bounds the change (fgsm, pgd).", group=HOW, choices=ATTACK_NORMS)
    steps: Optional[int] = setting(None, "PGD steps [10] or CW iterations per search step [fast 100, original "
                                         "10000].", group=HOW, check=between(1, MAX_GRADIENT_STEPS))
    step_size: Optional[float] = setting(None, "PGD step [2/255 for linf 8/255, else 2.5 * epsilon / steps].",
                                         group=HOW, check=positive)
    restarts: int = setting(1, "PGD: random restarts (best per image).", group=HOW, check=between(1, MAX_RESTARTS))
    random_start: bool = setting(True, "PGD: start at a random point of the epsilon ball.", group=HOW)
    cw_preset: str = setting("fast", "fast: 5 binary-search steps from c = 1, 100 iterations | original: Carlini "
                                     "& Wagner's 9 steps from c = 1e-3, up to 10,000 iterations with early abort.",
                             group=CW, choices=CW_PRESETS)
    confidence: float = setting(0.0, "CW's kappa: the logit margin a success needs.", group=CW, check=non_negative)
    cw_lr: float = setting(0.01, "CW's Adam learning rate.", group=CW, check=positive)
    cw_search_steps: Optional[int] = setting(None, "CW's binary-search steps over c [fast 5, original 9].", group=CW,
                                             check=between(1, MAX_SEARCH_STEPS))
    cw_linf: Optional[float] = setting(None, "CW: also keep the change within this L-infinity distance, e.g. "
                                             "8/255 (default: unbounded, as the original).", group=CW,
                                       check=between(0.0, 1.0, low_open=True))
    eot: int = setting(0, "Expectation over transformation: average the loss over this many random transforms "
                          "of each image (0: off).", group=EOT, check=between(0, MAX_EOT))
    transforms: str = setting("default", "EOT transforms: default, or e.g. 'crop=0.8,flip,rotate=10,jitter=0.1,"
                                         "noise=0.02,jpeg=60'.", group=EOT)
    seed: int = setting(0, "Seeds PGD's random starts and EOT's draws.", group=RUN, check=_seed)
    device: str = setting("auto", "auto | cpu | cuda | cuda:N.", group=RUN)
    out: Optional[str] = setting(None, "Run directory [runs/<model>_attack-<method>_s<seed>].", group=RUN,
                                 metavar="PATH")

    def check_together(self) -> None:
        from .evolve import DEVICE_PATTERN

        if not DEVICE_PATTERN.fullmatch(self.device):
            raise FoolingError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if self.norm == "linf" and self.epsilon > 1:
            raise FoolingError(f"--epsilon must be in (0, 1] for --norm linf, got {self.epsilon:g}")
        if self.untargeted and self.target is not None:
            raise FoolingError("--untargeted and --target exclude each other: give one")
        if self.eot:
            from .transforms import parse_transforms

            parse_transforms(self.transforms)
