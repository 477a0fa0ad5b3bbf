"""Every setting of an evolution run (``fool evolve``), each declared once; saved as config.json.

Presets are data: :data:`PAPER` holds the 2015 code's operator settings (PAPER.md),
:data:`DEFAULT` ours (tuned to need fewer evaluations; see README "Beating the paper"),
:data:`ENCODING_PRESETS` a preset's values for one encoding (the default's CPPN search) and
:data:`IMAGENET_PRESETS` its values against ImageNet networks (the paper's 10 crops and 400 CPPN children).
A preset field left at None is filled from the chosen preset by :meth:`EvolveSettings.resolved`;
any of them can still be set explicitly (an option, ``--set key=value`` or ``--config FILE``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..errors import FoolingError, shown
from ..limits import MAX_EOT
from .transforms import check_spec as _check_spec
from .fields import Settings, between, distinct, non_negative, positive, setting, unit_interval
from .model_source import model_source

ENCODINGS = ("direct", "cppn")
STRATEGIES = ("snes-elites", "map-elites", "ga", "cppn-weight-es")
COMBINE = ("mean", "min")
COLOURS = ("hls", "rgb")
MUTATIONS = ("unscaled", "bounded")
CPPN_COORDS = ("scaled", "pixel")
PRECISIONS = ("fp32", "bf16", "fp16")  # classifiers.base.PRECISIONS (settings sit below classifiers)
# the networks' memory layouts (classifiers.base.Classifier.configure says what each means); declared here, once
MEMORY_FORMATS = ("auto", "channels-last", "contiguous", "channels-last-on-cuda")
# whose sin, tanh and exp draw CPPNs on a CPU (fooling/encodings/cppn/functions.py says why numpy's); declared here, once
CPPN_CPU_MATHS = ("numpy", "torch")
# where CPPNs are drawn without --image-size: at the side the network resizes to, or at its input (runs begun
# before the first existed; fooling/run/evolve.py: evolved_image_shape); declared here, once
CPPN_SIZES = ("resize", "input")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")  # the devices a run can use (see classifiers.resolve_device)

# Limits on the size of a run, checked before anything is created (see check_run_size).
MAX_IMAGE_SIDE = 4096  # pixels: the largest --image-size
BYTES_PER_VALUE = 4  # genes and pixels are float32
MEMORY_FRACTION = 0.5  # a run's estimated working set may use at most this share of the machine's memory

# The settings that may change when a run resumes (the budget and how it is watched); every
# other setting is the run's own and comes from its config.json.
RESUME_SETTINGS = ("generations", "until", "checkpoint_every", "checkpoint_seconds", "checkpoint_background")
# Where a run's evaluations happen (fooling.distributed): recorded in config.json but never part of the result,
# so a resume takes them from its own command line (absent: in this process), not from config.json.
PLACEMENT_SETTINGS = ("workers", "ray_address", "gpus_per_worker")

# The operator settings of each preset. "paper": the 2015 code (PAPER.md).
PAPER: dict[str, Any] = {
    "strategy": "map-elites",
    "population": 200,
    "crops": 1,
    "colour": "hls",
    "mutation": "unscaled",
    "mutation_rate": 0.1,
    "mutation_eta": 15.0,
    "rate_halving_every": 1000,
    "crossover_rate": 0.5,
    "crossover_eta": 10.0,
    "laggard_bias": 0.0,
    "ga_cxpb": 0.5,
    "ga_mutpb": 0.5,
    "cppn_coords": "pixel",
    "cppn_add_connection": 0.5,
    "cppn_delete_connection": 0.3,
    "cppn_rewire_connection": 0.5,
    "cppn_add_node": 0.5,
    "cppn_delete_node": 0.2,
    "cppn_weight_rate": 0.1,
    "cppn_weight_eta": 15.0,
    "cppn_function_rate": 0.1,
    "cppn_max_hidden": 200,
    "cppn_lineages": 0,
    "cppn_lineage_children": 5,
    "cppn_lineage_patience": 0,
}
# "default": ours. Bigger mutation steps (eta 5), no rate halving, CPPN coordinates in [-1, 1];
# see README "Beating the paper" for why.
# The default strategy is snes-elites (a SNES emitter per class, fooling/search/snes_elites.py) with 40
# children per generation (measured against 20-150: README "The default search: snes-elites"); the CPPN encoding, which it does not search, has its own (ENCODING_PRESETS).
DEFAULT: dict[str, Any] = {**PAPER, "strategy": "snes-elites", "population": 40, "mutation_eta": 5.0,
                           "rate_halving_every": 0, "cppn_coords": "scaled"}
# children per generation when --population is not given, for a strategy other than the preset's
STRATEGY_POPULATION: dict[str, int] = {"snes-elites": 40, "map-elites": 200, "ga": 200, "cppn-weight-es": 200}
PRESETS: dict[str, dict[str, Any]] = {"default": DEFAULT, "paper": PAPER}
# A preset's values that differ by encoding, over PRESETS[preset]: ENCODING_PRESETS[preset][encoding].
# The default preset's CPPN search: snes-elites is direct-only, so the CPPN keeps MAP-Elites, with 50 children
# per generation, half the parents drawn by 1 - confidence, and 10 lineages of 5 children a generation for the
# class furthest from done, restarted after 20 generations without progress (measured: README "The default CPPN
# search").
ENCODING_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {"cppn": {"strategy": "map-elites", "population": 50, "laggard_bias": 0.5, "cppn_lineages": 10,
                         "cppn_lineage_children": 5, "cppn_lineage_patience": 20}},
}
# A preset's values against an ImageNet network, over its ENCODING_PRESETS: IMAGENET_PRESETS[preset][encoding].
# They wait for the run's networks (fooling.run.evolve tells EvolveSettings.resolved about them: a Network) and
# apply when the first is an ImageNet one (IMAGENET_CLASSES classes, or the registry says so); "crops" only where
# every network takes crops of a larger image (a network that sees its whole input keeps the preset's crops 1).
# The paper's ImageNet runs averaged the softmax over 10 crops, and its CPPN runs made 400 children a generation
# from 400 random genomes (PAPER.md); its direct ones 200, as on MNIST.
IMAGENET_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {"direct": {"crops": 10}, "cppn": {"crops": 10, "population": 400}},
}
IMAGENET_CLASSES = 1000
CROP_SETTINGS = ("crops",)  # the IMAGENET_PRESETS values that need networks taking crops of a larger image
# The key of config.json's "run" record that names the settings the run resolved for its networks
# (EvolveSettings.network_resolved): a --config FILE leaves them out, so they are resolved again for the networks
# of the run it starts; a resume continues config.json's values. Runs recorded before it lack it (nothing left out).
NETWORK_RESOLVED = "network_resolved"
# the settings a run can have resolved for its networks (and so may name there): the values some IMAGENET_PRESETS
# entry gives, and the initial population that follows such a population. Any other name (a hand edit naming
# "model" or "encoding") would silently drop that setting from a --config file: refused instead.
NETWORK_RESOLVABLE = tuple(sorted({name for encodings in IMAGENET_PRESETS.values() for values in encodings.values()
                                   for name in values} | {"initial_population"}))
# The key of config.json's "run" record that names every setting the run left to its preset (given no value: the
# operator settings, the strategy, the population, ...). A --config FILE has the preset choose again those of them
# that still hold the preset's choice (EvolveSettings.left_to_run): so --encoding cppn with a direct run's file gets
# the CPPN search, not the file's snes-elites and population 40, while a value edited into the file, or one an older
# version's preset chose, stands (the run is reproduced).
PRESET_FILLED = "preset_filled"


@dataclass(frozen=True)
class Network:
    """What a preset needs to know of a run's networks, once they are loaded (fooling.run.evolve tells it)."""

    imagenet: bool  # the first network is an ImageNet one
    takes_crops: bool  # every network takes crops of a larger image, so --crops 10 can score it


# Settings newer than some saved runs, with the value that continues such a run as it began (a resume fills
# them in where config.json lacks them; absent from a --config file they still come from the preset).
# (crops: every config.json records it, but a run's crops come from its networks under the paper preset now, so a
# hand-written one without it keeps the 1 crop it had before.)
SINCE: dict[str, Any] = {"cppn_lineages": 0, "memory_format": "channels-last-on-cuda", "cppn_cpu_math": "torch",
                         "crops": 1, "cppn_size": "input"}


def encoding_refusal(strategy: Optional[str], encoding: str, strategy_option: str = "--strategy",
                     encoding_option: str = "--encoding") -> Optional[str]:
    """Why ``strategy`` cannot search ``encoding`` (one line naming the options the user gives them with: fool
    evolve's --strategy / --encoding, a group's --encodings, fool sweep's --strategies / --encodings); None if it can."""
    if strategy == "cppn-weight-es" and encoding != "cppn":
        return (f"{strategy_option} cppn-weight-es searches the CPPN encoding only; use {encoding_option} cppn, "
                f"or another strategy with {encoding_option} {encoding}")
    if strategy == "snes-elites" and encoding != "direct":
        return (f"{strategy_option} snes-elites searches the direct encoding only; use {strategy_option} "
                f"map-elites with {encoding_option} {encoding}")
    return None


def _names_a_model(value: str) -> Optional[str]:
    return None if value else "must name a model"


def _names_models(value: list[str]) -> Optional[str]:
    if not (value and all(value)):
        return "must name at least one model, with no empty names"
    return None if len(set(value)) == len(value) else "must not name a model twice"  # as fool sweep's entries


def _crops(value: int) -> Optional[str]:
    return None if value in (1, 10) else "must be 1 or 10"


def _seeds(value: list[int]) -> Optional[str]:
    if not value:
        return "must name at least one seed"
    if any(v < 0 for v in value):
        return "must be 0 or positive"
    return None if len(set(value)) == len(value) else "must not repeat a seed"


def _encodings(value: list[str]) -> Optional[str]:
    if not value:
        return "must name at least one encoding"
    if any(v not in ENCODINGS for v in value):
        return f"must each be one of {', '.join(ENCODINGS)}"
    return None if len(set(value)) == len(value) else "must not repeat an encoding"


def _image_side(value: int) -> Optional[str]:
    return (None if 0 < value <= MAX_IMAGE_SIDE else
            f"must lie in 1-{MAX_IMAGE_SIDE} (leave it out for the side the network resizes to, else its input)")


MODEL, SEARCH, BUDGET, RUN, SPEED = "model", "search", "budget", "run", "speed"
DIRECT, MAP_ELITES, GA, CPPN = "direct encoding", "MAP-Elites", "GA (single target)", "CPPN encoding"

SNES = "snes-elites"
CPPN_ES = "cppn-weight-es"
SCALE = "scaling out (Ray)"


@dataclass
class EvolveSettings(Settings):
    """One run of ``fool evolve``. Operator fields (preset=True) left at None come from the preset."""

    PRESETS = PRESETS
    RETIRED = ("mnist_dir",)  # dropped options that older config.json files may still hold

    # what to fool
    model: str = setting("mnist-lenet", "Classifier to fool: a name from `fool models`, a TorchScript file (.pt; "
                                        "TorchScript is code: load only files you trust), an ONNX file (.onnx), "
                                        "timm:NAME or python:package.module:function (imports and runs that "
                                        "code); see --input, --mean, --std, --labels.", group=MODEL,
                         check=_names_a_model)
    models: Optional[list[str]] = setting(None, "Several classifiers at once, comma-separated (ensemble fitness).",
                                          group=MODEL, check=_names_models, metavar="A,B,...")
    combine: str = setting("mean", "How an ensemble's confidences make one fitness.", group=MODEL, choices=COMBINE)
    classes: Optional[list[int]] = setting(None, "The classes to evolve for (all when unset).", group=MODEL,
                                           check=distinct)
    crops: Optional[int] = setting(None, "10: average the softmax over ten crops (the paper's ImageNet scoring) "
                                         "[10 for the paper preset on ImageNet networks that take crops, else 1].",
                                   group=MODEL, check=_crops, metavar="[1|10]", preset=True)

    # how
    encoding: str = setting("direct", "Genome encoding.", group=SEARCH, choices=ENCODINGS)
    strategy: Optional[str] = setting(None, "Search: snes-elites (default preset; direct encoding), map-elites "
                                            "(the paper; the CPPN encoding's default), ga (needs --target) or "
                                            "cppn-weight-es (CPPN only).",
                                      group=SEARCH, choices=STRATEGIES, preset=True)
    preset: str = setting("default", "Operator settings (paper = the 2015 code's; see fooling/settings/evolve.py).",
                          group=SEARCH, choices=tuple(PRESETS))
    target: Optional[int] = setting(None, "The one class a --strategy ga run fools.", group=SEARCH)
    image_size: Optional[int] = setting(None, "Side of the evolved images [the side the network resizes to "
                                              "before cropping, 256 for ImageNet; else its input].", group=SEARCH,
                                        check=_image_side)
    cppn_size: str = setting("resize", "Without --image-size, CPPNs are drawn at the side the network resizes to "
                                       "(resize) or at its input (input: 224 for ImageNet, scaled up to 256 and "
                                       "centre-cropped by the network; runs begun before resize).", group=SEARCH,
                             choices=CPPN_SIZES)

    # budget
    generations: int = setting(200, "Generations after the initial population.", group=BUDGET, check=positive)
    population: Optional[int] = setting(None, "Children per generation [40 for snes-elites, 50 for the default "
                                                "preset's CPPN search, 400 for the paper's on ImageNet networks, "
                                                "else 200].",
                                        group=BUDGET, check=positive, preset=True)
    initial_population: Optional[int] = setting(None, "Random genomes in generation 0 [population].", group=BUDGET,
                                                check=positive)
    seed: int = setting(0, "Seeds every random number of the run.", group=BUDGET, check=non_negative)
    device: str = setting("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when present).", group=BUDGET)
    checkpoint_every: int = setting(10, "Checkpoint every N generations...", group=BUDGET, check=positive)
    checkpoint_seconds: float = setting(60.0, "...and at least this many seconds apart (0: every N generations "
                                              "exactly; the first due and the last are always checkpointed).",
                                        group=BUDGET, check=non_negative)
    checkpoint_background: bool = setting(False, "Write checkpoints (all but the last) in a thread while the run "
                                                  "goes on (on 2 CPU cores it did not pay; not yet measured on a "
                                                  "GPU).", group=BUDGET)
    snapshot_every: int = setting(0, "Also keep every Nth generation's elites in snapshots/<gen>/ (0: never).",
                                  group=BUDGET, check=non_negative)
    until: Optional[float] = setting(None, "Stop early once every class reaches this confidence.", group=BUDGET,
                                     check=between(0.0, 1.0, low_open=True))

    # direct encoding
    colour: Optional[str] = setting(None, "How 3-channel genes read: hls (paper) or rgb.", group=DIRECT,
                                    choices=COLOURS, preset=True)
    mutation: Optional[str] = setting(None, "Polynomial mutation variant: unscaled (paper) or bounded (DEAP).",
                                      group=DIRECT, choices=MUTATIONS, preset=True)
    mutation_rate: Optional[float] = setting(None, "Per-gene mutation probability.", group=DIRECT,
                                             check=unit_interval, preset=True)
    mutation_eta: Optional[float] = setting(None, "Polynomial mutation's distribution index η (larger: smaller "
                                                  "steps).", group=DIRECT, check=non_negative, preset=True)
    rate_halving_every: Optional[int] = setting(None, "Halve the mutation rate every K generations (0: never).",
                                                group=DIRECT, check=non_negative, preset=True)
    crossover_rate: Optional[float] = setting(None, "SBX crossover probability per pair of children.", group=DIRECT,
                                              check=unit_interval, preset=True)
    crossover_eta: Optional[float] = setting(None, "SBX crossover's distribution index η.", group=DIRECT,
                                             check=non_negative, preset=True)

    # MAP-Elites
    laggard_bias: Optional[float] = setting(None, "Share of parents drawn by 1 - confidence instead of uniformly.",
                                            group=MAP_ELITES, check=unit_interval, preset=True)

    # GA (single target)
    ga_cxpb: Optional[float] = setting(None, "GA: probability that a pair is crossed.", group=GA,
                                       check=unit_interval, preset=True)
    ga_mutpb: Optional[float] = setting(None, "GA: probability that a child is mutated.", group=GA,
                                        check=unit_interval, preset=True)

    # CPPN encoding
    cppn_coords: Optional[str] = setting(None, "CPPN inputs x, y: scaled ([-1, 1]) or pixel (the original's raw "
                                               "pixel indices).", group=CPPN, choices=CPPN_COORDS, preset=True)
    cppn_add_connection: Optional[float] = setting(None, "Probability of adding a connection per mutation.",
                                                   group=CPPN, check=unit_interval, preset=True)
    cppn_delete_connection: Optional[float] = setting(None, "Probability of deleting a connection.", group=CPPN,
                                                      check=unit_interval, preset=True)
    cppn_rewire_connection: Optional[float] = setting(None, "Probability of rewiring a connection.", group=CPPN,
                                                      check=unit_interval, preset=True)
    cppn_add_node: Optional[float] = setting(None, "Probability of adding a hidden node.", group=CPPN,
                                             check=unit_interval, preset=True)
    cppn_delete_node: Optional[float] = setting(None, "Probability of deleting a hidden node.", group=CPPN,
                                                check=unit_interval, preset=True)
    cppn_weight_rate: Optional[float] = setting(None, "Per-weight mutation probability.", group=CPPN,
                                                check=unit_interval, preset=True)
    cppn_weight_eta: Optional[float] = setting(None, "Weight mutation's distribution index η.", group=CPPN,
                                               check=non_negative, preset=True)
    cppn_function_rate: Optional[float] = setting(None, "Per-node probability of a new activation function.",
                                                  group=CPPN, check=unit_interval, preset=True)
    cppn_max_hidden: Optional[int] = setting(None, "Most hidden nodes a CPPN may have.", group=CPPN,
                                             check=non_negative, preset=True)
    cppn_lineages: Optional[int] = setting(None, "MAP-Elites with CPPNs: hill-climbing lineages for the class furthest "
                                                 "from done (while below --es-focus), each started from a random "
                                                 "elite and bred apart from the archive (0: none, the paper).",
                                           group=CPPN, check=non_negative, preset=True)
    cppn_lineage_children: Optional[int] = setting(None, "Children per lineage per generation (on top of "
                                                         "--population).", group=CPPN, check=positive, preset=True)
    cppn_lineage_patience: Optional[int] = setting(None, "Generations without progress before a lineage below the "
                                                         "class's elite starts again from a new random elite (0: "
                                                         "never).", group=CPPN, check=non_negative, preset=True)

    # bookkeeping
    out: Optional[str] = setting(None, "Run directory [runs/<model>_<encoding>_s<seed>].", group=RUN, metavar="PATH")
    extra: dict[str, Any] = setting({}, "Free-form notes kept in config.json.", group=RUN, cli=False)

    # speed (the classifier's forward pass; see fooling/classifiers/base.py)
    precision: str = setting("fp32", "Forward pass in fp32, or bf16 / fp16 autocast (faster on GPUs; "
                                     "summary.json and elites/ are re-scored in fp32).", group=SPEED,
                             choices=PRECISIONS)
    compile: bool = setting(False, "Run the classifier, and the direct encoding's HLS decode, through "
                                   "torch.compile (slow to start; pays off on long runs, on GPUs and CPUs).",
                            group=SPEED)
    memory_format: str = setting("auto", "The networks' memory layout: channels-last where a network runs in it "
                                         "(1.2-1.5x faster networks on CPUs too), contiguous, or "
                                         "channels-last-on-cuda (runs begun before auto existed).", group=SPEED,
                                 choices=MEMORY_FORMATS)
    cppn_cpu_math: str = setting("numpy", "Whose sin, tanh and exp draw CPPNs on a CPU: numpy's (a third to a "
                                          "half less CPU time a drawing) or torch's (runs begun before numpy's); "
                                          "GPUs use torch's.", group=SPEED, choices=CPPN_CPU_MATHS)

    # model source (fooling/settings/model_source.py): how a model file, timm: or python: model takes its input
    input: Optional[str] = model_source("input")
    mean: Optional[str] = model_source("mean")
    std: Optional[str] = model_source("std")
    labels: Optional[str] = model_source("labels")

    # several seeds as one batched population (fooling.run.multi): one run directory each, OUT/s<seed>
    seeds: Optional[list[int]] = setting(None, "Several seeds at once, one forward pass for all: OUT/s<seed> each "
                                               "(--seeds 0-4).", group=RUN, check=_seeds, cli=False)
    encodings: Optional[list[str]] = setting(None, "With --seeds, several encodings too: OUT/<encoding>_s<seed> each, "
                                                   "one forward pass for all whose images have one size "
                                                   "(--encodings direct,cppn).", group=RUN, check=_encodings, cli=False)

    # snes-elites (a SNES emitter per class; fooling/search/snes_elites.py)
    es_sigma: float = setting(0.07, "snes-elites: initial step size of every noise gene.", group=SNES,
                              check=positive)
    es_scale: int = setting(2, "snes-elites: noise drawn on blocks of N x N pixels (1: every pixel).", group=SNES,
                            check=positive)
    es_start: float = setting(0.0, "snes-elites: grey level every emitter starts at (-1: the elites of "
                                   "--initial-population random images).", group=SNES, check=between(-1.0, 1.0))
    es_focus: float = setting(0.9999, "snes-elites: classes at this confidence get no children until all are.",
                              group=SNES, check=between(0.0, 1.0, low_open=True))
    es_lr_mean: float = setting(1.0, "snes-elites: learning rate of the mean.", group=SNES, check=positive)
    es_lr_sigma: float = setting(0.0, "snes-elites: learning rate of the step sizes (0: SNES's default, "
                                      "(3 + ln D) / (5 sqrt D)).", group=SNES, check=non_negative)

    # cppn-weight-es (MAP-Elites plus a SNES on each unfinished class's CPPN weights; fooling/search/cppn_weight_es.py)
    cppn_es_children: int = setting(100, "cppn-weight-es: children per generation for the weight searches of the "
                                         "unfinished classes (the rest: MAP-Elites).", group=CPPN_ES, check=positive)
    cppn_es_sigma: float = setting(0.05, "cppn-weight-es: initial step size of every weight, as a share of the "
                                         "weight range.", group=CPPN_ES, check=positive)
    cppn_es_patience: int = setting(5, "cppn-weight-es: generations without a better child before a class's weight "
                                       "search moves to a new network of its MAP-Elites children (0: never).",
                                    group=CPPN_ES, check=non_negative)
    cppn_es_emitters: int = setting(1, "cppn-weight-es: weight searches per unfinished class (the first tunes its "
                                       "elite, the others mutants of it).", group=CPPN_ES, check=positive)

    # expectation over transformation (fooling.objective.eot): the last group, on its own
    eot: int = setting(0, "Fitness = mean confidence over this many random transforms of each image, in one batched "
                          "forward pass (0: off).", group="eot", check=between(0, MAX_EOT))
    transforms: str = setting("default", "EOT transforms: default (crop, flip, rotate, jitter, noise) or e.g. "
                                         "'crop=0.8,flip,rotate=10,jitter=0.1,noise=0.02,jpeg=60'.", group="eot",
                              check=_check_spec)

    # scaling out (fooling.distributed): where the evaluations run, never what they give
    workers: int = setting(0, 'Score each generation on N Ray actors (0: in this process); the result is the same. '
                              'Needs pip install "fooling[ray]".', group=SCALE, check=non_negative, metavar="N")
    ray_address: Optional[str] = setting(None, "Join this Ray cluster (auto, or HOST:PORT of `ray start --head`) "
                                               "instead of starting a local one.", group=SCALE, metavar="ADDR")
    gpus_per_worker: Optional[float] = setting(None, "GPUs each actor holds (fractions share a GPU) [the "
                                                     "cluster's shared evenly, at most 1; none: CPU].", group=SCALE,
                                               check=non_negative, metavar="F")

    def check_together(self) -> None:
        if (self.ray_address or self.gpus_per_worker is not None) and not self.workers:
            raise FoolingError("--ray-address and --gpus-per-worker need --workers N")
        if self.workers and self.eot:
            raise FoolingError("--workers does not combine with --eot yet (EOT draws its transforms for a whole "
                               "batch at once); drop one of them")
        if self.encodings and not self.seeds:
            raise FoolingError("--encodings makes a group of runs: give --seeds too (e.g. --seeds 0)")
        if self.workers and self.seeds:
            raise FoolingError("--workers does not combine with --seeds yet; run the seeds one at a time")
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise FoolingError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if self.strategy == "ga" and self.target is None:
            raise FoolingError("--strategy ga needs --target CLASS")
        if self.strategy != "ga" and self.target is not None:  # (no preset picks ga) it was ignored in silence
            raise FoolingError("--target is the one class of a --strategy ga run; the other strategies evolve "
                               "every class, or those of --classes: drop --target, or use --classes instead")
        if self.strategy == "ga" and self.classes is not None:
            raise FoolingError("--strategy ga fools the one class of --target; drop --classes")
        # a group's runs take the encodings of --encodings (fooling.run.multi), not its encoding (the default's)
        option = "--encodings" if self.encodings else "--encoding"  # what the user named the encodings with
        for encoding in self.encodings or [self.encoding]:
            refusal = encoding_refusal(self.strategy, encoding, encoding_option=option)
            if refusal:
                raise FoolingError(refusal)
        if self.strategy == "cppn-weight-es" and self.population is not None and \
                self.cppn_es_children > self.population:
            raise FoolingError(f"--cppn-es-children {self.cppn_es_children} exceeds --population {self.population}")

    def preset_values(self, network: Optional[Network] = None) -> dict[str, Any]:
        """The values of the chosen preset for this run's encoding (:data:`ENCODING_PRESETS` over
        :data:`PRESETS`) and, given its ``network``, for that network (:data:`IMAGENET_PRESETS`)."""
        values = {**self.PRESETS.get(self.preset, {}), **ENCODING_PRESETS.get(self.preset, {}).get(self.encoding, {})}
        if network is not None and network.imagenet:
            values.update({k: v for k, v in IMAGENET_PRESETS.get(self.preset, {}).get(self.encoding, {}).items()
                           if network.takes_crops or k not in CROP_SETTINGS})
        return values

    def network_settings(self) -> set[str]:
        """The preset fields whose value under this preset and encoding depends on the run's networks."""
        return set(IMAGENET_PRESETS.get(self.preset, {}).get(self.encoding, {}))

    def network_resolved(self) -> tuple[str, ...]:
        """The settings that wait for the run's networks: those :meth:`resolved` without a network leaves None
        among :meth:`network_settings` (preset values that depend on the networks, none given explicitly) and the
        initial population when it follows such a population. A run records them in config.json
        (:data:`NETWORK_RESOLVED`)."""
        partly = self.resolved()
        waiting = self.network_settings() | {"initial_population"}
        return tuple(f.name for f in self.fields() if f.name in waiting and getattr(partly, f.name) is None)

    @classmethod
    def preset_fields(cls) -> tuple[str, ...]:
        """The settings a preset fills when they are given no value: the preset fields, and the initial population
        (which follows the population)."""
        return tuple(f.name for f in cls.fields() if f.metadata.get("preset") or f.name == "initial_population")

    def preset_filled(self) -> tuple[str, ...]:
        """The settings this run leaves to its preset (:meth:`preset_fields` given no value). A run records them in
        config.json (:data:`PRESET_FILLED`)."""
        return tuple(name for name in self.preset_fields() if getattr(self, name) is None)

    @classmethod
    def _recorded(cls, record: Any, where: str, key: str, allowed: Sequence[str], what: str) -> Optional[tuple[str, ...]]:
        """The setting names a config.json's "run" ``record`` lists under ``key``; None where it has none (a run
        recorded before, a file written by hand). Not a list, or a name outside ``allowed`` (the settings ``what``):
        a one-line :class:`FoolingError` naming the first bad entry (not the whole, perhaps long, list)."""
        if not isinstance(record, dict) or key not in record:
            return None
        value = record[key]
        bad = [v for v in value if not (isinstance(v, str) and v in allowed)][:1] if isinstance(value, list) else [value]
        if bad:
            raise FoolingError(f"{where}: run.{key} must be a list of setting names, got {shown(bad[0])} "
                               f"(settings {what}: {', '.join(allowed)})")
        return tuple(value)

    @classmethod
    def resolved_by_run(cls, record: Any, where: str) -> Optional[tuple[str, ...]]:
        """The settings a run's config.json "run" ``record`` says its networks resolved (:data:`NETWORK_RESOLVED`,
        names from :data:`NETWORK_RESOLVABLE`); None where it does not say."""
        return cls._recorded(record, where, NETWORK_RESOLVED, NETWORK_RESOLVABLE, "a run resolves for its networks")

    @classmethod
    def filled_by_run(cls, record: Any, where: str) -> Optional[tuple[str, ...]]:
        """The settings a run's config.json "run" ``record`` says the run left to its preset (:data:`PRESET_FILLED`,
        names from :meth:`preset_fields`); None where it does not say."""
        return cls._recorded(record, where, PRESET_FILLED, cls.preset_fields(), "a preset fills")

    @classmethod
    def left_to_run(cls, settings: "EvolveSettings", record: Any, where: str) -> tuple[str, ...]:
        """A previous run's config.json (its ``settings`` and "run" ``record``) as ``--config``: the settings the new
        run chooses again. Those its networks resolved (for the new run's networks), and those it left to its preset
        that still hold the preset's choice for the file's own settings, the values that stand included (for the new
        run's preset, encoding and strategy, which the command line may change); a value given explicitly was never
        left to either. So the file alone runs exactly the settings it holds."""
        left = set(cls.resolved_by_run(record, where) or ())
        filled = list(dict.fromkeys(name for name in cls.filled_by_run(record, where) or () if name not in left))
        # A value that stands is one of the file's own settings, and the preset's choice for the others may follow
        # it (the population follows the strategy, the initial population the population): so compare again with
        # it in place, until what is left to the preset is chosen as the file holds it. Each pass takes at least
        # one name out, so this ends; what is left then resolves to exactly the file's values.
        while filled:
            try:
                chosen = dataclasses.replace(settings, **dict.fromkeys(filled)).resolved()  # the preset's choices
            except FoolingError:  # the file's settings do not resolve as they are: nothing to compare with
                return tuple(sorted(left))
            standing = {name for name in filled if getattr(chosen, name) != getattr(settings, name)}
            if not standing:
                break
            filled = [name for name in filled if name not in standing]
        return tuple(sorted(left | set(filled)))

    def resolved(self, network: Optional[Network] = None) -> "EvolveSettings":
        """A validated copy with every None operator field filled from the preset (its values for this
        encoding) and the initial population from the population.

        Without ``network`` the fields whose preset value depends on the networks (:meth:`network_settings`)
        stay None if they are (and so does the initial population if the population does): a run fills them
        once its networks are loaded (:class:`fooling.run.evolve.EvolutionRun`), so an explicit value, never
        a preset's guess, is all a partly resolved config holds."""
        self.validate()
        preset = self.preset_values(network)
        waiting = set() if network is not None else self.network_settings()
        chosen = self
        if chosen.population is None and chosen.strategy is not None and chosen.strategy != preset.get("strategy"):
            chosen = dataclasses.replace(chosen, population=STRATEGY_POPULATION[chosen.strategy])
        filled = {f.name: preset[f.name] for f in self.fields()
                  if f.metadata.get("preset") and getattr(chosen, f.name) is None and f.name in preset
                  and f.name not in waiting}
        out = dataclasses.replace(chosen, **filled)
        out.validate()
        if out.initial_population is None and out.population is not None:
            out = dataclasses.replace(out, initial_population=out.population)
        return out

    @property
    def model_names(self) -> list[str]:
        """The networks scored against: ``models`` if given, else ``[model]``."""
        return list(self.models) if self.models else [self.model]


def ignored_class_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The class settings a run with these ``values`` does not use, set to None: ``target`` but for the ga
    strategy, ``classes`` for it. A sweep's points take them so (one value for a grid of strategies), and so do
    the config.json files of runs begun before :meth:`EvolveSettings.check_together` refused them."""
    if values.get("strategy") == "ga":
        return {"classes": None} if values.get("classes") is not None else {}
    return {"target": None} if values.get("target") is not None else {}


def check_types(data: dict[str, Any], where: str = "config.json") -> dict[str, Any]:
    """Check each setting in ``data`` against :class:`EvolveSettings`' types; returns ``data`` with integers
    given for number settings made floats. Unknown keys or a wrong type: a one-line :class:`FoolingError`."""
    settings = EvolveSettings.from_json({**EvolveSettings().to_json(), **data}, where=where)
    return {k: getattr(settings, k) if k in EvolveSettings.types() else v for k, v in data.items()}


def physical_memory() -> Optional[int]:
    """Bytes of memory this machine has (MemTotal of /proc/meminfo, else sysconf), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def estimate_bytes(config: EvolveSettings, image_shape: Sequence[int], cells: int) -> int:
    """Bytes a run holds at once, roughly: the largest generation's decoded images (N, C, H, W) and, for
    the direct encoding, its parents and children (N, C·H·W genes each) plus the archive's ``cells`` elites
    (and for snes-elites each class's mean image and step sizes on its noise grid)."""
    values = math.prod(int(v) for v in image_shape)
    lineages = (config.cppn_lineages or 0) * (config.cppn_lineage_children or 0) \
        if config.encoding == "cppn" and config.strategy == "map-elites" else 0
    batch = max(config.population + lineages, config.initial_population or config.population)
    copies = 3 * batch + cells if config.encoding == "direct" else 2 * batch  # cppn: images + resize workspace
    if config.strategy == "snes-elites":
        copies += cells * (1 + 1 / config.es_scale ** 2)
    return int(copies * values * BYTES_PER_VALUE)


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB"


def check_run_size(config: EvolveSettings, image_shape: Sequence[int], cells: int, min_side: int = 1,
                   memory: Optional[int] = None) -> None:
    """Refuse images smaller than the networks take (``min_side``) or a run whose estimated memory
    (:func:`estimate_bytes`) exceeds MEMORY_FRACTION of ``memory`` (default: :func:`physical_memory`)."""
    c, h, w = image_shape
    if min(h, w) < min_side:
        raise FoolingError(f"--image-size {min(h, w)} is too small for {', '.join(config.model_names)}: "
                           f"the smallest image side it takes is {min_side}")
    memory = physical_memory() if memory is None else memory
    need = estimate_bytes(config, image_shape, cells)
    if memory and need > MEMORY_FRACTION * memory:
        raise FoolingError(f"a run of {max(config.population, config.initial_population or 0)} images of "
                           f"{c}x{h}x{w} ({config.encoding}, {cells} classes) needs about {_gib(need)} of memory, "
                           f"more than {MEMORY_FRACTION:.0%} of this machine's {_gib(memory)}; "
                           f"lower --image-size or --population")
