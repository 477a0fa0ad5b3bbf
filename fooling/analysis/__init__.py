"""Reading finished run directories: their elites as a user has them, and transfer between networks."""

from .elites import Elite, RunElites, load_images, read_run, read_snapshots
from .transfer import ClassScore, PairSummary, TransferResult, run_transfer, score_transfer, summarise

__all__ = [
    "ClassScore",
    "Elite",
    "PairSummary",
    "RunElites",
    "TransferResult",
    "load_images",
    "read_run",
    "read_snapshots",
    "run_transfer",
    "score_transfer",
    "summarise",
]
