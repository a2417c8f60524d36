"""Reference solution for exercise 04_model: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.
"""
import torch


def rotary(x: torch.Tensor, positions: torch.Tensor, rotary_ndims: int, base: float = 10000) -> torch.Tensor:
    "Rotate the first rotary_ndims dims of each head of x (B, H, T, Dh) by position, GPT-NeoX style."
    d = rotary_ndims
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    angles = positions.float()[:, None] * theta[None, :]                # (T, d/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2, rest = x[..., : d // 2], x[..., d // 2 : d], x[..., d:]     # the two halves, and the rest
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


def answer():
    return rotary


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("04_model", answer))
