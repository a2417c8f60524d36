"""Exercise 05: gradient accumulation. Edit accumulate_gradients, then run `python starter.py`
(add `--submit --name YOU` to submit)."""

from neoxcourse.train import lm_loss


def accumulate_gradients(model, batches):
    "Forward and backward over micro-batches [(x, y), ...]; leave the mean loss's gradient in .grad; return it."
    # .grad adds up over backward() calls. What must each micro-batch contribute so that the sum is the
    # gradient of the mean over all of them?
    raise NotImplementedError("write accumulate_gradients: see README.md")


def answer():
    return accumulate_gradients


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("05_training", answer))
