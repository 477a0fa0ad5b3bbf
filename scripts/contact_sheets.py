#!/usr/bin/env python
"""Contact sheets of several MNIST settings side by side: one row per run, one column per digit.

Each argument is LABEL=RUN_DIR (a `fool evolve` run directory, e.g. one kept by
``scripts/mnist_result.py --out DIR``). Every cell is the run's final elite for that digit,
enlarged, with the confidence the network gave it underneath (red when below 99.99 %). Writes one
PNG and ends with one JSON line (the rows: label, run, confidences).

    python scripts/mnist_result.py --preset default paper --model mnist-lenet mnist-lenet-robust \\
        --seeds 0 --out /tmp/sheets
    python scripts/contact_sheets.py --out docs/mnist_contact_sheets.png \\
        "default, lenet=/tmp/sheets/preset_default_mnist-lenet_direct_s0" \\
        "paper, lenet=/tmp/sheets/preset_paper_mnist-lenet_direct_s0"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CELL = 84  # 28 px × 3
PAD = 6
LABEL_W = 230
TEXT_H = 14


def _elite(run: Path, index: int) -> Image.Image | None:
    paths = sorted((run / "elites").glob(f"{index}_*.png"))
    return Image.open(paths[0]).convert("L") if paths else None


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def sheet(rows: list[tuple[str, Path]], out: Path, threshold: float = 0.9999) -> list[dict]:
    """Draw the sheet to ``out``; returns per row the label, run and the ten confidences."""
    summaries = [json.loads((run / "summary.json").read_text()) for _, run in rows]
    k = max(len(s["classes"]) for s in summaries)
    width = LABEL_W + k * (CELL + PAD) + PAD
    height = TEXT_H + PAD + len(rows) * (CELL + TEXT_H + 2 * PAD)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(13), _font(11)
    for j in range(k):
        draw.text((LABEL_W + j * (CELL + PAD) + CELL // 2 - 4, 2), str(j), fill="black", font=font)
    out_rows = []
    for i, ((label, run), summary) in enumerate(zip(rows, summaries)):
        top = TEXT_H + PAD + i * (CELL + TEXT_H + 2 * PAD)
        evals = summary.get("evaluations")
        lines = label.split("\\n") + [f"{evals:,} evaluations" if isinstance(evals, int) else ""]
        for n, line in enumerate(lines):
            draw.text((PAD, top + 4 + n * 16), line, fill="black", font=font if n < len(lines) - 1 else small)
        confidences = []
        for j, cls in enumerate(summary["classes"]):
            x = LABEL_W + j * (CELL + PAD)
            img = _elite(run, cls["index"])
            if img is not None:
                canvas.paste(img.resize((CELL, CELL), Image.NEAREST).convert("RGB"), (x, top))
            conf = cls.get("confidence")
            confidences.append(conf)
            text = "-" if conf is None else f"{conf * 100:.3f}%" if conf >= 0.99 else f"{conf * 100:.1f}%"
            draw.text((x + 8, top + CELL + 2), text, font=small,
                      fill="black" if conf is not None and conf >= threshold else "red")
        out_rows.append({"label": label.replace("\\n", " "), "run": str(run), "confidences": confidences,
                         "evaluations": evals})
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help="LABEL=RUN_DIR (\\n in LABEL breaks the line)")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args()
    rows = []
    for item in args.rows:
        label, sep, run = item.rpartition("=")
        if not sep or not (Path(run) / "summary.json").is_file():
            raise SystemExit(f"Error: {item!r} is not LABEL=RUN_DIR of a run directory with summary.json")
        rows.append((label, Path(run)))
    result = sheet(rows, Path(args.out))
    for row in result:
        passed = sum(c is not None and c >= 0.9999 for c in row["confidences"])
        print(f"{row['label']}: {passed}/{len(row['confidences'])} at >= 99.99 %, {row['evaluations']} evaluations")
    print(json.dumps({"out": args.out, "rows": result}))


if __name__ == "__main__":
    main()
