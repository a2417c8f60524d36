"""Reference solution for exercise 08_evaluation: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.
"""
import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    "Probability that at least one of k samples drawn without replacement from n (c correct) is correct."
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def answer():
    return pass_at_k


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("08_evaluation", answer))
