"""Exercise 04a: nucleus sampling. Edit top_p, then run `python starter.py` (add `--submit --name YOU`)."""

import torch


def top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    "Keep the fewest most likely tokens of each row (B, V) whose probabilities reach p; -inf the rest."
    # TODO 1: sort each row, most likely first, and keep the order           torch.sort(..., descending=True)
    # TODO 2: probabilities of the sorted row and their running sum          softmax, cumsum
    # TODO 3: drop a token when the sum *before* it already reaches p       (so the boundary token stays)
    # TODO 4: put the mask back in vocabulary order and fill with -inf      scatter, masked_fill
    raise NotImplementedError("write top_p: see README.md")


def answer():
    return top_p


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("04a_generation", answer))
