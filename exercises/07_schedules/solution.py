"""Reference solution for exercise 07_schedules: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.

Three schedules on a short
smoke run through chapter 05's train(cfg). The numbers of so short a run say nothing about which schedule is
better; on a T4 use configs/t4.yml with train-iters 1000 or more.
"""
import tempfile
from pathlib import Path

from neoxcourse.config import load_config
from neoxcourse.exercises import compare_schedules

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = {"train-iters": 8, "train_batch_size": 4, "train_micro_batch_size_per_gpu": 4, "seq-length": 64,
             "eval-interval": 8, "eval-iters": 2, "checkpoint-factor": 0, "neoxcourse.wandb.mode": "offline"}


def answer():
    overrides = {**OVERRIDES, "save": tempfile.mkdtemp(prefix="neoxcourse-07-")}   # runs and checkpoints go there
    cfg = load_config(ROOT / "configs" / "smoke.yml", overrides)
    return compare_schedules(cfg, ("constant", "cosine", "wsd:1-sqrt"), overrides)


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("07_schedules", answer))
