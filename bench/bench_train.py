"""Training-step benchmark: the course's GPT-NeoX against transformers' GPTNeoXForCausalLM, same config,
same GPU, one run. Also generation speed, T4 emulation, and the memory estimate against measured peaks.

    PYTHONPATH=. python bench/bench_train.py --out bench/results            # on a CUDA GPU
    PYTHONPATH=. python bench/bench_train.py --out bench/results --cpu-smoke # CPU step time of the smoke config

Every timed step is the full training step: fp16 autocast, GradScaler, fused AdamW, clipping at 1.0.
The JSON written has the GPU name, torch version and date, and a `speedup` for each comparison against
transformers; `python bench/report.py` turns the results into the README's performance section.
"""
import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from neoxcourse.config import load_config  # noqa: E402
from neoxcourse.device import emulate_t4, peak_flops  # noqa: E402  (T4 emulation and peak FLOP/s: once, there)
from neoxcourse.model import GPTNeoX, count_parameters, estimate_memory, flops_per_token, hf_config_dict  # noqa: E402
from neoxcourse.train import lm_loss, train_step  # noqa: E402  (the course's one training step)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import header, write_result  # noqa: E402  (commit, command, machine, config of every result)

ROOT = Path(__file__).resolve().parent.parent


def reference_model_config(seq_length=1024):
    return replace(load_config(ROOT / "configs" / "code_completion.yml").model, seq_length=seq_length)


def hf_model(mcfg, attn="sdpa"):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    conf = GPTNeoXConfig(**{k: v for k, v in hf_config_dict(mcfg).items() if k not in ("architectures", "torch_dtype", "dtype")})
    conf._attn_implementation = attn
    return GPTNeoXForCausalLM(conf)


def course_loss(model, x, y):
    return lm_loss(model(x), y)                                          # logits (B, T, V) upcast to fp32


def hf_loss(model, x, y):
    return model(input_ids=x, labels=x).loss                            # transformers shifts the labels itself


def time_training(make_model, loss_fn, mcfg, micro_batch, steps, warmup, compile_model=False,
                  compile_loss=False, device="cuda", mode=None, profile=False):
    "Tokens/s and peak memory of the full training step, after warmup (which includes compilation)."
    torch.manual_seed(0)
    model = make_model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=device == "cuda")
    scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
    fwd = torch.compile(model, mode=mode) if compile_model else model
    loss_fn_c = torch.compile(loss_fn, mode=mode) if compile_loss else loss_fn
    T = mcfg.seq_length
    data = torch.randint(0, mcfg.vocab_size, (micro_batch, T + 1), device=device)
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    precision = "fp16" if device == "cuda" else "fp32"

    def step():   # the course's train_step; a compiled model or loss comes in through loss_fn
        return train_step(model, opt, scaler, [(x, y)], precision, 1.0,
                          loss_fn=lambda x, y: loss_fn_c(fwd, x, y)).loss

    if device == "cuda":   # the peak covers warmup too: CUDA-graph pools are allocated there
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(warmup): step()
    if device == "cuda": torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps): loss = step()
    if device == "cuda": torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    if profile:   # where the time goes: the top CUDA kernels of three steps
        from torch.profiler import ProfilerActivity, profile as torch_profile
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3): step()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70))
    tokens_per_s = steps * micro_batch * T / elapsed
    out = {"micro_batch": micro_batch, "seq_length": T, "steps": steps, "step_ms": 1000 * elapsed / steps,
           "tokens_per_s": tokens_per_s, "warmup_s": warm_s, "final_loss": float(loss.detach())}
    if device == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        peak = peak_flops(torch.cuda.get_device_name())
        out["mfu"] = flops_per_token(mcfg) * tokens_per_s / peak if peak else None
    del model, opt, fwd
    if device == "cuda": torch.cuda.empty_cache()
    return out


def variants(mcfg):
    "The contenders: transformers (eager SDPA model, compiled) and the course model (eager, compiled, fast)."
    return {
        "transformers_sdpa": (lambda: hf_model(mcfg), hf_loss, False, False),
        "transformers_sdpa_compile": (lambda: hf_model(mcfg), hf_loss, True, False),
        "neoxcourse": (lambda: GPTNeoX(mcfg), course_loss, False, False),
        "neoxcourse_compile": (lambda: GPTNeoX(mcfg), course_loss, True, False),
        # model, loss and upcast in one compiled graph: Inductor fuses the fp32 cross-entropy into the logits
        "neoxcourse_compile_fused_loss": (lambda: GPTNeoX(mcfg), course_loss, False, True),
        # CUDA graphs replay the whole forward and backward with one launch each: no Python between kernels
        "neoxcourse_compile_cudagraphs": (lambda: GPTNeoX(mcfg), course_loss, True, False, "reduce-overhead"),
        "neoxcourse_compile_fused_loss_cudagraphs": (lambda: GPTNeoX(mcfg), course_loss, False, True, "reduce-overhead"),
        # Triton GEMM templates with the bias and GELU fused into their epilogues, autotuned (minutes to compile)
        "neoxcourse_compile_fused_loss_max_autotune": (lambda: GPTNeoX(mcfg), course_loss, False, True, "max-autotune"),
    }


def run_training(mcfg, micro_batch, steps, warmup, names=None, profile=None):
    results = {}
    for name, (make, loss, comp_model, comp_loss, *mode) in variants(mcfg).items():
        if names and name not in names: continue
        try:
            results[name] = time_training(make, loss, mcfg, micro_batch, steps, warmup, comp_model, comp_loss,
                                          mode=mode[0] if mode else None, profile=name in (profile or ()))
        except Exception as e:   # out of memory, or a compile failure: recorded, not fatal
            results[name] = {"error": type(e).__name__, "detail": str(e)[:300]}
            torch.cuda.empty_cache()
        print(name, json.dumps(results[name]), flush=True)
    return results


def speedups(results):
    "Each course variant's tokens/s over each transformers variant's."
    out = {}
    for c, rc in results.items():
        if not c.startswith("neoxcourse") or "tokens_per_s" not in rc: continue
        for t, rt in results.items():
            if t.startswith("transformers") and "tokens_per_s" in rt:
                out[f"{c}_vs_{t}"] = rc["tokens_per_s"] / rt["tokens_per_s"]
    return out


@torch.no_grad()
def time_generation(mcfg, prompt_len=128, new_tokens=256, device="cuda"):
    "Greedy decoding tokens/s: the course model with and without its KV cache, and transformers' generate."
    from neoxcourse.generate import generate
    torch.manual_seed(0)
    ours = GPTNeoX(mcfg).to(device).half().eval()
    hf = hf_model(mcfg).to(device).half().eval()
    prompt = torch.randint(0, mcfg.vocab_size, (1, prompt_len), device=device)
    out = {}

    def timed(fn, reps=3):
        fn()
        if device == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps): fn()
        if device == "cuda": torch.cuda.synchronize()
        return new_tokens * reps / (time.perf_counter() - t0)

    out["neoxcourse_cache_tokens_per_s"] = timed(lambda: generate(ours, prompt, max_new_tokens=new_tokens,
                                                                  temperature=0, use_cache=True))
    out["neoxcourse_no_cache_tokens_per_s"] = timed(lambda: generate(ours, prompt, max_new_tokens=new_tokens,
                                                                     temperature=0, use_cache=False), reps=1)
    out["transformers_generate_tokens_per_s"] = timed(lambda: hf.generate(
        prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=True,
        pad_token_id=0))
    out["speedup_cache_vs_transformers"] = out["neoxcourse_cache_tokens_per_s"] / out["transformers_generate_tokens_per_s"]
    out["speedup_cache_vs_no_cache"] = out["neoxcourse_cache_tokens_per_s"] / out["neoxcourse_no_cache_tokens_per_s"]
    return out


def memory_estimate_error(configs):
    "Measured CUDA peak of one eager training step against estimate_memory, for several configs."
    rows = []
    for name, mcfg, mb in configs:
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        r = time_training(lambda: GPTNeoX(mcfg), course_loss, mcfg, mb, steps=2, warmup=1)
        measured = r["peak_gib"] * 2**30 - base
        est = estimate_memory(mcfg, mb, "fp16", "adamw")["total"]
        rows.append({"config": name, "micro_batch": mb, "params": count_parameters(mcfg),
                     "estimate_gib": est / 2**30, "measured_gib": measured / 2**30,
                     "relative_error": (est - measured) / measured})
        print("memory", json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--micro-batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--t4", action="store_true", help="T4 emulation: 15 GiB cap, flash attention off")
    p.add_argument("--only", nargs="*", help="variant names to run")
    p.add_argument("--generation", action="store_true")
    p.add_argument("--memory", action="store_true", help="memory estimate against measured peaks")
    p.add_argument("--cpu-smoke", action="store_true", help="CPU step time of configs/smoke.yml")
    p.add_argument("--tag", default="")
    p.add_argument("--t4-recipe", action="store_true",
                   help="tokens/s and peak memory of configs/t4.yml's model at several micro-batches")
    p.add_argument("--profile", nargs="*", default=[], help="variant names to profile (top CUDA kernels)")
    a = p.parse_args(argv)
    out_dir = Path(a.out); out_dir.mkdir(parents=True, exist_ok=True)
    result = header("configs/smoke.yml" if a.cpu_smoke else "configs/t4.yml" if a.t4_recipe
                    else "configs/code_completion.yml")
    if a.cpu_smoke:
        smoke = load_config(ROOT / "configs" / "smoke.yml")
        mcfg, mb = smoke.model, smoke.training.micro_batch_size
        result["cpu_smoke"] = time_training(lambda: GPTNeoX(mcfg), course_loss, mcfg, mb, steps=20, warmup=3,
                                            device="cpu")
        result["cpu_smoke"]["config"] = "configs/smoke.yml"
        name = "cpu_smoke.json"
    elif a.t4_recipe:
        if a.t4: emulate_t4()
        mcfg = load_config(ROOT / "configs" / "t4.yml").model
        result.update({"mode": "t4_emulation" if a.t4 else "full_gpu",
                       "params": count_parameters(mcfg), "flops_per_token": flops_per_token(mcfg), "micro_batches": {}})
        for mb in (8, 16, 32, 64):
            for name in ("neoxcourse", "neoxcourse_compile_fused_loss_cudagraphs"):
                make, loss, cm, cl, *mode = variants(mcfg)[name]
                try:
                    r = time_training(make, loss, mcfg, mb, a.steps, a.warmup, cm, cl, mode=mode[0] if mode else None)
                except Exception as e:
                    r = {"error": f"{type(e).__name__}: {e}"[:200]}
                    torch.cuda.empty_cache()
                result["micro_batches"][f"{name}@{mb}"] = r
                print(name, mb, json.dumps(r), flush=True)
        name = "t4_recipe_micro_batch.json"
    else:
        if a.t4: emulate_t4()
        mcfg = reference_model_config()
        result.update({"mode": "t4_emulation" if a.t4 else "full_gpu", "model": {
            "hidden_size": mcfg.hidden_size, "num_layers": mcfg.num_layers, "heads": mcfg.num_attention_heads,
            "seq_length": mcfg.seq_length, "vocab_size": mcfg.vocab_size, "params": count_parameters(mcfg),
            "flops_per_token": flops_per_token(mcfg)}, "step": "fp16 autocast + GradScaler + fused AdamW + clip 1.0"})
        result["training"] = run_training(mcfg, a.micro_batch, a.steps, a.warmup, a.only, a.profile)
        result["speedup"] = speedups(result["training"])
        if a.generation:
            try: result["generation"] = time_generation(mcfg)
            except Exception as e: result["generation"] = {"error": f"{type(e).__name__}: {e}"[:300]}
        if a.memory:
            t4 = load_config(ROOT / "configs" / "t4.yml").model
            smoke = load_config(ROOT / "configs" / "smoke.yml").model
            result["memory_estimate"] = memory_estimate_error(
                [("smoke", smoke, 4), ("t4", t4, 8), ("t4", t4, 16), ("reference", mcfg, 8),
                 ("reference", mcfg, 32)])
        name = f"train_{'t4emu' if a.t4 else 'gpu'}{a.tag}.json"
    path = out_dir / name
    write_result(path, result, indent=2)
    print(json.dumps(result.get("speedup", {}), indent=2))


if __name__ == "__main__":
    main()
