# Generated from nbs/04a_generation.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/04a_generation.py`.

# %% [markdown]
# # 04a · Generation: sampling, stop sequences and a KV cache
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/04a_generation.ipynb)
#
# > A side trip from chapter 04: turn the model's next-token scores into code. Greedy decoding, temperature,
# > top-k and top-p sampling, stops that suit code (end of line, end of block, end of text), and a key/value
# > cache that makes each new token cost one position instead of the whole sequence.

# %% [markdown]
# - **You will learn:** how scores become tokens (greedy, temperature, top-k, top-p), where a completion of
#   code should stop, and what a KV cache saves, and when.
# - **You need:** chapter 04 (the model); a CPU is enough.
# - **Time:** about 2 minutes on a T4; about a minute on a CPU with the smoke config, as CI runs it.
# - **You should see:** identical tokens with and without the cache, its timing on this machine (on a GPU at
#   these lengths the cache can be slower: 279 vs 348 tokens/s in the course's benchmark), and sampled
#   frequencies within a few percent of the model's probabilities; no plot.

# %%
#| default_exp generate

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
from functools import lru_cache
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from neoxcourse.model import load_pretrained

# %%
#| hide
import math
import tempfile
import time
from dataclasses import replace

import torch.nn.functional as F
from fastcore.test import test_close, test_eq, test_fail

from neoxcourse.config import default_config_path, load_config
from neoxcourse.model import GPTNeoX, save_pretrained
from neoxcourse.tokenizer import load_tokenizer

if not torch.cuda.is_available():
    torch.set_num_threads(1)  # tiny tensors on a CPU: extra threads only wait for each other

# %%
cfg = load_config(config_path or default_config_path(), overrides)
tokenizer = load_tokenizer(cfg)
model_cfg = replace(cfg.model, vocab_size=max(cfg.model.vocab_size, len(tokenizer)))
model_cfg

# %% [markdown]
# ## From scores to a token
#
# For the last position the model gives one logit $z_i$ per token of the vocabulary; $p_i = \mathrm{softmax}(z / \tau)_i$
# is the distribution of the next token at temperature $\tau$. The choices:
#
# - **greedy** ($\tau = 0$): always the most likely token. Deterministic, which is what a completion in an
#   editor and an exact-match metric want, but prone to loops;
# - **temperature** $\tau$: below 1 sharpens the distribution, above 1 flattens it;
# - **top-k**: sample only among the $k$ most likely tokens (Fan et al., 2018);
# - **top-p** (nucleus, Holtzman et al., 2019): sample among the fewest tokens whose probabilities add up to
#   at least $p$: few tokens when the model is sure, many when it is not. HumanEval's pass@k at $k > 1$ is
#   usually measured with $\tau \approx 0.8$ and $p = 0.95$.
#
# Both filters set the logits they drop to $-\infty$, so that the softmax gives them probability 0.

# %% [markdown]
# ### Exercise first: nucleus sampling, by yourself
#
# Write it now, before reading on: the next cell is the library's `top_p_filter`.
#
# **Task.** In `exercises/04a_generation/starter.py`, write `top_p(logits, p)`: for logits of shape `(B, V)`,
# keep in each row the fewest most likely tokens whose probabilities add up to at least `p`, and set every
# other logit to `-inf`; `p >= 1` keeps everything. Write it without importing `neoxcourse.generate`.
#
# **How it is checked.** `check_exercise("04a_generation", top_p)` runs your function and `top_p_filter` on
# the same hidden random logits, drawn afresh at every check (rows of 5 to 5,000 tokens, sharp and flat distributions, `p` from 0.1 to 1) and
# reports `agreement`, the fraction of rows where both keep exactly the same tokens. It passes at 1.0; a
# failing check says what differs (one token too few, the boundary token, the row order).
#
# **How to submit.** `python starter.py --submit --name YOUR_NAME`, or
# `submit("04a_generation", top_p, name="YOUR_NAME")` in a notebook.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import torch

from neoxcourse.exercises import hidden_rng
from neoxcourse.generate import top_p_filter

def check_top_p_exercise(top_p):
    "Check exercise 04a: top_p(logits, p) must keep the same tokens as top_p_filter."
    gen = torch.Generator().manual_seed(int(hidden_rng().integers(2**31)))   # hidden logits, new every check
    rows = agree = 0
    for V, scale in ((5, 1.0), (50, 3.0), (5000, 1.0), (5000, 8.0)):
        for p in (0.1, 0.5, 0.9, 0.95, 1.0):
            logits = torch.randn(8, V, generator=gen) * scale
            want = top_p_filter(logits, p).isinf()
            got = top_p(logits.clone(), p)
            if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
                raise ExerciseError(f"top_p must return a tensor of shape {tuple(logits.shape)}")
            got = got.isinf()
            rows, agree = rows + len(logits), agree + (got == want).all(-1).sum().item()
            if not torch.equal(got, want):
                kept, should = (~got).sum(-1), (~want).sum(-1)
                hint = ("you keep fewer tokens than needed: keep the token whose probability takes the "
                        "sum past p" if (kept < should).any() else
                        "you keep too many tokens" if (kept > should).any() else
                        "the right number of tokens, but not the most likely ones: sort, then map back")
                raise ExerciseError(f"rows of {V} tokens, p = {p}: {hint}")
    return {"agreement": agree / rows, "rows": rows}


register_exercise(Exercise("04a_generation", "Nucleus (top-p) sampling", "agreement", True, (1.0, 1.0),
                           check_top_p_exercise))

# %% [markdown]
# The check is tested too: the reference solution passes, and the classic slip of dropping the token that
# takes the sum past $p$ fails with a hint.

# %%
from neoxcourse.exercises import check_exercise
import importlib.util
path = cfg.root / "exercises" / "04a_generation" / "solution.py"
spec = importlib.util.spec_from_file_location("solution_04a", path)
solution = importlib.util.module_from_spec(spec); spec.loader.exec_module(solution)
test_eq(check_exercise("04a_generation", solution.answer())["agreement"], 1.0)

def one_too_few(logits, p):  # keeps only the tokens strictly inside p
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    drop = sorted_logits.softmax(-1).cumsum(-1) > p
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))

test_fail(lambda: check_exercise("04a_generation", one_too_few), contains="fewer tokens than needed")


# %%
#| export
def top_k_filter(logits, k):
    "Keep the k largest logits of each row (B, V), -inf elsewhere; k None or 0 keeps all."
    if not k or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1): the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits, p):
    "Keep the fewest most likely tokens whose probabilities sum to p or more (nucleus), -inf the rest."
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, V)
    probs = sorted_logits.softmax(-1)
    drop = probs.cumsum(-1) - probs >= p  # the tokens before this one already reach p
    drop = drop.scatter(-1, order, drop)  # back from sorted to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


# %%
logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])  # probabilities 0.03, 0.09, 0.24, 0.64
test_eq(top_k_filter(logits, 2), torch.tensor([[-math.inf, -math.inf, 3.0, 4.0]]))
test_eq(top_k_filter(logits, None), logits)
inf = math.inf
test_eq(top_p_filter(logits, 0.5), torch.tensor([[-inf, -inf, -inf, 4.0]]))  # 0.64 >= 0.5
test_eq(top_p_filter(logits, 0.8), torch.tensor([[-inf, -inf, 3.0, 4.0]]))  # 0.64 + 0.24 >= 0.8
shuffled = logits[:, [2, 0, 3, 1]]  # the same logits in another vocabulary order
test_eq(top_p_filter(shuffled, 0.8)[0].isinf(), torch.tensor([False, True, False, True]))


# %% [markdown]
# `sample_next` puts the pieces together. A `torch.Generator` makes sampling repeatable without touching
# the global seed.

# %%
#| export
def sample_next(logits, temperature=0.0, top_k=None, top_p=None, generator=None):
    "Next token ids (B,) from last-position logits (B, V): argmax at temperature 0, else a sample."
    if temperature < 0:
        raise ValueError(f"temperature {temperature} must be 0 (greedy) or positive")
    if temperature == 0:
        return logits.argmax(-1)
    logits = top_p_filter(top_k_filter(logits.float() / temperature, top_k), top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)  # (B,)


# %% [markdown]
# Greedy is the argmax; sampling at $\tau = 1$ reproduces the model's distribution (20,000 draws are within
# a percent of it); top-k 1 is greedy; and a low temperature concentrates the draws on the favourite.

# %%
test_eq(sample_next(logits), torch.tensor([3]))
g = torch.Generator().manual_seed(0)
draws = sample_next(logits.expand(20_000, 4), 1.0, generator=g)
test_close(torch.bincount(draws, minlength=4) / 20_000, logits.softmax(-1)[0], eps=0.01)
test_eq(sample_next(logits.expand(100, 4), 1.0, top_k=1, generator=g), torch.full((100,), 3))
assert (sample_next(logits.expand(1000, 4), 0.1, generator=g) == 3).float().mean() > 0.99
test_fail(lambda: sample_next(logits, -1.0), contains="temperature -1.0")


# %% [markdown]
# ## The generation loop, with and without a cache
#
# Generating $n$ tokens calls the model $n$ times. Without a cache each call reprocesses the whole sequence,
# so the $t$-th call costs $O(t)$ positions; with chapter 04's `KVCache`, the prompt goes through once
# ("prefill") and every later call feeds only the newest token, whose query attends to the cached keys and
# values of all earlier ones. The results must be the same; only the work differs.
#
# A row ends when `stop(new_ids)` says so (a callable on the tokens generated so far, a token id, or a set of
# ids such as end-of-text). Finished rows of a batch are padded until every row is done.
#
# One GPU detail: the sequence grows by one at every step, and PyTorch's cuDNN attention kernel (used for
# fp16 and bf16 on GPUs from the A100 on) plans anew for every new length: on an H200, 100 new tokens for 4
# prompts with the reference model took 9.6 s in fp16 with it and 0.36 s without. `generate` therefore lets
# attention choose only among the flash, memory-efficient and plain kernels, which need no plan (a T4 has
# no cuDNN attention anyway).

# %%
#| export
def _stop_fn(stop):
    "`stop` as a callable on a row's new ids: None, a token id, an iterable of ids, or a callable."
    if stop is None:
        return lambda ids: False
    if callable(stop):
        return stop
    stop_ids = {stop} if isinstance(stop, int) else set(stop)
    return lambda ids: len(ids) > 0 and ids[-1] in stop_ids


GENERATION_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def _sample_rows(logits, temperature, top_k, top_p, generator):
    "sample_next for (B, V); `generator` may be a list of B generators: rows sharing one draw together."
    if not isinstance(generator, (list, tuple)):
        return sample_next(logits, temperature, top_k, top_p, generator)
    out, i = [], 0
    while i < len(generator):  # consecutive rows with the same generator: one call, as if alone
        j = i + 1
        while j < len(generator) and generator[j] is generator[i]: j += 1
        out.append(sample_next(logits[i:j], temperature, top_k, top_p, generator[i]))
        i = j
    return torch.cat(out)


def _first_token_mask(first_token_ids, logits):
    "0 where a row's first token is allowed, -inf elsewhere (B, V); one tensor for all rows, or one per row."
    allowed = torch.full_like(logits, float("-inf"))
    rows = first_token_ids if isinstance(first_token_ids, (list, tuple)) else [first_token_ids] * len(logits)
    for b, ids in enumerate(rows):
        if ids is None: allowed[b] = 0.0
        else: allowed[b, ids.to(logits.device)] = 0.0
    return allowed


GENERATION_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@torch.no_grad()
@sdpa_kernel(GENERATION_ATTENTION)  # no cuDNN attention: it re-plans for every new sequence length
def generate(model, tokens, max_new_tokens, temperature=0.0, top_k=None, top_p=None, stop=None,
             use_cache=True, pad_token_id=0, generator=None, first_token_ids=None, padding=None):
    """Extend tokens (B, T) by up to max_new_tokens (B, T + n); a row ends when stop(its new ids).

    `stop` may be a list of B callables (one a row), `generator` a list of B generators, `first_token_ids` a
    list of B tensors or None, and `padding` (B,) the left padding of each row (see `left_pad`)."""
    model.eval()
    tokens = tokens.to(model.lm_head.weight.device)
    B, T = tokens.shape
    limit = model.config.max_position_embeddings
    if T >= limit:
        raise ValueError(f"a prompt of {T} tokens leaves no room: max_position_embeddings {limit}")
    if padding is not None and not use_cache:
        raise ValueError("left-padded prompts (padding=...) need the KV cache: use_cache=True")
    max_new_tokens = min(max_new_tokens, limit - T)  # positions past the limit do not exist
    rows_own = isinstance(stop, (list, tuple)) and len(stop) > 0 and all(callable(s) for s in stop)
    stops = list(stop) if rows_own else [_stop_fn(stop)] * B  # one stop test a row, or one for all
    done, new = [False] * B, [[] for _ in range(B)]
    cache = model.new_cache(B, T + max_new_tokens, padding) if use_cache else None
    inputs = tokens  # 1. prefill: the whole prompt
    for step in range(max_new_tokens):
        logits = model(inputs, cache)[:, -1]  # (B, V): the last position predicts the next token
        if first_token_ids is not None and step == 0:  # token healing (below): limit the first
            logits = logits + _first_token_mask(first_token_ids, logits)
        nxt = _sample_rows(logits, temperature, top_k, top_p, generator)  # (B,)
        nxt = nxt.masked_fill(torch.tensor(done, device=nxt.device), pad_token_id)
        for i, t in enumerate(nxt.tolist()):  # 2. per-row stopping (one copy to the CPU a step)
            if not done[i]:
                new[i].append(t)
                done[i] = stops[i](new[i])
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)  # (B, T + n)
        inputs = nxt[:, None] if use_cache else tokens  # 3. with a cache, only the newest token
        if all(done):
            break
    return tokens


def left_pad(rows, pad_token_id=0):
    "Prompts of different lengths as one batch: (tokens (B, T) padded on the left, padding (B,))."
    T = max(len(r) for r in rows)
    tokens = torch.tensor([[pad_token_id] * (T - len(r)) + list(r) for r in rows])
    return tokens, torch.tensor([T - len(r) for r in rows])



# %% [markdown]
# The test the cache must pass: greedy decoding with and without it gives exactly the same tokens. And the
# time, on a prompt of half the context. A cache saves work, not always time: each cached step is a
# small, launch-bound call, while an uncached step is one bigger call that a GPU runs almost as fast at these
# lengths. The course's own benchmark (`bench/results/generation.json`: H200, fp16, batch 1, a 128-token
# prompt and 256 new tokens, the reference model) measured **279 tokens/s with the cache and 348 without**.
# The cache pays off when the uncached call is no longer cheap: long sequences (its cost grows with the
# length in every matrix product, a cached step's only in attention), a CPU (which has no idle parallel units to hide the extra work), or a batch
# of many rows, as in evaluation. On this CPU, with half the context as prompt:

# %%
torch.manual_seed(0)
model = GPTNeoX(model_cfg).eval()
prompt = torch.randint(0, model_cfg.vocab_size, (2, model_cfg.max_position_embeddings // 2))
n = model_cfg.max_position_embeddings // 4
t0 = time.perf_counter()
cached = generate(model, prompt, n, use_cache=True)
t1 = time.perf_counter()
uncached = generate(model, prompt, n, use_cache=False)
t2 = time.perf_counter()
test_eq(cached, uncached)
test_eq(cached.shape, (2, prompt.shape[1] + n))
print(f"{n} tokens: cached {t1 - t0:.2f} s, uncached {t2 - t1:.2f} s")

# %% [markdown]
# Stopping: on a token id (here the third token greedy decoding produced for row 0), only that row stops and
# is padded; the limit of positions caps the length.

# %%
stop_id = int(cached[0, prompt.shape[1] + 2])
out = generate(model, prompt, n, stop=stop_id, pad_token_id=0)
end = prompt.shape[1] + 3  # just after the stop token
test_eq(out[0, :end], cached[0, :end])  # up to and with the stop token
test_eq(out[0, end:], torch.zeros_like(out[0, end:]))  # then padding
test_eq(out[1], cached[1])  # the other row goes on
test_eq(generate(model, prompt[:1], 10_000).shape[1], model_cfg.max_position_embeddings)
full = torch.zeros(1, model_cfg.max_position_embeddings, dtype=torch.long)
test_fail(lambda: generate(model, full, 5), contains="leaves no room")

# %% [markdown]
# ### Many prompts at once: left padding
#
# Evaluation completes hundreds of prompts. One at a time, a GPU spends each step launching kernels for a
# single row; a batch of 32 rows costs about the same time per step. Prompts have different lengths, so we pad
# them **on the left** (every row's last token then sits in the last column, where the next token is read) and
# give the model two facts per row through the cache: how many positions are padding, which the attention mask
# hides from every query, and where the row's text starts, so its rotary positions count from 0 as they would
# alone. The test: greedy decoding of prompts of different lengths in one batch gives, row by row, exactly the
# tokens each prompt gets by itself.

# %%
torch.manual_seed(0)
lengths = [3, 9, 1, 6]
rows = [torch.randint(1, model_cfg.vocab_size, (n,)).tolist() for n in lengths]
batch, padding = left_pad(rows)
print(batch.shape, padding.tolist())      # (4, 9): each row padded to the longest prompt
out = generate(model, batch, 12, padding=padding)
for b, row in enumerate(rows):
    alone = generate(model, torch.tensor([row]), 12)[0, len(row):]   # (12,): the prompt by itself
    test_eq(out[b, batch.shape[1]:].tolist(), alone.tolist())
test_eq(padding.tolist(), [6, 0, 8, 3])
test_fail(lambda: generate(model, batch, 2, padding=padding, use_cache=False), contains="use_cache=True")


# %% [markdown]
# ## Where a completion of code should stop
#
# A completion that runs to `max_new_tokens` usually rambles on into the next function. Code gives natural
# places to stop:
#
# - **end of line** (`stop="line"`): line completion, as in CodeXGLUE's PY150 benchmark;
# - **end of block** (`stop="block"`): the body of the function or loop the prompt opened. Python marks a
#   block by indentation, so the block ends at the first non-blank line indented less than the block's body
#   (HumanEval's stop strings `"\ndef"`, `"\nclass"`, `"\nif"`, `"\nprint"` are a cruder form of this). If the
#   prompt's last line ends with `:`, the body is anything indented deeper than that line; otherwise it is
#   the block of that last line itself. At the top level a blank line ends the block;
# - **end of text** (`stop="text"`): only the tokenizer's end-of-text token, which ends every mode;
# - or a list of strings of your own.
#
# These work on text, so they are plain functions of the prompt and the completion so far.

# %%
#| export
def indent_of(line):
    "Width of a line's leading whitespace (a tab counts as one character)."
    return len(line) - len(line.lstrip(" \t"))


def block_indent(prompt):
    "Indentation a completion line needs to stay in the prompt's block (0: the top level)."
    lines = [line for line in prompt.split("\n") if line.strip()]
    if not lines:
        return 0
    last = lines[-1]
    return indent_of(last) + 1 if last.rstrip().endswith(":") else indent_of(last)


def _block_end(prompt, completion):
    "Index in completion where the prompt's block ends, or None while it goes on."
    threshold = block_indent(prompt)
    if threshold == 0:  # the top level: a blank line ends the block
        i = completion.find("\n\n")
        return i if i >= 0 else None
    tail = prompt[prompt.rfind("\n") + 1:]  # the prompt's unfinished last line
    start = 0
    for n, line in enumerate((tail + completion).split("\n")):
        begins, start = start, start + len(line) + 1
        if not line.strip() or (n == 0 and tail.strip()):
            continue  # blank so far, or the prompt's own last line
        if indent_of(line) < threshold:
            cut = max(begins - len(tail) - 1, 0)  # the newline before that line
            return len(completion[:cut].rstrip())  # without trailing blank lines
    return None


def stop_index(completion, stop="block", prompt=""):
    "Where to cut completion for stop ('line', 'block', 'text', or strings); None while it goes on."
    if stop in (None, "text"):
        return None  # end of text is a token, which generate handles
    if stop == "line":
        i = completion.find("\n")
        return i if i >= 0 else None
    if stop == "block":
        return _block_end(prompt, completion)
    strings = [stop] if isinstance(stop, str) else stop
    hits = [i for i in (completion.find(s) for s in strings) if i >= 0]
    return min(hits) if hits else None


# %%
p = "def add(a, b):\n"
c = "    total = a + b\n    return total\n\ndef sub(a, b):\n    return a - b\n"
test_eq(block_indent(p), 1)
test_eq(c[:stop_index(c, "block", p)], "    total = a + b\n    return total")
test_eq(stop_index("    total = a + b\n    ret", "block", p), None)  # the block is not over yet
p2 = "def add(a, b):\n    total = a +"  # a prompt that ends mid-line, inside the body
c2 = " b\n    return total\nprint(add(1, 2))"
test_eq(c2[:stop_index(c2, "block", p2)], " b\n    return total")
test_eq(stop_index("x = 1\n\ny = 2", "block", "import os\n"), 5)  # top level: a blank line
test_eq(stop_index(" b\n    return total", "line", p2), 2)
test_eq(stop_index("    return a\n", ["\n", "return"], p), 4)
test_eq(stop_index("anything\n\n", "text", p), None)


# %% [markdown]
# ## Token healing: prompts that end on a token boundary the model never saw
#
# A byte-level BPE tokenizer for code merges a newline with the indentation after it: in training,
# `"):\n    result"` is `'):'`, `'\n   '`, `' result'`. A prompt that ends with `"):\n"` ends with the token
# `'\n'` alone, which the model has rarely seen before an indented line, so its completion starts oddly
# (often with another newline). The same happens to a prompt that ends in spaces, or in the middle of a
# name. **Token healing** (Lundberg, 2023, *guidance*) fixes it: drop the prompt's last token, and let the
# model choose the first new token among those whose text *starts with* the dropped text; then remove that
# text from the completion. The model now picks `'\n   '` (or `'\n       '`) itself.

# %%
#| export
@lru_cache(maxsize=8)
def token_texts(tokenizer):
    "The text of every token id, cached per tokenizer."
    return tuple(tokenizer.decode([i]) for i in range(len(tokenizer)))


def heal_prompt(tokenizer, ids):
    "Drop the prompt's last token: (shorter ids, its text, ids whose text starts with it)."
    if len(ids) < 2:
        return ids, "", None
    tail = tokenizer.decode(ids[-1:])
    allowed = [i for i, text in enumerate(token_texts(tokenizer)) if text.startswith(tail)]
    return ids[:-1], tail, torch.tensor(allowed)


# %%
ids = tokenizer("def factorial(n):\n")["input_ids"]
print([tokenizer.decode([i]) for i in ids])
healed, tail, allowed = heal_prompt(tokenizer, ids)
test_eq((healed, tail), (ids[:-1], "\n"))
assert all(token_texts(tokenizer)[i].startswith("\n") for i in allowed.tolist())
test_eq(tokenizer("\n    x")["input_ids"][0] in allowed.tolist(), True)  # "\n   " may follow
test_eq(heal_prompt(tokenizer, ids[:1]), (ids[:1], "", None))


# %% [markdown]
# ## `complete`: text in, text out
#
# `complete` tokenizes the prompt (keeping its end if it is too long for the model), heals its last token,
# generates with a stop that decodes the new tokens and asks `stop_index` (or sees end-of-text), and returns
# the completion cut at the stop. Temperature 0 is greedy; `seed` makes sampling repeatable.

# %%
#| export
def complete(model, tokenizer, prompt, max_new_tokens=64, temperature=0.0, top_k=None, top_p=None,
             stop="block", seed=None, heal=True):
    "Complete the code in prompt: the new text, cut at stop ('line', 'block', 'text' or strings)."
    limit = model.config.max_position_embeddings
    ids = tokenizer(prompt)["input_ids"]
    ids = ids[-max(limit - max_new_tokens, limit // 2):]  # keep the prompt's end, leave room
    ids, tail, first_ids = heal_prompt(tokenizer, ids) if heal else (ids, "", None)
    eos = tokenizer.eos_token_id

    def text_of(new_ids):  # the completion's text, without the healed prompt tail
        if eos is not None and eos in new_ids:
            new_ids = new_ids[:new_ids.index(eos)]
        return tokenizer.decode(new_ids)[len(tail):]

    def should_stop(new_ids):
        if eos is not None and new_ids[-1] == eos:
            return True
        return stop_index(text_of(new_ids), stop, prompt) is not None

    generator = None
    if seed is not None:
        generator = torch.Generator(model.lm_head.weight.device).manual_seed(seed)
    n = max_new_tokens + (1 if tail else 0)  # the healed token is generated again
    out = generate(model, torch.tensor([ids]), n, temperature, top_k, top_p, stop=should_stop,
                   generator=generator, first_token_ids=first_ids)
    text = text_of(out[0, len(ids):].tolist())
    cut = stop_index(text, stop, prompt)
    return text if cut is None else text[:cut]


def load_completer(directory, device=None):
    "The model and tokenizer of a Hugging Face GPT-NeoX directory (as save_pretrained writes it)."
    from transformers import AutoTokenizer
    directory = Path(directory)
    if not any((directory / name).exists() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise FileNotFoundError(f"{directory} holds no tokenizer: "
                                f"save_pretrained(model, dir, tokenizer) writes one")
    return load_pretrained(directory, device=device), AutoTokenizer.from_pretrained(str(directory))


# %% [markdown]
# An untrained model completes with noise, so to see `complete` at work we give the model something to
# say: 150 steps of training on one small file, enough for it to learn the file by heart (a few seconds on a
# CPU; chapter 05 trains for real). Then the prompt of a function it has seen comes back with its body, and
# the stops cut it where we asked. (The prompts are beginnings of the file: a model that learned one file by
# heart knows it only in that context.)

# %%
snippet = '''def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def factorial(n):
    result = 1
    for k in range(2, n + 1):
        result *= k
    return result


print(fibonacci(10), factorial(5))
'''
ids = torch.tensor(tokenizer(snippet)["input_ids"] + [tokenizer.eos_token_id])
torch.manual_seed(0)
model = GPTNeoX(model_cfg).train()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
for step in range(150):
    loss = F.cross_entropy(model(ids[None, :-1])[0], ids[1:])
    opt.zero_grad(); loss.backward(); opt.step()
print(f"{len(ids)} tokens, loss after 150 steps {loss.item():.4f}")
assert loss.item() < 0.05

# %%
model.eval()
head = snippet[:snippet.index("def factorial")]  # the file up to the second function
block = complete(model, tokenizer, head + "def factorial(n):\n", max_new_tokens=60, stop="block")
print(block)
test_eq(block, snippet[snippet.index("    result = 1"):snippet.index("    return result") + 17])
test_eq(complete(model, tokenizer, head + "def factorial(n):\n", stop="line"), "    result = 1")
test_eq(complete(model, tokenizer, "def fibonacci(n):\n    a, b =", stop="line"), " 0, 1")
in_a_name = "def fibonacci(n):\n    a, b = 0, 1\n    for _ in ran"  # a prompt that ends mid-name
test_eq(complete(model, tokenizer, in_a_name, stop="line"), "ge(n):")
start = "def fibonacci(n):\n    a, b = 0, 1\n"
test_eq(complete(model, tokenizer, start, stop="block"),
        snippet[len(start):snippet.index("    return a") + len("    return a")])

# %% [markdown]
# Without healing, the same model meets a `'\n'` token it never saw after that line in training and goes
# astray (here it ends the block at once, returning nothing):

# %%
unhealed = complete(model, tokenizer, head + "def factorial(n):\n", max_new_tokens=60, heal=False)
print(repr(unhealed[:40]))
assert unhealed != block

# %% [markdown]
# Sampling at a moderate temperature is repeatable with a seed; the command line (`neoxcourse complete`) goes
# through a saved directory, model and tokenizer together, exactly as below.

# %%
s1 = complete(model, tokenizer, head + "def factorial(n):\n", temperature=0.8, top_p=0.95, seed=1)
s2 = complete(model, tokenizer, head + "def factorial(n):\n", temperature=0.8, top_p=0.95, seed=1)
test_eq(s1, s2)
with tempfile.TemporaryDirectory() as d:
    save_pretrained(model, d, tokenizer)
    model2, tokenizer2 = load_completer(d)
    test_eq(complete(model2, tokenizer2, head + "def factorial(n):\n", max_new_tokens=60), block)
    test_fail(lambda: load_completer(Path(d) / "missing"), contains="holds no tokenizer")
s1

# %% [markdown]
# ## Try this
#
# Change one thing, rerun the cell, compare with what it should show; each runs in seconds on a CPU.
#
# 1. **Temperature.** Five tokens with fixed scores; `sample_next` draws 4,000 times. Set `temperature` to 0.3,
#    1.0 or 3.0. You should see the draws follow `softmax(logits / temperature)` within a couple of percent:
#    at 0.3 almost always the best token, at 3.0 nearly uniform.

# %%
temperature = 1.0   # try 0.3 or 3.0
scores = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]]).expand(4000, 5)
draws = sample_next(scores, temperature=temperature, generator=torch.Generator().manual_seed(0))
freq = torch.bincount(draws, minlength=5) / len(draws)
expected = (scores[0] / temperature).softmax(-1)
print("sampled ", [round(v, 3) for v in freq.tolist()]); print("expected", [round(v, 3) for v in expected.tolist()])
test_close(freq, expected, eps=0.03)


# %% [markdown]
# 2. **Nucleus size.** Same scores, `top_p` of 0.5, 0.9 or 1.0. You should see only the fewest best tokens whose
#    probabilities reach `top_p` ever drawn: 1 token at 0.5 (the best has 0.56), 4 at 0.9 (the best three sum to
#    0.896, just short of it), all 5 at 1.0.

# %%
top_p = 0.9   # try 0.5 or 1.0
draws = sample_next(scores, temperature=1.0, top_p=top_p, generator=torch.Generator().manual_seed(0))
print(f"top_p {top_p}: tokens ever drawn", sorted(set(draws.tolist())))
test_eq(len(set(draws.tolist())), {0.5: 1, 0.9: 4, 1.0: 5}.get(top_p, len(set(draws.tolist()))))


# %% [markdown]
# ## Recap
#
# - `sample_next` is greedy at temperature 0 and samples with temperature, top-k and top-p otherwise;
#   sampled frequencies match the model's probabilities.
# - `generate` runs on token ids with chapter 04's KV cache; cached and uncached greedy decoding give the
#   same tokens in float32 (in 16 bits they can part where two tokens nearly tie), the cache saves work that
#   grows with the length; it saves time on a CPU and on long sequences, but on a GPU at these lengths it was
#   slower (279 vs 348 tokens/s, `bench/results/generation.json`).
# - `stop_index` cuts a completion at the end of the line, of the block (by indentation), or at strings;
#   token healing lets a prompt end anywhere, even in the middle of a token; `complete` is text in, text
#   out. `neoxcourse complete --checkpoint DIR --max-new-tokens N --temperature 0 "prompt"` loads the
#   directory (`load_pretrained` and its tokenizer, as `load_completer` does) and prints `complete`'s answer.
# - Chapter 08 uses `complete` for line completion and HumanEval; chapter 05 trains a model worth asking.
