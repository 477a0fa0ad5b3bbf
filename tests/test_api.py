"""The Python API: the README's example runs as written (in a temporary folder), and `import fooling` is light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import fooling
from fooling.errors import FoolingError

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    section = section[: section.index("\n## ", 1)]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_example(), str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "runs/api-demo budget" in out and "4 elite PNGs" in out
    assert (tmp_path / "runs" / "api-demo" / "summary.json").is_file()
    result = fooling.read_run(tmp_path / "runs" / "api-demo-7")
    assert [c["index"] for c in result.classes] == [7] and result.finished
    assert result.config["model"] == "mnist-digitcnn"


def test_paths_may_be_path_objects(tmp_path):
    """out=Path(...) was refused ('--out must be a string or null, got PosixPath(...)') though read_run, resume
    and sweep take one."""
    result = fooling.evolve(model="test-oracle", generations=1, population=8, device="cpu", out=tmp_path / "run")
    assert result.path == tmp_path / "run" and result.config["out"] == str(tmp_path / "run")


def test_ascend_refuses_a_classifier_that_is_not_one(tmp_path):
    """classifier="mnist-lenet" died in AscentRun with AttributeError: 'str' object has no attribute 'device'."""
    with pytest.raises(FoolingError, match="classifier must be a fooling Classifier .* not str"):
        fooling.ascend(model="test-oracle", classifier="test-oracle", steps=1, device="cpu", out=str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()


def test_evolve_refuses_unknown_settings(tmp_path):
    with pytest.raises(FoolingError, match="no setting 'generation'"):
        fooling.evolve(generation=3, out=str(tmp_path / "x"))
    with pytest.raises(FoolingError, match="is not a run directory"):
        fooling.read_run(tmp_path / "missing")


def test_import_fooling_loads_no_torch():
    code = ("import sys, fooling; fooling.EvolveSettings; fooling.RetrainSettings; fooling.evolve; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_resume_continues_either_kind_and_refuses_the_other_command(tmp_path):
    import fooling
    from fooling.errors import FoolingError

    out = tmp_path / "run"
    first = fooling.evolve(model="test-oracle", generations=2, population=8, device="cpu", out=str(out))
    assert first.finished and first.message
    more = fooling.resume(out, generations=4)
    assert more.summary["generation"] == 4 and more.finished
    with pytest.raises(FoolingError, match="is a `fool evolve` run"):
        fooling.resume(out, command="ascend")


def test_resume_refuses_changing_the_run_s_own_settings(tmp_path):
    """fooling.resume(path, population=16) (or seed=5) changed the run mid-way and rewrote config.json, so the
    run no longer matched what it records; generations='5' died in a comparison (TypeError '<=')."""
    out = tmp_path / "run"
    fooling.evolve(model="test-oracle", generations=2, population=8, device="cpu", out=str(out))
    before = (out / "config.json").read_text()
    for change, words in ((dict(population=16), "population cannot change on resume"),
                          (dict(seed=5), "seed cannot change on resume"),
                          (dict(popsize=5), "no setting 'popsize'"),
                          (dict(generations="5"), "--generations must be an integer, got '5'")):
        with pytest.raises(FoolingError, match=re.escape(words)):
            fooling.resume(out, **{"generations": 3, **change})
    assert (out / "config.json").read_text() == before
    assert fooling.resume(out, generations=3, until=0.5, checkpoint_every=2).summary["generation"] == 3


def test_a_hook_that_is_not_one_is_a_type_error_before_the_run_is_made(tmp_path):
    """hooks=[len] died in the loop with AttributeError (no on_start), then again in the error handling (no
    on_end), after the run directory was made."""
    with pytest.raises(TypeError, match="hooks must be fooling.run.hooks.Hook objects .* not builtin_function"):
        fooling.evolve(model="test-oracle", generations=1, population=8, device="cpu", out=str(tmp_path / "x"),
                       hooks=[len])
    assert not (tmp_path / "x").exists()
    fooling.evolve(model="test-oracle", generations=1, population=8, device="cpu", out=str(tmp_path / "y"))
    with pytest.raises(TypeError, match="not int"):
        fooling.resume(tmp_path / "y", generations=2, hooks=[3])
    assert fooling.resume(tmp_path / "y", generations=2).summary["generation"] == 2  # not left locked
