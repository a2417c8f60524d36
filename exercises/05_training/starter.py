"""Exercise 05: gradient accumulation. Edit accumulate_gradients, then run `python starter.py`
(add `--submit --name YOU` to submit)."""
import argparse

from neoxcourse.train import lm_loss


def accumulate_gradients(model, batches):
    "Forward and backward over micro-batches [(x, y), ...]; leave the mean loss's gradient in .grad; return it."
    # TODO 1: for each (x, y): logits = model(x)                      (B, T, V); loss = lm_loss(logits, y)
    # TODO 2: backward a loss scaled so that the n gradients add up to the gradient of the mean
    # TODO 3: return the mean of the n losses (detached, e.g. with .item())
    raise NotImplementedError("write accumulate_gradients: see README.md")


def answer():
    return accumulate_gradients


if __name__ == "__main__":
    from neoxcourse.exercises import check_exercise, submit
    parser = argparse.ArgumentParser()
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.submit: submit("05_training", answer(), name=args.name)
    else: check_exercise("05_training", answer())
