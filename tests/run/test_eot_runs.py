"""--eot for fool evolve and fool ascend: recorded, used, and exact on resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fooling import api
from fooling.errors import FoolingError
from fooling.run import EvolutionRun
from fooling.settings.ascend import AscendSettings
from fooling.settings.evolve import EvolveSettings
from helpers import checkpoint_arrays


def _config(out: Path, **kw) -> EvolveSettings:
    base = dict(model="test-oracle", generations=8, population=16, seed=3, device="cpu", checkpoint_every=4,
                checkpoint_seconds=0, out=str(out), eot=4, transforms="crop=0.6,rotate=15,noise=0.05")
    base.update(kw)
    return EvolveSettings(**base)


def test_evolve_with_eot_resumes_exactly_and_differs_from_plain(tmp_path):
    api.evolve(_config(tmp_path / "straight"))
    run = EvolutionRun.start(_config(tmp_path / "split"))  # --eot is part of the run itself
    assert run.objective.eot is not None and run.objective.eot.samples == 4 and run.objective.eot.fixed
    run.run(progress=False, stop_after=4)
    api.resume(tmp_path / "split")
    a, b = checkpoint_arrays(tmp_path / "straight"), checkpoint_arrays(tmp_path / "split")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    api.evolve(_config(tmp_path / "plain", eot=0))
    assert not np.array_equal(a["archive.fitness"], checkpoint_arrays(tmp_path / "plain")["archive.fitness"])
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["eot"] == 4 and config["transforms"] == "crop=0.6,rotate=15,noise=0.05"


def test_bad_transform_setting_is_refused():
    with pytest.raises(FoolingError, match="unknown transform"):
        _config(Path("x"), transforms="swirl").validate()
    with pytest.raises(FoolingError, match="unknown transform"):
        AscendSettings(model="test-oracle", eot=2, transforms="swirl").validate()


def test_ascend_with_eot(tmp_path):
    result = api.ascend(AscendSettings(model="test-oracle", classes=[1, 2], steps=15, device="cpu", eot=4,
                                       transforms="crop=0.8,noise=0.02", out=str(tmp_path / "a")))
    confidences = [c["confidence"] for c in result.summary["classes"]]
    assert len(confidences) == 2 and min(confidences) > 0.5
