"""Exercise 04: rotary embeddings. Edit rotary, then run `python starter.py` (add `--submit --name YOU`)."""

import torch


def rotary(x: torch.Tensor, positions: torch.Tensor, rotary_ndims: int, base: float = 10000) -> torch.Tensor:
    "Rotate the first rotary_ndims dims of each head of x (B, H, T, Dh) by position, GPT-NeoX style."
    d = rotary_ndims
    # From the equation in README.md: one frequency per pair, one angle per (position, pair), then rotate
    # the first d dimensions and leave the rest alone. Print the shapes as you go.
    raise NotImplementedError("write rotary: see README.md")


def answer():
    return rotary


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("04_model", answer))
