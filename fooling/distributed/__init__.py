"""Scaling out on Ray (an optional extra: ``pip install "fooling[ray]"``).

:mod:`.ray_setup` is the one place fooling imports Ray, starts a local instance or joins a cluster, and shuts
down what it started. :mod:`.pool` scores one run's generations on a pool of Ray actors (``fool evolve
--workers N``) with exactly the in-process results.
"""
