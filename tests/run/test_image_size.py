"""The size a run draws its images at: CPPNs at the side the network's preprocessing resizes to (as pixel genomes
are), recorded in config.json by a new run; a CPPN run begun when CPPNs were drawn at the network's input size
(config.json with no image size) resumes at that size, bit for bit."""

from __future__ import annotations

import json

import torch
from torch import nn

from fooling.classifiers import Classifier, ModelSpec, Preprocess, register
from fooling.run import EvolutionRun
from fooling.settings.evolve import EvolveSettings


class Tiny(nn.Module):
    """(N, 3, 16, 16) -> (N, 4) logits of 2x2 mean colours (fixed weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(12, 4)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(4, 12, generator=torch.Generator().manual_seed(0)) * 4)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


NAME = "test-resizing-net"  # resizes to 20 px, then takes a 16 px centre crop (as ImageNet networks: 256, 224)
register(ModelSpec(name=NAME, dataset="test", input="3x16x16 RGB", num_classes=4, description=NAME,
                   load=lambda device, crops: Classifier(
                       Tiny(), name=NAME, labels=list("abcd"), device=device, crops=crops,
                       preprocess=Preprocess(size=(16, 16), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, resize=20))))


def settings(out, **kw) -> EvolveSettings:
    return EvolveSettings(**{**dict(model=NAME, encoding="cppn", generations=4, population=8, seed=1, device="cpu",
                                    checkpoint_every=1, checkpoint_seconds=0, out=str(out)), **kw})


def test_a_new_cppn_run_draws_at_the_resize_side_and_records_it(tmp_path):
    run = EvolutionRun.start(settings(tmp_path / "new"))
    try:
        assert run.encoding.image_shape == (3, 20, 20) and run.config.image_size == 20
    finally:
        run.close()
    assert json.loads((tmp_path / "new" / "config.json").read_text())["image_size"] == 20
    run = EvolutionRun.start(settings(tmp_path / "mine", image_size=24))  # the user's size wins
    try:
        assert run.encoding.image_shape == (3, 24, 24)
    finally:
        run.close()
    run = EvolutionRun.start(settings(tmp_path / "direct", encoding="direct", strategy="map-elites"))
    try:  # pixel genomes: the same rule, and config.json as before (no size recorded)
        assert run.encoding.image_shape == (3, 20, 20) and run.config.image_size is None
    finally:
        run.close()


def test_a_cppn_run_begun_at_the_input_size_resumes_at_it(tmp_path):
    expected = EvolutionRun.start(settings(tmp_path / "a", image_size=16)).run(progress=False)
    EvolutionRun.start(settings(tmp_path / "b", image_size=16)).run(progress=False, stop_after=2)
    path = tmp_path / "b" / "config.json"
    record = json.loads(path.read_text())
    record["image_size"] = None  # as a fooling from before CPPNs were drawn at the resize side wrote it
    path.write_text(json.dumps(record))
    resumed = EvolutionRun.resume(tmp_path / "b")
    assert resumed.encoding.image_shape == (3, 16, 16)
    assert resumed.run(progress=False)["classes"] == expected["classes"]
    assert (tmp_path / "b" / "classes.csv").read_text() == (tmp_path / "a" / "classes.csv").read_text()
