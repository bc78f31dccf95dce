#!/usr/bin/env bash
# Everything measured on a lent GPU (see benchmarks/RESULTS.md). Run from the repo root on a machine whose
# python3 has torch but not Ray/pymoo/torch-fidelity: .bundle comes from
# ../shared/tools/pack-offline-bundle.sh .bundle plus the cffi wheel moocore needs (see RESULTS.md).
#   ONLY="precision metrics damgan eagan trial darts swd regan stylegan2" bash benchmarks/gpu_suite.sh   (default: all)
# No dataset or Inception weights can be downloaded there, so training runs on synthetic on-device
# images or the embedded subset, and Inception uses Kaiming-random weights (timing only, never scores).
set -uo pipefail
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
ONLY=${ONLY:-"precision metrics damgan eagan trial darts swd regan stylegan2"}
if ! python3 -c "import ray, pymoo, torch_fidelity" 2>/dev/null; then
  pip install -q --no-index --no-deps --target /tmp/site .bundle/wheels/*.whl 2>/dev/null
  tar -xJf .bundle/ray-min.tar.xz -C /tmp/site
  export PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 RAYNAS_OFFLINE=1 RAYNAS_CACHE=/tmp/raynas-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, ray; print('torch', torch.__version__, 'ray', ray.__version__)" | tee -a "$OUT/gpu.txt"
W=/tmp/random-inception.pth
python3 benchmarks/make_random_inception.py $W >/dev/null
J=$OUT/bench.jsonl
step() { echo; echo "== $*"; "$@" 2>&1 | grep -E "^\||Error|error" | tail -n 12; }
has() { [[ " $ONLY " == *" $1 "* ]]; }
if has precision; then  # fixed-GAN training: bf16 x channels_last, SNGAN CIFAR-10 sizes, two batch sizes
  for b in 64 256; do for amp in false true; do for cl in false true; do
    step python3 benchmarks/bench_gan.py --device cuda --preset sngan-cifar10 --synthetic --amp $amp \
         --channels-last $cl --set train.dis_batch_size=$b --set train.gen_batch_size=$((2*b)) --steps 60 \
         --skip-metrics --out $J
  done; done; done
fi
if has metrics; then  # metric throughput: Inception (random weights) and the shipped CNN
  step python3 benchmarks/bench_gan.py --device cuda --preset sngan-cifar10 --set data.name=embedded --synthetic \
       --steps 10 --extractor inception-v3-compat --inception-weights $W --metric-samples 5000 --out $J
  step python3 benchmarks/bench_gan.py --device cuda --preset quickstart --steps 60 --metric-samples 5000 --out $J
fi
if has damgan; then  # DAMGAN supernet (C=256, batch 64) throughput and memory vs k'
  for amp in false true; do
    step python3 benchmarks/bench_damgan.py --device cuda --preset damgan-cifar10 --set data.name=embedded \
         --set data.channels=3 --synthetic --amp $amp --out $J
  done
fi
if has eagan; then  # one EAGAN round: train vs eval, 1/2/4 Evaluators sharing the GPU (0.25 each)
  step python3 benchmarks/bench_eagan.py --preset eagan-cifar10 --set data.name=embedded --set data.channels=3 \
       --set eagan.iters_per_epoch=50 --set eval.num_samples=2000 --inception-weights $W --population 8 --out $J
fi
if has trial; then  # a Tune trial pinned to half a GPU through the real CLI
  step python3 -m raynas train --preset quickstart --resources gpu=0.5,cpu=2 --set train.epochs=1 \
       --output-dir /tmp/runs --name gpu-trial
  python3 -c "from raynas.results import RunDir; print(RunDir('/tmp/runs/gpu-trial').read()[['epoch','device','fid']])" \
    | tee "$OUT/gpu_trial.txt"
fi
if has darts; then  # DARTS search step (C 16, 8 cells, batch 64; first and second order) and the 20-cell C 36
  # evaluation net at batch 96, fp32 against bf16 + channels_last
  for amp in false true; do
    for o in 1 2; do
      python3 benchmarks/bench_darts.py --order $o --layers 8 --channels 16 --batch 64 --steps 20 --device cuda \
        --amp $amp --json | tee -a $J
    done
    python3 benchmarks/bench_darts.py --eval --layers 20 --channels 36 --batch 96 --steps 20 --device cuda \
      --amp $amp --json | tee -a $J
  done
fi
if has swd; then  # SWD-NAS: the paper's Table V inference times and search throughput per k
  python3 benchmarks/bench_swd.py --device cuda --json | tee -a $J
fi
if has regan; then  # Re-GAN masking overhead at SNGAN CIFAR-10 sizes (embedded images, no download)
  step python3 benchmarks/bench_regan.py --device cuda --preset regan-sngan-cifar10 --set data.name=embedded \
       --set data.channels=3 --iters 200 --out $J
fi
if has stylegan2; then  # StyleGAN2 at the authors' 256 px setting (cm 2, latent 512, 8 mapping layers, batch 16,
  # full recipe), fp32 / bf16 x channels_last
  for amp in false true; do for cl in false true; do
    step python3 benchmarks/bench_gan.py --device cuda --preset sngan-cifar10 --synthetic --amp $amp \
         --channels-last $cl --set data.resolution=256 --set model.generator=stylegan2 \
         --set model.discriminator=stylegan2 --set model.latent_dim=512 --set train.dis_batch_size=16 \
         --set train.gen_batch_size=16 --set train.n_critic=1 --set train.loss=nonsaturating \
         --set train.r1_gamma=10 --set train.pl_weight=2 --set train.style_mixing=0.9 --steps 30 --skip-metrics --out $J
  done; done
fi
