"""The course's GPU measurements in one process, each part writing its JSON as soon as it is done:

1. the T4 recipe (configs/t4.yml) trained in T4 emulation (15 GiB cap, flash attention off, fp16) on the
   default corpus: tokens/s, peak memory, the loss curve;
2. the evaluation of that checkpoint (chapter 08): loss, bits per byte, line completion, HumanEval pass@1;
3. generation speed against transformers' generate.

    PYTHONPATH=. python bench/gpu_session.py --out bench/results [--parts t4 eval generation]

W&B is switched off here (the GPU machine has no wandb). The training-algorithm experiment of chapters 06
and 07 is bench/optimizer_experiment.py.
"""
import argparse
import json
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


def generation(out: Path) -> None:
    from bench_train import reference_model_config, time_generation
    write(out, "generation.json", {**header(), "generation": time_generation(reference_model_config())})


def main(argv=None):
    global CONFIG
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--work", default="/tmp/neoxcourse-gpu")
    p.add_argument("--parts", nargs="*", default=["generation", "t4", "eval"])
    p.add_argument("--t4-iters", type=int, default=300)
    p.add_argument("--humaneval-problems", type=int, default=40)
    p.add_argument("--config", default=str(CONFIG), help="configs/smoke.yml for a CPU dry run")
    a = p.parse_args(argv)
    CONFIG = Path(a.config)
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True); work.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    for part in a.parts:
        t0 = time.time()
        try:
            if part == "generation": generation(out)
            elif part == "t4": checkpoint = t4_recipe(out, work, a.t4_iters)
            elif part == "eval" and checkpoint is not None: evaluation(out, checkpoint, a.humaneval_problems)
        except Exception:
            traceback.print_exc()
        print(f"part {part}: {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
