#!/usr/bin/env bash
# The CPU figures in benchmarks/RESULTS.md (2-core machine, embedded local Ray). Run from the repo root.
set -uo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench-out}; mkdir -p "$OUT"; J=$OUT/bench-cpu.jsonl
export RAYNAS_OFFLINE=1 RAYNAS_CACHE=${RAYNAS_CACHE:-/tmp/raynas-cache-bench}
W=/tmp/random-inception.pth; $PY benchmarks/make_random_inception.py $W >/dev/null
step() { echo; echo "== $*"; "$@" 2>&1 | grep -E "^\||EAGAN round|Error" | tail -n 12; }
step $PY benchmarks/bench_gan.py --device cpu --preset quickstart --steps 40 --metric-samples 2000 --out $J
step $PY benchmarks/bench_gan.py --device cpu --preset sngan-cifar10 --set data.name=embedded --set data.channels=3 \
     --synthetic --steps 5 --extractor inception-v3-compat --inception-weights $W --metric-samples 200 --out $J
step $PY benchmarks/bench_damgan.py --device cpu --preset quickstart --steps 20 --out $J
step $PY benchmarks/bench_eagan.py --preset quickstart --workers 1,2,4 --population 8 --set eagan.evaluator_cpu=0.25 \
     --out $J
