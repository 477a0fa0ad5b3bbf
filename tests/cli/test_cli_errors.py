"""Bad input: one line naming the problem, a non-zero exit, no traceback, nothing destroyed."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from fooling.cli import main


def fool(*args: str):
    return CliRunner().invoke(main, list(args))


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error"), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "no-such-net"], ["unknown model", "no-such-net"]),
        (["--model", "mnist-lenett"], ["did you mean", "mnist-lenet"]),
        (["--model", "test-oracle", "--encoding", "voxels"], ["unknown encoding", "voxels"]),
        (["--model", "test-oracle", "--strategy", "cmaes"], ["unknown strategy", "cmaes"]),
        (["--model", "test-oracle", "--preset", "fast"], ["unknown preset"]),
        (["--model", "test-oracle", "--generations", "0"], ["--generations must be positive"]),
        (["--model", "test-oracle", "--population", "-5"], ["--population must be positive"]),
        (["--model", "test-oracle", "--strategy", "ga"], ["needs --target"]),
        (["--model", "test-oracle", "--strategy", "ga", "--target", "7"], ["class 7 does not exist"]),
        (["--model", "test-oracle", "--device", "cuda:99"], []),
        (["--model", "test-oracle", "--mutation-rate", "1.5"], ["[0, 1]"]),
        # ran the same network twice per generation (fool sweep refused the same entry)
        (["--models", "test-oracle,test-oracle"], ["--models must not name a model twice"]),
    ],
)
def test_bad_evolve_options(args, words, tmp_path):
    result = fool("evolve", "--quiet", "--out", str(tmp_path / "run"), *args)
    _one_line_error(result, *words)
    assert not (tmp_path / "run").exists()


def test_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _one_line_error(fool("evolve", "--model", "test-oracle", "--quiet", "--out", str(out)), "already holds a run")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _one_line_error(fool("evolve", "--model", "test-oracle", "--quiet", "--out", str(other)), "other files")
    assert (other / "notes.txt").read_text() == "mine"
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_errors(tmp_path):
    _one_line_error(fool("evolve", "--resume", str(tmp_path / "nothing")), "not a run directory")
    out = tmp_path / "run"
    fool("evolve", "--model", "test-oracle", "--generations", "4", "--population", "8", "--quiet", "--out", str(out))
    _one_line_error(fool("evolve", "--resume", str(out), "--generations", "2"), "already at generation 4")
    _one_line_error(fool("evolve", "--resume", str(out), "--generations", "-1"), "must be positive")
    state = out / "checkpoint" / "state.json"
    arrays = out / "checkpoint" / json.loads(state.read_text())["body"]["arrays"]
    arrays.write_bytes(b"not a zip file")
    _one_line_error(fool("evolve", "--resume", str(out)), "corrupt checkpoint")
    state.unlink()
    _one_line_error(fool("evolve", "--resume", str(out)), "no checkpoint")


def test_mnist_dir_without_files(tmp_path):
    _one_line_error(fool("train", "--name", "x", "--mnist-dir", str(tmp_path)), "lacks", "train-images-idx3-ubyte")
    _one_line_error(fool("train", "--name", "x", "--mnist-dir", str(tmp_path / "missing")), "is not a folder")


def test_bad_train_options():
    _one_line_error(fool("train", "--epochs", "0"), "--epochs must be positive")


def test_every_command_has_help():
    result = fool("--help")
    assert result.exit_code == 0
    for name in ("evolve", "train", "models"):
        sub = fool(name, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.output
        assert "--help" in sub.output


def test_models_lists_the_registry():
    result = fool("models")
    assert result.exit_code == 0
    for name in ("mnist-lenet", "mnist-lenet-b", "mnist-digitcnn"):
        assert name in result.output


# --- issue 10: every bad input is one line, before anything is made ------------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        (["--seed", "-1"], ["--seed must be 0 or positive"]),
        (["--device", "mps"], ["unknown device 'mps'"]),
        (["--device", "meta"], ["unknown device 'meta'"]),
        (["--image-size", "-5"], ["--image-size must lie in 1-4096"]),
        (["--image-size", "0"], ["--image-size must lie in 1-4096"]),
        (["--image-size", "100000"], ["--image-size must lie in 1-4096"]),
        (["--image-size", "4096", "--population", "100000"], ["GiB of memory", "lower --image-size or --population"]),
        (["--image-size", "1"], ["too small for test-oracle", "smallest image side it takes is 2"]),
        (["--crops", "10"], ["--crops 10 is for networks", "--crops 1"]),
        (["--until", "nan"], ["--until must be a finite number"]),
        (["--until", "inf"], ["--until must be a finite number"]),
        (["--mutation-rate", "nan"], ["--mutation-rate must be a finite number"]),
        (["--mutation-rate", "-inf"], ["--mutation-rate must be a finite number"]),
        (["--eot", "100000000"], ["--eot must lie in [0, 1000]"]),  # a generation of 8 images took hours
    ],
)
def test_bad_evolve_numbers_and_devices(args, words, tmp_path):
    result = fool("evolve", "--quiet", "--model", "test-oracle", "--out", str(tmp_path / "run"), *args)
    _one_line_error(result, *words)
    assert list(tmp_path.iterdir()) == []


def test_model_names_cannot_be_paths(tmp_path):
    _one_line_error(fool("evolve", "--quiet", "--model", "../../path", "--out", str(tmp_path / "run")),
                    "cannot contain path separators")
    assert list(tmp_path.iterdir()) == []


def test_out_must_be_a_writable_folder(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    _one_line_error(fool("evolve", "--quiet", "--model", "test-oracle", "--out", str(afile / "sub")),
                    "is a file, not a folder")
    assert afile.read_text() == "mine"
    for command, budget in (("evolve", "--generations"), ("ascend", "--steps")):  # --out itself a file
        _one_line_error(fool(command, "--quiet", "--model", "test-oracle", "--out", str(afile), budget, "1"),
                        "is a file")
    assert afile.read_text() == "mine"
    _one_line_error(fool("evolve", "--quiet", "--model", "test-oracle", "--out", "/proc/foo"), "/proc")
    _one_line_error(fool("evolve", "--quiet", "--model", "test-oracle", "--out", ""), "empty path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_check_writable_dir(tmp_path):
    from fooling.errors import FoolingError
    from fooling.paths import check_writable_dir

    check_writable_dir(tmp_path / "new" / "deeper")  # can be made: fine, and nothing is made
    assert list(tmp_path.iterdir()) == []
    for bad in ("/proc/foo", "/sys/x", "/proc"):
        with pytest.raises(FoolingError, match="system folder"):
            check_writable_dir(bad)
    (tmp_path / "f").write_text("")
    with pytest.raises(FoolingError, match="is a file"):
        check_writable_dir(tmp_path / "f" / "x")
    (tmp_path / "link").symlink_to("/proc/self")
    with pytest.raises(FoolingError, match="system folder"):
        check_writable_dir(tmp_path / "link" / "x")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _one_line_error(fool("evolve", "--quiet", "--model", "test-oracle", "--out", str(locked / "run")),
                        "no permission to write")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_resume_empty_path_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a new run would land in ./runs/
    _one_line_error(fool("evolve", "--model", "test-oracle", "--resume", ""), "--resume needs the run directory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["ascend", "retrain"])
def test_resume_empty_path_starts_nothing_in_other_commands(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a new run would land in ./runs/ (--steps / --iterations 0 stop it there)
    bad_budget = ["--steps", "0"] if command == "ascend" else ["--iterations", "0"]
    _one_line_error(fool(command, "--resume", "", *bad_budget, "--quiet"), "--resume needs the")
    assert list(tmp_path.iterdir()) == []


def test_resume_takes_only_budget_options(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _one_line_error(fool("evolve", "--resume", str(out), "--population", "5", "--seed", "3"),
                    "--population, --seed cannot change on resume", "--generations")
    _one_line_error(fool("evolve", "--resume", str(out), "--model", "test-oracle"), "--model cannot change")
    _one_line_error(fool("evolve", "--resume", str(out), "--encoding", "direct"), "--encoding cannot change")
    _one_line_error(fool("evolve", "--resume", str(out), "--until", "nan"), "--until must be a finite number")
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    result = fool("evolve", "--resume", str(out), "--generations", "4", "--checkpoint-every", "3", "--until", "0.5",
                  "--quiet")
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["generations"], config["checkpoint_every"], config["until"]) == (4, 3, 0.5)


@pytest.mark.parametrize(
    "data, words",
    [
        ({"population": "200"}, ["population must be an integer", "'200'"]),
        ({"population": True}, ["population must be an integer"]),
        ({"seed": 1.5}, ["seed must be an integer"]),
        ({"classes": [1, "a"]}, ["classes must be a list of integers or null"]),
        ({"models": "mnist-lenet"}, ["models must be a list of strings or null"]),
        ({"until": "high"}, ["until must be a number or null"]),
        ({"extra": []}, ["extra must be an object"]),
        ({"model": None}, ["model must be a string"]),
    ],
)
def test_config_json_types(data, words):
    from fooling.settings.evolve import EvolveSettings
    from fooling.errors import FoolingError

    with pytest.raises(FoolingError) as err:
        EvolveSettings.from_json({**EvolveSettings().to_json(), **data})
    message = str(err.value)
    assert "\n" not in message and message.startswith("config.json: ")
    for word in words:
        assert word in message


def test_config_json_types_accept_good_values():
    from fooling.settings.evolve import EvolveSettings

    config = EvolveSettings.from_json({**EvolveSettings().to_json(), "until": 1, "classes": [0, 2]})
    assert config.until == 1.0 and isinstance(config.until, float) and config.classes == [0, 2]


def test_resume_with_wrong_types_in_config_json(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    record = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**record, "population": "8"}))
    _one_line_error(fool("evolve", "--resume", str(out), "--generations", "3"), "population must be an integer")


@pytest.mark.parametrize("lr", ["nan", "inf", "-inf", "0", "-1"])
def test_train_refuses_bad_learning_rates(lr):
    _one_line_error(fool("train", "--name", "never-made", "--lr", lr), "--lr must be a positive finite number")
    from fooling.paths import models_dir

    assert not (models_dir() / "never-made.pt").exists()


def test_train_refuses_bad_names_and_sizes():
    _one_line_error(fool("train", "--name", "x", "--batch-size", "0"), "--batch-size must be positive")
    _one_line_error(fool("train", "--name", "x", "--seed", "-1"), "--seed must be 0 or positive")
    _one_line_error(fool("train", "--name", "x", "--seed", str(2 ** 64), "--iterations", "1"), "below 2**64")
    _one_line_error(fool("train", "--name", "../x"), "not a usable model name")
    _one_line_error(fool("train", "--name", "mnist-digitcnn"), "is a built-in model")
    _one_line_error(fool("train", "--name", "n" * 300, "--iterations", "1"), "at most 100 characters")


@pytest.mark.parametrize("name", ["net.pt", "net.onnx", "net.PTH"])
def test_train_refuses_names_that_read_as_model_files(name):
    # trained and saved as NAME.pt, then --model NAME looked for the file ./NAME and never found the network
    _one_line_error(fool("train", "--name", name, "--iterations", "1"), "reads as a model file")
    from fooling.paths import models_dir

    assert not (models_dir() / f"{name}.pt").exists()


def test_train_never_overwrites_without_force():
    from fooling.paths import models_dir

    weights, meta = models_dir() / "kept-net.pt", models_dir() / "kept-net.json"
    weights.write_bytes(b"my weights")
    meta.write_text("{}")
    try:
        _one_line_error(fool("train", "--name", "kept-net", "--epochs", "1"), "already exists", "--force")
        assert weights.read_bytes() == b"my weights" and meta.read_text() == "{}"
    finally:
        weights.unlink()
        meta.unlink()


@pytest.fixture
def broken_models():
    """Three saved LeNets in the cache: one fine, one with an empty weights file, one with bad JSON."""
    from fooling.classifiers.lenet import LeNet
    from fooling.classifiers.weights import save_model
    from fooling.paths import models_dir

    meta = {"arch": "lenet", "dataset": "mnist", "num_classes": 10}
    names = ["t-fine", "t-empty", "t-badjson", "t-list"]
    for name in names:
        save_model(models_dir(), name, LeNet(10).state_dict(), meta)
    (models_dir() / "t-empty.pt").write_bytes(b"")
    (models_dir() / "t-badjson.json").write_text("{not json")
    (models_dir() / "t-list.json").write_text("[1, 2]")
    yield models_dir()
    for name in names:
        for suffix in (".pt", ".json"):
            (models_dir() / f"{name}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("name, words", [
    ("t-empty", ["t-empty.pt is empty"]),
    ("t-badjson", ["t-badjson.json is not valid JSON"]),
    ("t-list", ["t-list.json holds list"]),
])
def test_broken_cached_models_name_the_file_and_the_fix(broken_models, name, words, tmp_path):
    result = fool("evolve", "--quiet", "--model", name, "--out", str(tmp_path / "run"))
    _one_line_error(result, *words, f"fool train --name {name} --force")
    assert list(tmp_path.iterdir()) == []


def test_models_lists_broken_models_and_the_rest(broken_models):
    result = fool("models")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "mnist-lenet" in lines and "test-oracle" in lines and "BROKEN" not in lines["t-fine"]
    for name in ("t-empty", "t-badjson", "t-list"):
        assert "BROKEN" in lines[name] and f"fool train --name {name} --force" in lines[name]


@pytest.mark.parametrize("error", [MemoryError(), "torch"])
def test_out_of_memory_mid_run_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, error):
    """Running out of memory is no bug: one line that says what to change; the checkpoint stands (log.txt keeps the
    traceback), and --resume finishes the run."""
    import torch

    from fooling.objective import Objective

    real = Objective.fitness_tensor
    calls = []

    def fitness_tensor(self, images, precision=None):
        calls.append(1)
        if len(calls) == 7:  # generation 6: after the checkpoint of generation 4
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\n(more)") \
                if error == "torch" else error
        return real(self, images, precision)

    monkeypatch.setattr(Objective, "fitness_tensor", fitness_tensor)
    out = tmp_path / "run"
    result = fool("evolve", "--quiet", "--model", "test-oracle", "--generations", "8", "--checkpoint-every", "4",
                  "--checkpoint-seconds", "0", "--out", str(out))
    _one_line_error(result, "out of memory", "keeps its last checkpoint", "--resume",
                    *(["CUDA out of memory. Tried to allocate 20.00 GiB"] if error == "torch" else []))
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "error"
    assert "Traceback" in (out / "log.txt").read_text()
    monkeypatch.setattr(Objective, "fitness_tensor", real)
    resumed = fool("evolve", "--quiet", "--resume", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "summary.json").read_text())["generation"] == 8


def test_other_errors_still_raise(monkeypatch):
    from fooling.cli import _out_of_memory

    assert _out_of_memory(MemoryError()) and not _out_of_memory(RuntimeError("CUDA error: device-side assert"))
    # PyTorch's CPU allocator (e.g. fool transfer --samples 100000000, fool attack --eot 100000000)
    assert _out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                                       "allocate memory: you tried to allocate 3136000000000 bytes. Error code 12"))


def test_a_file_system_error_outside_a_run_gives_no_resume_advice(tmp_path):
    """A folder where an elite PNG should be, met by fool gallery (which makes no run): one line naming it, and no
    advice to --resume a run that the command never made."""
    out = tmp_path / "run"
    assert fool("evolve", "--quiet", "--model", "test-oracle", "--generations", "1", "--population", "8",
                "--out", str(out)).exit_code == 0
    png = sorted((out / "elites").glob("*.png"))[0]
    png.unlink()
    png.mkdir()
    result = fool("gallery", str(out), "--out", str(tmp_path / "gallery"))
    _one_line_error(result, f"{png} is a folder, where a file should be", "run the command again")
    assert "--resume" not in result.output


def test_disk_full_mid_run_is_one_line_and_the_run_resumes(tmp_path, monkeypatch):
    """The file system refusing a write (here: full at the checkpoint of generation 8) is no bug: one line, the
    earlier checkpoint stands, and --resume finishes the run once there is room."""
    import errno

    from fooling.rundir import atomic

    real, refused = atomic.fault_point, []

    def fault_point(step):
        if not refused and step.startswith("write") and "checkpoint" in step and (tmp_path / "run" / "summary.json"
                                                                                   ).exists():
            summary = json.loads((tmp_path / "run" / "summary.json").read_text())
            if summary["generation"] >= 4:
                refused.append(step)
                raise OSError(errno.ENOSPC, "No space left on device", step.split(" ", 1)[1])
        real(step)

    monkeypatch.setattr(atomic, "fault_point", fault_point)
    out = tmp_path / "run"
    result = fool("evolve", "--quiet", "--model", "test-oracle", "--generations", "12", "--checkpoint-every", "4",
                  "--checkpoint-seconds", "0", "--out", str(out))
    _one_line_error(result, "No space left on device: ", "keeps its last checkpoint", "--resume")
    assert refused and json.loads((out / "summary.json").read_text())["stop_reason"] == "error"
    monkeypatch.setattr(atomic, "fault_point", real)
    resumed = fool("evolve", "--quiet", "--resume", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "summary.json").read_text())["generation"] == 12


def test_a_file_where_a_run_folder_should_be_is_one_line(tmp_path):
    out = tmp_path / "run"
    assert fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8", "--quiet",
                "--out", str(out)).exit_code == 0
    shutil.rmtree(out / "elites")
    (out / "elites").write_text("mine")
    _one_line_error(fool("evolve", "--quiet", "--resume", str(out), "--generations", "3"),
                    f"{out / 'elites'} is in the way: a folder should be there, and it is a file")
    assert (out / "elites").read_text() == "mine"
    (out / "elites").unlink()
    assert fool("evolve", "--quiet", "--resume", str(out), "--generations", "3").exit_code == 0
    assert len(list((out / "elites").glob("*.png"))) > 0



def test_a_refusal_without_a_file_name_reads_as_the_system_says_it(monkeypatch):
    import errno

    from fooling.run.evolve import EvolutionRun

    def full(*args, **kwargs):  # a write into a full disk fails at write(), where Python knows no file name
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(EvolutionRun, "start", full)
    result = fool("evolve", "--quiet", "--model", "test-oracle")
    _one_line_error(result, "Error: No space left on device. A run stopped by this")
    assert "Errno" not in result.output


def test_only_file_system_refusals_are_one_line():
    import errno

    from fooling.cli import FILE_SYSTEM_ERRORS

    assert {errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EEXIST} <= FILE_SYSTEM_ERRORS
    assert errno.ENOENT not in FILE_SYSTEM_ERRORS  # a file gone missing mid-command may be a bug: its traceback shows


def test_a_model_of_nan_logits_is_named_when_the_run_ends(tmp_path, monkeypatch):
    """NaN is never an elite, so such a model leaves the archive empty: the run says why instead of ending in
    silence with '0/10 classes'."""
    (tmp_path / "fooling_nan_probe.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n    def forward(self, x):\n"
        "        return torch.full((x.shape[0], 10), float('nan'))\ndef net():\n    return Net()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = fool("evolve", "--quiet", "--model", "python:fooling_nan_probe:net?input=1x28x28", "--generations", "1",
                  "--population", "8", "--device", "cpu", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "no image got a finite confidence" in result.output and "NaN" in result.output


@pytest.mark.parametrize("command", [["evolve", "--resume"], ["plot"], ["transfer", "--models", "test-oracle", "--out", "GALLERY"],
                                     ["runs"], ["gallery", "--out", "GALLERY"]])
def test_a_file_given_as_a_run_directory_is_called_a_file(tmp_path, command):
    """Not "no such folder" for a path that exists: what the user gave is a file."""
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    args = [str(tmp_path / "gallery") if a == "GALLERY" else a for a in command]
    result = fool(*args, str(path))
    _one_line_error(result)
    assert "no such folder" not in result.output and path.read_text() == "mine"
    missing = fool(*args, str(tmp_path / "nowhere"))
    _one_line_error(missing)


def test_a_long_value_is_cut_in_its_one_line(tmp_path):
    """--set and --config values are quoted cut to 80 characters (a pasted blob or 5,000 digits stay one short line)."""
    result = fool("evolve", "--set", "population=" + "x" * 5000, "--out", str(tmp_path / "r"))
    _one_line_error(result, "--population must be")
    assert len(result.output) < 300 and "x" * 78 not in result.output
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mutation_rate": "y" * 5000}))
    result = fool("evolve", "--config", str(path), "--out", str(tmp_path / "r"))
    _one_line_error(result, "mutation_rate")
    assert len(result.output) < 400, result.output
