"""Exercise 05: gradient accumulation. Edit accumulate_gradients, then run `python starter.py`
(add `--submit --name YOU` to submit)."""

from neoxcourse.train import lm_loss


def accumulate_gradients(model, batches):
    "Forward and backward over micro-batches [(x, y), ...]; leave the mean loss's gradient in .grad; return it."
    # TODO 1: for each (x, y): logits = model(x)                      (B, T, V); loss = lm_loss(logits, y)
    # TODO 2: backward a loss scaled so that the n gradients add up to the gradient of the mean
    # TODO 3: return the mean of the n losses (detached, e.g. with .item())
    raise NotImplementedError("write accumulate_gradients: see README.md")


def answer():
    return accumulate_gradients


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("05_training", answer))
