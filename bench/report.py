"""Write the README's performance section from the JSON files in bench/results/ (never by hand).

    python bench/report.py            # rewrite the section between the markers in README.md
    python bench/report.py --check    # exit 1 if README.md is out of date with the results
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- performance:begin -->", "<!-- performance:end -->"
LABELS = {
    "transformers_sdpa": "transformers GPTNeoXForCausalLM, sdpa",
    "transformers_sdpa_compile": "transformers, sdpa + torch.compile",
    "neoxcourse": "neoxcourse GPTNeoX, eager",
    "neoxcourse_compile": "neoxcourse, torch.compile (model; what `compile: true` does in the loop)",
    "neoxcourse_compile_cudagraphs": "neoxcourse, torch.compile (model) + CUDA graphs",
    "neoxcourse_compile_fused_loss": "neoxcourse, torch.compile (model + loss in one graph)",
    "neoxcourse_compile_fused_loss_cudagraphs": "neoxcourse, model + loss compiled in one graph + CUDA graphs (bench only)",
}


def load(name):
    p = RESULTS / name
    return json.loads(p.read_text()) if p.exists() else None


def source(name, res):
    "One line naming the results file, the commit and the command that wrote it (bench/provenance.py)."
    if not res or "commit" not in res: return []
    how = "; provenance reconstructed afterwards from git" if res.get("reconstructed") else ""
    return [f"<sub>Source: `bench/results/{name}`, commit {res['commit'][:7]}, `{res['command']}`{how}.</sub>", ""]


def training_table(res, title):
    m = res["model"]
    lines = [f"**{title}** ({res['gpu']}, torch {res['torch']}, {res['date'][:10]}; hidden {m['hidden_size']}, "
             f"{m['num_layers']} layers, {m['heads']} heads, seq {m['seq_length']}, vocab {m['vocab_size']}, "
             f"{m['params'] / 1e6:.1f}M parameters; {res['step']})", "",
             "| variant | micro-batch | tokens/s | MFU | peak GiB | vs transformers compiled |",
             "| --- | --- | --- | --- | --- | --- |"]
    base = res["training"].get("transformers_sdpa_compile", {}).get("tokens_per_s")
    for name, r in res["training"].items():
        if "tokens_per_s" not in r:
            lines.append(f"| {LABELS.get(name, name)} | | {r.get('error', 'failed')} | | | |")
            continue
        ratio = f"{r['tokens_per_s'] / base:.2f}x" if base else ""
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else ""
        lines.append(f"| {LABELS.get(name, name)} | {r['micro_batch']} | {r['tokens_per_s'] / 1e6:.2f}M | {mfu} | "
                     f"{r['peak_gib']:.1f} | {ratio} |")
    return lines


def loop_table(res):
    "`neoxcourse train` itself, eager against its default fast path (bench/bench_loop.py), and evaluation's speed."
    if not res or not res.get("loop"): return []
    lines = [f"**The training loop, `neoxcourse train` itself** ({res['gpu']} in T4 emulation, torch {res['torch']}, "
             f"{res['date'][:10]}; {res['steps']} iterations of the real loop, tokens/s as the loop reports them, first step left out; eager = "
             f"`training.compile=false`, the per-parameter optimizer; default = model and loss compiled together, "
             f"CUDA graphs when a step is one micro-batch, the multi-tensor optimizer)", "",
             "| recipe | loop | micro-batch x accumulation | tokens/s | MFU | peak GiB | first step (compile) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in res["loop"].items():
        recipe, variant = key.split("/")
        if "tokens_per_s" not in r:
            lines.append(f"| {recipe} | {variant} | | {r.get('error', 'failed')[:80]} | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else ""
        comp = f"{r['compile_seconds']:.0f} s" if r.get("compile_seconds") is not None else ""
        lines.append(f"| {recipe} | {variant} | {r['micro_batch']} x {r['accumulation']} | "
                     f"{r['tokens_per_s'] / 1e6:.2f}M | {mfu} | {r['peak_gib']:.1f} | {comp} |")
    bench = res.get("bench_train", {})
    extra = [f"{LABELS.get(n, n)}: {b['tokens_per_s'] / 1e6:.2f}M tokens/s" for n, b in bench.items()
             if "tokens_per_s" in b]
    first = res.get("parts_from_first_call")
    where = (f"An earlier call on the same kind of machine (commit {first['commit'][:7]}, `{first['command']}`)"
             if first else "Same run")
    if extra: lines += ["", where + ", the step benchmark at the reference size: " + "; ".join(extra) + "."]
    ratios = [f"{res[k]:.2f}x {what}" for k, what in (("loop_vs_transformers_compiled", "transformers' compiled step"),
                                                     ("loop_vs_best_variant", "the benchmark's best variant"))
              if k in res]
    if ratios: lines += ["", "The default loop at the reference size runs at " + " and ".join(ratios) + "."]
    split = res.get("kernel_split", {})
    if all("matrix_ms_per_step" in split.get(v, {}) for v in ("eager", "default")):
        e, d = split["eager"], split["default"]
        lines += ["", f"Where the T4 recipe's step (64 x 1024 tokens) spends GPU time there: matrix kernels "
                  f"{e['matrix_ms_per_step']:.1f} ms eager, {d['matrix_ms_per_step']:.1f} ms default; everything "
                  f"else (elementwise, norms, rotary, optimizer) {e['other_ms_per_step']:.1f} ms eager, "
                  f"{d['other_ms_per_step']:.1f} ms default (fused by the compiler, one multi-tensor optimizer step). "
                  f"At a T4's 20.6 TFLOP/s for the matrix work and its bandwidth for the rest, a T4 step takes "
                  f"{e['t4_step_s']:.2f} s eager ({e['t4_tokens_per_sec_estimate'] / 1e3:.0f}k tokens/s) and "
                  f"{d['t4_step_s']:.2f} s default ({d['t4_tokens_per_sec_estimate'] / 1e3:.0f}k tokens/s)."]
    ev = res.get("evaluation", {})
    if "lines_batch_1_s" in ev:
        lines += ["", f"Evaluation's generation (untrained T4-recipe model, speed only): {ev['line_examples']} greedy "
                  f"line completions take {ev['lines_batch_1_s']:.1f} s at batch 1 and {ev['lines_batched_32_s']:.1f} s "
                  f"in batches of 32 (same completions: {ev['lines_equal']}); {ev['sampled_prompts']} sampled "
                  f"bodies of up to 128 tokens {ev['sampled_batch_1_s']:.1f} s against {ev['sampled_batched_32_s']:.1f} s "
                  f"(same samples: {ev['sampled_equal']})."]
    return lines + [""] + source("loop_t4emu.json", res)


def section():
    out = ["## Performance", "",
           "Every GPU figure here comes from one command on one GPU, `bash bench/run_gpu.sh` (the training-step "
           "benchmark is `bench/bench_train.py`, also `neoxcourse bench`); this section is written by "
           "`python bench/report.py` from `bench/results/*.json`. The target was 1.5x the tokens/s of compiled "
           "transformers at the reference size; the best course variant reaches 1.28x with 24% less peak memory. "
           "Each result below names the commit and the command that wrote it.", ""]
    for name, title in (("train_gpu.json", "Full training step, one GPU"),
                        ("train_gpu_mb64.json", "Micro-batch 64"),
                        ("train_t4emu.json", "T4 emulation (15 GiB cap, flash attention off)")):
        res = load(name)
        if res: out += training_table(res, title) + [""] + source(name, res)
    out += loop_table(load("loop_t4emu.json"))
    gen = load("generation.json")
    if gen and "generation" in gen and "error" not in gen["generation"]:
        g = gen["generation"]
        out += [f"**Generation** (greedy, batch 1, {gen['gpu']}): with the KV cache "
                f"{g['neoxcourse_cache_tokens_per_s']:.0f} tokens/s, without {g['neoxcourse_no_cache_tokens_per_s']:.0f}, "
                f"transformers `generate` {g['transformers_generate_tokens_per_s']:.0f} "
                f"({g['speedup_cache_vs_transformers']:.2f}x).", ""] + source("generation.json", gen)
    cap = load("capstone_speed.json")
    if cap and "t4_tokens_per_sec_estimate" in cap:
        out += [f"**A T4, estimated** (`bench/capstone.py`, {cap['gpu']} in T4 emulation, {cap['date'][:10]}): the T4 "
                f"recipe's step runs at {cap['tokens_per_sec'] / 1e3:.0f}k tokens/s there; a profile puts "
                f"{cap['matrix_s_per_step'] * 1e3:.1f} ms of each step in matrix kernels and "
                f"{cap['other_s_per_step'] * 1e3:.1f} ms in the rest. With the matrix work at a Colab T4's measured "
                f"20.6 TFLOP/s and the rest scaled by memory bandwidth ({cap['bandwidth_ratio']:.0f}x), a T4 trains "
                f"this model at about {cap['t4_tokens_per_sec_estimate'] / 1e3:.0f}k tokens/s "
                f"({cap['t4_mfu']:.1%} MFU; same MFU as there: {cap['t4_tokens_per_sec_same_mfu'] / 1e3:.0f}k; "
                f"pessimistic: {cap['t4_tokens_per_sec_scaled_kernels'] / 1e3:.0f}k), so chapter 09 plans "
                f"{cap['t4_plan_iterations']} iterations a run for its hour.", ""] + source("capstone_speed.json", cap)
    if (RESULTS / "optimizer_experiment.md").exists():
        out += ["**Training algorithms** (chapter 06). "
                + (RESULTS / "optimizer_experiment.md").read_text().strip(), ""]
        out += source("optimizer_experiment.json", load("optimizer_experiment.json"))
    cpu = load("cpu_smoke.json")
    if cpu:
        c = cpu["cpu_smoke"]
        out += [f"**CPU** ({cpu['cpu']}, {cpu['cpu_threads']} threads, torch {cpu['torch']}): one training step of "
                f"`configs/smoke.yml` takes {c['step_ms']:.0f} ms ({c['tokens_per_s']:.0f} tokens/s).", ""]
        out += source("cpu_smoke.json", cpu)
    return "\n".join(out).rstrip() + "\n"


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--check", action="store_true")
    a = p.parse_args(argv)
    readme = (ROOT / "README.md").read_text()
    if BEGIN not in readme:
        readme = readme.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{section()}{END}{tail}"
    if a.check:
        if new != readme:
            print("README.md's performance section is out of date: run python bench/report.py")
            return 1
        return 0
    (ROOT / "README.md").write_text(new)
    print(section())
    return 0


if __name__ == "__main__":
    sys.exit(main())
