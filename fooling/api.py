"""The Python API: run ``fool evolve`` / ``fool ascend`` from Python and read run directories back.

    >>> import fooling
    >>> result = fooling.evolve(model="mnist-digitcnn", generations=2, population=8, out="runs/demo")
    >>> result.path, result.stop_reason, result.classes[0]["confidence"]
    >>> fooling.read_run("runs/demo").summary["generation"]

Every keyword is a setting of :class:`~fooling.settings.EvolveSettings` (or
:class:`~fooling.settings.AscendSettings`), under its config.json name; they override ``settings``.
A run writes the same run directory as the command line (config.json, summary.json, metrics.csv,
elites/, checkpoint/, log.txt) and can be resumed with ``fool evolve --resume``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .errors import FoolingError
from .paths import not_a_run_directory
from .settings.ascend import AscendSettings
from .settings.evolve import EvolveSettings

if TYPE_CHECKING:
    from .rundir import RunElites
    from .run.multi import HookSource

__all__ = ["RunResult", "StoppedAtOnce", "ascend", "evolve", "read_run", "resume", "sweep"]


@dataclass
class RunResult:
    """A run directory and what it says: ``summary`` (summary.json) and ``config`` (config.json).

    ``interrupted``: a stop signal (Ctrl-C, SIGTERM, SIGHUP) ended the run before its budget; it can be
    resumed (:func:`resume`). ``stop_signal``: that signal's number; ``message``: why it stopped, in words.
    """

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    stop_signal: Optional[int] = None
    message: str = ""

    @property
    def stop_reason(self) -> Optional[str]:
        """budget | until | interrupted | error (None: still running)."""
        return self.summary.get("stop_reason")

    @property
    def finished(self) -> bool:
        return bool(self.summary.get("finished"))

    @property
    def classes(self) -> list[dict[str, Any]]:
        """Per class: index, label, confidence, generation_found, passed ({threshold: generation})."""
        return list(self.summary.get("classes", []))

    def elites(self) -> "RunElites":
        """The elite PNGs as a user has them (:func:`fooling.rundir.read_run`)."""
        from .rundir import read_run as read_elites

        return read_elites(self.path)


class StoppedAtOnce(KeyboardInterrupt):
    """A second stop signal ended ``fool ascend`` mid-step; ``path`` holds its last checkpoint."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _settings(cls: type, settings: Any, overrides: dict[str, Any]) -> Any:
    if settings is None:
        settings = cls()
    elif not isinstance(settings, cls):
        raise FoolingError(f"settings must be {cls.__name__}, not {type(settings).__name__}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise FoolingError(f"{cls.__name__} has no setting {unknown[0]!r}")
    paths = {k: os.fspath(v) for k, v in overrides.items() if isinstance(v, os.PathLike)}  # out=Path(...), labels=...
    return dataclasses.replace(settings, **{**overrides, **paths})


SOURCE_SETTINGS = ("input", "mean", "std", "labels")  # how a model file / nn.Module takes its input


def _modules(overrides: dict[str, Any]) -> dict[str, Any]:
    """``model=`` (or ``models=[...]``) given as ``torch.nn.Module`` objects -> registered ``module:NAME`` names
    (:func:`fooling.classifiers.from_module`, with the input, mean, std and labels given beside them);
    mean / std given as lists -> the settings' comma-separated text."""
    from torch import nn

    given = [overrides.get("model"), *(overrides.get("models") or [])]
    if any(isinstance(m, nn.Module) for m in given):
        from .classifiers.sources import from_module

        options = {k: overrides.pop(k) for k in SOURCE_SETTINGS if k in overrides}
        if "input" not in options:
            raise FoolingError("an nn.Module model needs input=\"CxHxW\" (e.g. input=\"1x28x28\")")

        def name(m: Any) -> Any:
            return from_module(m, **options) if isinstance(m, nn.Module) else m

        if isinstance(overrides.get("model"), nn.Module):
            overrides["model"] = name(overrides["model"])
        if overrides.get("models"):
            overrides["models"] = [name(m) for m in overrides["models"]]
    for key in ("mean", "std"):
        if isinstance(overrides.get(key), (int, float)) and not isinstance(overrides.get(key), bool):
            overrides[key] = str(overrides[key])
        if isinstance(overrides.get(key), (list, tuple)):
            overrides[key] = ",".join(str(v) for v in overrides[key])
    return overrides


def with_model_sources(config: Any) -> Any:
    """``config`` with its model names in the form a run records (:func:`fooling.classifiers.canonical_name`:
    a model file's absolute path with --input, --mean, --std, --labels appended) and its labels path absolute;
    a run directory named after the model file when ``out`` is unset."""
    import os

    from .classifiers.sources import canonical_name, canonical_names, is_source, short_name

    options = {k: getattr(config, k, None) for k in SOURCE_SETTINGS}
    models = getattr(config, "models", None)
    names = canonical_names(list(models) if models else [config.model], **options)
    changes: dict[str, Any] = {}
    if models:
        changes["models"] = names
        changes["model"] = canonical_name(config.model, **options) if is_source(config.model) else config.model
    else:
        changes["model"] = names[0]
    if config.labels:
        changes["labels"] = os.path.abspath(os.path.expanduser(config.labels))
    config = dataclasses.replace(config, **changes)
    if config.out is None and is_source(names[0]):
        if isinstance(config, EvolveSettings):
            from .run.evolve import default_out as evolve_out

            config = dataclasses.replace(config, out=str(evolve_out(
                dataclasses.replace(config, model=short_name(names[0]), models=None))))
        else:
            from .run.ascend import default_out as ascend_out

            config = dataclasses.replace(config, out=str(ascend_out(
                dataclasses.replace(config, model=short_name(names[0])))))
    return config


def evolve(settings: Optional[EvolveSettings] = None, *, progress: bool = False, hooks: "HookSource" = (),
           **overrides: Any) -> Any:
    """Evolve fooling images (``fool evolve``) in a new run directory; returns its :class:`RunResult`.

    settings: an :class:`EvolveSettings` (None: the defaults); overrides: settings by name, e.g.
    ``model="mnist-digitcnn", generations=10, out="runs/x"`` (``models=[...]`` for an ensemble).
    A model is a registry name, a model file (``"net.onnx"``, ``"net.pt"``: TorchScript), ``"timm:NAME"``,
    ``"python:pkg.mod:function"`` or a ``torch.nn.Module`` (with ``input="CxHxW"``, ``labels=[...]`` and
    optionally ``mean`` / ``std``).
    hooks: :class:`~fooling.run.hooks.Hook` objects that observe every generation (or a function
    run -> hooks, called once per run).
    ``seeds=[0, 1, 2]``: one run per seed, batched into one forward pass per generation
    (:mod:`fooling.run.multi`), in ``out``/s0, ``out``/s1, ...; returns a list of :class:`RunResult`, one per seed.
    With ``encodings=["direct", "cppn"]`` too: one run per encoding and seed, ``out``/direct_s0, ...
    Every setting and the output folder are checked before anything is made.
    """
    from .paths import check_writable_dir
    from .run import EvolutionRun

    if not callable(hooks):
        from .run.hooks import check_hooks

        hooks = check_hooks(hooks)  # before the run directory is made
    config = _settings(EvolveSettings, settings, _modules(dict(overrides)))
    if config.models and not isinstance(overrides.get("model"), str):
        config = dataclasses.replace(config, model=config.models[0])  # the ensemble's first network names it
    config.validate()
    config = with_model_sources(config)
    check_writable_dir("runs" if config.out is None else config.out)
    if config.seeds:
        from .run.multi import RunGroup

        return _group(RunGroup.start(config), progress, hooks)
    return _evolution(EvolutionRun.start(config), progress, hooks)


def sweep(out: str | Path, *, seeds: Any = (0,), models: Any = ("mnist-lenet",), encodings: Any = ("direct",),
          strategies: Any = None, presets: Any = None, combines: Any = None, workers: Optional[int] = None,
          ray_address: Optional[str] = None, cpus_per_run: float = 1.0, gpus_per_run: Optional[float] = None,
          progress: bool = False, **settings: Any) -> list[RunResult]:
    """A grid of evolution runs (``fool sweep``) in ``out``/<name> each; returns one :class:`RunResult` per point
    (grid order; a point that failed has ``summary`` {} or its last one, ``message`` its reason).

    models: networks, each a name or a list of names (an ensemble); seeds: integers or a spec such as "0-4";
    settings: the :class:`EvolveSettings` every run shares, by name (``generations=50``, ``population=100``).
    Run again with the same grid (or one with more points), it skips finished runs and resumes interrupted ones.
    workers / ray_address: run the points as Ray tasks (see :mod:`fooling.run.sweep`).
    """
    from .limits import MAX_SEEDS
    from .run.multi import parse_seeds
    from .run.sweep import sweep as run_sweep
    from .settings.sweep import SweepSettings

    if not isinstance(out, (str, Path)):
        raise FoolingError(f"sweep's out must be a folder path, not {type(out).__name__}")  # str(None): ./None
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, str):
        if not isinstance(seeds, (list, tuple, range)):
            raise FoolingError(f"seeds must be integers or a spec such as '0-4', not {type(seeds).__name__}")
        if len(seeds) > MAX_SEEDS:  # before looking at each: range(10**12) is cheap to make, not to list
            raise FoolingError(f"--seeds names {len(seeds):,} seeds, more than {MAX_SEEDS:,}")
        wrong = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)]
        if wrong:
            raise FoolingError(f"seeds must be integers or a spec such as '0-4', got {wrong[0]!r}")  # int(1.5) was 1
    spec = SweepSettings(
        out=str(out), seeds=parse_seeds(seeds) if isinstance(seeds, str) else list(seeds),
        models=[[m] if isinstance(m, str) else list(m) for m in ([models] if isinstance(models, str) else models)],
        encodings=[encodings] if isinstance(encodings, str) else list(encodings),
        strategies=[strategies] if isinstance(strategies, str) else strategies,
        presets=[presets] if isinstance(presets, str) else presets,
        combines=[combines] if isinstance(combines, str) else combines, settings=dict(settings),
        workers=workers, ray_address=ray_address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    outcomes = run_sweep(spec, progress=progress)
    return [RunResult(o.path, o.summary or {}, _read_json(o.path / "config.json"),
                      o.action in ("interrupted", "not run"), None, o.error or o.action) for o in outcomes]


def ascend(settings: Optional[AscendSettings] = None, *, progress: bool = False, classifier: Any = None,
           **overrides: Any) -> RunResult:
    """Gradient ascent (``fool ascend``) in a new run directory; returns its :class:`RunResult`.

    settings: an :class:`AscendSettings` (None: the defaults); overrides: settings by name.
    classifier: the settings' model already loaded (a :class:`~fooling.classifiers.Classifier`), to
    avoid loading it twice. A second Ctrl-C raises :class:`StoppedAtOnce` (the last checkpoint stays).
    """
    from .run.ascend import AscentRun

    from .classifiers.sources import require_gradients

    from .classifiers import Classifier

    if classifier is not None and not isinstance(classifier, Classifier):  # it failed later: no attribute 'device'
        raise FoolingError(f"classifier must be a fooling Classifier (fooling.classifiers.load_classifier), "
                           f"not {type(classifier).__name__}")
    config = _settings(AscendSettings, settings, _modules(dict(overrides)))
    config.validate()
    config = with_model_sources(config)
    require_gradients(config.model, "fool ascend")
    return _ascent(AscentRun(config, classifier), progress)


def resume(path: str | Path, *, generations: Optional[int] = None, progress: bool = False,
           hooks: "HookSource" = (), command: Optional[str] = None, **changes: Any) -> Any:
    """Continue a ``fool evolve`` or ``fool ascend`` run from its last checkpoint.

    ``path`` may also be the folder of a group of runs (``evolve(seeds=...)``): every run in it continues,
    one forward pass for all, and a list of :class:`RunResult` comes back.

    generations: raise an evolution run's budget; changes: the other settings that may change on resume
    (:data:`~fooling.settings.evolve.RESUME_SETTINGS`: until, checkpoint_every, checkpoint_seconds,
    checkpoint_background). An ascent takes none.
    command: "evolve" or "ascend" to refuse a run of the other kind (the command line passes its own).
    """
    folder = Path(path)
    from .run.hooks import check_hooks
    from .run.multi import RunGroup, is_group

    if not callable(hooks):
        hooks = check_hooks(hooks)  # before the run is opened

    if is_group(folder) and command in (None, "evolve"):
        return _group(RunGroup.resume(folder, generations, **changes), progress, hooks)
    record = _read_json(folder / "config.json")  # unreadable: the resume below says what is wrong
    made_by = (record.get("run") or {}).get("command") if record else None
    made_by = made_by if isinstance(made_by, str) else (command or "evolve")
    if command is not None and made_by != command:
        raise FoolingError(f"{folder} is a `fool {made_by}` run; continue it with `fool {made_by} --resume {folder}`")
    if made_by == "ascend":
        if generations is not None or changes or tuple(hooks):
            raise FoolingError(f"{folder} is a `fool ascend` run: it resumes with the settings saved in it")
        from .run.ascend import AscentRun

        return _ascent(AscentRun.resume(folder), progress)
    from .run import EvolutionRun

    return _evolution(EvolutionRun.resume(folder, generations, **changes), progress, hooks)


def _evolution(run: Any, progress: bool, hooks: "HookSource") -> RunResult:
    summary = run.run(progress=progress, hooks=hooks(run) if callable(hooks) else hooks)
    return _evolution_result(run, summary)


def _evolution_result(run: Any, summary: dict[str, Any]) -> RunResult:
    return RunResult(run.rundir.path, summary, run.config_record(), run.interrupted, run.stop_signal,
                     run.stop_message())


def _group(group: Any, progress: bool, hooks: "HookSource") -> list[RunResult]:
    summaries = group.run(progress=progress, hooks=hooks)
    return [_evolution_result(run, summary) for run, summary in zip(group.runs, summaries)]


def _ascent(run: Any, progress: bool) -> RunResult:
    try:
        summary = run.run(progress=progress)
    except KeyboardInterrupt:
        raise StoppedAtOnce(run.rundir.path) from None
    message = (f"{summary.get('classes_done', 0)} of {len(run.classes)} classes finished" if run.interrupted
               else "every class done")
    return RunResult(run.rundir.path, summary, _read_json(run.rundir.config_path), run.interrupted,
                     run.stop_signal, message)


def read_run(path: str | Path) -> RunResult:
    """A run directory of ``fool evolve`` or ``fool ascend`` (finished, interrupted or live) as a
    :class:`RunResult`; :meth:`RunResult.elites` reads its elite images."""
    folder = Path(path)
    if not folder.is_dir():
        raise not_a_run_directory(folder)
    config, summary = _read_json(folder / "config.json"), _read_json(folder / "summary.json")
    if not config:
        raise FoolingError(f"{folder} is not a run directory (no readable config.json)")
    return RunResult(folder, summary, config, summary.get("stop_reason") == "interrupted")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}
