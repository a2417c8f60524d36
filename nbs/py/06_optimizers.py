# Generated from nbs/06_optimizers.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/06_optimizers.py`.

# %% [markdown]
# # 06 · Optimizers: seven update rules, written out and checked
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/06_optimizers.ipynb)
#
# > SGD, Adam, AdamW, Lion, Adafactor, Muon and schedule-free AdamW as `torch.optim.Optimizer` subclasses,
# > each matched step for step against an independent implementation, behind one registry keyed by GPT-NeoX's
# > `optimizer.type`.

# %% [markdown]
# - **You will learn:** seven update rules written out and checked against their references; what they do, seen
#   on 2-D valleys, as moving averages, as singular values and as update sizes per layer; how clipping and fp16
#   loss scaling show in a run's traces; how to draw a learning-rate curve per optimizer and find its edge of
#   divergence. You end with `neoxcourse.optim` (`build_optimizer(model, cfg.optimizer)`) and your own Lion.
# - **You need:** a CPU for the chapter (it builds on chapter 05's `train_step`; appendix A1 explains the config keys if you want them); a T4
#   for your own learning-rate curves on the lab recipe (`configs/lab.yml`).
# - **Time:** a few minutes on a CPU with the smoke config, as CI runs it; on a T4 the learning-rate-curve cell
#   with the lab recipe is 2 optimizers x 4 rates x about a minute a run (the recipe's own estimate; no T4 has
#   timed it), so 8-10 minutes.
# - **You should see:** every optimizer matching its reference to about 1e-6; paths on the toy valleys that
#   differ the way the update rules say; a gradient's singular values pulled to about one by Newton-Schulz;
#   Lion's update RMS equal to its learning rate in every hidden layer; a U-shaped learning-rate curve per
#   optimizer with a divergence edge on its right.

# %%
#| default_exp optim

# %%
#| hide
# In Colab only: fetch the course and install it (again, if an earlier install failed). Elsewhere: nothing.
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.exists("/content/neoxcourse/.git"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/neoxcourse/neoxcourse",
                        "/content/neoxcourse"], check=True)
    if subprocess.run([sys.executable, "-c", "import neoxcourse.train"], cwd="/content").returncode != 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/neoxcourse[dev]"], check=True)
    sys.path.insert(0, "/content/neoxcourse")  # an editable install is seen only after a restart
    os.chdir("/content/neoxcourse/nbs")

# %% tags=["parameters"]
config_path = None  # None: configs/t4.yml on a GPU, configs/smoke.yml on a CPU
overrides = {}      # GPT-NeoX keys, dotted for nested ones, e.g. {"train-iters": 50}

# %%
#| export
import difflib
import io
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.optim import Optimizer

from neoxcourse.config import OPTIMIZER_ALIASES, OPTIMIZER_TYPES, ConfigError, optimizer_type

# %%
#| hide
import time

import lion_pytorch
import matplotlib.pyplot as plt
import schedulefree
from fastcore.test import test_close, test_eq, test_fail

from neoxcourse.config import OptimizerConfig, default_config_path, load_config

# %%
cfg = load_config(config_path or default_config_path(), overrides)
cfg.optimizer


# %% [markdown]
# ## What an optimizer is
#
# Training minimises the loss $L(\theta)$ by repeating one step: compute the gradient $g_t = \nabla L(\theta_{t-1})$
# on a batch, then move the parameters. *How* they move is the optimizer: a few lines of arithmetic on $g_t$ and
# on some **state** the optimizer keeps per parameter (a momentum, a running variance). Everything in this
# chapter has the same shape:
#
# ```python
# class Something(torch.optim.Optimizer):
#     def __init__(self, params, lr, ...): super().__init__(params, defaults)   # hyper-parameters per group
#     @torch.no_grad()
#     def step(self):                       # for each parameter p with a gradient:
#         state = self.state[p]             #   the per-parameter state, created on the first step
#         ...                               #   the update rule, in place on p
# ```
#
# Subclassing `torch.optim.Optimizer` buys three things for free: parameter groups (different hyper-parameters
# for different parameters), `zero_grad`, and `state_dict()` / `load_state_dict()`, which save `self.state` and
# every group's settings, so a checkpoint restores the optimizer exactly. The one rule to follow is to keep
# *all* state in `self.state[p]` or in the group dicts, never in ordinary attributes.
#
# How do we know an update rule is right? We run it and an **independent implementation** (PyTorch's own,
# or the authors' package) side by side on the same small problem for 100 steps and compare the parameters.
# Here is that problem: a two-layer network with a LayerNorm, fitting random targets. It is tiny, but it has
# matrices, vectors and biases, which is what the optimizers treat differently.

# %%
#| export
def reference_problem(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    "A small fixed regression problem for comparing optimizers: (model, inputs, targets)."
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 8, generator=gen), torch.randn(64, 4, generator=gen)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.LayerNorm(32), nn.Linear(32, 16), nn.Tanh(),
                              nn.Linear(16, 4))
    return model, x, y


# %% [markdown]
# `optimizer_trajectory` trains that problem with an optimizer built by `make_optimizer(model)` and returns the
# losses and the final parameters, flattened into one vector. With `resume_at=k` it stops after `k` steps, saves
# model and optimizer the way a checkpoint does (`torch.save` to bytes), builds a **fresh** model and
# optimizer, loads both and carries on. A correct optimizer gives the very same numbers either way.

# %%
#| export
def set_train_mode(optimizer: Optimizer, training: bool = True) -> None:
    "Call `optimizer.train()` / `.eval()` where the optimizer has them (schedule-free); otherwise do nothing."
    method = getattr(optimizer, "train" if training else "eval", None)
    if callable(method): method()

def optimizer_trajectory(make_optimizer: Callable[[nn.Module], Optimizer], steps: int = 100, seed: int = 0,
                         resume_at: int | None = None) -> tuple[list[float], torch.Tensor]:
    "Train `reference_problem(seed)` for `steps`; return the losses and the final flat parameters."
    model, x, y = reference_problem(seed)
    opt = make_optimizer(model)
    set_train_mode(opt, True)
    losses = []
    for step in range(steps):
        if step == resume_at:                          # a checkpoint round trip in the middle of the run
            buf = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buf)
            buf.seek(0)
            ckpt = torch.load(buf, weights_only=False)
            model = reference_problem(seed + 1)[0]    # different weights, overwritten by the checkpoint
            model.load_state_dict(ckpt["model"])
            opt = make_optimizer(model)
            opt.load_state_dict(ckpt["optimizer"])
        opt.zero_grad(set_to_none=True)
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    set_train_mode(opt, False)
    return losses, torch.cat([p.detach().flatten() for p in model.parameters()])


# %% [markdown]
# Plain gradient descent with PyTorch's SGD shows the helper at work; `compare` (hidden, like all the test
# plumbing) runs two optimizers and returns the largest difference between their final parameters.

# %%
losses, params = optimizer_trajectory(lambda m: torch.optim.SGD(m.parameters(), lr=0.1), steps=50)
print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}, {params.numel()} parameters")
test_close(losses[0], 1.2437, eps=1e-3)
assert losses[-1] < 0.8 * losses[0]


# %%
#| hide
def compare(make_a, make_b, steps=100, **kw):
    "Largest absolute difference of the final parameters of two optimizers, and both final losses."
    la, pa = optimizer_trajectory(make_a, steps, **kw)
    lb, pb = optimizer_trajectory(make_b, steps, **kw)
    return (pa - pb).abs().max().item(), la[-1], lb[-1]


# %%
#| export
def _evaluate_closure(closure):
    "Re-evaluate the loss with gradients on, as `torch.optim` optimizers do when given a closure."
    if closure is None: return None
    with torch.enable_grad(): return closure()


# %% [markdown]
# ## SGD with momentum (Polyak 1964; Nesterov 1983; Sutskever et al. 2013)
#
# With learning rate $\eta$, momentum $\mu$ and L2 weight decay $\lambda$, for each parameter $\theta$:
#
# $$g_t \leftarrow \nabla L(\theta_{t-1}) + \lambda\,\theta_{t-1}, \qquad
#   b_t \leftarrow \mu\, b_{t-1} + g_t \;(b_1 = g_1), \qquad
#   \theta_t \leftarrow \theta_{t-1} - \eta\,\begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise.}\end{cases}$$
#
# The buffer $b$ is a running sum of gradients: directions that persist add up (about $1/(1-\mu)$ times),
# directions that flip cancel. Nesterov's variant looks one step ahead along the buffer. This is exactly
# `torch.optim.SGD` (with `dampening=0`), and GPT-NeoX's `sgd` is `torch.optim.SGD`. Its one piece of state
# is `momentum_buffer`.

# %%
#| export
class SGD(Optimizer):
    "SGD with heavy-ball or Nesterov momentum and L2 weight decay, as `torch.optim.SGD` (dampening 0)."
    def __init__(self, params, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        if nesterov and momentum <= 0: raise ValueError("Nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None: continue
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)   # L2: the decay enters the gradient
                if mu != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state: state["momentum_buffer"] = g.clone()
                    else: state["momentum_buffer"].mul_(mu).add_(g)   # b = mu b + g
                    b = state["momentum_buffer"]
                    g = g.add(b, alpha=mu) if group["nesterov"] else b
                p.add_(g, alpha=-lr)
        return loss


# %% [markdown]
# Against `torch.optim.SGD` (with `foreach=False`, so it does the same arithmetic in the same order), over 100
# steps, the parameters agree to the last bit, for heavy-ball momentum with weight decay and for Nesterov:

# %%
for kw in (dict(lr=0.05, momentum=0.9, weight_decay=0.01), dict(lr=0.05, momentum=0.9, nesterov=True),
           dict(lr=0.1)):
    diff, ours, ref = compare(lambda m: SGD(m.parameters(), **kw),
                              lambda m: torch.optim.SGD(m.parameters(), foreach=False, **kw))
    print(f"{kw}: final loss {ours:.4f} (torch {ref:.4f}), max |diff| {diff:.1e}")
    test_close(diff, 0, eps=1e-6)


# %% [markdown]
# ## Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019)
#
# Adam keeps two running averages per parameter, of the gradient and of its square, and divides one by the
# root of the other, so every coordinate takes a step of roughly the same size whatever its gradient's scale:
#
# $$m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2,$$
# $$\hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
#   \theta_t \leftarrow \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$
#
# The corrections $1-\beta^t$ undo the bias of averages that start at zero. **Weight decay** can enter in
# two ways, and they are not the same:
#
# - **L2 (coupled)**, the original Adam and `torch.optim.Adam(weight_decay=...)`: add $\lambda\theta$ to the
#   gradient. The decay then passes through the division by $\sqrt{\hat v}$, so parameters with large gradients
#   are hardly decayed at all.
# - **Decoupled (AdamW)**: shrink the weights directly, $\theta \leftarrow \theta (1 - \eta\lambda)$, before the
#   Adam step. Every weight decays at the same rate, which is what "weight decay" was meant to be, and it
#   generalises better (Loshchilov & Hutter).
#
# **What GPT-NeoX means by `type: Adam`.** GPT-NeoX builds `type: Adam` from apex's or DeepSpeed's
# `FusedAdam`, whose `adam_w_mode` defaults to `True`: with `weight-decay: 0.1` it decays *decoupled*, so it
# is AdamW under Adam's name. The course keeps that meaning, so a file trains the same model here and under
# GPT-NeoX: `adam` is decoupled by default (`optimizer.params.decoupled_weight_decay: false` gives the classic
# L2 coupling), and `adam_l2` names the coupled variant outright. Both live in one class; the state is `step`,
# `exp_avg` ($m$) and `exp_avg_sq` ($v$). The moments are created with `zeros_like(p)`, and the parameters stay
# fp32 under fp16 autocast, so the state is fp32 too (in fp16, $\epsilon = 10^{-8}$ would round to 0).

# %%
#| export
class Adam(Optimizer):
    "Adam; `decoupled_weight_decay=True` makes it AdamW (decay by `lr*wd*p`, not through the gradient)."
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None: continue
                g, state = p.grad, self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if wd != 0:
                    if group["decoupled_weight_decay"]: p.mul_(1 - lr * wd)   # AdamW
                    else: g = g.add(p, alpha=wd)                              # Adam + L2
                m.lerp_(g, 1 - beta1)                                         # m = b1 m + (1 - b1) g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)                 # v = b2 v + (1 - b2) g^2
                denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)     # sqrt(v_hat) + eps
                p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))            # - lr m_hat / denom
        return loss

class AdamW(Adam):
    "Adam with decoupled weight decay (Loshchilov & Hutter): `p <- p (1 - lr wd)` before the Adam step."
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)


# %% [markdown]
# Coupled Adam against `torch.optim.Adam`, AdamW against `torch.optim.AdamW`, with a weight decay large enough
# to matter. The last line shows the two kinds of decay really differ: same everything else, different weights.

# %%
kw = dict(lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
diff, ours, ref = compare(lambda m: Adam(m.parameters(), **kw),
                          lambda m: torch.optim.Adam(m.parameters(), foreach=False, **kw))
print(f"Adam (L2):  loss {ours:.4f} (torch {ref:.4f}), max |diff| {diff:.1e}"); test_close(diff, 0, eps=1e-6)
diff, ours, ref = compare(lambda m: AdamW(m.parameters(), **kw),
                          lambda m: torch.optim.AdamW(m.parameters(), foreach=False, **kw))
print(f"AdamW:      loss {ours:.4f} (torch {ref:.4f}), max |diff| {diff:.1e}"); test_close(diff, 0, eps=1e-6)
diff, _, _ = compare(lambda m: Adam(m.parameters(), **kw), lambda m: AdamW(m.parameters(), **kw))
print(f"Adam (L2) vs AdamW: max |diff| {diff:.3f}"); assert diff > 1e-2

# %% [markdown]
# ## Exercise: implement Lion from its paper
#
# **Task.** Read Algorithm 2 of Chen et al. (2023), *Symbolic Discovery of Optimization Algorithms*
# (arXiv:2302.06675), and write Lion as a `torch.optim.Optimizer` subclass in `exercises/06_optimizers/starter.py`,
# before reading on: the next section is the library's own Lion. Constructor: `Lion(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)`;
# keep the momentum in `self.state[p]`.
#
# **How it is checked.** `check_lion(YourLion)` trains the reference problem for 100 steps with your class and
# with `lion-pytorch`, an independent implementation, at hidden hyper-parameters drawn afresh at every check
# (learning rate, betas, weight decay, the problem's seed), then again with a checkpoint round trip at step 50. It
# reports `max_param_diff` (must be below 1e-5) and `resume_exact` (must be 1).
#
# **Submit.** `submit("06_optimizers", YourLion, name="your-name")` records the check as a W&B run.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import torch
from torch.optim import Optimizer

from neoxcourse.exercises import hidden_rng
from neoxcourse.optim import optimizer_trajectory

def check_lion(lion_cls: type) -> dict:
    "Exercise check: a Lion class must match lion-pytorch over 100 steps and resume exactly."
    import lion_pytorch
    if not (isinstance(lion_cls, type) and issubclass(lion_cls, Optimizer)):
        raise ExerciseError("answer with your Lion class itself (a torch.optim.Optimizer subclass), not an instance")
    rng = hidden_rng()                                   # hidden hyper-parameters and problem, new every check
    kw = dict(lr=float(10 ** rng.uniform(-3.5, -2.5)), betas=(float(rng.uniform(0.8, 0.95)),
              float(rng.uniform(0.95, 0.999))), weight_decay=float(rng.choice([0.0, 0.1, 0.3])))
    seed = int(rng.integers(2**31))
    try:
        ours, p_ours = optimizer_trajectory(lambda m: lion_cls(m.parameters(), **kw), seed=seed)
    except TypeError as e:
        raise ExerciseError(f"Lion(params, lr=..., betas=..., weight_decay=...) failed: {e}") from None
    ref, p_ref = optimizer_trajectory(lambda m: lion_pytorch.Lion(m.parameters(), **kw), seed=seed)
    diff = (p_ours - p_ref).abs().max().item()
    if not diff < 1e-5:
        raise ExerciseError(f"after 100 steps your parameters differ from lion-pytorch's by up to {diff:.2e}: "
                            f"check the order of the update (interpolate, sign, decay, then update the momentum)")
    resumed, p_res = optimizer_trajectory(lambda m: lion_cls(m.parameters(), **kw), seed=seed, resume_at=50)
    if resumed != ours or not torch.equal(p_res, p_ours):
        raise ExerciseError("a checkpoint round trip changed the run: keep the momentum in self.state[p]")
    return {"max_param_diff": diff, "resume_exact": 1.0, "final_loss": ours[-1]}

register_exercise(Exercise("06_optimizers", "Implement Lion from its paper", "max_param_diff", False,
                           (0.0, 1e-5), check_lion))

# %% [markdown]
# The starter and the reference solution live in `exercises/06_optimizers/`. The reference passes, and a
# Lion that forgets the sign fails with a message saying what to look at:

# %%
#| hide
import importlib.util
def load_answer(folder, file="solution.py"):
    spec = importlib.util.spec_from_file_location(f"_{folder}_{file[:-3]}", cfg.root / "exercises" / folder / file)
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module.answer()


# %%
from neoxcourse.exercises import ExerciseError, check_exercise
result = check_exercise("06_optimizers", load_answer("06_optimizers"))
test_eq(result["resume_exact"], 1.0)

class SignlessLion(load_answer("06_optimizers")):   # the reference, minus the sign
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                if not st: st["exp_avg"] = torch.zeros_like(p)
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(st["exp_avg"].lerp(p.grad, 1 - group["betas"][0]), alpha=-group["lr"])
                st["exp_avg"].lerp_(p.grad, 1 - group["betas"][1])
test_fail(lambda: check_exercise("06_optimizers", SignlessLion), contains="differ from lion-pytorch")


# %%
#| eval: false
# Your turn: edit exercises/06_optimizers/starter.py, then
# from neoxcourse.exercises import submit
# submit("06_optimizers", load_answer("06_optimizers", "starter.py"), name="your-name")

# %% [markdown]
# ## Lion (Chen et al. 2023, *Symbolic Discovery of Optimization Algorithms*)
#
# Lion was found by a program search over update rules. It keeps only a momentum $m$ and moves every
# coordinate by exactly $\pm\eta$, the **sign** of an interpolation between the momentum and the new gradient:
#
# $$c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
#   \theta_t \leftarrow \theta_{t-1}(1 - \eta\lambda) - \eta\,\mathrm{sign}(c_t), \qquad
#   m_t \leftarrow \beta_2 m_{t-1} + (1-\beta_2) g_t.$$
#
# Two betas with different jobs: $\beta_1$ (0.9) mixes the step, $\beta_2$ (0.99) is the slower memory.
# Because $\mathrm{sign}$ has size 1 in every coordinate, Lion's updates are larger than Adam's: the paper
# uses a learning rate 3 to 10 times smaller and a weight decay 3 to 10 times larger, so that $\eta\lambda$
# stays the same. It needs half Adam's memory (one buffer, `exp_avg`). GPT-NeoX has it as `type: lion`.
# This is the optimizer you will write yourself in the exercise; here is the reference.

# %%
#| export
class Lion(Optimizer):
    "Lion (Chen et al. 2023): the sign of an interpolated momentum, with decoupled weight decay."
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None: continue
                state = self.state[p]
                if not state: state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["exp_avg"]
                c = m.lerp(p.grad, 1 - beta1)          # c = b1 m + (1 - b1) g
                p.mul_(1 - lr * wd)                    # decoupled weight decay
                p.add_(c.sign_(), alpha=-lr)           # every coordinate moves by exactly lr
                m.lerp_(p.grad, 1 - beta2)             # m = b2 m + (1 - b2) g
        return loss


# %% [markdown]
# The reference is `lion-pytorch` (Phil Wang's implementation, which the paper's authors link to):

# %%
kw = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
diff, ours, ref = compare(lambda m: Lion(m.parameters(), **kw), lambda m: lion_pytorch.Lion(m.parameters(), **kw))
print(f"Lion: loss {ours:.4f} (lion-pytorch {ref:.4f}), max |diff| {diff:.1e}")
test_close(diff, 0, eps=1e-6)


# %% [markdown]
# ## Adafactor (Shazeer & Stern 2018)
#
# Adam stores two numbers per parameter. For an $n \times m$ matrix, Adafactor stores $n + m$: it keeps
# running means of $g^2$ over each **row** ($R$, length $n$) and each **column** ($C$, length $m$) and rebuilds
# the second moment as the rank-one product $\hat V = R C / \mathrm{mean}(R)$. It has no first moment, a
# $\beta_2$ that grows with the step ($1-\beta_{2,t} = t^{-0.8}$), and a **relative** step size: the update is
# scaled by the RMS of the parameter itself, so large weights take large steps:
#
# $$\rho_t = \min(\eta, 1/\sqrt{t}), \qquad \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\rho_t,$$
# $$U_t = g_t / \sqrt{\hat V_t}, \qquad \theta_t \leftarrow \theta_{t-1}(1-\eta\lambda)
#   - \alpha_t\, \frac{U_t}{\max(1, \mathrm{RMS}(U_t)/d)}.$$
#
# The last factor clips the update's RMS at $d$ (1.0). This is PyTorch's variant (`torch.optim.Adafactor`):
# it uses `lr` as the cap on $\rho_t$ (the paper fixes it at 0.01) and applies $\epsilon_1$ to $\hat V$ rather
# than to $g^2$. Note what `lr` means here: the learning rate a schedule sets caps the *relative* step, so
# Adafactor's good `lr` is not Adam's. The state is `step` plus `row_var` / `col_var` (matrices) or `variance`
# (vectors). GPT-NeoX has no Adafactor; the course adds it.

# %%
#| export
class Adafactor(Optimizer):
    "Adafactor (Shazeer & Stern 2018) as in `torch.optim.Adafactor`: factored second moment, relative step."
    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps1: float | None = None,
                 eps2: float = 1e-3, d: float = 1.0, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, wd, d = group["lr"], group["weight_decay"], group["d"]
            for p in group["params"]:
                if p.grad is None: continue
                g, state = p.grad, self.state[p]
                eps1 = torch.finfo(p.dtype).eps if group["eps1"] is None else group["eps1"]
                if not state:
                    state["step"] = 0
                    if g.dim() > 1:
                        state["row_var"] = g.new_zeros(g.shape[:-1] + (1,))              # (..., n, 1)
                        state["col_var"] = g.new_zeros(g.shape[:-2] + (1, g.shape[-1]))  # (..., 1, m)
                    else: state["variance"] = torch.zeros_like(g)
                state["step"] += 1
                t = state["step"]
                one_minus_beta2 = t ** group["beta2_decay"]            # 1 - beta2_t = t^-0.8
                rho = min(lr, 1 / math.sqrt(t))                        # relative step size
                alpha = max(group["eps2"], p.norm().item() / math.sqrt(p.numel())) * rho
                if wd != 0: p.mul_(1 - lr * wd)
                if g.dim() > 1:
                    r, c = state["row_var"], state["col_var"]
                    r.lerp_(g.square().mean(dim=-1, keepdim=True), one_minus_beta2)   # row means of g^2
                    c.lerp_(g.square().mean(dim=-2, keepdim=True), one_minus_beta2)   # column means of g^2
                    v = (r @ c).div_(r.mean(dim=-2, keepdim=True).clamp_(min=eps1))  # rank-one V, (..., n, m)
                else:
                    state["variance"].lerp_(g.square(), one_minus_beta2)
                    v = state["variance"].clone()
                u = v.clamp_(min=eps1 * eps1).rsqrt_().mul_(g)                      # U = g / sqrt(V)
                clip = max(1.0, u.norm().item() / (math.sqrt(u.numel()) * d))       # RMS(U) / d, at least 1
                p.add_(u, alpha=-alpha / clip)
        return loss


# %%
kw = dict(lr=1e-2, weight_decay=0.01)
diff, ours, ref = compare(lambda m: Adafactor(m.parameters(), **kw),
                          lambda m: torch.optim.Adafactor(m.parameters(), foreach=False, **kw))
print(f"Adafactor: loss {ours:.4f} (torch {ref:.4f}), max |diff| {diff:.1e}")
test_close(diff, 0, eps=1e-5)   # the row and column means are summed in another order: a few ulps

# %% [markdown]
# The memory saving is real: for the T4 model's MLP matrix (1536 x 384), Adam keeps 2 x 589,824 numbers,
# Adafactor 1536 + 384.

# %%
w = nn.Parameter(torch.randn(1536, 384)); w.grad = torch.randn_like(w)
opt = Adafactor([w]); opt.step()
test_eq(sum(s.numel() for s in opt.state[w].values() if torch.is_tensor(s)), 1536 + 384)

# %% [markdown]
# ## Muon (Jordan et al. 2024, *Muon: an optimizer for hidden layers*)
#
# Muon treats a weight matrix as a matrix. It keeps SGD's Nesterov momentum $B$ and replaces the update by the
# **nearest orthogonal matrix**: if $B = U S V^\top$ (the SVD), the update is $O = U V^\top$, all singular
# values set to one. Every direction the momentum moves in gets the same step size, so the rare directions
# that Adam's per-coordinate scaling cannot see are not drowned out by the dominant ones.
#
# Computing an SVD every step is too slow, so Muon approximates $UV^\top$ with five steps of a quintic
# **Newton-Schulz** iteration on $X_0 = B / \lVert B \rVert_F$ (which puts every singular value in $(0, 1]$):
#
# $$A = X X^\top, \qquad X \leftarrow a X + (b A + c A^2) X, \qquad (a, b, c) = (3.4445, -4.7750, 2.0315).$$
#
# Each step maps every singular value $\sigma$ to $a\sigma + b\sigma^3 + c\sigma^5$, a polynomial chosen to push
# small $\sigma$ up fast; after five steps they all lie near 1 (between about 0.7 and 1.2: close enough).
# The update of a $r \times c$ matrix is scaled by $\sqrt{\max(1, r/c)}$ ("original") or by
# $0.2\sqrt{\max(r, c)}$ ("match_rms_adamw", Moonshot's choice, which lets Muon reuse AdamW's learning rate).
#
# **Precision.** The reference code and `torch.optim.Muon` run the iteration in bf16. A T4 has no bf16
# tensor cores (it emulates bf16, slowly), so here the iteration runs in fp16 on a GPU and fp32 on a CPU
# (`ns_dtype: auto`). fp16 is safe: the normalisation keeps every entry of $X$ below about 1.5.

# %%
#| export
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)   # Keller Jordan's quintic, as in torch.optim.Muon

def newton_schulz(G: torch.Tensor, steps: int = 5, coefficients: tuple = NS_COEFFICIENTS, eps: float = 1e-7,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    "Approximate the orthogonal factor U V^T of a matrix G = U S V^T with a quintic Newton-Schulz iteration."
    a, b, c = coefficients
    X = G.to(dtype)
    if G.size(0) > G.size(1): X = X.T              # iterate on the wide side, so X X^T is the small product
    X = X / X.norm().clamp(min=eps)               # spectral norm <= Frobenius norm = 1
    for _ in range(steps):
        A = X @ X.T                                # (r, r), r = the shorter side
        B = torch.addmm(A, A, A, beta=b, alpha=c)  # b A + c A^2
        X = torch.addmm(X, B, X, beta=a)           # a X + (b A + c A^2) X
    if G.size(0) > G.size(1): X = X.T
    return X.to(G.dtype)


# %% [markdown]
# The singular values of a random matrix spread over two orders of magnitude; after the iteration they sit
# near one. In fp16 the result is as good as in fp32:

# %%
G = torch.randn(384, 96) @ torch.diag(torch.logspace(-2, 0, 96))    # singular values from 0.01 to ~20
for dt in (torch.float32, torch.float16):
    s = torch.linalg.svdvals(newton_schulz(G, dtype=dt).float())
    print(f"{str(dt):14s} singular values of the input {torch.linalg.svdvals(G).min():.3f}..."
          f"{torch.linalg.svdvals(G).max():.1f} -> {s.min():.3f}...{s.max():.3f}")
    assert 0.5 < s.min() and s.max() < 1.3


# %% [markdown]
# Muon is for the 2-D weights of the hidden layers only. Embeddings are lookup tables, not linear maps; the
# output head maps to a vocabulary; norms and biases are vectors. The reference recipe trains those with AdamW,
# in the same optimizer. Here every parameter group carries `use_muon`; Muon groups get the update above, the
# others get AdamW with `adamw_lr`. The learning-rate schedule sets one `lr` in every group (chapter 07), so
# the AdamW groups keep the ratio `adamw_lr / lr` fixed and follow the same schedule. Muon's weight decay is
# decoupled, as in AdamW. The state: `momentum_buffer` (Muon groups), `step`, `exp_avg`, `exp_avg_sq` (AdamW groups).

# %%
#| export
def muon_lr_scale(shape: torch.Size, adjust_lr_fn: str = "original") -> float:
    "The factor on Muon's lr for a matrix of this shape, so updates of any aspect ratio have a similar RMS."
    rows, cols = shape[:2]
    if adjust_lr_fn == "original": return math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw": return 0.2 * math.sqrt(max(rows, cols))
    raise ValueError(f"adjust_lr_fn must be 'original' or 'match_rms_adamw', not {adjust_lr_fn!r}")

def _ns_dtype(name: str, device: torch.device) -> torch.dtype:
    "The dtype of the Newton-Schulz iteration: fp16 on a GPU, fp32 on a CPU, never bf16 on a pre-Ampere GPU."
    if name == "auto": return torch.float16 if device.type == "cuda" else torch.float32
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    if dtype == torch.bfloat16 and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        warnings.warn("bf16 is emulated on this GPU (compute capability < 8.0): Muon uses fp16 instead")
        return torch.float16
    return dtype


# %%
#| export
class Muon(Optimizer):
    "Muon on groups with `use_muon=True` (2-D hidden weights), AdamW on the others, in one optimizer."
    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = 5, ns_coefficients: tuple = NS_COEFFICIENTS,
                 eps: float = 1e-7, adjust_lr_fn: str = "original", ns_dtype: str = "auto",
                 adamw_lr: float = 3e-3, adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_eps: float = 1e-8):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                        ns_steps=ns_steps, ns_coefficients=tuple(ns_coefficients), eps=eps,
                        adjust_lr_fn=adjust_lr_fn, ns_dtype=ns_dtype, adamw_lr_ratio=adamw_lr / lr if lr else 1.0,
                        betas=tuple(adamw_betas), adamw_eps=adamw_eps)
        super().__init__(params, defaults)
        for group in self.param_groups:
            group.setdefault("use_muon", all(p.ndim == 2 for p in group["params"]))
            if group["use_muon"] and any(p.ndim != 2 for p in group["params"]):
                raise ValueError("a Muon group (use_muon=True) may hold only 2-D weights")

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            if group["use_muon"]: self._muon_step(group)
            else: self._adamw_step(group)
        return loss

    def _muon_step(self, group):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None: continue
            state = self.state[p]
            if not state: state["momentum_buffer"] = torch.zeros_like(p)
            buf = state["momentum_buffer"]
            buf.lerp_(p.grad, 1 - mu)                                    # B = mu B + (1 - mu) g
            u = p.grad.lerp(buf, mu) if group["nesterov"] else buf       # Nesterov: (1 - mu) g + mu B
            o = newton_schulz(u, group["ns_steps"], group["ns_coefficients"], group["eps"],
                              _ns_dtype(group["ns_dtype"], p.device))
            p.mul_(1 - lr * wd)                                          # decoupled weight decay
            p.add_(o, alpha=-lr * muon_lr_scale(p.shape, group["adjust_lr_fn"]))

    def _adamw_step(self, group):
        lr = group["lr"] * group["adamw_lr_ratio"]     # follows the schedule at a fixed ratio to Muon's lr
        (beta1, beta2), eps, wd = group["betas"], group["adamw_eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None: continue
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
            state["step"] += 1
            t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
            p.mul_(1 - lr * wd)
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))


# %% [markdown]
# The reference is PyTorch's own `torch.optim.Muon` (recent PyTorch has it) for the hidden matrices plus
# `torch.optim.AdamW` for the rest: two optimizers stepping together, as its documentation shows. Ours with
# `ns_dtype="bfloat16"` does the same arithmetic and agrees to the bit; in fp32 and fp16 it differs from the
# bf16 reference by the rounding of bf16 (a few percent of the parameters' size after 100 steps) and
# reaches the same loss.

# %%
#| hide
def _split(model):
    "Hidden matrices of the reference problem (not the output layer) for Muon; the rest for AdamW."
    hidden = [p for n, p in model.named_parameters() if p.ndim == 2 and not n.startswith("5.")]
    other = [p for n, p in model.named_parameters() if not (p.ndim == 2 and not n.startswith("5."))]
    return hidden, other

class _TwoOptimizers:
    "torch.optim.Muon and torch.optim.AdamW stepping together (the reference)."
    def __init__(self, *opts): self.opts = opts
    def zero_grad(self, set_to_none=True): [o.zero_grad(set_to_none) for o in self.opts]
    def step(self): [o.step() for o in self.opts]

def _torch_muon(model, wd=0.01):
    hidden, other = _split(model)
    return _TwoOptimizers(torch.optim.Muon(hidden, lr=0.02, weight_decay=wd),
                          torch.optim.AdamW(other, lr=3e-3, betas=(0.9, 0.95), weight_decay=wd, foreach=False))

def _our_muon(model, ns_dtype, wd=0.01):
    hidden, other = _split(model)
    return Muon([dict(params=hidden, use_muon=True), dict(params=other, use_muon=False)], lr=0.02,
                weight_decay=wd, adamw_lr=3e-3, ns_dtype=ns_dtype)


# %%
ref_losses, ref_params = optimizer_trajectory(_torch_muon)
for ns_dtype in ("bfloat16", "float32", "float16"):
    losses, params = optimizer_trajectory(lambda m: _our_muon(m, ns_dtype))
    rel = ((params - ref_params).norm() / ref_params.norm()).item()
    print(f"Muon ns_dtype={ns_dtype:8s}: loss {losses[-1]:.4f} (torch {ref_losses[-1]:.4f}), "
          f"relative parameter difference {rel:.1e}")
    if ns_dtype == "bfloat16": test_close(rel, 0, eps=1e-7)
    else: assert rel < 0.05 and abs(losses[-1] - ref_losses[-1]) < 0.01


# %% [markdown]
# ## Schedule-free AdamW (Defazio et al. 2024, *The Road Less Scheduled*)
#
# A learning-rate schedule needs to know when training ends. Schedule-free methods do without one: they keep
# two sequences, $z$ (plain AdamW steps at a constant rate) and $x$ (a running average of the $z$'s), and take
# gradients at an interpolation $y$ of the two:
#
# $$y_t = (1-\beta_1) z_t + \beta_1 x_t, \qquad z_{t+1} = z_t - \gamma\,\frac{\nabla L(y_t)}{\sqrt{\hat v_t}+\epsilon}
#   - \gamma\lambda y_t, \qquad x_{t+1} = (1-c_{t+1})\, x_t + c_{t+1} z_{t+1},$$
#
# with averaging weights $c_{t+1} = \gamma_{\max}^2 / \sum_{i \le t+1} \gamma_{\max,i}^2$ (uniform after warmup).
# Averaging the iterates does what decaying the learning rate would, at every step at once, so you can stop
# whenever you like. The model's parameters hold $y$ during training; **evaluate at $x$**: call
# `optimizer.eval()` before evaluating or saving a model to use, and `optimizer.train()` before training
# again (`set_train_mode` does either, and nothing for other optimizers). Its state is `z` and `exp_avg_sq`
# per parameter and, per group, the step `k`, the weight sum and the largest lr seen, all in `state_dict`.
# It starts in train mode, so a loop that never calls `.train()` still trains correctly. Use it with a
# constant schedule (plus warmup) from chapter 07.

# %%
#| export
class ScheduleFreeAdamW(Optimizer):
    "Schedule-free AdamW (Defazio et al. 2024); `.eval()` moves the weights to the average x, `.train()` back to y."
    def __init__(self, params, lr: float = 2.5e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, warmup_steps=warmup_steps,
                        r=r, weight_lr_power=weight_lr_power, k=0, weight_sum=0.0, lr_max=-1.0, train_mode=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def eval(self):
        "Set the parameters to x = (y - (1 - b1) z) / b1, the average to evaluate."
        for group in self.param_groups:
            if group["train_mode"]:
                for p in group["params"]:
                    if "z" in self.state[p]: p.lerp_(self.state[p]["z"], 1 - 1 / group["betas"][0])
                group["train_mode"] = False

    @torch.no_grad()
    def train(self):
        "Set the parameters back to y = (1 - b1) z + b1 x, where gradients are taken."
        for group in self.param_groups:
            if not group["train_mode"]:
                for p in group["params"]:
                    if "z" in self.state[p]: p.lerp_(self.state[p]["z"], 1 - group["betas"][0])
                group["train_mode"] = True

    @torch.no_grad()
    def step(self, closure=None):
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError("ScheduleFreeAdamW.step() called in eval mode: call optimizer.train() first")
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            (beta1, beta2), k = group["betas"], group["k"]
            warm = (k + 1) / group["warmup_steps"] if k < group["warmup_steps"] else 1.0
            lr = group["lr"] * warm
            group["lr_max"] = lr_max = max(lr, group["lr_max"])
            weight = (k + 1) ** group["r"] * lr_max ** group["weight_lr_power"]
            group["weight_sum"] += weight
            ckp1 = weight / group["weight_sum"] if group["weight_sum"] else 0.0     # c_{t+1}
            for y in group["params"]:
                if y.grad is None: continue
                state = self.state[y]
                if not state:
                    state["z"] = y.detach().clone()
                    state["exp_avg_sq"] = torch.zeros_like(y)
                z, v = state["z"], state["exp_avg_sq"]
                v.mul_(beta2).addcmul_(y.grad, y.grad, value=1 - beta2)
                denom = v.div(1 - beta2 ** (k + 1)).sqrt_().add_(group["eps"])
                g = y.grad.div(denom)                                   # the Adam-normalised gradient
                if group["weight_decay"]: g.add_(y, alpha=group["weight_decay"])   # decay taken at y
                y.lerp_(z, ckp1)                                        # x and y updated together, in place:
                y.add_(g, alpha=lr * (beta1 * (1 - ckp1) - 1))          # y_{t+1} from y_t, z_t and g
                z.sub_(g, alpha=lr)                                     # z_{t+1} = z_t - lr g
            group["k"] = k + 1
        return loss


# %% [markdown]
# The reference is Meta's `schedulefree` package (`AdamWScheduleFree`, `foreach=False`). The trajectory helper
# calls `.train()` before and `.eval()` after, so the parameters compared are the averages $x$:

# %%
kw = dict(lr=1e-2, weight_decay=0.1, warmup_steps=10)
diff, ours, ref = compare(lambda m: ScheduleFreeAdamW(m.parameters(), **kw),
                          lambda m: schedulefree.AdamWScheduleFree(m.parameters(), foreach=False, **kw))
print(f"schedule-free AdamW: loss {ours:.4f} (schedulefree {ref:.4f}), max |diff| {diff:.1e}")
test_close(diff, 0, eps=1e-6)

# %% [markdown]
# `eval()` and `train()` really move the weights, and undo each other (to rounding):

# %%
model, x, y = reference_problem()
opt = ScheduleFreeAdamW(model.parameters(), lr=1e-2)
for _ in range(20):
    opt.zero_grad(); (model(x) - y).pow(2).mean().backward(); opt.step()
w_train = model[0].weight.detach().clone()
opt.eval(); w_eval = model[0].weight.detach().clone()
opt.train()
print(f"|y - x| = {(w_train - w_eval).abs().max():.2e}, |y - train(eval(y))| = "
      f"{(w_train - model[0].weight).abs().max():.1e}")
assert (w_train - w_eval).abs().max() > 1e-3
test_close(model[0].weight.detach(), w_train, eps=1e-6)
opt.eval(); test_fail(lambda: opt.step(), contains="eval mode")

# %% [markdown]
# ## Seeing the update rules
#
# Tests say the arithmetic is right; pictures say what it does. Three views: momentum as a moving average, paths
# on two small 2-D problems, and what Newton-Schulz does to a gradient's singular values.
#
# ### Momentum is an exponential moving average
#
# Adam's $m_t = \beta m_{t-1} + (1-\beta) g_t$ (and, up to a factor $1/(1-\beta)$, SGD's momentum buffer) is an
# exponential moving average: it weighs the gradient of $k$ steps ago by $\beta^k$, so it remembers about
# $1/(1-\beta)$ steps. On a noisy signal that changes direction halfway:

# %%
gen = torch.Generator().manual_seed(0)
signal = torch.cat([torch.ones(100), -torch.ones(100)]) + torch.randn(200, generator=gen)
def ewma(xs, beta, debias=True):
    "The exponential moving average of a sequence; `debias` divides by 1 - beta^t, as Adam does."
    m, out = 0.0, []
    for t, x in enumerate(xs, 1):
        m = beta * m + (1 - beta) * float(x)
        out.append(m / (1 - beta ** t) if debias else m)
    return out
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(signal, ".", color="0.75", label="gradient (noisy)")
for beta in (0.5, 0.9, 0.99):
    ax.plot(ewma(signal, beta), label=f"beta {beta} (remembers ~{1 / (1 - beta):.0f} steps)")
ax.set(xlabel="step", ylabel="value"); ax.legend(fontsize=8); plt.tight_layout(); plt.show()
test_close(ewma([2.0] * 5, 0.9), [2.0] * 5)                      # debiased: a constant from the first step
test_close(ewma([2.0], 0.9, debias=False), [0.2])                # without: biased toward the zero start
late = [ewma(signal, b)[150] for b in (0.5, 0.9, 0.99)]
assert late[0] < 0 and late[1] < 0 and late[2] > late[1]          # 0.99 still remembers the first half


# %% [markdown]
# What to see: $\beta = 0.5$ follows the noise, 0.9 is smooth and turns within about ten steps, 0.99 is
# smoothest but still points the old way 50 steps after the change. That is the trade-off behind Adam's
# $\beta_1 = 0.9$ and $\beta_2 = 0.95$-$0.999$ and Lion's two betas.
#
# ### Paths on two valleys
#
# Two classic 2-D problems, started at the same point: an ill-conditioned quadratic
# $f(x, y) = \tfrac12 (x^2 + 25 y^2)$ (steep across, shallow along) and a Rosenbrock-like banana valley
# $f(x, y) = (1 - x)^2 + 5\,(y - x^2)^2$ (minimum at (1, 1)). `toy_path` puts the point in one
# `nn.Parameter` of shape (2,) (for Muon, a (1, 2) matrix: a 1 x 2 matrix's orthogonal factor is its direction,
# so Muon moves a fixed length along normalised momentum) and calls the optimizer's own `step`.

# %%
def quadratic(p): return 0.5 * (p[..., 0] ** 2 + 25 * p[..., 1] ** 2).sum()
def banana(p): return ((1 - p[..., 0]) ** 2 + 5 * (p[..., 1] - p[..., 0] ** 2) ** 2).sum()

def toy_path(make_optimizer, loss_fn, start=(-1.5, 1.0), steps=60, matrix=False):
    "Positions of a 2-D point trained by `make_optimizer([param])` on `loss_fn`, step by step: (steps + 1, 2)."
    p = nn.Parameter(torch.tensor([start], dtype=torch.float64) if matrix else torch.tensor(start, dtype=torch.float64))
    opt, path = make_optimizer([p]), [p.detach().flatten().clone()]
    for _ in range(steps):
        opt.zero_grad(); loss_fn(p).backward(); opt.step()
        path.append(p.detach().flatten().clone())
    return torch.stack(path)

TOY_OPTIMIZERS = {
    "SGD": (lambda ps: SGD(ps, lr=0.035), False),
    "momentum 0.8": (lambda ps: SGD(ps, lr=0.035, momentum=0.8), False),
    "Adam": (lambda ps: Adam(ps, lr=0.1, betas=(0.9, 0.999)), False),
    "Lion": (lambda ps: Lion(ps, lr=0.05, betas=(0.9, 0.99)), False),
    "Muon (1x2 matrix)": (lambda ps: Muon([dict(params=ps, use_muon=True)], lr=0.05, ns_dtype="float32"), True),
}

# %% [markdown]
# The test first: a path is exactly what calling the optimizer's `step` by hand gives, for every optimizer
# (so the pictures show the chapter's code, not a re-implementation):

# %%
for name, (make, matrix) in TOY_OPTIMIZERS.items():
    path = toy_path(make, quadratic, steps=10, matrix=matrix)
    p = nn.Parameter(torch.tensor([[-1.5, 1.0]] if matrix else [-1.5, 1.0], dtype=torch.float64))
    opt = make([p])
    for k in range(10):                                   # the same steps, by hand
        p.grad = None; quadratic(p).backward(); opt.step()
        assert torch.equal(p.detach().flatten(), path[k + 1]), name
test_close(toy_path(TOY_OPTIMIZERS["SGD"][0], quadratic, steps=1)[1], torch.tensor([-1.5 + 0.035 * 1.5, 1.0 - 0.035 * 25]).double())

# %%
fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
finals = {}
for ax, (title, fn, steps, lim) in zip(axs, [("ill-conditioned quadratic", quadratic, 60, (-1.7, 1.2, -1.2, 1.2)),
                                             ("banana valley (minimum at 1, 1)", banana, 150, (-1.7, 1.5, -0.6, 2.2))]):
    xs, ys = torch.meshgrid(torch.linspace(*lim[:2], 200), torch.linspace(*lim[2:], 200), indexing="xy")
    grid = torch.stack([xs, ys], -1)
    z = (0.5 * (grid[..., 0] ** 2 + 25 * grid[..., 1] ** 2) if fn is quadratic
         else (1 - grid[..., 0]) ** 2 + 5 * (grid[..., 1] - grid[..., 0] ** 2) ** 2)
    ax.contour(xs, ys, z.log1p(), levels=25, colors="0.8", linewidths=0.6)
    for name, (make, matrix) in TOY_OPTIMIZERS.items():
        path = toy_path(make, fn, steps=steps, matrix=matrix)
        finals[title, name] = fn(path[-1]).item()
        ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1, label=f"{name}: f = {finals[title, name]:.2g}")
    ax.set(title=f"{title}, {steps} steps", xlim=lim[:2], ylim=lim[2:]); ax.legend(fontsize=7)
plt.tight_layout(); plt.show()
q = lambda name: finals["ill-conditioned quadratic", name]
assert q("momentum 0.8") < q("SGD")          # momentum crosses the shallow direction faster

# %% [markdown]
# What to see. On the quadratic, plain SGD's rate is capped by the steep direction (at $\eta > 2/25$ it would
# diverge there), so it crawls along the shallow one; momentum builds speed along the shallow direction and
# overshoots across the steep one. Adam rescales each coordinate by its own gradient size, so both directions
# move at about the same speed: a nearly straight diagonal start. Lion moves every coordinate by exactly $\pm\eta$:
# 45-degree steps and, at a constant rate, a zig-zag around the minimum of size $\eta$ (why Lion needs a decaying
# rate). Muon's update of a 1 x 2 matrix has length $\eta$ whatever the gradient: steady steps along the
# momentum's direction and, like Lion, a final bounce of size $\eta$. In the banana valley the adaptive methods
# turn along the curved floor; SGD needs a small rate for the steep walls and is still far from (1, 1).
# Nothing here ranks optimizers for language models: two dimensions have no noise and no matrices.
#
# ### What Newton-Schulz does to a gradient's singular values
#
# Muon's promise is that every direction of a weight matrix's update gets the same step. A real gradient shows
# why that changes something: the gradient of one of the smoke model's matrices has a few large singular values
# and a tail of smaller ones. After Newton-Schulz they all sit near one, except a direction the gradient does
# not have at all: the matrix's input is LayerNorm's output, whose entries sum to zero, so the gradient has one
# singular value of exactly zero, and the iteration (a polynomial with no constant term) leaves zero at zero:

# %%
#| hide
import dataclasses

from neoxcourse.model import GPTNeoX as _GPTNeoX    # the smoke model (chapter 04), for a real gradient

# %%
torch.manual_seed(0)
_m = _GPTNeoX(dataclasses.replace(cfg.model, vocab_size=256))
_x = torch.randint(0, 256, (8, 64), generator=torch.Generator().manual_seed(0))
torch.nn.functional.cross_entropy(_m(_x[:, :-1]).flatten(0, 1), _x[:, 1:].flatten()).backward()
G = _m.gpt_neox.layers[0].mlp.dense_h_to_4h.weight.grad          # (4h, h): a hidden matrix's gradient
before = torch.linalg.svdvals(G); after = torch.linalg.svdvals(newton_schulz(G))
fig, ax = plt.subplots(figsize=(7, 3))
ax.semilogy(before / before.max(), "o-", ms=3, label="gradient (scaled to max 1)")
ax.semilogy(after, "s-", ms=3, label="after 5 Newton-Schulz steps")
ax.set(xlabel="singular value index", ylabel="singular value", title=f"layer 0 dense_h_to_4h gradient {tuple(G.shape)}")
ax.legend(); plt.tight_layout(); plt.show()
live = before > 1e-4 * before.max()            # LayerNorm's output has zero mean: one direction is exactly 0
print(f"gradient: {int((~live).sum())} zero singular value(s); the others span {before[live].max() / before[live].min():.1f}x; "
      f"after: {after[live].min():.2f} to {after[live].max():.2f} (the zero stays {after[~live].max():.1e})")
assert (~live).sum() == 1 and before[live].max() / before[live].min() > 5
assert 0.5 < after[live].min() and after[live].max() < 1.3 and after[~live].max() < 1e-3


# %% [markdown]
# ## The same update, fewer kernels: multi-tensor steps
#
# Each optimizer above walks its parameters one at a time, and every line of its loop is one small GPU
# kernel per tensor: the T4 model has about 80 tensors, so one AdamW step launches some 700 kernels and reads
# each moment several times. PyTorch's `torch._foreach_*` functions do one operation on a whole *list* of
# tensors at once (`torch._foreach_lerp_(ms, gs, 1 - beta1)` is `m.lerp_(g, 1 - beta1)` for every pair), which
# is what `torch.optim.AdamW(foreach=True)` does. The per-parameter classes stay the lesson; the `Foreach`
# versions below do the same arithmetic line for line, so their results match, and their `state_dict` is the
# same, so a run can resume from either into either. `neoxcourse train` uses them on a GPU (chapter 05).

# %%
#| export
def _with_grads(optimizer: Optimizer, group: dict) -> list:
    "The parameters of `group` that have a gradient (the only ones a step touches)."
    return [p for p in group["params"] if p.grad is not None]

def _by_step(optimizer: Optimizer, params: list) -> dict:
    "Parameters bucketed by their step count, so each bucket shares one bias correction."
    buckets = {}
    for p in params: buckets.setdefault(optimizer.state[p]["step"], []).append(p)
    return buckets

def _adam_update(ps, gs, ms, vs, t, lr, beta1, beta2, eps, wd, decoupled):
    "Adam's update of tensor lists in place: the per-parameter arithmetic, one kernel per line for all tensors."
    if wd != 0:
        if decoupled: torch._foreach_mul_(ps, 1 - lr * wd)                  # AdamW
        else: gs = torch._foreach_add(gs, ps, alpha=wd)                      # Adam + L2
    torch._foreach_lerp_(ms, gs, 1 - beta1)                                  # m = b1 m + (1 - b1) g
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)                     # v = b2 v + (1 - b2) g^2
    denom = torch._foreach_sqrt(vs)
    torch._foreach_div_(denom, math.sqrt(1 - beta2 ** t))
    torch._foreach_add_(denom, eps)                                          # sqrt(v_hat) + eps
    torch._foreach_addcdiv_(ps, ms, denom, value=-lr / (1 - beta1 ** t))     # - lr m_hat / denom



# %% [markdown]
# Adam's update on lists is the per-parameter code with each line lifted to a list; parameters that have
# taken a different number of steps (a tensor that had no gradient once) are bucketed by step count, so each
# bucket shares its bias correction. The classes for every optimizer of this chapter:

# %%
#| export
class ForeachSGD(SGD):
    "SGD with every group updated by multi-tensor (`torch._foreach_*`) kernels: the same arithmetic as SGD."
    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            ps = _with_grads(self, group)
            if not ps: continue
            gs = [p.grad for p in ps]
            if wd != 0: gs = torch._foreach_add(gs, ps, alpha=wd)            # L2 through the gradient
            if mu != 0:
                old = [(self.state[p]["momentum_buffer"], g) for p, g in zip(ps, gs)
                       if "momentum_buffer" in self.state[p]]
                for p, g in zip(ps, gs):                                     # first step: b = g
                    if "momentum_buffer" not in self.state[p]: self.state[p]["momentum_buffer"] = g.clone()
                if old:
                    torch._foreach_mul_([b for b, _ in old], mu)
                    torch._foreach_add_([b for b, _ in old], [g for _, g in old])   # b = mu b + g
                bs = [self.state[p]["momentum_buffer"] for p in ps]
                gs = torch._foreach_add(gs, bs, alpha=mu) if group["nesterov"] else bs
            torch._foreach_add_(ps, gs, alpha=-lr)
        return loss

class ForeachAdam(Adam):
    "Adam (and AdamW) with every group updated by multi-tensor kernels: the same arithmetic as Adam."
    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in _with_grads(self, group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
            for t, ps in _by_step(self, _with_grads(self, group)).items():
                _adam_update(ps, [p.grad for p in ps], [self.state[p]["exp_avg"] for p in ps],
                             [self.state[p]["exp_avg_sq"] for p in ps], t, lr, beta1, beta2, eps, wd,
                             group["decoupled_weight_decay"])
        return loss

class ForeachAdamW(AdamW):
    "AdamW with the multi-tensor step of `ForeachAdam`."
    step = ForeachAdam.step

class ForeachLion(Lion):
    "Lion with every group updated by multi-tensor kernels: the same arithmetic as Lion."
    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            ps = _with_grads(self, group)
            if not ps: continue
            for p in ps:
                if not self.state[p]: self.state[p]["exp_avg"] = torch.zeros_like(p)
            gs, ms = [p.grad for p in ps], [self.state[p]["exp_avg"] for p in ps]
            cs = torch._foreach_lerp(ms, gs, 1 - beta1)      # c = b1 m + (1 - b1) g
            torch._foreach_mul_(ps, 1 - lr * wd)             # decoupled weight decay
            torch._foreach_sign_(cs)
            torch._foreach_add_(ps, cs, alpha=-lr)           # every coordinate moves by exactly lr
            torch._foreach_lerp_(ms, gs, 1 - beta2)          # m = b2 m + (1 - b2) g
        return loss



# %% [markdown]
# Adafactor computes two norms per tensor; the per-parameter class reads each to the CPU with `.item()`, which
# makes the GPU wait. Its multi-tensor version keeps them on the device (so it agrees to rounding, not to the
# bit). Muon's multi-tensor version stacks same-shape matrices and runs one batched Newton-Schulz per shape.

# %%
#| export
class ForeachAdafactor(Adafactor):
    "Adafactor with multi-tensor kernels for its elementwise work and no host sync (norms stay on the device)."
    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            lr, wd, d = group["lr"], group["weight_decay"], group["d"]
            for p in _with_grads(self, group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    if p.dim() > 1:
                        state["row_var"] = p.grad.new_zeros(p.shape[:-1] + (1,))              # (..., n, 1)
                        state["col_var"] = p.grad.new_zeros(p.shape[:-2] + (1, p.shape[-1]))  # (..., 1, m)
                    else: state["variance"] = torch.zeros_like(p.grad)
                state["step"] += 1
            for t, ps in _by_step(self, _with_grads(self, group)).items():
                gs = [p.grad for p in ps]
                one_minus_beta2, rho = t ** group["beta2_decay"], min(lr, 1 / math.sqrt(t))
                sizes = torch.tensor([math.sqrt(p.numel()) for p in ps], device=ps[0].device)
                rms = torch.stack(torch._foreach_norm(ps)).float() / sizes      # RMS(p), before the decay
                alphas = rms.clamp(min=group["eps2"]) * rho
                if wd != 0: torch._foreach_mul_(ps, 1 - lr * wd)
                vs = []
                for p, g in zip(ps, gs):
                    state, eps1 = self.state[p], torch.finfo(p.dtype).eps if group["eps1"] is None else group["eps1"]
                    if g.dim() > 1:
                        r, c = state["row_var"], state["col_var"]
                        r.lerp_(g.square().mean(dim=-1, keepdim=True), one_minus_beta2)
                        c.lerp_(g.square().mean(dim=-2, keepdim=True), one_minus_beta2)
                        vs.append((r @ c).div_(r.mean(dim=-2, keepdim=True).clamp_(min=eps1)))
                    else:
                        state["variance"].lerp_(g.square(), one_minus_beta2)
                        vs.append(state["variance"].clone())
                    vs[-1].clamp_(min=eps1 * eps1)
                torch._foreach_rsqrt_(vs)
                torch._foreach_mul_(vs, gs)                                          # U = g / sqrt(V)
                clips = (torch.stack(torch._foreach_norm(vs)).float() / (sizes * d)).clamp(min=1.0)
                scales = (-alphas / clips).to(ps[0].dtype).unbind()
                torch._foreach_mul_(vs, scales)
                torch._foreach_add_(ps, vs)
        return loss

def newton_schulz_batched(G: torch.Tensor, steps: int = 5, coefficients: tuple = NS_COEFFICIENTS,
                          eps: float = 1e-7, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    "`newton_schulz` on a stack of same-shape matrices (N, r, c) at once: a few batched matmuls, not N."
    a, b, c = coefficients
    X = G.to(dtype)
    tall = G.size(-2) > G.size(-1)
    if tall: X = X.mT
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        A = X @ X.mT                                    # (N, r, r)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)     # b A + c A^2
        X = torch.baddbmm(X, B, X, beta=a)              # a X + (b A + c A^2) X
    if tall: X = X.mT
    return X.to(G.dtype)

class ForeachMuon(Muon):
    "Muon with multi-tensor momentum and decay, one batched Newton-Schulz per matrix shape, AdamW by lists."
    def _muon_step(self, group):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        ps = _with_grads(self, group)
        if not ps: return
        for p in ps:
            if not self.state[p]: self.state[p]["momentum_buffer"] = torch.zeros_like(p)
        gs, bufs = [p.grad for p in ps], [self.state[p]["momentum_buffer"] for p in ps]
        torch._foreach_lerp_(bufs, gs, 1 - mu)                                   # B = mu B + (1 - mu) g
        us = torch._foreach_lerp(gs, bufs, mu) if group["nesterov"] else bufs
        torch._foreach_mul_(ps, 1 - lr * wd)                                     # decoupled weight decay
        shapes = {}
        for p, u in zip(ps, us): shapes.setdefault(tuple(p.shape), []).append((p, u))
        for shape, pairs in shapes.items():
            o = newton_schulz_batched(torch.stack([u for _, u in pairs]), group["ns_steps"],
                                      group["ns_coefficients"], group["eps"],
                                      _ns_dtype(group["ns_dtype"], pairs[0][0].device))
            torch._foreach_add_([p for p, _ in pairs], list(o.unbind(0)),
                                alpha=-lr * muon_lr_scale(torch.Size(shape), group["adjust_lr_fn"]))

    def _adamw_step(self, group):
        lr = group["lr"] * group["adamw_lr_ratio"]
        (beta1, beta2), eps, wd = group["betas"], group["adamw_eps"], group["weight_decay"]
        for p in _with_grads(self, group):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
            state["step"] += 1
        for t, ps in _by_step(self, _with_grads(self, group)).items():
            _adam_update(ps, [p.grad for p in ps], [self.state[p]["exp_avg"] for p in ps],
                         [self.state[p]["exp_avg_sq"] for p in ps], t, lr, beta1, beta2, eps, wd, True)

class ForeachScheduleFreeAdamW(ScheduleFreeAdamW):
    "Schedule-free AdamW with every group updated by multi-tensor kernels: the same arithmetic."
    @torch.no_grad()
    def step(self, closure=None):
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError("ScheduleFreeAdamW.step() called in eval mode: call optimizer.train() first")
        loss = _evaluate_closure(closure)
        for group in self.param_groups:
            (beta1, beta2), k = group["betas"], group["k"]
            warm = (k + 1) / group["warmup_steps"] if k < group["warmup_steps"] else 1.0
            lr = group["lr"] * warm
            group["lr_max"] = lr_max = max(lr, group["lr_max"])
            weight = (k + 1) ** group["r"] * lr_max ** group["weight_lr_power"]
            group["weight_sum"] += weight
            ckp1 = weight / group["weight_sum"] if group["weight_sum"] else 0.0
            ys = _with_grads(self, group)
            for y in ys:
                if not self.state[y]:
                    self.state[y]["z"] = y.detach().clone()
                    self.state[y]["exp_avg_sq"] = torch.zeros_like(y)
            if ys:
                gs = [y.grad for y in ys]
                zs, vs = [self.state[y]["z"] for y in ys], [self.state[y]["exp_avg_sq"] for y in ys]
                torch._foreach_mul_(vs, beta2)
                torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
                denom = torch._foreach_div(vs, 1 - beta2 ** (k + 1))
                torch._foreach_sqrt_(denom)
                torch._foreach_add_(denom, group["eps"])
                gs = torch._foreach_div(gs, denom)                               # Adam-normalised gradient
                if group["weight_decay"]: torch._foreach_add_(gs, ys, alpha=group["weight_decay"])
                torch._foreach_lerp_(ys, zs, ckp1)
                torch._foreach_add_(ys, gs, alpha=lr * (beta1 * (1 - ckp1) - 1))
                torch._foreach_sub_(zs, gs, alpha=lr)
            group["k"] = k + 1
        return loss

FOREACH_VERSIONS = {SGD: ForeachSGD, Adam: ForeachAdam, AdamW: ForeachAdamW, Lion: ForeachLion,
                    Adafactor: ForeachAdafactor, Muon: ForeachMuon, ScheduleFreeAdamW: ForeachScheduleFreeAdamW}


# %% [markdown]
# Over 100 steps of the reference problem, each multi-tensor optimizer ends at the same parameters as its
# per-parameter lesson: bit for bit where the arithmetic is identical, to float rounding for Adafactor (norms
# on the device) and Muon (batched matrix products).

# %%
FOREACH_KW = {SGD: dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
              Adam: dict(lr=1e-2, weight_decay=0.1), AdamW: dict(lr=1e-2, weight_decay=0.1),
              Lion: dict(lr=1e-3, weight_decay=0.1), Adafactor: dict(lr=1e-2, weight_decay=0.01),
              ScheduleFreeAdamW: dict(lr=1e-2, weight_decay=0.1, warmup_steps=10)}
for cls, kw in FOREACH_KW.items():
    diff, lesson, fast = compare(lambda m: cls(m.parameters(), **kw),
                                 lambda m: FOREACH_VERSIONS[cls](m.parameters(), **kw), steps=100)
    print(f"{cls.__name__:18s} loss {lesson:.5f} (foreach {fast:.5f}), max |diff| {diff:.1e}")
    if cls is Adafactor: test_close(diff, 0, eps=1e-5)
    else: test_eq(diff, 0.0)
diff, lesson, fast = compare(lambda m: _our_muon(m, "float32"),
                             lambda m: ForeachMuon(_our_muon(m, "float32").param_groups, lr=0.02,
                                                   weight_decay=0.01, adamw_lr=3e-3, ns_dtype="float32"),
                             steps=100)
print(f"Muon               loss {lesson:.5f} (foreach {fast:.5f}), max |diff| {diff:.1e}")
test_close(diff, 0, eps=1e-4)

# %% [markdown]
# ## Which parameters get weight decay
#
# Weight decay pulls weights toward zero. For a matrix that is a useful prior (small weights, smooth
# functions); for a LayerNorm gain it is wrong (the gain's natural value is 1, not 0), and for a bias it
# buys nothing. So norms and biases go in a group with `weight_decay=0`, the usual practice (GPT-NeoX's
# `get_params_for_weight_decay_optimization`, nanoGPT, Pythia). Every parameter of our model with two or
# more dimensions is a matrix of a linear map or an embedding table; every 1-D parameter is a norm or a bias.
#
# **Embeddings** are the judgment call. GPT-NeoX and nanoGPT decay them, and so do we: a file trains the same
# model here and under GPT-NeoX, and decoupled decay keeps the rows of rare tokens small (their logits stay
# near neutral rather than drifting). The cost is that a token seen rarely is also shrunk between its
# appearances. Some recipes (T5, some Muon speedruns) exclude embeddings; `decay_embeddings=False` does that.
# `param_groups` keeps embeddings (and the output head) in a group of their own, because Muon will need to
# tell them from the hidden matrices.

# %%
#| export
EMBEDDING_NAMES = ("embed_in", "embed_out", "lm_head", "wte", "wpe")   # input tables and output heads

def _is_embedding(name: str, module: nn.Module | None) -> bool:
    "True for embedding tables and output heads, found by module type or GPT-NeoX / GPT-2 names."
    return isinstance(module, nn.Embedding) or any(part in EMBEDDING_NAMES for part in name.split("."))

def _named_trainable(model: nn.Module):
    "(name, parameter, owning module) for every trainable parameter, each shared tensor once."
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        if p.requires_grad: yield name, p, modules.get(name.rpartition(".")[0])

def param_groups(model: nn.Module, weight_decay: float, decay_embeddings: bool = True) -> list[dict]:
    "Groups 'decay' (hidden matrices), 'embeddings' (tables and output head) and 'no_decay' (norms, biases)."
    decay, embed, no_decay = [], [], []
    for name, p, module in _named_trainable(model):
        if p.ndim < 2: no_decay.append(p)
        elif p.ndim == 2 and not _is_embedding(name, module): decay.append(p)
        else: embed.append(p)
    groups = [dict(params=decay, weight_decay=weight_decay, group_name="decay"),
              dict(params=embed, weight_decay=weight_decay if decay_embeddings else 0.0, group_name="embeddings"),
              dict(params=no_decay, weight_decay=0.0, group_name="no_decay")]
    return [g for g in groups if g["params"]]


# %% [markdown]
# Muon needs one more fact per group: whether it holds hidden matrices (Muon's update) or not (AdamW's). The
# groups above already say so by their names, so `muon_groups` only adds `use_muon`. Groups made some other
# way must carry `use_muon` themselves: from bare tensors, an embedding cannot be told from a hidden matrix.

# %%
#| export
def muon_groups(groups: list) -> list[dict]:
    "Mark the groups of `param_groups` for Muon: 'decay' (hidden matrices) gets `use_muon=True`, the rest AdamW."
    out = []
    for g in groups:
        g = dict(g) if isinstance(g, dict) else dict(params=[g])
        if "use_muon" not in g:
            if g.get("group_name") not in ("decay", "embeddings", "no_decay"):
                raise ValueError("Muon cannot tell hidden matrices from embeddings in bare parameters: pass the "
                                 "model to build_optimizer, or groups from param_groups(model, ...), or set 'use_muon'")
            g["use_muon"] = g["group_name"] == "decay"
        out.append(g)
    return out


# %% [markdown]
# The smoke model of chapter 04 shows the split. Its parameter names are those of `transformers`'
# `GPTNeoXForCausalLM` (`gpt_neox.embed_in`, `...attention.query_key_value`, and the head `lm_head`, called
# `embed_out` in GPT-NeoX's own checkpoints; both names are recognised).

# %%
#| hide
from neoxcourse.model import GPTNeoX

# %%
torch.manual_seed(cfg.training.seed)
model = GPTNeoX(cfg.model)
names = {id(p): n for n, p in model.named_parameters()}
for g in muon_groups(param_groups(model, 0.1)):
    ps = g["params"]
    print(f"{g['group_name']:10s} wd={g['weight_decay']:<4} use_muon={g['use_muon']!s:5s} "
          f"{sum(p.numel() for p in ps):>9,} parameters, e.g. {', '.join(names[id(p)] for p in ps[:2])}")

# %%
groups = param_groups(model, 0.1)
test_eq([g["group_name"] for g in groups], ["decay", "embeddings", "no_decay"])
test_eq([g["weight_decay"] for g in groups], [0.1, 0.1, 0.0])
test_eq(sum(p.numel() for g in groups for p in g["params"]), sum(p.numel() for p in model.parameters()))
test_eq(all(p.ndim == 1 for p in groups[2]["params"]), True)
group_names = {g["group_name"]: {names[id(p)] for p in g["params"]} for g in groups}
test_eq(group_names["embeddings"], {"gpt_neox.embed_in.weight", next(n for n in names.values() if n.startswith(("lm_head", "embed_out")))})
assert all(n.endswith(("query_key_value.weight", "dense.weight", "dense_h_to_4h.weight", "dense_4h_to_h.weight"))
           for n in group_names["decay"])
test_eq([g["weight_decay"] for g in param_groups(model, 0.1, decay_embeddings=False)], [0.1, 0.0, 0.0])
test_eq([g["use_muon"] for g in muon_groups(groups)], [True, False, False])
test_fail(lambda: muon_groups(list(model.parameters())), contains="pass the model")


# %% [markdown]
# ## One registry, keyed by GPT-NeoX's names
#
# A config chooses its optimizer with `optimizer: {type: ..., params: {...}}`, as in GPT-NeoX. The registry
# maps each name (matched case-insensitively) to an `OptimizerSpec`: the class, which config fields it takes,
# which `optimizer.params` it accepts (with their defaults), how the model's parameters are grouped, and how
# many bytes of state it keeps per parameter (what chapter 04's memory estimate adds for the optimizer).
# The names are the ones appendix A1's config accepts (`OPTIMIZER_TYPES`, checked when a file is read);
# adding an optimizer to the course is one `register_optimizer` call, which adds its name there too.
#
# | `type` | what it builds | `optimizer.params` besides `lr`, `betas`, `eps` | state bytes / parameter |
# | --- | --- | --- | --- |
# | `sgd` | `SGD`, L2 decay | `momentum`, `nesterov` | 4 (the momentum) |
# | `adam` | GPT-NeoX's Adam: decoupled decay (AdamW) | `decoupled_weight_decay` (true) | 8 (two moments) |
# | `adam_l2` | Adam with L2-coupled decay (`torch.optim.Adam`) | | 8 |
# | `adamw` | `AdamW` | | 8 |
# | `lion` | `Lion` (GPT-NeoX's `lion`) | | 4 (one momentum) |
# | `adafactor` | `Adafactor` | `beta2_decay`, `eps1`, `eps2`, `d` | about 0 (row and column factors) |
# | `muon` | `Muon` + AdamW for embeddings, head, norms, biases | `momentum`, `nesterov`, `ns_steps`, `adjust_lr_fn`, `ns_dtype`, `adamw_lr`, `adamw_betas`, `adamw_eps` | 4 (counted as momentum everywhere) |
# | `schedule_free_adamw` | `ScheduleFreeAdamW` | `warmup_steps`, `r`, `weight_lr_power` | 8 |
#
# GPT-NeoX's `cpu_adam`, `cpu_torch_adam` and `onebitadam` are Adam with the work placed elsewhere (on the CPU,
# or with compressed communication); here they train as `adam`, with a warning. Its `sm3` and `madgrad_wd`
# are not implemented and are errors.

# %%
#| export
@dataclass(frozen=True)
class OptimizerSpec:
    "A registered optimizer: its class, the config fields it takes, its `optimizer.params` and grouping."
    name: str
    cls: type
    config_fields: tuple[str, ...] = ("lr", "weight_decay")     # OptimizerConfig fields passed on
    params: dict = field(default_factory=dict)                  # accepted optimizer.params -> default
    fixed: dict = field(default_factory=dict)                   # constructor arguments this name fixes
    grouping: str = "decay"                                     # 'decay' (param_groups) or 'muon'
    summary: str = ""
    state_bytes: int = 8                                        # fp32 optimizer state per parameter

OPTIMIZERS: dict[str, OptimizerSpec] = {}

def register_optimizer(spec: OptimizerSpec, aliases: Iterable[str] = ()) -> OptimizerSpec:
    "Add an optimizer to the registry under its (lower-case) name and any aliases; the config accepts them."
    name = spec.name.lower()
    OPTIMIZERS[name] = spec
    if name not in OPTIMIZER_TYPES: OPTIMIZER_TYPES.append(name)      # appendix A1's table of names
    for a in aliases: OPTIMIZER_ALIASES[a.lower()] = name
    return spec

def optimizer_state_bytes(name: str) -> int:
    "Bytes of optimizer state per parameter for the optimizer `name`; an unknown name is a ConfigError."
    return OPTIMIZERS[optimizer_type(name)].state_bytes


# %%
#| export
_ADAM = ("lr", "betas", "eps", "weight_decay")
register_optimizer(OptimizerSpec("sgd", SGD, params=dict(momentum=0.0, nesterov=False), state_bytes=4,
                                 summary="SGD with momentum or Nesterov momentum; L2 weight decay"))
register_optimizer(OptimizerSpec("adam", Adam, _ADAM, params=dict(decoupled_weight_decay=True),
                                 summary="GPT-NeoX's Adam: FusedAdam in AdamW mode, decoupled weight decay"))
register_optimizer(OptimizerSpec("adam_l2", Adam, _ADAM, fixed=dict(decoupled_weight_decay=False),
                                 summary="Adam with L2 weight decay through the gradient (torch.optim.Adam)"),
                   aliases=("adam_coupled",))
register_optimizer(OptimizerSpec("adamw", AdamW, _ADAM, summary="Adam with decoupled weight decay"))
register_optimizer(OptimizerSpec("lion", Lion, ("lr", "betas", "weight_decay"), state_bytes=4,
                                 summary="sign of interpolated momentum; lr 3-10x below AdamW's"))
register_optimizer(OptimizerSpec("adafactor", Adafactor, params=dict(beta2_decay=-0.8, eps1=None, eps2=1e-3, d=1.0),
                                 state_bytes=0,
                                 summary="factored second moment, relative step size (torch's variant)"))
register_optimizer(OptimizerSpec("muon", Muon, params=dict(momentum=0.95, nesterov=True, ns_steps=5,
                                 adjust_lr_fn="original", ns_dtype="auto", adamw_lr=3e-3,
                                 adamw_betas=(0.9, 0.95), adamw_eps=1e-8), grouping="muon", state_bytes=4,
                                 summary="orthogonalised momentum on hidden matrices, AdamW elsewhere"))
register_optimizer(OptimizerSpec("schedule_free_adamw", ScheduleFreeAdamW, _ADAM,
                                 params=dict(warmup_steps=0, r=0.0, weight_lr_power=2.0),
                                 summary="AdamW without a schedule: averaged iterates; call .train()/.eval()"),
                   aliases=("adamw_schedulefree", "schedulefree_adamw", "sf_adamw"))

# %%
test_eq(sorted(OPTIMIZERS), sorted(OPTIMIZER_TYPES))      # every name the config accepts is built here
test_eq({n: optimizer_state_bytes(n) for n in ("adamw", "Adam", "lion", "sgd", "adafactor", "sf_adamw")},
        {"adamw": 8, "Adam": 8, "lion": 4, "sgd": 4, "adafactor": 0, "sf_adamw": 8})
test_fail(lambda: optimizer_state_bytes("schedulefree"), contains="registered: adafactor, adam")


# %% [markdown]
# `resolve_optimizer` finds the spec for a name and checks the optimizer's own params against it. The
# config's common fields (lr, betas, eps, weight decay) and the name were checked once, when appendix A1's
# `load_config` read the file. Every mistake is a `ConfigError` that names the key: an unknown name lists the
# registered ones (and the closest); an unknown `optimizer.params` key lists the ones this optimizer takes; a
# momentum outside $[0, 1)$, Nesterov without momentum, a bad Muon or Adafactor setting are refused.

# %%
#| export
def _closest(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""

def _check_range(key: str, value: Any, low: float, high: float | None = None, high_open: bool = True) -> None:
    "Raise a ConfigError naming `key` unless low <= value < high (or <= high)."
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
    if ok and high is not None: ok = value < high if high_open else value <= high
    if not ok:
        rng = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"key '{key}' must be a number {rng}, got {value!r}")

def resolve_optimizer(opt_cfg) -> tuple[OptimizerSpec, dict]:
    "Find the registered optimizer for `opt_cfg.type` and return it with the checked constructor arguments."
    name = optimizer_type(opt_cfg.type)        # appendix A1's names (a config has this already resolved)
    spec = OPTIMIZERS[name]
    kwargs = {k: (tuple(getattr(opt_cfg, k)) if k == "betas" else getattr(opt_cfg, k)) for k in spec.config_fields}
    for key, value in (opt_cfg.params or {}).items():
        k = key.replace("-", "_")
        if k not in spec.params:
            takes = ", ".join(sorted(spec.params)) or "none besides lr, betas, eps"
            raise ConfigError(f"key 'optimizer.params.{key}': '{name}' has no such parameter"
                              f"{_closest(k, spec.params)}; it takes: {takes}")
        if value is not None: kwargs[k] = tuple(value) if isinstance(value, list) else value
    _check_params(name, {**spec.params, **kwargs})
    return spec, {**{k: v for k, v in spec.params.items() if k not in kwargs}, **kwargs, **spec.fixed}

def _check_params(name: str, p: dict) -> None:
    "Range checks for the optimizer-specific params, each error naming its key."
    if "momentum" in p: _check_range("optimizer.params.momentum", p["momentum"], 0.0, 1.0)
    if p.get("nesterov") and not p.get("momentum"):
        raise ConfigError(f"key 'optimizer.params.nesterov': Nesterov momentum needs momentum > 0 ({name})")
    if "adamw_lr" in p: _check_range("optimizer.params.adamw_lr", p["adamw_lr"], 0.0)
    if "adamw_betas" in p:
        for b in p["adamw_betas"]: _check_range("optimizer.params.adamw_betas", b, 0.0, 1.0)
    if "ns_steps" in p and (not isinstance(p["ns_steps"], int) or not 1 <= p["ns_steps"] < 100):
        raise ConfigError(f"key 'optimizer.params.ns_steps' must be an int in [1, 100), got {p['ns_steps']!r}")
    if p.get("adjust_lr_fn", "original") not in ("original", "match_rms_adamw"):
        raise ConfigError("key 'optimizer.params.adjust_lr_fn' must be 'original' or 'match_rms_adamw'")
    if p.get("ns_dtype", "auto") not in ("auto", "float32", "float16", "bfloat16"):
        raise ConfigError("key 'optimizer.params.ns_dtype' must be auto, float32, float16 or bfloat16")
    if "d" in p: _check_range("optimizer.params.d", p["d"], 1.0)
    if "beta2_decay" in p and not (isinstance(p["beta2_decay"], (int, float)) and p["beta2_decay"] <= 0):
        raise ConfigError(f"key 'optimizer.params.beta2_decay' must be <= 0, got {p['beta2_decay']!r}")
    if "warmup_steps" in p and (not isinstance(p["warmup_steps"], int) or p["warmup_steps"] < 0):
        raise ConfigError(f"key 'optimizer.params.warmup_steps' must be an int >= 0, got {p['warmup_steps']!r}")


# %% [markdown]
# `build_optimizer` is what the training loop calls. Given a model it makes the parameter groups itself;
# given groups (from `param_groups`, or your own) or a list of parameters, it uses them as they are, only
# marking `param_groups`' groups for Muon.

# %%
#| export
def build_optimizer(model_or_groups: nn.Module | Iterable, opt_cfg, foreach: bool = False) -> Optimizer:
    "The optimizer `opt_cfg` names over a model's parameter groups; `foreach`: its multi-tensor version."
    spec, kwargs = resolve_optimizer(opt_cfg)
    if isinstance(model_or_groups, nn.Module):
        groups = param_groups(model_or_groups, opt_cfg.weight_decay)
    else:
        groups = list(model_or_groups)
    if spec.grouping == "muon": groups = muon_groups(groups)
    cls = FOREACH_VERSIONS.get(spec.cls, spec.cls) if foreach else spec.cls
    return cls(groups, **kwargs)

def optimizer_names() -> list[str]:
    "The registered optimizer names (what `optimizer.type` may be)."
    return sorted(OPTIMIZERS)


# %% [markdown]
# The config's optimizer, built over the smoke model:

# %%
opt = build_optimizer(model, cfg.optimizer)
print(type(opt).__name__, [(g["group_name"], g["lr"], g["weight_decay"]) for g in opt.param_groups])
test_eq(type(opt), resolve_optimizer(cfg.optimizer)[0].cls)


# %%
#| hide
def ocfg(type="adamw", lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, **params):
    return OptimizerConfig(type=type, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, params=params)


# %% [markdown]
# Names are case-insensitive; every registered name builds; a bad config fails with the key in the message.

# %%
for name in ("AdamW", "Adam", "adam_l2", "SGD", "Lion", "adafactor", "Muon", "schedule_free_adamw", "sf_adamw"):
    o = build_optimizer(model, ocfg(name, **({"momentum": 0.9} if name == "SGD" else {})))
    print(f"{name:20s} -> {type(o).__name__:18s} {len(o.param_groups)} groups")
test_eq(build_optimizer(model, ocfg("Adam")).param_groups[0]["decoupled_weight_decay"], True)   # GPT-NeoX's Adam
test_eq(build_optimizer(model, ocfg("adam_l2")).param_groups[0]["decoupled_weight_decay"], False)
test_eq(build_optimizer(model, ocfg("adam", decoupled_weight_decay=False)).param_groups[0]["decoupled_weight_decay"], False)
test_eq(build_optimizer(model, ocfg("sgd", momentum=0.9, nesterov=True)).param_groups[0]["nesterov"], True)
test_eq(build_optimizer(model.parameters(), ocfg("lion")).param_groups[0]["weight_decay"], 0.1)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    test_eq(type(build_optimizer(model, ocfg("cpu_adam"))).__name__, "Adam")
    assert "cpu_adam" in str(w[0].message)

# %%
test_fail(lambda: build_optimizer(model, ocfg("adamm")), contains="did you mean 'adam'")
test_fail(lambda: build_optimizer(model, ocfg("sm3")), contains="registered: adafactor, adam, adam_l2, adamw")
# lr, betas, eps and weight decay are the config's: checked once, when the file is read
test_fail(lambda: load_config(text="lr: -1.0e-3"), contains="key 'lr'")
test_fail(lambda: load_config(text="optimizer: {type: adamw, params: {betas: [0.9, 1.0]}}"), contains="betas")
test_fail(lambda: load_config(text="weight-decay: -0.1"), contains="key 'weight-decay'")
test_fail(lambda: load_config(text="optimizer: {type: Adamm}"), contains="did you mean 'adam'")
test_fail(lambda: build_optimizer(model, ocfg("adamw", momentum=0.9)), contains="optimizer.params.momentum")
test_fail(lambda: build_optimizer(model, ocfg("sgd", momentom=0.9)), contains="did you mean 'momentum'")
test_fail(lambda: build_optimizer(model, ocfg("sgd", momentum=1.5)), contains="optimizer.params.momentum")
test_fail(lambda: build_optimizer(model, ocfg("sgd", nesterov=True)), contains="optimizer.params.nesterov")
test_fail(lambda: build_optimizer(model, ocfg("muon", ns_dtype="bf16")), contains="optimizer.params.ns_dtype")
try: build_optimizer(model, ocfg("nadam"))
except ConfigError as e: print("ConfigError:", e)

# %% [markdown]
# ## Exact resume, for every optimizer
#
# Colab disconnects; chapter 05 resumes from the last checkpoint, and a resumed run should be *the same run*.
# For the optimizer that means `state_dict()` must hold everything `step` reads. The test: 60 steps straight,
# against 30 steps, a checkpoint round trip through `torch.save` into a fresh model and optimizer, and 30 more.
# The losses and the final parameters must be identical, bit for bit. (A buffer kept outside `self.state`, or a
# step counter in a plain attribute, fails this test at once.)

# %%
#| hide
EXAMPLE_CONFIGS = {
    "sgd": ocfg("sgd", lr=0.05, weight_decay=0.01, momentum=0.9, nesterov=True),
    "adam": ocfg("adam", lr=1e-2), "adam_l2": ocfg("adam_l2", lr=1e-2), "adamw": ocfg("adamw", lr=1e-2),
    "lion": ocfg("lion", lr=1e-3, betas=(0.9, 0.99)), "adafactor": ocfg("adafactor", lr=1e-2, weight_decay=0.0),
    "muon": ocfg("muon", lr=0.02, adamw_lr=3e-3), "schedule_free_adamw": ocfg("schedule_free_adamw", lr=1e-2),
}
test_eq(sorted(EXAMPLE_CONFIGS), optimizer_names())

# %%
for name, oc in EXAMPLE_CONFIGS.items():
    make = lambda m: build_optimizer(m, oc)
    straight, p1 = optimizer_trajectory(make, steps=60)
    resumed, p2 = optimizer_trajectory(make, steps=60, resume_at=30)
    print(f"{name:20s} loss {straight[0]:.3f} -> {straight[-1]:.4f}; resumed run identical: "
          f"{straight == resumed and torch.equal(p1, p2)}")
    test_eq(straight, resumed); assert torch.equal(p1, p2)
    assert straight[-1] < straight[0]

# %% [markdown]
# A run checkpointed by the per-parameter optimizer resumes into the multi-tensor one (and back): the state is
# the same dictionary. Thirty steps of the lesson, a checkpoint, thirty of the multi-tensor version, against
# sixty of the lesson:

# %%
for name, oc in EXAMPLE_CONFIGS.items():   # 60 steps per-parameter vs 30 + checkpoint + 30 multi-tensor
    built = []
    def make(m):
        built.append(build_optimizer(m, oc, foreach=len(built) > 0))   # the second build resumes
        return built[-1]
    lesson, p1 = optimizer_trajectory(lambda m: build_optimizer(m, oc), steps=60)
    switched, p2 = optimizer_trajectory(make, steps=60, resume_at=30)
    diff = (p1 - p2).abs().max().item()
    print(f"{name:20s} resumed into {type(built[-1]).__name__:24s} max |diff| {diff:.1e}")
    assert type(built[-1]).__name__.startswith("Foreach")
    if name in ("adafactor", "muon"): test_close(diff, 0, eps=1e-4)
    else: test_eq(diff, 0.0)

# %% [markdown]
# ## Every optimizer trains the smoke model
#
# Matching a reference on a toy problem shows the arithmetic is right; the next question is whether each
# optimizer trains a GPT-NeoX on code. Chapter 05's loop is the real thing; here a ten-line loop is enough:
# next-byte prediction on real Python (the standard library of the interpreter running this notebook), the
# smoke config's model with a 256-entry vocabulary (one token per byte, so no tokenizer is needed and the
# output layer is small enough for a CPU), 30 steps, each optimizer at a learning rate of its usual size. The
# rates are not tuned (the GPU experiment at the end of the chapter tunes them); the test is that the loss falls.

# %%
#| hide
import dataclasses
import sysconfig
from pathlib import Path

from neoxcourse.train import lm_loss, train_step   # chapter 05's training step

BYTE_MODEL = dataclasses.replace(cfg.model, vocab_size=256)   # the smoke architecture, one token per byte

def code_bytes(n_files=60, seed=0) -> torch.Tensor:
    "UTF-8 bytes of some standard-library modules: real Python, available offline everywhere."
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    files = [files[i] for i in torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:n_files]]
    return torch.tensor(list(b"\n".join(f.read_bytes() for f in files)), dtype=torch.long)

def byte_batches(data, batch=8, seq=64, seed=0):
    "Endless random windows (x, y) of the byte stream, y shifted by one."
    gen = torch.Generator().manual_seed(seed)
    while True:
        i = torch.randint(0, len(data) - seq - 1, (batch,), generator=gen)
        idx = i[:, None] + torch.arange(seq + 1)
        yield data[idx[:, :-1]], data[idx[:, 1:]]

def train_smoke(opt_cfg, steps=40, clip=None, seed=0, log_norms=False):
    "Train the smoke GPT-NeoX (byte vocabulary) on code bytes; return per-step losses (and gradient norms)."
    torch.manual_seed(seed)
    model = GPTNeoX(BYTE_MODEL)
    opt = build_optimizer(model, opt_cfg)
    set_train_mode(opt, True)
    batches, losses, norms = byte_batches(CODE, seed=seed), [], []
    fp32 = torch.amp.GradScaler("cpu", enabled=False)            # fp32 on the CPU: no loss scaling
    for step in range(steps):
        out = train_step(model, opt, fp32, [next(batches)], "fp32", clip)
        norms.append(out.grad_norm.item()); losses.append(out.loss.item())
    set_train_mode(opt, False)
    return (losses, norms, model) if log_norms else losses


# %%
#| hide
CODE = code_bytes()
SMOKE_LRS = {"sgd": ocfg("sgd", lr=0.3, momentum=0.9, weight_decay=0.0), "adam": ocfg("adam", lr=3e-3),
             "adam_l2": ocfg("adam_l2", lr=3e-3, weight_decay=0.0), "adamw": ocfg("adamw", lr=3e-3),
             "lion": ocfg("lion", lr=3e-4, betas=(0.9, 0.99), weight_decay=0.3), "adafactor": ocfg("adafactor", lr=3e-2, weight_decay=0.0),
             "muon": ocfg("muon", lr=0.02, adamw_lr=3e-3), "schedule_free_adamw": ocfg("schedule_free_adamw", lr=3e-3)}

# %%
#| slow
t0 = time.time()
curves = {name: train_smoke(oc, steps=30) for name, oc in SMOKE_LRS.items()}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, ls in curves.items():
    ax.plot(ls, label=f"{name} ({ls[-1]:.2f})")
    assert sum(ls[-5:]) / 5 < sum(ls[:5]) / 5 - 0.5, name   # the loss falls, clearly
ax.set(xlabel="step", ylabel="train loss (nats / byte)", title="The smoke architecture on code bytes, 30 steps")
ax.legend(fontsize=7); plt.show()
print(f"{len(curves)} optimizers in {time.time() - t0:.1f} s")


# %% [markdown]
# ## How large is each layer's update?
#
# Learning rates are a poor guide to how far the weights actually move. A direct measure is the **update RMS**
# per weight matrix, $\mathrm{RMS}(\Delta W) = \sqrt{\mathrm{mean}(\Delta W^2)}$ for one step, and its ratio to the
# weight's own RMS. During a real run of the smoke model (on code bytes, as above), for AdamW, Lion and Muon:

# %%
def update_rms(opt_cfg, steps=12, seed=0):
    "Per 2-D weight: mean over the last steps of RMS(update) and RMS(update)/RMS(weight), during a real run."
    torch.manual_seed(seed)
    model = GPTNeoX(BYTE_MODEL)
    opt, batches = build_optimizer(model, opt_cfg), byte_batches(CODE, seed=seed)
    fp32, sums = torch.amp.GradScaler("cpu", enabled=False), {}
    named = [(n, p) for n, p in model.named_parameters() if p.ndim == 2]
    for step in range(steps):
        before = [p.detach().clone() for _, p in named]
        train_step(model, opt, fp32, [next(batches)], "fp32", 1.0)
        if step >= steps // 2:                                    # after the first steps (Adam's bias corrections)
            for (n, p), b in zip(named, before):
                u = (p.detach() - b).pow(2).mean().sqrt().item()
                s = sums.setdefault(n, [0.0, 0.0]); s[0] += u; s[1] += u / b.pow(2).mean().sqrt().item()
    k = steps - steps // 2
    return {n: (u / k, r / k) for n, (u, r) in sums.items()}

rms_runs = {name: update_rms(SMOKE_LRS[name]) for name in ("adamw", "lion", "muon")}
short = lambda n: n.replace("gpt_neox.", "").replace("layers.", "L").replace(".weight", "")
print(f"{'weight':32s}" + "".join(f"{name + ' RMS':>12s}{'/|W|':>8s}" for name in rms_runs))
for n in rms_runs["adamw"]:
    print(f"{short(n):32s}" + "".join(f"{r[n][0]:12.2e}{r[n][1]:8.3f}" for r in rms_runs.values()))
lion_rms = [u for n, (u, _) in rms_runs["lion"].items() if ".layers." in n]   # hidden matrices
test_close(sum(lion_rms) / len(lion_rms), SMOKE_LRS["lion"].lr, eps=0.2 * SMOKE_LRS["lion"].lr)   # sign: +-lr each


# %% [markdown]
# What to see: Lion's update is $\pm\eta$ in every coordinate, so its RMS is exactly the learning rate (3e-4)
# in every hidden layer (lower in the byte embedding, whose rows for bytes absent from a batch have no gradient
# and no momentum, so sign 0). AdamW's is below its rate (about 0.4 x 3e-3 here: $|\hat m|/\sqrt{\hat v}$ is below
# one when gradients are noisy) and about the same in every layer, whatever the size of its gradient. Muon's is
# set by the matrix's shape: an orthogonal update of an $r \times c$ matrix has RMS $1/\sqrt{\max(r, c)}$, times
# the lr (0.02) and the shape factor $\sqrt{\max(1, r/c)}$, so `dense_h_to_4h` (256 x 64) moves about
# $0.02 \cdot 2/16 = 2.5\cdot10^{-3}$ per entry and `dense_4h_to_h` (64 x 256) half that; the embeddings and head
# (trained by AdamW inside Muon) follow AdamW's rate. The ratio to the weight's own RMS is the number to watch
# in a long run (here 0.002-0.03 a step, early in a small run; a layer far above the others is often the one that
# spikes).

# %% [markdown]
# ## Weight decay, and its two kinds
#
# Weight decay is a steady pull toward zero. On a short run its effect is not on the loss, which it barely
# changes, but on the **size of the weights**: decoupled decay multiplies every weight by $(1 - \eta\lambda)$ each
# step, so over 40 steps at $\eta = 3\cdot10^{-3}$, $\lambda = 1$ it removes about 11% of whatever the gradients do
# not put back; over a long run growth and decay balance at a norm that scales like $\sqrt{\eta/\lambda}$, which is
# why a good `lr` and a good `weight-decay` are found together. Below: the smoke model trained with AdamW at three
# decays, and with L2-coupled Adam.

# %%
#| slow
def matrix_norm(model):
    "Root-sum-square of every 2-D weight."
    return torch.sqrt(sum(p.detach().pow(2).sum() for p in model.parameters() if p.ndim == 2)).item()

decay_runs = {}
for label, oc in [("AdamW wd=0", ocfg("adamw", lr=3e-3, weight_decay=0.0)),
                  ("AdamW wd=0.1", ocfg("adamw", lr=3e-3, weight_decay=0.1)),
                  ("AdamW wd=1.0", ocfg("adamw", lr=3e-3, weight_decay=1.0)),
                  ("Adam L2 wd=0.1", ocfg("adam_l2", lr=3e-3, weight_decay=0.1))]:
    losses, _, m = train_smoke(oc, steps=40, log_norms=True)
    decay_runs[label] = (sum(losses[-10:]) / 10, matrix_norm(m))
torch.manual_seed(0); init_norm = matrix_norm(GPTNeoX(BYTE_MODEL))
print(f"{'run':16s} {'last-10 loss':>12s} {'|W| (init ' + format(init_norm, '.1f') + ')':>16s}")
for label, (loss, norm) in decay_runs.items(): print(f"{label:16s} {loss:12.3f} {norm:16.2f}")
assert decay_runs["AdamW wd=1.0"][1] < decay_runs["AdamW wd=0.1"][1] < decay_runs["AdamW wd=0"][1]
assert decay_runs["Adam L2 wd=0.1"][1] < 0.5 * decay_runs["AdamW wd=0.1"][1]
assert decay_runs["Adam L2 wd=0.1"][0] > decay_runs["AdamW wd=0.1"][0]


# %% [markdown]
# Stronger decoupled decay gives smaller weights, evenly, at almost no cost in loss. Coupled L2 at a tenth of
# the strongest coefficient does something else entirely: it collapses the weights and hurts the loss. The
# penalty's gradient $\lambda\theta$ goes through Adam's division by $\sqrt{\hat v}$ like any gradient. Where the
# loss's own gradient is tiny (the embedding rows of bytes that are rare in code, most of the output layer), the
# penalty *is* the gradient, Adam normalises it to size one, and the weight is driven to zero at the full
# learning rate, whatever its size; where the loss's gradient is large, the penalty is swamped and does nothing.
# That uneven, scale-free decay is what Loshchilov & Hutter removed by decoupling it, and why AdamW (and
# GPT-NeoX's "Adam") decouple.

# %% [markdown]
# ## Gradient clipping
#
# A single batch can produce a gradient many times larger than usual (a rare token, a long repeated line, an
# fp16 overflow that loss scaling missed). One such step can undo hours of training. Clipping rescales the
# whole gradient when its norm exceeds a threshold $c$ (GPT-NeoX's `gradient_clipping`, 1.0 in every recipe):
#
# $$g \leftarrow g \cdot \min\!\left(1, \frac{c}{\lVert g \rVert_2}\right), \qquad \lVert g \rVert_2 = \sqrt{\textstyle\sum_{p} \lVert g_p \rVert^2}.$$
#
# The norm is over *all* parameters together, so the direction of the step is kept; only its length is
# capped. `clip_gradients` wraps `torch.nn.utils.clip_grad_norm_` and returns the norm before clipping,
# which is worth logging. What a norm that sits above $c$ all the time means depends on the optimizer. For SGD
# the step is $\eta g$, so clipping by a steady factor $k = c/\lVert g \rVert$ is the same as training at the
# learning rate $k\eta$. For Adam it is not: a gradient scaled by $k$ at every step scales $m$ by $k$ and
# $\sqrt{v}$ by $k$, and the update $m/\sqrt v$ does not change (until $k\sqrt v$ nears $\epsilon$). Steady clipping
# does almost nothing to Adam; what it changes is the *rare* step whose norm jumps, which is the point.

# %%
#| export
def clip_gradients(params: Iterable[torch.Tensor], max_norm: float | None) -> float:
    "Clip the global gradient norm to `max_norm` (no clipping if None or 0); return the norm before clipping."
    params = [p for p in params if p.grad is not None]
    if not params: return 0.0
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm else float("inf")))


# %%
p = nn.Parameter(torch.zeros(4)); p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
test_close(clip_gradients([p], 1.0), 5.0); test_close(p.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]))
p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
test_close(clip_gradients([p], None), 5.0); test_close(p.grad, torch.tensor([3.0, 4.0, 0.0, 0.0]))


# %% [markdown]
# The two claims, checked on the reference problem: gradients multiplied by 0.1 at every step (a steady clip
# factor) against the unchanged run, for SGD and for Adam:

# %%
class ScaledGradients:
    "Multiply every gradient by `factor` before each step of `optimizer`, as a steady clip factor would."
    def __init__(self, optimizer, factor): self.optimizer, self.factor = optimizer, factor
    def zero_grad(self, set_to_none=True): self.optimizer.zero_grad(set_to_none)
    def step(self):
        for g in self.optimizer.param_groups:
            for p in g["params"]: p.grad.mul_(self.factor)
        self.optimizer.step()

_, sgd_clipped = optimizer_trajectory(lambda m: ScaledGradients(SGD(m.parameters(), lr=0.1), 0.1))
_, sgd_small_lr = optimizer_trajectory(lambda m: SGD(m.parameters(), lr=0.01))
_, adam_plain = optimizer_trajectory(lambda m: Adam(m.parameters(), lr=1e-2, eps=1e-12))
_, adam_clipped = optimizer_trajectory(lambda m: ScaledGradients(Adam(m.parameters(), lr=1e-2, eps=1e-12), 0.1))
_, sgd_plain = optimizer_trajectory(lambda m: SGD(m.parameters(), lr=0.1))
print(f"SGD, gradients x 0.1 vs lr / 10:   max |diff| {(sgd_clipped - sgd_small_lr).abs().max():.1e}")
print(f"SGD, gradients x 0.1 vs unchanged: max |diff| {(sgd_clipped - sgd_plain).abs().max():.1e}")
print(f"Adam, gradients x 0.1 vs unchanged: max |diff| {(adam_clipped - adam_plain).abs().max():.1e}")
test_close(sgd_clipped, sgd_small_lr, eps=1e-5)
assert (sgd_clipped - sgd_plain).abs().max() > 1e-2
test_close(adam_clipped, adam_plain, eps=1e-4)

# %% [markdown]
# The effect on a small real run: SGD with momentum at a learning rate too large for it (1.0), with and
# without clipping at 1.0.

# %%
#| slow
runs = {}
for clip in (None, 1.0):
    losses, norms, _ = train_smoke(ocfg("sgd", lr=1.0, momentum=0.9, weight_decay=0.0), steps=30, clip=clip,
                                   log_norms=True)
    runs[clip] = (losses, norms)
    finite = [l for l in losses if math.isfinite(l)]
    print(f"clip={clip}: loss {losses[0]:.2f} -> {losses[-1]:.2f} (max {max(finite):.1f}); gradient norm "
          f"median {sorted(norms)[len(norms) // 2]:.2f}, steps above 1.0: {sum(n > 1 for n in norms)}")
fig, axs = plt.subplots(1, 2, figsize=(9, 3))
for clip, (losses, norms) in runs.items():
    axs[0].plot(losses, label=f"clip {clip}"); axs[1].semilogy(norms, label=f"clip {clip}")
axs[0].set(xlabel="step", ylabel="loss"); axs[1].set(xlabel="step", ylabel="gradient norm before clipping")
axs[0].legend(); plt.tight_layout(); plt.show()
assert not runs[None][0][-1] < 10 and runs[1.0][0][-1] < 4.0   # blows up unclipped (loss in the millions or NaN); trains clipped


# %% [markdown]
# Without clipping, large steps feed on each other: each overshoot makes the next gradient larger, the norm
# climbs into the thousands and then overflows to infinity; chapter 05's `train_step` skips every step whose
# gradient is not finite, so the run freezes with a loss in the millions instead of training. Clipped at 1.0,
# the same learning rate trains: the norm before clipping stays near 1 and most steps are only mildly
# shortened. Clipping is not a cure for a learning rate that is too high (at 2.0 the clipped run also fails),
# but it makes the rare bad batch harmless.

# %% [markdown]
# ## Mixed precision: GradScaler, unscale before clipping, fp32 state
#
# On a T4 the forward and backward passes run in fp16 under autocast (chapter 05). Small gradients underflow
# to zero in fp16, so `GradScaler` multiplies the loss by a large factor $S$ (65536 to start) before
# `backward()`; the gradients are then $S$ times too large, and `scaler.step(optimizer)` divides them back
# before the update (and skips the step if any is inf or NaN). **Clipping must see the true gradients**, so
# the order in chapter 05's `train_step` is:
#
# 1. `backward()` of the scaled loss, $S \cdot L$ (so every gradient is $S$ times too large);
# 2. `scaler.unscale_(optimizer)`: gradients divided by $S$, in place (`step()` will not divide again);
# 3. clip: now the norm means something;
# 4. `scaler.step(optimizer)`, then `scaler.update()`.
#
# Clip before unscaling and the threshold applies to $S \cdot g$: every step is clipped to $1/S$ of its
# intended length, training stalls, and nothing errors. The optimizers here need nothing special for this:
# `GradScaler` works with any `torch.optim.Optimizer`. And because autocast leaves the parameters in fp32
# (only the matmuls run in fp16), the optimizer state made by `zeros_like(p)` is fp32 too. The demonstration
# runs on a CPU as well (PyTorch has fp16 autocast and `GradScaler` there).

# %%
def norm_seen_by_clipping(unscale_first: bool, S: float = 2.0 ** 16) -> float:
    "Steps 1-3 by hand, in fp32: what the clipping threshold is compared with, with and without unscaling."
    torch.manual_seed(0)
    m = GPTNeoX(BYTE_MODEL)
    x, y = next(byte_batches(CODE))
    (lm_loss(m(x), y) * S).backward()               # 1. the backward of the scaled loss
    if unscale_first:
        for p in m.parameters(): p.grad.div_(S)     # 2. what scaler.unscale_ does
    return clip_gradients(m.parameters(), 1.0)      # 3.

norm_right, norm_wrong = norm_seen_by_clipping(True), norm_seen_by_clipping(False)
print(f"norm seen by clipping: unscaled first {norm_right:.3f}; scaled (wrong) {norm_wrong:,.0f} = "
      f"{norm_wrong / norm_right:,.0f} x the true norm")
test_close(norm_wrong / norm_right, 2.0 ** 16, eps=2.0 ** 16 * 1e-2)

def amp_step(name: str = "adamw"):
    "The real thing: one fp16 step under autocast with a GradScaler (chapter 05's train_step)."
    torch.manual_seed(0)
    m = GPTNeoX(BYTE_MODEL)
    opt = build_optimizer(m, EXAMPLE_CONFIGS[name])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    return train_step(m, opt, scaler, [next(byte_batches(CODE))], "fp16", 1.0), opt, m

amp, opt_amp, m_amp = amp_step()
test_close(amp.grad_norm.item(), norm_right, eps=0.05 * norm_right)   # fp16 matmuls: close to the fp32 norm
state_dtypes = {s.dtype for st in opt_amp.state.values() for s in st.values() if torch.is_tensor(s)}
test_eq(state_dtypes, {torch.float32})
test_eq({p.dtype for p in m_amp.parameters()}, {torch.float32})

# %% [markdown]
# Every optimizer in the registry takes a GradScaler step (the scaler only calls `step()`), and keeps fp32 state:

# %%
for name in optimizer_names():
    _, o, _ = amp_step(name)
    dtypes = {s.dtype for st in o.state.values() for s in st.values() if torch.is_tensor(s)}
    test_eq(dtypes <= {torch.float32}, True)
print("GradScaler + fp16 autocast: all", len(optimizer_names()), "optimizers step, state in fp32")


# %% [markdown]
# ### Gradient norm and loss scale of an fp16 run
#
# What the two traces look like in a run, here **simulated on a CPU** (fp16 autocast and `GradScaler` on the
# CPU, the smoke model on code bytes; a GPU run's traces have the same shape and are logged by chapter 05's loop
# as `train/grad_norm` and `train/loss_scale`). The scale starts too high on purpose ($2^{24}$): the first
# steps overflow, each overflow skips the step and halves the scale, then the scale doubles after every
# `growth_interval` (here 10) clean steps until the next overflow: the sawtooth of a healthy fp16 run.

# %%
def fp16_trace(steps=40, init_scale=2.0 ** 24, growth_interval=10, seed=0):
    "Per step: loss, gradient norm (inf when skipped) and loss scale of an fp16 autocast run on this device."
    torch.manual_seed(seed)
    model = GPTNeoX(BYTE_MODEL)
    opt, batches = build_optimizer(model, SMOKE_LRS["adamw"]), byte_batches(CODE, seed=seed)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    rows = []
    for _ in range(steps):
        out = train_step(model, opt, scaler, [next(batches)], "fp16", 1.0)
        rows.append((out.loss.item(), out.grad_norm.item(), bool(out.skipped), scaler.get_scale()))
    return rows

trace = fp16_trace()
fig, axs = plt.subplots(1, 2, figsize=(10, 3))
axs[0].semilogy([r[1] if math.isfinite(r[1]) else float("nan") for r in trace], ".-")
axs[0].plot([i for i, r in enumerate(trace) if r[2]], [1.0] * sum(r[2] for r in trace), "rx", label="skipped (overflow)")
axs[0].set(xlabel="step", ylabel="gradient norm before clipping", title="CPU-simulated fp16 run"); axs[0].legend()
axs[1].semilogy([r[3] for r in trace], ".-"); axs[1].set(xlabel="step", ylabel="loss scale")
plt.tight_layout(); plt.show()
skipped = [i for i, r in enumerate(trace) if r[2]]
print(f"skipped steps {skipped}; scale {trace[0][3]:.0f} -> {trace[-1][3]:.0f}; loss {trace[0][0]:.2f} -> {trace[-1][0]:.2f}")
assert skipped and trace[-1][3] < 2.0 ** 24 and trace[-1][0] < trace[0][0]

# %% [markdown]
# What to see: a few skipped steps at the start while the scale falls to a value that fits, then a norm that
# falls from its first-step high and a scale that climbs and drops. A run whose scale keeps falling, or that skips
# many steps in a row, has a real overflow (chapter 05 stops it after `max_skipped_steps` and says what to
# change); occasional skips are normal and cost one step each.

# %% [markdown]
# ## On the GPU: which optimizer is best for this task?
#
# Tests show the optimizers are right; they do not say which one to use. The experiment: the T4 recipe's model
# (20.5M parameters), a fixed budget of 400 steps of 32 x 1024 tokens (13.1M tokens a run) on licence-filtered
# site-packages (81M training tokens, so a run reads about a sixth of it and repeats no file), AdamW + cosine
# as the baseline against AdamW + WSD, Lion, Muon, schedule-free AdamW and SGD, each at the best learning rate
# of a grid of three or four, two seeds for the baseline and the two leaders. Every run is chapter 05's
# `train(cfg)` on `configs/t4.yml` with the same budget overrides for all (400 iterations, a global batch of
# 32, warmup 5%, `min_lr` a tenth of the peak), each entry's own settings, and its `optimizer.type`,
# `lr-decay-style` and `lr`; all of them are in the JSON. The Muon run, for example, is
# `neoxcourse train configs/t4.yml --set train-iters=400 --set train_batch_size=32 --set warmup=0.05
# --set optimizer.type=muon --set lr-decay-style=wsd --set lr=0.04 --set min_lr=0 --set optimizer.params.adamw_lr=0.003`.
# Compare in tokens *and* in seconds: Muon's Newton-Schulz iterations make each step slower.
#
# One command reproduces it on a GPU (`PYTHONPATH=. python bench/optimizer_experiment.py --workers 4`): it
# trains several runs at once (a small model leaves a big GPU idle), times each optimizer alone for the
# tokens/s column, and writes `bench/results/optimizer_experiment.{json,md}` and the plot. The committed
# results come from an H200 emulating a T4 (15 GiB cap, no flash attention, fp16); every run is also a W&B
# run (`python bench/optimizer_experiment.py --wandb offline`, group `optimizer-experiment`).

# %%
import json
from IPython.display import Image, Markdown, display
results = cfg.root / "bench" / "results"
if (results / "optimizer_experiment.md").exists():
    display(Markdown((results / "optimizer_experiment.md").read_text()))
    display(Image(filename=str(results / "optimizer_experiment_val_loss.png"), width=900))
else:
    print("no GPU results yet: run `PYTHONPATH=. python bench/optimizer_experiment.py --workers 4` on a GPU")

# %% [markdown]
# The table gives means over seeds, and the two seeds of a row differ by 0.13 to 0.17 nats. That spread is
# mostly shared: each seed's runs start from the same initial weights and read the same batches, and (in
# these runs) each seed scored a different sample of validation windows. Paired by seed, the differences are
# steady, as the next cell shows. (Since these runs, the loop scores every run on the same validation windows
# whatever its seed, `VALIDATION_SEED` in chapter 05, which removes part of that spread.)

# %%
if (results / "optimizer_experiment.json").exists():
    exp = json.loads((results / "optimizer_experiment.json").read_text())
    tuned = {row["name"]: row["lr"] for row in exp["table"]}
    by_seed = {}
    for r in exp["runs"].values():
        if r["lr"] == tuned.get(r["name"]) and not r["diverged"]:
            by_seed.setdefault(r["seed"], {})[r["name"]] = r["final_val_loss"]
    for seed, losses in sorted(by_seed.items()):
        base = losses.get("adamw_cosine")
        print(f"seed {seed}: " + ", ".join(f"{name} {loss:.3f} ({loss - base:+.3f})"
                                             for name, loss in sorted(losses.items(), key=lambda kv: kv[1])))

# %% [markdown]
# ## Your learning-rate curves
#
# The table above picked each optimizer's rate from a grid. The curve behind that choice, final loss against
# learning rate, is the first experiment to run for any optimizer: too low and it learns slowly, too high and it
# diverges, and in between a U whose bottom is the rate to use. Its right edge (where the loss shoots up or the
# run diverges) matters as much as the bottom: the best rate usually sits a factor of 2-4 below the edge.
#
# First the curves the GPU measured (13.1M tokens, the T4 recipe, one seed per point, from
# `bench/results/optimizer_experiment.json`, and the lab protocol's curves when its results are committed):

# %%
lr_curves = {}
if (results / "optimizer_experiment.json").exists():
    for r in json.loads((results / "optimizer_experiment.json").read_text())["runs"].values():
        if r["seed"] == 1234:
            lr_curves.setdefault(r["name"], {})[r["lr"]] = float("nan") if r["diverged"] else r["final_val_loss"]
lab_results = results / "lab_protocol.json"
lab_curves = {}
if lab_results.exists():
    for row in json.loads(lab_results.read_text()).get("summary", {}).get("lab", []):
        lab_curves[row["arm"]] = {float(k): (float("nan") if v is None else v) for k, v in row["lr_curve"].items()}
fig, axs = plt.subplots(1, 2 if lab_curves else 1, figsize=(12 if lab_curves else 7, 3.5), squeeze=False)
for name, curve in sorted(lr_curves.items()):
    lrs_ = sorted(curve); axs[0][0].plot(lrs_, [curve[x] for x in lrs_], "o-", label=name)
axs[0][0].set(xscale="log", xlabel="peak learning rate", ylabel="final val loss (nats/token)",
              title="T4 recipe, 13.1M tokens (H200, T4 emulation)")
axs[0][0].legend(fontsize=7)
for name, curve in sorted(lab_curves.items()):
    lrs_ = sorted(curve); axs[0][1].plot(lrs_, [curve[x] for x in lrs_], "o-", label=name)
if lab_curves:
    axs[0][1].set(xscale="log", xlabel="peak learning rate", ylabel="final val bits per byte", title="lab recipe (GPU)")
    axs[0][1].legend(fontsize=7)
plt.tight_layout(); plt.show()
print("lab protocol curves:", "committed" if lab_curves else "not committed yet (still being measured on the GPU)")

# %% [markdown]
# What to see: each optimizer has its own U, at its own scale of rates (Lion's about five to ten times below
# AdamW's, SGD's a hundred times above). Grids of three points only bracket the bottom; where the best point sits
# at a grid's edge the true best may lie beyond it. On the lab recipe's first GPU call (one seed, 6.6M tokens a
# run, `bench/results/lab_protocol.md`) AdamW (cosine and WSD) and Lion have their bottom inside the grid (4e-3 and
# 8e-4), while Muon (best 0.04 of 0.02-0.04) and SGD (best 1.0 of 0.1-1.0) were best at the grid's edge: their
# tuning is unfinished, and the protocol extends those grids. Its one-seed order, Muon + WSD (1.25 bits per byte)
# < AdamW + WSD (1.44) < AdamW + cosine (1.56) < Lion (1.76) < SGD (1.85), is the T4 recipe's order at 13.1M
# tokens; seeds for the lab recipe are still being measured. A divergent point (missing from the line) marks the
# edge; none of the lab grids reached it yet.
#
# **Your curves.** One cell: every optimizer in `LR_GRID`, every rate, one run each of chapter 05's
# `train(cfg)` on the config of this notebook, the final validation loss of each, plotted. On a T4 set
# `config_path = "../configs/lab.yml"` in the parameters cell: 400 steps a run, about a minute each (the lab
# recipe's estimate; no T4 has timed it), so the grid below is 8-10 minutes. On a CPU (and in CI) the same cell
# runs the smoke config for 2 steps a run: it shows the mechanics, and its curve means nothing.

# %%
import tempfile
from neoxcourse.config import load_config as _load_config
from neoxcourse.train import train

on_gpu = torch.cuda.is_available()
LR_GRID = {"adamw": [1e-3, 2e-3, 4e-3, 8e-3], "lion": [2e-4, 4e-4, 8e-4, 1.6e-3]} if on_gpu else \
          {"adamw": [1e-3, 8e-3], "lion": [2e-4, 1.6e-3]}
LR_OVERRIDES = {} if on_gpu else {"train-iters": 2, "eval-interval": 2, "checkpoint-factor": 0}
lr_dir = Path(tempfile.mkdtemp(prefix="lr-curves-"))          # W&B runs and checkpoints of this cell
my_curves, t0 = {}, time.time()
for opt_name, lrs_ in LR_GRID.items():
    for lr in lrs_:
        over = {**overrides, **LR_OVERRIDES, "optimizer.type": opt_name, "lr": lr, "min_lr": lr / 10,
                "save": str(lr_dir / f"{opt_name}-{lr:g}")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # the switched optimizer's default betas, said once
            res = train(_load_config(cfg.path, over))
        last = res.val_losses[max(res.val_losses)] if res.val_losses else float("nan")
        my_curves.setdefault(opt_name, {})[lr] = last if math.isfinite(last) else float("nan")
fig, ax = plt.subplots(figsize=(6, 3.3))
for opt_name, curve in my_curves.items():
    ax.plot(list(curve), list(curve.values()), "o-", label=opt_name)
ax.set(xscale="log", xlabel="peak learning rate", ylabel="final validation loss", title=f"{cfg.path.name}")
ax.legend(); plt.tight_layout(); plt.show()
print({k: {f"{lr:g}": round(v, 3) for lr, v in c.items()} for k, c in my_curves.items()},
      f"{time.time() - t0:.0f} s; W&B runs under {lr_dir}")
test_eq({k: len(v) for k, v in my_curves.items()}, {k: len(v) for k, v in LR_GRID.items()})

# %% [markdown]
# ### The sweeps, checked offline
#
# Each file in `configs/sweeps/` is one optimizer's grid over the peak learning rate: `wandb agent` runs
# `neoxcourse train configs/t4.yml --set ... --set lr=<value>` per trial, the optimizer's own settings fixed in
# the command. Sweeps need the W&B server, but everything up to the first training step can be checked here:
# appendix A5's `validate_sweep`, then the exact argument list the agent builds (with wandb's own
# `create_sweep_command_args`), parsed by the `neoxcourse` command line, the config it loads, and the
# optimizer and schedule that config builds.

# %%
#| hide
try: from wandb.sdk.launch.sweeps.utils import create_sweep_command_args   # what `wandb agent` itself calls
except ImportError:                                                        # an internal module: if it moves,
    def create_sweep_command_args(command):                                # the one format used here
        return {"args_no_hyphens": [f"{k}={v['value']}" for k, v in command["args"].items()]}
from neoxcourse.cli import _config_from, build_parser
from neoxcourse.experiments import load_sweep, sweep_size, validate_sweep
from neoxcourse.schedules import build_schedule

def agent_argv(sweep, values):
    "The argv `wandb agent` runs for one trial, its ${...} macros replaced as wandb_agent.py does."
    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    sweep_vars.update(env=["/usr/bin/env"], interpreter=["python"], program=[sweep.get("program", "")])
    argv = []
    for c in map(str, sweep["command"]):
        argv += sweep_vars.get(c[2:-1], []) if c.startswith("${") and c.endswith("}") else [c]
    return argv


# %%
sweep_files = sorted((cfg.root / "configs" / "sweeps").glob("*.yaml"))
for path in sweep_files:
    sweep = load_sweep(path)
    test_eq(validate_sweep(sweep), [])
    for lr in sweep["parameters"]["lr"]["values"]:
        argv = agent_argv(sweep, {"lr": lr})
        test_eq(argv[1:3], ["neoxcourse", "train"])
        args = build_parser().parse_args(argv[2:])
        args.config = str(cfg.root / args.config)     # the agent runs from the project root; we are in nbs/
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # GPT-NeoX-only keys of t4.yml, if any
            trial = _config_from(args)
        test_eq(trial.optimizer.lr, lr)
        opt = build_optimizer(model, trial.optimizer)
        sched = build_schedule(trial.schedule, trial.training.train_iters, trial.optimizer.lr)
    print(f"{path.name:25s} {sweep_size(sweep)} trials: {type(opt).__name__:17s} {sched.style:8s} "
          f"lr {sweep['parameters']['lr']['values']}")
test_eq(len(sweep_files) >= 6, True)

# %% [markdown]
# ## Try this
#
# - In the toy-path cell, raise SGD's rate to 0.09 (above $2/25$): where does the quadratic's path go? Then give
#   momentum 0.99 and watch it orbit.
# - In the EWMA cell, turn `debias=False` and look at the first 20 steps of beta 0.99: that start is what Adam's
#   bias correction removes.
# - In `update_rms`, give Muon `adjust_lr_fn="match_rms_adamw"` (`ocfg("muon", lr=3e-3, adamw_lr=3e-3,
#   adjust_lr_fn="match_rms_adamw")`): its update RMS per matrix should come close to AdamW's.

# %%
#| eval: false
path = toy_path(lambda ps: SGD(ps, lr=0.09), quadratic, steps=30)
print(path[-5:])

# %% [markdown]
# ## Recap
#
# - Seven update rules as `torch.optim.Optimizer` subclasses, each a screen of code: SGD (momentum, Nesterov),
#   Adam with coupled or decoupled decay, AdamW, Lion, Adafactor, Muon (Newton-Schulz in fp16/fp32, AdamW for
#   embeddings, head, norms and biases) and schedule-free AdamW (`train()` / `eval()`).
# - Seen on 2-D valleys (paths computed by each optimizer's own `step`, tested), as moving averages, as singular
#   values (Newton-Schulz lifts a gradient's tail of small singular values to about one) and as per-layer update
#   sizes in a real run (Lion's is its learning rate in every layer; Muon's depends on the matrix's shape).
# - Steady clipping is a smaller learning rate for SGD and almost nothing for Adam (tested: gradients x 0.1
#   leave Adam's path unchanged to 1e-4); fp16 runs show skipped steps and a sawtooth loss scale.
# - Each matches an independent implementation over 100 steps: to the bit for SGD, Adam, AdamW, Lion,
#   schedule-free AdamW and Muon in bf16 (against `torch.optim.Muon`), to within 1e-5 for Adafactor.
# - Each resumes bit-exactly from a `state_dict` round trip, steps under GradScaler with fp32 state, and
#   trains the smoke architecture with falling loss.
# - `build_optimizer(model, cfg.optimizer)` picks one by GPT-NeoX's `optimizer.type` (`Adam` meaning
#   GPT-NeoX's decoupled Adam), groups the parameters (no decay on norms and biases; embeddings decayed, as in
#   GPT-NeoX), and names the key of any mistake. Decoupled weight decay shrinks weights evenly while coupled L2
#   in Adam collapses the rarely-updated ones; clipping turned a diverging SGD run into a training one, and must
#   follow `scaler.unscale_`.
#
# **What the GPU said** (`bench/results/optimizer_experiment.md`: 400 steps of 32 x 1024 tokens = 13.1M tokens a
# run on site-packages, the T4 recipe's model, an H200 emulating a T4; lr the best of a grid; mean of two seeds
# for the baseline and the leaders; tokens/s of each optimizer trained alone):
#
# | optimizer + schedule | lr (grid) | seeds | final val loss | val bits/byte | tokens to baseline loss | seconds to it | tokens/s |
# | --- | --- | --- | --- | --- | --- | --- | --- |
# | Muon + WSD | 0.04 (0.02-0.08) | 2 | 2.361 ± 0.093 | 1.053 | 8.2M (0.63x) | 15.2 | 540k |
# | AdamW + WSD | 0.002 (1e-3-4e-3) | 2 | 2.671 ± 0.120 | 1.191 | 11.5M (0.88x) | 15.8 | 726k |
# | AdamW + cosine (baseline) | 0.002 (1e-3-4e-3) | 2 | 3.166 ± 0.105 | 1.412 | 13.1M | 18.8 | 696k |
# | schedule-free AdamW | 0.002 (1e-3-4e-3) | 1 | 3.384 | 1.509 | not reached | - | 696k |
# | Lion + cosine | 0.0004 (2e-4-1.6e-3) | 1 | 3.838 | 1.711 | not reached | - | 741k |
# | SGD (Nesterov) + cosine | 0.3 (0.1-1) | 1 | 4.381 | 1.953 | not reached | - | 744k |
#
# Muon reached the baseline's final loss after 0.63x the tokens and, despite about a fifth fewer tokens per
# second, in 0.81x the time (tokens at the first evaluation at or below that loss; evaluations every 50 steps,
# so these are upper bounds). At this budget WSD beat cosine for AdamW by 0.50 nats (0.51 and 0.48 paired by
# seed; at about 80M tokens the gap is 0.02-0.05 bits per byte with one seed each, chapter 07), and Muon
# beat AdamW + WSD by 0.31 (0.29 and 0.33). In seconds, Muon and AdamW + WSD tie: the speed pass times two
# identical AdamW steps 4% apart, so that is its noise. FACTS.md's anchor, a larger model (hidden 512, 6 layers)
# on different data at six times the tokens (78.6M), has the same order (Muon 1.588 < AdamW + WSD 1.670 <
# AdamW + cosine 1.713; Muon at 0.8x the tokens). Every tuned lr is inside its grid. Schedule-free AdamW
# (evaluated at its averaged weights) sat between the cosine baseline and Lion at this budget; Lion trailed
# AdamW + cosine by 0.67 nats (one seed), in line with FACTS.md's note that it gains little at small batches
# (32k tokens a step here); SGD trailed everything. Limits: one budget, one model size, two seeds for three
# entries and one for the rest, a warmup of 5% for every entry, and seconds and tokens/s measured on an H200:
# a T4 is about 12 times slower, and Muon's extra matrix work may cost it a different share there.
#
# **The lab recipe** (`bench/results/lab_protocol.md`, first GPU call, one seed, 6.6M tokens a run) gave the same
# order as the table above; Muon's and SGD's tuning is unfinished (best rate at the grid's edge), and its seeds
# and the T4-recipe budgets of 21M-210M tokens are still being measured.
#
# Chapter 07 gives the learning rate a shape over time: warmup, then constant, linear, cosine, inverse square
# root or warmup-stable-decay.
