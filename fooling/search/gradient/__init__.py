"""The gradient engine: one loop (:func:`ascend`) over parameterisations (pixels, pixels in an Lp
ball around an original, CPPN weights) and step rules (progress rate, normalised steps, sign and
L2 steps, Adam from torch.optim).

Gradient ascent is the fooling paper's third method: X <- (X + lr·∇p)(1 - decay), then
regularise and clip, with the "progress" learning rate (:func:`~.rules.progress_lr`). Per image
we record the first step at which its target became top-1 and passed 99%, 99.9% and 99.99%
(:class:`~.milestones.Milestones`).
"""

from .cppn import CppnWeights
from .engine import ascend
from .milestones import AscentResult, BestSoFar, Milestones
from .goals import Away, CarliniWagner, Goal, Toward
from .parameterizations import TanhPixels, BallPixels, Parameterization, PixelImages, initial_images, project_ball, quantize, update
from .rules import AdamSteps, StepRule, Steps, progress_lr, steepest_step

__all__ = ["Away", "CarliniWagner", "Goal", "TanhPixels", "Toward", "AdamSteps", "AscentResult", "BallPixels", "BestSoFar", "CppnWeights", "Milestones", "Parameterization",
           "PixelImages", "StepRule", "Steps", "ascend", "initial_images", "progress_lr", "project_ball", "quantize",
           "steepest_step", "update"]
