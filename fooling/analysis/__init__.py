"""What finished runs show: transfer between networks, and its report (tables, a heatmap drawn with PIL).

Run directories are read through :mod:`fooling.rundir`.
"""

from .transfer import ClassScore, PairSummary, TransferResult, run_transfer, score_transfer, summarise

__all__ = [
    "ClassScore",
    "PairSummary",
    "TransferResult",
    "run_transfer",
    "score_transfer",
    "summarise",
]
