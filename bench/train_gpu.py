"""Chapter 05 on a real GPU: the T4 recipe through the course's own loop (`train(cfg)`), in T4 emulation.

    python bench/train_gpu.py --out bench/results                 # T4 emulation, 300 steps of configs/t4.yml
    python bench/train_gpu.py --out DIR --steps 600 --no-emulate  # the GPU as it is
    python bench/train_gpu.py --out DIR --set train_micro_batch_size_per_gpu=32

T4 emulation on a larger GPU: memory capped at 15 GiB (`torch.cuda.set_per_process_memory_fraction`), the
flash and cuDNN attention kernels off (they need compute capability 8.0; a T4 is 7.5, so SDPA runs the
memory-efficient kernel there), fp16 autocast with GradScaler (no bf16). It reproduces what fits and which
kernels run, not a T4's speed: tokens/s are this GPU's, and the T4 figure is estimated from MFU.

Writes `train_loop_t4_emulation.json` (with --no-emulate: `train_loop_gpu.json`) to --out: GPU name, torch
version, date, the resolved settings, tokens/s of the loop (data, evaluation and checkpoints included) and of
the model alone (`benchmark_steps`), MFU, peak memory, the loss curve, the validation losses, the largest
micro-batch that fits the cap (measured, and as chapter 04's estimate predicts it), and a resume check: the
smoke config stopped at step 7 and resumed, against a straight run, in fp16 with GradScaler (bit for bit on
an H200 on 2026-11-29; a GPU need only agree within about 1e-3).
"""
import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from neoxcourse.config import load_config, parse_override  # noqa: E402
from neoxcourse.model import GPTNeoX, flops_per_token, largest_micro_batch  # noqa: E402
from neoxcourse.tracking import peak_flops  # noqa: E402
from neoxcourse.train import benchmark_steps, find_micro_batch, train  # noqa: E402

T4_CAP_GIB = 15.0


def emulate_t4(device: int = 0, cap_gib: float = T4_CAP_GIB) -> dict:
    "Cap this process's GPU memory and turn off the attention kernels a T4 does not have."
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total), device)
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)
    return {"memory_cap_gib": cap_gib, "flash_sdp": False, "cudnn_sdp": False, "precision": "fp16"}


def largest_fitting_micro_batch(cfg, cap_bytes: float) -> int:
    "Measured: the largest power-of-two micro-batch whose forward + backward fits (optimizer state counted)."
    torch.manual_seed(0)
    model = GPTNeoX(cfg.model).cuda()
    opt_bytes = 12 * sum(p.numel() for p in model.parameters())
    found = find_micro_batch(model, [256, 128, 64, 32, 16, 8, 4, 2, 1], cfg.model.seq_length,
                             cfg.model.vocab_size, torch.device("cuda"), "fp16", 0.95 * cap_bytes, opt_bytes)
    del model
    torch.cuda.empty_cache()
    return found


def resume_check(save: Path, iters: int = 12, stop: int = 7) -> dict:
    "The smoke config on this GPU (fp16 + GradScaler): stopped at `stop`, resumed; how far from a straight run."
    base = {"train-iters": iters, "eval-interval": 4, "checkpoint-factor": 3, "log-interval": 1, "use_wandb": False}
    smoke = lambda name: load_config(ROOT / "configs" / "smoke.yml", {**base, "save": str(save / name)})

    def interrupt(step, res):
        if step == stop: raise KeyboardInterrupt
    a = train(smoke("a"))
    b1 = train(smoke("b"), on_step=interrupt)
    b2 = train(smoke("b"), resume=True)
    merged = {**b1.losses, **b2.losses}
    return {"precision": a.precision, "iterations": iters, "stopped_at": stop,
            "max_abs_loss_difference": max(abs(merged[k] - a.losses[k]) for k in a.losses),
            "bitwise_equal": merged == a.losses, "skipped_steps": a.skipped_steps, "losses": a.losses}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the JSON results")
    p.add_argument("--config", default=str(ROOT / "configs" / "t4.yml"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--no-emulate", action="store_true", help="use the GPU as it is (no T4 emulation)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("bench/train_gpu.py needs a CUDA GPU", file=sys.stderr)
        return 2
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    emulation = None if args.no_emulate else emulate_t4()
    save = Path(tempfile.mkdtemp(prefix="train_gpu_"))  # checkpoints stay out of the results folder
    overrides = {"train-iters": args.steps, "eval-interval": max(args.steps // 3, 1), "eval-iters": 10,
                 "log-interval": 10, "checkpoint-factor": args.steps, "save": str(save), "use_wandb": False}
    overrides.update(dict(parse_override(s) for s in args.set))
    cfg = load_config(args.config, overrides)
    name = torch.cuda.get_device_name(0)
    cap = (T4_CAP_GIB * 2**30) if emulation else torch.cuda.get_device_properties(0).total_memory

    resumed = resume_check(save / "resume")                   # 0. exact resume with fp16 + GradScaler
    start = time.time()
    result = train(cfg)                                      # 1. the loop itself, data prepared if needed
    wall = time.time() - start
    torch.cuda.empty_cache()
    speed = benchmark_steps(cfg, steps=20, warmup=5)          # 2. the model alone, random tokens
    fitted = largest_fitting_micro_batch(cfg, cap)            # 3. what fits under the cap
    fpt = flops_per_token(cfg.model)
    t4_peak = peak_flops("T4", "fp16")
    report = {
        "what": "chapter 05 loop, " + ("T4 emulation" if emulation else "GPU as is"),
        "gpu": name, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": str(Path(args.config).resolve().relative_to(ROOT)) if str(args.config).startswith(str(ROOT))
                  else args.config, "overrides": {k: v for k, v in overrides.items() if k != "save"},
        "emulation": emulation, "resume_check": resumed, "steps": result.iterations, "precision": result.precision,
        "micro_batch": result.micro_batch_size, "gradient_accumulation_steps": result.gradient_accumulation_steps,
        "global_batch_tokens": cfg.training.global_batch_size * cfg.model.seq_length,
        "flops_per_token": fpt,
        "loop": {"tokens_per_sec": result.tokens_per_sec, "mfu_this_gpu": result.mfu,
                 "seconds": result.elapsed, "wall_seconds_with_setup": wall,
                 "peak_memory_gib": (result.peak_memory_bytes or 0) / 2**30, "skipped_steps": result.skipped_steps},
        "model_only": speed,
        "t4_estimate": {"note": "what a T4 (65 TFLOP/s fp16 peak) would give at 20% and 30% MFU",
                        "tokens_per_sec_at_20pct_mfu": 0.20 * t4_peak / fpt,
                        "tokens_per_sec_at_30pct_mfu": 0.30 * t4_peak / fpt,
                        "hours_for_the_recipe_at_20pct_mfu": cfg.training.global_batch_size * cfg.model.seq_length
                        * load_config(args.config).training.train_iters / (0.20 * t4_peak / fpt) / 3600},
        "largest_micro_batch": {"measured_under_cap": fitted,
                                "estimated": largest_micro_batch(cfg.model, 0.95 * cap, "fp16"),
                                "cap_gib": cap / 2**30},
        "loss": {"first": result.losses.get(1), "last": result.losses.get(result.iterations),
                 "curve": result.losses, "validation": result.val_losses},
    }
    path = out / ("train_loop_t4_emulation.json" if emulation else "train_loop_gpu.json")
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "loss"}, indent=1))
    print(f"loss {report['loss']['first']:.3f} -> {report['loss']['last']:.3f} after {result.iterations} steps; "
          f"validation {result.val_losses}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
