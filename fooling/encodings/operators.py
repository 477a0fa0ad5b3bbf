"""Vectorised real-valued variation operators over a whole population.

Each works on a float array (N, G) with genes in [0, 1] and draws from a numpy
Generator, so one call mutates every gene of every child. DEAP's per-gene
``mutPolynomialBounded`` and ``cxSimulatedBinaryBounded`` are the reference the
tests compare against in distribution.
"""

from __future__ import annotations

import numpy as np


def polynomial_mutation(
    genes: np.ndarray, rng: np.random.Generator, rate: float, eta: float, variant: str = "bounded"
) -> np.ndarray:
    """Polynomial mutation in place on (N, G) genes in [0, 1]; returns ``genes``.

    Each gene mutates with probability ``rate``. ``variant``:
    - "bounded": Deb's bounded form (DEAP's ``mutPolynomialBounded``), the step
      shrinks near a bound so children stay inside [0, 1] without piling up there.
    - "unscaled": the original fooling/Sferes2 form, δ = (2u)^(1/(η+1)) − 1 or
      1 − (2(1−u))^(1/(η+1)), added to the gene and then clamped to [0, 1].
    """
    flat = genes.reshape(-1)
    mask = rng.random(flat.shape[0], dtype=np.float32) < rate
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return genes
    x = flat[idx].astype(np.float64)
    u = rng.random(idx.size)
    power = 1.0 / (eta + 1.0)
    low = u < 0.5
    if variant == "unscaled":
        delta = np.where(low, (2.0 * u) ** power - 1.0, 1.0 - (2.0 * (1.0 - u)) ** power)
    elif variant == "bounded":
        xy = np.where(low, 1.0 - x, x)  # 1 minus the distance to the bound the step heads for
        val = np.where(
            low,
            2.0 * u + (1.0 - 2.0 * u) * xy ** (eta + 1.0),
            2.0 * (1.0 - u) + 2.0 * (u - 0.5) * xy ** (eta + 1.0),
        )
        delta = np.where(low, val**power - 1.0, 1.0 - val**power)
    else:
        raise ValueError(f"unknown polynomial mutation variant {variant!r}")
    flat[idx] = np.clip(x + delta, 0.0, 1.0)
    return genes


def sbx_crossover(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, eta: float, gene_prob: float = 0.5
) -> None:
    """Bounded simulated binary crossover in place on paired rows a[i] x b[i], genes in [0, 1].

    Follows Deb's bounded SBX as DEAP's ``cxSimulatedBinaryBounded`` does: each gene
    crosses with probability ``gene_prob`` (when the parents differ), and the two
    children's values are swapped with probability 1/2.
    """
    cross = (rng.random(a.shape) <= gene_prob) & (np.abs(a - b) > 1e-14)
    idx = np.nonzero(cross)
    if idx[0].size == 0:
        return
    x1 = np.minimum(a[idx], b[idx]).astype(np.float64)
    x2 = np.maximum(a[idx], b[idx]).astype(np.float64)
    u = rng.random(x1.shape)
    span = x2 - x1
    power = 1.0 / (eta + 1.0)

    def spread(beta: np.ndarray) -> np.ndarray:
        alpha = 2.0 - beta ** -(eta + 1.0)
        return np.where(u <= 1.0 / alpha, (u * alpha) ** power, (1.0 / (2.0 - u * alpha)) ** power)

    c1 = np.clip(0.5 * (x1 + x2 - spread(1.0 + 2.0 * x1 / span) * span), 0.0, 1.0)
    c2 = np.clip(0.5 * (x1 + x2 + spread(1.0 + 2.0 * (1.0 - x2) / span) * span), 0.0, 1.0)
    swap = rng.random(x1.shape) <= 0.5
    a[idx] = np.where(swap, c2, c1)
    b[idx] = np.where(swap, c1, c2)
