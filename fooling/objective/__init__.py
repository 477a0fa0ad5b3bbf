"""What a batch of images scores for the classes being fooled, with or without gradients.

:class:`Objective` holds the classifiers (each with its crops), the target classes and the
ensemble rule; :func:`image_shape` is the one rule for the size of the images to optimise.
"""

from .objective import COMBINE, KINDS, Objective, TargetScores
from .rescore import EliteRescorer, trusted_passed
from .shape import image_shape

__all__ = ["COMBINE", "KINDS", "EliteRescorer", "Objective", "TargetScores", "image_shape", "trusted_passed"]
