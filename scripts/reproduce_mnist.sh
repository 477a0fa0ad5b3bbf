#!/usr/bin/env bash
# Re-make gallery/: MNIST runs (direct and CPPN encodings, 5 seeds as one `fool evolve --seeds` group per
# setting, RUNS/<encoding>/<source>/s<seed>) against each of the
# three MNIST networks and against a two-LeNet ensemble, the transfer table between the
# networks, and the gallery page.
#
#   scripts/reproduce_mnist.sh            # everything (runs that are already finished are kept)
#   scripts/reproduce_mnist.sh evolve     # only the runs
#   scripts/reproduce_mnist.sh report     # only transfer tables and the gallery, from existing runs
#
# Settings (environment): RUNS (runs/mnist), OUT (gallery), SEEDS ("0 1 2 3 4"),
# ENCODINGS ("direct cppn"), GENERATIONS (200), POPULATION (200).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/mnist}
OUT=${OUT:-gallery}
SEEDS=${SEEDS:-"0 1 2 3 4"}
ENCODINGS=${ENCODINGS:-"direct cppn"}
GENERATIONS=${GENERATIONS:-200}
POPULATION=${POPULATION:-200}
NETS="mnist-lenet mnist-lenet-b mnist-digitcnn"
ENSEMBLE="mnist-lenet,mnist-lenet-b"
STAGE=${1:-all}

# evolve OUT_DIR ARGS...: every seed of SEEDS as one batched group (`fool evolve --seeds`: OUT_DIR/s<seed>
# each, one forward pass for all), or finish an interrupted group.
evolve() {
    local out=$1
    shift
    if [ -f "$out/group.json" ]; then
        fool evolve --resume "$out" --generations "$GENERATIONS" --quiet
    else
        fool evolve "$@" --seeds "$(echo $SEEDS | tr ' ' ',')" --generations "$GENERATIONS" \
            --population "$POPULATION" --out "$out" --quiet
    fi
}

if [ "$STAGE" = all ] || [ "$STAGE" = evolve ]; then
    for enc in $ENCODINGS; do
        for net in $NETS; do
            evolve "$RUNS/$enc/$net" --model "$net" --encoding "$enc"
        done
        evolve "$RUNS/$enc/ensemble-min" --models "$ENSEMBLE" --combine min --encoding "$enc"
        evolve "$RUNS/$enc/ensemble-mean" --models "$ENSEMBLE" --combine mean --encoding "$enc"
    done
fi

if [ "$STAGE" = all ] || [ "$STAGE" = report ]; then
    for enc in $ENCODINGS; do
        transfer_runs=()
        for src in $NETS ensemble-min ensemble-mean; do
            for seed in $SEEDS; do
                transfer_runs+=("$RUNS/$enc/$src/s$seed")
            done
        done
        fool transfer "${transfer_runs[@]}" --models "${NETS// /,}" --out "$RUNS/transfer-$enc" --quiet
    done
    gallery_runs=()
    for enc in $ENCODINGS; do
        for src in $NETS ensemble-min; do
            gallery_runs+=("$RUNS/$enc/$src/s$(echo $SEEDS | cut -d" " -f1)")
        done
    done
    fool gallery "${gallery_runs[@]}" --out "$OUT" $(for enc in $ENCODINGS; do echo --transfer "$RUNS/transfer-$enc"; done)
fi
