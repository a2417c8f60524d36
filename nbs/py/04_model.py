# Generated from nbs/04_model.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/04_model.py`.

# %% [markdown]
# # 04 · The model: GPT-NeoX, written out
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/04_model.ipynb)
#
# > A GPT-NeoX in plain PyTorch, piece by piece: rotary embeddings, the fused attention, the parallel
# > residual, GPT-NeoX's initialisation; what it costs in parameters, FLOPs and memory; and checkpoints that
# > Hugging Face `transformers` loads, and loads back, with the same logits.

# %% [markdown]
# - **You will learn:** GPT-NeoX piece by piece (rotary embeddings, fused attention, the parallel residual, its
#   initialisation), and what a model costs in parameters, FLOPs per token and memory.
# - **You need:** chapter 00 and PyTorch modules and autograd (appendix A1 only for `cfg.model`); a CPU is enough.
# - **Time:** about 2 minutes on a T4; about 3 minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** a plot of the rotary angles (fast pairs wrap, slow pairs barely turn), the attention
#   pattern of one head (lower-triangular: no token looks ahead), and 27,303,936 parameters and 176 MFLOPs a
#   token for the reference recipe.

# %%
#| default_exp model

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
import json
import math
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from neoxcourse.config import ModelConfig
from neoxcourse.optim import optimizer_state_bytes

# %%
#| hide
import subprocess
import sys
import tempfile

from fastcore.test import test_close, test_eq, test_fail
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()  # no progress bars or notices from transformers in this notebook
hf_logging.disable_progress_bar()

from neoxcourse.config import default_config_path, load_config

if not torch.cuda.is_available():
    torch.set_num_threads(1)  # tiny tensors on a CPU: extra threads only wait for each other

# %%
cfg = load_config(config_path or default_config_path(), overrides)
cfg.model

# %% [markdown]
# ## The architecture in one picture
#
# GPT-NeoX (Black et al., 2022) is a decoder-only transformer: token ids go in, and for every position out
# comes a score (a *logit*) for every token of the vocabulary being next. Between the two sit `num_layers`
# identical blocks: `tokens -> embed_in -> num_layers blocks -> final_layer_norm -> lm_head -> logits`. One
# block with the **parallel residual** (GPT-NeoX's default, `gpt-j-residual: true`):
#
# ```
#                       x   (B, T, h): the residual stream
#                       │
#         ┌─────────────┼──────────────────────┐
#         ▼             │                      ▼
#   input_layernorm     │         post_attention_layernorm
#         ▼             │                      ▼
#   query_key_value     │         dense_h_to_4h  (h -> 4h)
#   (h -> 3h: q, k, v)  │                      ▼
#   rotary on q and k   │         GELU
#   causal attention    │                      ▼
#   dense  (h -> h)     │         dense_4h_to_h  (4h -> h)
#         │             ▼                      │
#         └──────────► (+) ◄───────────────────┘
#                       │
#                       ▼   x + attention(LN1(x)) + mlp(LN2(x))
# ```
#
# In equations, with $\mathrm{LN}$ a LayerNorm and the residual stream $x_l \in \mathbb{R}^{T \times h}$:
#
# - parallel: $x_{l+1} = x_l + \mathrm{Attn}(\mathrm{LN}_1(x_l)) + \mathrm{MLP}(\mathrm{LN}_2(x_l))$;
# - sequential (GPT-2's order, `use_parallel_residual: false`): $x' = x_l + \mathrm{Attn}(\mathrm{LN}_1(x_l))$,
#   then $x_{l+1} = x' + \mathrm{MLP}(\mathrm{LN}_2(x'))$;
# - attention, per head of size $d_h = h / n_\text{heads}$: $\mathrm{softmax}\big(\tilde q \tilde k^\top / \sqrt{d_h} + M\big)\, v$,
#   where $\tilde q, \tilde k$ are the rotated queries and keys and $M$ is $-\infty$ above the diagonal (a
#   position never sees the future);
# - MLP: $W_2\, \mathrm{GELU}(W_1 x + b_1) + b_2$ with $W_1 \in \mathbb{R}^{4h \times h}$;
# - output: $\text{logits} = W_\text{out}\, \mathrm{LN}_f(x_L)$, with $W_\text{out}$ its own matrix (untied).
#
# Nothing in the block knows where a token is: the position enters only through the rotation of $q$ and $k$.
# We build the rotation first, then the mask, then the modules, and finally check the whole model against
# Hugging Face's `GPTNeoXForCausalLM`, whose module and parameter names we copy exactly.

# %% [markdown]
# ## Rotary position embeddings
#
# Rotary embeddings (Su et al., 2021, *RoFormer*) rotate each pair of dimensions $(q_i, q_{i+d/2})$ of a
# query at position $m$ by the angle $m\,\theta_i$, with $\theta_i = \text{base}^{-2i/d}$:
#
# $$q'_i = q_i \cos m\theta_i - q_{i+d/2} \sin m\theta_i, \qquad q'_{i+d/2} = q_{i+d/2} \cos m\theta_i + q_i \sin m\theta_i.$$
#
# Keys are rotated the same way at their own position $n$. A rotation preserves lengths, and the dot product
# of two rotated vectors depends only on the angle between them, so $q'_m \cdot k'_n$ depends on $m - n$ and
# not on $m$ or $n$ alone: attention sees relative distance. GPT-NeoX rotates only the first
# $d = \lfloor d_h \cdot \text{rotary\_pct} \rfloor$ dimensions of each head and passes the rest through.
#
# GPT-NeoX pairs dimension $i$ with $i + d/2$ (not $2i$ with $2i+1$ as the paper writes it), so the rotation
# is one line with a helper that swaps the two halves and negates one:

# %% [markdown]
# ### Exercise first: rotary embeddings, by yourself
#
# Write it now, from the equation above, before reading on: the rest of this section builds the library's
# version, which the check compares yours with.
#
# **Task.** In `exercises/04_model/starter.py`, write `rotary(x, positions, rotary_ndims, base)`: given
# queries or keys `x` of shape `(B, H, T, Dh)` at integer `positions` `(T,)`, rotate the first
# `rotary_ndims` dimensions of each head as GPT-NeoX does (dimension $i$ paired with $i + d/2$, angle
# `position * base ** (-2i/d)`) and return a tensor of the same shape. Write it from the equation, without
# importing `neoxcourse.model`.
#
# **How it is checked.** `check_exercise("04_model", rotary)` compares your function with the library's on
# random inputs (several head sizes, rotary fractions, bases, and positions that do not start at 0) and
# reports the largest absolute difference, `max_abs_error`; it passes below $10^{-4}$ (float32 angles of
# 100 radians already differ by about $10^{-5}$ between two correct codes). A failing check says
# what looks wrong (the pairing, the untouched dimensions, the frequencies). Run `python starter.py`.
#
# **How to submit.** `python starter.py --submit --name YOUR_NAME`, or
# `submit("04_model", rotary, name="YOUR_NAME")` in a notebook: a W&B run in group `04_model`.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import torch

from neoxcourse.exercises import hidden_rng
from neoxcourse.model import apply_rotary, rotary_cos_sin, rotary_inv_freq

def check_rotary_exercise(rotary):
    "Check exercise 04: rotary(x, positions, rotary_ndims, base) must match apply_rotary."
    rng = hidden_rng()                                   # hidden cases, new at every check
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    worst, hint = 0.0, ""
    cases = [((2, 4, 16, 32), 8, 10000, 0), ((2, 2, 5, 8), 0, 10000, 3)]  # shape, d, base, start; then random
    for _ in range(6):
        dh = int(rng.choice([8, 16, 24, 32, 64]))
        cases.append(((int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 40)), dh),
                      2 * int(rng.integers(1, dh // 2 + 1)), float(rng.choice([500, 10000, 1e5])),
                      int(rng.integers(0, 100))))
    for shape, d, base, offset in cases:
        x = torch.randn(shape, generator=gen)
        positions = torch.arange(offset, offset + shape[2])
        want = apply_rotary(x, *rotary_cos_sin(positions, rotary_inv_freq(d, base)))
        got = rotary(x.clone(), positions, d, base)
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            raise ExerciseError(f"rotary must return a tensor of shape {tuple(x.shape)}, "
                                f"got {getattr(got, 'shape', type(got).__name__)}")
        err = (got.float() - want).abs().max().item()
        if err > 1e-4 and not hint:
            if (got[..., d:] - x[..., d:]).abs().max() > 1e-6:
                hint = f"dims {d}: and beyond must pass through unchanged"
            elif (got[..., :d].norm(dim=-1) - x[..., :d].norm(dim=-1)).abs().max() > 1e-4:
                hint = "a rotation keeps each vector's length; yours does not (check cos and sin)"
            else:
                hint = ("lengths are kept but angles differ: pair dim i with i + d/2, "
                        "angle position * base**(-2i/d)")
        worst = max(worst, err)
    if worst > 1e-4:  # float32 angles up to 100 rad differ by ~1e-5 between correct codes
        raise ExerciseError(f"largest difference from the library {worst:.2e} "
                            f"(over {len(cases)} cases): {hint}")
    return {"max_abs_error": worst, "cases": len(cases)}


# %%
#| export exercises
register_exercise(Exercise("04_model", "Rotary embeddings", "max_abs_error", False, (0.0, 1e-4),
                           check_rotary_exercise))

# %% [markdown]
# The check itself is tested: the reference solution passes, and a classic mistake, pairing neighbours
# $(2i, 2i+1)$ as the RoFormer paper writes it, fails with a hint.

# %%
from neoxcourse.exercises import check_exercise
from neoxcourse.model import rotary_cos_sin, rotary_inv_freq   # built in the rest of this section
import importlib.util
path = cfg.root / "exercises" / "04_model" / "solution.py"
spec = importlib.util.spec_from_file_location("solution", path)
solution = importlib.util.module_from_spec(spec); spec.loader.exec_module(solution)
result = check_exercise("04_model", solution.answer())
assert result["max_abs_error"] < 1e-4

def interleaved_rotary(x, positions, d, base):  # the paper's pairing, not GPT-NeoX's
    cos, sin = rotary_cos_sin(positions, rotary_inv_freq(d, base))
    cos, sin = cos[:, : d // 2].repeat_interleave(2, -1), sin[:, : d // 2].repeat_interleave(2, -1)
    x_rot, x_pass = x[..., :d], x[..., d:]
    swapped = torch.stack((-x_rot[..., 1::2], x_rot[..., ::2]), -1).flatten(-2)  # -x1, x0, -x3, x2...
    return torch.cat((x_rot * cos + swapped * sin, x_pass), -1)

test_fail(lambda: check_exercise("04_model", interleaved_rotary), contains="with i + d/2")


# %%
#| export
def rotate_half(x):
    "Rotate the two halves of the last dimension: (x1, x2) -> (-x2, x1)."
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


# %%
test_eq(rotate_half(torch.tensor([1., 2., 3., 4.])), torch.tensor([-3., -4., 1., 2.]))
x = torch.randn(2, 3, 8)
test_eq(rotate_half(rotate_half(x)), -x)  # two quarter turns make a half turn


# %% [markdown]
# The angles: one frequency per pair, from 1 (a full turn every $2\pi$ positions) down to about
# $1/\text{base}$ (slow turns that tell far-apart positions apart). `rotary_cos_sin` turns positions into the
# two tables the rotation multiplies by, each frequency written twice, once for each half:

# %%
#| export
def rotary_inv_freq(rotary_ndims, base=10000, device=None):
    "The rotary frequencies theta_i = base^(-2i/d) for i < d/2, in float32: shape (d/2,)."
    exponents = torch.arange(0, rotary_ndims, 2, dtype=torch.float32, device=device) / rotary_ndims
    return 1.0 / (base ** exponents)


def rotary_cos_sin(positions, inv_freq, dtype=torch.float32):
    "cos and sin tables (..., T, d) for integer `positions` (..., T); each frequency appears in both halves."
    freqs = positions.float()[..., None] * inv_freq  # (..., T, d/2): angle m * theta_i
    emb = torch.cat((freqs, freqs), dim=-1)  # (..., T, d)
    return emb.cos().to(dtype), emb.sin().to(dtype)


# %%
test_close(rotary_inv_freq(4, base=100), torch.tensor([1.0, 0.1]))  # 100^0, 100^(-2/4)
cos, sin = rotary_cos_sin(torch.arange(3), rotary_inv_freq(4, base=100))
test_eq(cos.shape, (3, 4))
test_close(sin[2], torch.tensor([math.sin(2.0), math.sin(0.2), math.sin(2.0), math.sin(0.2)]))

# %% [markdown]
# **Look.** The reference recipe rotates 16 of each head's 64 dimensions: 8 pairs. Pair 0 turns one radian a
# position and wraps every 6.3 positions, so it tells neighbours apart; the last pair turns
# $10000^{-14/16} \approx 3 \times 10^{-4}$ radians a position, a third of a radian over the whole context, so it
# tells the start of a file from its end. On the left, $\cos(m\theta_i)$ for the first 128 positions; on the
# right, how many turns each pair makes over 1024 positions.

# %%
import matplotlib.pyplot as plt
ref_model = load_config(cfg.root / "configs" / "code_completion.yml").model
d = int(ref_model.head_dim * ref_model.rotary_pct)       # 16 of the reference recipe's 64 dims a head
angles = torch.arange(1024)[:, None] * rotary_inv_freq(d, ref_model.rotary_emb_base)   # (positions, pairs)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2))
ax1.imshow(torch.cos(angles[:128]).T, aspect="auto", cmap="RdBu", interpolation="nearest")
ax1.set(xlabel="position m", ylabel="pair i", title=r"$\cos(m\,\theta_i)$, first 128 positions")
ax2.semilogy(angles[-1] / (2 * math.pi), "o-")
ax2.set(xlabel="pair i", ylabel="turns over 1024 positions", title="fast pairs wrap, slow pairs barely turn")
plt.show()
print(f"{d // 2} pairs; turns over 1024 positions: {[round(t, 3) for t in (angles[-1] / (2 * math.pi)).tolist()]}")


# %%
test_close(angles[-1, 0].item(), 1023.0)                   # pair 0 turns one radian a position
assert angles[-1, -1].item() < 0.5                          # the slowest pair: less than half a radian in 1024


# %% [markdown]
# Applying it: rotate the first `d` dimensions of every head, keep the others.

# %%
#| export
def apply_rotary(x, cos, sin):
    "Rotate the first cos.shape[-1] dims of x (..., T, Dh) by position; pass the rest through."
    d = cos.shape[-1]
    x_rot, x_pass = x[..., :d], x[..., d:]
    x_rot = x_rot * cos + rotate_half(x_rot) * sin  # (..., T, d), the equation above
    return torch.cat((x_rot, x_pass), dim=-1)  # (..., T, Dh)


# %% [markdown]
# Three properties to check: the rotation keeps lengths, position 0 is not rotated at all, and the score
# between a query and a key depends only on how far apart they are.

# %%
inv_freq = rotary_inv_freq(8)
cos, sin = rotary_cos_sin(torch.arange(64), inv_freq)
q, k = torch.randn(1, 1, 64, 16), torch.randn(1, 1, 64, 16)  # (B, H, T, Dh): rotate 8 of 16 dims
qr = apply_rotary(q, cos, sin)
test_close(qr.norm(dim=-1), q.norm(dim=-1), eps=1e-5)  # lengths kept
test_eq(qr[..., 0, :], q[..., 0, :])                   # position 0: angle 0
test_eq(qr[..., 8:], q[..., 8:])                       # the other half of each head passes through

# %%
# the same query and key, placed at positions (m, n) = (10, 7) and (40, 37): the same score
q1, k1 = torch.randn(16), torch.randn(16)
def score(m, n):
    qm = apply_rotary(q1.expand(64, 16), cos, sin)[m]
    kn = apply_rotary(k1.expand(64, 16), cos, sin)[n]
    return (qm @ kn).item()
test_close(score(10, 7), score(40, 37), eps=1e-4)
assert abs(score(10, 7) - score(10, 9)) > 1e-3  # ...and another distance, another score
score(10, 7), score(40, 37), score(10, 9)

# %% [markdown]
# Finally an independent reference: `transformers`' own `apply_rotary_pos_emb` gives the same numbers.

# %%
k = torch.randn(2, 4, 64, 16)
ref_q, ref_k = apply_rotary_pos_emb(q.expand(2, 4, 64, 16), k, cos[None], sin[None])
test_close(apply_rotary(q.expand(2, 4, 64, 16), cos, sin), ref_q, eps=1e-6)
test_close(apply_rotary(k, cos, sin), ref_k, eps=1e-6)


# %% [markdown]
# ## The causal mask
#
# A language model predicts token $t+1$ from tokens $\le t$, so position $t$ may attend only to positions
# $\le t$. In training, queries and keys are the same $T$ positions and the mask is the lower triangle.
# In generation with a cache (the generation chapter) the $T_q$ new queries sit at the *end* of $T_k$ keys,
# so query $i$ sees keys $j \le i + (T_k - T_q)$:

# %%
#| export
def causal_mask(q_len, kv_len, device=None):
    "Boolean (q_len, kv_len) mask: True where a query may attend a key; queries are the last q_len."
    q_pos = torch.arange(q_len, device=device)[:, None] + (kv_len - q_len)  # absolute positions
    return torch.arange(kv_len, device=device)[None, :] <= q_pos


# %%
test_eq(causal_mask(3, 3).int(), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
test_eq(causal_mask(2, 4).int(), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]))  # 2 new after 2 cached
test_eq(causal_mask(1, 5).all(), True)  # one new token sees everything before it

# %% [markdown]
# PyTorch's `F.scaled_dot_product_attention` applies this mask itself when `is_causal=True` (and can then
# skip the masked half of the work). The explicit mask gives the same result:

# %%
q, k, v = torch.randn(3, 1, 2, 5, 8).unbind(0)
test_close(F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(5, 5)),
           F.scaled_dot_product_attention(q, k, v, is_causal=True), eps=1e-6)


# %% [markdown]
# ## What a config must satisfy
#
# Three things make an architecture impossible: heads that do not divide the width, an odd number of
# rotated dimensions (rotation works on pairs), and a training sequence longer than the positions the model
# knows. `check_model_config` says which, with the value and the limit, before any tensor is made.

# %%
#| export
def rotary_ndims(model_cfg):
    "Rotated dims per head: int(head_dim * rotary_pct), as GPT-NeoX and transformers compute it."
    return int(model_cfg.head_dim * model_cfg.rotary_pct)


def check_model_config(model_cfg):
    "Raise ValueError naming the value and the limit when the architecture cannot be built."
    h, a = model_cfg.hidden_size, model_cfg.num_attention_heads
    if a < 1 or h % a != 0:
        raise ValueError(f"hidden_size {h} is not divisible by num_attention_heads {a}: "
                         f"choose a head count that divides {h}")
    if not 0.0 <= model_cfg.rotary_pct <= 1.0:
        raise ValueError(f"rotary_pct {model_cfg.rotary_pct} must lie between 0 and 1")
    r = rotary_ndims(model_cfg)
    if r % 2:
        raise ValueError(f"rotary dimension int(head_dim {h // a} x rotary_pct "
                         f"{model_cfg.rotary_pct}) = {r} is odd: rotary embeddings turn pairs "
                         f"of dimensions, so it must be even")
    if model_cfg.seq_length > model_cfg.max_position_embeddings:
        raise ValueError(f"seq_length {model_cfg.seq_length} exceeds max_position_embeddings "
                         f"{model_cfg.max_position_embeddings}")


# %%
tiny = ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=64,
                   max_position_embeddings=64, vocab_size=128, intermediate_size=256,
                   rotary_pct=0.25)
check_model_config(tiny)
test_eq(rotary_ndims(tiny), 4)  # head_dim 16 x 0.25
def fails(**changes):
    "The error message of check_model_config for tiny with some fields changed."
    try: check_model_config(replace(tiny, **changes))
    except ValueError as e: return str(e)
test_eq("not divisible by num_attention_heads 5" in fails(num_attention_heads=5), True)
test_eq("= 3 is odd" in fails(rotary_pct=0.2), True)  # int(16 x 0.2) = 3
test_eq("exceeds max_position_embeddings 64" in fails(seq_length=65), True)
test_eq("hidden_size 66 is not divisible" in fails(hidden_size=66), True)
fails(rotary_pct=0.2)


# %% [markdown]
# ## A cache for generation
#
# When generating, each new token needs the keys and values of all earlier tokens. Recomputing them at
# every step repeats the work of the whole sequence for each new token; keeping them costs memory
# ($2 \cdot L \cdot T \cdot h$ numbers). `KVCache` preallocates, per layer, room for
# `max_length` positions and remembers how many are filled. The model stays a function of tokens; the
# cache is an optional second argument that the generation chapter passes.

# %%
#| export
class KVCache:
    "Keys and values of every layer, preallocated for max_length positions; `length` are filled."
    def __init__(self, model_cfg, batch_size, max_length, device=None, dtype=torch.float32,
                 padding=None):
        H, Dh = model_cfg.num_attention_heads, model_cfg.head_dim
        shape = (batch_size, H, max_length, Dh)
        layers = range(model_cfg.num_layers)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in layers]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in layers]
        self.max_length, self.length = max_length, 0
        # padding (B,): how many positions each left-padded row starts with that are not its text
        self.padding = None if padding is None else torch.as_tensor(padding, device=device)
        self.min_padding = 0 if padding is None else int(min(padding))

    def update(self, layer, k, v):
        "Write k, v (B, H, T, Dh) after the filled positions; return all keys and values so far."
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(f"the KV cache holds {self.max_length} positions; {end} were needed")
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        keys, values = self.keys[layer][:, :, :end], self.values[layer][:, :, :end]  # (B, H, end, Dh)
        return keys.to(k.dtype), values.to(v.dtype)  # as the new ones (under autocast: 16 bits)

    def attention_mask(self, q_len, kv_len, device=None):
        "Causal mask (q_len, kv_len), or (B, 1, q_len, kv_len) hiding each row's left padding."
        mask = causal_mask(q_len, kv_len, device)
        if self.padding is None: return mask
        keys = torch.arange(kv_len, device=device)
        text = keys[None, :] >= self.padding[:, None]  # (B, S): the key is the row's text
        own = keys[None, :] == torch.arange(q_len, device=device)[:, None] + (kv_len - q_len)  # (T, S)
        return (mask & (text[:, None, :] | own))[:, None]  # a pad query sees itself only: no empty row



# %% [markdown]
# ## Attention
#
# One linear layer, `query_key_value`, makes queries, keys and values for all heads at once. Its $3h$
# outputs are laid out **per head**: the first $3 d_h$ are head 0's query, key and value, the next $3 d_h$
# head 1's, and so on (GPT-2 instead puts all queries first). Reading the layout right is what makes a
# GPT-NeoX checkpoint load: view the output as `(B, T, heads, 3 d_h)` and split the last dimension in three.
# Then rotate $q$ and $k$, attend causally, put the heads side by side again and project with `dense`.

# %%
#| export
class GPTNeoXAttention(nn.Module):
    "Causal self-attention: GPT-NeoX's fused per-head query/key/value layout, rotary embeddings."
    def __init__(self, model_cfg, layer_index=0):
        super().__init__()
        self.num_heads, self.head_dim = model_cfg.num_attention_heads, model_cfg.head_dim
        self.layer_index, self.dropout = layer_index, model_cfg.attention_dropout
        self.query_key_value = nn.Linear(model_cfg.hidden_size, 3 * model_cfg.hidden_size)
        self.dense = nn.Linear(model_cfg.hidden_size, model_cfg.hidden_size)

    def forward(self, x, cos, sin, cache=None):
        B, T, C = x.shape
        qkv = self.query_key_value(x).view(B, T, self.num_heads, 3 * self.head_dim)  # B, T, H, 3 Dh
        q, k, v = qkv.transpose(1, 2).chunk(3, dim=-1)  # 3 x (B, H, T, Dh)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        dropout = self.dropout if self.training else 0.0
        if cache is None:  # training: T queries against the same T keys
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:  # generation: T new queries against all S cached keys
            k, v = cache.update(self.layer_index, k, v)  # (B, H, S, Dh)
            mask = cache.attention_mask(T, k.shape[2], device=x.device)  # (T, S) or (B, 1, T, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, h): heads side by side
        return self.dense(y)


# %% [markdown]
# A test of the property that matters most: changing a later token never changes an earlier output.

# %%
torch.manual_seed(0)
attn = GPTNeoXAttention(tiny)
cos, sin = rotary_cos_sin(torch.arange(10), rotary_inv_freq(rotary_ndims(tiny)))
x = torch.randn(2, 10, 64)
x2 = x.clone(); x2[:, 6] += 1.0  # change position 6
y, y2 = attn(x, cos, sin), attn(x2, cos, sin)
test_eq(y.shape, (2, 10, 64))
test_close(y[:, :6], y2[:, :6], eps=1e-6)      # positions 0-5 do not see position 6
assert (y[:, 6:] - y2[:, 6:]).abs().max() > 1e-3  # positions 6-9 do


# %% [markdown]
# ## The MLP and the block
#
# The MLP widens each position to `intermediate_size` (4h), applies GELU (the exact, erf-based one, as
# GPT-NeoX's `gelu`), and narrows back. The block then wires LayerNorms, attention and MLP, parallel or
# sequential. Dropout is 0 in GPT-NeoX's recent recipes; when it is 0 we use `nn.Identity`, which keeps no
# mask in memory.

# %%
#| export
class GPTNeoXMLP(nn.Module):
    "Two linear layers with a GELU between them: h -> intermediate_size -> h."
    def __init__(self, model_cfg):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(model_cfg.hidden_size, model_cfg.intermediate_size)
        self.dense_4h_to_h = nn.Linear(model_cfg.intermediate_size, model_cfg.hidden_size)

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))  # (B, T, h) -> (B, T, 4h) -> back


def dropout_or_identity(p):
    "nn.Dropout(p), or nn.Identity when p is 0 (no mask kept for backward)."
    return nn.Dropout(p) if p > 0 else nn.Identity()


class GPTNeoXLayer(nn.Module):
    "One block: attention and MLP after their LayerNorms, added to the residual in parallel or in turn."
    def __init__(self, model_cfg, layer_index=0):
        super().__init__()
        h, eps = model_cfg.hidden_size, model_cfg.layernorm_epsilon
        self.use_parallel_residual = model_cfg.use_parallel_residual
        self.input_layernorm = nn.LayerNorm(h, eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(h, eps=eps)
        self.attention = GPTNeoXAttention(model_cfg, layer_index)
        self.mlp = GPTNeoXMLP(model_cfg)
        self.post_attention_dropout = dropout_or_identity(model_cfg.hidden_dropout)
        self.post_mlp_dropout = dropout_or_identity(model_cfg.hidden_dropout)

    def forward(self, x, cos, sin, cache=None):
        attn = self.post_attention_dropout(self.attention(self.input_layernorm(x), cos, sin, cache))
        if self.use_parallel_residual:  # x + Attn(LN1(x)) + MLP(LN2(x))
            return x + attn + self.post_mlp_dropout(self.mlp(self.post_attention_layernorm(x)))
        x = x + attn                    # x' = x + Attn(LN1(x)); then x' + MLP(LN2(x'))
        return x + self.post_mlp_dropout(self.mlp(self.post_attention_layernorm(x)))


# %%
torch.manual_seed(0)
block = GPTNeoXLayer(tiny)
x = torch.randn(2, 10, 64)
y_par = block(x, cos, sin)
block.use_parallel_residual = False
y_seq = block(x, cos, sin)  # same weights, the other wiring
test_eq(y_par.shape, (2, 10, 64))
assert (y_par - y_seq).abs().max() > 1e-3  # the two wirings really differ


# %% [markdown]
# ## The whole model, and GPT-NeoX's initialisation
#
# `GPTNeoXModel` is the trunk (embedding, blocks, final LayerNorm) and `GPTNeoX` adds the output head,
# with the attribute names of `transformers`' `GPTNeoXForCausalLM` (`gpt_neox.*`, `lm_head`), so that
# their `state_dict`s have the same keys. `gpt_neox.rotary_emb` holds no tensor: it makes the rotary
# frequencies in float32 at every forward (a few dozen numbers), so that `model.half()` cannot round them
# (a rounded frequency turns position 1000 by a visibly wrong angle), and cos/sin once for all layers.
#
# GPT-NeoX initialises weights from normal distributions whose standard deviation depends on the width $h$
# and depth $L$ (`megatron/model/init_functions.py`): `small_init` $\sqrt{2/(5h)}$ (Nguyen & Salazar, 2019) for
# most weights, and `wang_init` $2/(L\sqrt h)$ for the two projections that write into the residual stream
# (`attention.dense`, `dense_4h_to_h`), so that the stream does not grow with depth. `normal` is $\sigma$ =
# `init_method_std` and `scaled_normal` $\sigma/\sqrt{2L}$ (GPT-2's). Biases start at 0, LayerNorms at 1.

# %%
#| export
class RotaryEmbedding(nn.Module):
    "cos/sin tables for positions; frequencies made in float32 at each call: no cast rounds them."
    def __init__(self, model_cfg):
        super().__init__()
        self.rotary_ndims, self.base = rotary_ndims(model_cfg), model_cfg.rotary_emb_base

    def forward(self, positions, dtype):
        inv_freq = rotary_inv_freq(self.rotary_ndims, self.base, device=positions.device)  # (d/2,)
        return rotary_cos_sin(positions, inv_freq, dtype)  # (T, d) each


class GPTNeoXModel(nn.Module):
    "Embedding, the blocks and the final LayerNorm: tokens (B, T) -> hidden states (B, T, h)."
    def __init__(self, model_cfg):
        super().__init__()
        self.embed_in = nn.Embedding(model_cfg.vocab_size, model_cfg.hidden_size)
        self.emb_dropout = dropout_or_identity(model_cfg.hidden_dropout)
        self.layers = nn.ModuleList(GPTNeoXLayer(model_cfg, i) for i in range(model_cfg.num_layers))
        self.final_layer_norm = nn.LayerNorm(model_cfg.hidden_size, eps=model_cfg.layernorm_epsilon)
        self.rotary_emb = RotaryEmbedding(model_cfg)
        self.max_position_embeddings = model_cfg.max_position_embeddings
        self.gradient_checkpointing = model_cfg.checkpoint_activations

    def forward(self, tokens, cache=None):
        B, T = tokens.shape
        start = 0 if cache is None else cache.length  # position of the first token
        pad = None if cache is None else cache.padding  # (B,) left padding, or None
        if start + T - (0 if cache is None else cache.min_padding) > self.max_position_embeddings:
            raise ValueError(f"a sequence of {start + T} tokens is longer than "
                             f"max_position_embeddings {self.max_position_embeddings}: "
                             f"shorten the input or raise the limit")
        x = self.emb_dropout(self.embed_in(tokens))  # (B, T, h)
        positions = torch.arange(start, start + T, device=tokens.device)
        if pad is not None:  # left-padded rows: each row counts positions from its own first token
            positions = (positions[None, :] - pad[:, None]).clamp(min=0)  # (B, T)
        cos, sin = self.rotary_emb(positions, x.dtype)  # (T, d) each, shared by all layers
        if pad is not None: cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, d): one table per row
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and cache is None:
                x = checkpoint(layer, x, cos, sin, use_reentrant=False)  # recomputed in backward
            else:
                x = layer(x, cos, sin, cache)
        if cache is not None:
            cache.length += T
        return self.final_layer_norm(x)


# %%
#| export
def init_std(method, model_cfg):
    "Standard deviation of one of GPT-NeoX's init methods for this width and depth."
    h, L, sigma = model_cfg.hidden_size, model_cfg.num_layers, model_cfg.init_method_std
    stds = {"normal": sigma, "scaled_normal": sigma / math.sqrt(2.0 * L),
            "small_init": math.sqrt(2 / (5 * h)), "wang_init": 2 / L / math.sqrt(h)}
    if method not in stds:
        raise ValueError(f"init method {method!r} is not one of {sorted(stds)}")
    return stds[method]


class GPTNeoX(nn.Module):
    "GPT-NeoX for causal language modelling: tokens (B, T) -> logits (B, T, vocab_size)."
    def __init__(self, model_cfg):
        super().__init__()
        check_model_config(model_cfg)
        self.config = model_cfg
        self.gpt_neox = GPTNeoXModel(model_cfg)
        self.lm_head = nn.Linear(model_cfg.hidden_size, model_cfg.vocab_size, bias=False)
        if model_cfg.tie_word_embeddings:  # one matrix reads tokens in and scores them out
            self.lm_head.weight = self.gpt_neox.embed_in.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        "GPT-NeoX init: N(0, std) weights, output projections their own std, biases 0, norms 1."
        std = init_std(self.config.init_method, self.config)
        out_std = init_std(self.config.output_layer_init_method, self.config)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif "layernorm" in name or "layer_norm" in name:
                p.fill_(1.0)
            elif name.endswith(("attention.dense.weight", "dense_4h_to_h.weight")):
                p.normal_(0.0, out_std)
            else:
                p.normal_(0.0, std)

    @property
    def gradient_checkpointing(self):
        "Recompute each block's activations in backward (less memory, about a third more compute)."
        return self.gpt_neox.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value):
        self.gpt_neox.gradient_checkpointing = bool(value)

    def forward(self, tokens, cache=None):
        return self.lm_head(self.gpt_neox(tokens, cache))  # (B, T, V)

    def new_cache(self, batch_size, max_length=None, padding=None):
        "An empty KVCache on the model's device and dtype (max_length: the position limit; padding: (B,))."
        w = self.lm_head.weight
        return KVCache(self.config, batch_size, max_length or self.config.max_position_embeddings,
                       device=w.device, dtype=w.dtype, padding=padding)


# %% [markdown]
# Tokens in, logits out. The names are those of `transformers` (we build its model from the same sizes and
# compare the `state_dict` keys and shapes), and the standard deviations are those the init asked for:

# %%
torch.manual_seed(0)
model = GPTNeoX(tiny)
tokens = torch.randint(0, tiny.vocab_size, (2, 16))
test_eq(model(tokens).shape, (2, 16, tiny.vocab_size))
hf_tiny = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=128, hidden_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, intermediate_size=256, rotary_pct=0.25,
                                           max_position_embeddings=64))
test_eq({k: v.shape for k, v in model.state_dict().items()},   # transformers before 5.14 calls the head embed_out
        {k.replace("embed_out.", "lm_head."): v.shape for k, v in hf_tiny.state_dict().items()})
[k for k in model.state_dict() if k.startswith(("gpt_neox.layers.0.", "lm_head", "gpt_neox.embed"))]

# %%
big = GPTNeoX(replace(tiny, hidden_size=256, intermediate_size=1024, vocab_size=4096))
layer0 = big.gpt_neox.layers[0]
test_close(layer0.attention.query_key_value.weight.std().item(), math.sqrt(2 / (5 * 256)), eps=1e-3)
test_close(layer0.mlp.dense_4h_to_h.weight.std().item(), 2 / 2 / math.sqrt(256), eps=1e-3)  # wang
test_eq(big.gpt_neox.final_layer_norm.weight.mean().item(), 1.0)
cos16, _ = GPTNeoX(tiny).half().gpt_neox.rotary_emb(torch.arange(1000), torch.float16)  # fp16 model
test_eq(cos16, rotary_cos_sin(torch.arange(1000), rotary_inv_freq(4))[0].half())  # float32 angles

# %% [markdown]
# Causality for the whole model, the one property every later chapter relies on (the loss at position $t$
# must not peek at token $t+1$), and the error for a sequence longer than the model's positions:

# %%
model.eval()
changed = tokens.clone(); changed[:, 10:] = (changed[:, 10:] + 1) % tiny.vocab_size
with torch.no_grad():
    a, b = model(tokens), model(changed)
test_close(a[:, :10], b[:, :10], eps=1e-6)      # earlier logits unchanged
assert (a[:, 10:] - b[:, 10:]).abs().max() > 1e-3  # later ones change
test_fail(lambda: model(torch.zeros(1, 65, dtype=torch.long)),
          contains="65 tokens is longer than max_position_embeddings 64")
test_fail(lambda: GPTNeoX(replace(tiny, num_attention_heads=3)), contains="num_attention_heads 3")

# %% [markdown]
# On real code, an untrained model should be equally unsure of every token: its loss should be close to
# $\ln V$, the entropy of a uniform guess. That is the first number to check when training starts (chapter 05).
# We tokenize a file of the standard library (the course's default corpus) with the course tokenizer when it
# is there, else with raw bytes.

# %%
import inspect
source = inspect.getsource(json.decoder)
if (cfg.root / "tokenizer" / "tokenizer.json").exists():  # the course tokenizer (chapter 03)
    from neoxcourse.tokenizer import load_tokenizer
    ids = load_tokenizer(cfg)(source)["input_ids"]
else:  # raw bytes are a stand-in
    ids = list(source.encode("utf-8"))
demo_cfg = replace(cfg.model, vocab_size=max(cfg.model.vocab_size, max(ids) + 1))
T = min(demo_cfg.seq_length, len(ids) - 1)
torch.manual_seed(0)
demo = GPTNeoX(demo_cfg).eval()
x = torch.tensor(ids[:T])[None]
y = torch.tensor(ids[1:T + 1])[None]
with torch.no_grad():
    loss = F.cross_entropy(demo(x).flatten(0, 1), y.flatten())
print(f"{len(ids)} tokens; loss at init {loss:.3f}, ln V = {math.log(demo_cfg.vocab_size):.3f}")
assert abs(loss.item() - math.log(demo_cfg.vocab_size)) < 0.5

# %% [markdown]
# **Look: what a trained head attends to.** Attention is easier to see than to read about. We train a
# two-layer GPT-NeoX for a few seconds on a task that needs attention: a random line of 12 tokens followed by
# the same line again. Nothing in the first half can be predicted; every token of the second half can, by
# looking back at the position just after its earlier twin, 11 positions back. Then we recompute one layer's
# attention probabilities (the softmax that `scaled_dot_product_attention` keeps to itself) from the inputs a
# hook records.

# %%
P = 12                                                    # a random line of 12 tokens, then the same again
copy_cfg = ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=2 * P,
                       max_position_embeddings=2 * P, vocab_size=64, intermediate_size=256)
def copy_batch(n, generator=None):
    half = torch.randint(copy_cfg.vocab_size, (n, P), generator=generator)
    return torch.cat([half, half], dim=1)                 # (n, 2P)
torch.manual_seed(0)
copier = GPTNeoX(copy_cfg)
opt = torch.optim.AdamW(copier.parameters(), lr=3e-3)
for step in range(120):
    x = copy_batch(32)
    logits = copier(x[:, :-1])[:, P - 1:]                 # predictions of the second half only
    loss = F.cross_entropy(logits.reshape(-1, copy_cfg.vocab_size), x[:, P:].reshape(-1))
    opt.zero_grad(); loss.backward(); opt.step()
print(f"loss on the copied half after 120 steps: {loss.item():.3f} (ln 64 = {math.log(64):.2f} for a guess)")


# %%
@torch.no_grad()
def attention_weights(model, tokens, layer):
    "Softmax attention probabilities (B, H, T, T) of one layer, recomputed from its input."
    seen = {}
    attn = model.gpt_neox.layers[layer].attention
    hook = attn.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], cos=args[1], sin=args[2]))
    model(tokens)
    hook.remove()
    B, T, C = seen["x"].shape
    qkv = attn.query_key_value(seen["x"]).view(B, T, attn.num_heads, 3 * attn.head_dim)
    q, k, _ = qkv.transpose(1, 2).chunk(3, dim=-1)
    q, k = apply_rotary(q, seen["cos"], seen["sin"]), apply_rotary(k, seen["cos"], seen["sin"])
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)
    return scores.masked_fill(~causal_mask(T, T), float("-inf")).softmax(-1)
copier.eval()
x = copy_batch(1, torch.Generator().manual_seed(1))
w = attention_weights(copier, x[:, :-1], layer=1)[0]      # (H, T, T)
T = w.shape[-1]
target = torch.arange(P, T) - P + 1                       # query t looks at t - P + 1: what came after its twin
on_target = w[:, torch.arange(P, T), target].mean(-1)       # per head
best = int(on_target.argmax())
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for h, ax in enumerate(axes):
    ax.imshow(w[h], cmap="Greys", vmin=0, vmax=1)
    ax.set(title=f"layer 1, head {h}: {on_target[h]:.2f} on target", xlabel="key position")
axes[0].set_ylabel("query position"); plt.show()
print("attention on 'the token after my earlier twin', per head:", [round(v, 2) for v in on_target.tolist()])


# %%
assert torch.allclose(w.sum(-1), torch.ones(())) and (w.triu(1) == 0).all()  # rows sum to 1; no look ahead
assert on_target[best] > 0.5, on_target.tolist()          # a head learned to look back one period
assert loss.item() < 0.5                                  # and the copied half is predicted (ln 64 = 4.2 for a guess)


# %% [markdown]
# ## Counting parameters
#
# The reference recipe (`configs/code_completion.yml`): $h = 512$, $L = 6$ layers, 8 heads, vocabulary
# $V = 8192$, MLP width $4h = 2048$, untied. By hand:
#
# - input embedding `embed_in`: $V h = 8192 \cdot 512 = 4{,}194{,}304$;
# - output head `lm_head` (untied, no bias): another $4{,}194{,}304$;
# - per block: `query_key_value` $h \cdot 3h + 3h = 786{,}432 + 1{,}536 = 787{,}968$; `dense` $h^2 + h = 262{,}656$;
#   `dense_h_to_4h` $h \cdot 4h + 4h = 1{,}050{,}624$; `dense_4h_to_h` $4h \cdot h + h = 1{,}049{,}088$; two LayerNorms
#   $4h = 2{,}048$; in all $3{,}152{,}384 \approx 12h^2$;
# - six blocks: $18{,}914{,}304$; final LayerNorm $2h = 1{,}024$.
#
# Total: $8{,}388{,}608 + 18{,}914{,}304 + 1{,}024 = 27{,}303{,}936$, about **27.3M**, of which almost a third
# (8.4M) is the two vocabulary matrices. `count_parameters` does the same sum from a config, without building
# the model:

# %%
#| export
def count_parameters(model_cfg):
    "Parameters of GPTNeoX(model_cfg), counted from the config (a tied head counts once)."
    h, I, V = model_cfg.hidden_size, model_cfg.intermediate_size, model_cfg.vocab_size
    L = model_cfg.num_layers
    attention = (h * 3 * h + 3 * h) + (h * h + h)  # query_key_value + dense, with biases
    mlp = (h * I + I) + (I * h + h)                # dense_h_to_4h + dense_4h_to_h
    norms = 2 * 2 * h                              # two LayerNorms, weight and bias
    embeddings = V * h * (1 if model_cfg.tie_word_embeddings else 2)  # embed_in (+ lm_head)
    return embeddings + L * (attention + mlp + norms) + 2 * h  # + final_layer_norm


# %%
ref_path = cfg.root / "configs" / "code_completion.yml"
ref = load_config(ref_path).model
test_eq((ref.hidden_size, ref.num_layers, ref.num_attention_heads, ref.vocab_size), (512, 6, 8, 8192))
test_eq(count_parameters(ref), 27_303_936)
with torch.device("meta"):  # build it without allocating memory, and count the real tensors
    test_eq(sum(p.numel() for p in GPTNeoX(ref).parameters()), 27_303_936)
test_eq(count_parameters(tiny), sum(p.numel() for p in model.parameters()))
test_eq(count_parameters(replace(tiny, tie_word_embeddings=True)),
        sum(p.numel() for p in GPTNeoX(replace(tiny, tie_word_embeddings=True)).parameters()))
print(f"reference recipe: {count_parameters(ref):,} parameters; "
      f"this config: {count_parameters(cfg.model):,}")


# %% [markdown]
# ## FLOPs per token
#
# Training throughput is judged by *model FLOPs utilisation* (MFU): the FLOPs the model needs, divided by
# what the GPU could do in the same time. The count per token (Kaplan et al., 2020; PaLM, Chowdhery et al.,
# 2022, appendix B) is $6N + 12 L h T$:
#
# - every weight used in a matrix product costs 2 FLOPs per token forward (a multiply and an add) and 4
#   backward (gradients for the input and for the weight): $6N$, where $N$ counts the weights that take
#   part in a product, so not the input embedding (a table lookup), but the head;
# - attention's $q k^\top$ and its product with $v$: $2 \cdot 2 \cdot T h$ per token and layer forward, times 3
#   with backward: $12 L h T$ (causal attention could skip half; the convention counts it all).
#
# Activation checkpointing recomputes the forward, but MFU does not count that (it would be "hardware"
# utilisation), so the formula does not change.

# %%
#| export
def flops_per_token(model_cfg, seq_length=None):
    "Training FLOPs a token (forward + backward) for MFU: 6 N + 12 L h T, N without the embedding."
    T = seq_length or model_cfg.seq_length
    h, L, V = model_cfg.hidden_size, model_cfg.num_layers, model_cfg.vocab_size
    n_matmul = count_parameters(model_cfg) - (0 if model_cfg.tie_word_embeddings else V * h)
    return 6 * n_matmul + 12 * L * h * T


# %%
test_eq(flops_per_token(ref), 6 * (27_303_936 - 8192 * 512) + 12 * 6 * 512 * 1024)
print(f"reference recipe: {flops_per_token(ref) / 1e6:.1f} MFLOPs per token")
# a T4 at its 65 TFLOP/s fp16 peak and 30% MFU would train this many tokens an hour:
print(f"tokens per T4-hour at 30% MFU: {0.3 * 65e12 * 3600 / flops_per_token(ref) / 1e6:.0f}M")

# %% [markdown]
# As a check on the formula, the course's measured anchor (`reference/FACTS.md`): `transformers`' GPT-NeoX
# with SDPA at micro-batch 32 ran 1.02M tokens/s on an H200 and was reported at 18.3% MFU of 989 TFLOP/s.

# %%
test_close(1.02e6 * flops_per_token(ref) / 989e12, 0.182, eps=0.002)


# %% [markdown]
# ## Memory: what fits on a T4
#
# A training step in fp16 autocast with AdamW holds:
#
# - **weights**: fp32, 4 bytes a parameter, and, while autocast runs, a 16-bit copy of every matrix it
#   multiplies (2 bytes per matrix weight; the input embedding is a lookup and is not copied);
# - **optimizer state**: AdamW's two moments, 8 bytes a parameter (Lion and SGD with momentum 4);
# - **activations**: what autograd keeps for backward. Per token and block, in 16 bits: the block input
#   (the fp32 residual stream, $4h$ bytes; $8h$ with the sequential residual, which also keeps $x'$), the
#   normalised input of each branch ($h$ each), the $3h$ query/key/value output, the rotated $q$ and $k$
#   ($2h$), the attention output ($h$), the MLP's $4h$ input to GELU and GELU's $4h$ output: $2 \cdot 8h +
#   2 \cdot 8h + 4h = 36h$ bytes with a $4h$ MLP (in fp32, $68h$). SDPA keeps no $T \times T$ matrix. With
#   checkpointing only each block's fp32 input stays, and one block at a time is recomputed in backward,
#   after the logits are freed;
# - **logits**: $B \cdot T \cdot V$ values: in fp16 the logits (2 bytes), their fp32 log-softmax (4), and in
#   backward an fp32 gradient (4) and its fp16 copy (2), 12 bytes each (16 in fp32); plus the head's weight
#   gradient. With $V = 8192$ that is 98 kB per token, about as much as all six blocks' activations (111 kB);
#   a large vocabulary is expensive;
# - **gradients**: fp32, 4 bytes a parameter. They appear during backward while the activations and logits
#   are freed, so the two never peak together: the peak is weights + optimizer state + the larger of
#   (activations + logits) and gradients.
#
# The breakdown above was measured, one tensor kind at a time, on a GPU (`bench/memory_estimate.py`, closing
# note). The caching allocator also needs headroom (fragmentation, the CUDA context is not in its count), so
# `largest_micro_batch` asks the estimate to fit in 90% of the memory it is given.

# %%
#| export
def block_activation_bytes_per_token(model_cfg, precision="fp16"):
    "Bytes one token keeps for backward in one block (SDPA: no T x T matrix)."
    h, I = model_cfg.hidden_size, model_cfg.intermediate_size
    b = 2 if precision in ("fp16", "bf16") else 4
    residual = 4 * h if model_cfg.use_parallel_residual else 8 * h  # fp32 x (and x' if sequential)
    # LN1 out, qkv out, rotated q and k, attention out, LN2 out; the MLP's GELU input and output
    return residual + b * (h + 3 * h + 2 * h + h + h) + b * 2 * I


def activation_bytes_per_token(model_cfg, precision="fp16"):
    "Bytes one token keeps for backward when the loss is computed: all blocks, the final LayerNorm."
    h, L = model_cfg.hidden_size, model_cfg.num_layers
    final = 4 * h + (2 if precision in ("fp16", "bf16") else 4) * h  # final LN in, head's input
    if model_cfg.checkpoint_activations:  # only each block's fp32 input
        return L * 4 * h + final
    return L * block_activation_bytes_per_token(model_cfg, precision) + final


def estimate_memory(model_cfg, micro_batch, precision="fp16", optimizer="adamw", seq_length=None):
    "Peak bytes of a training step: weights, grads, optimizer_state, activations, logits, total."
    tokens = micro_batch * (seq_length or model_cfg.seq_length)
    N, V, h = count_parameters(model_cfg), model_cfg.vocab_size, model_cfg.hidden_size
    half = precision in ("fp16", "bf16")
    n_matrix = N - (0 if model_cfg.tie_word_embeddings else V * h)  # what autocast copies
    state = optimizer_state_bytes(optimizer)  # per parameter, from chapter 06's registry; unknown: ConfigError
    est = {"weights": 4 * N + (2 * n_matrix if half else 0),
           "grads": 4 * N,
           "optimizer_state": state * N,
           "activations": tokens * activation_bytes_per_token(model_cfg, precision),
           "logits": tokens * V * (12 if half else 16) + 4 * V * h}  # + the head's weight gradient
    # gradients grow in backward as activations and logits are freed: the peak holds the larger of
    # the two; with checkpointing, a block is recomputed in backward once the logits are gone
    recompute = 0
    if model_cfg.checkpoint_activations:
        recompute = tokens * block_activation_bytes_per_token(model_cfg, precision)
    est["total"] = (est["weights"] + est["optimizer_state"]
                    + max(est["grads"] + recompute, est["activations"] + est["logits"]))
    return est


def largest_micro_batch(model_cfg, memory_bytes, precision="fp16", optimizer="adamw",
                        seq_length=None, headroom=0.9):
    "The largest power-of-two micro-batch whose estimate fits headroom x memory_bytes (0 if none)."
    def fits(mb):
        total = estimate_memory(model_cfg, mb, precision, optimizer, seq_length)["total"]
        return total <= headroom * memory_bytes
    mb = 1
    while fits(mb):
        mb *= 2
    return mb // 2


# %%
GiB = 2 ** 30
for mb in (1, 8, 32):
    est = estimate_memory(ref, mb, "fp16")
    print(f"micro-batch {mb:>2}: " + ", ".join(f"{k} {v / GiB:.2f}" for k, v in est.items()), "GiB")
test_eq(estimate_memory(ref, 1)["weights"], 4 * 27_303_936 + 2 * (27_303_936 - 8192 * 512))
test_eq(activation_bytes_per_token(ref), 6 * 36 * 512 + 6 * 512)  # 36h a block, 6h final LayerNorm
test_eq(estimate_memory(ref, 2)["activations"], 2 * estimate_memory(ref, 1)["activations"])
test_eq(largest_micro_batch(ref, 14.5 * GiB), 32)  # Colab's T4 shows PyTorch about 14.7 GiB
test_eq(largest_micro_batch(replace(ref, checkpoint_activations=True), 14.5 * GiB), 64)
test_eq([largest_micro_batch(ref, 8 * GiB, p) for p in ("fp16", "fp32")], [32, 16])  # an 8 GiB card

# %%
# Optimizer state: 8 bytes a parameter for Adam's two moments, 4 for Lion's one (chapter 06's registry says)
test_eq(estimate_memory(ref, 1, "fp16", "AdamW")["optimizer_state"], 8 * 27_303_936)
test_eq(estimate_memory(ref, 1, "fp16", "lion")["optimizer_state"], 4 * 27_303_936)
test_fail(lambda: estimate_memory(ref, 1, "fp16", "adamm"), contains="registered: adafactor, adam")

# %% [markdown]
# How good is the estimate? `bench/memory_estimate.py` trains a few steps of several configs on a GPU in
# fp16 with the flash kernel off (as on a T4) and compares `torch.cuda.max_memory_allocated` with the
# estimate; the closing note of this chapter gives the result.

# %% [markdown]
# **Look: memory by micro-batch.** The estimate (lines) and what `bench/memory_estimate.py` measured on a GPU under
# T4 conditions (dots, read from `bench/results/memory_estimate.json`), for the reference recipe: weights,
# gradients and Adam's state are a fixed 0.5 GiB, the activations and logits grow with every sequence. 64
# sequences fit under Colab's 14.7 GiB with almost no room; activation checkpointing halves the slope.

# %%
GiB = 2 ** 30
rows = json.loads((cfg.root / "bench" / "results" / "memory_estimate.json").read_text())["rows"]
measured = {r["micro_batch"]: r["measured_peak"] / GiB for r in rows
            if r["name"] == "reference" and r["precision"] == "fp16"}
mbs = [1, 2, 4, 8, 16, 32, 64, 128]
est = [estimate_memory(ref, m)["total"] / GiB for m in mbs]
est_ckpt = [estimate_memory(replace(ref, checkpoint_activations=True), m)["total"] / GiB for m in mbs]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(mbs, est, "-", label="estimate")
ax.plot(mbs, est_ckpt, "--", label="estimate, activation checkpointing")
ax.plot(list(measured), list(measured.values()), "ko", label="measured (H200, T4 conditions)")
ax.axhline(14.7, color="tab:red", lw=1); ax.text(1, 15.2, "Colab T4: 14.7 GiB", color="tab:red")
ax.set(xscale="log", xlabel="micro-batch (sequences of 1024)", ylabel="peak GiB", ylim=(0, 30),
       title="reference recipe, fp16 + AdamW")
ax.legend(); plt.show()
print({m: round(g, 2) for m, g in measured.items()})


# %%
test_close(measured[32], estimate_memory(ref, 32)["total"] / GiB, eps=0.1)
assert est[mbs.index(64)] < 14.7 < est[mbs.index(128)]


# %% [markdown]
# ## Interchange with Hugging Face `transformers`
#
# A Hugging Face model directory is a `config.json` (the architecture, in `transformers`' key names) and a
# `model.safetensors` (the tensors by name). Our names are theirs, so writing one is mostly a matter of
# translating the config: `num_layers` is `num_hidden_layers`, the rotary settings live in
# `rope_parameters` (recent `transformers`) and in `rotary_pct` / `rotary_emb_base` (older readers), and
# `use_parallel_residual`, `tie_word_embeddings` keep their names.

# %%
#| export
HF_CONFIG_FILE, HF_MODEL_FILE = "config.json", "model.safetensors"


def hf_config_dict(model_cfg, dtype=torch.float32, bos_token_id=None, eos_token_id=None):
    "The config.json of transformers' GPTNeoXForCausalLM for this architecture."
    return {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
            "vocab_size": model_cfg.vocab_size, "hidden_size": model_cfg.hidden_size,
            "num_hidden_layers": model_cfg.num_layers,
            "num_attention_heads": model_cfg.num_attention_heads,
            "intermediate_size": model_cfg.intermediate_size, "hidden_act": "gelu",
            "max_position_embeddings": model_cfg.max_position_embeddings,
            "rotary_pct": model_cfg.rotary_pct, "rotary_emb_base": model_cfg.rotary_emb_base,
            "rope_parameters": {"rope_type": "default", "rope_theta": model_cfg.rotary_emb_base,
                                "partial_rotary_factor": model_cfg.rotary_pct},
            "use_parallel_residual": model_cfg.use_parallel_residual,
            "tie_word_embeddings": model_cfg.tie_word_embeddings,
            "layer_norm_eps": model_cfg.layernorm_epsilon,
            "initializer_range": model_cfg.init_method_std,
            "attention_dropout": model_cfg.attention_dropout,
            "hidden_dropout": model_cfg.hidden_dropout,
            "attention_bias": True, "use_cache": True,
            "bos_token_id": bos_token_id, "eos_token_id": eos_token_id,
            "dtype": str(dtype).removeprefix("torch.")}


def model_config_from_hf(hf_config):
    "A ModelConfig from a transformers GPT-NeoX config: a dict, a config.json or a model directory."
    if not isinstance(hf_config, dict):
        path = Path(hf_config)
        hf_config = json.loads((path / HF_CONFIG_FILE if path.is_dir() else path).read_text())
    c = hf_config
    if c.get("model_type", "gpt_neox") != "gpt_neox":
        raise ValueError(f"model_type is {c.get('model_type')!r}: only 'gpt_neox' loads here")
    if c.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act {c['hidden_act']!r} is not supported: this model uses 'gelu'")
    if not c.get("attention_bias", True):
        raise ValueError("attention_bias false is not supported: this model's attention has biases")
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise ValueError(f"rope type {rope_type!r} is not supported, only 'default'")
    h, positions = c["hidden_size"], c.get("max_position_embeddings", 2048)
    return ModelConfig(
        num_layers=c["num_hidden_layers"], hidden_size=h,
        num_attention_heads=c["num_attention_heads"],
        seq_length=positions, max_position_embeddings=positions, vocab_size=c["vocab_size"],
        intermediate_size=c.get("intermediate_size") or 4 * h,
        rotary_pct=rope.get("partial_rotary_factor", c.get("rotary_pct", 0.25)),
        rotary_emb_base=rope.get("rope_theta", c.get("rotary_emb_base", 10000)),
        use_parallel_residual=c.get("use_parallel_residual", True),
        tie_word_embeddings=c.get("tie_word_embeddings", False),
        layernorm_epsilon=c.get("layer_norm_eps", 1e-5),
        init_method_std=c.get("initializer_range", 0.02),
        hidden_dropout=c.get("hidden_dropout", 0.0),
        attention_dropout=c.get("attention_dropout", 0.0))


# %%
test_eq(model_config_from_hf(hf_config_dict(tiny)), tiny)  # a round trip keeps the architecture
test_eq(model_config_from_hf(hf_tiny.config.to_dict()).rotary_pct, 0.25)
old_style = {**hf_config_dict(tiny), "rope_parameters": None, "rotary_pct": 0.5}  # older transformers
test_eq(model_config_from_hf(old_style).rotary_pct, 0.5)
test_fail(lambda: model_config_from_hf({**hf_config_dict(tiny), "model_type": "llama"}),
          contains="llama")

# %% [markdown]
# Saving writes the tensors with `safetensors` (a tied head is stored once, as `transformers` does) and the
# tokenizer's files when one is given, so the directory is complete for `AutoTokenizer` too.
#
# One name needs a decision: the output head. `transformers` called it `embed_out` (GPT-NeoX's own name)
# up to 5.13 and `lm_head` from 5.14 on, and since that same release its loader renames `embed_out.` to
# `lm_head.` (`GPTNeoXForCausalLM` in `conversion_mapping.py`). A head saved as `lm_head` is *unexpected* to
# 4.x-5.13, which then start from a random head with only a warning; a head saved as `embed_out` loads in
# every version. So `save_pretrained` writes `embed_out.weight`, and chapter 04's model keeps `lm_head`
# inside (the loader below takes either name).

# %%
#| export
HF_HEAD_NAME = "embed_out.weight"  # GPT-NeoX's own name: 4.x loads it as is, 5.14+ renames it to lm_head

def save_pretrained(model, directory, tokenizer=None):
    "Write config.json + model.safetensors (+ tokenizer files): a directory transformers loads."
    from safetensors.torch import save_file
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    head = state.pop("lm_head.weight")
    if not model.config.tie_word_embeddings:  # tied: the same tensor as embed_in; transformers ties it back
        state[HF_HEAD_NAME] = head             # the name transformers 4.x and 5.x both load (see above)
    eos = getattr(tokenizer, "eos_token_id", None)
    bos = getattr(tokenizer, "bos_token_id", None)
    hf = hf_config_dict(model.config, model.lm_head.weight.dtype, eos if bos is None else bos, eos)
    save_file(state, str(directory / HF_MODEL_FILE), metadata={"format": "pt"})
    (directory / HF_CONFIG_FILE).write_text(json.dumps(hf, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    return directory


# %% [markdown]
# Loading must accept what others write: one or several safetensors files, or an old `pytorch_model.bin`;
# the head as `lm_head` or, in GPT-NeoX and older checkpoints, `embed_out`; and old buffers
# (`attention.bias`, `attention.masked_bias`, `rotary_emb.inv_freq`) that are not weights. Anything else that
# does not fit is an error that names the tensor and both shapes. The model is built on the `meta` device
# (no memory, no random init) and the checkpoint's tensors are assigned to it.

# %%
#| export
IGNORED_KEYS = ("attention.bias", "attention.masked_bias", "rotary_emb.inv_freq")


def read_hf_state_dict(directory):
    "All tensors of a Hugging Face model directory: one or sharded safetensors, or a .bin."
    from safetensors.torch import load_file
    directory = Path(directory)
    index = directory / "model.safetensors.index.json"
    if (directory / HF_MODEL_FILE).exists():
        return load_file(str(directory / HF_MODEL_FILE))
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for s in shards for k, v in load_file(str(directory / s)).items()}
    if (directory / "pytorch_model.bin").exists():
        return torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{directory} has no {HF_MODEL_FILE}, model.safetensors.index.json "
                            f"or pytorch_model.bin")


def convert_hf_state_dict(state, model):
    "Rename embed_out -> lm_head, drop old buffers, and check every name and shape against `model`."
    state = {("lm_head." + k[len("embed_out."):] if k.startswith("embed_out.") else k): v
             for k, v in state.items() if not k.endswith(IGNORED_KEYS)}
    expected = model.state_dict()
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
        expected.pop("lm_head.weight")
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not fit the config: missing {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
                         f"{' ...' if len(unexpected) > 4 else ''}")
    for k, v in expected.items():
        if state[k].shape != v.shape:
            raise ValueError(f"checkpoint tensor {k} has shape {tuple(state[k].shape)}; "
                             f"the config needs {tuple(v.shape)}")
    return state


def load_pretrained(directory, device=None, dtype=None):
    "A GPTNeoX (eval mode) with the weights of any Hugging Face GPT-NeoX model directory."
    model_cfg = model_config_from_hf(Path(directory))
    with torch.device("meta"):
        model = GPTNeoX(model_cfg)
    state = convert_hf_state_dict(read_hf_state_dict(directory), model)
    model.load_state_dict(state, strict=False, assign=True)
    if model_cfg.tie_word_embeddings:
        model.lm_head.weight = model.gpt_neox.embed_in.weight
    return model.to(device=device, dtype=dtype).eval()


# %% [markdown]
# Now the promise: the same logits as `transformers`, within $10^{-5}$ in float32, both ways, for parallel
# and sequential blocks, several rotary fractions, and a tied head. Ours -> theirs saves with
# `save_pretrained` and loads with `GPTNeoXForCausalLM.from_pretrained`; theirs -> ours saves a randomly
# initialised `transformers` model and loads it with `load_pretrained`.

# %%
def hf_logits(directory, tokens):
    with torch.no_grad():
        return GPTNeoXForCausalLM.from_pretrained(directory).eval()(tokens).logits

torch.manual_seed(0)
tmp = Path(tempfile.mkdtemp())
for parallel in (True, False):
    for pct, tie in ((0.25, False), (0.5, False), (1.0, True)):
        c = replace(tiny, use_parallel_residual=parallel, rotary_pct=pct, tie_word_embeddings=tie)
        ours = GPTNeoX(c).eval()
        tokens = torch.randint(0, c.vocab_size, (2, 24))
        with torch.no_grad():
            mine = ours(tokens)
        save_pretrained(ours, tmp / "ours")
        err_to_hf = (hf_logits(tmp / "ours", tokens) - mine).abs().max().item()
        theirs = GPTNeoXForCausalLM(GPTNeoXConfig(**hf_config_dict(c))).eval()
        theirs.save_pretrained(tmp / "theirs")
        with torch.no_grad():
            mine_from_hf = load_pretrained(tmp / "theirs")(tokens)
            err_from_hf = (mine_from_hf - theirs(tokens).logits).abs().max().item()
        print(f"parallel={parallel!s:5} rotary_pct={pct:4} tied={tie!s:5}  "
              f"ours->transformers {err_to_hf:.1e}  transformers->ours {err_from_hf:.1e}")
        assert err_to_hf < 1e-5 and err_from_hf < 1e-5

# %% [markdown]
# Larger checkpoints come in shards (`model.safetensors.index.json` names the file of each tensor), older ones
# as `pytorch_model.bin`; both load:

# %%
theirs.save_pretrained(tmp / "sharded", max_shard_size="100KB")
test_eq((tmp / "sharded" / "model.safetensors.index.json").exists(), True)
with torch.no_grad():
    test_close(load_pretrained(tmp / "sharded")(tokens), theirs(tokens).logits, eps=1e-5)
(tmp / "bin").mkdir()
(tmp / "bin" / HF_CONFIG_FILE).write_text((tmp / "theirs" / HF_CONFIG_FILE).read_text())
torch.save(theirs.state_dict(), tmp / "bin" / "pytorch_model.bin")
with torch.no_grad():
    test_close(load_pretrained(tmp / "bin")(tokens), theirs(tokens).logits, eps=1e-5)

# %% [markdown]
# The directory must also load where `neoxcourse` is not installed at all. A fresh Python process that
# imports only `transformers` loads it with `AutoModelForCausalLM` and compares with logits we saved:

# %%
ours = GPTNeoX(tiny).eval()
tokens = torch.randint(0, tiny.vocab_size, (1, 20))
save_pretrained(ours, tmp / "fresh")
with torch.no_grad():
    torch.save({"tokens": tokens, "logits": ours(tokens)}, tmp / "expected.pt")
code = f"""
import sys, torch, transformers
assert not any(m.startswith("neoxcourse") for m in sys.modules)
model = transformers.AutoModelForCausalLM.from_pretrained({str(tmp / 'fresh')!r}).eval()
e = torch.load({str(tmp / 'expected.pt')!r})
with torch.no_grad():
    print(type(model).__name__, (model(e["tokens"]).logits - e["logits"]).abs().max().item())
"""
out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
out = out.stdout.split()
print(out)
test_eq(out[0], "GPTNeoXForCausalLM")
assert float(out[1]) < 1e-5

# %% [markdown]
# Checkpoints that do not fit fail loudly: a head stored as `lm_head` (as transformers 5.14 and later save
# it) loads as well as `embed_out`, a wrong shape or a missing tensor does not.

# %%
from safetensors.torch import load_file, save_file
state = load_file(str(tmp / "fresh" / HF_MODEL_FILE))
test_eq("embed_out.weight" in state, True)                                   # as save_pretrained names it
save_file({("lm_head.weight" if k == "embed_out.weight" else k): v for k, v in state.items()},
          str(tmp / "fresh" / HF_MODEL_FILE))
test_close(load_pretrained(tmp / "fresh")(tokens), ours(tokens), eps=1e-6)  # lm_head accepted too
hf = json.loads((tmp / "fresh" / HF_CONFIG_FILE).read_text())
(tmp / "fresh" / HF_CONFIG_FILE).write_text(json.dumps({**hf, "intermediate_size": 128}))
test_fail(lambda: load_pretrained(tmp / "fresh"), contains="needs (128, 64)")
(tmp / "fresh" / HF_CONFIG_FILE).write_text(json.dumps({**hf, "num_hidden_layers": 3}))
test_fail(lambda: load_pretrained(tmp / "fresh"), contains="missing ['gpt_neox.layers.2.")
(tmp / "fresh" / HF_CONFIG_FILE).write_text(json.dumps({**hf, "num_attention_heads": 3}))
test_fail(lambda: load_pretrained(tmp / "fresh"), contains="not divisible by num_attention_heads 3")

# %% [markdown]
# ## Options for the training loop
#
# **Activation checkpointing** keeps only each block's input in the forward and recomputes the block in
# backward: memory for activations drops from about $36h$ to $4h$ bytes per token and block, for a third more
# compute. It must not change the gradients:

# %%
torch.manual_seed(0)
m1 = GPTNeoX(tiny).train()
tokens = torch.randint(0, tiny.vocab_size, (2, 16))
def grads(m):
    m.zero_grad()
    F.cross_entropy(m(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten()).backward()
    return torch.cat([p.grad.flatten() for p in m.parameters()])
g_plain = grads(m1)
m1.gradient_checkpointing = True
test_close(grads(m1), g_plain, eps=1e-6)

# %% [markdown]
# **`torch.compile`** traces the model into one graph when nothing forces it to stop ("graph breaks":
# Python that depends on tensor values, `.item()`, unsupported calls). TorchDynamo's `explain` traces without
# compiling, so it is a quick test that the forward is one graph, with and without checkpointing:

# %%
torch._dynamo.reset()
test_eq(torch._dynamo.explain(m1)(tokens).graph_break_count, 0)
m1.gradient_checkpointing = False
test_eq(torch._dynamo.explain(m1)(tokens).graph_break_count, 0)

# %% [markdown]
# On a GPU, `torch.compile(model, fullgraph=True)` (which fails on any graph break) compiled the reference
# recipe's forward and backward, with checkpointing too, and its logits matched the eager ones within
# $10^{-5}$; compiled, a training step ran at 1.34M tokens/s against 0.93M eager (H200 under T4 conditions, flash and
# cuDNN attention off, micro-batch 32, `bench/results/memory_estimate.json`). The README's benchmark table
# measures other variants, with flash attention on: 1.51M tokens/s for `transformers` compiled and 1.70M for
# the course's model compiled with CUDA graphs (`bench/results/train_gpu.json`); the faster the kernels
# around it, the more compilation gains. Compilation takes a minute or two, so the training loop leaves it
# as an option (`compile` in the config).

# %% [markdown]
# ## Try this
#
# Three small changes; each cell runs in seconds on a CPU.
#
# 1. **A smaller rotary base.** Set `base = 500` below (GPT-NeoX uses 10,000): the slowest pair now makes
#    several turns over 1024 positions instead of 0.05, so far-apart positions start to look alike to it.
#    You should see its turns grow about 10 times or more, and pair 0 stay the same.

# %%
base = 10_000   # try 500
turns = torch.arange(1024)[-1] * rotary_inv_freq(rotary_ndims(ref), base) / (2 * math.pi)
print(f"base {base}: turns over 1024 positions, fastest pair {turns[0]:.0f}, slowest {turns[-1]:.3f}")
test_close(turns[0].item(), 1023 / (2 * math.pi), eps=1e-3)  # pair 0 never depends on the base


# %% [markdown]
# 2. **Break the copy.** The copier above predicts the second half only because it is a copy. Set
#    `copied = False` to give it a second half of fresh random tokens: you should see its loss jump from near 0 to
#    well above $\ln 64 = 4.2$ (it is confidently wrong, which costs more than a guess).

# %%
copied = True   # try False
x = copy_batch(64, torch.Generator().manual_seed(2))
if not copied: x[:, P:] = torch.randint(copy_cfg.vocab_size, (64, P), generator=torch.Generator().manual_seed(3))
with torch.no_grad():
    tried = F.cross_entropy(copier(x[:, :-1])[:, P - 1:].reshape(-1, copy_cfg.vocab_size), x[:, P:].reshape(-1))
print(f"loss on the second half ({'a copy' if copied else 'fresh tokens'}): {tried.item():.3f}")
assert (tried.item() < 0.5) if copied else (tried.item() > math.log(copy_cfg.vocab_size))


# %% [markdown]
# 3. **More heads, same width.** Set `heads = 8` (or 16): each head gets fewer dimensions, but the
#    parameter count does not change at all, since `query_key_value` is still $h \times 3h$. You should see the
#    same count, and `rotary_ndims` shrink with the head.

# %%
heads = 4   # try 8 or 16
more = replace(tiny, num_attention_heads=heads)
print(f"{heads} heads: {count_parameters(more):,} parameters, head_dim {more.head_dim}, rotary dims {rotary_ndims(more)}")
test_eq(count_parameters(more), count_parameters(tiny))


# %% [markdown]
# ## Recap
#
# - `GPTNeoX(cfg.model)` maps tokens `(B, T)` to logits `(B, T, V)`: rotary embeddings on `rotary_pct` of each
#   head, the fused per-head query/key/value, causal SDPA, parallel (or sequential) residual, an untied head,
#   GPT-NeoX's `small_init` / `wang_init`. Every piece was tested alone, and the whole for causality.
# - Its names are those of `transformers`: `save_pretrained` writes a directory `AutoModelForCausalLM` loads
#   in a fresh process, and `load_pretrained` reads any GPT-NeoX directory back, with logits equal within
#   $10^{-5}$ both ways.
# - The reference recipe has 27,303,936 parameters (27.3M, 8.4M of them in the two vocabulary matrices)
#   and costs 176 MFLOPs per trained token; on a T4 the memory estimate allows a micro-batch of 32 at
#   sequence 1024 in fp16, 64 with activation checkpointing.
# - Side trip `04a_generation`: sampling and a KV cache turn this model into a code completer. Next,
#   chapter 05 trains it.
#
# **Closing note: the memory estimate against a GPU.** `bench/memory_estimate.py` ran on an NVIDIA H200
# (torch 2.11, T4 conditions: fp16 autocast + GradScaler, fused AdamW, clipping, flash and cuDNN attention
# off) and compared `estimate_memory(...)["total"]` with `torch.cuda.max_memory_allocated` over training
# steps (`bench/results/memory_estimate.json`):
#
# | config (reference recipe unless said) | micro-batch | estimate GiB | measured GiB | error |
# | --- | --- | --- | --- | --- |
# | reference, fp16 | 1 | 0.57 | 0.62 | -9.2% |
# | reference, fp16 | 8 / 16 / 32 / 64 | 1.98 / 3.60 / 6.83 / 13.30 | 1.97 / 3.59 / 6.83 / 13.31 | +0.4 / +0.1 / +0.1 / -0.1% |
# | activation checkpointing | 32 | 3.83 | 3.78 | +1.3% |
# | sequential residual | 16 | 3.79 | 3.78 | +0.1% |
# | tied head | 16 | 3.55 | 3.55 | +0.1% |
# | fp32, no autocast | 8 | 2.95 | 2.94 | +0.2% |
# | sequence 512 | 32 | 3.60 | 3.59 | +0.1% |
# | h 768, 8 layers, 12 heads | 16 | 5.86 | 5.85 | +0.2% |
#
# Mean absolute error 1.1%, largest 9.2% (micro-batch 1, where 50 MB of cuBLAS workspace and small buffers the
# formula leaves out are a tenth of the total). Be fair to the estimate's authors: the per-token constants
# (12 bytes a logit, no copy of the attention output) were read from a probe on that same GPU, and the first
# formula, written from first principles before any measurement, was 6 to 30% high; the configs that vary
# the shape (sequential, tied, fp32, sequence 512, a wider model) were not used to set them. The estimate
# says micro-batch 64 of the reference recipe needs 13.3 GiB: too close to the 14.7 GiB PyTorch sees on Colab's T4 for comfort, which is
# why `largest_micro_batch` keeps 10% headroom and picks 32 (64 with activation checkpointing). On the same
# GPU, under the same T4 conditions, the model trained at 0.93M tokens/s (16.6% MFU of 989 TFLOP/s) and 1.34M
# tokens/s compiled (23.9%); the README's table (flash attention on, CUDA graphs) has 1.70M.
