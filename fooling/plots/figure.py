"""``fool plot``'s figure: per-class confidence (log-odds axis), classes past each threshold, evaluations/s.

matplotlib with the Agg backend (no display needed); imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FoolingError
from .series import THRESHOLDS, RunSeries, run_series, smoothed_throughput

FORMATS = (".png", ".svg", ".pdf")
LOW = 1e-3  # the confidence axis' lower limit (a logit axis cannot show 0 or 1)
TICKS = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999, 0.9999999, 0.99999999, 0.999999999)
MAX_LEGEND = 10  # classes named in the legend of a single run
MAX_TEXT = 60  # characters of a label or run name in a legend (a model's labels file may hold any text)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _percent(p: float) -> str:
    """99.99% for 0.9999, 1% for 0.01: as many decimals as the tick needs."""
    import math

    decimals = max(0, math.ceil(-math.log10(min(p, 1 - p)) - 2 - 1e-9))
    return f"{p * 100:.{decimals}f}%"


def _text(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` as plain text for matplotlib (no $...$ mathtext), shortened to ``limit`` characters."""
    value = value if len(value) <= limit else value[:limit - 3] + "..."
    return value.replace("$", r"\$")


def _steps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(2G - 1, 2) the vertices of the staircase through (x, y) (G,) that ax.step(where="post") draws: a value
    holds until the next x, then rises there (a class's best confidence does not climb in between)."""
    if len(x) < 2:
        return np.column_stack([x, y])
    return np.column_stack([np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]])


def draw(series: Sequence[RunSeries], title: str | None = None):
    """A matplotlib Figure of ``series`` (one or more runs, overlaid in one colour each)."""
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    fig, (ax_conf, ax_count, ax_speed) = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    top = max([float(np.nanmax(s.confidence)) for s in series if np.isfinite(s.confidence).any()], default=0.0)
    high = 1 - min(1e-5, max(1e-9, (1 - top) / 3))  # room above the best class, at least up to 99.999%
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    single = len(series) == 1
    for n, s in enumerate(series):
        colour = colours[n % len(colours)]
        x = s.generations
        conf = np.clip(s.confidence, LOW, high)
        k = conf.shape[1]
        if single and k <= MAX_LEGEND:
            for j in range(k):
                ax_conf.step(x, conf[:, j], where="post", lw=1.5, label=_text(f"{s.indices[j]}: {s.labels[j]}"))
        elif k:
            lines = [_steps(x, conf[:, j]) for j in range(k)]  # each a staircase, as ax.step draws the single run's
            lines = [line[np.isfinite(line[:, 1])] for line in lines]
            ax_conf.add_collection(LineCollection(lines, colors=colour, linewidths=0.6,
                                                  alpha=max(0.05, min(0.5, 8 / k))))
            median = np.nanmedian(np.where(np.isnan(conf), LOW, conf), axis=1) if len(x) else x
            ax_conf.step(x, median, where="post", color=colour, lw=2.2, label=f"{_text(s.name)}: median of {k} classes")
        for t, style in zip(THRESHOLDS, ("-", "--", ":")):
            ax_count.step(x, s.counts[t], where="post", color=colour, ls=style,
                          label=f"{_text(s.name)} ≥ {_percent(t)}" if not single else f"≥ {_percent(t)}")
        if len(s.elapsed_s):
            ax_speed.plot(s.elapsed_s, s.evals_per_s, color=colour, lw=0.6, alpha=0.35)
            smooth_t, smooth = smoothed_throughput(s)
            ax_speed.plot(smooth_t, smooth, color=colour, lw=2, label=_text(s.name))
    ax_conf.set_yscale("logit")
    ax_conf.set_ylim(LOW, high)
    ax_conf.yaxis.set_major_locator(FixedLocator([t for t in TICKS if LOW <= t <= high]))
    ax_conf.yaxis.set_major_formatter(FuncFormatter(lambda p, _: _percent(p)))
    ax_conf.yaxis.set_minor_locator(NullLocator())
    ax_conf.yaxis.set_minor_formatter(NullFormatter())
    ax_conf.grid(True, which="major", axis="y", alpha=0.4)
    for t in THRESHOLDS:
        ax_conf.axhline(t, color="grey", lw=0.8, alpha=0.6)
    last = max((int(s.generations[-1]) for s in series if len(s.generations)), default=1)
    ax_conf.set_xlim(0, max(last, 1))
    iterates = " / ".join(sorted({s.iterates for s in series})) or "generation"  # an ascent counts steps
    ax_conf.set_xlabel(iterates)
    ax_conf.set_ylabel("confidence (log-odds scale)")
    ax_conf.set_title("best confidence per class")
    ax_count.set_xlim(0, max(last, 1))
    ax_count.set_xlabel(iterates)
    ax_count.set_ylabel("classes")
    ax_count.set_title("classes at or past each threshold")
    ax_count.set_ylim(0, max([len(s.indices) for s in series] + [1]) * 1.05)
    ax_count.yaxis.get_major_locator().set_params(integer=True)
    ax_count.grid(True, alpha=0.3)
    ax_speed.set_xlabel("elapsed seconds")
    ax_speed.set_ylabel("evaluations / s")
    ax_speed.set_title("throughput")
    ax_speed.set_ylim(bottom=0)
    ax_speed.grid(True, alpha=0.3)
    for ax in (ax_conf, ax_count, ax_speed):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="lower right" if ax is not ax_speed else "best")
    inexact = [s.name for s in series if not s.exact]
    heading = title or (series[0].name if single else f"{len(series)} runs")
    if inexact:
        heading += f"  (no classes.csv in {', '.join(inexact)}: curves from summary.json's milestones)"
    fig.suptitle(_text(heading, 4 * MAX_TEXT))
    return fig


def check_out(out: str | Path, force: bool = False) -> Path:
    """The output file, after checking its format and that nothing is overwritten without ``force``."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise FoolingError(f"--out must end with {', '.join(FORMATS)}, got {out}")
    if out.is_dir():
        raise FoolingError(f"{out} is a folder; give a file name ending with .png or .svg")
    if out.exists() and not force:
        raise FoolingError(f"{out} already exists; give another --out or --force to replace it")
    if not out.parent.is_dir():
        raise FoolingError(f"{out.parent} does not exist")
    return out


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, force: bool = False,
              title: str | None = None) -> Path:
    """Draw ``run_dirs`` into ``out`` (.png, .svg or .pdf); returns its path."""
    if not run_dirs:
        raise FoolingError("give at least one run directory")
    out = check_out(out, force)
    series = [run_series(p) for p in run_dirs]
    names = [s.name for s in series]
    if len(set(names)) < len(names):  # runs/a/s0 and runs/b/s0: name them by more of their path
        series = [RunSeries(**{**s.__dict__, "name": str(s.path)}) for s in series]
    fig = draw(series, title)
    try:
        fig.savefig(out, dpi=110)
    except OSError as err:
        raise FoolingError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        _pyplot().close(fig)
    return out
