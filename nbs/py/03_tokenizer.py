# Generated from nbs/03_tokenizer.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/03_tokenizer.py`.

# %% [markdown]
# # 03 · A tokenizer for Python
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/03_tokenizer.ipynb)
#
# > Train a byte-level BPE tokenizer on the corpus, measure it, and save it for `transformers`.

# %% [markdown]
# - **You will learn:** why code models use byte-level BPE, what the vocabulary size trades (bytes per token
#   against embedding size), and whether tokens for runs of spaces help Python.
# - **You need:** chapter 02 (the corpus); a CPU is enough.
# - **Time:** about 3 minutes on a T4 runtime (tokenizer training runs on the CPU); about 2 minutes on a CPU
#   with the smoke config, as CI runs it.
# - **You should see:** a plot of bytes per token against vocabulary size that rises and flattens, and the
#   committed 8,192-token tokenizer at about 3.9 bytes per token on the standard library (3.8 to 4.0; about
#   3.3 on the T4 recipe's site-packages).

# %%
#| default_exp tokenizer

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
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from neoxcourse.data import DATA_KEYS, DataError, build_corpus, encode_texts, tokenizer_hash

# %%
#| hide
import filecmp
import tempfile

from neoxcourse.data import sample_origins

from fastcore.test import test_eq, test_close, test_fail

# %%
from neoxcourse.config import default_config_path, load_config

cfg = load_config(config_path or default_config_path(), overrides)
corpus = build_corpus(cfg.data, cfg.root)
train_docs = sample_origins(corpus.train, 800, key=lambda d: d.origin)  # experiments take seconds
train_texts, val_texts = [d.text for d in train_docs], [d.text for d in corpus.val]
print(f"{len(train_texts)} of {len(corpus.train)} train files "
      f"({sum(d.nbytes for d in train_docs) / 1e6:.1f} MB) for the experiments, "
      f"{len(val_texts)} val files")

# %% [markdown]
# ## Why byte-level BPE
#
# A model predicts one token at a time, so the tokenizer decides how much text each prediction
# covers and therefore how much code fits in the context window. **Byte-pair encoding** (Sennrich et
# al. 2016) starts from single symbols and repeatedly merges the most frequent adjacent pair into a
# new symbol until the vocabulary is full, so frequent strings (`self.`, `    return`, `def
# __init__(self`) become single tokens. **Byte-level** BPE (GPT-2, Radford et al. 2019; also
# GPT-NeoX) starts from the 256 byte values instead of characters: every string, whatever its
# Unicode, tabs or odd whitespace, encodes without an unknown token and decodes back to exactly the
# same bytes.
#
# Before merging, a *pre-tokenizer* cuts text into chunks that merges may not cross. GPT-2's pattern
# keeps a leading space with the word that follows (` return`) and puts a run of whitespace in its
# own chunk, so BPE can learn tokens for indentation. Two special tokens are reserved, as in
# GPT-NeoX: `<|endoftext|>` (id 0, between files) and `<|padding|>` (id 1).

# %%
#| export
EOT, PAD = "<|endoftext|>", "<|padding|>"
SPECIAL_TOKENS = (EOT, PAD)
WHITESPACE_MODES = ("runs", "indent", "none")


def byte_level_pretokenizer(whitespace: str = "runs"):
    "GPT-2's byte-level pre-tokenizer; `whitespace` chooses what may become one whitespace token."
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if whitespace == "runs":    # GPT-2: a run of whitespace (newline + indentation) is one chunk
        return byte_level
    if whitespace == "indent":  # each line's indentation is its own chunk, apart from the newline
        split = pre_tokenizers.Split(Regex(r"(?<=\n)[ \t]+"), behavior="isolated")
    elif whitespace == "none":  # no runs: every whitespace character before another is alone
        split = pre_tokenizers.Split(Regex(r"\s(?=\s)"), behavior="isolated")
    else:
        raise ValueError(f"whitespace must be one of {WHITESPACE_MODES}, not {whitespace!r}")
    return pre_tokenizers.Sequence([split, byte_level])


def train_bpe(texts: list[str], vocab_size: int, min_frequency: int = 2,
              whitespace: str = "runs") -> Tokenizer:
    "A byte-level BPE tokenizer trained on `texts` (deterministic for the same texts in one order)."
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} is below the 256 bytes + "
                         f"{len(SPECIAL_TOKENS)} special tokens")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = byte_level_pretokenizer(whitespace)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer


# %%
bpe = train_bpe(train_texts, cfg.tokenizer.vocab_size)
sample = "class Stack:\n    def push(self, item):\n        self.items.append(item)  # ok\n"
print(bpe.get_vocab_size(), bpe.encode(sample).tokens)

# %% [markdown]
# `Ġ` is how byte-level BPE displays a space byte and `Ċ` a newline: `ĊĠĠĠĠĠĠĠ` is a newline with
# seven spaces of indentation, one token, and the eighth space sits in front of `Ġself`.

# %%
#| hide
test_eq(bpe.get_vocab_size(), cfg.tokenizer.vocab_size)
test_eq((bpe.token_to_id(EOT), bpe.token_to_id(PAD)), (0, 1))
test_eq(bpe.decode(bpe.encode(sample).ids), sample)
test_fail(lambda: train_bpe(["x"], 100), contains="below the 256 bytes")
test_fail(lambda: byte_level_pretokenizer("tabs"), contains="whitespace must be one of")


# %% [markdown]
# ## A character baseline
#
# The simplest tokenizer has no merges at all: one token per byte (for ASCII code, one per
# character). It never fails and needs a vocabulary of 258, but every prediction covers a single
# byte, so a context of 1,024 tokens holds only 1,024 bytes of code. It is the same model as BPE
# with no merges, which makes the comparison fair.

# %%
#| export
def train_char(texts: list[str] | None = None) -> Tokenizer:
    "The character (byte) baseline: the 256 bytes and the special tokens, no merges."
    return train_bpe(texts or [""], 256 + len(SPECIAL_TOKENS))


def bytes_per_token(tokenizer, texts: list[str]) -> float:
    "UTF-8 bytes of `texts` divided by their number of tokens (no special tokens)."
    ids = encode_texts(tokenizer, texts)
    return sum(len(t.encode("utf-8")) for t in texts) / max(sum(len(a) for a in ids), 1)


# %%
char = train_char()
{name: round(bytes_per_token(tok, val_texts), 3) for name, tok in (("char", char), ("bpe", bpe))}

# %%
#| hide
test_eq(char.get_vocab_size(), 258)
test_close(bytes_per_token(char, ["héllo\tworld\n"]), 1.0)
assert bytes_per_token(bpe, val_texts) > 3.0

# %% [markdown]
# ## Do whitespace-run tokens help?
#
# Indentation is syntax in Python and makes up a large share of its bytes. GPT-NeoX's own tokenizer
# added dedicated tokens for runs of spaces for this reason. Byte-level BPE with GPT-2's
# pre-tokenizer can already learn such tokens, so the question is empirical. Three pre-tokenizations
# at the same vocabulary size: `runs` (GPT-2: newline plus indentation may merge into one token),
# `indent` (indentation is a chunk of its own, apart from the newline) and `none` (runs are cut into
# single characters, so no whitespace-run token can exist).

# %%
whitespace_bpt = {"runs": round(bytes_per_token(bpe, val_texts), 3)}  # `bpe` above is of kind runs
for mode in ("indent", "none"):
    tokenizer = train_bpe(train_texts, cfg.tokenizer.vocab_size, whitespace=mode)
    whitespace_bpt[mode] = round(bytes_per_token(tokenizer, val_texts), 3)
whitespace_bpt

# %% [markdown]
# **The answer: yes, whitespace runs help a lot, and GPT-2's pattern already learns them.** On the
# full default corpus (647 training files, 12 validation files; `bench/results/data_cpu2.json`) at
# 8,192 tokens:
#
# | pre-tokenization | bytes per token (val) |
# | --- | ---: |
# | `runs` (GPT-2; the default) | **3.96** |
# | `indent` (indentation apart from the newline) | 3.65 |
# | `none` (no whitespace-run tokens) | 2.29 |
#
# Without whitespace-run tokens the same code needs 73% more tokens. Letting the newline merge with
# the indentation after it (`runs`) beats isolating the indentation by 8%, because a newline and 8
# spaces make one token instead of two. Dedicated added tokens for runs of spaces, as in
# GPT-NeoX-20B's tokenizer, are therefore unnecessary here: tried on the same split, `AddedToken`s
# for 2 to 24 spaces *lowered* bytes per token (3.65 against 3.96) by cutting the newline from its
# indentation, and the byte-level decoder mangled the text around them (`(\n    'BaseProtocol'` came
# back without its quote), breaking the round trip. The default tokenizer keeps GPT-2's
# pre-tokenizer.

# %%
#| hide
assert whitespace_bpt["runs"] > whitespace_bpt["none"] * 1.05  # runs of whitespace are worth tokens


# %% [markdown]
# ## Exact round trip
#
# A code model must reproduce tabs, trailing spaces, non-ASCII identifiers and strings, and Windows
# line endings exactly, or its completions will not run. With no normalizer and a byte-level
# decoder, `decode(encode(s)) == s` should hold for *every* string. The check below runs it on this
# corpus; the integration test `tests/test_data_tokenizer.py` runs it on every file of the standard
# library.

# %%
#| export
def round_trip_failures(tokenizer, texts: list[str]) -> list[int]:
    "Indices of the texts for which decode(encode(text)) differs from the text."
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # fast: skips offsets
    encoded = encode(list(texts), add_special_tokens=False)
    decoded = backend.decode_batch([e.ids for e in encoded], skip_special_tokens=False)
    return [i for i, (a, b) in enumerate(zip(texts, decoded)) if a != b]


# %%
tricky = ["\tindented with a tab\n", "trailing spaces   \n", "naïve = 'ünïcødé 🐍'\r\n",
          "  \n\n\t \n", "x = '<|endoftext|>'\n", ""]
failures = round_trip_failures(bpe, train_texts + val_texts + tricky)
failures

# %%
#| hide
test_eq(failures, [])
test_eq(round_trip_failures(char, val_texts + tricky), [])


# %% [markdown]
# Note the `'<|endoftext|>'` in ordinary text: by default special tokens are matched in the input, so
# such a string encodes to the single special id and still decodes to the same characters. The round
# trip stays exact, but a file quoting the token would look like a file boundary to the model, so
# chapter 02's packer switches that matching off (`encode_special_tokens`) while it encodes files.

# %% [markdown]
# ## Saving for `transformers`, and loading back
#
# `PreTrainedTokenizerFast` wraps the trained `tokenizers` object and `save_pretrained` writes
# `tokenizer.json` and `tokenizer_config.json`, which `AutoTokenizer.from_pretrained` loads
# anywhere, GPT-NeoX's own tools included (the config names the class `PreTrainedTokenizerFast`,
# which transformers 4 and 5 both know). `clean_up_tokenization_spaces=False` matters: the default
# of older versions removes spaces before punctuation when decoding and would break the round trip.
#
# Since version 0.20, `tokenizers` saves each BPE merge as a pair `["Ġ", "Ġ"]`; before, as one string
# `"Ġ Ġ"`. New versions read both, old ones only strings, and GPT-NeoX pins transformers 4.38 with tokenizers
# below 0.19 (appendix A7). `save_tokenizer` therefore rewrites the merges as strings (`merges_as_strings`): a
# byte-level merge never holds a space (a space is the byte `Ġ`), so nothing is lost.

# %%
#| export
def to_transformers(tokenizer: Tokenizer):
    "Wrap a trained tokenizer as a `transformers.PreTrainedTokenizerFast`, special tokens set."
    from transformers import PreTrainedTokenizerFast  # imported here: slow to import
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOT, eos_token=EOT,
                                   unk_token=EOT, pad_token=PAD, clean_up_tokenization_spaces=False)


def merges_as_strings(path: str | os.PathLike) -> int:
    "Rewrite a BPE `tokenizer.json`'s merges as \"a b\" strings, which tokenizers old and new read; the count."
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    merges = data.get("model", {}).get("merges") or []
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]   # 0.20+: pairs; before: strings
    spaced = [p for p in pairs if len(p) != 2 or any(" " in part for part in p)]
    if spaced:  # byte-level BPE writes a space as "Ġ", so a real space means another kind of tokenizer
        raise ValueError(f"{path}: merge {spaced[0]} holds a space; it cannot be written as one \"a b\" string")
    if merges:
        data["model"]["merges"] = [f"{a} {b}" for a, b in pairs]
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return len(merges)


def save_tokenizer(tokenizer: Tokenizer, out_dir: str | os.PathLike) -> Path:
    "Save so that `AutoTokenizer.from_pretrained(out_dir)` loads it; returns the folder."
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    to_transformers(tokenizer).save_pretrained(str(out_dir))
    merges_as_strings(out_dir / "tokenizer.json")  # GPT-NeoX's pinned tokenizers (<0.19) reads only these
    config_path = out_dir / "tokenizer_config.json"  # the class every transformers version knows
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out_dir


def load_tokenizer(cfg_or_dir):
    "The tokenizer of a config (`cfg.tokenizer.path`) or a folder, as a `PreTrainedTokenizerFast`."
    from transformers import AutoTokenizer
    if isinstance(cfg_or_dir, (str, os.PathLike)):
        path = Path(cfg_or_dir)
    else:
        path = cfg_or_dir.resolve(cfg_or_dir.tokenizer.path)
    if not (path / "tokenizer.json").exists():
        raise DataError(f"no tokenizer in {path}: train one with `neoxcourse tokenizer train "
                        f"CONFIG` (or train_tokenizer(cfg)), or point neoxcourse.tokenizer.path at "
                        f"a folder holding tokenizer.json.")
    retrain = "retrain it with `neoxcourse tokenizer train CONFIG` or copy a good tokenizer.json there"
    try: spec = json.loads((path / "tokenizer.json").read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path / 'tokenizer.json'} is not a tokenizer file (not valid UTF-8 JSON: truncated or "
                        f"damaged? {type(e).__name__}); {retrain}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise DataError(f"{path / 'tokenizer.json'} is JSON but not a Hugging Face tokenizer (no 'model' "
                        f"section); {retrain}")
    try: return AutoTokenizer.from_pretrained(str(path))
    except Exception as e:   # whatever the tokenizers library rejects, said in one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"{path}: the tokenizer files cannot be loaded ({first}); {retrain}") from None

def check_vocab_match(model_vocab: int, tokenizer, source: str = "the model") -> None:
    "Refuse a tokenizer whose vocabulary does not fit the model's embedding: ids past its end, or a model far larger."
    n = len(tokenizer)
    if n > model_vocab or model_vocab - n > max(128, model_vocab // 100):   # padding: up to a multiple of 128
        raise DataError(f"{source} has a vocabulary of {model_vocab:,} tokens but the tokenizer has {n:,}: they "
                        f"were not trained together, so every number would be wrong; use the tokenizer the model "
                        f"was trained with (its checkpoint's config.yml names it)")


# %%
scratch = cfg.resolve(cfg.data.output_dir) / "tokenizers"
saved = save_tokenizer(bpe, scratch / "bpe-demo")
hf = load_tokenizer(saved)
files = sorted(p.name for p in saved.iterdir())
type(hf).__name__, len(hf), hf.eos_token_id, hf.pad_token_id, files

# %%
#| hide
test_eq((len(hf), hf.eos_token_id, hf.pad_token_id), (cfg.tokenizer.vocab_size, 0, 1))
test_eq([hf.decode(hf.encode(t)) for t in tricky], tricky)
test_fail(lambda: load_tokenizer(scratch / "nothing-here"), contains="neoxcourse tokenizer train")
# damaged tokenizer files: one line each, naming the file and what to do
for name, data, says in [("truncated", (saved / "tokenizer.json").read_bytes()[:5000], "not valid UTF-8 JSON"),
                         ("random", bytes(range(256)) * 4, "not valid UTF-8 JSON"),
                         ("empty-object", b"{}", "not a Hugging Face tokenizer")]:
    bad = scratch / f"bad-{name}"; bad.mkdir(parents=True, exist_ok=True)
    (bad / "tokenizer.json").write_bytes(data)
    test_fail(lambda: load_tokenizer(bad), contains=says)
# a tokenizer must fit the model's embedding: padding up to a multiple of 128 is fine, other sizes are not
check_vocab_match(-(-len(hf) // 128) * 128, hf)
test_fail(lambda: check_vocab_match(1024, hf), contains="vocabulary of 1,024 tokens but the tokenizer has 8,192")
test_fail(lambda: check_vocab_match(4 * len(hf), hf), contains="were not trained together")

# %%
# merges written as "a b" strings, and the file reads back to the same ids and merges as the trained one
_saved = json.loads((saved / "tokenizer.json").read_text(encoding="utf-8"))["model"]["merges"]
test_eq(all(isinstance(m, str) and m.count(" ") == 1 for m in _saved), True)
test_eq(len(_saved), len(json.loads(bpe.to_str())["model"]["merges"]))
_back = Tokenizer.from_file(str(saved / "tokenizer.json"))
test_eq([_back.encode(t).ids for t in tricky], [bpe.encode(t).ids for t in tricky])
test_eq(merges_as_strings(saved / "tokenizer.json"), len(_saved))   # already strings: unchanged
test_eq(json.loads((saved / "tokenizer.json").read_text(encoding="utf-8"))["model"]["merges"], _saved)


# %% [markdown]
# ## Training from a config, deterministically
#
# `train_tokenizer(cfg)` builds the corpus of the config, trains on the **training split only** (the
# validation files must stay unseen, or bytes per token and validation loss flatter the model) and
# saves to `cfg.tokenizer.path`. Training is deterministic: the same files in the same order give
# byte-identical output, which is why the default tokenizer can be committed in `tokenizer/` and
# checked by CI. `neoxcourse tokenizer train CONFIG` calls this function; `neoxcourse data prepare`
# trains the same way first when the config sets `neoxcourse.tokenizer.train: true`. Neither will
# overwrite the committed `tokenizer/` with a tokenizer trained on other settings (the smoke
# config's 150 files, say).

# %%
#| export
def train_tokenizer_on(texts: list[str], tok_cfg, out_dir: str | os.PathLike) -> Path:
    "Train the tokenizer a `TokenizerConfig` describes on `texts` and save it to `out_dir`."
    if tok_cfg.kind == "bpe":
        tokenizer = train_bpe(texts, tok_cfg.vocab_size, tok_cfg.min_frequency)
    elif tok_cfg.kind == "char":
        tokenizer = train_char(texts)
    else:
        raise DataError(f"unknown tokenizer kind {tok_cfg.kind!r}: use 'bpe' or 'char' "
                        f"(neoxcourse.tokenizer.kind).")
    return save_tokenizer(tokenizer, out_dir)


def check_tokenizer_destination(cfg, out_dir: str | os.PathLike):
    "Refuse to replace the committed default tokenizer with one trained on other settings."
    from neoxcourse.config import DataConfig, TokenizerConfig  # the defaults make the default
    if Path(out_dir).resolve() != (Path(cfg.root) / "tokenizer").resolve():
        return
    ignored = ("output_dir",)
    data_changed = [f for f in DataConfig.__dataclass_fields__ if f not in ignored
                    and getattr(cfg.data, f) != getattr(DataConfig(), f)]
    tok_changed = [f for f in ("kind", "vocab_size", "min_frequency")
                   if getattr(cfg.tokenizer, f) != getattr(TokenizerConfig(), f)]
    if data_changed or tok_changed:
        changed = ", ".join(data_changed + tok_changed)
        raise DataError(f"this would overwrite the committed default tokenizer in {out_dir} with "
                        f"one trained on different settings ({changed}): set "
                        f"neoxcourse.tokenizer.path to another folder, e.g. data/tokenizers/mine.")


def train_tokenizer(cfg, out_dir: str | os.PathLike | None = None) -> Path:
    "Train on the training split of the config's corpus; save to `out_dir` or `cfg.tokenizer.path`."
    out_dir = Path(out_dir) if out_dir is not None else cfg.resolve(cfg.tokenizer.path)
    check_tokenizer_destination(cfg, out_dir)
    corpus = build_corpus(cfg.data, cfg.root)
    path = train_tokenizer_on([d.text for d in corpus.train], cfg.tokenizer, out_dir)
    tokenizer = load_tokenizer(path)
    bpt = bytes_per_token(tokenizer, [d.text for d in corpus.val])
    provenance = dict(  # what made it (deterministic: no dates), so a retrain can be compared
        python=platform.python_version(), data={k: getattr(cfg.data, k) for k in DATA_KEYS},
        tokenizer=dict(kind=cfg.tokenizer.kind, vocab_size=cfg.tokenizer.vocab_size,
                       min_frequency=cfg.tokenizer.min_frequency),
        train=dict(files=len(corpus.train), bytes=sum(d.nbytes for d in corpus.train)),
        val=dict(files=len(corpus.val), bytes_per_token=round(bpt, 4)))
    (path / "training.json").write_text(json.dumps(provenance, indent=2, sort_keys=True,
                                                   default=list) + "\n")
    print(f"trained a {cfg.tokenizer.kind} tokenizer of {len(tokenizer)} tokens on "
          f"{len(corpus.train)} files; {bpt:.3f} bytes per token on {len(corpus.val)} validation "
          f"files; saved to {path}")
    return path


# %%
first = train_tokenizer_on(train_texts, cfg.tokenizer, scratch / "run-a")  # what train_tokenizer runs
tokenizer_hash(first) == tokenizer_hash(saved)  # `saved`: the BPE trained separately above

# %%
#| hide
for name in ("tokenizer.json", "tokenizer_config.json"):
    assert filecmp.cmp(first / name, saved / name, shallow=False), name
test_eq(tokenizer_hash(first), tokenizer_hash(saved))
if cfg.data.max_files:  # the smoke config must not overwrite the committed default
    test_fail(lambda: train_tokenizer(cfg, cfg.root / "tokenizer"), contains="max_files")

# %% [markdown]
# The committed default in `tokenizer/` was trained this way on the default corpus, the standard
# library without tests (`configs/stdlib.yml`): `neoxcourse tokenizer train configs/stdlib.yml`
# reproduces it byte for byte on the same Python version (the corpus is the interpreter's own standard
# library, which changes a little between releases; `tokenizer/training.json` records the version,
# the settings and the corpus size), and `tests/test_data_pipeline.py` checks that it does. `configs/t4.yml` trains
# on a larger corpus (installed packages) but keeps this tokenizer.

# %%
default_tokenizer = load_tokenizer(cfg.root / "tokenizer")
bpt = bytes_per_token(default_tokenizer, val_texts)
print(f"{len(default_tokenizer)} tokens, {bpt:.3f} bytes per token on this config's val files")


# %% [markdown]
# ## Vocabulary size against bytes per token
#
# A larger vocabulary packs more bytes into each token (a longer effective context, fewer steps per
# epoch) but costs embedding and output parameters ($2 \times V \times d$ for an untied model: 6.3M
# of a 20M-parameter model at $V = 8192$, $d = 384$) and spreads the training signal over rarer
# tokens. The curve flattens: each doubling buys less.

# %%
#| export
def vocab_sweep(train_texts: list[str], val_texts: list[str],
                sizes=(512, 1024, 2048, 4096, 8192, 16384), whitespace: str = "runs") -> dict:
    "Bytes per token on `val_texts` of BPE tokenizers of each size trained on `train_texts`."
    result = {258: bytes_per_token(train_char(), val_texts)}
    for size in sizes:
        tokenizer = train_bpe(train_texts, size, whitespace=whitespace)
        result[size] = bytes_per_token(tokenizer, val_texts)
    return result


def plot_vocab_sweep(result: dict[int, float], title: str = ""):
    "Bytes per token against vocabulary size (log scale)."
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sizes = sorted(result)
    ax.plot(sizes, [result[s] for s in sizes], "o-")
    for s in sizes:
        ax.annotate(f"{result[s]:.2f}", (s, result[s]), textcoords="offset points", xytext=(0, 6),
                    ha="center")
    ax.set(xscale="log", xlabel="vocabulary size (258 = characters)",
           ylabel="bytes per token (val)",
           title=title or "bytes per token on the validation split")
    fig.tight_layout()
    return fig


# %%
sweep = vocab_sweep(train_texts, val_texts, sizes=(512, 2048))  # the bench measures 8 sizes
sweep[cfg.tokenizer.vocab_size] = bytes_per_token(bpe, val_texts)  # trained above
plot_vocab_sweep(sweep, f"{len(train_texts)} training files");
{k: round(v, 3) for k, v in sweep.items()}

# %%
#| hide
values = [sweep[k] for k in sorted(sweep)]
assert all(a < b for a, b in zip(values, values[1:])), "bytes per token grow with the vocabulary"
test_close(sweep[258], 1.0, eps=0.02)  # the byte baseline: nearly one byte per token (ASCII code)

# %% [markdown]
# On the full default corpus (`bench/results/data_cpu2.json`), bytes per token on the validation
# split:
#
# | vocabulary | 258 (bytes) | 512 | 1,024 | 2,048 | 4,096 | **8,192** | 16,384 | 32,768 |
# | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
# | bytes per token | 1.00 | 2.14 | 2.74 | 3.25 | 3.65 | **3.96** | 4.17 | 4.26 |
#
# Each doubling buys less: +28% from 512 to 1,024, +9% from 4,096 to 8,192, +5% to 16,384 and +2% to
# 32,768, while the embedding and output matrices double each time. With 10 MB of training text the
# rarer tokens of a larger vocabulary would also be seen too seldom to learn. 8,192 is the knee, and
# the default.

# %% [markdown]
# ## `prepare(cfg)`: corpus and tokenizer, in one idempotent step
#
# Training reads token files, not text. `prepare` is the whole data step that chapter 02 started: it reuses
# chapter 02's fingerprinted output folder when nothing changed, and otherwise builds the corpus, trains this
# chapter's tokenizer when the config asks, encodes, and writes the token files. It lives here, after both
# chapters, so that the corpus comes first and the tokenizer second, and neither module needs the other back.

# %% [markdown]
# `prepare` itself: build the corpus, train the tokenizer when the config asks (on the training
# split only, with `train_tokenizer_on` from above), encode, write the token files and a manifest of
# every file kept (origin, licence, split, bytes, tokens), and finally the metadata. A notebook that
# has already built the corpus of the same config (with `keep_removed=True`) can pass it in.

# %%
#| export
import json
import time

from neoxcourse.data import (Corpus, PreparedData, _is_complete, build_corpus, data_fingerprint, encode_texts,
                             read_meta, token_dtype, tokenizer_hash, write_atomic, write_tokens)

def _load_hf_tokenizer(path: Path):
    from transformers import AutoTokenizer  # imported here: slow to import
    if not (path / "tokenizer.json").exists():
        raise DataError(f"no tokenizer in {path}: set neoxcourse.tokenizer.path to a tokenizer "
                        f"folder, or neoxcourse.tokenizer.train: true, or run "
                        f"`neoxcourse tokenizer train CONFIG`.")
    return AutoTokenizer.from_pretrained(str(path))


def prepare(cfg, force: bool = False, verbose: bool = True, corpus: Corpus | None = None
            ) -> PreparedData:
    "Corpus -> (tokenizer) -> train.bin / val.bin + files.jsonl + meta.json, reused when done."
    t0 = time.perf_counter()
    tok_dir = cfg.resolve(cfg.tokenizer.path)
    fingerprint, inputs = data_fingerprint(cfg)
    out_dir = cfg.resolve(cfg.data.output_dir) / f"{cfg.data.source}-{fingerprint[:12]}"
    paths = dict(train_path=out_dir / "train.bin", val_path=out_dir / "val.bin")
    meta = read_meta(out_dir)
    if not force and _is_complete(out_dir, meta, fingerprint, tok_dir):
        if verbose:
            print(f"reusing {out_dir} (same fingerprint {fingerprint[:12]})")
        return PreparedData(out_dir, meta=meta, reused=True, **paths)
    if cfg.tokenizer.train:
        check_tokenizer_destination(cfg, tok_dir)  # never overwrite the committed default
    (out_dir / "meta.json").unlink(missing_ok=True)  # from here on the folder is not complete
    out_dir.mkdir(parents=True, exist_ok=True)
    if corpus is None or corpus.report.removed_texts is None:  # a corpus built from this config
        corpus = build_corpus(cfg.data, cfg.root, keep_removed=True)                # 1. corpus
    if cfg.tokenizer.train:                                                         # 2. tokenizer
        train_tokenizer_on([d.text for d in corpus.train], cfg.tokenizer, tok_dir)
    tokenizer = _load_hf_tokenizer(tok_dir)
    eot_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    dtype = token_dtype(len(tokenizer))
    t1 = time.perf_counter()
    splits, manifest = {}, []
    for name, docs in (("train", corpus.train), ("val", corpus.val)):               # 3. tokens
        ids = encode_texts(tokenizer, [d.text for d in docs])
        tokens = write_tokens(out_dir / f"{name}.bin", ids, eot_id, dtype)
        nbytes = sum(d.nbytes for d in docs)
        splits[name] = dict(files=len(docs), bytes=nbytes, tokens=tokens,
                            bytes_per_token=nbytes / tokens)
        manifest += [dict(origin=d.origin, license=d.license, split=name, bytes=d.nbytes,
                          tokens=len(a)) for d, a in zip(docs, ids)]
    tokens = {step: sum(map(len, encode_texts(tokenizer, texts)))   # what each step cost, in tokens
              for step, texts in corpus.report.removed_texts.items()}
    tokens["kept"] = sum(m["tokens"] for m in manifest)
    encode_seconds = time.perf_counter() - t1
    write_atomic(out_dir / "files.jsonl", "".join(json.dumps(m) + "\n" for m in manifest).encode())
    meta = dict(fingerprint=fingerprint, inputs=inputs, dtype=dtype.name, eot_id=eot_id,
                vocab_size=len(tokenizer),
                tokenizer=dict(path=str(tok_dir), hash=tokenizer_hash(tok_dir)), splits=splits,
                steps=corpus.report.table(tokens), examples=corpus.report.examples,
                seconds=dict(corpus=round(corpus.report.seconds, 2),
                             encode=round(encode_seconds, 2),
                             total=round(time.perf_counter() - t0, 2)),
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_atomic(out_dir / "meta.json", json.dumps(meta, indent=1).encode())  # 4. last: complete
    if verbose:
        print(f"prepared {out_dir}: " + ", ".join(
            f"{k} {v['files']} files / {v['tokens']:,} tokens" for k, v in splits.items()))
    return PreparedData(out_dir, meta=meta, **paths)


# %%
prepared = prepare(cfg)  # the corpus of the config, the tokenizer it names
{k: prepared.meta[k] for k in ("splits", "seconds", "dtype")}

# %% [markdown]
# The metadata keeps the cleaning table, now with tokens: what each step cost in tokens of the
# tokenizer (files removed before decoding, such as binary ones, count no tokens).

# %%
for row in prepared.meta["steps"]:
    if row["step"] == "input" or row["files_removed"]:
        print("{step:>14} {files_kept:>6} files {mb_kept:>8.2f} MB {tokens_kept:>10,} tokens kept"
              .format(**row))

# %%
#| hide
again = prepare(cfg)
test_eq((again.reused, again.out_dir), (True, prepared.out_dir))
_steps = prepared.meta["steps"]
_content_tokens = sum(s["tokens"] - s["files"] for s in prepared.meta["splits"].values())  # no EOT
test_eq(_steps[-1]["tokens_kept"], _content_tokens)
assert all(a["tokens_kept"] >= b["tokens_kept"] for a, b in zip(_steps, _steps[1:]))
train_tokens = np.memmap(prepared.train_path, dtype=prepared.meta["dtype"], mode="r")
test_eq(len(train_tokens), prepared.meta["splits"]["train"]["tokens"])
test_eq(int(train_tokens[-1]), prepared.meta["eot_id"])
_manifest = [json.loads(x) for x in (prepared.out_dir / "files.jsonl").read_text().splitlines()]
_sides = {}
for m in _manifest:
    _sides.setdefault(m["origin"], set()).add(m["split"])
test_eq(max(len(s) for s in _sides.values()), 1)  # no file on both sides
test_eq(sum(m["tokens"] + 1 for m in _manifest if m["split"] == "train"), len(train_tokens))
# an interrupted run (meta.json missing) is not reused
(prepared.out_dir / "meta.json").rename(prepared.out_dir / "meta.json.bak")
test_eq(_is_complete(prepared.out_dir, read_meta(prepared.out_dir), prepared.meta["fingerprint"],
                     cfg.resolve(cfg.tokenizer.path)), False)
(prepared.out_dir / "meta.json.bak").rename(prepared.out_dir / "meta.json")
test_eq(prepare(cfg, verbose=False).reused, True)

# %% [markdown]
# ## Try this
#
# Change one thing, rerun the cell, compare with what it should show; each runs in seconds on a CPU.
#
# 1. **Your own line.** Put any line of Python in `line` (try one with a tab, a non-ASCII name, or a Windows
#    line ending `\r\n`). You should see its tokens (`Ġ` a space, `Ċ` a newline, `ĉ` a tab), more bytes per
#    token for common code than for rare text, and the exact same string back after decoding.

# %%
line = "    for i in range(10):\n"   # try "\tπ = 3.14159  # été\r\n"
enc = bpe.encode(line)
print(enc.tokens, f"{len(line.encode()) / len(enc.ids):.2f} bytes per token")
test_eq(bpe.decode(enc.ids), line)


# %% [markdown]
# 2. **Indentation depth.** Set `depth = 8` (try 4, 12, 16, 32). You should see the indentation and the
#    newline before it become one token at depths the corpus uses a lot (multiples of 4), and break into a few
#    tokens at unusual depths.

# %%
depth = 8   # try 4, 12, 16, 32
code = "x = 1\n" + " " * depth + "return x\n"
print(depth, bpe.encode(code).tokens)
test_eq(bpe.decode(bpe.encode(code).ids), code)


# %% [markdown]
# 3. **A tiny vocabulary.** Set `size = 300` (try 1024): a BPE with only 42 merges beyond the bytes. You should
#    see bytes per token fall towards the byte baseline's 1.0, and rise again with the size, as in the plot above.

# %%
size = 512   # try 300 or 1024
small = train_bpe(train_texts, size)
print(f"{size} tokens: {bytes_per_token(small, val_texts):.3f} bytes per token; "
      f"{cfg.tokenizer.vocab_size}: {bytes_per_token(bpe, val_texts):.3f}")
assert 1.0 < bytes_per_token(small, val_texts) < bytes_per_token(bpe, val_texts)


# %% [markdown]
# ## Exercise: the best tokenizer at 2,048 tokens
#
# Bigger vocabularies always win on bytes per token, so the exercise fixes the budget: at most
# **2,048 tokens**, special tokens included. Train on the training split of the default corpus
# (pre-tokenizer, whitespace handling, `min_frequency`, added tokens: your choice) and return the
# tokenizer from `answer()` in `exercises/03_tokenizer/starter.py`. The check loads the validation
# split of the default corpus, requires an exact round trip on all of it and reports bytes per token
# (higher is better). Submit with `submit("03_tokenizer", answer(), name="you")`.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import os
import re

from neoxcourse.data import build_corpus
from neoxcourse.tokenizer import SPECIAL_TOKENS, bytes_per_token, load_tokenizer, round_trip_failures

def foreign_tokens(backend, train_texts: list, min_chars: int = 4) -> list:
    "Learned tokens whose text occurs nowhere in the training split: BPE trained on that split cannot make them."
    train = "\n".join(train_texts)
    words = set(re.findall(r"\w+", train))
    out = []
    for i in range(backend.get_vocab_size(with_added_tokens=False)):
        s = backend.decode([i])
        if len(s.strip()) < min_chars or "\ufffd" in s or s in SPECIAL_TOKENS: continue
        if re.fullmatch(r"\w+", s.strip()) and s.strip() in words: continue   # a whole word of the split
        if s not in train: out.append(s)
    return out

def check_tokenizer_exercise(tokenizer, max_vocab: int = 2048) -> dict:
    "Bytes per token of a tokenizer of at most `max_vocab` tokens on the default validation split."
    from neoxcourse.config import DataConfig  # the default corpus, whatever config is in use
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch"):
        raise ExerciseError("answer() must return a tokenizer (tokenizers.Tokenizer, a "
                            "transformers fast tokenizer, or a folder holding tokenizer.json)")
    vocab = backend.get_vocab_size(with_added_tokens=True)
    if vocab > max_vocab:
        raise ExerciseError(f"the tokenizer has {vocab} tokens; the budget is {max_vocab}")
    corpus = build_corpus(DataConfig())
    val = [d.text for d in corpus.val]
    foreign = foreign_tokens(backend, [d.text for d in corpus.train])
    if len(foreign) >= 3:   # the training split alone gives none (0 for train_bpe and the reference)
        raise ExerciseError(f"{len(foreign)} learned tokens occur nowhere in the training split (e.g. "
                            f"{', '.join(repr(s) for s in foreign[:3])}): the tokenizer saw other text, such as "
                            f"the validation files it is scored on. Train on corpus.train only")
    failures = round_trip_failures(backend, val)
    if failures:
        raise ExerciseError(f"decode(encode(text)) differs from the text for {len(failures)} of "
                            f"{len(val)} validation files: keep byte-level pre-tokenization and no "
                            f"normalizer")
    bpt = bytes_per_token(backend, val)
    return dict(bytes_per_token=bpt, vocab_size=vocab, val_files=len(val))


TOKENIZER_EXERCISE = register_exercise(Exercise(
    id="03_tokenizer", title="the best tokenizer at 2,048 tokens", metric="bytes_per_token",
    higher_is_better=True, bounds=(0.5, 20.0), check=check_tokenizer_exercise, ranked=True))

# %%
#| hide
test_fail(lambda: check_tokenizer_exercise(bpe), contains="the budget is 2048")
test_fail(lambda: check_tokenizer_exercise(object()), contains="must return a tokenizer")

# %% [markdown]
# ## Recap
#
# - Byte-level BPE (`train_bpe`) with GPT-2's pre-tokenizer and the special tokens `<|endoftext|>`
#   and `<|padding|>`, a character baseline (`train_char`), exact round trip on every string.
# - `train_tokenizer(cfg)` trains on the training split only, deterministically; `load_tokenizer`
#   returns a `transformers` tokenizer; the default is committed in `tokenizer/`.
# - `prepare(cfg)` builds the corpus (chapter 02), trains the tokenizer when asked, writes `train.bin` /
#   `val.bin` (uint16), a manifest and `meta.json` last, and reuses finished work by fingerprint.
#
# - The default tokenizer: 8,192 tokens trained on 647 files (9.9 MB) of the standard library in
#   2.2 s, **3.96 bytes per token** on the validation split (the character baseline: 1.00);
#   decode(encode(s)) == s on all 1,786 UTF-8 files of the standard library, tests included (the
#   4 others are not UTF-8, and the data filters drop them), checked in 7.9 s. Encoding in batches
#   on both cores runs at 5.2 MB/s (1.33M tokens/s), against 2.4 MB/s one file at a time
#   (`bench/results/data_cpu2.json`; a busy machine halves these).
# - Whitespace-run tokens are worth 73% more bytes per token; GPT-2's pre-tokenizer learns them by
#   itself.
#
# Next, chapter 04 builds the GPT-NeoX model whose embedding table has one row per token.
