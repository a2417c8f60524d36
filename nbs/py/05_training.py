# Generated from nbs/05_training.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/05_training.py`.

# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# # 05 · Training: mixed precision, accumulation, checkpoints that survive a disconnect, W&B, several GPUs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/05_training.ipynb)
#
# > The training loop of the course: it trains a GPT-NeoX within a T4's 16 GB, logs what a team needs to
# > compare runs, and picks up exactly where it stopped when Colab disconnects.

# %% [markdown]
# - **You will learn:** the training loop: fp16 with loss scaling, gradient accumulation, clipping,
#   evaluation, checkpoints that survive a disconnect, and how to measure where the time goes.
# - **You need:** chapters 02, 03 and 04; a Colab T4 for the real run (a CPU runs the smoke recipe).
# - **Time:** about 65 minutes on a T4 (the T4 recipe's 3,200 iterations, 210M tokens at the estimated
#   59k tokens/s: 59 minutes, plus data and evaluation); about 2 minutes on a CPU with the smoke config, as CI
#   runs it. On a free Colab quota, run it once and keep the checkpoint: chapters 08 and A7 reuse it.
# - **You should see:** a loss curve that starts near ln(8192) = 9.0 nats and, on a T4, ends below 2
#   (the course's emulated run had 1.87 after 1,300 iterations); peak memory by micro-batch (32 sequences
#   about 6.9 GiB of a T4's 14.7); on the CPU's smoke run the loss barely moves from 9.

# %%
#| default_exp train

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
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from neoxcourse.checkpoint import (CheckpointError, check_writable, latest_checkpoint, list_checkpoints,
                                   load_checkpoint, preserve_rng, rng_state, save_checkpoint, set_rng_state,
                                   unwrap_model, verify_checkpoint)
from neoxcourse.data import BatchSampler
from neoxcourse.device import (Distributed, autocast_context, choose_device, choose_precision, device_name,
                               init_distributed, peak_flops)
from neoxcourse.env import in_colab, seed_everything
from neoxcourse.model import GPTNeoX, estimate_memory, flops_per_token
from neoxcourse.optim import build_optimizer, param_groups, set_train_mode
from neoxcourse.schedules import build_schedule
from neoxcourse.tokenizer import load_tokenizer, prepare
from neoxcourse.tracking import model_flops_utilization, start_tracking

# %%
#| hide
import errno
import random
import tempfile
import warnings
import numpy as np
from fastcore.test import test_close, test_eq, test_fail
from neoxcourse.config import default_config_path, load_config

# %%
cfg = load_config(config_path or default_config_path(), overrides)

# %% [markdown]
# ## 1. Device and precision
#
# Chapter 00b decides where and in what format we train (`neoxcourse.device`): a GPU when there is one, fp16
# on a T4 (it has fp16 tensor cores and no bf16 ones), bf16 from compute capability 8.0, fp32 on a CPU.
# fp16 has a narrow range (largest value 65504, smallest normal 6e-5): small gradients underflow to zero
# unless the loss is multiplied by a large *loss scale* before `backward()` and the gradients divided by it
# before the update (Micikevicius et al. 2018, *Mixed Precision Training*). `torch.amp.GradScaler` does this,
# lowering the scale when a step overflows (and skipping that step) and raising it again after 2000 clean
# steps. The weights and the optimizer state stay fp32; only the matmuls run in fp16 inside `torch.autocast`.

# %%
device = choose_device(cfg.training.device)
precision = choose_precision(cfg.training.precision, device)
print(f"this config trains on {device} in {precision}")
test_eq(precision, "fp32" if device.type == "cpu" else precision)
scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")  # a loss scaler only for fp16
test_eq(scaler.is_enabled(), precision == "fp16")

# %% [markdown]
# Why the scale matters, in two lines. Under autocast the weights and their gradients are fp32, so a weight
# gradient of 1e-8 is safe; what is fp16 is the backward pass through the matrix products: the gradients
# of the activations. One of 1e-8 is zero in fp16 (its smallest subnormal is 6e-8), and everything computed
# from it downstream is lost, but it survives when the loss, and so every gradient, was multiplied by the
# scaler's starting scale of 65536 first.

# %%
g = torch.tensor(1e-8)
test_eq(g.half().item(), 0.0)
assert (g * 65536).half().item() > 0


# %% [markdown]
# ## 2. One optimizer step: loss, accumulation, clipping
#
# The loss is the mean cross-entropy of the next token, computed in fp32 (the logits are upcast: a
# softmax over 8k classes in fp16 loses precision). `log(vocab_size)` is what a model that knows nothing
# scores: 9.0 nats for a vocabulary of 8192.

# %%
#| export
def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    "Mean next-token cross-entropy in fp32: logits (B, T, V), targets (B, T)."
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())  # (B*T, V) vs (B*T,)


# %%
uniform = lm_loss(torch.zeros(2, 3, 8192), torch.zeros(2, 3, dtype=torch.long))  # equal logits everywhere
test_close(uniform.item(), math.log(8192), eps=1e-4)

# %% [markdown]
# ### Exercise first: gradient accumulation, by yourself
#
# Write it now, with `lm_loss` just above, before reading on: the next cells are the library's training
# step, micro-batch loop included.
#
# **Task.** In `exercises/05_training/starter.py`, write `accumulate_gradients(model, batches)`: run forward and
# backward over the micro-batches `[(x, y), ...]` so that afterwards every parameter's `.grad` holds the
# gradient of the **mean** loss over all of them (as if they had been one batch), and return that mean loss.
# Use `lm_loss(logits, y)` from this chapter; do not call `zero_grad` (the caller does, before).
#
# **How it is checked.** `check_exercise("05_training", accumulate_gradients)` builds a small GPT-NeoX (vocabulary, sequence length and weights drawn afresh at every check),
# computes the reference gradient of one batch of 8 sequences with a single `backward()`, then calls your
# function with the same 8 sequences split into 4 x 2, 2 x 4 and 1 x 8 micro-batches. It reports
# `max_relative_error`, the largest difference from the reference relative to the largest reference gradient;
# it passes below 1e-4 (float32 sums in another order differ by about 1e-7). A failing check names the
# classic mistakes: gradients n times too large (the loss was not divided by the number of micro-batches), or
# equal to the last micro-batch's alone (gradients were zeroed inside the loop).
#
# **How to submit.** `python starter.py --submit --name YOUR_NAME` (in `exercises/05_training/`), or
# `submit("05_training", accumulate_gradients, name="YOUR_NAME")` in a notebook: a W&B run in group
# `05_training`, offline if you are not signed in (`wandb sync` uploads it later).

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import torch

from neoxcourse.exercises import hidden_rng
from neoxcourse.model import GPTNeoX
from neoxcourse.train import lm_loss

def _relative_error(got: list, want: list, scale: float) -> float:
    return max((g - w).abs().max().item() for g, w in zip(got, want)) / scale

def _accumulation_hint(model, batches, got, want, scale) -> str:
    "Name the classic mistake the gradients `got` show, by comparing them with what each mistake gives."
    n = len(batches)
    if _relative_error(got, [n * w for w in want], n * scale) < 1e-4:
        return (f"the gradients are {n} times too large: divide each micro-batch's loss by the number of "
                f"micro-batches ({n}) before backward()")
    model.zero_grad(set_to_none=True)
    lm_loss(model(batches[-1][0]), batches[-1][1]).backward()  # the last micro-batch alone
    last = [p.grad.clone() for p in model.parameters()]
    if any(_relative_error(got, [c * g for g in last], scale) < 1e-3 for c in (1, 1 / n)):
        return "the gradients are the last micro-batch's only: do not zero them between micro-batches"
    return "the gradients differ from those of the whole batch"

def check_accumulation_exercise(accumulate) -> dict:
    "Check exercise 05: accumulate(model, batches) must leave the one-batch mean-loss gradient in .grad."
    from neoxcourse.config import ModelConfig
    rng = hidden_rng()                                   # hidden model and batch, new at every check
    T, V = int(rng.integers(8, 24)), int(rng.integers(64, 200))
    mcfg = ModelConfig(num_layers=2, hidden_size=32, num_attention_heads=4, seq_length=T,
                       max_position_embeddings=T, vocab_size=V, intermediate_size=128)
    torch.manual_seed(int(rng.integers(2**31)))
    model = GPTNeoX(mcfg)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    x, y = torch.randint(V, (8, T), generator=gen), torch.randint(V, (8, T), generator=gen)
    want_loss = lm_loss(model(x), y)
    want_loss.backward()
    want = [p.grad.clone() for p in model.parameters()]
    scale = max(g.abs().max().item() for g in want)
    worst = 0.0
    for n in (4, 2, 1):
        model.zero_grad(set_to_none=True)
        batches = list(zip(x.chunk(n), y.chunk(n)))
        loss = accumulate(model, batches)
        got = [p.grad for p in model.parameters()]
        if any(g is None for g in got):
            raise ExerciseError("some .grad is None: call backward() on each loss")
        err = _relative_error(got, want, scale)
        if err > 1e-4:
            raise ExerciseError(f"with {n} micro-batches of {8 // n}: relative error {err:.2e}; "
                                f"{_accumulation_hint(model, batches, got, want, scale)}")
        if abs(float(loss) - want_loss.item()) > 1e-4:
            raise ExerciseError(f"returned loss {float(loss):.5f}, the mean over the batch is "
                                f"{want_loss.item():.5f}")
        worst = max(worst, err)
    return {"max_relative_error": worst, "cases": 3}

register_exercise(Exercise("05_training", "Gradient accumulation", "max_relative_error", False,
                           (0.0, 1e-4), check_accumulation_exercise))

# %% [markdown]
# The check itself is tested: the reference solution passes, and the two classic mistakes fail with their hints.

# %%
import importlib.util
from neoxcourse.exercises import check_exercise
spec = importlib.util.spec_from_file_location("solution", cfg.root / "exercises" / "05_training" / "solution.py")
solution = importlib.util.module_from_spec(spec); spec.loader.exec_module(solution)
assert check_exercise("05_training", solution.answer())["max_relative_error"] < 1e-4

def no_division(model, batches):
    losses = [lm_loss(model(x), y) for x, y in batches]
    for loss in losses: loss.backward()
    return sum(l.item() for l in losses) / len(losses)

def zeroing(model, batches):
    total = 0.0
    for x, y in batches:
        model.zero_grad()
        loss = lm_loss(model(x), y); loss.backward(); total += loss.item()
    return total / len(batches)

test_fail(lambda: check_exercise("05_training", no_division), contains="divide each micro-batch's loss")
test_fail(lambda: check_exercise("05_training", zeroing), contains="do not zero them")


# %% [markdown]
# **Gradient accumulation.** The global batch the recipe asks for (say 32 sequences of 1024 tokens)
# does not fit a T4 at once, so we split it into micro-batches, run forward and backward on each, and
# let the gradients add up in `.grad` before one optimizer step. Dividing each micro-batch's loss by
# their number makes the sum equal the gradient of the mean loss over the whole global batch:
#
# $$\nabla \frac{1}{n}\sum_{i=1}^{n} L_i = \sum_{i=1}^{n} \nabla \frac{L_i}{n}.$$
#
# Under DistributedDataParallel every `backward()` would also average the gradients across GPUs; `no_sync()`
# skips that for all micro-batches but the last, so the GPUs talk once per step.

# %% [markdown]
# **Clipping.** One bad batch can produce a gradient a hundred times the usual size; clipping rescales the
# whole gradient to norm at most `gradient_clipping` (1.0 in GPT-NeoX recipes). We report the norm *before*
# clipping: it is the early warning of a run about to diverge. With fp16 the gradients must first be
# unscaled (`scaler.unscale_`), or we would clip the scaled ones.
#
# **Skipped steps.** If any gradient is `inf` or `NaN` (an fp16 overflow, or a loss that went NaN), the norm
# is too, and the update must not happen: `scaler.step` then skips it by itself and `scaler.update` lowers the
# scale; in fp32 and bf16 there is no scaler, so we skip it ourselves. We report such a step as skipped.
#
# **The step.** `train_step` puts these together: for each micro-batch, the forward pass under autocast
# (chapter 00b) and a backward pass of the scaled, divided loss (under DDP with `no_sync()` for all but the
# last); then unscale, clip, step, update the scale, and clear the gradients. It is the one training step of
# the course: the loop, the benchmarks, the multi-GPU check and every chapter that trains call it. It returns
# tensors and does not wait for the GPU (except, without a scaler, once to decide a skip), so a caller that
# logs pays for `.item()` only when it logs. `loss_fn(x, y)` replaces `lm_loss(model(x), y)` when a caller
# needs another loss or a compiled one.

# %%
#| export
@dataclass
class StepResult:
    "One training step: the mean loss of its micro-batches, the gradient norm before clipping, skipped or not."
    loss: torch.Tensor       # 0-d tensors on the device: call .item() when you log
    grad_norm: torch.Tensor
    skipped: torch.Tensor    # True when a gradient was inf/NaN and the update did not happen

def train_step(model, optimizer, scaler, batches: list, precision: str = "fp32", clip: float | None = None,
               loss_fn=None) -> StepResult:
    "Forward and scaled backward over micro-batches (x, y), unscale, clip, step, update the loss scale."
    loss_fn = loss_fn or (lambda x, y: lm_loss(model(x), y))
    ddp, total = isinstance(model, DistributedDataParallel), 0.0
    for i, (x, y) in enumerate(batches):
        sync = model.no_sync() if ddp and i < len(batches) - 1 else nullcontext()  # DDP: reduce once
        with sync:
            with autocast_context(x.device, precision): loss = loss_fn(x, y)
            scaler.scale(loss / len(batches)).backward()  # gradient of the mean over the micro-batches
        total = total + loss.detach().float()
    scaler.unscale_(optimizer)                               # clip the true gradients, not the scaled ones
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip and clip > 0 else float("inf"))
    skipped = ~torch.isfinite(norm)                          # an inf/NaN gradient makes the norm inf/NaN
    if scaler.is_enabled(): scaler.step(optimizer)           # skips the update by itself on inf/NaN
    elif not skipped.item(): optimizer.step()                # fp32/bf16: no scaler, we skip it ourselves
    scaler.update()                                          # fp16: lower the scale after an overflow
    optimizer.zero_grad(set_to_none=True)
    return StepResult(total / len(batches), norm, skipped)


# %% [markdown]
# A check with an independent reference: four micro-batches of 2 must change the weights exactly as one
# batch of 8 does, with the same loss and the norm before clipping; a NaN loss must leave the weights alone.

# %%
torch.manual_seed(0)
toy = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 50))
x, y = torch.randint(50, (8, 5)), torch.randint(50, (8, 5))
loss = lm_loss(toy(x), y); loss.backward()
full = [p.grad.clone() for p in toy.parameters()]
expected = torch.cat([g.flatten() for g in full]).norm().item()
start = [p.detach().clone() for p in toy.parameters()]
clip = 1e-3 * expected                                  # the update is the gradient scaled to norm `clip`
toy.zero_grad()
opt, noscale = torch.optim.SGD(toy.parameters(), lr=1.0), torch.amp.GradScaler("cpu", enabled=False)
out = train_step(toy, opt, noscale, [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)], "fp32", clip)
test_close(out.loss.item(), loss.item(), eps=1e-6)
test_close(out.grad_norm.item(), expected, eps=1e-5)
for p, s, g in zip(toy.parameters(), start, full): test_close(p.detach(), s - g * clip / expected, eps=1e-6)
assert not out.skipped and all(p.grad is None for p in toy.parameters())
before = [p.detach().clone() for p in toy.parameters()]
nan = train_step(toy, opt, noscale, [(x, y)], "fp32", clip, loss_fn=lambda x, y: lm_loss(toy(x), y) * float("nan"))
assert nan.skipped and all(torch.equal(p, b) for p, b in zip(toy.parameters(), before))


# %% [markdown]
# ## 3. Checkpoints (side trip 05a)
#
# A checkpoint holds everything the next step depends on (weights in `safetensors`; optimizer, loss scaler,
# schedule position, step, every random generator, the data sampler's position, the W&B run id in a torch
# file; the resolved config), appears by an atomic rename, and is refused with a reason when it is damaged or
# made with another config. `A3_checkpoints` builds `save_checkpoint`, `latest_checkpoint`,
# `load_checkpoint`, `rng_state` and `preserve_rng` and tests them against a killed process, a corrupt file
# and a full disk; the loop below only calls them.
#
# ## 4. Tracking (side trip 05b)
#
# `start_tracking(cfg, folder, run_id)` opens the W&B run (online when you are signed in, offline
# otherwise, disabled only when asked) with the resolved config; `Tracker.log` writes GPT-NeoX's metric
# names; `model_flops_utilization` divides the model's FLOPs per second by the GPU's peak from a table;
# `read_run` reads a run back from disk. `A4_tracking` builds them.

# %% [markdown]
# ## 5. Memory: choosing the micro-batch
#
# The global batch is fixed by the recipe (it shapes the optimization); the micro-batch is only a
# question of memory. The model chapter's `estimate_memory` adds up weights, gradients, optimizer state
# and activations for a micro-batch; we take the largest micro-batch that divides the per-GPU batch and fits
# the GPU with a margin, and raise the accumulation to keep the global batch:
# `global = micro x accumulation x GPUs`. Estimates are estimates, so `find_micro_batch: true` instead
# *tries* forward and backward at each candidate, largest first, and keeps the first that does not run out
# of memory.

# %%
#| export
def micro_batch_candidates(global_batch_size: int, world_size: int = 1) -> list[int]:
    "Micro-batches that divide the per-GPU share of the global batch, largest first."
    if global_batch_size % world_size:
        raise ValueError(f"global batch {global_batch_size} is not divisible by {world_size} processes")
    per_rank = global_batch_size // world_size
    return [m for m in range(per_rank, 0, -1) if per_rank % m == 0]

def memory_estimate(model_cfg, micro_batch: int, precision: str, optimizer: str = "adamw") -> dict:
    "Chapter 04's estimate (bytes) for a micro-batch, the optimizer's state from chapter 06's registry."
    return estimate_memory(model_cfg, micro_batch, precision, optimizer)

def estimate_micro_batch(model_cfg, candidates: list[int], precision: str, budget_bytes: float,
                         requested: int | None = None, optimizer: str = "adamw") -> int:
    "The largest candidate (at most `requested`) whose estimated memory fits `budget_bytes`."
    fitting = [m for m in candidates if (requested is None or m <= requested)
               and memory_estimate(model_cfg, m, precision, optimizer)["total"] <= budget_bytes]
    return fitting[0] if fitting else candidates[-1]


# %%
test_eq(micro_batch_candidates(32, 2), [16, 8, 4, 2, 1])
test_fail(lambda: micro_batch_candidates(6, 4), contains="not divisible")


# %%
#| export
def find_micro_batch(model, candidates: list[int], seq_length: int, vocab_size: int, device,
                     precision: str, budget_bytes: float, optimizer_bytes: float = 0.0) -> int:
    "The largest candidate whose real forward + backward (+ `optimizer_bytes`) fits `budget_bytes`."
    autocast = autocast_context(device, precision)
    for m in candidates:
        try:
            torch.cuda.reset_peak_memory_stats(device)
            x = torch.randint(vocab_size, (m, seq_length), device=device)
            with autocast: lm_loss(model(x), x).backward()
            peak = torch.cuda.max_memory_allocated(device)
            if peak + optimizer_bytes <= budget_bytes: return m
        except torch.OutOfMemoryError:
            pass
        finally:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
    return candidates[-1]


# %% [markdown]
# Together, for a config: on a CPU the configured micro-batch stays (memory is rarely the limit there);
# on a GPU the estimate, or the search, decides, within 90% of what the process may use.

# %%
#| export
def gpu_memory_budget(device, margin: float = 0.9) -> float:
    "Bytes this process may still use on `device` (free, within any per-process fraction) x `margin`."
    free, total = torch.cuda.mem_get_info(device)
    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    fraction = get_fraction(device) if get_fraction else 1.0
    allowed = fraction * total - torch.cuda.memory_reserved(device)
    return margin * min(free, allowed)

def choose_micro_batch(cfg, model, device, precision: str, world_size: int = 1) -> int:
    "Micro-batch for `cfg`: as configured on a CPU; on a GPU the largest that fits (estimate or search)."
    t = cfg.training
    candidates = micro_batch_candidates(t.global_batch_size, world_size)
    requested = t.micro_batch_size
    if device.type != "cuda":
        if requested in candidates: return requested
        return estimate_micro_batch(cfg.model, candidates, precision, float("inf"), requested)
    budget = gpu_memory_budget(device)
    if t.find_micro_batch:
        opt_bytes = 12 * sum(p.numel() for p in model.parameters())  # fp32 Adam moments + fp32 grads
        return find_micro_batch(model, candidates, cfg.model.seq_length, cfg.model.vocab_size, device,
                                precision, budget, opt_bytes)
    chosen = estimate_micro_batch(cfg.model, candidates, precision, budget, requested, cfg.optimizer.type)
    if chosen < (requested or chosen):
        print(f"micro-batch {requested} would not fit ({budget / 2**30:.1f} GiB free): using {chosen}, "
              f"accumulating {t.global_batch_size // (chosen * world_size)} micro-batches a step.")
    return chosen


# %% [markdown]
# ## 6. Evaluation and sample completions
#
# Every `eval-interval` iterations we measure the loss on `eval-iters` batches of held-out files. The
# validation batches are the same at every evaluation (a sampler with a fixed seed), so the curve moves
# only because the model does. Perplexity is `exp(loss)`: the number of tokens the model hesitates between.
# A few greedy completions of fixed prompts go to W&B as a table: the loss says *how much*, the samples say
# *what* the model learned (first indentation, then keywords, then names that fit).

# %%
#| export
SAMPLE_PROMPTS = ["def fibonacci(n):\n", "import os\n\n\ndef list_files(path):\n",
                  "class Stack:\n    def __init__(self):\n"]

@torch.no_grad()
def evaluate_loss(model, sampler, iters: int, device, autocast, rank: int = 0, world_size: int = 1) -> float:
    "Mean loss over `iters` validation batches (split over processes)."
    model.eval()
    total, count = torch.zeros((), device=device), torch.zeros((), device=device)
    for k in range(iters):
        x, y = sampler.next_batch()
        if k % world_size != rank: continue
        with autocast: total += lm_loss(model(x.to(device)), y.to(device)).float()
        count += 1
    model.train()
    if world_size > 1:
        dist.all_reduce(total); dist.all_reduce(count)
    return (total / count.clamp(min=1)).item()

@torch.no_grad()
def greedy_completion(model, tokenizer, prompt: str, max_new_tokens: int, seq_length: int, device) -> str:
    "The most likely continuation of `prompt` (greedy: no randomness, so it does not touch the RNG)."
    model.eval()
    ids = torch.tensor([tokenizer.encode(prompt)], device=device)  # (1, T)
    start, eos = ids.shape[1], tokenizer.convert_tokens_to_ids("<|endoftext|>")
    for _ in range(max_new_tokens):
        next_id = model(ids[:, -seq_length:])[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        ids = torch.cat([ids, next_id], dim=1)
        if next_id.item() == eos: break
    model.train()
    return tokenizer.decode(ids[0, start:].tolist())


# %% [markdown]
# ## 7. Several GPUs
#
# `torchrun --nproc_per_node N` starts N copies of the program and tells each its `RANK`, `LOCAL_RANK`
# and `WORLD_SIZE`. Each process holds a full model replica; DistributedDataParallel averages the
# gradients across processes during the last `backward()` of a step, so every replica takes the same step.
# We split the *global* batch: every process draws the same stream of micro-batches and keeps every N-th
# one, so N processes see together exactly what one process sees alone (and a checkpoint written with
# N GPUs resumes with any number). Only rank 0 logs, writes checkpoints and shows a progress bar. GPUs
# talk through NCCL; on a CPU (our tests) through gloo. Joining and leaving the job is chapter 00b's
# `init_distributed` and `Distributed.close`; here each rank takes its share of the batch.

# %%
#| export
def my_share(sampler, n_micro: int, ddp: Distributed, device) -> list:
    "Draw the global batch's `n_micro` micro-batches and keep this rank's share (every world_size-th)."
    batches = []
    for k in range(n_micro):
        x, y = sampler.next_batch()
        if k % ddp.world_size == ddp.rank: batches.append((x.to(device), y.to(device)))
    return batches


# %% [markdown]
# Where checkpoints go: the config's `save` folder, or on Colab, when Google Drive is mounted, the same
# path inside `MyDrive/neoxcourse/`, so they outlive the session.

# %%
#| export
def checkpoint_dir(cfg, drive: Path | None = None) -> Path:
    "Where checkpoints and the W&B run go: `save`, moved into Google Drive on Colab when it is mounted."
    from neoxcourse.env import COLAB_DRIVE   # read when called: where Colab mounted Drive (`mount_drive`)
    drive = Path(drive) if drive is not None else COLAB_DRIVE / "MyDrive"
    save = cfg.resolve(cfg.training.save or "checkpoints")
    if in_colab() and Path(drive).is_dir() and not str(save).startswith(str(Path(drive).parent)):
        try: rel = save.relative_to(cfg.root)
        except ValueError: rel = Path(save.name)
        save = Path(drive) / "neoxcourse" / rel
    return save


# %%
test_eq(checkpoint_dir(cfg), cfg.resolve(cfg.training.save))  # not on Colab: the config's folder
fake_drive = Path(tempfile.mkdtemp()) / "MyDrive"; fake_drive.mkdir()
os.environ["COLAB_RELEASE_TAG"] = "test"  # what Colab sets; in_colab() reads it
save = cfg.resolve(cfg.training.save or "checkpoints")
rel = save.relative_to(cfg.root) if save.is_relative_to(cfg.root) else Path(save.name)
try: test_eq(checkpoint_dir(cfg, fake_drive), fake_drive / "neoxcourse" / rel)
finally: del os.environ["COLAB_RELEASE_TAG"]


# %% [markdown]
# A run that starts from scratch must not mix its checkpoints with those of an earlier run in the same folder
# (resume would then pick whichever has the higher step). Deleting them would punish a forgotten `--resume`,
# so they are moved aside into a dated folder.

# %%
#| export
def move_aside(save_dir) -> Path | None:
    "Move the checkpoints in `save_dir` to `save_dir/previous-<time>/` so a fresh run starts clean."
    old = list_checkpoints(save_dir)
    if not old: return None
    aside = Path(save_dir) / f"previous-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    aside.mkdir(parents=True)
    for p in old: os.replace(p, aside / p.name)
    print(f"starting from scratch: the {len(old)} checkpoint(s) already in {save_dir} were moved to {aside} "
          f"(train with resume=True, or --resume, to continue them instead).")
    return aside


# %%
aside_demo = Path(tempfile.mkdtemp())
(aside_demo / "step_00000005").mkdir()
moved = move_aside(aside_demo)
test_eq([p.name for p in moved.iterdir()], ["step_00000005"])
test_eq(list_checkpoints(aside_demo), [])


# %% [markdown]
# ## 8. The loop
#
# `train(cfg)` puts the pieces together, in numbered steps. Two rules make resuming exact. First, the
# checkpoint's random state and sampler position are those of the *step boundary* (a snapshot taken after
# each step), so an interrupt in the middle of a step loses that step's partial work and nothing else.
# Second, evaluation, logging and checkpointing run inside `preserve_rng`, so they never shift the
# random stream of training. Faults end with a message that says what to change:
# `TrainingError` for a loss that stays NaN and for running out of GPU memory.

# %%
#| export
class TrainingError(RuntimeError):
    "Training cannot go on; the message says what to change in the config."

@dataclass
class TrainResult:
    "What a run did: losses by iteration, evaluations, throughput, where its checkpoint and W&B run are."
    iterations: int = 0
    losses: dict = field(default_factory=dict)      # iteration -> train loss
    val_losses: dict = field(default_factory=dict)  # iteration -> validation loss
    tokens_seen: int = 0
    skipped_steps: int = 0
    tokens_per_sec: float = 0.0
    mfu: float | None = None
    peak_memory_bytes: int | None = None
    checkpoint: Path | None = None
    wandb_run_id: str | None = None
    wandb_dir: Path | None = None
    device: str = "cpu"
    precision: str = "fp32"
    micro_batch_size: int = 0
    gradient_accumulation_steps: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    train_iters: int = 0                             # the run's end: the config's, or the time budget's
    train_iters_reason: str = ""
    compile_seconds: float | None = None             # first step's extra time (compilation), fast path only

    def __str__(self) -> str:
        "One paragraph for people (the dataclass repr keeps every loss)."
        fmt = lambda d: f"{d[max(d)]:.4f}" if d else "-"
        mfu = f", MFU {self.mfu:.1%}" if self.mfu else ""
        verb = "interrupted at" if self.interrupted else "trained"
        return (f"{verb} iteration {self.iterations} on {self.device} ({self.precision}, micro-batch "
                f"{self.micro_batch_size} x {self.gradient_accumulation_steps}): "
                f"train loss {fmt(self.losses)}, validation loss {fmt(self.val_losses)}, "
                f"{self.tokens_seen:,} tokens, {self.tokens_per_sec:,.0f} tokens/s{mfu}, "
                f"{self.skipped_steps} skipped step(s), {self.elapsed:.1f} s\n"
                f"checkpoint: {self.checkpoint}\nW&B run: {self.wandb_run_id} ({self.wandb_dir})")


# %% [markdown]
# When a run cannot go on, the message should say what to change. These two build it: for out of memory, the estimate and a micro-batch half as large with the accumulation that keeps the global batch; for NaN, a learning rate three times lower, a longer warmup, or fp32.

# %%
#| export
def _oom_message(cfg, micro: int, precision: str, device_bytes: int, world_size: int = 1) -> str:
    "What to change after CUDA ran out of memory: the estimate, and a micro-batch half as large."
    est = memory_estimate(cfg.model, micro, precision, cfg.optimizer.type)
    half = max(micro // 2, 1)
    accum = cfg.training.global_batch_size // (half * world_size)
    return (f"CUDA out of memory at micro-batch {micro} (estimated {est['total'] / 2**30:.1f} GiB; the GPU "
            f"has {device_bytes / 2**30:.1f} GiB). Change: --set train_micro_batch_size_per_gpu={half} "
            f"(accumulation becomes {accum}, the global batch stays {cfg.training.global_batch_size}), or "
            f"--set checkpoint-activations=true, or let the loop search: "
            f"--set training.find_micro_batch=true.")

def _no_resume_message(load_dir, model) -> str:
    "Why `--resume` cannot continue the checkpoints in `load_dir`: the newest one's reason (e.g. another architecture)."
    found = list_checkpoints(load_dir)
    why = verify_checkpoint(found[-1], model)
    return (f"--resume: none of the {len(found)} checkpoint(s) in {load_dir} can be continued (the newest, "
            f"{found[-1].name}: {why}); fix the config to match {found[-1] / 'config.yml'}, or train without "
            f"--resume to start over (they are then moved aside, not deleted)")

def _nan_message(cfg, step: int, n: int, precision: str) -> str:
    "What to change after `n` non-finite losses in a row."
    fp32 = "" if precision == "fp32" else ", or train in fp32 (--set fp16.enabled=false)"
    return (f"the loss was NaN or infinite for {n} steps in a row (up to iteration {step}): the model "
            f"diverged. Change: lower the learning rate (--set lr={cfg.optimizer.lr / 3:.1e}), keep "
            f"gradient_clipping "
            f"at 1.0, lengthen the warmup (--set warmup={max(2 * cfg.schedule.warmup, 0.01):g}){fp32}; "
            f"then resume from the last good checkpoint with --resume.")


# %% [markdown]
# ### Runs sized by the clock, and resumes that say what they do
#
# A Colab hour is a budget of *time*, not of iterations, and no one knows in advance how fast a learner's GPU
# is. With `neoxcourse.training.time_budget_minutes` set (`--set training.time_budget_minutes=60`), the loop
# times its first steps, one evaluation and one checkpoint, then sets train-iters so that the rest of the
# budget covers the remaining steps with their share of evaluations and checkpoints, the final evaluation and
# checkpoint, and a 5% margin; the schedule then decays to that end. The checkpoint keeps the budget's time
# used and its end, so a resumed run continues the same schedule to the same end. (The timed first steps run
# the warmup of the config's train-iters; sizing may shorten the warmup after them.)
#
# Resuming also checks the plan: a checkpoint records the train-iters its schedule was built for. A different
# value stretches the schedule, and the learning rate jumps; the loop says by how much and which key keeps the
# old schedule. A run that already reached its end has nothing to do, and says so without opening a W&B run.

# %%
#| export
CALIBRATION_STEPS = 5      # steps timed (after the first, which compiles and warms up) before sizing a run
BUDGET_MARGIN = 0.05       # share of the budget held back for the run's own jitter

@dataclass
class TimeBudget:
    "A run sized by the clock: the seconds it may take, what earlier sessions used, the end it chose and why."
    seconds: float
    used_before: float = 0.0
    train_iters: int | None = None
    reason: str = ""
    seconds_per_iteration: float = 0.0   # with its share of evaluations and checkpoints

    def left(self, session_start: float) -> float:
        "Seconds of the budget still unused."
        return self.seconds - self.used_before - (time.perf_counter() - session_start)

    def size(self, step: int, step_s: float, eval_s: float, save_s: float, t, session_start: float) -> int:
        "The last iteration that fits: the rest of the budget over one iteration's cost (its share of evaluations and checkpoints), after the final evaluation and checkpoint."
        per_iteration = step_s + eval_s / t.eval_interval + (save_s / t.checkpoint_factor if t.checkpoint_factor else 0)
        self.seconds_per_iteration = per_iteration
        spare = self.left(session_start) - eval_s - save_s - BUDGET_MARGIN * self.seconds
        self.train_iters = step + max(int(spare // per_iteration), 0)
        self.reason = (f"time budget {self.seconds / 60:g} min: {step_s:.3g} s an iteration, {eval_s:.3g} s an "
                       f"evaluation, {save_s:.3g} s a checkpoint, {self.left(session_start):.0f} s left -> "
                       f"train-iters {self.train_iters} (the config said {t.train_iters}); the schedule now decays "
                       f"to iteration {self.train_iters}")
        return self.train_iters

    def state(self, session_start: float) -> dict:
        "What a checkpoint keeps, so that a resumed run continues the same budget to the same end."
        used = self.seconds - self.left(session_start)
        return {"seconds": self.seconds, "used_seconds": used, "train_iters": self.train_iters, "reason": self.reason,
                "seconds_per_iteration": self.seconds_per_iteration}

    def resume(self, saved: dict | None, step: int, main: bool = True) -> None:
        "Continue a checkpoint's budget: its time used counts, its end stays (the schedule stays continuous)."
        if not saved or saved.get("train_iters") is None: return     # saved before sizing: size again
        self.used_before, self.train_iters, self.reason = saved["used_seconds"], saved["train_iters"], saved["reason"]
        self.seconds_per_iteration = saved.get("seconds_per_iteration", 0.0)
        need = (self.train_iters - step) * self.seconds_per_iteration
        if main: print(f"time budget: {self.used_before / 60:.1f} of {self.seconds / 60:g} min used; continuing "
                       f"the same schedule to iteration {self.train_iters} (about {need / 60:.1f} min at the speed "
                       f"measured, {(self.seconds - self.used_before) / 60:.1f} min of budget left)")

def resumed_train_iters(cfg, state: dict, step: int, main: bool = True) -> int:
    "train-iters of a resumed run: the budget's end under a time budget; a changed train-iters said aloud."
    t, saved = cfg.training, state.get("train_iters")
    if saved is None: return t.train_iters                      # a checkpoint older than this record
    if t.time_budget_minutes and (state.get("time_budget") or {}).get("train_iters"): return saved
    if saved != t.train_iters and step < t.train_iters and main:
        lr = cfg.optimizer.lr
        old, new = (build_schedule(cfg.schedule, n, lr)(step) for n in (saved, t.train_iters))
        warnings.warn(f"train-iters is {t.train_iters}, but the checkpoint's run was planned for {saved}: the "
                      f"schedule is stretched to end at {t.train_iters}, so the learning rate at iteration {step} "
                      f"goes from {old:.3g} to {new:.3g}, then decays to iteration {t.train_iters}. To keep the "
                      f"original schedule, resume with --set train-iters={saved}.", stacklevel=2)
    return t.train_iters

def _finished_message(path, step: int, train_iters: int) -> str:
    return (f"{path} ends a finished run (iteration {step}, train-iters {train_iters}): nothing left to do, "
            f"no W&B run opened. To train on, raise train-iters (--set train-iters={2 * train_iters}); the "
            f"schedule then stretches to the new end, and training says how.")



# %%
from types import SimpleNamespace
b = TimeBudget(600.0)                                   # ten minutes
start = time.perf_counter() - 99.5                      # 99.5 s of this session used already
t_cfg = SimpleNamespace(eval_interval=50, checkpoint_factor=100, train_iters=1000)
end = b.size(6, 1.0, 10.0, 5.0, t_cfg, start)           # 1 s a step, 10 s an eval, 5 s a checkpoint
# (500 s - 15 s final eval and checkpoint - 30 s margin) / (1 + 10/50 + 5/100) s = 364 more iterations
test_eq(end, 6 + 364)
test_eq(b.state(start)["train_iters"], 370)
resumed = TimeBudget(600.0); resumed.resume(b.state(start), 100, main=False)
test_eq((resumed.train_iters, round(resumed.used_before)), (370, 100))


# %% [markdown]
# `train` follows the numbered steps in its comments: 1-2 processes and data, 3-5 the model, the micro-batch, the optimizer and the schedule, 6 resuming, 7 the wrappers (DDP, `torch.compile`), 8 the loop itself, one optimizer step per iteration, and 9 the sizing of a run by the clock.
#
# On a GPU the loop takes its fast path unless `neoxcourse.training.compile` says otherwise: the model and the loss are compiled into one graph (so the fp32 cross-entropy fuses into the logits), replayed as CUDA graphs when a step is one micro-batch on one GPU, and the optimizer is chapter 06's multi-tensor version of the configured one (the same numbers, fewer kernels). The first step pays for the compilation, and the loop prints how long it took; tokens/s leave that step out. On a CPU (and in CI) the loop stays eager and per-parameter, exactly as written here; `--set training.compile=true` turns the fast path on anywhere, `false` off.

# %%
#| export
def train(cfg, resume: bool = False, on_step=None) -> TrainResult:
    "Train the GPT-NeoX of `cfg`; with `resume`, continue from the newest good checkpoint in `save`."
    t, session_start = cfg.training, time.perf_counter()
    # 1. processes, device, precision
    ddp = init_distributed(t.device)
    device = choose_device(t.device, ddp.local_rank)
    precision = choose_precision(t.precision, device)
    autocast = autocast_context(device, precision)
    # 2. data: prepared once (rank 0 first; the others then reuse it)
    if ddp.main: data = prepare(cfg)
    ddp.barrier()
    if not ddp.main: data = prepare(cfg)
    # 3. model: the same initial weights on every rank
    seed_everything(t.seed)
    model = GPTNeoX(cfg.model).to(device)
    # 4. micro-batch and accumulation: global batch = micro x accumulation x processes
    micro = choose_micro_batch(cfg, model, device, precision, ddp.world_size)
    n_micro = t.global_batch_size // micro        # micro-batches in a global batch, over all ranks
    accum = n_micro // ddp.world_size
    fast = t.compile if t.compile is not None else device.type == "cuda"  # compiled + multi-tensor: GPU
    # 5. optimizer (no weight decay on norms and biases), schedule, loss scaler, data sampler
    optimizer = build_optimizer(param_groups(model, cfg.optimizer.weight_decay), cfg.optimizer, foreach=fast)
    train_iters = t.train_iters                   # a time budget (section 9) may set it after a few steps
    schedule = build_schedule(cfg.schedule, train_iters, cfg.optimizer.lr)
    budget = TimeBudget(t.time_budget_minutes * 60) if t.time_budget_minutes else None
    if budget is not None: train_iters = max(train_iters, CALIBRATION_STEPS + 2)  # room to time the steps
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    sampler = BatchSampler(data.train_path, micro, cfg.model.seq_length, t.seed)
    # 6. resume: weights, optimizer, scaler, RNG, data position, counters, W&B run id
    save_dir = checkpoint_dir(cfg)
    res = TrainResult(device=str(device), precision=precision, micro_batch_size=micro,
                      gradient_accumulation_steps=accum)
    step, state, last_saved = 0, {}, None
    load_dir = cfg.resolve(t.load) if t.load else save_dir
    if ddp.main: check_writable(save_dir)     # a read-only folder or a file in the way stops here, not at step 1000
    path = latest_checkpoint(load_dir, model) if resume else None
    if resume and path is None and list_checkpoints(load_dir):   # checkpoints there, none usable: stop, lose nothing
        raise TrainingError(_no_resume_message(load_dir, model))
    if path is not None:
        state = load_checkpoint(path, model, optimizer, scaler)
        step = last_saved = state["step"]
        res.checkpoint, res.iterations = path, step
        sampler.load_state_dict(state["sampler"])
        res.tokens_seen, res.skipped_steps = state.get("tokens_seen", 0), state.get("skipped_steps", 0)
        if ddp.main: print(f"resuming from {path} (iteration {step})")
        train_iters = resumed_train_iters(cfg, state, step, ddp.main)   # says so when the schedule changes
        schedule = build_schedule(cfg.schedule, train_iters, cfg.optimizer.lr)
        if budget is not None: budget.resume(state.get("time_budget"), step, ddp.main)
        if step >= train_iters:                   # a finished run: nothing to train, no W&B run to open
            if ddp.main: print(_finished_message(path, step, train_iters))
            res.train_iters = train_iters
            ddp.close()
            return res
    else:
        if resume and ddp.main: print(f"no checkpoint in {load_dir} yet: starting from scratch.")
        if ddp.main: move_aside(save_dir)
        ddp.barrier()
    tracker = start_tracking(cfg, save_dir, run_id=state.get("wandb_run_id"), rank=ddp.rank)
    res.wandb_run_id, res.wandb_dir = tracker.id, tracker.dir
    if "rng" in state: set_rng_state(state["rng"])
    tokenizer = load_tokenizer(cfg) if ddp.main and tracker.run else None
    # 7. wrappers: DDP, torch.compile (activation checkpointing is the model's own switch)
    net = model
    if ddp.world_size > 1:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = None
    if fast:  # model and loss in one compiled graph; CUDA graphs when a step is one micro-batch on one GPU
        mode = "reduce-overhead" if device.type == "cuda" and accum == 1 and ddp.world_size == 1 else None
        loss_fn = torch.compile(lambda x, y: lm_loss(net(x), y), mode=mode)
    # 8. the loop
    tokens_per_step = t.global_batch_size * cfg.model.seq_length
    fpt, peak = flops_per_token(cfg.model), peak_flops(device_name(device), precision)
    snapshot = {"rng": rng_state(), "sampler": sampler.state_dict()}  # the state at the last step boundary
    bad_in_row, lr, step_time, done = 0, 0.0, 0.0, 0  # done: steps taken in this session
    first_step, last_eval, times = 0.0, None, []
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(device)
    bar = tqdm(total=train_iters, initial=step, disable=not ddp.main, desc="train", dynamic_ncols=True)
    start = time.perf_counter()

    def save(at: int):
        nonlocal last_saved
        if ddp.main and last_saved != at:
            state = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                     "schedule": {"iteration": at, "lr": lr}, **snapshot, "wandb_run_id": tracker.id,
                     "tokens_seen": res.tokens_seen, "skipped_steps": res.skipped_steps,
                     "micro_batch_size": micro, "world_size": ddp.world_size, "train_iters": train_iters,
                     "time_budget": budget.state(session_start) if budget else None}
            # a save that fails stops the run (CheckpointError): training on would lose every step after it
            res.checkpoint = save_checkpoint(save_dir, at, model, state, cfg, t.keep_last_n_checkpoints)
            if cfg.wandb.log_checkpoints: tracker.log_checkpoint(res.checkpoint, at)
        last_saved = at

    try:
        while step < train_iters:
            tic = time.perf_counter()
            # a. learning rate of this step: the schedule gives it, every group takes it
            lr = schedule(step)
            for group in optimizer.param_groups: group["lr"] = lr
            # b. one training step over this rank's share of the global batch (section 2)
            out = train_step(net, optimizer, scaler, my_share(sampler, n_micro, ddp, device), precision,
                             t.gradient_clipping, loss_fn)
            loss = out.loss
            if ddp.world_size > 1:
                dist.all_reduce(loss); loss = loss / ddp.world_size
            loss, skipped = loss.item(), bool(out.skipped)
            # c. skipped steps are counted; a loss that stays NaN stops the run with what to change
            res.skipped_steps += skipped
            grad_norm = None if skipped else out.grad_norm.item()
            bad_in_row = 0 if math.isfinite(loss) else bad_in_row + 1
            if bad_in_row >= t.max_skipped_steps:
                raise TrainingError(_nan_message(cfg, step + 1, bad_in_row, precision))
            snapshot = {"rng": rng_state(), "sampler": sampler.state_dict()}
            step, done = step + 1, done + 1
            step_time += time.perf_counter() - tic
            times.append(time.perf_counter() - tic)
            if done == 1:
                first_step = times[0]
                if fast and ddp.main: print(f"first step {first_step:.1f} s (compiling the model and loss)")
            res.iterations, res.losses[step] = step, loss
            res.tokens_seen += tokens_per_step
            # d. log, evaluate, checkpoint: none of them touches the training RNG stream
            with preserve_rng():
                tps = tokens_per_step / (time.perf_counter() - tic)
                bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tps:,.0f}", refresh=False)
                bar.update(1)
                if step % t.log_interval == 0 or step == train_iters:
                    scale = scaler.get_scale() if scaler.is_enabled() else None
                    tracker.log({"train/lm_loss": loss, "train/learning_rate": lr,
                                 "train/grad_norm": grad_norm, "train/loss_scale": scale,
                                 "train/skipped_steps": res.skipped_steps,
                                 "train/tokens_seen": res.tokens_seen, "runtime/tokens_per_sec": tps,
                                 "runtime/iteration_time": tokens_per_step / tps,
                                 "runtime/model_flops_utilization": model_flops_utilization(tps, fpt, peak),
                                 "runtime/gpu_memory_gib": _gpu_memory_gib(device)}, step)
                if budget is not None and budget.train_iters is None and done == CALIBRATION_STEPS + 1:
                    # 9. a run sized by the clock: this session's speed, one evaluation, one checkpoint
                    tic_eval = time.perf_counter()
                    _evaluate(cfg, res, net, optimizer, data, micro, device, autocast, ddp, tracker,
                              tokenizer, step)
                    tic_save, last_eval = time.perf_counter(), step
                    save(step)
                    costs = (sum(times[1:]) / (len(times) - 1), tic_save - tic_eval,
                             time.perf_counter() - tic_save)
                    train_iters = budget.size(step, *costs, t, session_start)
                    schedule = build_schedule(cfg.schedule, train_iters, cfg.optimizer.lr)
                    bar.total = train_iters; bar.refresh()
                    if ddp.main: print(budget.reason)
                    tracker.log({"train/train_iters": train_iters}, step)
                if (step % t.eval_interval == 0 or step == train_iters) and last_eval != step:
                    _evaluate(cfg, res, net, optimizer, data, micro, device, autocast, ddp, tracker,
                              tokenizer, step)
                    last_eval = step
                due = t.checkpoint_factor and step % t.checkpoint_factor == 0
                if due or step == train_iters: save(step)
                if on_step is not None: on_step(step, res)
    except KeyboardInterrupt:
        res.interrupted = True
        with preserve_rng(): save(step)  # model and optimizer are those of the last finished step
        if ddp.main: print(f"\ninterrupted at iteration {step}; checkpoint in {save_dir}. "
                           f"Resume with train(cfg, resume=True) or `neoxcourse train CONFIG --resume`.")
    except torch.OutOfMemoryError as e:
        total = torch.cuda.get_device_properties(device).total_memory
        raise TrainingError(_oom_message(cfg, micro, precision, total, ddp.world_size)) from e
    finally:
        bar.close()
        res.elapsed = time.perf_counter() - start
        steady = step_time - first_step                   # without the first step (compilation, warmup)
        res.tokens_per_sec = (tokens_per_step * (done - 1) / steady if done > 1 and steady > 0 else
                              tokens_per_step * done / step_time if step_time else 0.0)
        res.compile_seconds = max(first_step - steady / (done - 1), 0.0) if done > 1 and fast else None
        res.train_iters = train_iters
        res.train_iters_reason = budget.reason if budget else "train-iters of the config"
        res.mfu = model_flops_utilization(res.tokens_per_sec, fpt, peak)
        if device.type == "cuda": res.peak_memory_bytes = torch.cuda.max_memory_allocated(device)
        tracker.summary({"train/final_lm_loss": res.losses.get(step), "train/iterations": step,
                         "runtime/tokens_per_sec": res.tokens_per_sec,
                         "runtime/model_flops_utilization": res.mfu, "train/train_iters": train_iters,
                         "train/train_iters_reason": res.train_iters_reason,
                         "runtime/compile_seconds": res.compile_seconds})
        tracker.finish()
        ddp.close()
    return res


# %% [markdown]
# The helpers the loop uses: evaluation at an iteration (loss, perplexity, the samples table) and the GPU
# memory in use. Activation checkpointing (`checkpoint-activations: true`: recompute each layer's
# activations during backward instead of keeping them, about a third more compute for much less memory)
# needs nothing here: the model of chapter 04 reads it from the config.

# %%
#| export
VALIDATION_SEED = 0

def _evaluate(cfg, res, net, optimizer, data, micro, device, autocast, ddp, tracker, tokenizer, step):
    model = net.module if isinstance(net, DistributedDataParallel) else net
    set_train_mode(optimizer, False)  # schedule-free optimizers evaluate at their averaged weights
    # the same validation windows for every run, whatever its training seed: runs are compared on one text
    val = BatchSampler(data.val_path, micro, cfg.model.seq_length, VALIDATION_SEED)
    loss = evaluate_loss(model, val, cfg.training.eval_iters, device, autocast, ddp.rank, ddp.world_size)
    res.val_losses[step] = loss
    tracker.log({"validation/lm_loss": loss, "validation/lm_loss_ppl": math.exp(min(loss, 50))}, step)
    if tokenizer is not None:
        rows = [(p, greedy_completion(unwrap_model(model), tokenizer, p, cfg.evaluation.max_new_tokens,
                                      cfg.model.seq_length, device)) for p in SAMPLE_PROMPTS]
        tracker.log_samples(rows, step)
    set_train_mode(optimizer, True)

def _gpu_memory_gib(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


# %% [markdown]
# ## 9. Training the model
#
# On a GPU this cell is the real run of the course: the T4 recipe, about an hour on a T4, resumed
# automatically if a previous session left checkpoints (`resume=True`). On a CPU it trains the smoke model
# from scratch in seconds, which is enough to see every part of the loop work: the data is prepared if it
# is not yet, the loss falls from about `log(vocab)` = 9.0, the validation loss follows it, and the W&B
# run (offline when you are not signed in) holds the config, the curves and the sample completions.

# %% [markdown]
# In Colab, mount Google Drive first: the loop then writes checkpoints to `MyDrive/neoxcourse/`, and a disconnect loses only the minutes since the last checkpoint, not the run. Headless and outside Colab this does nothing.

# %%
from neoxcourse.env import mount_drive
mount_drive()

# %%
result = train(cfg, resume=torch.cuda.is_available())
print(result)

# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(list(result.losses), list(result.losses.values()), label="train/lm_loss")
ax.plot(list(result.val_losses), list(result.val_losses.values()), "o-", label="validation/lm_loss")
ax.set_xlabel("iteration"); ax.set_ylabel("loss (nats/token)"); ax.legend(); plt.show()

# %% [markdown]
# The loss must fall well below its starting point (a tokenizer of 8192 entries starts near 9.0 nats),
# nothing may have been skipped in fp32, and the W&B run, read back from disk, must hold the config and the
# very losses the loop returned.

# %%
from neoxcourse.tracking import read_run
first, last = result.losses[min(result.losses)], result.losses[result.iterations]
if min(result.losses) == 1: test_close(first, math.log(cfg.model.vocab_size), eps=0.5)
assert last < first - 1.0, (first, last)
assert result.val_losses[result.iterations] < first - 1.0
if result.precision == "fp32": test_eq(result.skipped_steps, 0)
if result.wandb_dir and min(result.losses) == 1:
    run = read_run(result.wandb_dir.parent, result.wandb_run_id)
    test_eq(run.config["train-iters"], cfg.training.train_iters)
    logged = run.metric("train/lm_loss")
    test_eq(logged[cfg.training.log_interval], result.losses[cfg.training.log_interval])

# %% [markdown]
# ## 10. Stop anywhere, resume exactly
#
# The promise of this chapter: a run stopped at any step and resumed produces *exactly* the losses of a run
# that was never stopped. We run a short configuration twice. Run A goes straight through. Run B is
# interrupted at iteration 5 (`on_step` raises `KeyboardInterrupt`, exactly what the stop button of a
# notebook does), which saves a checkpoint; then `train(cfg, resume=True)` continues it. On a CPU the two
# loss sequences are equal bit for bit. On a GPU some kernels may be non-deterministic, so the test
# allows 1e-3 there.

# %%
import shutil
demo_root = cfg.resolve(cfg.training.save or "checkpoints") / "chapter05-resume"
shutil.rmtree(demo_root, ignore_errors=True)
short = {**overrides, "train-iters": 8, "eval-interval": 4, "checkpoint-factor": 3, "log-interval": 1,
         "use_wandb": False}
cfg_a = load_config(config_path or default_config_path(), {**short, "save": str(demo_root / "a")})
cfg_b = load_config(config_path or default_config_path(), {**short, "save": str(demo_root / "b")})

def stop_at_5(step, res):
    if step == 5: raise KeyboardInterrupt

run_a = train(cfg_a)
run_b1 = train(cfg_b, on_step=stop_at_5)
run_b2 = train(cfg_b, resume=True)

# %%
resumed = {**run_b1.losses, **run_b2.losses}
test_eq(run_b1.interrupted, True)
test_eq(sorted(run_b2.losses), [6, 7, 8])
if torch.cuda.is_available(): test_close(list(resumed.values()), list(run_a.losses.values()), eps=1e-3)
else: test_eq(resumed, run_a.losses)  # bit for bit
test_eq(run_b2.val_losses[8], run_a.val_losses[8])
print({k: (run_a.losses[k], resumed[k]) for k in (4, 5, 6, 8)})

# %% [markdown]
# ## 11. Faults, and what they say
#
# A run that diverges: with a learning rate of 1e30 the weights overflow on the first update, every later
# loss is NaN, each such step is skipped (no update) and counted, and after
# `neoxcourse.training.max_skipped_steps` in a row the run stops with a message that says what to change.

# %%
diverge = load_config(config_path or default_config_path(),
                      {**short, "lr": 1e30, "warmup": 0.0, "gradient_clipping": 0.0,
                       "training.max_skipped_steps": 3, "save": str(demo_root / "nan")})
try: train(diverge)
except TrainingError as e: message = str(e)
assert "3 steps in a row" in message and "--set lr=" in message, message
print(message)

# %% [markdown]
# Out of GPU memory cannot happen on a CPU, but its message can be checked: it gives chapter 04's estimate
# and the exact `--set` to try, keeping the global batch.

# %%
t4 = load_config(cfg.root / "configs" / "t4.yml")
micro = t4.training.micro_batch_size
oom = _oom_message(t4, micro, "fp16", 15 * 2**30)
accumulation = t4.training.global_batch_size // (micro // 2)
assert f"train_micro_batch_size_per_gpu={micro // 2}" in oom and f"accumulation becomes {accumulation}" in oom, oom
print(oom)

# %% [markdown]
# A checkpoint made with another architecture is refused, with the reason. `resume=True` falls back to the
# newest checkpoint that fits; when checkpoints are there but none fits (here: all of them are of the narrower
# model), it stops with a `TrainingError` that says why, rather than quietly starting over: starting over is a
# choice you make by training without `resume`. (A folder with no checkpoint at all, as on a first run, simply
# starts from scratch and says so.)

# %%
wider = load_config(config_path or default_config_path(),
                    {**short, "hidden-size": 2 * cfg.model.hidden_size, "train-iters": 1,
                     "load": str(demo_root / "a"), "save": str(demo_root / "wide")})
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    test_fail(lambda: train(wider, resume=True), contains="can be continued (the newest")
assert any("another config" in str(w.message) for w in caught), [str(w.message) for w in caught]
try: train(wider, resume=True)
except TrainingError as e: print(e)
test_eq(list_checkpoints(demo_root / "wide"), [])           # nothing was trained, moved or written


# %% [markdown]
# ## 12. Several GPUs with torchrun
#
# The same command, started by `torchrun`, trains on every GPU of a machine:
#
# ```bash
# torchrun --standalone --nproc_per_node 4 -m neoxcourse.cli train configs/t4.yml
# ```
#
# Each process takes `micro-batch x accumulation` of the global batch (the accumulation shrinks as GPUs are
# added, `global = micro x accumulation x GPUs`), DDP averages the gradients, rank 0 logs and saves. The
# integration test `tests/test_training.py::test_ddp_two_gloo_processes_match_one` runs two CPU processes
# with gloo and checks that their losses equal those of one process at the same global batch.

# %% [markdown]
# ## 13. Measuring speed: where the time goes
#
# Three numbers describe a training run's speed. **Tokens per second** is what you pay for: the global batch
# in tokens divided by the wall time of a step, measured after a few warm-up steps (the first steps
# allocate memory, autotune kernels and, with `torch.compile`, compile). **MFU** (appendix A4) compares
# it with what the GPU could do: for this course's small models it is low: the T4 recipe is estimated at 12.9% on a T4
# (`reference/course_facts.json`, from `bench/capstone.py`), because at width 384 the memory-bound work
# (LayerNorm, GELU, softmax, the optimizer) takes more time than the matrix products, and the H200 runs of
# the README's table reach 27-35% with `torch.compile` on a larger model. Read MFU as a comparison between
# runs of the same model on the same GPU: a drop means the GPU waits on something (data, Python, a sync). **Peak memory** (`torch.cuda.max_memory_allocated`) says how much room is left for a larger
# micro-batch, which is usually the cheapest speed-up.
#
# GPU work is asynchronous: a Python timer around a step measures only the launch unless something waits
# for the GPU (`torch.cuda.synchronize()`, or `.item()` as our loop does once a step). `benchmark_steps`
# times full training steps (`train_step`) on random tokens, so data loading is left out and the model alone is measured.

# %%
#| export
def benchmark_steps(cfg, steps: int = 10, warmup: int = 3, micro_batch: int | None = None) -> dict:
    "Time `steps` optimizer steps of cfg's model on random tokens, after `warmup`: tokens/s, MFU, memory."
    device = choose_device(cfg.training.device)
    precision = choose_precision(cfg.training.precision, device)
    m = micro_batch or cfg.training.micro_batch_size
    torch.manual_seed(cfg.training.seed)
    model = GPTNeoX(cfg.model).to(device)
    optimizer = build_optimizer(param_groups(model, cfg.optimizer.weight_decay), cfg.optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    x = torch.randint(cfg.model.vocab_size, (m, cfg.model.seq_length + 1), device=device)
    batch = [(x[:, :-1], x[:, 1:])]
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
        train_step(model, optimizer, scaler, batch, precision, cfg.training.gradient_clipping)
    if device.type == "cuda": torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    tps = m * cfg.model.seq_length / seconds
    peak = peak_flops(device_name(device), precision)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"device": device_name(device) or "cpu", "precision": precision, "micro_batch": m,
            "seconds_per_step": seconds, "tokens_per_sec": tps,
            "mfu": model_flops_utilization(tps, flops_per_token(cfg.model), peak), "peak_memory_gib": memory}


# %%
speed = benchmark_steps(cfg, steps=3, warmup=1)
print({k: round(v, 4) if isinstance(v, float) else v for k, v in speed.items()})
assert speed["tokens_per_sec"] > 0 and speed["seconds_per_step"] > 0

# %% [markdown]
# **Where the time goes.** `torch.profiler` records every operator of a few steps; sorted by self time it
# says which kernels dominate. For a small GPT-NeoX the matrix multiplies (`aten::mm`, `addmm`) of the
# MLP and the output head lead, then attention (`scaled_dot_product_attention`), then the elementwise
# operations (LayerNorm, GELU, the optimizer's `_foreach` updates) which are memory-bound: `torch.compile`
# fuses those, which is where its speed-up comes from. If `cudaStreamSynchronize` or data copies appear near
# the top, the GPU is waiting on Python or on data. On a GPU, sort by `self_cuda_time_total` and export a
# trace (`prof.export_chrome_trace("trace.json")`, open it in `chrome://tracing` or Perfetto) to see the gaps.

# %%
from torch.profiler import ProfilerActivity, profile
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
torch.manual_seed(0)
prof_model = GPTNeoX(cfg.model).to(choose_device())
prof_opt = torch.optim.AdamW(prof_model.parameters(), lr=1e-3)
tokens = torch.randint(cfg.model.vocab_size, (2, cfg.model.seq_length + 1), device=choose_device())
noscale = torch.amp.GradScaler("cpu", enabled=False)
with profile(activities=activities) as prof:
    for _ in range(2):
        train_step(prof_model, prof_opt, noscale, [(tokens[:, :-1], tokens[:, 1:])], "fp32", 1.0)
sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
table = prof.key_averages().table(sort_by=sort, row_limit=8)
print(table)
assert "aten::" in table

# %% [markdown]
# On a real GPU, `bench/capstone.py` runs the T4 recipe through this loop in *T4 emulation* (memory capped at
# 15 GiB, the flash attention kernel off, fp16) and writes tokens/s, the losses and the GPU's name to
# `bench/results/`; the closing note below quotes it.

# %% [markdown]
# ## Try this
#
# Change one thing, rerun the cell, compare with what it should show. They run on a CPU in seconds, on a small
# batch of 8 random sequences of the chapter's model.
#
# 1. **Split the batch differently.** Set `micro = 1`, `2` or `8`: the batch of 8 sequences goes through
#    `train_step` as that many micro-batches. You should see the same loss and the same gradient norm to five
#    or six digits every time: accumulation is a way to fit memory, not a change to the algorithm.

# %%
micro = 4   # try 1, 2 or 8
noscale = torch.amp.GradScaler("cpu", enabled=False)
x = torch.randint(cfg.model.vocab_size, (8, cfg.model.seq_length + 1), generator=torch.Generator().manual_seed(0))
def one_step(n_micro):
    torch.manual_seed(0)
    net = GPTNeoX(cfg.model)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)      # lr 0: we only look at the loss and the gradient
    return train_step(net, opt, noscale, [(a[:, :-1], a[:, 1:]) for a in x.chunk(n_micro)], "fp32", 0.0)
tried, whole = one_step(micro), one_step(1)
print(f"{micro} micro-batch(es): loss {tried.loss.item():.6f}, gradient norm {tried.grad_norm.item():.6f}; "
      f"one batch: {whole.loss.item():.6f}, {whole.grad_norm.item():.6f}")
test_close(tried.grad_norm.item(), whole.grad_norm.item(), eps=1e-4)


# %% [markdown]
# 2. **Change the learning rate.** Twelve AdamW steps on that one batch (memorising it, which a real run must
#    not do, but it shows the learning rate at work). At `lr = 1e-3` you should see the loss fall slowly from
#    about 9.2 (to about 7); at `3e-2` fast (below 2); at `3e-1` it should jump around near where it started:
#    too large a step overshoots. Chapter 07 turns this one number into a schedule.

# %%
lr = 3e-2   # try 1e-3 and 3e-1
torch.manual_seed(0)
net = GPTNeoX(cfg.model)
opt = torch.optim.AdamW(net.parameters(), lr=lr)
batch = [(x[:, :-1], x[:, 1:])]
lr_losses = [train_step(net, opt, noscale, batch, "fp32", 1.0).loss.item() for _ in range(12)]
print(f"lr {lr}: losses", [round(v, 2) for v in lr_losses])
if lr <= 3e-2: assert lr_losses[-1] < lr_losses[0] - 0.5, lr_losses   # a sane learning rate learns


# %% [markdown]
# 3. **On a T4 only: the micro-batch against speed and memory.** Run
#    `benchmark_steps(cfg, micro_batch=m)` for `m` in 8, 16 and 32 with `configs/t4.yml`. You should see peak
#    memory about double with `m`: the course's GPU measurement of this recipe under T4 conditions had 2.0, 3.6
#    and 6.9 GiB (`bench/results/t4_recipe_micro_batch.json`), so 64 would need about 14 GiB, at the edge of the
#    14.7 GiB a Colab T4 gives PyTorch. Tokens/s should rise with `m` (0.41M, 0.64M and 0.90M there): the
#    largest micro-batch that fits with some room is usually the fastest. On a CPU this says little, which is
#    why the cell is left to you.
#

# %% [markdown]
# ## Recap
#
# - `train(cfg)` trains a GPT-NeoX with fp16 autocast and loss scaling on a GPU without real bf16 (chosen by
#   compute capability), fp32 on a CPU; it accumulates micro-batches to the global batch, logs the gradient
#   norm before clipping, keeps norms and biases out of weight decay, evaluates every `eval-interval`, and
#   shows loss, learning rate, tokens/s and time left.
# - Checkpoints (05a) are atomic folders that hold everything the next step depends on; a run stopped at
#   any step and resumed gives the same losses bit for bit on a CPU, and continues the same W&B run (05b).
# - Faults end in messages that say what to change: NaN losses (skipped, counted, then a stop), CUDA out of
#   memory (the estimate and the `--set` to use), a full disk, a checkpoint from another config.
# - The same loop runs under `torchrun` with DDP; two gloo processes reproduce one process's losses.
# - Speed: tokens/s after warm-up, MFU against the device's peak, peak memory; `torch.profiler` shows where the
#   time goes. Next, chapter 06 swaps the optimizer and chapter 07 the schedule, through the registries
#   this loop already calls.
#
# **Closing note, the T4 recipe on a GPU** (`bench/capstone.py`, results in
# `bench/results/capstone_t4emu.json` and `capstone_speed.json`). On one NVIDIA H200 in T4 emulation (memory
# capped at 15 GiB, flash and cuDNN attention off, fp16 + GradScaler), chapter 09 trained the T4 recipe (8
# layers, width 384, micro-batch 32 x 2 = 64 x 1024 tokens a step, site-packages as corpus) through this loop
# at **743k tokens/s** (795k for the step alone on random tokens, 11.4% MFU of the H200); after 1300
# iterations (85M tokens) the validation loss was **1.87** (0.83 bits per byte). A micro-batch of 32 peaks at
# **6.9 GiB** eager (`bench/results/t4_recipe_micro_batch.json`), well inside the cap. These are an H200's
# speeds, not a T4's. The same benchmark profiles this recipe's step on the H200 and estimates a T4 at about **59k tokens/s** (the matrix work at the 20.6 TFLOP/s
# a Colab T4 sustains, the rest at a T4's memory bandwidth; 8.4 TFLOP/s, 13% of its 65 TFLOP/s peak; a
# pessimistic variant says 40k; no T4 has checked it), so today's recipe (3200 iterations of 64 x 1024 tokens,
# 210M tokens) takes about an hour.
# Measure your own with the progress bar's tok/s or `benchmark_steps(cfg)`, and if the time left exceeds
# your session, lower `train-iters`.
