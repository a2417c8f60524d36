"""The course's GPU measurements in one process, each part writing its JSON as soon as it is done:

1. the T4 recipe (configs/t4.yml) trained in T4 emulation (15 GiB cap, flash attention off, fp16) on the
   default corpus: tokens/s, peak memory, the loss curve;
2. the evaluation of that checkpoint (chapter 08): loss, bits per byte, line completion, HumanEval pass@1;
3. the training-algorithm experiment (chapters 06 and 07): six optimizer/schedule pairs, each with a small
   learning-rate sweep at a fixed token budget, more seeds for the leaders;
4. generation speed against transformers' generate.

    PYTHONPATH=. python bench/gpu_session.py --out bench/results [--parts t4 eval optimizers generation]

W&B is switched off here (the GPU machine has no wandb); `python bench/optimizer_report.py` logs every
recorded run to W&B offline afterwards and draws the plots.
"""
import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from neoxcourse.config import load_config  # noqa: E402
from neoxcourse.train import train  # noqa: E402

CONFIG = ROOT / "configs" / "t4.yml"

# (label, overrides, lr grid): each arm of the experiment, the same model, data and token budget.
ARMS = [
    ("adamw_cosine", {"optimizer.type": "adamw", "lr-decay-style": "cosine"}, [5e-4, 1e-3, 2e-3]),
    ("adamw_wsd", {"optimizer.type": "adamw", "lr-decay-style": "wsd", "schedule.decay_fraction": 0.2,
                   "schedule.decay_shape": "1-sqrt"}, [5e-4, 1e-3, 2e-3]),
    ("lion_cosine", {"optimizer.type": "lion", "lr-decay-style": "cosine", "weight-decay": 0.3,
                     "optimizer.params.weight_decay": 0.3, "optimizer.params.betas": [0.9, 0.99]}, [1e-4, 2e-4, 4e-4]),
    ("muon_wsd", {"optimizer.type": "muon", "lr-decay-style": "wsd", "schedule.decay_fraction": 0.2,
                  "schedule.decay_shape": "1-sqrt", "optimizer.params.adamw_lr": 2e-3,
                  "optimizer.params.betas": [0.9, 0.95]}, [0.01, 0.02, 0.04]),
    ("schedule_free_adamw", {"optimizer.type": "schedule_free_adamw", "lr-decay-style": "constant"},
     [1e-3, 2e-3, 4e-3]),
    ("sgd_nesterov_cosine", {"optimizer.type": "sgd", "lr-decay-style": "cosine", "optimizer.params.momentum": 0.9,
                             "optimizer.params.nesterov": True, "weight-decay": 0.0,
                             "optimizer.params.weight_decay": 0.0}, [0.03, 0.1, 0.3]),
]


def write(out: Path, name: str, obj) -> None:
    (out / name).write_text(json.dumps(obj, indent=2, default=str))
    print(f"wrote {out / name}", flush=True)


def header() -> dict:
    import datetime
    import platform
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version()}


def t4_recipe(out: Path, work: Path, iters: int) -> Path:
    "Train configs/t4.yml for `iters` steps under T4 emulation; return its final checkpoint."
    from bench_train import t4_emulation
    t4_emulation()
    cfg = load_config(CONFIG, {
        "train-iters": iters, "eval-interval": max(iters // 6, 1), "eval-iters": 20, "checkpoint-factor": iters,
        "save": str(work / "t4"), "wandb.mode": "disabled"})
    torch.cuda.reset_peak_memory_stats()
    res = train(cfg)
    write(out, "t4_emulation_training.json", {**header(), "config": "configs/t4.yml",
          "overrides": {"train-iters": iters}, "mode": "t4_emulation (15 GiB cap, flash off, fp16)",
          "tokens_per_s": res.tokens_per_sec, "mfu_vs_h200_peak": res.mfu,
          "peak_gib": (res.peak_memory_bytes or torch.cuda.max_memory_allocated()) / 2**30,
          "micro_batch": res.micro_batch_size, "accumulation": res.gradient_accumulation_steps,
          "tokens_seen": res.tokens_seen, "elapsed_s": res.elapsed, "skipped_steps": res.skipped_steps,
          "train_loss": res.losses, "val_loss": res.val_losses, "checkpoint": str(res.checkpoint)})
    return res.checkpoint


def evaluation(out: Path, checkpoint: Path, problems: int) -> None:
    from neoxcourse.evaluate import evaluate
    cfg = load_config(CONFIG, {
        "wandb.mode": "disabled", "evaluation.humaneval_problems": problems, "evaluation.humaneval_samples": 1,
        "evaluation.ks": [1], "evaluation.temperature": 0.2, "evaluation.line_completion_samples": 200,
        "evaluation.val_batches": 50})
    t0 = time.time()
    metrics = evaluate(cfg, checkpoint, log=False)
    write(out, "t4_emulation_evaluation.json", {**header(), "checkpoint": "the T4-recipe run above",
                                                "seconds": time.time() - t0, "metrics": metrics})


def experiment(out: Path, work: Path, iters: int, seeds: int, arms=None, max_lrs: int = 3, micro: int = 16) -> None:
    "Every arm at every lr of its grid, then more seeds for the two best arms at their best lr."
    base = {"train-iters": iters, "train_micro_batch_size_per_gpu": micro, "train_batch_size": micro,
            "eval-interval": max(iters // 6, 1), "eval-iters": 20, "checkpoint-factor": iters, "warmup": 0.05,
            "wandb.mode": "disabled"}
    runs = []

    def one(label, overrides, lr, seed):
        o = {**base, **overrides, "lr": lr, "min_lr": lr / 10, "seed": seed, "save": str(work / f"{label}_{lr:g}_{seed}")}
        if overrides.get("lr-decay-style") == "constant": o["min_lr"] = 0.0
        cfg = load_config(CONFIG, o)
        t0 = time.time()
        try:
            res = train(cfg)
            rec = {"arm": label, "lr": lr, "seed": seed, "overrides": o, "val_loss": res.val_losses,
                   "train_loss": res.losses, "tokens_per_step": cfg.training.global_batch_size * cfg.model.seq_length,
                   "tokens_per_s": res.tokens_per_sec, "elapsed_s": res.elapsed, "skipped_steps": res.skipped_steps,
                   "final_val_loss": res.val_losses[max(res.val_losses)] if res.val_losses else None}
        except Exception as e:   # a diverged or failed arm is a result too
            rec = {"arm": label, "lr": lr, "seed": seed, "overrides": o, "error": f"{type(e).__name__}: {e}"[:400],
                   "elapsed_s": time.time() - t0}
        runs.append(rec)
        print(json.dumps({k: rec.get(k) for k in ("arm", "lr", "seed", "final_val_loss", "tokens_per_s", "error")}),
              flush=True)
        write(out, "optimizers.json", {**header(), "budget": base, "arms": [a[0] for a in ARMS], "runs": runs})

    for label, overrides, grid in ARMS:
        if arms and label not in arms: continue
        for lr in grid[:max_lrs]: one(label, overrides, lr, 1234)
    ok = [r for r in runs if r.get("final_val_loss") is not None and math.isfinite(r["final_val_loss"])]
    best = {}
    for r in ok:
        if r["arm"] not in best or r["final_val_loss"] < best[r["arm"]]["final_val_loss"]: best[r["arm"]] = r
    leaders = sorted(best.values(), key=lambda r: r["final_val_loss"])[:2]
    for r in leaders if seeds > 1 else []:
        overrides = next(o for label, o, _ in ARMS if label == r["arm"])
        for seed in range(1, seeds): one(r["arm"], overrides, r["lr"], 1234 + seed)


def generation(out: Path) -> None:
    from bench_train import reference_model_config, time_generation
    write(out, "generation.json", {**header(), "generation": time_generation(reference_model_config())})


def main(argv=None):
    global CONFIG
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--work", default="/tmp/neoxcourse-gpu")
    p.add_argument("--parts", nargs="*", default=["generation", "t4", "eval", "optimizers"])
    p.add_argument("--t4-iters", type=int, default=300)
    p.add_argument("--exp-iters", type=int, default=150)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--humaneval-problems", type=int, default=40)
    p.add_argument("--config", default=str(CONFIG), help="configs/smoke.yml for a CPU dry run")
    p.add_argument("--arms", nargs="*")
    p.add_argument("--max-lrs", type=int, default=3)
    p.add_argument("--micro", type=int, default=16)
    p.add_argument("--grid", nargs="*", default=[], help="arm=lr1,lr2 replaces that arm's learning rates")
    a = p.parse_args(argv)
    CONFIG = Path(a.config)
    for item in a.grid:
        arm, lrs = item.split("=")
        for i, (label, o, g) in enumerate(ARMS):
            if label == arm: ARMS[i] = (label, o, [float(x) for x in lrs.split(",")])
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True); work.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    for part in a.parts:
        t0 = time.time()
        try:
            if part == "generation": generation(out)
            elif part == "optimizers": experiment(out, work, a.exp_iters, a.seeds, a.arms, a.max_lrs, a.micro)
            elif part == "t4": checkpoint = t4_recipe(out, work, a.t4_iters)
            elif part == "eval" and checkpoint is not None: evaluation(out, checkpoint, a.humaneval_problems)
        except Exception:
            traceback.print_exc()
        print(f"part {part}: {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
