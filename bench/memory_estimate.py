"""Chapter 04's memory estimate against the GPU: train a few steps of several model configs and compare
`estimate_memory` with `torch.cuda.max_memory_allocated`; also times the reference recipe (tokens/s, MFU).

Run on a CUDA machine from the repository root: `python bench/memory_estimate.py [--compile]`.
T4 conditions are emulated: fp16 autocast + GradScaler, fused AdamW, the flash and cuDNN attention kernels
off (a T4 has only the memory-efficient one). Writes bench/results/memory_estimate.json (or --out).
`--rescore FILE` (no GPU needed) recomputes the estimates of a results file with the current library, against
the peaks measured then, so a change of formula can be judged without a GPU."""
import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from neoxcourse.config import load_config
from neoxcourse.device import emulate_t4, peak_flops
from neoxcourse.model import GPTNeoX, estimate_memory, flops_per_token
from neoxcourse.train import lm_loss, train_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import header, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GiB = 2 ** 30


def train_steps(model_cfg, micro_batch, precision, steps=3, compile=False, timed_steps=0):
    "Peak bytes of steps 2.. of a training loop (after the optimizer state exists), and seconds per step."
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model = GPTNeoX(model_cfg).cuda().train()
    step_model = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    T, V = model_cfg.seq_length, model_cfg.vocab_size
    data = torch.randint(0, V, (micro_batch, T + 1), device="cuda")
    x, y = data[:, :-1], data[:, 1:]

    def step():   # the course's train_step (lm_loss: the logits upcast to fp32, as in the loop)
        train_step(model, opt, scaler, [(x, y)], precision, 1.0, loss_fn=lambda x, y: lm_loss(step_model(x), y))

    step()  # the optimizer state appears here
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(steps - 1):
        step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    seconds = None
    if timed_steps:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(timed_steps):
            step()
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - t) / timed_steps
    del model, step_model, opt
    torch.cuda.empty_cache()
    return peak, seconds


def rescore(path, out):
    "Recompute the estimates of a results file with the current estimate_memory; the measured peaks stay."
    result = json.loads(Path(path).read_text())
    ref = load_config(ROOT / "configs" / "code_completion.yml").model
    for row in result["rows"]:
        mcfg = replace(ref, **{k: v for k, v in row["model"].items() if k in asdict(ref)})
        row["estimate"] = estimate_memory(mcfg, row["micro_batch"], row["precision"])
        row["relative_error"] = (row["estimate"]["total"] - row["measured_peak"]) / row["measured_peak"]
        print(f"{row['name']:36} mb {row['micro_batch']:>2} {row['precision']}: estimate "
              f"{row['estimate']['total'] / GiB:6.2f} GiB, measured {row['measured_peak'] / GiB:6.2f} GiB, "
              f"error {100 * row['relative_error']:+5.1f}%")
    errors = [abs(r["relative_error"]) for r in result["rows"]]
    result.update(max_abs_relative_error=max(errors), mean_abs_relative_error=sum(errors) / len(errors),
                  rescored="estimates recomputed with the current neoxcourse.model; peaks as measured")
    Path(out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"mean |error| {100 * result['mean_abs_relative_error']:.1f}%, max {100 * result['max_abs_relative_error']:.1f}%")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory_estimate.json"))
    parser.add_argument("--compile", action="store_true", help="also time the reference recipe compiled")
    parser.add_argument("--rescore", help="a results file to re-estimate without a GPU")
    args = parser.parse_args()
    if args.rescore:
        return rescore(args.rescore, args.out)
    emulate_t4(cap_gib=float("inf"))  # a T4's attention kernels (memory-efficient SDPA only), no memory cap:
                                      # the configs larger than a T4 are measured too
    torch.backends.cuda.matmul.allow_tf32 = True
    ref = load_config(ROOT / "configs" / "code_completion.yml").model
    cases = [("reference", ref, 1, "fp16"), ("reference", ref, 8, "fp16"), ("reference", ref, 16, "fp16"),
             ("reference", ref, 32, "fp16"),
             ("reference", ref, 64, "fp16"),
             ("reference + checkpointing", replace(ref, checkpoint_activations=True), 32, "fp16"),
             ("reference, sequential residual", replace(ref, use_parallel_residual=False), 16, "fp16"),
             ("reference, tied head", replace(ref, tie_word_embeddings=True), 16, "fp16"),
             ("reference, fp32", ref, 8, "fp32"),
             ("reference, seq 512", replace(ref, seq_length=512), 32, "fp16"),
             ("wider: h 768, 8 layers, 12 heads", replace(ref, hidden_size=768, num_layers=8, num_attention_heads=12,
                                                          intermediate_size=3072), 16, "fp16")]
    rows = []
    for name, mcfg, mb, precision in cases:
        est = estimate_memory(mcfg, mb, precision)
        peak, _ = train_steps(mcfg, mb, precision)
        err = (est["total"] - peak) / peak
        rows.append({"name": name, "micro_batch": mb, "precision": precision, "model": asdict(mcfg),
                     "estimate": est, "measured_peak": peak, "relative_error": err})
        print(f"{name:36} mb {mb:>2} {precision}: estimate {est['total'] / GiB:6.2f} GiB, "
              f"measured {peak / GiB:6.2f} GiB, error {100 * err:+5.1f}%", flush=True)
    timing, peak_fp16 = [], peak_flops(torch.cuda.get_device_name(), "fp16")
    for compile in ([False, True] if args.compile else [False]):
        _, sec = train_steps(ref, 32, "fp16", compile=compile, timed_steps=10)
        tps = 32 * ref.seq_length / sec
        timing.append({"compile": compile, "micro_batch": 32, "seconds_per_step": sec, "tokens_per_s": tps,
                       "mfu": tps * flops_per_token(ref) / peak_fp16 if peak_fp16 else None})
        print(f"reference mb 32 fp16 compile={compile}: {tps / 1e6:.2f}M tokens/s, "
              f"MFU {timing[-1]['mfu'] or float('nan'):.1%} of this GPU's fp16 peak", flush=True)
    errors = [abs(r["relative_error"]) for r in rows]
    result = {**header("configs/code_completion.yml"), "device": torch.cuda.get_device_name(),
              "emulation": "fp16 autocast + GradScaler, fused AdamW, clip 1.0; flash and cuDNN SDPA off",
              "reference_model": asdict(ref), "rows": rows, "timing": timing,
              "max_abs_relative_error": max(errors), "mean_abs_relative_error": sum(errors) / len(errors)}
    write_result(args.out, result)
    print(f"mean |error| {100 * result['mean_abs_relative_error']:.1f}%, max {100 * result['max_abs_relative_error']:.1f}%")


if __name__ == "__main__":
    main()
