"""Slow: the attacks on EfficientNet-Lite0 and skimage's photos at their own resolution."""

from __future__ import annotations

import pytest
import torch

from fooling.attacks import CW, FGSM, PGD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def effnet():
    from fooling.classifiers import load_classifier

    return load_classifier("imagenet-efficientnet-lite0", "cpu", 1)


def chelsea() -> torch.Tensor:
    skimage = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage.chelsea().copy()).permute(2, 0, 1).unsqueeze(0).float() / 255


def test_pgd_targets_goldfish_within_8_255_at_full_size(effnet):
    x = chelsea()
    goldfish = effnet.labels.index("goldfish")
    r = PGD(effnet, eps=8 / 255, steps=10).set_mode_targeted_by_label().run(x, [goldfish])
    assert r.images.shape == x.shape and r.success[0] and r.linf[0] <= 8 / 255 + 1e-6


@pytest.mark.parametrize("attack", [lambda m: FGSM(m), lambda m: CW(m, steps=30, search_steps=2)])
def test_untargeted_fgsm_and_cw_change_the_label(effnet, attack):
    x = chelsea()
    with torch.no_grad():
        y = int(effnet.probs(x).argmax(1))
    r = attack(effnet).run(x, [y])
    assert r.success[0]


def test_fool_attack_written_png_is_the_target_when_re_read(effnet, tmp_path):
    """The quantised PGD of `fool attack`: the PNG written at the photo's size, re-read, is still goldfish, and
    results.csv reports that re-read prediction."""
    from PIL import Image

    from fooling.imaging import load_image
    from fooling.run.attack import AttackRun
    from fooling.settings.attack import AttackSettings

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(pytest.importorskip("skimage.data").chelsea()).save(photos / "chelsea.png")
    config = AttackSettings(images=[str(photos)], target="goldfish", method="pgd", device="cpu",
                            out=str(tmp_path / "run"))
    row = AttackRun(config, classifier=effnet).run()[0]
    written = load_image(tmp_path / "run" / "adversarial" / "chelsea.png")
    assert written.shape == (1, 3, 300, 451)
    with torch.no_grad():
        p = effnet.probs(written)[0]
    goldfish = effnet.labels.index("goldfish")
    assert int(p.argmax()) == goldfish == row["adv_class"] and row["success"] and row["linf"] <= 8 / 255 + 1e-6
    assert abs(float(p[goldfish]) - row["adv_confidence"]) < 1e-5
