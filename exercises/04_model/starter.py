"""Exercise 04: rotary embeddings. Edit rotary, then run `python starter.py` (add `--submit --name YOU`)."""
import argparse

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


if __name__ == "__main__":
    from neoxcourse.exercises import check_exercise, submit
    parser = argparse.ArgumentParser()
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.submit: submit("04_model", answer(), name=args.name)
    else: check_exercise("04_model", answer())
