"""Data sets that work offline."""

from .mnist import MnistData, load_mnist, load_training_mnist

__all__ = ["MnistData", "load_mnist", "load_training_mnist"]
