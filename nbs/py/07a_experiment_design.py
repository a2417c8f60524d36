# Generated from nbs/07a_experiment_design.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/07a_experiment_design.py`.

# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07a · Designing an experiment: seeds, pairs, budgets and a verdict
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/07a_experiment_design.ipynb)
#
# > Chapters 06 (optimizers) and 07 (schedules) give you the arms; this chapter is about telling whether one arm
# > really beats another: the noise floor of seeds, paired comparisons with an interval, a tuning budget per arm,
# > comparing at the end of a schedule, tokens against seconds, batch size against learning rate, weight decay,
# > beta2 and epsilon, loss spikes, and your own experiment ending in a verdict computed from your W&B runs.

# %% [markdown]
# - **You will learn:** how large a difference must be before it counts, and how to measure that on your own
#   runs: seeds and the noise floor, paired comparisons with an interval, a tuning budget per arm, comparing at
#   the end of a schedule, tokens against seconds, batch size against learning rate, weight decay, beta2 and
#   epsilon, loss spikes; and `neoxcourse.design`'s `run_grid` and `verdict_from_runs`.
# - **You need:** a CPU for everything but your own experiment (it builds on chapters 05-07); a T4 for that
#   experiment on the lab recipe (`configs/lab.yml`).
# - **Time:** a few minutes on a CPU with the smoke config, as CI runs it; your experiment on a T4: about a
#   minute a run on the lab recipe (its own estimate; no T4 has timed it), so 2 arms x 3 seeds is 6-8 minutes.
# - **You should see:** a spread of final losses across seeds that is not small next to the differences you
#   care about; intervals that cover the truth 95% of the time on synthetic runs; and a verdict line such as
#   `lion - adamw on validation/lm_loss: +0.31 [+0.12, +0.50] (95%, 3 pairs, p = 0.01): adamw better`.

# %%
#| default_exp design

# %%
#| hide
# In Colab only: fetch the course and install it. Elsewhere this cell does nothing.
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.exists("/content/neoxcourse"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/neoxcourse/neoxcourse",
                        "/content/neoxcourse"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/neoxcourse[dev]"],
                       check=True)
    sys.path.insert(0, "/content/neoxcourse")  # an editable install is seen only after a restart
    os.chdir("/content/neoxcourse/nbs")

# %% tags=["parameters"]
config_path = None  # None: the lab recipe (configs/lab.yml) on a GPU, configs/smoke.yml on a CPU
overrides = {}      # GPT-NeoX keys, dotted for nested ones, e.g. {"train-iters": 50}

# %%
#| export
import math
import statistics
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path

from neoxcourse.config import ConfigError, load_config
from neoxcourse.experiments import final_value, flatten, load_runs

# %%
#| hide
import dataclasses
import json
import random
import sysconfig
import tempfile
import time

import matplotlib.pyplot as plt
import torch
from fastcore.test import test_close, test_eq, test_fail

from neoxcourse.config import OptimizerConfig, default_config_path
from neoxcourse.model import GPTNeoX
from neoxcourse.optim import build_optimizer
from neoxcourse.schedules import Schedule
from neoxcourse.tracking import RunRecord
from neoxcourse.train import lm_loss, train_step

# %%
import torch
from neoxcourse.config import project_root
# the lab recipe on a GPU (about a minute a run on a T4), the smoke recipe on a CPU
cfg = load_config(config_path or project_root() / "configs" / ("lab.yml" if torch.cuda.is_available() else "smoke.yml"),
                  overrides)
print(cfg.path.name, cfg.optimizer.type, cfg.optimizer.lr, cfg.schedule.lr_decay_style, cfg.training.train_iters)

# %% [markdown]
# ## A small, fast bench for the ideas
#
# Every idea below is shown with real training runs. To keep the chapter at a few minutes on a CPU, the
# demonstrations use chapter 06's bench: the smoke config's GPT-NeoX with a 256-entry vocabulary (one token per
# byte of Python from the standard library, so no tokenizer is needed), chapter 05's `train_step`, and a fixed
# set of held-out windows for validation. A seed fixes the initial weights *and* the order of the batches.
# Your own experiment at the end uses the real loop, `train(cfg)`, on the lab recipe.

# %%
#| hide
BYTE_MODEL = dataclasses.replace(load_config(cfg.root / "configs" / "smoke.yml").model, vocab_size=256)
_files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
_files = [_files[i] for i in torch.randperm(len(_files), generator=torch.Generator().manual_seed(0))[:70]]
_bytes = lambda fs: torch.tensor(list(b"\n".join(f.read_bytes() for f in fs)), dtype=torch.long)
TRAIN_BYTES, VAL_BYTES = _bytes(_files[:60]), _bytes(_files[60:])

def windows(data, gen, batch=8, seq=64):
    "A random batch of (x, y) windows of a byte stream, y shifted by one."
    i = torch.randint(0, len(data) - seq - 1, (batch,), generator=gen)
    idx = i[:, None] + torch.arange(seq + 1)
    return data[idx[:, :-1]], data[idx[:, 1:]]

_vgen = torch.Generator().manual_seed(1)
VAL_SET = [windows(VAL_BYTES, _vgen, batch=16) for _ in range(6)]   # the same windows for every run

def val_loss(model) -> float:
    with torch.no_grad(): return sum(lm_loss(model(x), y).item() for x, y in VAL_SET) / len(VAL_SET)

def byte_run(opt_type="adamw", lr=3e-3, seed=0, steps=30, batch=8, schedule="cosine", weight_decay=0.1,
             eval_at=(), data_seed=None, **params):
    "Train the byte-level smoke model; return (final val loss, {step: val loss}, train losses)."
    torch.manual_seed(seed)
    model = GPTNeoX(BYTE_MODEL)
    oc = OptimizerConfig(type=opt_type, lr=lr, betas=(0.9, 0.99 if opt_type == "lion" else 0.95), eps=1e-8,
                         weight_decay=weight_decay, params=params)
    opt = build_optimizer(model, oc)
    sched = Schedule(schedule, lr, lr / 10, warmup_iters=max(1, steps // 10), decay_iters=steps)
    gen = torch.Generator().manual_seed(seed if data_seed is None else data_seed)
    fp32, curve, losses = torch.amp.GradScaler("cpu", enabled=False), {}, []
    for step in range(steps):
        for g in opt.param_groups: g["lr"] = sched(step)
        losses.append(train_step(model, opt, fp32, [windows(TRAIN_BYTES, gen, batch)], "fp32", 1.0).loss.item())
        if step + 1 in eval_at: curve[step + 1] = val_loss(model)
    return val_loss(model), curve, losses


# %% [markdown]
# ## Seeds and the noise floor
#
# Change nothing but the seed and the final loss moves. That spread is the **noise floor**: a difference
# between two arms smaller than it says nothing from one run each. Three seeds of the same AdamW run:

# %%
t0 = time.time()
SEEDS = [0, 1, 2]
adamw = {s: byte_run("adamw", 3e-3, seed=s)[0] for s in SEEDS}
spread = statistics.stdev(adamw.values())
print("AdamW 3e-3, final val loss by seed:", {s: round(v, 4) for s, v in adamw.items()})
print(f"mean {statistics.mean(adamw.values()):.4f}, standard deviation across seeds {spread:.4f} "
      f"({time.time() - t0:.0f} s)")
assert 0 < spread < 0.2


# %% [markdown]
# What to see: the seeds differ in the second or third decimal. On the GPU the same holds at scale: in chapter
# 06's committed experiment (`bench/results/optimizer_experiment.json`) the two seeds of each leading arm differ
# by 0.13 to 0.17 nats, several times larger than many differences people report from one run. Rule: **never
# compare single runs**; measure the spread first, and plan seeds so the interval you expect is narrower than
# the difference you care about.

# %% [markdown]
# ## Paired comparisons and an interval
#
# Two arms run with the same seeds share their initial weights and their batches, so much of their seed-to-seed
# variation is common to both. Comparing **seed by seed** (the difference $d_s = b_s - a_s$ for each seed $s$)
# removes it. With $n$ pairs, mean $\bar d$ and standard deviation $s_d$, the 95% interval is Student's t:
#
# $$\bar d \pm t_{0.975,\,n-1}\, \frac{s_d}{\sqrt n}.$$
#
# With 2 pairs $t = 12.7$, with 3 it is 4.30, with 5 it is 2.78: two seeds give an interval so wide it rarely
# excludes zero; three is the least that usually says something. `t_quantile` computes the quantile (no SciPy
# needed: the t density integrated with Simpson's rule, then bisection):

# %%
#| export
def _t_cdf(x: float, df: int, n: int = 2000) -> float:
    "P(T <= x) for Student's t with df degrees of freedom (Simpson's rule on the density from 0 to |x|)."
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda t: c * (1 + t * t / df) ** (-(df + 1) / 2)
    a, h = abs(x), abs(x) / n
    area = h / 3 * (f(0) + f(a) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n)))
    return 0.5 + math.copysign(area, x)

@lru_cache(maxsize=256)                  # the same few quantiles are asked for again and again
def t_quantile(p: float, df: int) -> float:
    "The p quantile of Student's t with df degrees of freedom (p = 0.975 for a two-sided 95% interval)."
    if not (0 < p < 1 and df >= 1): raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5: return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p: hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


# %%
# textbook values: t_{0.975} for 1, 2, 4, 30 degrees of freedom
test_close([t_quantile(0.975, df) for df in (1, 2, 4, 30)], [12.706, 4.303, 2.776, 2.042], eps=1e-3)
test_close(t_quantile(0.5, 3), 0.0, eps=1e-9); test_close(t_quantile(0.025, 5), -2.571, eps=1e-3)
test_fail(lambda: t_quantile(1.2, 3), contains="0 < p < 1")


# %% [markdown]
# `paired_verdict` takes each arm's metric by seed and returns a `Verdict`: the mean difference (candidate minus
# baseline), its interval, a two-sided p-value, and a decision stated only as strongly as the interval allows.
# Lower is better for losses; pass `lower_is_better=False` for accuracies.

# %%
#| export
@dataclass
class Verdict:
    "A paired comparison of two arms over seeds: candidate - baseline, with its t interval."
    baseline: str
    candidate: str
    metric: str
    differences: dict            # seed -> candidate - baseline
    mean: float
    low: float
    high: float
    p_value: float
    confidence: float = 0.95
    lower_is_better: bool = True

    @property
    def pairs(self) -> int: return len(self.differences)

    @property
    def decision(self) -> str:
        "Which arm is better, or 'no difference shown' when the interval contains zero."
        if self.low <= 0 <= self.high: return "no difference shown"
        candidate_lower = self.high < 0
        return f"{self.candidate if candidate_lower == self.lower_is_better else self.baseline} better"

    def __str__(self) -> str:
        return (f"{self.candidate} - {self.baseline} on {self.metric}: {self.mean:+.4g} [{self.low:+.4g}, "
                f"{self.high:+.4g}] ({self.confidence:.0%}, {self.pairs} pairs, p = {self.p_value:.3g}): "
                f"{self.decision}")

def paired_verdict(baseline: dict, candidate: dict, confidence: float = 0.95, metric: str = "metric",
                   names: tuple = ("baseline", "candidate"), lower_is_better: bool = True) -> Verdict:
    "Compare two arms' {seed: value} seed by seed: mean difference, t interval, p-value, decision."
    seeds = sorted(set(baseline) & set(candidate), key=str)
    d = {s: candidate[s] - baseline[s] for s in seeds}
    bad = [s for s, v in d.items() if not math.isfinite(v)]
    if bad: raise ValueError(f"seed(s) {bad}: a value is not finite (a diverged run?); drop it or rerun it")
    if len(d) < 2:
        raise ValueError(f"{len(d)} seed(s) in common between {names[0]} {sorted(baseline, key=str)} and "
                         f"{names[1]} {sorted(candidate, key=str)}: run both arms with the same 2+ seeds")
    n, mean = len(d), statistics.mean(d.values())
    se = statistics.stdev(d.values()) / math.sqrt(n)
    half = t_quantile((1 + confidence) / 2, n - 1) * se
    p = 2 * (1 - _t_cdf(abs(mean) / se, n - 1)) if se > 0 else float(mean == 0)
    return Verdict(names[0], names[1], metric, d, mean, mean - half, mean + half, min(1.0, max(0.0, p)),
                   confidence, lower_is_better)


# %% [markdown]
# On synthetic runs with a known difference: candidate = baseline - 0.1 + a small wobble per seed. The interval
# is the hand-computed one and contains the true -0.1; the decision is "candidate better":

# %%
base = {1: 3.00, 2: 3.10, 3: 2.90, 4: 3.05}
wobble = {1: 0.01, 2: -0.01, 3: 0.02, 4: -0.02}
cand = {s: base[s] - 0.1 + wobble[s] for s in base}
v = paired_verdict(base, cand, metric="val loss", names=("adamw", "muon"))
print(v)
half = 3.182446 * math.sqrt((0.01**2 + 0.01**2 + 0.02**2 + 0.02**2) / 3) / 2   # t_{0.975,3} s_d / sqrt(4)
test_close(v.mean, -0.1, eps=1e-9); test_close((v.low, v.high), (-0.1 - half, -0.1 + half), eps=1e-5)
test_eq(v.decision, "muon better"); assert v.p_value < 0.01
test_eq(paired_verdict(cand, base, names=("muon", "adamw")).decision, "muon better")   # either way round
test_eq(paired_verdict(base, {s: x + 0.01 * (-1) ** s for s, x in base.items()}).decision, "no difference shown")
test_fail(lambda: paired_verdict({1: 3.0}, {1: 2.9}), contains="same 2+ seeds")
test_fail(lambda: paired_verdict(base, {**cand, 2: float("nan")}), contains="not finite")

# %% [markdown]
# An interval is only right if it covers the truth as often as it claims. The test: 1000 synthetic experiments
# of 3 seeds, a true difference of +0.05 and seed noise of 0.1 (independent per arm, plus a shared part per
# seed that pairing removes); the 95% interval must contain +0.05 in about 95% of them:

# %%
rng = random.Random(0)
covered = 0
for _ in range(1000):
    shared = {s: rng.gauss(0, 0.3) for s in range(3)}              # common to both arms of a seed
    a = {s: 3.0 + shared[s] + rng.gauss(0, 0.1) for s in range(3)}
    b = {s: 3.05 + shared[s] + rng.gauss(0, 0.1) for s in range(3)}
    w = paired_verdict(a, b)
    covered += w.low <= 0.05 <= w.high
print(f"coverage of the 95% interval: {covered / 1000:.3f}")
assert 0.93 < covered / 1000 < 0.97        # 95% +- 3 standard errors of 1000 draws

# %% [markdown]
# Now real runs: AdamW against Lion on the byte bench, both at a usual learning rate, the same three seeds. The
# paired interval against the unpaired one (each arm's mean with its own spread, Welch's interval):

# %%
lion = {s: byte_run("lion", 3e-4, seed=s, weight_decay=0.3)[0] for s in SEEDS}
v = paired_verdict(adamw, lion, metric="val loss (nats/byte)", names=("adamw", "lion"))
print(v)
va, vb = statistics.variance(adamw.values()), statistics.variance(lion.values())
n = len(SEEDS)
se_u = math.sqrt(va / n + vb / n)
df_w = (va / n + vb / n) ** 2 / ((va / n) ** 2 / (n - 1) + (vb / n) ** 2 / (n - 1))   # Welch-Satterthwaite
print(f"unpaired (Welch) half-width {t_quantile(0.975, round(df_w)) * se_u:.4f}; "
      f"paired half-width {(v.high - v.low) / 2:.4f}")
test_eq(v.pairs, len(SEEDS))

# %% [markdown]
# What to see: a clear verdict for AdamW (Lion about 1.5 nats worse, an interval far from zero on three
# pairs), and a paired interval somewhat narrower than the unpaired one: how much narrower depends on how much
# of the seed noise the two arms share. Only the interval's position against zero is a verdict; the point
# estimate alone is not. But a clear verdict can still answer the wrong question, as the next section shows.

# %% [markdown]
# ## A tuning budget per arm
#
# An untuned baseline is not a baseline. Each optimizer has its own good learning rate (Lion's is 3-10x below
# AdamW's in long runs, chapter 06), but "usual" is not "tuned": the right rate depends on the model, the batch
# and the length of the run. Give every arm the same tuning budget (the same number of grid points around its own
# usual value, one seed), pick each arm's best, and only then spend seeds. Lion at 3e-3 against the 3e-4 used
# above, seed 0:

# %%
lion_at_adamw_lr = byte_run("lion", 3e-3, seed=0, weight_decay=0.3)[0]
print(f"Lion at 3e-3 (AdamW's rate): {lion_at_adamw_lr:.4f}; Lion at 3e-4: {lion[0]:.4f}; AdamW at 3e-3: {adamw[0]:.4f}")

# %% [markdown]
# What to see: on this 30-step bench Lion at 3e-3 ends *below* AdamW (2.61 against 2.71 nats per byte on seed 0),
# where at 3e-4 it was 1.5 nats behind: the clear verdict of the previous section was about an untuned Lion, and
# tuning alone flips it (one seed here: spend seeds only after tuning). The
# GPU protocol (`bench/lab_protocol.py`) tunes every arm over its own grid, extends the grid when the best value
# sits at an edge (on the lab recipe's first call Muon's and SGD's best rates were at the edge of their grids, so
# their results are marked "tuning unfinished"), and reports the tuned rate beside each result; chapter 06's learning-rate curves show the
# U shapes. Wen et al. (2025, *Fantastic Pretraining Optimizers and Where to Find Them*) found that many
# reported optimizer speed-ups shrink once the AdamW baseline is tuned as carefully as the new method.

# %% [markdown]
# ## Compare only at the end of a schedule
#
# A cosine run and a WSD run of the same length are not comparable halfway: at 60% of the run cosine's rate is
# already low (its loss looks good), WSD's is still at the peak (its loss looks worse), and WSD's cooldown has
# not happened yet. Rankings read from the middle of runs can flip at the end. Validation loss of both, seed 0,
# measured along the way:

# %%
marks = (10, 18, 24, 30)
ends = {style: byte_run("adamw", 3e-3, seed=0, schedule=style, eval_at=marks)[1] for style in ("cosine", "wsd")}
print(f"{'step':>5s} {'cosine':>8s} {'wsd':>8s} {'wsd - cosine':>13s}")
for m in marks: print(f"{m:5d} {ends['cosine'][m]:8.4f} {ends['wsd'][m]:8.4f} {ends['wsd'][m] - ends['cosine'][m]:+13.4f}")

# %% [markdown]
# What to see: here WSD is ahead throughout, and the gap grows until its cooldown ends (about 0.04 nats at
# step 10, 0.08 at step 18, 0.10 at the end), so a comparison at step 18 reports four fifths of it. In longer
# runs the order itself can flip: chapter 07's GPU curves at 13M tokens are level until step 200, and Wen et al.
# (2025) report rankings that change when runs are compared before their decay ends. Compare arms only at the end
# of their own schedules; to compare at several budgets, run each budget with its own schedule (or branch WSD's cooldown from
# saved checkpoints, chapter 07). The same trap catches "tokens to reach the baseline's loss": a cosine run
# reaches a loss only near its end, so it is measured against the baseline's *final* loss.

# %% [markdown]
# ## Equal tokens or equal wall-clock
#
# Muon does more arithmetic per step than AdamW (five Newton-Schulz iterations per matrix), so it trains fewer
# tokens per second. Compared at equal tokens it may win; compared at equal time the win shrinks. Which is right
# depends on the question: "better per token" is about data efficiency; "better per hour of T4" is what a
# learner with a Colab session wants. The committed GPU experiment of chapter 06 gives both:

# %%
exp_path = cfg.root / "bench" / "results" / "optimizer_experiment.json"
if exp_path.exists():
    table = {row["name"]: row for row in json.loads(exp_path.read_text())["table"]}
    base = table["adamw_cosine"]
    for name in ("muon", "adamw_wsd"):            # Muon ran with WSD
        row = table.get(name)
        if row and row["tokens_to_baseline"]:
            print(f"{name:10s} tokens to the baseline's final loss {row['tokens_to_baseline'] / base['tokens_to_baseline']:.2f}x, "
                  f"seconds {row['seconds_to_baseline'] / base['seconds_to_baseline']:.2f}x "
                  f"(tokens/s {row['tokens_per_sec'] / base['tokens_per_sec']:.2f}x the baseline's)")
else:
    print("bench/results/optimizer_experiment.json is not here: run bench/optimizer_experiment.py on a GPU")


# %% [markdown]
# What to see: Muon's advantage in tokens (about 0.63x) becomes a smaller one in seconds (about 0.81x) because
# each step is slower; those seconds were measured on an H200, and a T4 may charge the extra matrix work
# differently. Report both, and say which one your claim is about.

# %% [markdown]
# ## Learning rate against batch size, and the critical batch size
#
# A larger batch averages more examples, so its gradient is less noisy and a larger step is safe. The usual
# rules: for SGD scale the learning rate linearly with the batch (Goyal et al. 2017), for Adam roughly with its
# square root (Malladi et al. 2022). Both hold only below the **critical batch size**: past it, a larger batch
# hardly reduces the steps needed, and the extra tokens are wasted (McCandlish et al. 2018, *An Empirical Model
# of Large-Batch Training*). Their estimate of it is the *simple noise scale*
# $B_{\text{noise}} = \operatorname{tr}(\Sigma) / \lVert G \rVert^2$: the per-example gradient variance over the
# squared true gradient. It can be estimated from the gradient norms at two batch sizes $b < B$:
#
# $$\lVert G \rVert^2 \approx \frac{B\,|g_B|^2 - b\,|g_b|^2}{B - b}, \qquad
#   \operatorname{tr}\Sigma \approx \frac{|g_b|^2 - |g_B|^2}{1/b - 1/B}.$$

# %%
#| export
def noise_scale(small_sq_norms: list, large_sq_norms: list, small: int, large: int) -> float:
    "McCandlish et al.'s simple noise scale tr(S)/|G|^2 from squared gradient norms at two batch sizes."
    gs, gl = statistics.mean(small_sq_norms), statistics.mean(large_sq_norms)
    true_sq = (large * gl - small * gs) / (large - small)
    trace = (gs - gl) / (1 / small - 1 / large)
    if true_sq <= 0: raise ValueError("the gradient is all noise at these batch sizes: measure at larger ones")
    return trace / true_sq


# %%
# exact on a synthetic case: |g_b|^2 = |G|^2 + tr(S)/b with |G|^2 = 2, tr(S) = 50 -> B_noise = 25
test_close(noise_scale([2 + 50 / 4], [2 + 50 / 64], 4, 64), 25.0)
test_fail(lambda: noise_scale([100.0], [1.0], 4, 64), contains="all noise")

# %% [markdown]
# Measured on the byte model after 20 AdamW steps (where training is, not at random initialisation), from 12
# batches of 4 windows and 12 of 32 at the same weights, in tokens (windows of 64 bytes):

# %%
torch.manual_seed(0)
model = GPTNeoX(BYTE_MODEL)
opt = build_optimizer(model, OptimizerConfig(type="adamw", lr=3e-3, betas=(0.9, 0.95), eps=1e-8,
                                             weight_decay=0.1, params={}))
gen, fp32 = torch.Generator().manual_seed(0), torch.amp.GradScaler("cpu", enabled=False)
for _ in range(20): train_step(model, opt, fp32, [windows(TRAIN_BYTES, gen)], "fp32", 1.0)
def grad_sq_norm(batch):
    model.zero_grad(); lm_loss(model(batch[0]), batch[1]).backward()
    return sum(p.grad.pow(2).sum().item() for p in model.parameters())
small = [grad_sq_norm(windows(TRAIN_BYTES, gen, 4)) for _ in range(12)]
large = [grad_sq_norm(windows(TRAIN_BYTES, gen, 32)) for _ in range(12)]
b_noise = noise_scale(small, large, 4, 32)
print(f"noise scale about {b_noise:.0f} windows = {b_noise * 64:,.0f} tokens per step")
assert b_noise > 0

# %% [markdown]
# What to see: a number of the order of the batches that train well here, from tens to hundreds of windows.
# The noise scale grows as the loss falls (the true gradient shrinks), which is why large runs raise the batch
# late in training. For the lab recipe (32 x 512 = 16k tokens a step) and the T4 recipe: when you change the batch,
# change the learning rate with it and re-tune, or the comparison is of two learning rates, not two batches.

# %% [markdown]
# ## Weight decay
#
# Decoupled weight decay multiplies each weight by $(1 - \eta\lambda)$ a step, so it acts on a timescale of
# $\tau = 1/(\eta\lambda)$ steps (Wang & Aitchison 2024 argue this timescale, as a fraction of the run, is what
# to hold fixed across run lengths). Chapter 06 shows its effect on the weights' size. A run much shorter than
# $\tau$ hardly feels it:

# %%
for path in ("lab.yml", "t4.yml"):
    rc = load_config(cfg.root / "configs" / path)
    tau = 1 / (rc.optimizer.lr * rc.optimizer.weight_decay)
    print(f"{path:8s} lr {rc.optimizer.lr:g}, weight decay {rc.optimizer.weight_decay:g}: tau = {tau:,.0f} steps, "
          f"run {rc.training.train_iters:,} steps ({rc.training.train_iters / tau:.2f} tau)")


# %% [markdown]
# What to see: the lab run lasts a small fraction of $\tau$, so on the lab recipe the weight-decay coefficient
# barely changes the result, and a weight-decay sweep there says little about longer runs. If you compare weight
# decay, compare $\eta\lambda$ times the run length, and expect effects only when it is of order one.

# %% [markdown]
# ## beta2 and epsilon in fp16
#
# Adam divides by $\sqrt{\hat v} + \epsilon$. Two things go wrong on a T4:
#
# - **beta2 sets how fast $v$ follows the gradient.** After a sudden 10x gradient, the step is
#   $m/\sqrt v$; with $\beta_2 = 0.999$ the average $v$ hardly moves in the first steps, so the update is
#   almost twice its usual size, and stays large while the spike lasts: a common cause of loss spikes. With
#   $\beta_2 = 0.95$ (the course's recipes, and most LLM recipes) $v$ reacts at once and the step even shrinks.
# - **epsilon must be small next to $\sqrt{\hat v}$.** Gradients of rarely used rows are tiny; where
#   $\sqrt{\hat v} \lesssim \epsilon$ Adam turns into SGD with a tiny rate for them. The course keeps the
#   optimizer state in fp32 (chapter 06: autocast leaves parameters and state in fp32), so $v$ itself does not
#   underflow; an fp16 state would flush every $g^2 < 6\times10^{-8}$ to zero.

# %%
def spike_step(beta2, beta1=0.9, spike=10.0):
    "Adam's first update after a gradient `spike` times its steady value 1, in units of the steady update 1."
    m, v = 1.0, 1.0                                         # steady state: m = g = 1, v = g^2 = 1
    m, v = beta1 * m + (1 - beta1) * spike, beta2 * v + (1 - beta2) * spike ** 2
    return m / math.sqrt(v)
for b2 in (0.95, 0.99, 0.999):
    print(f"beta2 {b2}: first update after a 10x gradient = {spike_step(b2):.2f} x the steady update")
test_close(spike_step(0.999), 1.9 / math.sqrt(0.999 + 0.1), eps=1e-9)
assert spike_step(0.95) < spike_step(0.999)
half_f16 = torch.tensor(1e-4, dtype=torch.float16) ** 2
print(f"a gradient of 1e-4 squared in fp16: {half_f16.item()}; in fp32: {(torch.tensor(1e-4) ** 2).item():.1e}")
test_eq(half_f16.item(), 0.0)


# %% [markdown]
# What to see: after a 10x gradient the first update is 0.78x the steady one at beta2 0.95 and 1.81x at 0.999:
# the larger beta2, the larger the step that follows a spike; in fp16 a squared gradient of 1e-4 is
# zero. Keep beta2 at 0.95-0.99 for short runs and the state in fp32; if you lower epsilon below 1e-8, check in
# your run's logs that nothing changes, since at these sizes it rarely matters.

# %% [markdown]
# ## Loss spikes, and what to do
#
# A spike is a step whose loss jumps well above the recent level. Some recover in a few steps; some start a
# divergence. `loss_spikes` flags the steps whose loss exceeds the median of the previous `window` losses by more
# than `k` times their median absolute deviation (robust to the spikes themselves):

# %%
#| export
def loss_spikes(losses: list, window: int = 20, k: float = 6.0) -> list:
    "Indices whose loss exceeds the previous `window` losses' median by more than k median absolute deviations."
    out = []
    for i in range(window, len(losses)):
        prev = losses[i - window:i]
        med = statistics.median(prev)
        mad = statistics.median(abs(x - med) for x in prev) or 1e-12
        if not math.isfinite(losses[i]) or losses[i] > med + k * mad: out.append(i)
    return out


# %%
trace = [3.0 - 0.01 * i + 0.005 * (-1) ** i for i in range(60)]
trace[40] += 0.5; trace[50] = float("nan")
test_eq(loss_spikes(trace), [40, 50])
test_eq(loss_spikes(trace[:40]), [])

# %% [markdown]
# On a real run: SGD with momentum at a high rate on the byte bench (nothing is forced). On seed 0 at 1.5 the
# detector finds no spike, which is what a clean run looks like; the try-this below raises the rate until it
# does:

# %%
_, _, sgd_losses = byte_run("sgd", 1.5, seed=0, steps=40, momentum=0.9, weight_decay=0.0)
spikes = loss_spikes(sgd_losses, window=10)
print("SGD lr 1.5: spikes at steps", spikes, "losses there:", [round(sgd_losses[i], 2) for i in spikes])


# %% [markdown]
# What to do, in order: (1) look at the gradient norm and loss scale around the step (chapter 06's traces; an
# fp16 overflow shows as a skipped step and a halved scale, not as a spike); (2) check the batch at that step
# (a run of repeated or binary data); (3) lower the peak learning rate or lengthen warmup, keep clipping at 1.0,
# lower beta2 (previous section); (4) for a spike that does not recover, resume from the checkpoint before it
# (chapter 05's exact resume) with a different data seed. Report spikes in your results; do not average them away.

# %% [markdown]
# ## Your experiment
#
# Write down, before running anything:
#
# 1. **the question**, one sentence with the metric: "does Lion (tuned) reach a lower validation loss than AdamW
#    (tuned) on the lab recipe in 400 steps?";
# 2. **the grid**: the arms, each with its tuned learning rate (chapter 06's learning-rate curve, or the GPU
#    protocol's tuned values), everything else equal;
# 3. **the seeds**: at least 3 per arm, the same seeds for every arm (pairs);
# 4. **the verdict rule**: the 95% paired interval of the difference; a claim only if it excludes zero.
#
# `run_grid` trains every arm with every seed through chapter 05's `train(cfg)`, one W&B run each (offline
# when you are not logged in) under `directory`. It first loads every arm's config, so a misspelt optimizer,
# schedule or key stops it before any run starts; a rerun after an interruption resumes each run from its
# checkpoint and skips finished ones. `verdict_from_runs` reads the W&B runs back (appendix A4's reader) and
# computes the verdict.

# %%
#| export
def grid_configs(cfg, arms: dict, seeds: list, directory, overrides: dict | None = None) -> dict:
    "Every (arm, seed) config of an experiment grid, loaded (and so checked) before anything trains."
    if not arms or not seeds: raise ValueError("an experiment needs at least one arm and one seed")
    out = {}
    for arm, arm_overrides in arms.items():
        for seed in seeds:
            over = {**(overrides or {}), **arm_overrides, "seed": seed,
                    "save": str(Path(directory) / f"{arm}-seed{seed}")}
            try: out[arm, seed] = load_config(cfg.path, over)
            except ConfigError as e: raise ConfigError(f"arm '{arm}': {e}") from None
    return out

def run_grid(cfg, arms: dict, seeds: list, directory, overrides: dict | None = None) -> dict:
    "Train each arm ({name: overrides}) with each seed; resumable; return {(arm, seed): TrainResult}."
    from neoxcourse.train import train        # the loop (chapter 05); imported here: the course layer
    configs = grid_configs(cfg, arms, seeds, directory, overrides)
    return {key: train(c, resume=True) for key, c in configs.items()}

def verdict_from_runs(runs, key: str, baseline, candidate, metric: str = "validation/lm_loss",
                      confidence: float = 0.95, lower_is_better: bool = True) -> Verdict:
    "The paired verdict of two arms from W&B runs (a folder or RunRecords), arms told apart by config `key`."
    runs, by_arm = load_runs(runs) if isinstance(runs, (str, Path)) else list(runs), {}
    for run in runs:
        conf = flatten(run.config)
        arm, seed, value = conf.get(key), conf.get("seed"), final_value(run, metric)
        if arm in (baseline, candidate) and value is not None: by_arm.setdefault(arm, {})[seed] = value
    for arm in (baseline, candidate):
        if arm not in by_arm:
            found = sorted({str(flatten(r.config).get(key)) for r in runs})
            raise ValueError(f"no run with {key} = {arm!r} and a {metric}; the runs have {key} in {found}")
    return paired_verdict(by_arm[baseline], by_arm[candidate], confidence, metric, (str(baseline), str(candidate)),
                          lower_is_better)


# %% [markdown]
# The test on synthetic W&B runs (RunRecords as appendix A4's reader returns them), with a known difference of
# -0.2 for Muon and a per-seed wobble, and an unrelated arm that must be ignored:

# %%
def fake_run(opt, seed, loss):
    return RunRecord(f"{opt}-{seed}", config={"optimizer": {"type": opt}, "seed": seed},
                     summary={"validation/lm_loss": loss})
fake = ([fake_run("adamw", s, 3.0 + 0.1 * s) for s in (1, 2, 3)] +
        [fake_run("muon", s, 2.8 + 0.1 * s + w) for s, w in ((1, 0.02), (2, -0.02), (3, 0.0))] +
        [fake_run("lion", s, 9.0) for s in (1, 2, 3)])
v = verdict_from_runs(fake, "optimizer.type", "adamw", "muon")
print(v)
test_close(v.mean, -0.2, eps=1e-9)
test_close((v.low, v.high), (-0.2 - 4.302653 * 0.02 / math.sqrt(3), -0.2 + 4.302653 * 0.02 / math.sqrt(3)), eps=1e-5)
test_eq(v.decision, "muon better")
test_fail(lambda: verdict_from_runs(fake, "optimizer.type", "adamw", "sgd"), contains="'adamw', 'lion', 'muon'")

# %% [markdown]
# A grid with a misspelt optimizer is refused before anything trains, naming the arm and the closest valid name:

# %%
with tempfile.TemporaryDirectory() as tmp:
    test_fail(lambda: grid_configs(cfg, {"adamw": {}, "lion": {"optimizer.type": "lino"}}, [0, 1], tmp),
              contains="arm 'lion'")
    test_fail(lambda: grid_configs(cfg, {"wsd": {"lr-decay-style": "wds"}}, [0], tmp), contains="lr-decay-style")

# %% [markdown]
# **The experiment cell.** On a T4 with `configs/lab.yml` (set `config_path` in the parameters cell): two arms,
# three seeds, 400 steps each, about a minute a run, so 6-8 minutes. On a CPU (and in CI) the same cell runs
# the smoke config for 2 steps a run, which only shows the mechanics: its verdict means nothing. Change `ARMS`
# to your question (each arm's overrides, with its tuned `lr`).

# %%
on_cpu = not torch.cuda.is_available()
ARMS = {"adamw": {"optimizer.type": "adamw", "lr": 2e-3},
        "lion": {"optimizer.type": "lion", "lr": 3e-4, "optimizer.params.betas": [0.9, 0.99]}}
EXP_SEEDS = [1, 2] if on_cpu else [1, 2, 3]
EXP_DIR = Path(tempfile.mkdtemp(prefix="experiment-")) if on_cpu else cfg.root / "runs" / "experiment"
EXP_OVERRIDES = {"train-iters": 2, "eval-interval": 2, "checkpoint-factor": 0} if on_cpu else {}
t0 = time.time()
results = run_grid(cfg, ARMS, EXP_SEEDS, EXP_DIR, EXP_OVERRIDES)
verdict = verdict_from_runs(EXP_DIR, "optimizer.type", "adamw", "lion")
print(verdict, f"\n{len(results)} runs in {time.time() - t0:.0f} s; W&B runs under {EXP_DIR}")
test_eq(verdict.pairs, len(EXP_SEEDS))

# %% [markdown]
# Submit the verdict with your runs: `wandb sync` the folder (appendix A4), and report the question, the grid
# (with each arm's tuned lr and how it was tuned), the seeds, the interval and the decision.

# %% [markdown]
# ## Try this
#
# - Rerun the noise-floor cell with `steps=60` in `byte_run`: does the spread across seeds shrink or grow as the
#   runs get longer? Is the AdamW-Lion verdict the same?
# - In the pairing cell, give Lion different seeds (`seed=s + 10`) and compute Welch's interval only: how much
#   wider is an unpaired comparison?
# - In the loss-spike cell, lower SGD's rate to 0.5 and raise it to 3.0: where do spikes begin, and where does
#   the run diverge?

# %%
#| eval: false
# The noise floor of longer runs:
longer = {s: byte_run("adamw", 3e-3, seed=s, steps=60)[0] for s in SEEDS}
print({s: round(x, 4) for s, x in longer.items()}, f"sd {statistics.stdev(longer.values()):.4f}")

# %% [markdown]
# ## Recap
#
# - Seeds move the final loss; measure that spread before reading any difference. A single run per arm is not
#   evidence.
# - Compare arms seed by seed and report the 95% t interval of the difference (`paired_verdict`, checked against
#   hand-computed intervals and for 95% coverage on 1000 synthetic experiments); claim a difference only when the
#   interval excludes zero. With 2 seeds the t factor is 12.7: plan 3 or more.
# - Tune every arm as much as the baseline; compare at the end of each run's own schedule; say whether a claim is
#   per token or per second (Muon: about 0.63x the tokens but about 0.81x the seconds of tuned AdamW + cosine at
#   13M tokens in chapter 06's experiment, one budget and two seeds).
# - Change the learning rate with the batch size and stay below the critical batch (the noise scale estimates
#   it); weight decay acts over $1/(\eta\lambda)$ steps, longer than a lab run; keep beta2 at 0.95-0.99 and the
#   optimizer state in fp32; find spikes with `loss_spikes` and act on them in order.
# - `run_grid` and `verdict_from_runs` turn your question into runs and a verdict with its uncertainty.
#
# When your experiment finds a better training algorithm, submit it to the **optimization track** (appendix A5,
# README "How to submit"): the lab recipe at a fixed token budget, two seeds or more, ranked by bits per byte
# that `leaderboard("track")` recomputes from your checkpoints.
#
# Chapter 08 (evaluation) measures what a trained model can do beyond its loss.
