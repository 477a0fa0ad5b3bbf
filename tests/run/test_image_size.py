"""The size a run draws its images at: CPPNs at the side the network's preprocessing resizes to (as pixel genomes
are; cppn_size "resize", recorded in config.json); a CPPN run begun when CPPNs were drawn at the network's input
size (config.json without cppn_size) resumes at that size, bit for bit."""

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


def shape_of(out, **kw) -> tuple[int, int, int]:
    run = EvolutionRun.start(settings(out, **kw))
    try:
        return run.encoding.image_shape
    finally:
        run.close()


def test_a_new_cppn_run_draws_at_the_resize_side_and_records_the_rule_not_a_size(tmp_path):
    assert shape_of(tmp_path / "new") == (3, 20, 20)
    record = json.loads((tmp_path / "new" / "config.json").read_text())
    assert record["cppn_size"] == "resize" and record["image_size"] is None
    assert shape_of(tmp_path / "mine", image_size=24) == (3, 24, 24)  # the user's size wins
    assert shape_of(tmp_path / "input", cppn_size="input") == (3, 16, 16)  # the old rule, asked for
    assert shape_of(tmp_path / "direct", encoding="direct", strategy="map-elites") == (3, 20, 20)  # pixels: as ever
    # a run's config.json as a template for another network (fool evolve --config RUN/config.json --model OTHER):
    # the rule goes with it, not the first network's size
    assert shape_of(tmp_path / "mnist", model="test-oracle") == (1, 8, 8)


def test_a_cppn_run_begun_at_the_input_size_resumes_at_it(tmp_path):
    expected = EvolutionRun.start(settings(tmp_path / "a", cppn_size="input")).run(progress=False)
    EvolutionRun.start(settings(tmp_path / "b", cppn_size="input")).run(progress=False, stop_after=2)
    path = tmp_path / "b" / "config.json"
    record = json.loads(path.read_text())
    del record["cppn_size"]  # as a fooling from before CPPNs were drawn at the resize side wrote it
    path.write_text(json.dumps(record))
    resumed = EvolutionRun.resume(tmp_path / "b")
    assert resumed.encoding.image_shape == (3, 16, 16)
    assert resumed.run(progress=False)["classes"] == expected["classes"]
    assert (tmp_path / "b" / "classes.csv").read_text() == (tmp_path / "a" / "classes.csv").read_text()
