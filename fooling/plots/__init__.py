"""Plots of run directories: per-class confidence on a log-odds axis, classes past each threshold, evaluations/s.

:mod:`fooling.plots.series` reads the numbers from a run directory (classes.csv, metrics.csv, summary.json);
:mod:`fooling.plots.figure` draws them with matplotlib (Agg). Reads run directories only,
never a live run's objects.
"""
