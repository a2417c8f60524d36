# Generated from nbs/07_schedules.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/07_schedules.py`.

# %% [markdown]
# # 07 · Learning-rate schedules: warmup, decay, and when to cool down
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/07_schedules.ipynb)
#
# > Constant, linear, cosine, exponential, inverse square root and warmup-stable-decay schedules, each with
# > warmup, chosen by GPT-NeoX's `lr-decay-style` and checked against hand-computed values and PyTorch's schedulers.

# %% [markdown]
# - **You will learn:** each schedule (constant, linear, cosine, exponential, inverse square root, WSD) as a
#   small function checked against PyTorch's schedulers and GPT-NeoX's; how warmup and WSD's cooldown fraction and
#   shape change a run; what the committed GPU runs say about WSD against cosine at several budgets (and what
#   they do not); how one WSD run serves several budgets by branching its cooldown.
# - **You need:** a CPU (every run here is small; it builds on chapters 05 and 06); a T4 only for the
#   exercise on the T4 or lab recipe.
# - **Time:** a few minutes on a CPU with the smoke config, as CI runs it; the exercise on a T4 with the lab
#   recipe (`configs/lab.yml`): about a minute a run (its own estimate).
# - **You should see:** every schedule plotted side by side; small runs whose final losses differ by hundredths
#   of a nat per byte (one seed: mechanics, not verdicts); a branched WSD run bit-identical to a straight WSD run
#   of the same budget; the GPU table of WSD minus cosine by budget with its intervals; and your own schedule
#   comparison, submitted as a W&B run.

# %%
#| default_exp schedules

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
import math
from dataclasses import dataclass
from typing import Callable

from neoxcourse.config import LR_DECAY_STYLES, STYLE_ALIASES, ConfigError, lr_decay_style

# %%
#| hide
import dataclasses

import matplotlib.pyplot as plt
import torch
from fastcore.test import test_close, test_eq, test_fail

from neoxcourse.config import ScheduleConfig, default_config_path, load_config

# %%
cfg = load_config(config_path or default_config_path(), overrides)
cfg.schedule, cfg.training.train_iters, cfg.optimizer.lr

# %% [markdown]
# ## Why the learning rate changes during training
#
# An optimizer's learning rate $\eta$ sets how far each step moves. Two facts about training transformers make
# a fixed $\eta$ a poor choice:
#
# - **At the start**, the weights are random, Adam's second-moment estimates rest on a handful of gradients,
#   and the first updates are large and badly aimed. A full-size step there can push the model into a region
#   it never recovers from (loss spikes, fp16 overflows). **Warmup** ramps $\eta$ from near zero to its peak over
#   the first steps (Goyal et al. 2017; Vaswani et al. 2017).
# - **At the end**, the gradient noise of a fixed $\eta$ keeps the weights bouncing around a minimum instead of
#   settling in it. **Decaying** $\eta$ shrinks the bounce; most of the loss a decay buys comes in its final part.
#
# A schedule is a function from the step number to $\eta$. In GPT-NeoX (and here) it is set by
# `lr-decay-style`, `warmup` (a *fraction* of the decay length, not a number of steps), `min_lr` and
# `lr-decay-iters` (the length of the decay; train-iters when not given). This chapter writes each style as a
# small function, then one `build_schedule` that the training loop calls.
#
# **Conventions.** `schedule(step)` is the learning rate of the update that follows `step` completed updates
# (`step` = 0, 1, ..., train-iters - 1); below, $t$ = `step + 1` counts updates from one. With $W$ warmup
# iterations, $D$ decay iterations, peak $\eta$ and floor $\eta_{\min}$:
#
# $$\eta_t = \eta\,\frac{t}{W} \;\; (t < W), \qquad
#   \eta_t = \eta_{\min} + (\eta - \eta_{\min})\, f\!\left(\frac{t - W}{D - W}\right) \;\; (t \ge W),$$
#
# where $f$ is the style's *shape*, going from $f(0) = 1$ to $f(1) = 0$ (progress is clipped to $[0, 1]$, so
# steps after $D$ stay at $\eta_{\min}$). The last update of a run ($t = D$) takes exactly $\eta_{\min}$.

# %% [markdown]
# ## The shapes
#
# | style | $f(p)$ | notes |
# | --- | --- | --- |
# | `constant` | 1 | warmup, then flat |
# | `linear` | $1 - p$ | GPT-NeoX's default style |
# | `cosine` | $\tfrac12(1 + \cos \pi p)$ | Loshchilov & Hutter (2017); the usual LLM choice (Pythia) |
# | `exponential` | $2^{-p}$ | GPT-NeoX's: halves the lr over the decay |
# | `inverse_sqrt` | $\sqrt{W / t}$ | Vaswani et al. (2017); needs no end point; never reaches $\eta_{\min}$ on its own |
# | `wsd` | 1, then a cooldown shape | warmup-stable-decay (Zhai et al. 2022; Hu et al. 2024; Hägele et al. 2024) |
#
# Warmup-stable-decay holds the peak rate for most of training and decays only over the final fraction
# (`decay_fraction`, 20% by default), with a cooldown shape that is `linear`, `cosine` or `1-sqrt`
# ($f(p) = 1 - \sqrt{p}$, which Hägele et al. found better than linear). Its appeal: a run can be continued
# from any checkpoint of the stable phase, and one long stable run with several short cooldowns gives several
# training lengths for the price of one. The cosine schedule has to know the length in advance.

# %%
#| export
DECAY_SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    "1-sqrt": lambda p: 1.0 - math.sqrt(p),
    "exponential": lambda p: 0.5 ** p,
}

def progress(t: float, start: float, end: float) -> float:
    "How far `t` is from `start` to `end`, clipped to [0, 1]."
    if end <= start: return 1.0 if t >= end else 0.0
    return min(1.0, max(0.0, (t - start) / (end - start)))


# %%
test_eq([DECAY_SHAPES["linear"](p) for p in (0, 0.25, 1)], [1.0, 0.75, 0.0])
test_close([DECAY_SHAPES["cosine"](p) for p in (0, 0.5, 1)], [1.0, 0.5, 0.0])
test_close([DECAY_SHAPES["1-sqrt"](p) for p in (0, 0.25, 1)], [1.0, 0.5, 0.0])
test_close([DECAY_SHAPES["exponential"](p) for p in (0, 1)], [1.0, 0.5])
test_eq([progress(t, 10, 20) for t in (5, 10, 15, 20, 25)], [0.0, 0.0, 0.5, 1.0, 1.0])


# %% [markdown]
# ## A schedule is a small callable
#
# `Schedule` holds the resolved numbers (iterations, not fractions) and computes $\eta_t$; each style is a
# function of $t$ and the schedule. A dataclass rather than a closure, so it prints what it will do, compares
# equal when it is the same schedule, and pickles into a checkpoint.

# %%
#| export
@dataclass(frozen=True)
class Schedule:
    "The learning rate at each step: linear warmup, then the style's shape between `lr` and `min_lr`."
    style: str
    lr: float
    min_lr: float = 0.0
    warmup_iters: float = 0.0          # W, may be fractional (GPT-NeoX: warmup x decay iterations)
    decay_iters: int = 1               # D, the step at which the decay ends
    decay_fraction: float = 0.2        # wsd: the share of D spent cooling down
    decay_shape: str = "1-sqrt"        # wsd: the cooldown's shape

    def __call__(self, step: int) -> float:
        "The learning rate of the update that follows `step` completed updates."
        t = step + 1
        if t < self.warmup_iters: return self.lr * t / self.warmup_iters
        return STYLES[self.style](t, self)

def _annealed(shape: str):
    "A style that decays from lr to min_lr over [W, D] with one of DECAY_SHAPES."
    f = DECAY_SHAPES[shape]
    return lambda t, s: s.min_lr + (s.lr - s.min_lr) * f(progress(t, s.warmup_iters, s.decay_iters))

def _inverse_sqrt(t: int, s: Schedule) -> float:
    "lr * sqrt(W / t) after warmup (continuous at t = W), never below min_lr."
    return max(s.min_lr, s.lr * math.sqrt(max(s.warmup_iters, 1.0) / t))

def _wsd(t: int, s: Schedule) -> float:
    "Flat at lr until the last `decay_fraction` of D, then a cooldown of `decay_shape` to min_lr."
    start = s.decay_iters * (1.0 - s.decay_fraction)
    return s.min_lr + (s.lr - s.min_lr) * DECAY_SHAPES[s.decay_shape](progress(t, start, s.decay_iters))

STYLES: dict[str, Callable[[int, Schedule], float]] = {
    "constant": lambda t, s: s.lr,
    "linear": _annealed("linear"),
    "cosine": _annealed("cosine"),
    "exponential": _annealed("exponential"),
    "inverse_sqrt": _inverse_sqrt,
    "wsd": _wsd,
}


# %% [markdown]
# Hand-computed values for a run of 100 steps, peak 1.0, floor 0.1, 10 warmup steps. During warmup every style
# climbs $1/10$ per step; at $t = 55$ (`step` 54), halfway through the decay, cosine is at
# $0.1 + 0.9 \cdot \tfrac12 = 0.55$, linear too; the last step ($t = 100$) is at the floor.

# %%
def S(style, **kw): return Schedule(style, lr=1.0, min_lr=0.1, warmup_iters=10, decay_iters=100, **kw)
test_close([S("cosine")(s) for s in (0, 4, 8)], [0.1, 0.5, 0.9])                 # warmup: t / W
test_close([S(st)(9) for st in STYLES], [1.0] * len(STYLES))                      # t = W: the peak
test_close(S("cosine")(54), 0.55); test_close(S("linear")(54), 0.55)
test_close(S("cosine")(99), 0.1); test_close(S("linear")(99), 0.1); test_close(S("linear")(500), 0.1)
test_close(S("exponential")(54), 0.1 + 0.9 * 2 ** -0.5)
test_close(S("constant")(99), 1.0)
test_close(S("inverse_sqrt")(39), math.sqrt(10 / 40)); test_close(S("inverse_sqrt")(999), 0.1)   # floored
test_close(S("wsd")(79), 1.0)                                                     # stable until t = 80
test_close(S("wsd")(84), 0.1 + 0.9 * (1 - math.sqrt(0.25)))                       # 1-sqrt cooldown, p = 1/4
test_close(S("wsd", decay_shape="linear")(89), 0.55)                              # p = 1/2
test_close(S("wsd", decay_fraction=0.5, decay_shape="cosine")(74), 0.55)          # p = 1/2 of the last 50
test_close(S("wsd")(99), 0.1)


# %% [markdown]
# ## Checked against PyTorch's schedulers
#
# PyTorch ships schedulers that multiply an optimizer's learning rate, stepped once per update. Where one of
# them computes the same function, the two must agree at every step. `torch_lrs` steps a PyTorch scheduler
# and records the learning rate it sets; the warmup is `LinearLR` from $1/W$ to 1 over $W - 1$ steps, the
# decays are `CosineAnnealingLR`, `LinearLR` and `ExponentialLR` started at $t = W$, and the whole
# warmup-then-cosine schedule is `SequentialLR` of the two.

# %%
#| hide
def torch_lrs(make_scheduler, n, lr=1.0):
    "The lr a PyTorch scheduler sets at each of n steps (before each step's update)."
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step(); sched.step()
    return out

def ours(schedule, steps): return [schedule(s) for s in steps]


# %%
W, D, peak, floor = 10, 100, 1.0, 0.1
lrs = torch.optim.lr_scheduler
# warmup: steps 0..W-1 (t = 1..W)
test_close(ours(S("cosine"), range(W)), torch_lrs(lambda o: lrs.LinearLR(o, 1 / W, 1.0, total_iters=W - 1), W))
# decays: steps W-1..D-1 (t = W..D), PyTorch's epoch e = t - W
test_close(ours(S("cosine"), range(W - 1, D)),
           torch_lrs(lambda o: lrs.CosineAnnealingLR(o, T_max=D - W, eta_min=floor), D - W + 1), eps=1e-9)
test_close(ours(S("linear"), range(W - 1, D)),
           torch_lrs(lambda o: lrs.LinearLR(o, 1.0, floor / peak, total_iters=D - W), D - W + 1), eps=1e-9)
expo = Schedule("exponential", lr=1.0, min_lr=0.0, warmup_iters=W, decay_iters=D)
test_close(ours(expo, range(W - 1, D)),
           torch_lrs(lambda o: lrs.ExponentialLR(o, gamma=0.5 ** (1 / (D - W))), D - W + 1), eps=1e-9)
# wsd with a cosine cooldown: the last 20 steps are CosineAnnealingLR over 20
test_close(ours(S("wsd", decay_shape="cosine"), range(79, D)),
           torch_lrs(lambda o: lrs.CosineAnnealingLR(o, T_max=20, eta_min=floor), 21), eps=1e-9)
# the whole run: warmup then cosine, as SequentialLR
seq = lambda o: lrs.SequentialLR(o, [lrs.LinearLR(o, 1 / W, 1.0, total_iters=W - 1),
                                     lrs.CosineAnnealingLR(o, T_max=D - W, eta_min=floor)], milestones=[W - 1])
test_close(ours(S("cosine"), range(D)), torch_lrs(seq, D), eps=1e-9)
print("warmup, cosine, linear, exponential, wsd-cosine and warmup+cosine agree with torch.optim.lr_scheduler")


# %% [markdown]
# ## GPT-NeoX's own formulas, and where ours differ
#
# GPT-NeoX computes its schedule in `megatron/learning_rates.py` (`AnnealingLR`). Written out, with $n$ the
# iteration and $W$ = `warmup` x $D$:
#
# - warmup $\eta\, n / W$ for $n \le W$, which gives $\eta_0 = 0$: its first update is wasted;
# - after warmup, with $m = n - W$: linear $\eta (D - m)/D$, cosine $\tfrac{\eta}{2}(1 + \cos(\pi m / D))$,
#   exponential $\eta\, e^{-0.693\, m / D}$, constant $\eta$; then $\max(\cdot, \eta_{\min})$.
#
# So GPT-NeoX decays over $D$ starting at $W$ (it never quite finishes when $W > 0$) and *clips* at
# $\eta_{\min}$ rather than decaying toward it. The course's version decays over $[W, D]$ exactly and
# interpolates to $\eta_{\min}$, so a cosine with `min_lr` really ends at `min_lr`. `gpt_neox_lr` reproduces
# GPT-NeoX's numbers so you can compare.

# %%
#| export
def gpt_neox_lr(iteration: int, lr: float, warmup_iter: float, end_iter: int, style: str, min_lr: float = 0.0) -> float:
    "GPT-NeoX's AnnealingLR.get_lr (megatron/learning_rates.py), for comparison with `Schedule`."
    n = min(iteration, end_iter - warmup_iter)
    if warmup_iter > 0 and iteration <= warmup_iter: return float(lr) * n / warmup_iter
    n = n - warmup_iter
    if style == "linear": out = lr * (end_iter - n) / end_iter
    elif style == "cosine": out = lr / 2.0 * (math.cos(math.pi * n / end_iter) + 1)
    elif style == "exponential": out = lr * math.exp(-0.693 * n / end_iter)
    else: out = lr
    return max(out, min_lr)


# %%
t4 = load_config(cfg.root / "configs" / "t4.yml")
n_t4, lr_t4, min_t4 = t4.training.train_iters, t4.optimizer.lr, t4.schedule.min_lr
W_t4 = t4.schedule.warmup * n_t4
neox_t4 = [gpt_neox_lr(s + 1, lr_t4, W_t4, n_t4, "cosine", min_t4) for s in range(n_t4)]
def largest_gap(min_lr):
    ours_ = Schedule("cosine", lr_t4, min_lr, W_t4, n_t4)
    return max(abs(ours_(s) - gpt_neox_lr(s + 1, lr_t4, W_t4, n_t4, "cosine", min_lr)) for s in range(n_t4)) / lr_t4
gap_floor, gap_zero = largest_gap(min_t4), largest_gap(0.0)
print(f"T4 recipe ({n_t4} steps, warmup {t4.schedule.warmup:.0%}, cosine {lr_t4:g} -> {min_t4:g}): largest gap to "
      f"GPT-NeoX {gap_floor:.1%} of the peak; with min_lr 0 (interval only) {gap_zero:.1%}")
test_close(gpt_neox_lr(0, 1.0, 10, 100, "cosine"), 0.0)
test_close(gpt_neox_lr(100, 1.0, 0, 100, "cosine", 0.1), 0.1)
test_close(Schedule("cosine", 1.0, 0.0, 0, 100)(49), gpt_neox_lr(50, 1.0, 0, 100, "cosine"))   # no warmup, no floor: equal
assert gap_zero < 0.02 and gap_floor < 0.1


# %% [markdown]
# Two sources of difference: the interval (under 2% of the peak with a 2% warmup) and the floor. With
# `min_lr` at 10% of the peak, GPT-NeoX's cosine runs as if the floor were 0 and is cut off at `min_lr` near the
# end, while ours is squeezed into $[\eta_{\min}, \eta]$: at mid-run GPT-NeoX is at $0.5\,\eta$ and ours at
# $0.55\,\eta$. Neither is wrong; ours is what "cosine to `min_lr`" says, and the dotted line in the plot below
# shows GPT-NeoX's.

# %% [markdown]
# ## `build_schedule`: from the config to a function
#
# `build_schedule(cfg.schedule, train_iters, lr)` resolves the config's fractions into iterations and returns a
# `Schedule`. The loop calls it once and asks for `schedule(step)` at every step. It checks nothing itself:
# appendix A1's `load_config` checked every value once, as it read the file, so a typo in the style (the names
# are appendix A1's table, `LR_DECAY_STYLES`), a warmup as long as the run (or as long as the decay), a `min_lr`
# above `lr`, or a WSD cooldown that would start inside the warmup is a `ConfigError` naming the key before any
# training starts. This chapter registers a formula under each name and tests that the two lists agree.

# %%
#| export
def schedule_styles() -> list[str]:
    "The registered values of `lr-decay-style`."
    return sorted(STYLES)

def _style(name: str) -> str:
    "The registered style `name` means: appendix A1's table of names (`LR_DECAY_STYLES`, aliases resolved)."
    return lr_decay_style(name)

def build_schedule(sched_cfg, train_iters: int, lr: float) -> Schedule:
    "The learning-rate schedule the config's schedule section describes, as a callable step -> lr."
    decay_iters = sched_cfg.lr_decay_iters if sched_cfg.lr_decay_iters is not None else train_iters
    warmup_iters = sched_cfg.warmup * decay_iters             # GPT-NeoX: a fraction of the decay length
    return Schedule(_style(sched_cfg.lr_decay_style), float(lr), float(sched_cfg.min_lr), float(warmup_iters),
                    int(decay_iters), float(sched_cfg.decay_fraction), str(sched_cfg.decay_shape))


# %% [markdown]
# The config's own schedule:

# %%
schedule = build_schedule(cfg.schedule, cfg.training.train_iters, cfg.optimizer.lr)
print(schedule)
print([f"{schedule(s):.2e}" for s in range(0, cfg.training.train_iters, max(1, cfg.training.train_iters // 10))])
if schedule.style in ("linear", "cosine", "wsd") and schedule.decay_iters == cfg.training.train_iters:
    test_close(schedule(cfg.training.train_iters - 1), cfg.schedule.min_lr)     # the last update: the floor


# %%
#| hide
def scfg(style="cosine", warmup=0.1, min_lr=0.0, lr_decay_iters=None, decay_fraction=0.2, decay_shape="1-sqrt"):
    return ScheduleConfig(lr_decay_style=style, warmup=warmup, min_lr=min_lr, lr_decay_iters=lr_decay_iters,
                          decay_fraction=decay_fraction, decay_shape=decay_shape)


# %%
test_eq(build_schedule(scfg("Cosine"), 100, 1.0).style, "cosine")          # case-insensitive
test_eq(build_schedule(scfg("warmup-stable-decay"), 100, 1.0).style, "wsd")
test_eq(build_schedule(scfg(warmup=0.05), 200, 1.0).warmup_iters, 10.0)
test_eq(build_schedule(scfg(warmup=0.05, lr_decay_iters=400), 200, 1.0).warmup_iters, 20.0)   # fraction of D
test_close(build_schedule(scfg(lr_decay_iters=50), 100, 1.0)(80), 0.0)       # after D: min_lr
test_eq(build_schedule(scfg("constant", warmup=0.0), 10, 3e-4)(0), 3e-4)
test_eq(schedule_styles(), ["constant", "cosine", "exponential", "inverse_sqrt", "linear", "wsd"])
test_eq(schedule_styles(), sorted(LR_DECAY_STYLES))   # the names appendix A1's config accepts, each built here


# %%
#| hide
def scfg(style="cosine", warmup=0.1, min_lr=0.0, lr_decay_iters=None, decay_fraction=0.2, decay_shape="1-sqrt"):
    return ScheduleConfig(lr_decay_style=style, warmup=warmup, min_lr=min_lr, lr_decay_iters=lr_decay_iters,
                          decay_fraction=decay_fraction, decay_shape=decay_shape)
# Bad schedules are refused when the config is read (appendix A1), each naming its key:
bad = lambda text: (lambda: load_config(text="train-iters: 100\nlr: 1.0\n" + text))
test_fail(bad("lr-decay-style: cosin"), contains="did you mean 'cosine'")
test_fail(bad("lr-decay-style: step"), contains="registered: constant, cosine, exponential")
test_fail(bad("warmup: 1.0"), contains="key 'warmup'")
test_fail(bad("warmup: 0.5\nlr-decay-iters: 300"), contains="key 'warmup'")
test_fail(bad("min_lr: 2.0"), contains="key 'min_lr'")
test_fail(bad("lr: -1.0"), contains="key 'lr'")
test_fail(lambda: load_config(text="train-iters: 0"), contains="key 'train-iters'")
test_fail(bad("lr-decay-style: wsd\nwarmup: 0.3\nneoxcourse: {schedule: {decay_fraction: 0.8}}"), contains="decay_fraction")
test_fail(bad("lr-decay-style: wsd\nneoxcourse: {schedule: {decay_shape: sqrt}}"), contains="decay_shape")
test_eq(build_schedule(scfg("rsqrt"), 100, 1.0).style, "inverse_sqrt")   # a hand-made section: aliases still resolve
try: load_config(cfg.path, {**overrides, "warmup": 0.999, "lr-decay-iters": 10 * cfg.training.train_iters})
except ConfigError as e: print("ConfigError:", e)

# %% [markdown]
# ## Every schedule, side by side
#
# The T4 recipe's numbers (6000 steps, peak 1e-3, floor 1e-4, 2% warmup), each style in turn. Cosine and linear
# spend most of the run below the peak; WSD stays at the peak for 80% of it and cools down at the end; inverse
# square root drops fast and then hardly moves; exponential halves the rate, no more.

# %%
styles = [("constant", {}), ("linear", {}), ("cosine", {}), ("exponential", {}), ("inverse_sqrt", {}),
          ("wsd", {"decay_shape": "1-sqrt"}), ("wsd", {"decay_shape": "linear"}), ("wsd", {"decay_shape": "cosine"})]
fig, axs = plt.subplots(1, 2, figsize=(11, 3.5))
for style, kw in styles:
    sch = build_schedule(dataclasses.replace(t4.schedule, lr_decay_style=style, **kw), n_t4, lr_t4)
    ys = [sch(s) for s in range(n_t4)]
    label = style + (f" ({kw['decay_shape']})" if kw else "")
    axs[0].plot(ys, label=label)
    axs[1].plot(range(n_t4 - 1400, n_t4), ys[-1400:], label=label)
axs[0].plot(neox_t4, "k:", lw=1, label="GPT-NeoX cosine")
axs[0].set(xlabel="step", ylabel="learning rate", title=f"T4 recipe: {n_t4} steps")
axs[1].set(xlabel="step", title="the last 1400 steps (the cooldowns)")
axs[0].legend(fontsize=7); plt.tight_layout(); plt.show()


# %% [markdown]
# The area under each curve, as a fraction of a constant peak rate's, is how far the optimizer may travel in
# total. WSD keeps most of it (0.87) and still ends at the floor; cosine keeps 0.55, linear about the same.

# %%
def area(style, **kw):
    sch = build_schedule(dataclasses.replace(t4.schedule, lr_decay_style=style, **kw), n_t4, lr_t4)
    return sum(sch(s) for s in range(n_t4)) / (lr_t4 * n_t4)
areas = {s: area(s) for s in ("constant", "cosine", "linear", "wsd")}
print({k: round(v, 3) for k, v in areas.items()})
assert areas["cosine"] < areas["wsd"] < areas["constant"]
test_close(areas["wsd"], 0.99 - 0.2 * (1 - (0.1 + 0.9 / 3)), eps=0.01)   # 1-sqrt cooldown keeps 1/3 of the drop

# %% [markdown]
# ## What a schedule does to a run
#
# A schedule is judged by the loss at the end. A small real run shows the mechanics in seconds on a CPU: the
# smoke config's GPT-NeoX (with a 256-entry vocabulary: one token per byte, so no tokenizer is involved) learns
# to predict the next byte of Python from the standard library, with AdamW at a peak rate of 3e-3 for 120
# steps, under a constant rate, cosine and WSD, each with 10% warmup. The validation loss is measured on
# other files. (Chapter 05's `train(cfg)` does the same with `lr-decay-style` set in the config: that is what
# the exercise uses.)

# %%
#| hide
import sysconfig
from pathlib import Path

from torch import nn

from neoxcourse.model import GPTNeoX
from neoxcourse.optim import build_optimizer
from neoxcourse.train import lm_loss, train_step

def code_bytes(files) -> torch.Tensor:
    return torch.tensor(list(b"\n".join(f.read_bytes() for f in files)), dtype=torch.long)

_files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
_files = [_files[i] for i in torch.randperm(len(_files), generator=torch.Generator().manual_seed(0))[:70]]
TRAIN_BYTES, VAL_BYTES = code_bytes(_files[:60]), code_bytes(_files[60:])
BYTE_MODEL = dataclasses.replace(cfg.model, vocab_size=256)

def windows(data, gen, batch=8, seq=64):
    i = torch.randint(0, len(data) - seq - 1, (batch,), generator=gen)
    idx = i[:, None] + torch.arange(seq + 1)
    return data[idx[:, :-1]], data[idx[:, 1:]]

def run_with_schedule(sched_cfg, steps=120, lr=3e-3, seed=0):
    "Train the byte-level smoke model with AdamW under a schedule; return (lrs, train losses, val loss)."
    torch.manual_seed(seed)
    model = GPTNeoX(BYTE_MODEL)
    opt = build_optimizer(model, dataclasses.replace(cfg.optimizer, type="adamw", lr=lr))
    schedule = build_schedule(sched_cfg, steps, lr)
    gen, lrs, losses = torch.Generator().manual_seed(seed), [], []
    fp32 = torch.amp.GradScaler("cpu", enabled=False)                  # fp32 on the CPU: no loss scaling
    for step in range(steps):
        for group in opt.param_groups: group["lr"] = schedule(step)     # what chapter 05's loop does
        out = train_step(model, opt, fp32, [windows(TRAIN_BYTES, gen)])  # chapter 05's training step
        lrs.append(schedule(step)); losses.append(out.loss.item())
    with torch.no_grad():
        vgen = torch.Generator().manual_seed(1)
        val = sum(lm_loss(model(x), y).item() for x, y in (windows(VAL_BYTES, vgen, batch=16) for _ in range(8))) / 8
    return lrs, losses, val


# %%
#| slow
runs = {}
for style in ("constant", "cosine", "wsd"):
    runs[style] = run_with_schedule(scfg(style, warmup=0.1, min_lr=3e-4))
fig, axs = plt.subplots(1, 2, figsize=(10, 3))
for style, (lrs_, losses, val) in runs.items():
    axs[0].plot(lrs_, label=style)
    smooth = [sum(losses[max(0, i - 9):i + 1]) / len(losses[max(0, i - 9):i + 1]) for i in range(len(losses))]
    axs[1].plot(smooth, label=f"{style}: val {val:.3f}")
axs[0].set(xlabel="step", ylabel="learning rate"); axs[1].set(xlabel="step", ylabel="train loss (10-step mean)")
axs[1].legend(); plt.tight_layout(); plt.show()
vals = {k: round(v[2], 4) for k, v in runs.items()}
print("validation loss (nats per byte):", vals)
assert all(2.0 < v < 4.0 for v in vals.values())

# %% [markdown]
# What the numbers say (seed 0: constant 2.331, cosine 2.375, WSD 2.323 nats per byte, measured on a CPU): a
# run of 120 steps is far from converged, so steps at the peak rate count, and WSD keeps the peak for 80% of the
# run and still cools down at the end. That is the *argument* for WSD; it is not evidence that WSD is better.
# These are single runs of one seed, the three numbers lie within 0.05 nats of each other, and chapter 07a
# (designing an experiment) shows that seeds alone move results of this size. The GPU section below gives what
# runs with several seeds and budgets support.

# %% [markdown]
# ## Warmup length, WSD's cooldown fraction and shape
#
# Three knobs of a WSD schedule, each changed alone on the same small run (the byte-level model above, AdamW at
# 3e-3, 60 steps, seed 0): the warmup (0, 10% or 30% of the run), the share of the run spent cooling down
# (`decay_fraction` 0.1, 0.2 or 0.4) and the cooldown's shape (linear, cosine, 1 - sqrt). What to look at: the
# final validation loss, and how much of it each knob moves. With one seed, differences below a few hundredths
# are noise (chapter 07a).

# %%
knobs = {"wsd (warmup 0.1, decay 0.2, 1-sqrt)": scfg("wsd", warmup=0.1, min_lr=3e-4),
         "warmup 0": scfg("wsd", warmup=0.0, min_lr=3e-4),
         "warmup 0.3": scfg("wsd", warmup=0.3, min_lr=3e-4),
         "decay_fraction 0.1": scfg("wsd", warmup=0.1, min_lr=3e-4, decay_fraction=0.1),
         "decay_fraction 0.4": scfg("wsd", warmup=0.1, min_lr=3e-4, decay_fraction=0.4),
         "shape linear": scfg("wsd", warmup=0.1, min_lr=3e-4, decay_shape="linear")}
knob_runs = {name: run_with_schedule(sc, steps=60) for name, sc in knobs.items()}
fig, ax = plt.subplots(figsize=(7, 3))
for name, (lrs_, _, val) in knob_runs.items(): ax.plot(lrs_, label=f"{name}: val {val:.3f}")
ax.set(xlabel="step", ylabel="learning rate"); ax.legend(fontsize=7); plt.tight_layout(); plt.show()
for name, (_, _, val) in knob_runs.items(): print(f"{name:36s} final val loss {val:.4f}")
assert all(2.0 < v[2] < 4.5 for v in knob_runs.values())


# %% [markdown]
# What you should see (seed 0, on a CPU): the six runs end between 2.439 and 2.487 nats per byte; no warmup
# was best here and a 30% warmup or a 40% cooldown worst, about 0.05 nats apart. That is a few times the
# seed-to-seed spread of chapter 07a's bench (0.012, on 30-step runs), so the largest differences may be real, but
# one seed cannot say which: the first try-this cell reruns them with seeds. A short run also favours a short
# warmup, since every warmup step is a step below the peak. Published guidance from long
# runs (Hägele et al. 2024, *Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations*): a
# cooldown of 10-20% of the run with a (1 - sqrt) shape matches cosine, and longer cooldowns help a little.
# The recipes here use 20% and (1 - sqrt); the lab recipe (chapter 07a's experiment) is the place to test them
# with seeds.

# %% [markdown]
# ## One WSD run, several budgets: branching the cooldown
#
# WSD's stable phase does not depend on the budget: with the warmup fixed in *steps*, the schedules of budgets
# $N_1 < N_2 < \dots$ agree on every step before their cooldowns start, at $N_i (1 - f)$. So one run at the peak
# rate, checkpointed at each $N_i(1-f)$, serves all of them: resume each checkpoint with its own cooldown and you
# have the run of that budget, for the price of its cooldown only. On Colab, where the session may end before
# the hour does, this means a finished, cooled-down model at every budget you passed.
#
# One catch: the config's `warmup` is a *fraction* of the decay length, so budgets read from a config get
# warmups of different lengths; `wsd_branches` takes the warmup in steps (set `warmup` to $W/N$ per budget to
# get the same schedule from a config).

# %%
#| export
def wsd_branches(lr: float, min_lr: float, warmup_iters: float, budgets, decay_fraction: float = 0.2,
                 decay_shape: str = "1-sqrt") -> dict:
    "One WSD run for several budgets: {budget: (step its cooldown branches at, that budget's Schedule)}."
    out = {}
    for n in sorted(budgets):
        branch = math.floor(n * (1.0 - decay_fraction))    # the first step whose lr is below the peak
        if branch < warmup_iters:
            raise ConfigError(f"budget {n}: its cooldown would start at step {branch}, inside the warmup "
                              f"({warmup_iters:g} steps); use a longer budget or a shorter warmup")
        out[n] = (branch, Schedule("wsd", lr, min_lr, warmup_iters, n, decay_fraction, decay_shape))
    return out

def stable_schedule(branches: dict) -> Schedule:
    "The shared stable run of `wsd_branches`: the warmup, then the peak rate (every branch before its step)."
    sch = next(iter(branches.values()))[1]
    return Schedule("constant", sch.lr, sch.lr, sch.warmup_iters, max(branches))


# %%
branches = wsd_branches(1.0, 0.1, 10, (100, 250, 400))
stable = stable_schedule(branches)
for n, (b, sch) in branches.items():
    test_eq([sch(s) for s in range(b)], [stable(s) for s in range(b)])   # identical before the branch
    assert sch(b) < 1.0 and sch(n - 1) == 0.1                            # then its own cooldown, to the floor
    via_config = build_schedule(scfg("wsd", warmup=10 / n, min_lr=0.1), n, 1.0)   # the config's way
    test_close([via_config(s) for s in range(n)], [sch(s) for s in range(n)], eps=1e-12)
test_eq({n: b for n, (b, _) in branches.items()}, {100: 80, 250: 200, 400: 320})
test_fail(lambda: wsd_branches(1.0, 0.1, 30, (30, 100)), contains="inside the warmup")

# %% [markdown]
# Now with training. `branched_runs` trains the byte-level model once at the stable rate, saving model,
# optimizer and data position (the generator's state) at each branch step the way a checkpoint does (`torch.save`
# into bytes), then resumes each with its cooldown. `straight_run` trains each budget from scratch with its own
# WSD schedule. On a CPU the two must give the very same parameters.

# %%
#| hide
import io
import time

def _adamw(model, lr):
    return build_optimizer(model, dataclasses.replace(cfg.optimizer, type="adamw", lr=lr))

def _step(model, opt, lr, gen):
    for group in opt.param_groups: group["lr"] = lr
    train_step(model, opt, torch.amp.GradScaler("cpu", enabled=False), [windows(TRAIN_BYTES, gen)])

def _flat(model): return torch.cat([p.detach().flatten() for p in model.parameters()])

def straight_run(sch, seed=0):
    "Train budget sch.decay_iters from scratch under one WSD schedule; return the flat parameters."
    torch.manual_seed(seed); model = GPTNeoX(BYTE_MODEL); opt = _adamw(model, sch.lr)
    gen = torch.Generator().manual_seed(seed)
    for step in range(sch.decay_iters): _step(model, opt, sch(step), gen)
    return _flat(model)

def branched_runs(branches, seed=0):
    "One stable run, checkpointed at every branch step, then each budget's cooldown: {budget: flat params}."
    stable = stable_schedule(branches)
    torch.manual_seed(seed); model = GPTNeoX(BYTE_MODEL); opt = _adamw(model, stable.lr)
    gen, saved = torch.Generator().manual_seed(seed), {}
    last = max(b for b, _ in branches.values())
    for step in range(last + 1):
        if step in {b for b, _ in branches.values()}:
            buf = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "data": gen.get_state()}, buf)
            saved[step] = buf.getvalue()
        if step < last: _step(model, opt, stable(step), gen)
    out = {}
    for n, (b, sch) in branches.items():
        state = torch.load(io.BytesIO(saved[b]), weights_only=False)
        model = GPTNeoX(BYTE_MODEL); model.load_state_dict(state["model"])
        opt = _adamw(model, sch.lr); opt.load_state_dict(state["optimizer"])
        gen = torch.Generator(); gen.set_state(state["data"])
        for step in range(b, n): _step(model, opt, sch(step), gen)
        out[n] = _flat(model)
    return out


# %%
t0 = time.time()
byte_branches = wsd_branches(3e-3, 3e-4, 3, (20, 30, 40))
branched = branched_runs(byte_branches)
for n, (b, sch) in byte_branches.items():
    straight = straight_run(sch)
    print(f"budget {n}: branched at step {b}, max |branched - straight| = {(branched[n] - straight).abs().max():.1e}")
    assert torch.equal(branched[n], straight)
steps_branched = max(byte_branches) * 0.8 + sum(n - b for n, (b, _) in byte_branches.items())
print(f"steps trained: {steps_branched:.0f} branched against {sum(byte_branches)} straight ({time.time() - t0:.0f} s)")

# %% [markdown]
# What you should see: differences of exactly zero, and about half the steps. Branching is exact because
# everything the cooldown reads (weights, optimizer state, the data position) is in the checkpoint and the
# schedules agree before the branch. On a GPU, fp16 and non-deterministic kernels make the branch equal to the
# straight run only up to that noise, as any resume is. The course loop (`train(cfg, resume=True)`) resumes
# from the *newest* checkpoint of a folder, so branching with it today means copying the stable run's checkpoint
# at the branch step into each branch's folder; a command for that is not part of the library yet.

# %% [markdown]
# ## On the GPU: WSD against cosine at several budgets
#
# Does WSD beat cosine? The answer depends on the budget and on how many seeds stand behind it. The committed
# runs, smallest budget first:
#
# - **13.1M tokens** (chapter 06's experiment, `bench/results/optimizer_experiment.json`: the T4 recipe's model,
#   400 steps of 32 x 1024 tokens, AdamW, each schedule at the best of three peak rates, two seeds);
# - **the lab protocol** (`bench/results/lab_protocol.json`: the lab recipe, 6.6M tokens a run, and the T4 recipe
#   at 320, 1000 and 3200 steps of 64 x 1024 tokens, 21M to 210M tokens, 2-3 seeds, rates tuned per arm and
#   budget). Its first GPU call is committed: the lab recipe's learning-rate grids, one seed each; the seeds and
#   the T4-recipe budgets are still being measured, and the table below shows whatever the file holds;
# - **about 80M tokens**, one seed each: chapter 09's capstone pair (`bench/results/capstone_eval_adamw-*.json`)
#   and the measured anchor of `reference/FACTS.md` (78.6M tokens: WSD 0.727 against cosine 0.745 bits per byte).
#
# Differences are in validation bits per byte, WSD minus cosine (negative: WSD better), paired by seed, with
# the 95% t interval of chapter 07a where there are two or more pairs.

# %%
import json
from neoxcourse.design import paired_verdict     # chapter 07a's paired comparison (the course layer)
results = cfg.root / "bench" / "results"
budget_rows = []   # (source, tokens, pairs, mean WSD - cosine in bits/byte, low, high)
exp_path = results / "optimizer_experiment.json"
if exp_path.exists():
    exp = json.loads(exp_path.read_text())
    tuned = {row["name"]: row["lr"] for row in exp["table"]}
    at_tuned = lambda name: {r["seed"]: r["final_bits_per_byte"] for r in exp["runs"].values()
                             if r["name"] == name and r["lr"] == tuned[name] and not r["diverged"]}
    v = paired_verdict(at_tuned("adamw_cosine"), at_tuned("adamw_wsd"))
    budget_rows.append(("optimizer_experiment (T4 recipe, 400 x 32k)", exp["tokens_per_run"], v.pairs, v.mean,
                        v.low, v.high))
lab_path = results / "lab_protocol.json"
if lab_path.exists():
    doc = json.loads(lab_path.read_text())
    for study, rows in doc.get("summary", {}).items():
        arm = {r["arm"]: r for r in rows}
        p = arm.get("adamw_wsd", {}).get("paired_vs_baseline")
        if p: budget_rows.append((f"lab_protocol {study}", arm["adamw_wsd"]["tokens"], p["pairs"], p["mean"],
                                  p["low"], p["high"]))
cap = {s: results / f"capstone_eval_adamw-{s}.json" for s in ("cosine", "wsd")}
if all(p.exists() for p in cap.values()):
    bpb = {s: json.loads(p.read_text())["metrics"]["bits_per_byte"] for s, p in cap.items()}
    budget_rows.append(("capstone (chapter 09, T4 hour)", None, 1, bpb["wsd"] - bpb["cosine"], None, None))
budget_rows.append(("anchor of reference/FACTS.md", 78.6e6, 1, 0.727 - 0.745, None, None))
fmt = lambda x: "" if x is None else f"{x:+.3f}"
print(f"{'source':45s} {'tokens':>7s} {'pairs':>5s} {'WSD - cosine':>12s}  95% interval")
for src_, tokens, pairs, mean, low, high in budget_rows:
    tok = f"{tokens / 1e6:.1f}M" if tokens else "~80M"
    print(f"{src_:45s} {tok:>7s} {pairs:5d} {mean:+12.3f}  {f'[{fmt(low)}, {fmt(high)}]' if low is not None else '(one run each)'}")
if not lab_path.exists():
    print("\nbench/results/lab_protocol.json is not committed yet: the 21M-210M budgets are still being measured")

# %%
if exp_path.exists():
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for r in exp["runs"].values():
        if r["name"] not in ("adamw_cosine", "adamw_wsd") or r["lr"] != tuned[r["name"]]: continue
        steps = sorted(r["val_curve"], key=int)
        ax.plot([int(s) * r["tokens_per_step"] / 1e6 for s in steps], [r["val_curve"][s] for s in steps],
                "o-" if r["name"] == "adamw_wsd" else "s--", label=f"{r['name']} lr {r['lr']:g} seed {r['seed']}")
    ax.set(xlabel="tokens (M)", ylabel="validation loss (nats/token)", ylim=(2.3, 5.5),
           title="AdamW, cosine against WSD at 13.1M tokens (H200 in T4 emulation)")
    ax.legend(fontsize=8); plt.tight_layout(); plt.show()

# %% [markdown]
# The curves at 13.1M tokens show *when* the gap opens: level until about step 200, then WSD, still at its
# peak, pulls ahead while cosine's rate is already falling, and its cooldown (the last 80 steps) adds most of the
# rest. Read from step 300, before WSD's cooldown, the gap is about half the final one: comparing runs before the
# end of their schedules (chapter 07a) would have reported a different number.

# %% [markdown]
# What the committed runs support (read the table above; it grows when the lab protocol's results land):
#
# - At **6.6M tokens** (the lab recipe, each schedule at the best of three peak rates, 4e-3 for both) WSD ended
#   0.12 bits per byte ahead of cosine, and ahead at every rate of the grid; one seed so far, so no interval.
# - At **13.1M tokens** WSD ended ahead of cosine for AdamW at every peak rate of the grid and on both seeds at
#   the tuned rate (by 0.22 and 0.23 bits per byte). Two pairs give a t interval of $\pm 12.7\,s_d/\sqrt 2$;
#   here the two differences are so close that it still excludes zero, but two seeds say little about how
#   large the spread of the difference really is.
# - At **about 80M tokens** the gap is much smaller: 0.046 bits per byte (5%) in the capstone pair and 0.018 in
#   the FACTS.md anchor, one seed each, so no interval. Published comparisons at larger scale (Hägele et al.
#   2024; Wen et al. 2025) find WSD about equal to a tuned cosine at the end of the budget.
# - So: the gap shrinks as the budget grows, from large at a budget far from convergence to about the size of
#   seed noise near 80M tokens. "WSD beats cosine at the same budget" holds at 13M tokens with two seeds; at
#   larger budgets the committed runs do not show it beyond one seed. The lab protocol's 21M-210M budgets, with
#   2-3 seeds and rates tuned per budget, are still being measured; they are what will settle the trend.

# %% [markdown]
# ## Exercise: compare schedules and submit the comparison
#
# **Task.** Train the same config with at least three values of `lr-decay-style` (say `constant`, `cosine` and
# `wsd`, or WSD with different `decay_shape`s), everything else equal, with W&B on (offline is fine). Start
# from `exercises/07_schedules/starter.py`: `compare_schedules(cfg, styles)` runs chapter 05's `train` once per
# schedule and returns `{schedule: W&B run folder}`. On a T4, use `configs/lab.yml`; on a CPU, the smoke config.
#
# **How it is checked.** The check reads the runs, not numbers you type: each run's config (every key but the
# schedule must be equal, so the comparison changes one thing), its history (the final `validation/lm_loss`,
# logged at the last iteration, so every run finished) and its schedule. It is **pass/fail**: the losses of
# different learners come from different configs and budgets, so they are not ranked here; the optimization
# track (appendix A5) is where training algorithms are ranked, under one fixed recipe.
#
# **Submit.** `python starter.py --submit --name YOU` checks the runs and records the comparison as a W&B run.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import math
from pathlib import Path

from neoxcourse.config import ConfigError
from neoxcourse.schedules import _style
from neoxcourse.tracking import RunRecord, read_run

SCHEDULE_KEYS = ("lr-decay-style", "lr_decay_style", "neoxcourse.schedule.decay_shape")  # what may differ
RUN_KEYS = ("save", "load", "wandb_run_name", "wandb-run-name", "wandb_group", "wandb-group")  # differ by construction

def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict): out.update(_flat(v, f"{prefix}{k}."))
        else: out[f"{prefix}{k}"] = v
    return out

def schedule_of(run: RunRecord) -> str:
    "The schedule a run trained with, read from its own config: `wsd:1-sqrt` names WSD's cooldown shape."
    flat = {k.replace("_", "-"): v for k, v in _flat(run.config).items()}
    style = flat.get("lr-decay-style")
    shape = flat.get("neoxcourse.schedule.decay-shape") if style == "wsd" else None
    return f"{style}:{shape}" if shape else str(style)

def check_schedule_runs(runs: list) -> dict:
    "Exercise 07 on W&B run records: same config but the schedule, complete, validation loss read from history."
    if len(runs) < 3: raise ExerciseError(f"{len(runs)} runs; compare three or more schedules")
    flats = [{k: v for k, v in _flat(r.config).items() if k not in SCHEDULE_KEYS and k.split(".")[-1] not in RUN_KEYS}
             for r in runs]
    for r, f in zip(runs[1:], flats[1:]):
        changed = sorted(k for k in set(f) | set(flats[0]) if f.get(k) != flats[0].get(k))
        if changed:
            raise ExerciseError(f"run {r.id} differs from run {runs[0].id} in {', '.join(changed[:5])}, not only "
                                f"in the schedule: a comparison changes one thing")
    finals = {}
    for r in runs:
        if not r.config: raise ExerciseError(f"run {r.id} has no config: submit the runs `neoxcourse train` wrote")
        iters = _flat(r.config).get("train-iters", _flat(r.config).get("train_iters"))
        rows = [row for row in r.history if isinstance(row.get("validation/lm_loss"), (int, float))]
        if not rows: raise ExerciseError(f"run {r.id} logged no validation/lm_loss: set eval-interval")
        last = max(rows, key=lambda row: row.get("_step", 0))
        if iters is not None and last.get("_step") != iters:
            raise ExerciseError(f"run {r.id} stopped at iteration {last.get('_step')} of {iters}: finish every run")
        name = schedule_of(r)
        if name in finals: raise ExerciseError(f"two runs trained with schedule {name}: compare different ones")
        try: _style(name.partition(":")[0])
        except ConfigError as e: raise ExerciseError(str(e)) from None
        finals[name] = float(last["validation/lm_loss"])
    best = min(finals, key=finals.get)
    return {"schedules_compared": len(finals), "best_schedule": best, "best_val_loss": finals[best],
            "spread": max(finals.values()) - finals[best], "final_val_loss": finals}

def check_schedule_comparison(runs) -> dict:
    "Exercise check: the W&B run folders of three or more schedules (what compare_schedules returns); pass/fail."
    items = list(runs.values()) if isinstance(runs, dict) else list(runs) if isinstance(runs, (list, tuple)) else None
    if not items or any(isinstance(v, (int, float)) for v in items):
        raise ExerciseError("answer with the runs themselves (compare_schedules returns {schedule: W&B run "
                            "folder}), not numbers: a typed loss cannot be checked, a run's history can")
    records = []
    for v in items:
        if not isinstance(v, (str, Path)) or not Path(v).is_dir():
            raise ExerciseError(f"{v!r} is not a W&B run folder (offline-run-... or run-...)")
        try: records.append(read_run(v))
        except FileNotFoundError: raise ExerciseError(f"{v} is not a W&B run folder (no run-<id>.wandb in it)") from None
        except ValueError as e: raise ExerciseError(f"{v}: {e}") from None
    return check_schedule_runs(records)

def compare_schedules(cfg, styles=("constant", "cosine", "wsd"), overrides: dict | None = None) -> dict:
    "Train `cfg` once per schedule (`wsd:<shape>` sets WSD's cooldown shape); return {schedule: W&B run folder}."
    from neoxcourse.config import load_config
    from neoxcourse.train import train
    results = {}
    for name in styles:
        style, _, shape = name.partition(":")
        over = {**(overrides or {}), "lr-decay-style": style, "save": str(cfg.resolve(cfg.training.save or
                "checkpoints")) + f"-schedule-{name.replace(':', '-')}"}
        if shape: over["neoxcourse.schedule.decay_shape"] = shape
        res = train(load_config(cfg.path, over))
        if res.wandb_dir is None:
            raise ValueError(f"{name}: the run wrote no W&B run (the check reads it): set neoxcourse.wandb.mode "
                             f"to offline or online, not disabled")
        results[name] = str(res.wandb_dir)
    return results

register_exercise(Exercise("07_schedules", "Compare learning-rate schedules", "schedules_compared", True,
                           (3, 100), check_schedule_comparison))

# %% [markdown]
# A dictionary of typed losses is refused (nothing in it can be verified). The rules the check applies to the
# runs it reads are tested on run records built here: three schedules pass; a run that changed something besides
# the schedule, or two runs of the same schedule, fail with the reason.

# %%
from neoxcourse.exercises import check_exercise, check_schedule_runs
from neoxcourse.tracking import RunRecord
test_fail(lambda: check_exercise("07_schedules", {"constant": 0.1, "cosine": 0.2, "wsd": 0.05}),
          contains="not numbers")
def _run(i, style, loss, **changes):   # a run as read back from W&B: its config and its history
    cfg = {"lr-decay-style": style, "train-iters": 20, "hidden-size": 64, "save": f"ck-{i}", **changes}
    return RunRecord(id=f"r{i}", config=cfg, history=[{"_step": 10, "validation/lm_loss": loss + 1},
                                                      {"_step": 20, "validation/lm_loss": loss}])
result = check_schedule_runs([_run(0, "constant", 2.3), _run(1, "cosine", 2.4), _run(2, "wsd", 2.2)])
test_eq((result["best_schedule"], result["schedules_compared"]), ("wsd", 3))
test_fail(lambda: check_schedule_runs([_run(0, "constant", 2.3), _run(1, "cosine", 2.4),
                                       _run(2, "wsd", 2.2, **{"hidden-size": 128})]), contains="hidden-size")
test_fail(lambda: check_schedule_runs([_run(0, "cosine", 2.3), _run(1, "cosine", 2.4), _run(2, "wsd", 2.2)]),
          contains="two runs")

# %%
#| eval: false
# Your turn: run exercises/07_schedules/starter.py (python starter.py --submit --name YOU), or here:
# from neoxcourse.exercises import submit
# runs = compare_schedules(cfg, ("constant", "cosine", "wsd"))   # {schedule: W&B run folder}
# submit("07_schedules", runs, name="your-name", config={"config": str(cfg.path)})

# %% [markdown]
# ## Try this
#
# - In the knobs cell, set `steps=120` for every run: do the differences between warmups and cooldown fractions
#   grow or shrink? Add a second seed (`run_with_schedule(sc, steps=60, seed=1)`) and see which differences
#   survive it.
# - Branch at more budgets: `wsd_branches(3e-3, 3e-4, 3, (20, 25, 30, 35, 40))`. How many steps does the branched
#   version train, against the straight runs?
# - Give `wsd_branches` a warmup longer than the smallest budget's stable phase and read the error.

# %%
#| eval: false
sc = scfg("wsd", warmup=0.1, min_lr=3e-4)
print({seed: round(run_with_schedule(sc, steps=60, seed=seed)[2], 4) for seed in (0, 1, 2)})

# %% [markdown]
# ## Recap
#
# - A schedule is warmup (linear, over `warmup` x `lr-decay-iters` steps, GPT-NeoX's meaning) then a shape
#   from `lr` to `min_lr`: constant, linear, cosine, exponential, inverse square root, or warmup-stable-decay
#   with a linear, cosine or (1 - sqrt) cooldown over the last `decay_fraction`.
# - Each is a line or two of `Schedule`; they agree with hand-computed values and with PyTorch's `LinearLR`,
#   `CosineAnnealingLR`, `ExponentialLR` and `SequentialLR` wherever those compute the same function. GPT-NeoX's
#   `AnnealingLR` decays over a slightly different interval and clips at `min_lr` instead of decaying to it:
#   on the T4 recipe the two differ by up to 8% of the peak (under 2% without the floor).
# - `build_schedule(cfg.schedule, train_iters, lr)` is what the loop calls; a bad style, a warmup as long as
#   the run, or a cooldown inside the warmup is a `ConfigError` naming the key.
# - WSD keeps the peak rate for most of the run and cools down at the end. On the GPU it ended ahead of cosine at
#   6.6M tokens on the lab recipe (one seed, 0.12 bits per byte) and at 13.1M tokens on the T4 recipe (two
#   seeds, 0.22-0.23 bits per byte); at about 80M tokens the gap was 0.02-0.05 bits per byte
#   with one seed each, about the size of seed noise. The committed runs support "WSD ahead at short budgets, the
#   gap shrinking with the budget", not "WSD beats cosine at the same budget".
# - Warmup, cooldown fraction and shape moved a 60-step run's loss by up to 0.05 nats (one seed): a few times the
#   seed spread, so worth testing with seeds before believing.
# - `wsd_branches` turns one stable run into runs of several budgets; a branch is bit-identical to a straight
#   WSD run of that budget on a CPU (tested), at about half the steps for three budgets.
#
# Chapter 07a (designing an experiment) shows how to compare two arms with seeds and an interval; chapter 08 measures what the trained model can do: perplexity, bits per byte, line completion, HumanEval.
