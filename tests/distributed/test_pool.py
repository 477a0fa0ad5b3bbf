"""One run over Ray actors (--workers): the same archive as in process, resumes across, dead actors replaced,
one-line errors. One local Ray instance (2 CPUs, loopback) for the whole file; none left running after."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fooling.cli import main
from fooling.distributed.pool import EvaluatorPool, chunk_unit, plan_pieces
from fooling.errors import FoolingError
from fooling.run import EvolutionRun, evolve
from fooling.run.hooks import Hook
from fooling.rundir.checkpoint import load_checkpoint
from fooling.settings.evolve import EvolveSettings
from helpers import assert_same_archive
from helpers import ray_with_paths

ray = pytest.importorskip("ray")
TESTS = Path(__file__).resolve().parents[1]


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        names[int(entry.name)] = name
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append((child, names[child]))
            todo.append(child)
    return out


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for the module; its workers import tests/conftest.py (the tests' models)."""
    with ray_with_paths([TESTS, TESTS.parent], object_store_memory=100 << 20) as module:
        yield module
    assert not ray.is_initialized()
    left = [(pid, name) for pid, name in _descendants(os.getpid()) if "ray" in name or "gcs" in name]
    assert not left, f"Ray processes still running: {left}"


@pytest.fixture(scope="class")
def oracle_pool(local_ray):
    """Two actors holding the oracle of :func:`_config`, shared by the tests below (saves starting actors)."""
    config = _config(Path("unused")).resolved()
    with EvaluatorPool(local_ray, config, (1, 8, 8), [0, 1, 2, 3], 2, torch.device("cpu")) as pool:
        yield pool


_REFERENCES: dict = {}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """strategy -> the in-process run of :func:`_config` with it (made once)."""
    def get(strategy: str = "snes-elites") -> Path:
        if strategy not in _REFERENCES:
            out = tmp_path_factory.mktemp("reference") / strategy
            evolve(_config(out, **STRATEGIES[strategy]))
            _REFERENCES[strategy] = out
        return _REFERENCES[strategy]
    return get


@pytest.fixture(scope="module")
def reference(references) -> Path:
    return references()


# direct genomes, each strategy on a population that spans two actors' pieces (whole blocks and chunks)
STRATEGIES = {"snes-elites": dict(strategy="snes-elites", population=80),  # 4 emitters x 20: pieces of 40
              "map-elites": dict(strategy="map-elites", population=40),  # blocks of 32: pieces 32 + 8
              "ga": dict(strategy="ga", target=1, population=40)}


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle-chunk8", generations=6, population=40, seed=5, device="cpu",
                checkpoint_every=3, checkpoint_seconds=0, out=str(out))
    base.update(kw)
    return EvolveSettings(**base)


class _Traffic(Hook):
    """Records the pool's traffic after every generation (and can kill an actor once)."""

    def __init__(self, kill_after: int = -1) -> None:
        self.rows: list[dict] = []
        self.kill_after = kill_after
        self.killed: list[int] = []

    def after_generation(self, run, record) -> None:
        assert run.pool is not None
        self.rows.append(dict(run.pool.traffic.last, replaced=run.pool.traffic.replaced))
        if record.generation == self.kill_after:
            pid = run.pool.pids()[0]
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)


def test_plan_cuts_on_chunk_boundaries():
    assert plan_pieces(40, 2, 8) == [(0, 24), (24, 40)]
    assert plan_pieces(300, 2, 256) == [(0, 256), (256, 300)]
    assert plan_pieces(100, 2, 256) == [(0, 100)]  # one chunk: one actor, as the single process scores it
    assert plan_pieces(10, 4, None) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert plan_pieces(0, 2, 8) == []
    for n, w, u in [(41, 3, 8), (1000, 4, 256), (7, 2, 1)]:
        pieces = plan_pieces(n, w, u)
        assert pieces[0][0] == 0 and pieces[-1][1] == n and len(pieces) <= w
        assert all(a % u == 0 for a, _ in pieces) and all(b == n or b % u == 0 for _, b in pieces)


def test_chunk_unit_is_the_lcm_of_the_members_chunks(oracle):
    from conftest import ORACLE_INPUT, Oracle
    from fooling.classifiers import Classifier

    six = Classifier(Oracle(4), name="six", labels=list("abcd"), preprocess=ORACLE_INPUT, chunk_size=6)
    four = Classifier(Oracle(4), name="four", labels=list("abcd"), preprocess=ORACLE_INPUT, chunk_size=4)
    assert chunk_unit([six, four], (1, 8, 8)) == 12
    assert chunk_unit([oracle], (1, 8, 8)) == 256  # CPU_MAX_CHUNK


@pytest.mark.parametrize("strategy", ["snes-elites", "map-elites", "ga", "cppn"])
def test_two_workers_give_the_in_process_archive(tmp_path, local_ray, references, strategy):
    kw = {"encoding": "cppn", "strategy": "map-elites"} if strategy == "cppn" else STRATEGIES[strategy]
    reference = tmp_path / "here" if strategy == "cppn" else references(strategy)
    if strategy == "cppn":
        evolve(_config(reference, **kw))
    traffic = _Traffic()
    EvolutionRun.start(_config(tmp_path / "ray", workers=2, **kw)).run(progress=False, hooks=[traffic])
    assert_same_archive(reference, tmp_path / "ray")
    assert "workers: 2 Ray actors (cpu" in (tmp_path / "ray" / "log.txt").read_text()
    n, cells = kw.get("population", 40), 1 if strategy == "ga" else 4
    assert len(traffic.rows) == 7 and all(r["received"] == n * cells * 4 for r in traffic.rows)  # float32 probs
    genes = n * 64 * 4  # the float32 genes of a generation
    if strategy == "ga":  # ops, parents, seeds and the new members of the population (a piece sends its genes
        # when they are smaller), after each actor's mirror was filled with the population once (generation 1)
        assert traffic.rows[0]["sent"] == 2 * 8 and traffic.rows[1]["sent"] > 2 * 40 * 64 * 4
        assert all(r["sent"] <= genes for r in traffic.rows[2:])
    elif strategy == "map-elites":  # parents (8 B), 2 seeds, and the changed elites (<= 4 x 256 B) per actor
        assert traffic.rows[0]["sent"] == 2 * 8  # generation 0: two seeds of random blocks
        # per actor: the elites it lacks, their keys and the keys to drop (<= 4 x (256 + 8 + 8) B)
        assert all(r["sent"] <= n * 8 + 16 + 2 * 4 * (256 + 8 + 8) for r in traffic.rows[1:])
    elif strategy == "snes-elites":  # per emitter: a seed, its cell, mean (256 B) and sigma (4x4 grid, 64 B)
        assert all(r["sent"] == 4 * (8 + 8 + 256 + 64) for r in traffic.rows)
    else:
        assert all(0 < r["sent"] < genes * 4 for r in traffic.rows)  # pickled networks


def _sync_and_check_mirrors(run, pool) -> None:
    """Send one more plan (which brings every actor given a piece up to date), then each such actor's mirror
    holds exactly what the plan's parents may index: every elite (MAP-Elites) or the population (the GA)."""
    plan = run.strategy.plan()
    pool.fitness(run.strategy.take(plan), plan.n, plan=plan, source=run.strategy)
    keys, rows = run.strategy.mirror_source()
    filled = np.flatnonzero(keys >= 0)
    want = dict(zip(keys[filled].tolist(), rows(filled).numpy()))
    mirrors = pool.mirrors()
    assert len(mirrors) == 2 and want
    for mirror in mirrors:
        assert mirror.keys() == want.keys()
        for key, genes in want.items():
            np.testing.assert_array_equal(mirror[key], genes)


class TestOnePoolForSeveralRuns:
    """Runs given a pool before run() (its two actors hold all the instance's CPUs until the class ends)."""

    def test_actors_that_cannot_be_placed_time_out_in_one_line(self, local_ray, oracle_pool):
        config = EvolveSettings(model="test-oracle", device="cpu").resolved()
        with pytest.raises(FoolingError, match=r"did not start within 1 s \(free in the cluster: 0 CPUs"):
            EvaluatorPool(local_ray, config, (1, 8, 8), [0], 1, torch.device("cpu"), start_timeout=1)

    def test_an_error_inside_an_actor_is_one_line_naming_the_worker(self, oracle_pool):
        wrong = torch.zeros(16, 10)  # genomes of 10 genes for 8x8 images
        with pytest.raises(FoolingError, match=r"^worker 0 failed: .*do not fit images") as err:
            oracle_pool.fitness(wrong, 16)
        assert "\n" not in str(err.value)
        assert oracle_pool.fitness(torch.rand(16, 64), 16)[0].shape == (16, 4)  # the actor lives on

    @pytest.mark.parametrize("strategy", ["snes-elites", "map-elites"])
    def test_a_run_resumes_with_or_without_workers_to_the_same_archive(self, tmp_path, oracle_pool, references,
                                                                        strategy):
        kw = STRATEGIES[strategy]
        reference = references(strategy)
        started = EvolutionRun.start(_config(tmp_path / "a", workers=2, **kw))
        started.pool = oracle_pool  # a pool given before run() is used as is (not closed)
        started.run(progress=False, stop_after=3)
        resumed = EvolutionRun.resume(tmp_path / "a")
        assert resumed.config.workers == 0  # where it runs is the resuming command's choice, not config.json's
        resumed.run(progress=False)
        assert_same_archive(reference, tmp_path / "a")
        EvolutionRun.start(_config(tmp_path / "b", **kw)).run(progress=False, stop_after=3)
        resumed = EvolutionRun.resume(tmp_path / "b", workers=2)
        assert resumed.config.workers == 2
        resumed.pool = oracle_pool  # its mirrors hold run a's elites: a resumed run's archive is another
        resumed.run(progress=False)
        assert_same_archive(reference, tmp_path / "b")
        if strategy == "map-elites":
            _sync_and_check_mirrors(resumed, oracle_pool)


    @pytest.mark.parametrize("strategy", ["snes-elites", "map-elites"])
    def test_an_actor_drawing_another_stream_gets_genes_not_plans(self, tmp_path, oracle_pool, references,
                                                                  strategy):
        """A GPU actor behind a CPU driver (or another GPU model) would realise other children from the same
        plan: it is sent the genes."""
        kw = STRATEGIES[strategy]
        assert oracle_pool.info[0]["stream"] == oracle_pool.stream == f"torch {torch.__version__}, cpu"
        oracle_pool.info[0] = dict(oracle_pool.info[0], stream="torch x, cuda H200, 132 SMs x 2048 threads")
        traffic = _Traffic()
        try:
            run = EvolutionRun.start(_config(tmp_path / "ray", workers=2, **kw))
            run.pool = oracle_pool
            run.run(progress=False, hooks=[traffic])
        finally:
            oracle_pool.info[0] = dict(oracle_pool.info[0], stream=oracle_pool.stream)
        assert_same_archive(references(strategy), tmp_path / "ray")
        first = 40 if strategy == "snes-elites" else 32  # actor 0's piece: 40 of 80 children, or 32 of 40
        assert len(traffic.rows) == 7 and all(r["sent"] >= first * 64 * 4 for r in traffic.rows)  # its genes


    def test_a_killed_actor_is_replaced_and_the_archive_is_the_same(self, tmp_path, oracle_pool, references):
        reference = references("map-elites")  # the replacement must be sent the whole mirror of elites
        traffic = _Traffic(kill_after=2)
        run = EvolutionRun.start(_config(tmp_path / "ray", workers=2, **STRATEGIES["map-elites"]))
        run.pool = oracle_pool
        replaced = oracle_pool.traffic.replaced
        run.run(progress=False, hooks=[traffic])
        assert traffic.killed and traffic.rows[-1]["replaced"] == replaced + 1
        assert traffic.killed[0] not in oracle_pool.pids()
        with pytest.raises(ProcessLookupError):
            os.kill(traffic.killed[0], 0)
        assert_same_archive(reference, tmp_path / "ray")
        _sync_and_check_mirrors(run, oracle_pool)
        # no elite changes from here: a replacement still needs (and gets) every elite
        victim = oracle_pool.pids()[1]
        os.kill(victim, signal.SIGKILL)
        _sync_and_check_mirrors(run, oracle_pool)
        assert victim not in oracle_pool.pids() and oracle_pool.traffic.replaced == replaced + 2


def test_real_lenet_two_workers_equal_in_process(tmp_path, local_ray, mnist_lenet):
    """The paper's LeNet on CPU rounds differently at other batch sizes: 300 images are two chunks (256 + 44)
    in process, and the two actors score exactly those."""
    kw = dict(model=mnist_lenet, population=300, generations=2, classes=[0, 1, 2, 3])
    evolve(_config(tmp_path / "here", **kw))
    evolve(_config(tmp_path / "ray", workers=2, **kw))
    assert_same_archive(tmp_path / "here", tmp_path / "ray")


def test_a_worker_that_cannot_load_the_model_fails_in_one_line(local_ray):
    config = EvolveSettings(model="no-such-model", device="cpu").resolved()
    with pytest.raises(FoolingError) as err:
        EvaluatorPool(local_ray, config, (1, 28, 28), [0], 1, torch.device("cpu"))
    message = str(err.value)
    assert message.startswith("worker 0 (pid ") and "could not load the model" in message
    assert "unknown model 'no-such-model'" in message and "\n" not in message


def test_more_workers_than_the_cluster_holds_is_one_line(local_ray):
    config = EvolveSettings(model="test-oracle", device="cpu").resolved()
    with pytest.raises(FoolingError, match="--workers 5 needs 5 CPUs, but the Ray cluster has 2 CPUs"):
        EvaluatorPool(local_ray, config, (1, 8, 8), [0], 5, torch.device("cpu"))


def test_without_ray_workers_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(FoolingError, match=r'--workers needs Ray, which is not installed: pip install "fooling\[ray\]"'):
        EvolutionRun.start(_config(tmp_path / "run", workers=2))
    assert not (tmp_path / "run").exists()
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--workers", "2", "--out",
                                       str(tmp_path / "cli")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == \
        'Error: --workers needs Ray, which is not installed: pip install "fooling[ray]"'


def test_resume_takes_placement_options_and_checks_them(tmp_path):
    evolve(_config(tmp_path / "run", model="test-oracle", generations=1))
    result = CliRunner().invoke(main, ["evolve", "--resume", str(tmp_path / "run"), "--gpus-per-worker", "0.5"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--ray-address and --gpus-per-worker need --workers N" in result.output.strip().splitlines()[-1]
    result = CliRunner().invoke(main, ["evolve", "--resume", str(tmp_path / "run"), "--seed", "2"])
    assert "cannot change on resume" in result.output and "--workers" in result.output


@pytest.mark.parametrize("args, words", [
    (["--ray-address", "auto"], "need --workers N"),
    (["--gpus-per-worker", "0.5"], "need --workers N"),
    (["--workers", "2", "--eot", "4"], "does not combine with --eot"),
    (["--workers", "-1"], "--workers must be"),
    (["--workers", "2", "--seeds", "0-1"], "does not combine with --seeds"),
])
def test_bad_placement_options_are_one_line(tmp_path, args, words):
    result = CliRunner().invoke(main, ["evolve", "--model", "test-oracle", "--out", str(tmp_path / "r"), *args])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert words in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "r").exists()


def _ray_processes() -> set[int]:
    """Every process on the machine whose command names Ray's (ray::..., raylet, gcs_server)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name.startswith("ray::") or name in ("raylet", "gcs_server"):
                found.add(int(entry.name))
    return found


@pytest.mark.slow
def test_a_driver_killed_with_workers_resumes_to_the_same_archive(tmp_path):
    """SIGKILL of a `fool evolve --workers 2` process; `--resume` in one process ends with the in-process
    archive. Ray's processes of the killed driver's instance go away by themselves (raylet and GCS at once,
    its agents within about 90 s): the test waits for them."""
    import json
    import subprocess
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), str(TESTS.parent),
                                                                     os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, str(TESTS / "run" / "oracle_fool.py"), "evolve", "--model", "test-oracle-chunk8",
           "--generations", "100000", "--population", "40", "--seed", "5", "--checkpoint-every", "3",
           "--checkpoint-seconds", "0", "--device", "cpu", "--quiet", "--workers", "2",
           "--out", str(tmp_path / "killed")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while not (state.exists() and json.loads(state.read_text() or "{}").get("body", {}).get("generation", 0) >= 6):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode() if proc.poll() else ""
        time.sleep(0.05)
    started = {pid for pid, _ in _descendants(proc.pid)} & _ray_processes()  # its instance's processes
    assert started
    proc.kill()
    proc.wait()
    done = load_checkpoint(tmp_path / "killed" / "checkpoint")[1]["generation"]
    resumed = EvolutionRun.resume(tmp_path / "killed", generations=done + 3)
    assert resumed.config.workers == 0
    resumed.run(progress=False)
    evolve(_config(tmp_path / "straight", generations=done + 3))
    assert_same_archive(tmp_path / "straight", tmp_path / "killed")
    deadline = time.time() + 180
    while started & _ray_processes() and time.time() < deadline:
        time.sleep(1)
    assert not started & _ray_processes()
