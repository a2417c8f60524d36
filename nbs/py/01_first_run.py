# Generated from nbs/01_first_run.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/01_first_run.py`.

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
# # 01 · A first run: the whole pipeline, a falling loss and a completion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/01_first_run.ipynb)
#
# > Before building any part yourself, watch all of them work together: a Python corpus, a tokenizer, a
# > GPT-NeoX trained from scratch while its loss falls on screen, and the model completing a line of code.

# %% [markdown]
# - **You will learn:** what the pipeline the course builds looks like end to end, which chapter builds each
#   part, and what a first loss curve of a code model looks like.
# - **You need:** a Colab T4 (Runtime -> Change runtime type -> T4 GPU). On a CPU the notebook runs the tiny
#   smoke recipe instead, which exercises the same code but learns almost nothing.
# - **Time:** about 5 to 10 minutes on a T4 (preparing the corpus 2-4, training about a minute by the course's estimate, the rest seconds);
#   under two minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** a loss curve that starts near ln(8192) = 9.0 nats (a uniform guess over the
#   vocabulary) and falls below 4 within the first hundred steps on a T4, and a completion of
#   `def fibonacci(n):` that looks like Python even if it is wrong.

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
config_path = None  # None: configs/lab.yml on a GPU, configs/smoke.yml on a CPU
overrides = {}      # GPT-NeoX keys, dotted for nested ones, e.g. {"train-iters": 200}

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from neoxcourse.config import describe, load_config, project_root
from neoxcourse.env import environment_report, format_report
from neoxcourse.evaluate import load_for_evaluation
from neoxcourse.generate import complete
from neoxcourse.model import count_parameters
from neoxcourse.tokenizer import load_tokenizer, prepare
from neoxcourse.train import train

# %%
#| hide
from fastcore.test import test_eq

# %% [markdown]
# ## 1. What are we running on?
#
# Chapter 00 explains this report line by line. For now, one line matters: a T4 (`cuda`, 15 GB, fp16) or no
# GPU (`cpu`). The notebook picks its recipe from it.

# %%
print(format_report(environment_report()))
gpu = torch.cuda.is_available()
path = Path(config_path) if config_path else project_root() / "configs" / ("lab.yml" if gpu else "smoke.yml")
cfg = load_config(path, overrides)
print(f"recipe: {path.name}")
print(describe(cfg))

# %% [markdown]
# The recipe is one GPT-NeoX YAML file, the same format EleutherAI's GPT-NeoX reads. On a GPU this is the
# **lab recipe** (`configs/lab.yml`): a small GPT-NeoX of about 7M parameters that trains in about a minute
# on a T4, which chapters 06 to 07a use to compare training algorithms a dozen runs at a time. On a CPU it is
# the smoke recipe: two layers of width 64, there only to run every line of code in seconds.
#
# ## 2. Data and tokenizer
#
# A code model learns from code. `prepare` collects Python files (on a GPU: the licence-checked
# `site-packages` of this machine; on a CPU: the Python standard library), removes duplicates and generated
# files, holds some files out for validation, trains a byte-level BPE tokenizer on the training files only,
# and writes every file as token ids. Chapters 02 and 03 build each of these steps.

# %%
tic = time.perf_counter()
data = prepare(cfg)
tokenizer = load_tokenizer(cfg)
print(f"prepared in {time.perf_counter() - tic:.0f} s")
for split in ("train", "val"):
    s = data.meta["splits"][split]
    print(f"{split:5s} {s['files']:6,d} files  {s['tokens'] / 1e6:7.2f}M tokens  "
          f"{s['bytes_per_token']:.2f} bytes per token")

# %% [markdown]
# What the model will see: text becomes a sequence of integers. A good code tokenizer gives indentation and
# common keywords tokens of their own, so one token stands for about 3 to 4 bytes of Python.

# %%
snippet = "def add(a, b):\n    return a + b\n"
ids = tokenizer(snippet)["input_ids"]
print(ids)
print([tokenizer.decode([i]) for i in ids])
print(f"{len(snippet.encode())} bytes -> {len(ids)} tokens")

# %%
#| hide
test_eq(tokenizer.decode(ids), snippet)

# %% [markdown]
# ## 3. Train, and watch the loss fall
#
# The model is a GPT-NeoX written out in plain PyTorch (chapter 04); the loop (chapter 05) feeds it batches of
# token windows, measures how surprised it is by each next token (the cross-entropy loss, in nats), and
# nudges the weights with AdamW (chapter 06) on a warmup-then-cosine learning-rate schedule (chapter 07).
#
# A model that guesses uniformly over the vocabulary of $V$ tokens has loss $\ln V$; everything below that
# line is something learned.

# %%
print(f"parameters: {count_parameters(cfg.model) / 1e6:.2f}M, vocabulary {cfg.model.vocab_size}, "
      f"uniform-guess loss ln V = {torch.log(torch.tensor(float(cfg.model.vocab_size))).item():.2f} nats")
seen = []
def show(step, res):
    "Print the loss every tenth of the run, as it trains."
    if step % max(1, cfg.training.train_iters // 10) == 0 and res.losses:
        last = max(res.losses)  # the newest logged step
        seen.append(last)
        print(f"step {last:5d}  loss {res.losses[last]:.3f}")

tic = time.perf_counter()
result = train(cfg, on_step=show)
train_seconds = time.perf_counter() - tic
print(f"trained {result.iterations} steps, {result.tokens_seen / 1e6:.2f}M tokens "
      f"in {train_seconds:.0f} s ({result.tokens_per_sec / 1e3:.1f}k tokens/s)")

# %%
steps, losses = zip(*sorted(result.losses.items()))
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(steps, losses, label="training loss")
if result.val_losses:
    vs, vl = zip(*sorted(result.val_losses.items()))
    ax.plot(vs, vl, "o-", label="validation loss")
ax.axhline(torch.log(torch.tensor(float(cfg.model.vocab_size))).item(), ls="--", c="gray",
           label="uniform guess (ln V)")
ax.set_xlabel("step"); ax.set_ylabel("loss (nats per token)"); ax.legend(); ax.set_title(cfg.path.name)
plt.show()

# %%
#| hide
test_eq(result.iterations, cfg.training.train_iters)
assert losses[-1] < losses[0], (losses[0], losses[-1])  # the loss fell

# %% [markdown]
# The curve falls fast at first (the model learns which tokens are common: indentation, `self`, `(`), then
# slowly (it learns how they follow each other). On the smoke recipe the drop is small: thirty steps of a
# tiny model. On the lab recipe expect the training loss to pass below about 4 nats in the first hundred steps
# and keep falling for the rest of the run.
#
# ## 4. Complete some code
#
# `complete` feeds a prompt to the trained model and extends it greedily (always the most likely next token)
# until the function's block ends. Chapter 04a explains sampling, stops and the KV cache.

# %%
model, tok = load_for_evaluation(cfg, result.checkpoint)
prompt = "def fibonacci(n):\n"
print(prompt + complete(model, tok, prompt, max_new_tokens=48))

# %% [markdown]
# After a minute or two of training, expect Python-shaped text: indentation, `return`, names that exist in the
# prompt. Correct code takes the hour-long T4 recipe of the capstone (chapter 09), and even then a 20M-parameter
# model solves few HumanEval problems; how to measure that honestly is chapter 08.
#
# ## 5. What just happened, and where each part is built
#
# | step | what it did | built in |
# | --- | --- | --- |
# | set-up | found the GPU and the precision | 00 Setup |
# | `prepare` | corpus: collect, clean, dedup, split; tokenizer; token files | 02 Data, 03 Tokenizer |
# | the model | GPT-NeoX: embeddings, rotary attention, MLP, head | 04 Model |
# | `train` | batches, loss, fp16 and loss scaling, clipping, checkpoints, W&B | 05 Training |
# | the update | AdamW and a cosine schedule | 06 Optimizers, 07 Schedules |
# | `complete` | greedy decoding with a KV cache | 04a Generation |
#
# The rest of the course opens each box. Its centre is chapters 06, 07 and 07a: what the optimizer, the
# learning-rate schedule and a well-designed experiment change about what an hour of T4 buys.
#
# ## Try this
#
# Each takes a minute or two on a T4; rerun the training and plotting cells after the change.

# %%
# Try this 1: a learning rate ten times too large. Expect the loss to fall, then stall or jump up (a spike)
# instead of falling smoothly; chapter 06 finds the edge of divergence for each optimizer.
hot = load_config(cfg.path, {**overrides, "lr": cfg.optimizer.lr * 10,
                             "save": str(Path(cfg.training.save).with_name("first_run_hot_lr"))})
print("would train with lr", hot.optimizer.lr, "- to run it: train(hot, on_step=show)")

# %%
# Try this 2: a different prompt. Prompts the corpus knows well (imports, class headers) complete best.
print(complete(model, tok, "import os\nimport ", max_new_tokens=16, stop="line"))

# %% [markdown]
# Try this 3: train twice as long (`overrides = {"train-iters": 800}` in the parameters cell on a T4) and
# compare the last loss: more tokens buy less each time, a curve chapter 07a measures properly.
#
# ## Recap
#
# - The whole pipeline ran: a corpus, a tokenizer trained on it, a GPT-NeoX trained from scratch, a completion.
# - The loss started at about ln V (uniform guessing) and fell; how far it falls per hour of T4 is what the
#   training algorithm decides, and what this course measures.
# - Next: chapter 02 builds the corpus by hand.
