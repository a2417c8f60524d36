"""Reference solution for exercise 00 (CI checks it, so the check cannot rot)."""
import random

import numpy as np
import torch

from neoxcourse.env import seed_everything


def make_batch(seed: int):
    seed_everything(seed)
    return random.random(), np.random.rand(2), torch.rand(2)


def answer():
    return make_batch
