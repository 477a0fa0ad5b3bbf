"""One run's evaluations on a pool of Ray actors (``fool evolve --workers N``).

The driver keeps the archive, the strategy and every random generator; each generation it sends each actor a
contiguous piece of the generation, and gets back each image's probabilities of the archive's classes, float32 (n, cells, models). Each actor holds its
own :class:`~fooling.objective.Objective` (the run's models, crops, classes, precision) on its own device: CUDA
when Ray gives it a GPU, else CPU.

What travels: a strategy that plans its generations (direct genomes with MAP-Elites, the GA or snes-elites,
see :mod:`fooling.search.blocks`) sends its :class:`~fooling.search.blocks.Plan`'s piece: the parents' keys
and one seed per block of children (MAP-Elites, the GA: also each child's operator), or the sampled emitters'
mean and step-size rows and one seed per emitter (snes-elites); the actor varies its piece itself, parents
read from its mirror of what they index (the archive's elites, the GA's population: the strategy's
``mirror_source``), a table of genomes by key. The mirror is kept by sending each actor the genomes it lacks
and the keys to drop since it was last synchronised (one ``ray.put`` per distinct update, usually one per
generation); a new actor (the first generation, a replacement, another run's strategy) receives every one.
A piece whose plan and incremental mirror
changes would take more bytes than its children's genes sends the genes instead (exact either way; its
actor's mirror then stays as it was); an empty mirror is always filled. Other encodings send the genomes (:func:`pack`: direct, the float32 genes; CPPN, the networks as small tables,
rendered by the actor). Pieces are whole blocks of the plan, whose size never depends on the workers.

Exactness: a CPU forward pass may round differently with a different batch size, so on CPU actors the pieces
start and end on the boundaries of the chunks the in-process path would score (:meth:`Classifier.chunk_images`;
for an ensemble, the least common multiple of its members' chunks): every actor runs exactly the forward
passes the single process would, and the result equals the in-process run's bit for bit. (A population that
fits one chunk therefore goes to one actor.) GPU actors split the batch evenly; there the in-process chunk
depends on free memory anyway, so equality is up to the rounding of different batch sizes. An actor whose
generators would draw other numbers from the same seeds (another device type, GPU model or PyTorch version:
:func:`~fooling.search.noise.stream_key`) is always sent its piece's genes, never a plan.

Faults: an actor that dies is replaced and its piece scored again (at most :data:`RETRIES` times per
generation); an actor that cannot build its models fails the run with one line naming the worker and why.
"""

from __future__ import annotations

import math
import os
import pickle
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..classifiers import Classifier
from ..encodings import Encoding, make_encoding
from ..errors import FoolingError, first_line
from ..search.blocks import Plan, realise
from ..search.noise import stream_key
from ..settings.evolve import EvolveSettings

RETRIES = 3  # replacements of dead actors per generation before the run gives up
START_TIMEOUT_S = 600.0  # how long actors may take to be placed and to load their models
HUGE_BATCH = 1 << 30  # a batch size no chunk reaches: asks a classifier for its largest chunk


def chunk_unit(classifiers: Sequence[Classifier], shape: Sequence[int]) -> Optional[int]:
    """Images per piece such that pieces cut on every classifier's CPU chunk boundaries: the least common
    multiple of their largest chunks for images of ``shape`` (C, H, W); None on CUDA (chunks follow free memory)."""
    if any(c.device.type != "cpu" for c in classifiers):
        return None
    probe = torch.empty(1, *shape).expand(HUGE_BATCH, *shape)  # only its shape is read
    return math.lcm(*(c.chunk_images(probe) for c in classifiers))


def plan_pieces(n: int, workers: int, unit: Optional[int]) -> list[tuple[int, int]]:
    """Contiguous (start, stop) pieces of a batch of ``n``, at most one per worker (fewer when there are fewer
    units): whole ``unit``s each (the last may be short), as even as whole units allow; ``unit`` None: even."""
    if n <= 0:
        return []
    unit = unit or 1
    units = math.ceil(n / unit)
    count = min(workers, units)
    base, extra = divmod(units, count)
    pieces, start = [], 0
    for i in range(count):
        stop = min(n, start + (base + (i < extra)) * unit)
        pieces.append((start, stop))
        start = stop
    return pieces


def payload_bytes(value: Any) -> int:
    """Bytes that ``value`` takes serialised (numpy arrays, and dicts of them: their buffers, which Ray ships
    out of band; other objects: pickled)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
        return sum(int(v.nbytes) for v in value.values())
    return len(pickle.dumps(value, protocol=5))


def pack(encoding: Encoding, genomes: Any) -> dict[str, np.ndarray]:
    """Genomes as they travel: the encoding's checkpoint arrays (:meth:`Encoding.to_arrays`, which round-trip
    exactly): direct, the float32 genes (N, G); CPPN, the networks as padded int8 / int32 / float64 tables."""
    if isinstance(genomes, torch.Tensor):
        genomes = genomes.detach().cpu()
    return encoding.to_arrays(genomes)


class Evaluator:
    """What one actor holds: the run's models, objective and encoding on the actor's device.

    Built by Ray (``ray.remote(Evaluator)``); a failure to build is kept and reported by :meth:`ready`
    rather than raised, so the driver can name the worker in one line.
    """

    def __init__(self, config: EvolveSettings, shape: tuple[int, int, int], classes: Sequence[int],
                 specs: Sequence[Any] = ()) -> None:
        self.error: Optional[str] = None
        self.unit: Optional[int] = None
        self.device = torch.device("cpu")
        self.mirror: dict[int, torch.Tensor] = {}  # key -> (G,) float32: the parents a plan may index
        try:
            import ray

            from ..classifiers import load_classifier, register
            from ..objective import Objective

            for spec in specs:  # models registered at run time in the driver (module:NAME, tests' models)
                register(spec)
            if ray.get_gpu_ids() and torch.cuda.is_available():
                self.device = torch.device("cuda")
            classifiers = [load_classifier(name, self.device, config.crops) for name in config.model_names]
            self.objective = Objective(classifiers, classes, config.combine, precision=config.precision,
                                       compile=config.compile, memory_format=config.memory_format)
            self.encoding = make_encoding(config, shape, self.device)
            self.unit = chunk_unit(classifiers, shape)
        except Exception as err:  # reported by ready()
            self.error = first_line(err)
            if not isinstance(err, FoolingError):
                self.error = f"{type(err).__name__}: {self.error}"

    def ready(self) -> dict[str, Any]:
        """{"error": why it could not build its models or None, "device", "pid", "node", "unit", "stream": the
        :func:`~fooling.search.noise.stream_key` of its device}."""
        import ray

        return {"error": self.error, "device": str(self.device), "pid": os.getpid(),
                "node": ray.util.get_node_ip_address(), "unit": self.unit, "stream": stream_key(self.device)}

    def score(self, genomes: dict[str, np.ndarray]) -> np.ndarray:
        """Genomes (a piece of the generation, as :func:`pack` made them) -> probabilities of the archive's
        classes, float32 (n, cells, models): exactly the values the in-process Objective turns into fitness."""
        return self._probs(self.encoding.decode(self.encoding.from_arrays(genomes), self.device))

    def vary_score(self, plan: Plan, update: Optional[dict[str, Any]] = None) -> np.ndarray:
        """A piece of a generation's plan -> the probabilities :meth:`score` gives for its children, which this
        actor realises itself (:func:`~fooling.search.blocks.realise`); its parents are keys of the mirror.
        update: {"keys" (k,) int64, "genes" (k, G) float32, "drop" (d,) int64, "reset": bool (empty the
        mirror first)}: the mirror's changes first."""
        if update is not None:
            if update["reset"]:
                self.mirror = {}
            for key in update["drop"].tolist():
                self.mirror.pop(key, None)
            genes = torch.as_tensor(update["genes"], device=self.device)
            for key, row in zip(update["keys"].tolist(), genes):
                self.mirror[key] = row
        children, _ = realise(plan, self.encoding, self._elites)
        return self._probs(self.encoding.decode(children, self.device))

    def _elites(self, keys: Any) -> torch.Tensor:
        try:
            return torch.stack([self.mirror[int(k)] for k in keys])
        except KeyError as err:
            raise RuntimeError(f"parent {err} is not in this actor's mirror") from None

    def mirror_digest(self) -> dict[int, np.ndarray]:
        """The mirror {key: (G,) genes} on the host (tests: compare with the driver's)."""
        return {k: v.cpu().numpy() for k, v in self.mirror.items()}

    def _probs(self, images: torch.Tensor) -> np.ndarray:
        objective = self.objective
        probs = [c.probs(images)[:, objective._classes_on(c.device)] for c in objective.classifiers]
        return torch.stack(probs, dim=-1).cpu().numpy()


@dataclass
class Traffic:
    """Bytes shipped by a pool: sent to the actors, received back, over ``generations`` scored batches."""

    sent: int = 0
    received: int = 0
    generations: int = 0
    replaced: int = 0  # actors that died and were replaced
    last: dict[str, int] = field(default_factory=dict)  # the last generation's {"sent", "received"}

    def per_generation(self) -> dict[str, float]:
        g = max(1, self.generations)
        return {"sent": self.sent / g, "received": self.received / g}


class EvaluatorPool:
    """N Ray actors scoring one run's generations; :meth:`fitness` is the in-process
    ``objective.fitness_tensor(encoding.decode(genomes))`` spread over them.

    ray: the initialised Ray module (:func:`~fooling.distributed.ray_setup.connected`). gpus_per_worker None:
    the cluster's GPUs shared evenly, at most 1 each (0 without GPUs: CPU actors). device: the driver's, where fitness lands.
    encoding: the run's (to pack genomes; default: the config's). start_timeout: seconds the actors may take to be placed and load their models (else a one-line error:
    the cluster's resources are taken, e.g. by another pool).
    """

    def __init__(self, ray: ModuleType, config: EvolveSettings, shape: tuple[int, int, int],
                 classes: Sequence[int], workers: int, device: torch.device,
                 gpus_per_worker: Optional[float] = None, start_timeout: float = START_TIMEOUT_S,
                 encoding: Optional[Encoding] = None) -> None:
        if workers < 1:
            raise FoolingError(f"--workers must be at least 1, got {workers}")
        self.ray, self.config, self.shape = ray, config, tuple(shape)
        self.classes = [int(k) for k in classes]
        self.device = device
        self.stream = stream_key(device)  # actors whose generators draw otherwise are sent genes, never plans
        self.encoding = encoding if encoding is not None else make_encoding(config, self.shape)
        self.combine = config.combine
        resources = ray.cluster_resources()
        cluster_gpus, cluster_cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 0))
        if gpus_per_worker is None:  # the cluster's GPUs shared evenly, at most one each
            gpus_per_worker = min(1.0, cluster_gpus / workers)
        self.gpus = float(gpus_per_worker)
        self.cpus = 1.0 if self.gpus == 0 else 0.0
        if workers * self.gpus > cluster_gpus or workers * self.cpus > cluster_cpus:
            need = f"{workers * self.gpus:g} GPUs" if self.gpus else f"{workers * self.cpus:g} CPUs"
            raise FoolingError(f"--workers {workers} needs {need}, but the Ray cluster has {cluster_cpus:g} CPUs "
                               f"and {cluster_gpus:g} GPUs")
        self.specs = _shippable_specs(config.model_names)
        self.traffic = Traffic()
        self._remote = ray.remote(Evaluator)
        self.start_timeout = start_timeout
        self.actors: list[Any] = [None] * workers
        self.info: list[dict[str, Any]] = [{}] * workers
        try:
            handles = [self._spawn() for _ in range(workers)]
            for i, info in enumerate(self._ready(handles)):
                self.actors[i], self.info[i] = handles[i], info
                self._check(i, info)
        except BaseException:
            for h in locals().get("handles", []):
                ray.kill(h)
            raise
        units = {info["unit"] for info in self.info}
        self.unit = units.pop() if len(units) == 1 else None  # mixed devices: even pieces
        # the sorted keys each actor's mirror holds (None: nothing yet), and the strategy they come from
        self.synced: list[Optional[np.ndarray]] = [None] * workers
        self._mirrored: Any = None

    @property
    def workers(self) -> int:
        return len(self.actors)

    def _spawn(self) -> Any:
        return self._remote.options(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0) \
            .remote(self.config, self.shape, self.classes, self.specs)

    def _ready(self, handles: list[Any]) -> list[dict[str, Any]]:
        from ray.exceptions import GetTimeoutError

        try:
            return self.ray.get([h.ready.remote() for h in handles], timeout=self.start_timeout)
        except GetTimeoutError:
            free = self.ray.available_resources()
            raise FoolingError(f"the Ray actors did not start within {self.start_timeout:g} s (free in the cluster: "
                               f"{free.get('CPU', 0):g} CPUs, {free.get('GPU', 0):g} GPUs; each actor needs "
                               f"{self.cpus:g} CPU and {self.gpus:g} GPU)") from None

    def _check(self, i: int, info: dict[str, Any]) -> None:
        if info["error"]:
            self.close()
            raise FoolingError(f"worker {i} (pid {info['pid']} on {info['node']}) could not load the model: "
                               f"{info['error']}")

    def _replace(self, i: int) -> None:
        """Actor ``i`` died: start another in its place."""
        handle = self._spawn()
        info = self._ready([handle])[0]
        self.actors[i], self.info[i] = handle, info
        self.synced[i] = None  # a new actor gets the whole mirror
        self.traffic.replaced += 1
        self._check(i, info)

    def fitness(self, genomes: Any, size: int, plan: Optional[Plan] = None,
                source: Any = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Fitness (N, cells) float64 and ensemble scores (N, cells, M) (None for one model) of ``size`` genomes
        on the driver's device, as the in-process objective gives them.

        plan: the strategy's plan of these genomes (:meth:`Strategy.plan`): then the actors get pieces of it
        and vary their children themselves (whole blocks each; ``source``, the strategy whose ``mirror_source``
        the parents of a "vary" or "ga" plan index, keeps their mirrors); None: the genomes travel."""
        from ray.exceptions import RayActorError, RayTaskError

        keys = rows = None
        if plan is None:
            pieces = plan_pieces(size, self.workers, self.unit)
            payloads: list[Any] = [pack(self.encoding, genomes[a:b]) for a, b in pieces]
        else:
            if source is not None and source.encoding.settings() != self.encoding.settings():
                raise FoolingError("the actors vary genomes with other encoding settings than this run's: give the "
                                   "run a pool made for its own settings")
            unit = math.lcm(self.unit, plan.block) if self.unit else plan.block
            pieces = plan_pieces(plan.n, self.workers, unit)
            payloads = [plan.piece(a, b) for a, b in pieces]
            keys, rows = self._source(plan, source)
            if keys is not None:  # parents travel as keys of the mirrors
                for p in payloads:
                    p.parents = np.where(p.parents >= 0, keys[np.maximum(p.parents, 0)], -1)
        puts: dict[bytes, tuple[Any, int]] = {}
        sent = 0
        planned = [plan is not None] * len(payloads)  # False: this piece's genes travel

        def send_genes(i: int) -> Any:
            nonlocal sent
            planned[i] = False
            genomes_i = pack(self.encoding, genomes[pieces[i][0]:pieces[i][1]])
            sent += payload_bytes(genomes_i)
            return self.actors[i].score.remote(genomes_i)

        def submit(i: int) -> Any:
            nonlocal sent
            payload = payloads[i]
            if plan is None:
                sent += payload_bytes(payload)
                return self.actors[i].score.remote(payload)
            if self.info[i].get("stream") != self.stream:  # its generators draw other numbers than the driver's
                return send_genes(i)
            update, nbytes = (None, 0) if keys is None else self._update(i, keys, rows, puts)
            genes = pieces[i][1] - pieces[i][0]
            # genes are smaller: send those, unless the actor's mirror is to be filled (a one-time cost that
            # the later, incremental updates repay; refusing it would keep the mirror empty for good)
            if self.synced[i] is not None and payload.nbytes() + nbytes >= genes * self.encoding.num_genes * 4:
                return send_genes(i)
            planned[i] = True
            sent += payload.nbytes() + nbytes
            return self.actors[i].vary_score.remote(payload, update)

        refs = [submit(i) for i in range(len(payloads))]
        results: list[np.ndarray] = []
        retries = 0
        for i in range(len(payloads)):
            while True:
                try:
                    results.append(self.ray.get(refs[i]))
                    if keys is not None and planned[i]:
                        self.synced[i] = _live(keys)
                    break
                except RayActorError as err:
                    retries += 1
                    if retries > RETRIES:
                        raise FoolingError(f"worker {i} died {retries} times in one generation; last: "
                                           f"{first_line(err)}") from None
                    self._replace(i)
                    refs[i] = submit(i)
                except RayTaskError as err:
                    raise FoolingError(f"worker {i} failed: {first_line(err.cause if err.cause else err)}") \
                        from None
        received = sum(int(r.nbytes) for r in results)
        self.traffic.sent += sent
        self.traffic.received += received
        self.traffic.generations += 1
        self.traffic.last = {"sent": sent, "received": received}
        if not results:
            empty = torch.empty(0, len(self.classes), dtype=torch.float64, device=self.device)
            return empty, None
        probs = torch.from_numpy(np.concatenate(results)).to(self.device, torch.float64)  # (N, cells, M)
        if probs.shape[-1] == 1:
            return probs[..., 0], None
        fitness = probs.mean(-1) if self.combine == "mean" else probs.min(-1).values
        return fitness, probs

    def _source(self, plan: Plan, source: Any) -> tuple[Optional[np.ndarray], Any]:
        """(keys (M,) int64 of what ``plan``'s parents index, -1: empty; indices -> (len, G) batch) when it
        varies parents (else None, None); another strategy than last time resets every actor's mirror."""
        if plan.kind not in ("vary", "ga"):
            return None, None
        if source is None:
            raise ValueError("a plan that varies parents needs the strategy they come from")
        if source is not self._mirrored:
            self._mirrored = source  # held, so that its identity cannot be taken by another
            self.synced = [None] * self.workers
        return source.mirror_source()

    def _update(self, i: int, keys: np.ndarray, rows: Any, puts: dict[bytes, tuple[Any, int]]) -> tuple[Any, int]:
        """(the object ref of the mirror changes actor ``i`` needs, or None; their bytes): one ray.put per
        distinct update."""
        found = mirror_update(self.synced[i], keys, rows, lazy=True)
        if found is None:
            return None, 0
        tag, make = found
        if tag not in puts:
            update = make()
            puts[tag] = (self.ray.put(update), update_bytes(update))
        return puts[tag]

    def mirrors(self) -> list[dict[int, np.ndarray]]:
        """Every actor's mirror {key: (G,) genes} (tests)."""
        return self.ray.get([a.mirror_digest.remote() for a in self.actors])

    def pids(self) -> list[int]:
        """The actors' process ids (on their nodes)."""
        return [int(info["pid"]) for info in self.info]

    def close(self) -> None:
        """End every actor (idempotent)."""
        for i, handle in enumerate(self.actors):
            if handle is not None:
                try:
                    self.ray.kill(handle)
                except Exception:  # already gone
                    pass
                self.actors[i] = None

    def __enter__(self) -> "EvaluatorPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _shippable_specs(names: Sequence[str]) -> list[Any]:
    """The registry entries of ``names`` that the actors cannot find themselves (registered at run time in this
    process, e.g. module:NAME models or the tests' ones) and that pickle; the rest the actors look up by name."""
    from ..classifiers import registry

    shipped = []
    for name in names:
        spec = registry._SPECS.get(name)
        if spec is None or getattr(spec.load, "__module__", "").startswith("fooling."):
            continue
        try:
            import ray.cloudpickle as cloudpickle

            cloudpickle.dumps(spec)
        except Exception:
            continue
        shipped.append(spec)
    return shipped


def mirror_update(held: Optional[np.ndarray], keys: np.ndarray, rows: Any, lazy: bool = False) -> Any:
    """The changes that bring a mirror holding the sorted keys ``held`` (None: unknown, it starts afresh) to
    ``keys`` (M,) int64 (-1: empty), whose genomes ``rows(indices)`` gives: {"keys" (k,), "genes" (k, G)
    float32, "drop" (d,), "reset"}, or None when there is nothing to send. lazy: (a tag naming the update,
    a function making it) instead."""
    live, first = np.unique(keys, return_index=True)
    first, live = first[live >= 0], live[live >= 0]
    reset = held is None
    held = np.empty(0, np.int64) if reset else held
    new = ~np.isin(live, held)
    drop = held[~np.isin(held, live)].astype(np.int64)
    if not new.any() and drop.size == 0 and not reset:
        return None

    def make() -> dict[str, Any]:
        genes = rows(first[new]).detach().to("cpu", torch.float32).numpy()
        return {"keys": live[new].astype(np.int64), "genes": genes, "drop": drop, "reset": reset}

    if lazy:
        return live[new].tobytes() + b"|" + drop.tobytes() + (b"|reset" if reset else b""), make
    return make()


def update_bytes(update: dict[str, Any]) -> int:
    """Bytes of a mirror update's arrays."""
    return int(update["genes"].nbytes + update["keys"].nbytes + update["drop"].nbytes)


def _live(keys: np.ndarray) -> np.ndarray:
    """The sorted distinct keys >= 0 of ``keys``."""
    live = np.unique(keys)
    return live[live >= 0]
