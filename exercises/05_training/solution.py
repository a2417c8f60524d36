"""Reference solution for exercise 05_training: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.
"""
from neoxcourse.train import lm_loss


def accumulate_gradients(model, batches):
    "Forward and backward over micro-batches [(x, y), ...]; leave the mean loss's gradient in .grad; return it."
    total = 0.0
    for x, y in batches:
        loss = lm_loss(model(x), y)       # mean over this micro-batch's B*T tokens
        (loss / len(batches)).backward()  # gradients add up in .grad: sum of grad(L_i / n) = grad(mean)
        total += loss.item()
    return total / len(batches)


def answer():
    return accumulate_gradients


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("05_training", answer))
