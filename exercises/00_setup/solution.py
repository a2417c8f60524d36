"""Reference solution for exercise 00_setup: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.
"""
import random

import numpy as np
import torch

from neoxcourse.env import seed_everything


def make_batch(seed: int):
    seed_everything(seed)
    return random.random(), np.random.rand(2), torch.rand(2)


def answer():
    return make_batch


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("00_setup", answer))
