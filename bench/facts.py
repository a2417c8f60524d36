"""The course's facts: every number that the chapters, the exercise READMEs, the configs' comments or the README
state in more than one place, computed once from `configs/` and `bench/results/`.

    python bench/facts.py            # writes reference/course_facts.json
    python bench/facts.py --check    # exit 1 when the committed file is stale

Chapters print them with `neoxcourse.experiments.course_facts()` (or quote them); tests/test_facts.py fails when
a committed text states a value that disagrees with this file.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "reference" / "course_facts.json"
RECIPES = {"smoke": "configs/smoke.yml", "lab": "configs/lab.yml", "t4": "configs/t4.yml",
           "reference": "configs/code_completion.yml"}


def result(name: str) -> dict:
    "One committed result file (bench/results/NAME.json)."
    return json.loads((RESULTS / f"{name}.json").read_text())


def recipe_facts(path: str) -> dict:
    "Size, batch and budget of one recipe, as the course loop resolves it."
    from neoxcourse.config import load_config
    from neoxcourse.model import count_parameters, flops_per_token
    cfg = load_config(ROOT / path)
    m, t = cfg.model, cfg.training
    seqs = t.global_batch_size
    return {"config": path, "params_millions": round(count_parameters(m) / 1e6, 1),
            "num_layers": m.num_layers, "hidden_size": m.hidden_size, "num_attention_heads": m.num_attention_heads,
            "seq_length": m.seq_length, "vocab_size": m.vocab_size, "micro_batch": t.micro_batch_size,
            "global_batch_sequences": seqs, "gradient_accumulation_steps": seqs // t.micro_batch_size,
            "train_iters": t.train_iters, "checkpoint_factor": t.checkpoint_factor,
            "tokens_per_iteration": seqs * m.seq_length, "train_tokens": t.train_iters * seqs * m.seq_length,
            "train_tokens_millions": round(t.train_iters * seqs * m.seq_length / 1e6, 1),
            "training_flops_per_token_millions": round(flops_per_token(m) / 1e6, 1)}


def t4_facts(recipes: dict) -> dict:
    "The T4 itself (public figures) and the course's estimate of its speed on the T4 recipe."
    from neoxcourse.device import PEAK_TFLOPS, T4_MEMORY_GIB
    speed = result("capstone_speed")
    tps = speed["t4_tokens_per_sec_estimate"]
    t4 = recipes["t4"]
    hour_tokens = tps * 3600
    split = result("loop_t4emu")["kernel_split"] if (RESULTS / "loop_t4emu.json").exists() else {}
    return {"peak_fp16_tflops": PEAK_TFLOPS["T4"][0],
            "sustained_fp16_matmul_tflops": 20.6,          # one Colab measurement (reference/FACTS.md)
            "memory_bandwidth_gbs": 320,
            "emulation_memory_cap_gib": T4_MEMORY_GIB,      # what bench/ caps an H200 at to stand for a T4
            "colab_visible_memory_gib": 14.7,               # torch.cuda.mem_get_info on Colab: 14.6-14.8 GiB
            "recipe_tokens_per_s_estimate_k": round(tps / 1e3),
            "recipe_tokens_per_s_pessimistic_k": round(speed["t4_tokens_per_sec_scaled_kernels"] / 1e3),
            "recipe_estimate_method": speed["t4_method"],
            # the same kernel split of the loop's default GPU path (compiled model + loss, multi-tensor optimizer)
            "recipe_tokens_per_s_fast_path_estimate_k":
                round(split["default"]["t4_tokens_per_sec_estimate"] / 1e3) if split else None,
            "recipe_mfu_estimate_percent": round(100 * speed["t4_mfu"], 1),
            "hour_tokens_millions": round(hour_tokens / 1e6),
            "recipe_minutes_estimate": round(t4["train_iters"] * t4["tokens_per_iteration"] / tps / 60)}


def capstone_facts() -> dict:
    "The capstone's two runs: the iterations each trains in its share of the T4 hour (chapter 09)."
    run = result("capstone_t4emu")
    return {"iterations_per_run": run["t4_plan_iterations"], "tokens_per_run_millions": round(run["tokens"] / 1e6, 1)}


def h200_facts() -> dict:
    "The training-step benchmark on the H200 at the reference size (tokens/s, millions)."
    rows = {}
    for name in ("train_gpu", "train_gpu_mb64", "train_t4emu"):
        if (RESULTS / f"{name}.json").exists():
            for variant, r in result(name).get("training", {}).items():
                rows.setdefault(variant, round(r["tokens_per_s"] / 1e6, 2))
    return {"reference_step_tokens_per_s_millions": rows}


def corpus_facts() -> dict:
    "The default corpus (the standard library) as chapter 02 prepares it on the CPU machine."
    d = result("data_cpu2")["prepare_stdlib"]["splits"]
    return {"stdlib_train_files": d["train"]["files"], "stdlib_val_files": d["val"]["files"],
            "stdlib_train_tokens_millions": round(d["train"]["tokens"] / 1e6, 2),
            "stdlib_bytes_per_token": round(d["train"]["bytes_per_token"], 2)}


def build() -> dict:
    "Every fact, from configs/ and bench/results/."
    recipes = {k: recipe_facts(p) for k, p in RECIPES.items()}
    return {"about": "generated by `python bench/facts.py` from configs/ and bench/results/; do not edit",
            "recipes": recipes, "t4": t4_facts(recipes), "capstone": capstone_facts(), "h200": h200_facts(), "corpus": corpus_facts()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when reference/course_facts.json is stale")
    args = parser.parse_args(argv)
    text = json.dumps(build(), indent=1) + "\n"
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python bench/facts.py and commit it", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
