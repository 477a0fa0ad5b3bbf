"""EvolveSettings, AscendSettings and RetrainSettings: presets as data, JSON round trips, old config.json files."""

from __future__ import annotations

import json

import pytest

from fooling.errors import FoolingError
from fooling.settings.ascend import AscendSettings
from fooling.settings.evolve import DEFAULT, PAPER, PRESETS, EvolveSettings, check_types
from fooling.settings.retrain import RetrainSettings

# A config.json exactly as the code before fooling/settings wrote it (fool evolve, resolved settings plus the
# "run" record), with an option retired since (mnist_dir) still in it.
OLD_CONFIG = """{
  "checkpoint_every": 10, "classes": [0, 2], "colour": "hls", "combine": "mean",
  "cppn_add_connection": 0.5, "cppn_add_node": 0.5, "cppn_coords": "pixel", "cppn_delete_connection": 0.3,
  "cppn_delete_node": 0.2, "cppn_function_rate": 0.1, "cppn_max_hidden": 200, "cppn_rewire_connection": 0.5,
  "cppn_weight_eta": 15.0, "cppn_weight_rate": 0.1, "crops": 1, "crossover_eta": 10.0, "crossover_rate": 0.5,
  "device": "cpu", "encoding": "direct", "extra": {}, "ga_cxpb": 0.5, "ga_mutpb": 0.5, "generations": 4,
  "image_size": null, "initial_population": 8, "laggard_bias": 0.0, "mnist_dir": null, "model": "test-oracle",
  "models": null, "mutation": "unscaled", "mutation_eta": 15, "mutation_rate": 0.1, "out": "runs/old",
  "population": 8, "preset": "paper", "rate_halving_every": 1000, "seed": 3, "snapshot_every": 0,
  "strategy": "map-elites", "target": null, "until": null,
  "run": {"command": "evolve", "versions": {"fooling": "0.1.0", "torch": "2.4.0"}, "device": "cpu",
          "encoding_settings": {"colour": "hls"}, "num_classes": 10}
}"""


def test_presets_are_data_and_differ_where_documented():
    assert set(PRESETS) == {"default", "paper"}
    assert {k for k in PAPER if PAPER[k] != DEFAULT[k]} == {"strategy", "population", "mutation_eta",
                                                          "rate_halving_every", "cppn_coords"}
    preset_fields = {f.name for f in EvolveSettings.fields() if f.metadata["preset"]}
    assert set(PAPER) == set(DEFAULT) == preset_fields  # every preset field has a value in every preset
    paper = EvolveSettings(preset="paper", mutation_eta=9).resolved()
    assert paper.mutation_eta == 9.0 and paper.rate_halving_every == 1000 and paper.initial_population == 200
    assert EvolveSettings().resolved().mutation_eta == 5.0


def test_every_field_is_declared_with_help_and_group():
    for cls in (EvolveSettings, AscendSettings, RetrainSettings):
        for f in cls.fields():
            assert f.metadata["help"] and f.metadata["group"], f"{cls.__name__}.{f.name}"


def test_old_config_json_still_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(OLD_CONFIG)
    values = EvolveSettings.read(path)
    assert "run" not in values and "mnist_dir" not in values
    settings = EvolveSettings.from_json(values)
    assert settings.preset == "paper" and settings.classes == [0, 2] and settings.seed == 3
    assert settings.mutation_eta == 15.0 and isinstance(settings.mutation_eta, float)
    # already resolved when written, but for the settings newer than the file, which come from its preset
    newer = {"cppn_lineages": 0, "cppn_lineage_children": 5, "cppn_lineage_patience": 0}
    assert all(getattr(settings, k) is None for k in newer)
    assert settings.resolved() == settings.replace(**newer)
    data = {k: v for k, v in json.loads(OLD_CONFIG).items() if k != "run"}
    assert EvolveSettings.from_json(data) == settings


@pytest.mark.parametrize("change, words", [
    ({"population": "8"}, "config.json: population must be an integer or null, got '8'"),
    ({"mutation_eta": "big"}, "config.json: mutation_eta must be a number or null"),
    ({"colour": 3}, "config.json: colour must be a string or null"),
    ({"brand_new": 1}, "config.json has unknown settings: brand_new"),
])
def test_old_config_json_with_wrong_types_is_one_line(change, words):
    data = {**json.loads(OLD_CONFIG), **change}
    del data["run"]
    with pytest.raises(FoolingError) as err:
        EvolveSettings.from_json(data)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_bad_image_size_names_the_default_it_would_get():
    """Left out, --image-size is the side the network's preprocessing resizes to (256 for ImageNet networks), not
    its input size (224), for every encoding since CPPNs are drawn at that side too."""
    with pytest.raises(FoolingError) as err:
        EvolveSettings(image_size=0).validate()
    assert "leave it out for the side the network resizes to, else its input" in str(err.value)


def test_validation_keeps_every_rule():
    cases = [
        (dict(seed=-1), "--seed must be 0 or positive"),
        (dict(device="mps"), "unknown device 'mps'"),
        (dict(image_size=5000), "--image-size must lie in 1-4096"),
        (dict(until=float("nan")), "--until must be a finite number"),
        (dict(until=0.0), "--until must lie in (0, 1]"),
        (dict(mutation_eta=-1.0), "--mutation-eta must be 0 or positive"),
        (dict(cppn_add_node=2.0), "--cppn-add-node must lie in [0, 1]"),
        (dict(encoding="voxels"), "unknown encoding 'voxels'"),
        (dict(colour="cmyk"), "--colour must be one of hls, rgb"),
        (dict(strategy="ga"), "--strategy ga needs --target"),
        (dict(target=3), "--target is the one class of a --strategy ga run"),  # snes-elites evolved every class
        (dict(strategy="map-elites", target=3), "drop --target, or use --classes instead"),
        (dict(strategy="ga", target=3, classes=[1, 2]), "--strategy ga fools the one class of --target; drop --classes"),
        (dict(crops=3), "--crops must be 1 or 10"),
        (dict(models=[]), "--models must name at least one model"),
        (dict(model=""), "--model must name a model"),
        (dict(classes=[1, 1, 1]), "--classes must not name a class twice"),  # --set classes=1,1,1 ran 3 cells of 1
    ]
    for values, words in cases:
        with pytest.raises(FoolingError) as err:
            EvolveSettings(**values).validate()
        assert words in str(err.value), (values, str(err.value))


@pytest.mark.parametrize("cls", [EvolveSettings, AscendSettings, RetrainSettings])
def test_a_class_named_twice_or_none_is_refused_everywhere(cls):
    with pytest.raises(FoolingError, match="--classes must not name a class twice"):
        cls(classes=[3, 0, 3]).validate()
    with pytest.raises(FoolingError, match="--classes must name at least one class"):  # [] evolved every class
        cls(classes=[]).validate()


def test_an_linf_perturbation_is_at_most_the_pixel_range(tmp_path):
    """--epsilon 2 under --norm linf is no bound at all (pixels lie in [0, 1]); an L2 ball may be larger."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"")
    with pytest.raises(FoolingError, match="must be in \\(0, 1\\] for --norm linf"):
        AscendSettings(init=str(photo), epsilon=2.0).check_together()
    AscendSettings(init=str(photo), epsilon=2.0, norm="l2").check_together()


def test_check_types_makes_whole_numbers_floats():
    assert check_types({"until": 1, "classes": [0, 2]}) == {"until": 1.0, "classes": [0, 2]}
    with pytest.raises(FoolingError, match="seed must be an integer"):
        check_types({"seed": 1.5})


def test_ascend_settings_round_trip_and_presets():
    settings = AscendSettings(model="test-oracle", classes=[1, 3], steps=7, preset="yosinski", decay=0.001,
                              blur_every=2, stop_at=0.5, out="runs/a")
    assert AscendSettings.from_json(json.loads(settings.dumps())) == settings
    resolved = settings.resolved()
    assert (resolved.objective, resolved.rate, resolved.decay, resolved.blur_radius, resolved.blur_every) == (
        "logit", "normalised", 0.001, 1.0, 2)
    assert AscendSettings(preset="cppn").resolved().step_size == 0.03
    with pytest.raises(FoolingError, match="steps must be an integer"):
        AscendSettings.from_json({**settings.to_json(), "steps": "7"})
    with pytest.raises(FoolingError, match="--step-size applies to --epsilon runs"):
        AscendSettings(preset="paper", step_size=0.1).validate()
    with pytest.raises(FoolingError, match="--blur-radius is too small to blur"):
        AscendSettings(blur_radius=0.1).validate()


def test_retrain_settings_round_trip():
    settings = RetrainSettings(model="mnist-lenet-b", iterations=2, classes=[0, 1], lr=0.01, held_out=0.3,
                               head_rows="all", name="mine")
    assert RetrainSettings.from_json(json.loads(settings.dumps())) == settings
    with pytest.raises(FoolingError, match="retrain.json: lr must be a number or null"):
        RetrainSettings.from_json({**settings.to_json(), "lr": "fast"})
    with pytest.raises(FoolingError, match="at most 99 iterations"):
        RetrainSettings(iterations=100).validate()
    with pytest.raises(FoolingError, match="--held-out must lie in"):
        RetrainSettings(held_out=1.0).validate()


def test_the_memory_estimate_counts_snes_elites_means_and_step_sizes():
    from fooling.settings.evolve import estimate_bytes

    shape, cells = (3, 256, 256), 1000
    paper = EvolveSettings(strategy="map-elites", population=64).resolved()
    snes = EvolveSettings(strategy="snes-elites", population=64).resolved()
    per_image = 3 * 256 * 256 * 4
    assert estimate_bytes(paper, shape, cells) == (3 * 64 + cells) * per_image
    assert estimate_bytes(snes, shape, cells) - estimate_bytes(paper, shape, cells) == cells * per_image * 5 // 4


def test_paper_preset_values_on_imagenet_networks_wait_for_the_network():
    """IMAGENET_PRESETS: the paper's 10 crops, and 400 CPPN children, once the run knows its networks; explicit
    values win; the default preset has none."""
    from fooling.settings.evolve import IMAGENET_PRESETS, Network

    assert IMAGENET_PRESETS == {"paper": {"direct": {"crops": 10}, "cppn": {"crops": 10, "population": 400}}}
    imagenet, whole, mnist = Network(True, True), Network(True, False), Network(False, False)
    cppn = EvolveSettings(preset="paper", encoding="cppn")
    waiting = cppn.resolved()
    assert (waiting.crops, waiting.population, waiting.initial_population) == (None, None, None)
    assert waiting.mutation_rate == 0.1  # the rest is filled
    for network, want in ((imagenet, (10, 400, 400)), (whole, (1, 400, 400)), (mnist, (1, 200, 200))):
        done = waiting.resolved(network)
        assert (done.crops, done.population, done.initial_population) == want
        assert cppn.resolved(network) == done
    direct = EvolveSettings(preset="paper").resolved()
    assert (direct.crops, direct.population) == (None, 200)
    assert (direct.resolved(imagenet).crops, direct.resolved(mnist).crops) == (10, 1)
    given = EvolveSettings(preset="paper", encoding="cppn", crops=1, population=100).resolved()
    assert given.resolved(imagenet) == given
    assert (given.crops, given.population, given.initial_population) == (1, 100, 100)
    default = EvolveSettings(encoding="cppn").resolved()
    assert (default.crops, default.population) == (1, 50) and default.resolved(imagenet) == default


def test_the_settings_left_to_the_networks():
    """network_resolved: the preset fields a run fills once its networks are loaded (and the initial population
    that follows such a population); what config.json records so that --config resolves them again."""
    assert EvolveSettings(preset="paper", encoding="cppn").network_resolved() == \
        ("crops", "population", "initial_population")
    assert EvolveSettings(preset="paper", encoding="cppn", population=100).network_resolved() == ("crops",)
    assert EvolveSettings(preset="paper", encoding="cppn", crops=1, population=100).network_resolved() == ()
    assert EvolveSettings(preset="paper", encoding="cppn", strategy="cppn-weight-es").network_resolved() == ("crops",)
    assert EvolveSettings(preset="paper").network_resolved() == ("crops",)  # direct: 200 children anywhere
    assert EvolveSettings(encoding="cppn").network_resolved() == EvolveSettings().network_resolved() == ()


def test_read_leaves_out_what_a_runs_networks_resolved(tmp_path):
    from fooling.settings.evolve import NETWORK_RESOLVED

    record = {**EvolveSettings(preset="paper", encoding="cppn", crops=10, population=400,
                               initial_population=400).to_json(),
              "run": {"command": "evolve", NETWORK_RESOLVED: ["crops", "population", "initial_population"]}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(record))
    read = EvolveSettings.read(path)
    assert not {"crops", "population", "initial_population"} & set(read)
    assert read["preset"] == "paper" and read["mutation_rate"] is None  # the rest as recorded
    del record["run"][NETWORK_RESOLVED]  # recorded before it existed: every value as given
    path.write_text(json.dumps(record))
    assert (EvolveSettings.read(path)["crops"], EvolveSettings.read(path)["population"]) == (10, 400)
    record["run"][NETWORK_RESOLVED] = "crops"
    path.write_text(json.dumps(record))
    with pytest.raises(FoolingError, match=f"run.{NETWORK_RESOLVED} must be a list of setting names, got 'crops'"):
        EvolveSettings.read(path)


@pytest.mark.parametrize("name", ["model", "encoding", "preset", "seed", "classes", "mutation_eta", "out"])
def test_read_refuses_a_network_resolved_naming_a_setting_no_network_resolves(tmp_path, name):
    """A hand edit naming, say, "encoding" in network_resolved would drop the file's encoding, so the run would
    silently take the default one: one line instead."""
    from fooling.settings.evolve import NETWORK_RESOLVED

    record = {**EvolveSettings(preset="paper", encoding="cppn", model="mnist-lenet-b", seed=3).to_json(),
              "run": {"command": "evolve", NETWORK_RESOLVED: ["crops", name]}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(record))
    with pytest.raises(FoolingError, match=f"run.{NETWORK_RESOLVED} must be a list of setting names, got '{name}' "
                                           r"\(settings a run resolves for its networks: crops, initial_population, "
                                           r"population\)"):
        EvolveSettings.read(path)


def test_a_long_bad_network_resolved_is_a_short_line(tmp_path):
    from fooling.settings.evolve import NETWORK_RESOLVED

    path = tmp_path / "config.json"
    for value in (["crops"] * 10_000 + ["nope"] * 10_000, "x" * 100_000):
        path.write_text(json.dumps({"preset": "paper", "run": {NETWORK_RESOLVED: value}}))
        with pytest.raises(FoolingError) as err:
            EvolveSettings.read(path)
        assert len(str(err.value)) < 300 and "\n" not in str(err.value)
    path.write_text(json.dumps({"preset": "paper", "crops": 10, "run": {NETWORK_RESOLVED: ["crops"] * 10_000}}))
    assert "crops" not in EvolveSettings.read(path)  # a long list of good names (duplicates too) is still read
