"""Reference solution for exercise 04a_generation: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.
"""
import torch


def top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    "Keep the fewest most likely tokens of each row (B, V) whose probabilities reach p; -inf the rest."
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, V), most likely first
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs          # probability mass of the tokens ahead of each one
    drop_sorted = before >= p                  # already enough without this token
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def answer():
    return top_p


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("04a_generation", answer))
