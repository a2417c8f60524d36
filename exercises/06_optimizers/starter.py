"""Exercise 06: implement Lion from its paper. Fill in step(), then run `python starter.py` (add `--submit --name YOU`)."""

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
                # TODO: Algorithm 2 of the paper (arXiv:2302.06675): the update, decoupled weight decay,
                # the momentum; mind which beta goes where and the order of the steps.
                p.add_(p.grad, alpha=-lr)   # placeholder: plain SGD; replace it
        return None


def answer():
    return Lion


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("06_optimizers", answer))
