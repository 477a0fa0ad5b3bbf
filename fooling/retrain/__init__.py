"""The paper's defence experiment: add the evolved images as a fooling class, retrain, evolve again.

``RetrainRun.start(settings).run()`` runs it; ``RetrainRun.resume(path).run()``
continues an interrupted one. Importing this package also registers the
resolver that makes saved widened ImageNet heads usable as model names.
"""

from . import head  # noqa: F401  (registers saved ImageNet heads as model names)
from .loop import RetrainRun
from .settings import RetrainSettings

__all__ = ["RetrainRun", "RetrainSettings"]
