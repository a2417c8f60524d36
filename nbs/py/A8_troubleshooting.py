# Generated from nbs/A8_troubleshooting.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A8_troubleshooting.py`.

# %% [markdown]
# # Appendix A8 · Troubleshooting: what goes wrong, shown for real, and how to fix it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A8_troubleshooting.ipynb)
#
# > Each problem a learner meets on a Colab T4, made to happen on purpose and read: install and version
# > clashes, config mistakes, out of memory, fp16 overflow and NaN losses, disconnects and resume, W&B
# > sign-in and offline sync, slow data preparation; then the references behind every chapter.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** each common failure on a Colab T4 (install clashes, config mistakes, out of memory,
#   fp16 overflow and NaNs, disconnects, W&B sign-in, slow preparation), made to happen, with its fix.
# - **You need:** chapters 00 to 05 (it uses the library, adds nothing to it); a CPU is enough.
# - **Time:** about 3 minutes on a T4; about 3 minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** each failure's one-line message, a resumed run whose losses equal an uninterrupted
#   one's (difference 0), and a loss-scale trace that halves at each overflow and doubles after a run of
#   good steps (simulated, labelled so).

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
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import torch
from packaging.version import Version

import neoxcourse.train
from neoxcourse.config import ConfigError, load_config, default_config_path
from neoxcourse.tokenizer import prepare
from neoxcourse.env import (environment_report, format_report, library_versions, mount_drive,
                            wandb_mode)
from neoxcourse.exercises import read_run
from neoxcourse.model import estimate_memory, largest_micro_batch, count_parameters
from neoxcourse.train import TrainingError, checkpoint_dir, train, train_step

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close

# %%
cfg = load_config(config_path or default_config_path(), overrides)
t4 = load_config(cfg.root / "configs" / "t4.yml")   # the recipe whose memory we reason about
GiB = 2**30
print(cfg.path.name, "on", "GPU" if torch.cuda.is_available() else "CPU")


# %% [markdown]
# | symptom | section |
# | --- | --- |
# | `ModuleNotFoundError`, `NameError: Param`, `No module named 'execnb.nbio'`, a CUDA/torch mismatch | [1](#1-install-and-version-problems) |
# | `ConfigError: ... unknown key`, `must be float`, `not divisible` | [2](#2-config-mistakes) |
# | `CUDA out of memory`, `can't allocate memory` | [3](#3-out-of-memory) |
# | loss `nan` or `inf`, `skipped steps`, a loss scale that keeps falling, `the model diverged` | [4](#4-fp16-overflow-nan-losses-and-divergence) |
# | the Colab runtime disconnected, a run that stopped half-way | [5](#5-colab-disconnects-and-resume) |
# | `W&B is offline`, nothing on wandb.ai, `wandb: ERROR api_key not configured` | [6](#6-wb-sign-in-and-offline-sync) |
# | `prepare` takes minutes, or runs again when it should not | [7](#7-slow-data-preparation) |
#
# Every training run in this chapter uses the config you chose (the smoke config on a CPU) with W&B
# switched off, except in section 6, and writes under `checkpoints/A8_troubleshooting/`.

# %%
def scratch_config(name: str, **extra):
    "The chapter's config with W&B off and checkpoints in a fresh folder of their own."
    folder = cfg.resolve("checkpoints") / "A8_troubleshooting" / name
    shutil.rmtree(folder, ignore_errors=True)
    changes = {"save": str(folder), "wandb.mode": "disabled", **extra}
    return load_config(cfg.path, {**overrides, **changes})


# %% [markdown]
# ## 1. Install and version problems
#
# Most install problems are one of three things. **A package too new for another one**: nbdev 2 (which
# reads `settings.ini`) fails with fastcore 2 (`NameError: Param`) and with execnb 0.2 (`No module named
# 'execnb.nbio'`), and nbdev 3 refuses `settings.ini` altogether; the dev extra pins all three.
# **A second torch**: on Colab, never `pip install torch`; the one Colab ships matches its CUDA driver, and
# a wheel from PyPI may not (`torch.cuda.is_available()` turns False, or `CUDA error: no kernel image`).
# **A stale kernel**: after `pip install`, a running Python does not see the new packages' paths; if
# `import neoxcourse` fails right after the install cell, use *Runtime > Restart session* and run again.
#
# First, the report from chapter 00: it answers "what am I running on?" before any other question.

# %%
print(format_report(environment_report()))

# %% [markdown]
# The known clashes, as data: a package, the lowest version that works, and the first that breaks.
# `version_problems` reads the installed versions and says what to change.

# %%
KNOWN_LIMITS = {  # package: (lowest that works, first that breaks)
    "nbdev": ("2.4.14", "3"), "fastcore": (None, "2"), "execnb": (None, "0.2"),  # reference/FACTS.md
    "torch": ("2.3", None),  # torch.amp.GradScaler(device), which the loop uses, arrived in 2.3
}

def version_problems(versions: dict, limits: dict = KNOWN_LIMITS) -> list[str]:
    "What is wrong with the installed `versions` (name -> version or None), one line per problem."
    problems = []
    for name, (low, high) in limits.items():
        v = versions.get(name)
        if v is None: continue  # not installed: a problem only if you need it (import says so)
        if low and Version(v) < Version(low):
            problems.append(f"{name} {v} is too old: pip install '{name}>={low}'")
        if high and Version(v) >= Version(high):
            problems.append(f"{name} {v} is too new: pip install '{name}<{high}'")
    return problems

installed = {**library_versions(), **library_versions(("nbdev", "fastcore", "execnb"))}
print(version_problems(installed) or "no known version clash")

# %% [markdown]
# It flags the clashes that broke real set-ups, and nothing in a good one:

# %%
test_eq(version_problems({"nbdev": "3.0.2", "fastcore": "1.14.5", "execnb": "0.1.18"}),
        ["nbdev 3.0.2 is too new: pip install 'nbdev<3'"])
test_eq(version_problems({"nbdev": "2.4.14", "fastcore": "2.0.1", "execnb": "0.2.0"}),
        ["fastcore 2.0.1 is too new: pip install 'fastcore<2'",
         "execnb 0.2.0 is too new: pip install 'execnb<0.2'"])
good = {"nbdev": "2.4.14", "fastcore": "1.14.5", "execnb": "0.1.18", "torch": "2.13.0"}
test_eq(version_problems(good), [])

# %% [markdown]
# To reproduce the exact versions the course was tested with: `pip install -e ".[dev]" -c constraints.txt`
# (torch is left out of it on purpose). `pip check` lists any package whose requirements are not met.

# %% [markdown]
# ## 2. Config mistakes
#
# A config is read once, at the start, and every mistake stops it there with a `ConfigError` that names the
# file, the key and what to write instead: much better than a shape error twenty minutes into training.
# Here are the three most common, made on purpose.

# %%
mistakes = {
    "a typo in a key": {"hiden-size": 512},
    "a number YAML read as text": {"lr": "3e-4x"},
    "heads that do not divide the width": {"hidden-size": 66},
    "a course key without its section": {"max_skipped_steps": 3},
}
messages = {}
for what, bad in mistakes.items():
    try: load_config(cfg.path, bad)
    except ConfigError as e: messages[what] = str(e)
    print(f"{what:38s} -> {messages.get(what, 'accepted!')}")

# %% [markdown]
# Read the message to the end: it says what to do. `hiden-size` gets "did you mean 'hidden-size'"; the
# course-only setting needs its section, `training.max_skipped_steps`. Another classic is YAML itself:
# `lr: 5e-4` is a *string* to YAML (it wants `5.0e-4`); the course's loader reads it as a number, but
# other tools may not, so write `5.0e-4`.

# %%
test_eq(len(messages), len(mistakes))
assert "did you mean 'hidden-size'" in messages["a typo in a key"]
assert "must be float" in messages["a number YAML read as text"]
assert "not divisible" in messages["heads that do not divide the width"]
test_eq(load_config(cfg.path, {"training.max_skipped_steps": 3}).training.max_skipped_steps, 3)

# %% [markdown]
# `neoxcourse config check FILE --set key=value` prints the resolved config, or the same message, from a
# terminal: run it before a long job.

# %% [markdown]
# ## 3. Out of memory
#
# On a GPU the error reads like `torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.00 GiB.
# GPU 0 has a total capacity of 14.74 GiB of which 312.06 MiB is free.` A CPU has the same failure under
# another name. Here is a real one: asking for 4 PiB.

# %%
try:
    torch.empty(2**50)  # 2**50 float32 numbers = 4 PiB
    oom_message = None
except RuntimeError as e:
    oom_message = str(e)
print(oom_message[:200])

# %%
assert "can't allocate memory" in oom_message or "out of memory" in oom_message.lower()

# %% [markdown]
# Nothing was lost: the allocation failed before anything was written. What uses memory in training is
# known in advance, so the better tool is the **estimate** of chapter 04, `estimate_memory`: weights (fp32
# plus an fp16 copy under autocast), gradients, the optimizer's state (8 bytes a parameter for AdamW), the
# activations kept for backward (they grow with micro-batch x sequence length), and the logits.
# Here it is for the T4 recipe at several micro-batches.

# %%
T4_USABLE = 14.7 * GiB  # what PyTorch sees of a Colab T4's 16 GB
print(f"T4 recipe: {count_parameters(t4.model) / 1e6:.1f}M parameters, seq {t4.model.seq_length}")
columns = [("weights", 8), ("grads", 6), ("optimizer_state", 6), ("activations", 6), ("logits", 7),
           ("total", 9)]
print(f"{'micro':>5s} {'weights':>8s} {'grads':>6s} {'optim':>6s} {'activ':>6s} {'logits':>7s} "
      f"{'total GiB':>9s}")
estimates = {}
for micro in (8, 16, 32, 64):
    est = estimates[micro] = estimate_memory(t4.model, micro, "fp16")
    print(f"{micro:5d} " + " ".join(f"{est[k] / GiB:{w}.2f}" for k, w in columns))
fits = largest_micro_batch(t4.model, T4_USABLE, "fp16")
print(f"largest power-of-two micro-batch that fits {T4_USABLE / GiB:.1f} GiB: {fits}")

# %% [markdown]
# Activations and logits dominate and both scale with the micro-batch, so the first fix is always the
# same: **halve the micro-batch and double the gradient accumulation**. The global batch, and so the
# optimisation, stays the same; only the step takes a little longer. The training loop does this for you
# when it catches the error: its message gives the exact `--set` to use. The second fix is **activation
# checkpointing** (`checkpoint_activations: true`): keep only each block's input and recompute the rest in
# backward, about a third more compute for a fraction of the activations.

# %%
checkpointed = replace(t4.model, checkpoint_activations=True)
for micro in (16, 64):
    plain = estimate_memory(t4.model, micro, "fp16")
    ckpt = estimate_memory(checkpointed, micro, "fp16")
    print(f"micro {micro}: activations {plain['activations'] / GiB:.2f} -> "
          f"{ckpt['activations'] / GiB:.2f} GiB with checkpointing; "
          f"total {plain['total'] / GiB:.2f} -> {ckpt['total'] / GiB:.2f} GiB")
best_checkpointed = largest_micro_batch(checkpointed, T4_USABLE, "fp16")
print("largest micro-batch with checkpointing:", best_checkpointed)

# %%
assert estimates[64]["total"] > estimates[32]["total"] > estimates[16]["total"]
assert estimates[t4.training.micro_batch_size]["total"] < T4_USABLE  # the recipe's own setting fits
assert largest_micro_batch(checkpointed, T4_USABLE, "fp16") >= fits
assert estimate_memory(checkpointed, 16, "fp16")["activations"] < estimates[16]["activations"] / 2

# %% [markdown]
# If the estimate says a setting fits and the GPU still runs out: another notebook or a crashed cell still
# holds memory (`torch.cuda.memory_allocated()`; *Runtime > Restart session* frees it all), or a sequence
# is longer than the config says, or you kept a tensor with its graph (`losses.append(loss)` instead of
# `loss.item()`). `torch.cuda.memory_summary()` shows who holds what; let the loop search the largest
# micro-batch that really fits with `--set training.find_micro_batch=true`.

# %%
measured = cfg.root / "bench" / "results" / "memory_estimate.json"
if measured.exists():  # written by bench/memory_estimate.py on a GPU, in T4 conditions
    bench = json.loads(measured.read_text())
    print(f"estimate against the measured peak on {bench['device']} ({bench['emulation']}):")
    print(f"{'model':34s} {'micro':>5s} {'ckpt':>5s} {'estimate GiB':>12s} {'measured GiB':>12s} "
          f"{'error':>7s}")
    for r in bench["rows"]:
        ckpt = "T" if r["model"]["checkpoint_activations"] else "F"
        est, peak = r["estimate"]["total"] / GiB, r["measured_peak"] / GiB
        print(f"{r['name']:34s} {r['micro_batch']:5d} {ckpt:>5s} {est:12.2f} {peak:12.2f} "
              f"{r['relative_error']:+7.1%}")
    print(f"mean |error| {bench['mean_abs_relative_error']:.1%}, "
          f"largest {bench['max_abs_relative_error']:.1%}")
else:
    print("bench/results/memory_estimate.json not found: run `python bench/memory_estimate.py` "
          "on a GPU to compare the estimate with torch.cuda.max_memory_allocated.")

# %% [markdown]
# ## 4. fp16 overflow, NaN losses and divergence
#
# A T4 is fast only in fp16, and fp16 is a narrow number format: its largest value is 65,504 and anything
# below about $6 \times 10^{-8}$ becomes 0. Let us watch both edges with plain tensors.

# %%
fp16 = torch.finfo(torch.float16)
print(f"fp16: largest {fp16.max:,.0f}, smallest normal {fp16.tiny:.1e}, epsilon {fp16.eps:.1e}")
big = torch.tensor([60_000.0, 70_000.0]).half()
print("70,000 in fp16:", big.tolist())                                   # overflow -> inf
print("inf - inf =", (big[1] - big[1]).item())                         # and inf turns into NaN
acts = torch.full((1024,), 300.0).half()                               # activations of size 300...
print("mean of squares of 300s in fp16:", (acts * acts).mean().item())   # ... 90,000 overflows
print("Adam's eps 1e-8 in fp16:", torch.tensor(1e-8).half().item())     # underflow -> 0
print("a gradient of 1e-8 in fp16:", torch.tensor(1e-8).half().item(),
      "| scaled by 2**16 first:", (torch.tensor(1e-8) * 2**16).half().item())

# %%
assert math.isinf(big[1].item()) and math.isnan((big[1] - big[1]).item())
test_eq(torch.tensor(1e-8).half().item(), 0.0)
assert (torch.tensor(1e-8) * 2**16).half().item() > 0

# %% [markdown]
# This is why mixed precision (Micikevicius et al., 2018) works the way it does. **Autocast** runs matrix
# products in fp16 but keeps sums of squares, softmax and LayerNorm in fp32 (so LayerNorm's mean of squares
# cannot overflow as it did above), but each matrix product's output is still fp16: if activations grow past
# 65,504 it becomes `inf` inside the model, which is how a run diverges in fp16 (below), and the loss is computed in fp32 (`lm_loss` calls `.float()`). **The master
# weights and Adam's state stay fp32** (so eps is not 0). **Loss scaling** multiplies the loss by a large
# factor $S$ before backward, so that small gradients do not underflow, and divides the gradients by $S$
# before the update. If any gradient came out `inf` or `NaN`, `GradScaler` **skips the step** and halves
# $S$; after 2,000 good steps it doubles it again.
#
# Here is the loop's own `train_step` with a `GradScaler` (it runs on the CPU too), given a loss whose
# scaled gradients overflow:

# %%
torch.manual_seed(0)
layer = torch.nn.Linear(4, 1)
opt = torch.optim.AdamW(layer.parameters(), lr=0.1)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
before = layer.weight.detach().clone()
batch = [(torch.ones(2, 4), None)]                               # (input, target); this loss needs no target
huge = train_step(layer, opt, scaler, batch, clip=1.0,
                  loss_fn=lambda x, _: layer(x).sum() * 1e36)    # x 65536: gradients overflow
changed = not torch.equal(before, layer.weight)
print(f"grad norm {huge.grad_norm.item()}, skipped: {bool(huge.skipped)}, weights changed: {changed}, "
      f"scale 65536 -> {scaler.get_scale():.0f}")
normal = train_step(layer, opt, scaler, batch, clip=1.0, loss_fn=lambda x, _: layer(x).sum())  # a normal step
print(f"next step: grad norm {normal.grad_norm.item():.2f}, skipped: {bool(normal.skipped)}")

# %%
test_eq((bool(huge.skipped), changed), (True, False))
test_eq(bool(normal.skipped), False)
test_eq(scaler.get_scale(), 2.0**15)
assert not torch.equal(before, layer.weight)

# %% [markdown]
# **Look: the loss scale over a run.** What `train/loss_scale` looks like in W&B. The course has no committed
# trace from a real fp16 GPU run, so this one is **simulated**: each step's largest activation gradient is drawn at
# random (large at first, shrinking as the loss falls, as in real runs), a step overflows when that gradient
# times the scale passes fp16's 65,504, and the scale is updated by the same function `GradScaler.update` calls
# (`torch._amp_update_scale_`: halve on an overflow, double after 2,000 clean steps). Expect a few skips at the
# start while the scale finds its level, then a staircase up; in a real run, a scale that keeps falling instead
# is the sign of a diverging model (below).

# %%
import matplotlib.pyplot as plt
g = torch.Generator().manual_seed(0)
steps = 20_000
# the largest activation gradient of each step, in fp16 before scaling: log-normal, shrinking as the loss falls
log10_grad = -0.3 - 3.0 * torch.arange(steps) / steps + 0.35 * torch.randn(steps, generator=g)
scale, tracker = torch.tensor([2.0 ** 16]), torch.tensor([0], dtype=torch.int32)
trace, skipped = [], []
for t in range(steps):
    found_inf = torch.tensor([float(10 ** log10_grad[t].item() * scale.item() > 65504)])  # inf in fp16?
    trace.append(scale.item())
    if found_inf.item(): skipped.append(t)
    torch._amp_update_scale_(scale, tracker, found_inf, 2.0, 0.5, 2000)   # GradScaler's own update
fig, ax = plt.subplots(figsize=(8, 3))
ax.semilogy(trace, base=2, label="loss scale")
ax.plot(skipped, [trace[t] for t in skipped], "rv", ms=4, label=f"overflow: step skipped ({len(skipped)})")
ax.set(xlabel="step", ylabel="scale", title="SIMULATED fp16 run: GradScaler's update rule on random gradients")
ax.legend(); plt.show()
print(f"{len(skipped)} skipped steps of {steps}; scale {trace[0]:.0f} -> {trace[-1]:.0f}")


# %%
after = trace[1:] + [scale.item()]
for t in range(steps):
    if t in skipped: assert after[t] == trace[t] / 2          # every overflow halves the scale
    else: assert after[t] in (trace[t], 2 * trace[t])          # otherwise it stays, or doubles
assert 0 < len(skipped) < steps // 100 and trace[-1] > trace[0]   # rare skips; the scale rises as gradients shrink


# %% [markdown]
# A few skipped steps at the start of an fp16 run are normal: the scaler is finding its level. The
# training loop also guards the **loss itself**: if it is `NaN` or infinite, it does not step at all, counts
# the step as skipped, and carries on. To see that, we make the loss of one step `NaN` on purpose (a
# stand-in for a bad batch or an overflow) by wrapping the loop's loss function for one call.

# %%
#| slow
def nan_on(calls: set):
    "A stand-in for the loop's loss that returns NaN on the given training calls (1-based)."
    real, count = neoxcourse.train.lm_loss, [0]
    def loss(logits, targets):
        value = real(logits, targets)
        if not torch.is_grad_enabled(): return value   # validation: leave it alone
        count[0] += 1
        return value * float("nan") if count[0] in calls or "all" in calls else value
    return loss

nan_cfg = scratch_config("nan", **{"train-iters": 8, "eval-interval": 8, "checkpoint-factor": 8})
accum = nan_cfg.training.global_batch_size // nan_cfg.training.micro_batch_size
with mock.patch.object(neoxcourse.train, "lm_loss", nan_on({4 * accum})):  # a micro-batch of step 4
    nan_run = train(nan_cfg)
print({k: round(v, 3) for k, v in nan_run.losses.items()})
print("skipped steps:", nan_run.skipped_steps)

# %%
#| slow
test_eq(nan_run.skipped_steps, 1)
assert math.isnan(nan_run.losses[4])
assert all(math.isfinite(v) for k, v in nan_run.losses.items() if k != 4)
test_eq(nan_run.iterations, 8)

# %% [markdown]
# One bad step costs one step. A model that has **diverged** is different: every loss from then on is
# `NaN`, and skipping cannot help. After `max_skipped_steps` bad steps in a row (10 by default; 3 here) the
# loop stops with a `TrainingError` that says what to change.

# %%
#| slow
diverge_cfg = scratch_config("diverge", **{"train-iters": 8, "training.max_skipped_steps": 3})
with mock.patch.object(neoxcourse.train, "lm_loss", nan_on({"all"})):
    try:
        train(diverge_cfg)
        diverged = None
    except TrainingError as e:
        diverged = str(e)
print(diverged)

# %%
#| slow
assert diverged is not None and "diverged" in diverged and "--set lr=" in diverged

# %% [markdown]
# Real divergence has causes you can change: a learning rate too high for the optimizer (Lion wants 3 to
# 10 times less than AdamW), too short a warmup, no gradient clipping, or fp16 where the model's
# activations have grown past 65,504 (look at `train/loss_scale` in W&B: a scale that keeps falling is the
# sign). Lower the learning rate, keep `gradient_clipping: 1.0`, lengthen `warmup`, and resume from the last
# good checkpoint. On GPUs of compute capability 8.0 and up, bf16 has fp32's range and needs no scaling; a
# T4 has no bf16 tensor cores (chapter 00).

# %% [markdown]
# ## 5. Colab disconnects and resume
#
# A free Colab session ends after about 90 idle minutes or at most about 12 hours, and sometimes
# sooner. Three things make that harmless. **Checkpoints on Drive**: `mount_drive()` mounts Google Drive
# (in an interactive Colab session only; elsewhere it returns `None`), and the loop then writes its
# checkpoints to `MyDrive/neoxcourse/...`, which outlive the runtime. **Atomic checkpoints**: each is
# written under a temporary name and renamed, so a disconnect mid-save never leaves a broken "latest".
# **Exact resume**: a checkpoint holds the weights, the optimizer, the loss scaler, the random generators
# and the position in the data, so `train(cfg, resume=True)` continues as if nothing had happened.

# %%
drive = mount_drive()
print("Drive:", drive or "not mounted (not an interactive Colab session)")
print("checkpoints of this config go to:", checkpoint_dir(cfg))


# %% [markdown]
# We train 12 iterations without interruption, then again with a "disconnect" after iteration 10 (an
# exception the loop does not catch, as when the runtime dies), then resume. With a checkpoint every 4
# iterations, the last one before the disconnect is iteration 8, so iterations 9 and 10 are done again;
# the losses of the resumed run must be exactly those of the run that never stopped.

# %%
#| slow
class Disconnect(Exception):
    "What a dead runtime looks like to the code that was running: it simply stops."

def disconnect_after(iteration: int):
    def on_step(step, result):
        if step == iteration: raise Disconnect(f"runtime disconnected after iteration {step}")
    return on_step

short = {"train-iters": 12, "checkpoint-factor": 4, "eval-interval": 6}
steady = train(scratch_config("steady", **short))
broken_cfg = scratch_config("resumed", **short)
try:
    train(broken_cfg, on_step=disconnect_after(10))
except Disconnect as e:
    print(e)
print("checkpoints left:", sorted(p.name for p in checkpoint_dir(broken_cfg).glob("step_*")))
resumed = train(broken_cfg, resume=True)
diffs = [abs(resumed.losses[k] - steady.losses[k]) for k in resumed.losses]
print(f"resumed iterations {min(resumed.losses)} to {max(resumed.losses)}; "
      f"largest loss difference from the uninterrupted run: {max(diffs):.2e}")

# %%
#| slow
test_eq(min(resumed.losses), 9)
test_eq(resumed.iterations, steady.iterations)
test_close(max(diffs), 0.0, eps=1e-5)

# %% [markdown]
# On Colab: mount Drive *before* training, resume with `train(cfg, resume=True)` (or `neoxcourse train
# CONFIG --resume`) after reconnecting, and call `drive.flush_and_unmount()` at the end of a session, since
# writes to Drive are asynchronous. A stopped cell (the ■ button, a `KeyboardInterrupt`) is gentler still:
# the loop saves a checkpoint of the last finished step before it returns.

# %% [markdown]
# ## 6. W&B sign-in and offline sync
#
# Every run goes to Weights & Biases. `wandb_mode("auto")` decides how: **online** when an API key can be
# found (the environment variable `WANDB_API_KEY`, Colab's secret of that name, or `~/.netrc` from
# `wandb login`), and **offline** otherwise, so that a missing key never stops training. It never prints
# the key. In a notebook run by CI there is no key:

# %%
mode = wandb_mode("auto", interactive=False)
print("W&B mode here:", mode)

# %% [markdown]
# An offline run is complete on disk. Here is a short run with W&B on (it falls back to offline here):
# the run folder, what it holds, and how to upload it. `wandb sync --dry-run` lists what would be uploaded
# without touching the network.

# %%
#| slow
wb_cfg = scratch_config("wandb", **{"wandb.mode": mode if mode != "disabled" else "offline",
                                    "train-iters": 6, "eval-interval": 6, "checkpoint-factor": 6,
                                    "log-interval": 2})
wb_run = train(wb_cfg)
record = read_run(wb_run.wandb_dir)
logged = [r["train/lm_loss"] for r in record.history if "train/lm_loss" in r]
print(f"run {record.id}: {len(record.history)} logged steps, last train/lm_loss {logged[-1]:.3f}")
dry = subprocess.run(["wandb", "sync", "--dry-run", str(wb_run.wandb_dir)],
                     capture_output=True, text=True)
print((dry.stdout + dry.stderr).strip()[-600:])
print(f"\nto upload:  wandb login   then   wandb sync {wb_run.wandb_dir}")

# %%
#| slow
test_eq(record.id, wb_run.wandb_run_id)
assert any("train/lm_loss" in r for r in record.history)

# %% [markdown]
# What goes wrong, and what to do:
#
# - **`api_key not configured (no-tty)`** in a headless job: set `WANDB_API_KEY` in the environment (on
#   Colab, in the secrets panel, with *Notebook access* on), or accept offline and sync later.
# - **Runs are offline though you logged in**: the key is in `~/.netrc` of another user or machine; run
#   `wandb login --relogin`. Check with `wandb_mode("online")`.
# - **On Colab, offline runs vanish with the runtime**: they are written next to the checkpoints, on Drive
#   when it is mounted; set `WANDB_DIR` and `WANDB_DATA_DIR` to Drive too if you log artifacts.
# - **A resumed run shows up twice**: the loop stores the W&B run id in the checkpoint and resumes *that*
#   run; a run started afresh with `resume=False` is, rightly, a new run.
# - **`wandb sync` says nothing to sync**: give it the run folder (`.../wandb/offline-run-...`); it has no
#   `--sync-all` any more.

# %% [markdown]
# ## 7. Slow data preparation
#
# `prepare(cfg)` reads, cleans, deduplicates, decontaminates, splits and tokenises the corpus once, and
# writes a fingerprint of everything that went into it; the next call with the same inputs **reuses** the
# output at once. So it should be slow only the first time. We build a small corpus from scratch in a
# temporary folder, then ask again.

# %%
tmp = Path(tempfile.mkdtemp(prefix="neoxcourse-12-"))
data_cfg = load_config(cfg.path, {**overrides, "data.output_dir": str(tmp), "data.max_files": 40})
tic = time.perf_counter()
first = prepare(data_cfg, verbose=False)
first_s, tic = time.perf_counter() - tic, time.perf_counter()
again = prepare(data_cfg, verbose=False)
again_s = time.perf_counter() - tic
print(f"first build {first_s:.2f} s (by stage: {first.meta['seconds']}); "
      f"again {again_s:.2f} s, reused={again.reused}")
shutil.rmtree(tmp, ignore_errors=True)

# %%
test_eq(again.reused, True)
assert again_s < first_s

# %% [markdown]
# When the first build is slow:
#
# - **Fewer files while you iterate**: `data.max_files` (the smoke config uses 150).
# - **Cheaper near-dedup**: `data.minhash_permutations` 64 instead of 256 (slightly less exact), or
#   `data.near_dedup: false` for a corpus you know is clean.
# - **Where the time goes** (site-packages, 250 MB, on 2 cores: 109 s): tokenizing 37 s, already on every
#   core (the Rust tokenizer); near-dedup shingles and MinHash 39 s and the filters 17 s, in one process.
#   More cores help the first part only; `max_files` and `minhash_permutations` shrink the rest.
# - **Local disk, not Drive**: Drive is slow for many small files; keep `data/` on the runtime's disk and
#   only checkpoints on Drive. A prepared corpus is a few files and quick to rebuild.
# - **Hub sets**: stream them (`datasets` streaming) and cap `max_files`; a gated set (`the-stack-smol`)
#   needs `HF_TOKEN`; `HF_HUB_OFFLINE=1` makes `prepare` fail at once with a clear message instead of waiting.
#
# If it rebuilds when you expected reuse, something in the fingerprint changed: any `data.*` setting, the
# tokenizer files, or the list of source files (a new Python version has a new standard library).

# %% [markdown]
# ## Exercise: fix a broken config
#
# **Task.** A teammate's overrides for the T4 recipe do not load, and would not fit the GPU if they did.
# Write `my_fix`, a dict of overrides that keeps their intent (a wider model, 512, trained with the
# recipe's own global batch), loads without a `ConfigError`, and whose estimated memory fits a T4.
#
# **How it is checked.** `check_fix(my_fix)` loads the T4 recipe with your overrides, then checks the
# width is 512, the global batch is the recipe's, and `estimate_memory` is below 14.7 GiB; a failure says
# which. This chapter exports no module, so there is nothing to submit: the check is the reward.

# %%
broken = {"hiden-size": 512, "num-attention-heads": 5, "train_micro_batch_size_per_gpu": 64}

def check_fix(fix: dict) -> dict:
    "Check the exercise: `fix` loads, keeps width 512 and the recipe's global batch, and fits a T4."
    c = load_config(cfg.root / "configs" / "t4.yml", fix)  # raises ConfigError with the reason
    width, batch = c.model.hidden_size, c.training.global_batch_size
    assert width == 512, f"hidden size is {width}, the teammate wanted 512"
    assert batch == t4.training.global_batch_size, (
        f"global batch is {batch}: keep the recipe's {t4.training.global_batch_size}")
    total = estimate_memory(c.model, c.training.micro_batch_size, c.training.precision)["total"]
    assert total < T4_USABLE, f"estimated {total / GiB:.1f} GiB does not fit a T4's 14.7 GiB"
    return {"estimated_gib": round(total / GiB, 2), "micro_batch": c.training.micro_batch_size}


# %%
my_fix = dict(broken)  # your fix here: edit the dict, run the cell, read what the check says
try:
    print("passed:", check_fix(my_fix))
except (ConfigError, AssertionError) as e:
    print("not yet:", e)

# %%
#| hide
test_fail(lambda: check_fix(broken), contains="did you mean 'hidden-size'")
too_big = {"hidden-size": 512, "num-attention-heads": 8, "train_micro_batch_size_per_gpu": 64}
test_fail(lambda: check_fix(too_big), contains="does not fit")
solution = {"hidden-size": 512, "num-attention-heads": 8, "train_micro_batch_size_per_gpu": 16}
print(check_fix(solution))

# %% [markdown]
# ## References
#
# **GPT-NeoX and the model.**
# EleutherAI GPT-NeoX: <https://github.com/EleutherAI/gpt-neox> (its `configs/neox_arguments.md` lists
# every config key); Black et al. 2022, *GPT-NeoX-20B* (arXiv:2204.06745); Biderman et al. 2023, *Pythia*
# (arXiv:2304.01373); Su et al. 2021, *RoFormer* (rotary, arXiv:2104.09864); Hugging Face `GPTNeoXForCausalLM`:
# <https://huggingface.co/docs/transformers/model_doc/gpt_neox>.
#
# **Weights & Biases guides.** Quickstart <https://docs.wandb.ai/quickstart/>; offline runs and sync
# <https://docs.wandb.ai/support/run_wandb_offline/> and `wandb sync` <https://docs.wandb.ai/ref/cli/wandb-sync/>;
# environment variables <https://docs.wandb.ai/guides/track/environment-variables/>; sweeps
# <https://docs.wandb.ai/guides/sweeps/>; reports <https://docs.wandb.ai/guides/reports/>.
#
# **PyTorch.** Automatic mixed precision <https://pytorch.org/docs/stable/amp.html> and its examples
# <https://pytorch.org/docs/stable/notes/amp_examples.html>; CUDA memory
# <https://pytorch.org/docs/stable/torch_cuda_memory.html>; Micikevicius et al. 2018, *Mixed Precision
# Training* (arXiv:1710.03740); Chen et al. 2016, *Training Deep Nets with Sublinear Memory Cost*
# (activation checkpointing, arXiv:1604.06174); Pascanu et al. 2013, *On the difficulty of training
# recurrent neural networks* (gradient clipping, arXiv:1211.5063).
#
# **Optimizers (chapter 06).**
#
# | optimizer | paper |
# | --- | --- |
# | SGD with momentum, Nesterov | Sutskever et al. 2013, *On the importance of initialization and momentum in deep learning* (ICML) |
# | Adam | Kingma & Ba 2015, *Adam: A Method for Stochastic Optimization* (arXiv:1412.6980) |
# | AdamW | Loshchilov & Hutter 2019, *Decoupled Weight Decay Regularization* (arXiv:1711.05101) |
# | Lion | Chen et al. 2023, *Symbolic Discovery of Optimization Algorithms* (arXiv:2302.06675) |
# | Adafactor | Shazeer & Stern 2018, *Adafactor: Adaptive Learning Rates with Sublinear Memory Cost* (arXiv:1804.04235) |
# | Muon | Jordan et al. 2024, *Muon: An optimizer for hidden layers in neural networks* (<https://kellerjordan.github.io/posts/muon/>); Liu et al. 2025, *Muon is Scalable for LLM Training* (arXiv:2502.16982) |
# | schedule-free AdamW | Defazio et al. 2024, *The Road Less Scheduled* (arXiv:2405.15682) |
#
# **Schedules (chapter 07).**
#
# | schedule | paper |
# | --- | --- |
# | linear warmup | Goyal et al. 2017, *Accurate, Large Minibatch SGD* (arXiv:1706.02677) |
# | inverse square root | Vaswani et al. 2017, *Attention Is All You Need* (arXiv:1706.03762) |
# | cosine | Loshchilov & Hutter 2017, *SGDR: Stochastic Gradient Descent with Warm Restarts* (arXiv:1608.03983) |
# | warmup-stable-decay (WSD) | Hu et al. 2024, *MiniCPM* (arXiv:2404.06395); Hägele et al. 2024, *Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations* (1 - sqrt cooldown, arXiv:2405.18392) |
# | compute-optimal size | Hoffmann et al. 2022, *Training Compute-Optimal Large Language Models* (arXiv:2203.15556) |
#
# **Metrics (chapter 08).**
#
# | metric | source |
# | --- | --- |
# | pass@k (unbiased), HumanEval | Chen et al. 2021, *Evaluating Large Language Models Trained on Code* (arXiv:2107.03374) |
# | line completion: exact match, edit similarity | Lu et al. 2021, *CodeXGLUE* (arXiv:2102.04664) |
# | bits per byte | Gao et al. 2020, *The Pile* (arXiv:2101.00027) |
# | BLEU / CodeBLEU | Papineni et al. 2002 (ACL); Ren et al. 2020, *CodeBLEU* (arXiv:2009.10297) |
# | model FLOPs utilisation | Chowdhery et al. 2022, *PaLM* (arXiv:2204.02311) |
#
# **Data (chapter 02).** Lee et al. 2022, *Deduplicating Training Data Makes Language Models Better*
# (arXiv:2107.06499); Broder 1997, *On the resemblance and containment of documents* (MinHash).

# %% [markdown]
# ## Recap
#
# Every failure in this chapter was made to happen, and each left a message that says what to do: a
# version clash names the pin; a config mistake names the file, the key and the fix; out of memory is
# predicted by `estimate_memory` and fixed by a smaller micro-batch with more accumulation, or activation
# checkpointing; fp16 overflow is absorbed by autocast, fp32 master weights and loss scaling, a single
# `NaN` loss costs one skipped step, and a diverged run stops with advice; a disconnect costs the steps
# since the last checkpoint and nothing more; W&B never blocks training and syncs later; `prepare` is slow
# once. Chapter 09 puts the whole pipeline together in one notebook.
