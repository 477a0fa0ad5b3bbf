#!/usr/bin/env bash
# Re-make gallery/: MNIST runs (direct and CPPN encodings, seeds 0-4) against each of the three MNIST networks
# and against a two-LeNet ensemble (min and mean), as one `fool sweep` grid (one run directory per point,
# RUNS/<model>_<encoding>_s<seed>; the ensembles RUNS/mnist-lenet+mnist-lenet-b-min_<encoding>_s<seed>), then
# the transfer table between the networks (`fool transfer`) and the gallery page (`fool gallery`).
#
#   scripts/reproduce_mnist.sh            # everything (finished runs are kept, interrupted ones resumed)
#   scripts/reproduce_mnist.sh evolve     # only the runs
#   scripts/reproduce_mnist.sh report     # only transfer tables and the gallery, from existing runs
#
# Settings (environment): RUNS (runs/mnist-sweep), OUT (gallery), SEEDS ("0 1 2 3 4"),
# ENCODINGS ("direct cppn"), GENERATIONS (200), POPULATION (200); WORKERS=N runs N runs at a time as Ray tasks
# (needs the ray extra; GPUS_PER_RUN=0.5 shares a GPU between two), FOOL (the command: fool).
# Running it again with more SEEDS or ENCODINGS adds runs to RUNS; a larger GENERATIONS continues every run.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/mnist-sweep}
OUT=${OUT:-gallery}
SEEDS=${SEEDS:-"0 1 2 3 4"}
ENCODINGS=${ENCODINGS:-"direct cppn"}
GENERATIONS=${GENERATIONS:-200}
POPULATION=${POPULATION:-200}
FOOL=${FOOL:-fool}
NETS="mnist-lenet mnist-lenet-b mnist-digitcnn"
ENSEMBLE="mnist-lenet+mnist-lenet-b"  # '+' joins an ensemble's networks in `fool sweep --models`
STAGE=${1:-all}
comma() { echo $1 | tr ' ' ','; }

if [ "$STAGE" = all ] || [ "$STAGE" = evolve ]; then
    ray_options=()
    if [ -n "${WORKERS:-}" ]; then
        ray_options=(--workers "$WORKERS")
        [ -n "${GPUS_PER_RUN:-}" ] && ray_options+=(--gpus-per-run "$GPUS_PER_RUN")
    fi
    $FOOL sweep --models "$(comma "$NETS"),$ENSEMBLE" --combines min,mean --encodings "$(comma "$ENCODINGS")" \
        --seeds "$(comma "$SEEDS")" --generations "$GENERATIONS" --population "$POPULATION" --out "$RUNS" \
        --quiet ${ray_options[@]+"${ray_options[@]}"}
fi

if [ "$STAGE" = all ] || [ "$STAGE" = report ]; then
    sources="$NETS $ENSEMBLE-min $ENSEMBLE-mean"
    for enc in $ENCODINGS; do
        transfer_runs=()
        for src in $sources; do
            for seed in $SEEDS; do
                transfer_runs+=("$RUNS/${src}_${enc}_s$seed")
            done
        done
        $FOOL transfer "${transfer_runs[@]}" --models "$(comma "$NETS")" --out "$RUNS/transfer-$enc" --force --quiet
    done
    first=$(echo $SEEDS | cut -d" " -f1)
    gallery_runs=()
    for enc in $ENCODINGS; do
        for src in $NETS $ENSEMBLE-min; do
            gallery_runs+=("$RUNS/${src}_${enc}_s$first")
        done
    done
    $FOOL gallery "${gallery_runs[@]}" --out "$OUT" $(for enc in $ENCODINGS; do echo --transfer "$RUNS/transfer-$enc"; done)
fi
