"""Slow: the attacks on EfficientNet-Lite0 and skimage's photos at their own resolution."""

from __future__ import annotations

import numpy as np
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
