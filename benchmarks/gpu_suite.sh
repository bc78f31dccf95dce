#!/usr/bin/env bash
# Everything measured on a lent GPU in one call (see benchmarks/RESULTS.md). Run from the repo root on a
# machine whose python3 has torch but not Ray/pymoo/torch-fidelity; .bundle comes from
# ../shared/tools/pack-offline-bundle.sh .bundle. Results land in $OUT (or ./bench-out).
set -uo pipefail
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
if ! python3 -c "import ray" 2>/dev/null; then
  pip install -q --no-index --no-deps --target /tmp/site .bundle/wheels/*.whl
  tar -xJf .bundle/ray-min.tar.xz -C /tmp/site
  export PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 RAYNAS_OFFLINE=1 RAYNAS_CACHE=/tmp/raynas-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, ray; print('torch', torch.__version__, 'ray', ray.__version__)" | tee -a "$OUT/gpu.txt"
W=/tmp/random-inception.pth
python3 benchmarks/make_random_inception.py $W
J=$OUT/bench.jsonl
step() { echo; echo "== $*"; "$@" 2>&1 | tail -n 12; }
# 1. Fixed-GAN training throughput: fp32 vs bf16+channels_last, SNGAN CIFAR-10 sizes (synthetic images).
for amp in false true; do
  step python3 benchmarks/bench_gan.py --device cuda --preset sngan-cifar10 --synthetic --amp $amp --steps 60 \
       --skip-metrics --out $J
done
# 2. Metric throughput through Inception (random weights) and the CNN extractor.
step python3 benchmarks/bench_gan.py --device cuda --preset sngan-cifar10 --set data.name=embedded --synthetic \
     --steps 10 --extractor inception-v3-compat --inception-weights $W --metric-samples 5000 --out $J
step python3 benchmarks/bench_gan.py --device cuda --preset quickstart --steps 60 --metric-samples 5000 --out $J
# 3. DAMGAN supernet throughput and memory vs k' (bf16).
for amp in false true; do
  step python3 benchmarks/bench_damgan.py --device cuda --preset damgan-cifar10 --synthetic --amp $amp --out $J
done
# 4. EAGAN round: train vs eval, 1/2/4 Evaluators sharing the GPU (0.25 each).
step python3 benchmarks/bench_eagan.py --preset eagan-cifar10 --set data.name=embedded --set data.channels=3 \
     --set eagan.iters_per_epoch=50 --set eval.num_samples=2000 --inception-weights $W --population 8 --out $J
# 5. A Tune trial pinned to half a GPU (fractional resources) through the real CLI.
step python3 -m raynas train --preset quickstart --resources gpu=0.5,cpu=2 --set train.epochs=1 \
     --output-dir /tmp/runs --name gpu-trial
python3 -c "
from raynas.results import RunDir; df = RunDir('/tmp/runs/gpu-trial').read(); print(df[['epoch','device','fid','is_mean']])" \
  2>&1 | tee -a "$OUT/gpu_trial.txt"
cp $J "$OUT/" 2>/dev/null || true
