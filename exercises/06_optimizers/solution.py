"""Reference solution for exercise 06_optimizers: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.
"""
import torch
from torch.optim import Optimizer


class Lion(Optimizer):
    "Lion (Chen et al. 2023, Algorithm 2) with decoupled weight decay."
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None: continue
                state = self.state[p]
                if not state: state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                c = (beta1 * m + (1 - beta1) * p.grad).sign()   # interpolate, then take the sign
                p.mul_(1 - lr * wd)                             # decoupled weight decay
                p.add_(c, alpha=-lr)
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)     # the slower momentum, updated last
        return None


def answer():
    return Lion


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("06_optimizers", answer))
