"""fooling: evolve images that deep classifiers label with near certainty.

A reproduction of Nguyen, Yosinski & Clune (CVPR 2015), "Deep Neural Networks are
Easily Fooled", built on one batched pipeline: strategy.ask() -> genomes ->
encoding.decode() -> images -> classifier -> probabilities -> strategy.tell().
"""

__version__ = "0.1.0"
