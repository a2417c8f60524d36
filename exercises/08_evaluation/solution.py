"""Reference solution for exercise 08 (CI checks it, so the check cannot rot)."""
import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    "Probability that at least one of k samples drawn without replacement from n (c correct) is correct."
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def answer():
    return pass_at_k
