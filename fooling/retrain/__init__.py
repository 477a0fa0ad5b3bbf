"""The paper's defence experiment: add the evolved images as a fooling class, retrain, evolve again.

``loop.RetrainRun.start(settings).run()`` runs it (settings: ``settings.RetrainSettings``);
``RetrainRun.resume(path).run()`` continues an interrupted one. Importing ``head``
registers the resolver that makes saved widened ImageNet heads usable as model
names. This file imports nothing, so the registry can import ``head`` cheaply.
"""
