"""Perturbation attacks with a torchattacks-style API, all on the one gradient engine.

    >>> atk = fooling.attacks.PGD(model, eps=8/255, steps=10)
    >>> adv = atk(images, labels)               # untargeted: away from labels
    >>> atk.set_mode_targeted_by_label()
    >>> adv = atk(images, target_labels)        # targeted

``model``: an ``nn.Module`` that takes images in [0, 1] (N, C, H, W) and returns logits, a
fooling :class:`~fooling.classifiers.Classifier` (its resize / normalise inside) or an
:class:`~fooling.objective.Objective` (an ensemble, EOT). A module is borrowed for each attack (eval mode, no
parameter gradients) and handed back as it was.
"""

from .base import METHODS, Attack, AttackResult, as_objective, borrowed
from .cw import CW
from .fgsm import FGSM
from .pgd import PGD

ATTACKS = {"fgsm": FGSM, "pgd": PGD, "cw-l2": CW}

__all__ = ["ATTACKS", "Attack", "AttackResult", "CW", "FGSM", "METHODS", "PGD", "as_objective", "borrowed"]
