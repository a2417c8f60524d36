"""Exercise 04: rotary embeddings. Edit rotary, then run `python starter.py` (add `--submit --name YOU`)."""

import torch


def rotary(x: torch.Tensor, positions: torch.Tensor, rotary_ndims: int, base: float = 10000) -> torch.Tensor:
    "Rotate the first rotary_ndims dims of each head of x (B, H, T, Dh) by position, GPT-NeoX style."
    d = rotary_ndims
    # TODO 1: the frequencies theta_i = base ** (-2i / d) for i = 0 .. d/2 - 1        shape (d/2,)
    # TODO 2: the angles positions[:, None] * theta[None, :]                          shape (T, d/2)
    # TODO 3: rotate the pairs (i, i + d/2) of x[..., :d]; keep x[..., d:] as it is   shape (B, H, T, Dh)
    raise NotImplementedError("write rotary: see README.md")


def answer():
    return rotary


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("04_model", answer))
