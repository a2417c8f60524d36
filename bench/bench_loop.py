"""`neoxcourse train` itself on a GPU: the eager per-parameter loop (compile off) against the default fast path
(model and loss compiled together, CUDA graphs where a step is one micro-batch, multi-tensor optimizer), at the
reference size and the T4 recipe, beside bench_train's transformers compiled step and the benchmark's best
variant in the same run; then evaluation's generation batched against batch 1 (issue 18).

    PYTHONPATH=. python bench/bench_loop.py --t4 --out bench/results      # on a CUDA GPU, T4 emulation

Training runs the real loop (data sampler, logging, a final evaluation and checkpoint) on the offline stdlib
corpus with W&B disabled; tokens/s leave out the first step, which compiles (its time is `compile_seconds`).
Writes loop_t4emu.json (or loop_gpu.json) with the commit, command, machine and config (bench/provenance.py),
part by part, so an interrupted run keeps what it measured.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from neoxcourse.config import load_config  # noqa: E402
from neoxcourse.device import emulate_t4  # noqa: E402
from provenance import header, write_result  # noqa: E402

RECIPES = {"reference": ("configs/code_completion.yml", {"train_micro_batch_size_per_gpu": 32,
                                                         "train_batch_size": 32}),
           "t4_recipe": ("configs/t4.yml", {})}


def loop_config(path: str, overrides: dict, steps: int, work: Path, name: str, compile_: bool | None):
    "The recipe, `steps` iterations of the real loop on the offline stdlib corpus (prepared once), W&B off."
    return load_config(ROOT / path, {**overrides, "train-iters": steps, "eval-interval": 10 ** 6, "eval-iters": 2,
                                     "log-interval": 10, "checkpoint-factor": 0, "save": str(work / name),
                                     "use_wandb": False, "data.source": "stdlib", "data.max_files": 400, "data.decontaminate": False,
                                     "data.output_dir": str(work / "data"), "training.compile": compile_})


def time_loop(cfg) -> dict:
    "One run of `train(cfg)`: tokens/s over its last 60% of steps and as the loop reports it, MFU, memory."
    from neoxcourse.train import train
    stamps, start = [], time.perf_counter()
    r = train(cfg, on_step=lambda step, res: stamps.append(time.perf_counter()))
    stamps = stamps[:-1]                               # the last step's stamp comes after the final eval and save
    k = len(stamps) * 2 // 5                           # steady state: after compilation and CUDA-graph recording
    steady = cfg.training.global_batch_size * cfg.model.seq_length * (len(stamps) - 1 - k) / (stamps[-1] - stamps[k])
    return {"tokens_per_s": steady, "loop_tokens_per_s": r.tokens_per_sec,
            "mfu": r.mfu * steady / r.tokens_per_sec if r.mfu else None,
            "peak_gib": (r.peak_memory_bytes or 0) / 2 ** 30, "compile_seconds": r.compile_seconds,
            "iterations": r.iterations, "wall_s": time.perf_counter() - start, "micro_batch": r.micro_batch_size,
            "accumulation": r.gradient_accumulation_steps, "final_loss": r.losses.get(r.iterations)}


def kernel_split_and_t4(cfg, fast: bool, steps: int = 3) -> dict:
    "GPU ms per T4-recipe step in matrix kernels and the rest (torch.profiler), and the T4 estimate from them."
    from torch.profiler import ProfilerActivity, profile
    import capstone
    from neoxcourse.model import GPTNeoX, flops_per_token
    from neoxcourse.optim import build_optimizer, param_groups
    from neoxcourse.train import lm_loss, train_step
    torch.manual_seed(0)
    model = GPTNeoX(cfg.model).cuda()
    opt = build_optimizer(param_groups(model, cfg.optimizer.weight_decay), cfg.optimizer, foreach=fast)
    scaler = torch.amp.GradScaler("cuda")
    micro, T = cfg.training.micro_batch_size, cfg.model.seq_length
    batches = [(x, x) for x in (torch.randint(cfg.model.vocab_size, (micro, T), device="cuda")
                                for _ in range(cfg.training.global_batch_size // micro))]
    loss_fn = torch.compile(lambda x, y: lm_loss(model(x), y)) if fast else None
    step = lambda: train_step(model, opt, scaler, batches, "fp16", cfg.training.gradient_clipping, loss_fn)
    for _ in range(3): step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps): step()
        torch.cuda.synchronize()
    matrix = other = 0.0
    names = {}
    for e in prof.key_averages():
        if getattr(e, "device_type", None) != torch.autograd.DeviceType.CUDA: continue
        us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0.0)
        if capstone.is_matrix_kernel(e.key): matrix += us
        else: other += us
        names[e.key[:70]] = names.get(e.key[:70], 0.0) + us
    matrix_s, other_s = matrix / 1e6 / steps, other / 1e6 / steps
    tokens = cfg.training.global_batch_size * T
    bw = next(v for k, v in capstone.BANDWIDTH_GBS.items() if k in torch.cuda.get_device_name().upper())
    matrix_t4 = flops_per_token(cfg.model) * tokens / (capstone.T4_MATMUL_TFLOPS * 1e12)
    other_t4 = other_s * bw / capstone.T4_BANDWIDTH_GBS
    top = sorted(names.items(), key=lambda kv: -kv[1])[:10]
    return {"matrix_ms_per_step": 1e3 * matrix_s, "other_ms_per_step": 1e3 * other_s,
            "t4_matrix_s": matrix_t4, "t4_other_s": other_t4, "t4_step_s": matrix_t4 + other_t4,
            "t4_tokens_per_sec_estimate": tokens / (matrix_t4 + other_t4),
            "top_kernels_ms_per_step": {k: round(v / 1e3 / steps, 3) for k, v in top}}


def time_evaluation(cfg, lines: int, max_new_tokens: int) -> dict:
    "Greedy line completions and sampled function bodies, batch 1 against batched: seconds and equality."
    from neoxcourse.evaluate import (HUMANEVAL_STOPS, complete_lines, continue_texts, line_completion_examples,
                                     validation_texts)
    from neoxcourse.model import GPTNeoX
    from neoxcourse.tokenizer import load_tokenizer, prepare
    prepare(cfg)                                           # the validation files (reused when already there)
    torch.manual_seed(0)
    model = GPTNeoX(cfg.model).cuda().eval()
    tok = load_tokenizer(cfg)
    texts = validation_texts(cfg)
    examples = line_completion_examples(texts, lines, seed=0)
    out = {"model": "untrained T4-recipe model (speed only)", "line_examples": len(examples),
           "max_new_tokens": max_new_tokens}
    for name, bs in (("batch_1", 1), ("batched_32", 32)):
        complete_lines(model, tok, examples[:2], max_new_tokens, bs)               # warm-up
        torch.cuda.synchronize(); t = time.perf_counter()
        preds = complete_lines(model, tok, examples, max_new_tokens, bs)
        torch.cuda.synchronize()
        out[f"lines_{name}_s"], out[f"lines_{name}"] = time.perf_counter() - t, preds
    out["lines_equal"] = out.pop("lines_batch_1") == out.pop("lines_batched_32")
    prompts = [ex.prefix[-400:] for ex in examples[:32]]
    for name, bs in (("batch_1", 1), ("batched_32", 32)):
        torch.cuda.synchronize(); t = time.perf_counter()
        outs = continue_texts(model, tok, prompts, 1, 128, 0.8, 0.95, HUMANEVAL_STOPS,
                              list(range(len(prompts))), bs)
        torch.cuda.synchronize()
        out[f"sampled_{name}_s"], out[f"sampled_{name}"] = time.perf_counter() - t, outs
    out["sampled_equal"] = out.pop("sampled_batch_1") == out.pop("sampled_batched_32")
    out["sampled_prompts"] = len(prompts)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--t4", action="store_true", help="T4 emulation: 15 GiB cap, flash attention off")
    p.add_argument("--parts", nargs="*", default=["loop", "eval", "split", "bench"])
    p.add_argument("--lines", type=int, default=64)
    a = p.parse_args(argv)
    if a.t4: emulate_t4()
    out = Path(a.out) / f"loop_{'t4emu' if a.t4 else 'gpu'}.json"
    result = {**header("configs/t4.yml"), "mode": "t4_emulation" if a.t4 else "full_gpu", "steps": a.steps,
              "loop": {}}
    work = Path(tempfile.mkdtemp())
    if "loop" in a.parts:
        for recipe, (path, over) in RECIPES.items():
            for variant, comp in (("eager", False), ("default", None)):
                try: r = time_loop(loop_config(path, over, a.steps, work, f"{recipe}-{variant}", comp))
                except Exception as e: r = {"error": f"{type(e).__name__}: {e}"[:400]}
                result["loop"][f"{recipe}/{variant}"] = r
                print(recipe, variant, json.dumps(r), flush=True)
                write_result(out, result, indent=2)
                torch.cuda.empty_cache()
    if "eval" in a.parts:
        try:
            cfg = loop_config(*RECIPES["t4_recipe"], a.steps, work, "eval", None)
            result["evaluation"] = time_evaluation(cfg, a.lines, 32)
        except Exception as e:
            result["evaluation"] = {"error": f"{type(e).__name__}: {e}"[:400]}
        print("evaluation", json.dumps(result["evaluation"]), flush=True)
        write_result(out, result, indent=2)
    if "bench" in a.parts:   # transformers' compiled step and the benchmark's best variant, same process
        import bench_train
        mcfg = bench_train.reference_model_config()
        result["bench_train"] = bench_train.run_training(
            mcfg, 32, 25, 6, ["transformers_sdpa_compile", "neoxcourse_compile_fused_loss_cudagraphs"])
        write_result(out, result, indent=2)
    if "split" in a.parts:   # where a T4 recipe step's GPU time goes, eager against the fast path
        result["kernel_split"] = {}
        for variant, fast in (("eager", False), ("default", True)):
            try: r = kernel_split_and_t4(loop_config(*RECIPES["t4_recipe"], a.steps, work, "split", None), fast)
            except Exception as e: r = {"error": f"{type(e).__name__}: {e}"[:400]}
            result["kernel_split"][variant] = r
            print("split", variant, json.dumps(r), flush=True)
            torch.cuda.empty_cache()
        write_result(out, result, indent=2)
    ref = result["loop"].get("reference/default", {})
    hf = result.get("bench_train", {}).get("transformers_sdpa_compile", {})
    best = result.get("bench_train", {}).get("neoxcourse_compile_fused_loss_cudagraphs", {})
    if "tokens_per_s" in ref and "tokens_per_s" in hf:
        result["loop_vs_transformers_compiled"] = ref["tokens_per_s"] / hf["tokens_per_s"]
    if "tokens_per_s" in ref and "tokens_per_s" in best:
        result["loop_vs_best_variant"] = ref["tokens_per_s"] / best["tokens_per_s"]
    write_result(out, result, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k.startswith("loop_vs")}, indent=2))


if __name__ == "__main__":
    main()
