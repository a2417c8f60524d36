"""Exercise 04a: nucleus sampling. Edit top_p, then run `python starter.py` (add `--submit --name YOU`)."""

import torch


def top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    "Keep the fewest most likely tokens of each row (B, V) whose probabilities reach p; -inf the rest."
    # Which tokens form the smallest set whose probabilities reach p? Work it out on a row of four logits
    # by hand first (README.md), then vectorise it over the rows.
    raise NotImplementedError("write top_p: see README.md")


def answer():
    return top_p


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("04a_generation", answer))
