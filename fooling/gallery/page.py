"""The gallery's one static HTML page: no server, no external assets, works from file://."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape as _escape
from typing import Any, Optional, Sequence
from urllib.parse import quote

from ..analysis.draw import format_confidence

THRESHOLDS = (0.0, 0.5, 0.9, 0.99, 0.999, 0.9999)


@dataclass(frozen=True)
class Card:
    """One class's elite as shown: paths are relative to the page."""

    index: int
    label: str
    confidence: float
    generation_found: Optional[int]
    png: str
    genome: Optional[str] = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One class's elite at one snapshot generation."""

    generation: int
    confidence: float
    png: str


@dataclass(frozen=True)
class RunView:
    """One run's section of the page."""

    slug: str
    path: str
    source: str
    encoding: str
    seed: Optional[int]
    generation: Optional[int]
    evaluations: Optional[int]
    cards: list[Card]
    contact_sheet: str
    files: dict[str, str]  # link text -> path (summary.json, config.json, metrics.csv)
    pixelated: bool  # small images (MNIST): upscale without smoothing
    progression: dict[int, list[Step]] = field(default_factory=dict)  # class index -> snapshots in order
    iterates: str = "generation"  # what ``generation`` counts: "step" for gradient-ascent runs
    plot: Optional[str] = None  # the run's progress plot (fool plot's figure), where one was drawn


@dataclass(frozen=True)
class TransferView:
    """One transfer report's section: its heatmap, pair table and files."""

    slug: str
    heatmap: str
    files: dict[str, str]
    pairs: list[dict]


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{margin:.2rem 0}h2{margin-top:2.2rem;border-bottom:1px solid #ccc}
.meta,.note{color:#555;font-size:.9rem}
.filter{position:sticky;top:0;background:#fafafa;padding:.6rem 0;border-bottom:1px solid #ddd;z-index:1}
.grid{display:flex;flex-wrap:wrap;gap:.8rem}
.card{margin:0;padding:.5rem;background:#fff;border:1px solid #ddd;border-radius:6px;width:150px;text-align:center}
.card[hidden]{display:none}
.card img{width:128px;height:128px;object-fit:contain;background:#000}
img.pixelated{image-rendering:pixelated;image-rendering:crisp-edges}
.card figcaption{font-size:.8rem;line-height:1.35}
.label{font-weight:600;font-size:.95rem;overflow-wrap:anywhere;unicode-bidi:isolate}.conf{font-variant-numeric:tabular-nums}
.sheet img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}td:first-child,th:first-child{text-align:left}
.self{font-weight:600}
.steps img{width:56px;height:56px;background:#000}
.steps td{text-align:center;font-size:.7rem}
"""

SCRIPT = """
(function () {
  var select = document.getElementById("threshold");
  var shown = document.getElementById("shown");
  function apply() {
    var t = parseFloat(select.value), cards = document.querySelectorAll(".card"), n = 0;
    cards.forEach(function (card) {
      var keep = parseFloat(card.dataset.confidence) >= t;
      card.hidden = !keep;
      if (keep) { n += 1; }
    });
    shown.textContent = n + " of " + cards.length + " images shown";
  }
  select.addEventListener("change", apply);
  apply();
})();
"""


def escape(value: Any) -> str:
    """Any value as HTML text (quotes too): everything that reaches the page goes through this or a number check."""
    return _escape(str(value), quote=True)


def _int(value: Any) -> Optional[int]:
    """A whole number read from a run's JSON, or None for anything else (a string, a list, a bool, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _float(value: Any) -> Optional[float]:
    """A finite number read from a run's JSON, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _conf(value: Any) -> str:
    """A confidence as a percentage, '?' if it is not a number."""
    x = _float(value)
    return "?" if x is None else escape(format_confidence(x))


def _url(path: str) -> str:
    """A relative path as a URL: a run folder named with '#', '?', '%' or a space would break the link."""
    return escape(quote(path, safe="/"))


def _a(href: str, text: str) -> str:
    return f'<a href="{_url(href)}">{escape(text)}</a>'


def _anchor(slug: str, text: str) -> str:
    return f'<a href="#{_url(slug)}">{escape(text)}</a>'


def _img(src: str, alt: str, pixelated: bool) -> str:
    cls = ' class="pixelated"' if pixelated else ""
    return f'<img src="{_url(src)}" alt="{escape(alt)}"{cls} loading="lazy">'


def _card(card: Card, run: RunView) -> str:
    links = [_a(card.png, "PNG")] + ([_a(card.genome, "genome")] if card.genome else [])
    scores = "".join(f"<br>{escape(name)}: {_conf(v)}" for name, v in card.scores.items())
    found = _int(card.generation_found)
    index = "" if card.label == str(card.index) else f' <span class="meta">(class {escape(card.index)})</span>'
    confidence = _float(card.confidence)
    return (
        f'<figure class="card" data-confidence="{0.0 if confidence is None else confidence:.8f}">'
        f"{_a_img(card, run)}"
        f'<figcaption><span class="label">{escape(card.label)}</span>{index}'
        f'<br><span class="conf">{_conf(card.confidence)}</span> · {escape(run.iterates)} {"?" if found is None else found}'
        f"<br>{escape(run.encoding)} · {escape(run.source)}{scores}"
        f"<br>{' · '.join(links)}</figcaption></figure>"
    )


def _a_img(card: Card, run: RunView) -> str:
    return f'<a href="{_url(card.png)}">{_img(card.png, f"{card.label} ({card.index})", run.pixelated)}</a>'


def _progression(run: RunView) -> str:
    if not run.progression:
        return ""
    generations = sorted({s.generation for steps in run.progression.values() for s in steps})
    head = "".join(f"<th>{escape(g)}</th>" for g in generations)
    rows = []
    labels = {c.index: c.label for c in run.cards}
    for index, steps in sorted(run.progression.items()):
        at = {s.generation: s for s in steps}
        cells = "".join(
            f"<td><a href=\"{_url(at[g].png)}\">"
            f"{_img(at[g].png, f'class {index}, generation {g}', run.pixelated)}</a>"
            f"<br>{_conf(at[g].confidence)}</td>" if g in at else "<td>-</td>"
            for g in generations)
        rows.append(f"<tr><th>{escape(labels.get(index, str(index)))}</th>{cells}</tr>")
    return (f"<details><summary>Progression over generations ({len(generations)} snapshots)</summary>"
            f'<table class="steps"><tr><th>class \\ generation</th>{head}</tr>{"".join(rows)}</table></details>')


def _run_section(run: RunView) -> str:
    verb = "optimised" if run.iterates == "step" else "evolved"
    bits = [f"{verb} against <b>{escape(run.source)}</b>", f"encoding <b>{escape(run.encoding)}</b>"]
    seed, generation, evaluations = _int(run.seed), _int(run.generation), _int(run.evaluations)
    if seed is not None:
        bits.append(f"seed {seed}")
    if generation is not None:
        bits.append(f"{generation} {escape(run.iterates)}s")
    if evaluations is not None:
        bits.append(f"{evaluations:,} evaluations")
    files = " · ".join(_a(href, text) for text, href in run.files.items())
    cards = "".join(_card(c, run) for c in run.cards)
    return (
        f'<section id="{escape(run.slug)}"><h2>{escape(run.slug)}</h2>'
        f'<p class="meta">{", ".join(bits)}. From <code>{escape(run.path)}</code>. {files}</p>'
        f'<div class="grid">{cards}</div>'
        f"{_progression(run)}"
        f"{_plot(run)}"
        f'<details class="sheet"><summary>Contact sheet</summary>'
        f'<p>{_a(run.contact_sheet, "contact_sheet.png")}</p>'
        f'<img src="{_url(run.contact_sheet)}" alt="contact sheet of {escape(run.slug)}" loading="lazy"></details>'
        f"</section>"
    )


def _plot(run: RunView) -> str:
    if not run.plot:
        return ""
    return (f'<details class="sheet" open><summary>Progress</summary><p>{_a(run.plot, "plot.png")}</p>'
            f'<img src="{_url(run.plot)}" alt="confidence per class, classes past each threshold and '
            f'evaluations per second of {escape(run.slug)}" loading="lazy"></details>')


def _pct(x: Any) -> str:
    x = _float(x)
    return "?" if x is None else f"{100 * x:.0f}%"


def _count(x: Any) -> str:
    x = _int(x)
    return "?" if x is None else str(x)


def _transfer_section(view: TransferView) -> str:
    head = ("<tr><th>source</th><th>encoding</th><th>target</th><th>runs</th><th>images</th><th>median</th>"
            "<th>mean</th><th>&ge; 50%</th><th>&ge; 99%</th><th>top-1 agrees</th><th>source re-scored</th>"
            + ("<th>survival mean</th><th>survival min</th><th>still &ge; 99%</th>"
               if any(isinstance(p, dict) and p.get("survival_mean") is not None for p in view.pairs) else "")
            + "</tr>")
    survival = any(isinstance(p, dict) and p.get("survival_mean") is not None for p in view.pairs)
    rows = "".join(
        f'<tr{" class=self" if p.get("target_is_source") is True else ""}><td>{escape(p.get("source", "?"))}</td>'
        f'<td>{escape(p.get("encoding", "?"))}</td><td>{escape(p.get("target", "?"))}</td>'
        f'<td>{_count(p.get("runs"))}</td><td>{_count(p.get("images"))}</td>'
        f'<td>{_conf(p.get("median"))}</td><td>{_conf(p.get("mean"))}</td>'
        f'<td>{_pct(p.get("above_50"))}</td><td>{_pct(p.get("above_99"))}</td><td>{_pct(p.get("top1_agreement"))}</td>'
        f'<td>{_conf(p.get("source_median"))}</td>'
        + (f'<td>{_conf(p.get("survival_mean"))}</td><td>{_conf(p.get("survival_min"))}</td>'
           f'<td>{_pct(p.get("survival_99"))}</td>' if survival else "") + "</tr>"
        for p in view.pairs if isinstance(p, dict))
    files = " · ".join(_a(href, text) for text, href in view.files.items())
    return (
        f'<section id="{escape(view.slug)}"><h2>Transfer: {escape(view.slug)}</h2>'
        f'<p class="note">The confidence each network (column "target") gives to the class an image was evolved for; '
        f"bold rows: the source network scoring its own images. Scored from the 8-bit PNGs. {files}</p>"
        f'<p><a href="{_url(view.heatmap)}"><img src="{_url(view.heatmap)}" alt="transfer heatmap" '
        f'style="max-width:100%"></a></p>'
        f"<table>{head}{rows}</table></section>"
    )


def render_page(title: str, runs: Sequence[RunView], transfers: Sequence[TransferView] = ()) -> str:
    """The whole page as one HTML string (CSS and the threshold filter's script inline)."""
    options = "".join(f'<option value="{t}">{"any" if t == 0 else format_confidence(t)}</option>'
                      for t in THRESHOLDS)
    toc = " · ".join(_anchor(r.slug, r.slug) for r in runs)
    toc += "".join(f" · {_anchor(t.slug, 'transfer: ' + t.slug)}" for t in transfers)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
        f"<h1>{escape(title)}</h1>"
        f'<p class="note">Images evolved to be classified with high confidence (Nguyen, Yosinski &amp; Clune 2015). '
        f"Each card: the class, the run's confidence for it, the generation it was found, the encoding and the "
        f"network. Click an image for the full-size PNG.</p>"
        f'<p class="note">{toc}</p>'
        f'<div class="filter"><label>Show images with confidence at least '
        f'<select id="threshold">{options}</select></label> <span id="shown" class="meta"></span></div>'
        + "".join(_run_section(r) for r in runs)
        + "".join(_transfer_section(t) for t in transfers)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )
