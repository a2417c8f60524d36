"""Exercise 00: make a run repeatable. Edit make_batch, then run `python starter.py` (add `--submit --name YOU`)."""
import random

import numpy as np
import torch

from neoxcourse.env import seed_everything


def make_batch(seed: int):
    "Seed every generator, then return one draw from random, NumPy and PyTorch."
    # TODO: seed the generators (one call), then draw.
    return random.random(), np.random.rand(), float(torch.rand(()))


def answer():
    return make_batch


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("00_setup", answer))
