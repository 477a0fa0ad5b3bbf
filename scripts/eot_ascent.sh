#!/usr/bin/env bash
# Gradient ascent on EfficientNet-Lite0 with and without EOT, then how well each image survives random
# transforms it never saw (`fool transfer --transforms`). Prints the survival table; ends with one JSON line.
#
#   scripts/eot_ascent.sh                    # 4 classes, EOT K = 8, survival over 32 transforms
#
# Settings (environment): OUT (/tmp/eot_ascent), CLASSES, K (8), STEPS (60), SAMPLES (32),
# TRANSFORMS ("default"), FOOL ("fool").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/eot_ascent}
CLASSES=${CLASSES:-"king penguin,goldfish,school bus,volcano"}
K=${K:-8}
STEPS=${STEPS:-60}
SAMPLES=${SAMPLES:-32}
TRANSFORMS=${TRANSFORMS:-default}
FOOL=${FOOL:-fool}
MODEL=imagenet-efficientnet-lite0

mkdir -p "$OUT"
for kind in plain eot; do
    run="$OUT/$kind"
    if [ ! -f "$run/summary.json" ]; then
        extra=()
        [ "$kind" = eot ] && extra=(--eot "$K" --transforms "$TRANSFORMS")
        start=$(date +%s)
        $FOOL ascend --model "$MODEL" --classes "$CLASSES" --steps "$STEPS" --device cpu --quiet \
            --out "$run" "${extra[@]}" >/dev/null
        echo $(( $(date +%s) - start )) > "$OUT/$kind.seconds"
    fi
done
$FOOL transfer "$OUT/plain" "$OUT/eot" --models "$MODEL" --transforms "$TRANSFORMS" --samples "$SAMPLES" \
    --device cpu --out "$OUT/transfer" --force --quiet >/dev/null
python - "$OUT" <<'PY'
import csv, json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
with open(out / "transfer" / "transfer_classes.csv", newline="") as f:
    rows = list(csv.DictReader(f))
result = {}
print(f"{'ascent':7} {'wall s':>7} {'own confidence':>15} {'survival mean':>14} {'min':>7} {'share >= 99%':>13}")
for kind in ("plain", "eot"):
    mine = [r for r in rows if Path(r["run"]).name == kind]
    seconds = out / f"{kind}.seconds"
    fig = {"wall_s": int(seconds.read_text()) if seconds.exists() else None,
           **{name: statistics.mean(float(r[name]) for r in mine)
              for name in ("confidence", "survival_mean", "survival_min", "survival_99")}}
    result[kind] = fig
    print(f"{kind:7} {str(fig['wall_s']):>7} {fig['confidence']:15.4f} {fig['survival_mean']:14.4f} "
          f"{fig['survival_min']:7.4f} {fig['survival_99']:13.3f}")
print(json.dumps(result))
PY
