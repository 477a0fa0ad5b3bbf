"""The run directory format, written and read in one place.

writer: :class:`RunDirectory` (config.json, summary.json, metrics.csv, elites/, log.txt);
checkpoint: checksummed checkpoints; atomic: every file change, crash-safe; lock: one process per run;
names: elite file names; reader: a run's elites as a user has them (:func:`read_run`).
"""

from .reader import Elite, RunElites, load_images, read_elite_folder, read_run, read_snapshots
from .writer import RunDirectory, unused_path

__all__ = ["Elite", "RunDirectory", "RunElites", "load_images", "read_elite_folder", "read_run", "read_snapshots",
           "unused_path"]
