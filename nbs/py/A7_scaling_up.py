# Generated from nbs/A7_scaling_up.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A7_scaling_up.py`.

# %% [markdown]
# # Appendix A7 · Scaling up: several GPUs with torchrun, and the recipe handed to EleutherAI GPT-NeoX
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A7_scaling_up.ipynb)
#
# > Split a global batch over processes and launch the course's loop with `torchrun`; then export the same
# > recipe, the same data and the same tokenizer in the formats EleutherAI's GPT-NeoX reads, train there
# > with W&B, and read the result back into the course.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** how a global batch is split over GPUs with `torchrun`, what a larger batch asks of
#   the learning rate, and how the recipe, data and tokenizer go to EleutherAI's GPT-NeoX and back.
# - **You need:** chapters 02 to 05; a CPU is enough here (several GPUs only to run what it exports).
# - **Time:** about 3 minutes on a T4; about 2 minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** batch plans whose micro-batch x accumulation x GPUs equals the global batch, a
#   GPT-NeoX YAML, and `.bin/.idx` files that read back to exactly the tokens written; no plot.

# %%
#| default_exp neox

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
import shutil
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from neoxcourse.config import ConfigError, canonical, load_config, neox_arguments, pad_vocab, read_yaml, to_neox_dict

# %%
#| hide
import subprocess
import sys
import tempfile
import time

from fastcore.test import test_close, test_eq, test_fail

from neoxcourse.config import default_config_path

# %%
cfg = load_config(config_path or default_config_path(), overrides)


# %% [markdown]
# ## Part 1: one recipe, several GPUs
#
# Data parallelism keeps a full copy of the model on each GPU, gives each its own micro-batches, and
# averages the gradients before the step. One optimizer step sees the same **global batch** whatever the
# number of GPUs:
#
# $$\text{global batch} = \text{micro-batch} \times \text{accumulation steps} \times \text{world size}.$$
#
# The config fixes the global batch (`train_batch_size`, the number that matters for the optimizer) and
# the micro-batch (`train_micro_batch_size_per_gpu`, what fits in one GPU's memory); the number of processes
# is known only at launch, and the accumulation follows. That is GPT-NeoX's rule too, and the reason a
# recipe carries from one T4 to eight A100s without edits as long as the division works out.

# %%
#| export
@dataclass(frozen=True)
class BatchPlan:
    "How one optimizer step's global batch is shared out: micro-batch x accumulation x processes."
    world_size: int
    micro_batch_size: int
    gradient_accumulation_steps: int
    global_batch_size: int
    seq_length: int

    @property
    def tokens_per_step(self) -> int: return self.global_batch_size * self.seq_length

    @property
    def tokens_per_process(self) -> int: return self.tokens_per_step // self.world_size

def batch_plan(cfg, world_size: int = 1, micro_batch_size: int | None = None) -> BatchPlan:
    "The accumulation each of `world_size` processes needs to reach the config's global batch."
    t = cfg.training
    micro, total = micro_batch_size or t.micro_batch_size, t.global_batch_size
    if world_size < 1: raise ConfigError(f"world size must be at least 1, got {world_size}")
    if total % (micro * world_size):
        fits = [m for m in range(1, total + 1) if total % (m * world_size) == 0]
        hint = (f"micro-batches that divide it: {fits}" if fits else
                f"no micro-batch works: use a number of processes that divides {total}")
        raise ConfigError(f"global batch {total} is not a multiple of micro-batch {micro} x {world_size} "
                          f"processes; {hint}")
    return BatchPlan(world_size, micro, total // (micro * world_size), total, cfg.model.seq_length)


# %% [markdown]
# The plans for the loaded config on one to eight GPUs; a world size that does not divide the global batch
# gets a message naming the micro-batches that would work.

# %%
for n in (1, 2, 4, 8):
    try:
        p = batch_plan(cfg, n)
        print(f"{n} GPU(s): micro-batch {p.micro_batch_size} x accumulation {p.gradient_accumulation_steps} "
              f"x {n} = {p.global_batch_size} sequences, {p.tokens_per_process:,} tokens per process per step")
    except ConfigError as e:
        print(f"{n} GPU(s): {e}")

# %%
#| hide
_c = load_config(text="num-layers: 2\nhidden-size: 64\nnum-attention-heads: 4\nseq-length: 128\n"
              "train_micro_batch_size_per_gpu: 4\ntrain_batch_size: 32\n")
test_eq(batch_plan(_c, 1).gradient_accumulation_steps, 8)
test_eq(batch_plan(_c, 4).gradient_accumulation_steps, 2)
test_eq(batch_plan(_c, 8).gradient_accumulation_steps, 1)
test_eq(batch_plan(_c, 8).tokens_per_process, 4 * 128)
test_eq(batch_plan(_c, 16, micro_batch_size=2).gradient_accumulation_steps, 1)
test_fail(lambda: batch_plan(_c, 3), contains="not a multiple")
test_fail(lambda: batch_plan(_c, 16), contains="[1, 2]")


# %% [markdown]
# ### Launching with torchrun
#
# `torchrun` starts one process per GPU and gives each `RANK`, `LOCAL_RANK` and `WORLD_SIZE` in its
# environment; chapter 00b's `init_distributed` reads them, joins the process group (NCCL on GPUs,
# gloo on CPUs), wraps the model in `DistributedDataParallel` and lets each rank draw every
# `world_size`-th micro-batch of the global batch. Only rank 0 writes checkpoints and the W&B run.
# On one node `--standalone` sets up the rendezvous itself; on several nodes every node runs the same
# command with its own `--node_rank`, pointing at node 0's address.

# %%
#| export
def torchrun_command(config: str, nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
                     master_addr: str = "MASTER_HOST", master_port: int = 29500, resume: bool = False,
                     overrides: dict | None = None) -> list[str]:
    "The `torchrun` command that trains `config` with the course's loop on `nnodes` x `nproc_per_node` processes."
    if nnodes == 1: launch = ["torchrun", "--standalone", f"--nproc_per_node={nproc_per_node}"]
    else:
        launch = ["torchrun", f"--nnodes={nnodes}", f"--nproc_per_node={nproc_per_node}", f"--node_rank={node_rank}",
                  f"--master_addr={master_addr}", f"--master_port={master_port}"]
    sets = [a for k, v in (overrides or {}).items() for a in ("--set", f"{k}={v}")]
    return launch + ["-m", "neoxcourse.cli", "train", str(config), *sets] + (["--resume"] if resume else [])


# %%
print(" ".join(torchrun_command("configs/t4.yml", 4)))
for rank in (0, 1):
    print(" ".join(torchrun_command("configs/t4.yml", 8, nnodes=2, node_rank=rank, master_addr="10.0.0.1")))

# %%
#| hide
test_eq(torchrun_command("c.yml", 2)[:3], ["torchrun", "--standalone", "--nproc_per_node=2"])
test_eq(torchrun_command("c.yml", 2, resume=True, overrides={"train-iters": 5})[-5:],
        ["train", "c.yml", "--set", "train-iters=5", "--resume"])
test_eq("--node_rank=1" in torchrun_command("c.yml", 8, nnodes=2, node_rank=1), True)

# %% [markdown]
# On a Slurm cluster, start one `torchrun` per node with `srun` and let torchrun's c10d rendezvous find the
# nodes, instead of numbering them by hand:
#
# ```bash
# srun --nodes=2 --ntasks-per-node=1 torchrun --nnodes=2 --nproc_per_node=8 --rdzv_id=$SLURM_JOB_ID \
#     --rdzv_backend=c10d --rdzv_endpoint=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1):29500 \
#     -m neoxcourse.cli train configs/t4.yml
# ```
#
# Three things to arrange across nodes. The data: global rank 0 prepares it while the others wait, then they
# read it, so `data/` must be on a shared filesystem, or run `neoxcourse data prepare CONFIG` on every node
# first. The checkpoints: only rank 0 writes them, and every rank reads the newest on `--resume`, so `save`
# must be shared too. And W&B: only rank 0 logs, so one run appears per job, whatever its size.

# %% [markdown]
# ### Data parallelism computes the same gradient
#
# Why this is exact, not an approximation: the loss of a global batch is the mean of its micro-batch
# losses, and the gradient of a mean is the mean of the gradients. DDP all-reduces (sums, then divides by the
# world size) each rank's gradient during backward, so two ranks that each see half the batch end with the
# gradient one process computes on the whole batch. We check that on the CPU with two gloo processes under
# `torchrun`: a small script builds the model with the same seed on both ranks, each rank takes its half of
# a fixed batch in two micro-batches and takes one step of the course's `train_step` (SGD at lr 1, so the
# weights move by exactly minus the gradient), and rank 0 compares that step with one process's step on the
# whole batch.

# %%
#| export
DDP_CHECK_SCRIPT = '''
import json, sys
import torch
from torch.nn.parallel import DistributedDataParallel
from neoxcourse.config import load_config
from neoxcourse.device import init_distributed
from neoxcourse.model import GPTNeoX
from neoxcourse.train import train_step
job = init_distributed("cpu")                                     # gloo, from torchrun's RANK / WORLD_SIZE
rank, world = job.rank, job.world_size
mcfg = load_config(sys.argv[1]).model
tokens = torch.randint(0, mcfg.vocab_size, (4 * world, 33), generator=torch.Generator().manual_seed(1))
def one_step(net, model, batch, n_micro: int) -> list:
    "The course's training step with SGD at lr 1 and no clipping: the weights move by minus the gradient."
    start = [p.detach().clone() for p in model.parameters()]
    micro = [(b[:, :-1], b[:, 1:]) for b in batch.chunk(n_micro)]
    train_step(net, torch.optim.SGD(model.parameters(), lr=1.0), torch.amp.GradScaler("cpu", enabled=False), micro)
    return [s - p.detach() for s, p in zip(start, model.parameters())]
torch.manual_seed(0)
model = GPTNeoX(mcfg)
got = one_step(DistributedDataParallel(model), model, tokens.chunk(world)[rank], 2)  # its share, 2 micro-batches
if rank == 0:
    torch.manual_seed(0)
    single = GPTNeoX(mcfg)
    want = one_step(single, single, tokens, 1)                    # one process, the whole batch at once
    diff = max((a - b).abs().max().item() for a, b in zip(got, want))
    scale = max(b.abs().max().item() for b in want)
    json.dump({"world_size": world, "max_abs_diff": diff, "max_abs_grad": scale}, open(sys.argv[2], "w"))
job.close()
'''

def check_ddp_gradients(config_path, nproc: int = 2, timeout: float = 300) -> dict:
    "Run DDP_CHECK_SCRIPT under torchrun (gloo, CPU): the largest gradient difference from one process."
    import os, subprocess, sys, tempfile
    with tempfile.TemporaryDirectory() as d:
        script, out = Path(d) / "ddp_check.py", Path(d) / "result.json"
        script.write_text(DDP_CHECK_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc_per_node={nproc}", str(script), str(Path(config_path).resolve()), str(out)],
                           capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0: raise RuntimeError(f"torchrun failed ({r.returncode}):\n{r.stderr[-2000:]}")
        return json.loads(out.read_text())


# %%
t0 = time.time()
ddp = check_ddp_gradients(cfg.path)
print(f"{ddp['world_size']} processes: largest gradient difference {ddp['max_abs_diff']:.2e} "
      f"(largest gradient {ddp['max_abs_grad']:.2e}) in {time.time() - t0:.1f} s")

# %%
#| hide
test_eq(ddp["world_size"], 2)
assert ddp["max_abs_diff"] < 1e-5 * max(1.0, ddp["max_abs_grad"]), ddp

# %% [markdown]
# The difference is float32 rounding: summing in another order. The course's own DDP test (chapter 05)
# goes further and trains the same steps with one and two processes. On GPUs, the same script runs under
# NCCL; the launch recipes above are all that changes.
#
# When the course loop on one node is not enough (a model that needs tensor or pipeline parallelism,
# ZeRO-sharded optimizer states, fused kernels, or dozens of nodes), the tool built for it is EleutherAI's
# GPT-NeoX, the codebase the course's config format comes from.

# %% [markdown]
# ## Part 2: handing the recipe to EleutherAI GPT-NeoX
#
# GPT-NeoX needs three things: a YAML config, the training data as Megatron's memory-mapped indexed
# dataset (`.bin` + `.idx`), and a tokenizer. The course already writes configs in GPT-NeoX's format; the
# export keeps the keys GPT-NeoX defines, translates the few values it spells differently, and refuses the
# ones it has no equivalent for, instead of training something else silently.
#
# ### The data format
#
# `{prefix}_text_document.bin` holds the token ids of every document, back to back. The `.idx` file says
# where each begins (layout from GPT-NeoX's `megatron/data/indexed_dataset.py`):
#
# | bytes | content |
# | --- | --- |
# | 9 | magic `MMIDIDX\x00\x00` |
# | 8 | version, `<Q` = 1 |
# | 1 | dtype code, `<B`: 8 = uint16 (vocabulary under 65,500), 4 = int32 |
# | 8 | number of sequences N, `<Q` |
# | 8 | length of the document index, `<Q` (N + 1 here) |
# | 4N | int32 sizes: tokens in each sequence |
# | 8N | int64 pointers: byte offset of each sequence in `.bin` |
# | 8(N+1) | int64 document index: which sequences start a document, from 0 |
#
# GPT-NeoX's `tools/datasets/preprocess_data.py --append-eod` writes one sequence per document, its last
# token the end-of-text id; so do we, one document per source file.

# %%
#| export
INDEX_MAGIC = b"MMIDIDX\x00\x00"
NEOX_DTYPES = {8: np.dtype(np.uint16), 4: np.dtype(np.int32)}

def neox_token_dtype(vocab_size: int) -> tuple[np.dtype, int]:
    "GPT-NeoX's choice of token type and its code: uint16 (8) under 65,500 ids, else int32 (4)."
    return (NEOX_DTYPES[8], 8) if vocab_size < 65500 else (NEOX_DTYPES[4], 4)

def index_header(code: int, n_sequences: int, n_doc_index: int) -> bytes:
    "The 34-byte head of an `.idx` file."
    return INDEX_MAGIC + struct.pack("<Q", 1) + struct.pack("<B", code) + struct.pack("<QQ", n_sequences, n_doc_index)

def write_indexed_dataset(prefix, documents, vocab_size: int) -> dict:
    "Write `documents` (arrays of token ids) as GPT-NeoX's `{prefix}.bin` and `{prefix}.idx`, one sequence each."
    prefix = Path(prefix); prefix.parent.mkdir(parents=True, exist_ok=True)
    dtype, code = neox_token_dtype(vocab_size)
    bin_path, idx_path = Path(f"{prefix}.bin"), Path(f"{prefix}.idx")
    sizes = []
    with open(bin_path.with_name(bin_path.name + ".tmp"), "wb") as f:   # 1. tokens, document after document
        for doc in documents:
            doc = np.asarray(doc)
            if doc.size == 0: continue                                    # GPT-NeoX skips empty documents too
            if doc.min() < 0 or doc.max() >= vocab_size:
                raise ValueError(f"{prefix}: token id {int(doc.max())} outside the vocabulary of {vocab_size}")
            f.write(doc.astype(dtype).tobytes())
            sizes.append(len(doc))
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.size and sizes.max() >= 2**31: raise ValueError(f"{prefix}: a document of {sizes.max()} tokens")
    pointers = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) * dtype.itemsize  # 2. byte offsets
    doc_index = np.arange(len(sizes) + 1, dtype=np.int64)                  # every sequence starts a document
    with open(idx_path.with_name(idx_path.name + ".tmp"), "wb") as f:    # 3. the index
        f.write(index_header(code, len(sizes), len(doc_index)))
        f.write(sizes.astype(np.int32).tobytes()); f.write(pointers.tobytes()); f.write(doc_index.tobytes())
    bin_path.with_name(bin_path.name + ".tmp").replace(bin_path)          # 4. rename: data first, index last
    idx_path.with_name(idx_path.name + ".tmp").replace(idx_path)
    return {"prefix": str(prefix), "documents": int(len(sizes)), "tokens": int(sizes.sum()), "dtype": dtype.name}


# %% [markdown]
# A reader is a dozen lines with `numpy.memmap`: documents stay on disk and are sliced on demand, as GPT-NeoX
# does. We use it to look at what we wrote; the tests (`tests/test_neox_export.py`) use a second reader,
# written separately from the layout table, so a shared mistake cannot pass.

# %%
#| export
class IndexedDataset:
    "GPT-NeoX's mmap indexed dataset, read: `len(ds)` sequences, `ds[i]` the token ids of sequence i."
    def __init__(self, prefix):
        self.prefix = str(prefix)
        head = Path(f"{prefix}.idx").read_bytes()
        if head[:9] != INDEX_MAGIC: raise ValueError(f"{prefix}.idx: not a GPT-NeoX mmap index (magic {head[:9]!r})")
        version, = struct.unpack("<Q", head[9:17])
        if version != 1: raise ValueError(f"{prefix}.idx: index version {version}, expected 1")
        self.dtype = NEOX_DTYPES[head[17]]
        n, n_doc = struct.unpack("<QQ", head[18:34])
        self.sizes = np.frombuffer(head, np.int32, n, 34)
        self.pointers = np.frombuffer(head, np.int64, n, 34 + 4 * n)
        self.doc_index = np.frombuffer(head, np.int64, n_doc, 34 + 12 * n)
        self.tokens = np.memmap(f"{prefix}.bin", dtype=self.dtype, mode="r")

    def __len__(self): return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        start = self.pointers[i] // self.dtype.itemsize
        return self.tokens[start:start + self.sizes[i]]


# %%
with tempfile.TemporaryDirectory() as d:
    info = write_indexed_dataset(Path(d) / "tiny_text_document", [[5, 6, 0], [7, 0], [1, 2, 3, 4, 0]], 8192)
    ds = IndexedDataset(Path(d) / "tiny_text_document")
    print(info, [ds[i].tolist() for i in range(len(ds))], ds.pointers.tolist(), ds.doc_index.tolist())
    test_eq([ds[i].tolist() for i in range(len(ds))], [[5, 6, 0], [7, 0], [1, 2, 3, 4, 0]])
    test_eq((ds.pointers.tolist(), ds.doc_index.tolist(), ds.dtype), ([0, 6, 10], [0, 1, 2, 3], np.uint16))
    test_eq(Path(d, "tiny_text_document.idx").stat().st_size, 34 + 3 * 4 + 3 * 8 + 4 * 8)
    test_eq(Path(d, "tiny_text_document.bin").read_bytes()[:4], b"\x05\x00\x06\x00")     # little-endian uint16
    write_indexed_dataset(Path(d) / "big_text_document", [[70000, 1]], 100000)
    test_eq(IndexedDataset(Path(d) / "big_text_document").dtype, np.int32)
    test_eq(IndexedDataset(Path(d) / "big_text_document")[0].tolist(), [70000, 1])
    test_fail(lambda: write_indexed_dataset(Path(d) / "bad", [[9000]], 8192), contains="outside the vocabulary")


# %% [markdown]
# ### Documents from the prepared corpus
#
# Chapter 02 writes each split as one flat token stream, every file followed by `<|endoftext|>`, and lists
# the files in order with their token counts in `files.jsonl`. Those counts give the exact file boundaries;
# cutting at end-of-text ids is the fallback, and it can be wrong in one case worth knowing: a file whose
# text contains the string `<|endoftext|>` (tokenizer code does) is encoded with the special id inside it.

# %%
#| export
def split_at_eot(tokens, eot_id: int) -> list[np.ndarray]:
    "Cut a flat token stream after every end-of-text id: one document each, its end-of-text id kept."
    tokens = np.asarray(tokens)
    docs = np.split(tokens, np.flatnonzero(tokens == eot_id) + 1)
    return [d for d in docs if len(d)]

def prepared_documents(prepared, split: str = "train") -> list[np.ndarray]:
    "The documents (one per source file) of a prepared split: bounds from files.jsonl, else end-of-text ids."
    out_dir, meta = Path(prepared.out_dir), prepared.meta
    path = prepared.train_path if split == "train" else prepared.val_path
    tokens = np.memmap(path, dtype=meta["dtype"], mode="r")
    manifest = out_dir / "files.jsonl"
    if manifest.exists():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        lengths = [r["tokens"] + 1 for r in rows if r["split"] == split]   # + its end-of-text id
        if sum(lengths) == len(tokens):
            return np.split(tokens, np.cumsum(lengths)[:-1]) if lengths else []
        warnings.warn(f"{manifest}: token counts do not add up to {path.name}; cutting at end-of-text ids")
    return split_at_eot(tokens, meta["eot_id"])


# %%
test_eq([d.tolist() for d in split_at_eot([4, 5, 0, 6, 0, 7], 0)], [[4, 5, 0], [6, 0], [7]])
test_eq(split_at_eot([], 0), [])

# %% [markdown]
# ### The config: canonical GPT-NeoX keys only
#
# `to_neox_dict(cfg, course=False)` (appendix A1) already writes GPT-NeoX's keys without the `neoxcourse:`
# block. Five things remain, each from reading GPT-NeoX's source (`megatron/training.py`,
# `megatron/neox_arguments`):
#
# 1. **Optimizer.** GPT-NeoX builds `Adam` (apex or DeepSpeed `FusedAdam`, decoupled weight decay by
#    default: AdamW), `lion`, `sgd` (through `mup`), `sm3`, `madgrad_wd`, and CPU and 1-bit Adams, calling
#    `Optimizer(params, weight_decay=weight-decay, **optimizer.params)`. So `weight_decay` must not also be in
#    `params` (a duplicate keyword), and each type gets only the keywords its class takes (Lion has no
#    `eps`). Muon, Adafactor and schedule-free have no GPT-NeoX counterpart: the export refuses them.
# 2. **Schedule.** GPT-NeoX's `lr-decay-style` is constant, linear, cosine or exponential. The course's
#    warmup-stable-decay and inverse square root are not among them: the export refuses, or with
#    `unsupported="closest"` writes cosine and says so.
# 3. **Vocabulary.** GPT-NeoX pads the tokenizer's size itself (`make_vocab_size_divisible_by`, 128) and
#    overwrites `padded-vocab-size`; we leave the key out and check that its padding gives the course's size.
# 4. **Data and tokenizer.** `train_data_paths`, `valid_data_paths` and `test_data_paths` (GPT-NeoX asserts
#    all three or none; the test split reuses validation), `tokenizer_type: HFTokenizer`, and `vocab_file`
#    pointing at a `tokenizer.json` whose `<|endoftext|>` is the end-of-document id.
# 5. **Parallelism and checkpoints.** `pipe_parallel_size: 1` and `model_parallel_size: 1` are written out
#    as in GPT-NeoX's own configs (its checkpoint converter reads both and fails without them). GPT-NeoX writes
#    DeepSpeed checkpoints, not the course's: they go to their own folder.

# %%
#| export
NEOX_OPTIMIZERS = {  # course type -> (GPT-NeoX type, the params its optimizer class takes, fixed params)
    "adamw": ("Adam", ("lr", "betas", "eps"), {}),
    "adam": ("Adam", ("lr", "betas", "eps"), {"adam_w_mode": False}),   # L2-coupled decay, as torch's Adam
    "lion": ("lion", ("lr", "betas"), {}),
    "sgd": ("sgd", ("lr", "momentum", "dampening", "nesterov"), {}),
}
CLOSEST_SCHEDULE = "cosine"   # GPT-NeoX's reference configs use it; WSD matches it at best (FACTS)

def _find(d: dict, key: str):
    "The key of `d` spelling `key` (any of '-' or '_'), or None."
    return next((k for k in d if canonical(k) == canonical(key)), None)

def _pop(d: dict, key: str, default=None):
    k = _find(d, key)
    return d.pop(k) if k is not None else default

def neox_optimizer(opt_cfg) -> tuple[dict, list[str]]:
    "GPT-NeoX's `optimizer: {type, params}` for the course's optimizer config, and notes on what changed."
    kind = opt_cfg.type.lower()
    if kind not in NEOX_OPTIMIZERS:
        allowed = ", ".join(neox_arguments()["optimizer_type"].allowed)
        raise ConfigError(f"optimizer '{opt_cfg.type}' has no GPT-NeoX counterpart (GPT-NeoX builds {allowed}); "
                          f"export a run of the same recipe with --set optimizer.type=adamw and an AdamW lr")
    name, keep, fixed = NEOX_OPTIMIZERS[kind]
    given = {"lr": opt_cfg.lr, "betas": list(opt_cfg.betas), "eps": opt_cfg.eps, **opt_cfg.params}
    params = {k: v for k, v in given.items() if k in keep} | fixed
    dropped = sorted(k for k in given if k not in keep and k != "weight_decay")
    notes = [f"optimizer {opt_cfg.type} -> GPT-NeoX '{name}'"
             + (" (FusedAdam with decoupled weight decay: AdamW)" if kind == "adamw" else "")
             + (" (MuSGD: needs `pip install mup` next to GPT-NeoX)" if kind == "sgd" else "")]
    if dropped: notes.append(f"optimizer params not taken by GPT-NeoX's {name}: {', '.join(dropped)} (left out)")
    return {"type": name, "params": params}, notes

def neox_schedule(style: str, unsupported: str = "error") -> tuple[str, list[str]]:
    "GPT-NeoX's `lr-decay-style` for a course schedule name; refuses (or maps to cosine) the ones it lacks."
    from neoxcourse.schedules import STYLE_ALIASES   # chapter 07's other spellings: cos, rsqrt, trapezoidal
    style = STYLE_ALIASES.get(style, style)
    allowed = neox_arguments()["lr_decay_style"].allowed
    if style in allowed: return style, []
    if unsupported == "closest":
        msg = f"lr-decay-style '{style}' is not a GPT-NeoX schedule; wrote '{CLOSEST_SCHEDULE}' instead"
        warnings.warn(msg)
        return CLOSEST_SCHEDULE, [msg]
    raise ConfigError(f"lr-decay-style '{style}' is not a GPT-NeoX schedule (it has {', '.join(allowed)}); "
                      f"export with --set lr-decay-style=cosine, or export_neox(..., unsupported='closest')")


# %%
from neoxcourse.config import OptimizerConfig
test_eq(neox_optimizer(OptimizerConfig("adamw", 1e-3, (0.9, 0.95), 1e-8, 0.1))[0],
        {"type": "Adam", "params": {"lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8}})
test_eq(neox_optimizer(OptimizerConfig("lion", 1e-4, (0.9, 0.99), 1e-8, 1.0))[0]["params"], {"lr": 1e-4, "betas": [0.9, 0.99]})
test_eq(neox_optimizer(OptimizerConfig("sgd", 0.1, params={"momentum": 0.9, "nesterov": True}))[0]["params"],
        {"lr": 0.1, "momentum": 0.9, "nesterov": True})
test_eq(neox_optimizer(OptimizerConfig("adam"))[0]["params"]["adam_w_mode"], False)
test_fail(lambda: neox_optimizer(OptimizerConfig("muon", 0.02)), contains="no GPT-NeoX counterpart")
test_eq(neox_schedule("cosine"), ("cosine", []))
test_eq(neox_schedule("cos"), ("cosine", []))
test_fail(lambda: neox_schedule("wsd"), contains="--set lr-decay-style=cosine")
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    test_eq(neox_schedule("wsd", "closest")[0], "cosine")


# %% [markdown]
# Every key and every constrained value of the result is then checked against the table of GPT-NeoX
# arguments that appendix A1 reads (`neoxcourse/neox_args.tsv`): a key GPT-NeoX does not define would make
# it stop at start-up, on a cluster, after the queue.

# %%
#| export
def check_neox_config(d: dict) -> list[str]:
    "Problems that would stop GPT-NeoX: keys it does not define, values outside its allowed lists."
    args, problems = neox_arguments(), []
    for key, value in d.items():
        name = canonical(key)
        if name not in args:
            problems.append(f"'{key}' is not a GPT-NeoX key"); continue
        arg = args[name]
        if arg.type.startswith("Literal") and arg.allowed and isinstance(value, str) and value not in arg.allowed:
            problems.append(f"'{key}: {value}' is not one of {', '.join(arg.allowed)}")
    opt = d.get(_find(d, "optimizer") or "", None)
    if isinstance(opt, dict):
        kinds = args["optimizer_type"].allowed
        if str(opt.get("type", "")).lower() not in kinds:
            problems.append(f"optimizer type '{opt.get('type')}' is not one of {', '.join(kinds)}")
        if "weight_decay" in (opt.get("params") or {}):
            problems.append("optimizer.params.weight_decay duplicates 'weight-decay' (GPT-NeoX passes both)")
    return problems


# %%
test_eq(check_neox_config({"num-layers": 2, "lr-decay-style": "cosine", "optimizer": {"type": "Adam", "params": {}}}), [])
test_eq(len(check_neox_config({"num-layerz": 2, "lr-decay-style": "wsd",
                               "optimizer": {"type": "muon", "params": {"weight_decay": 0.1}}})), 4)

# %% [markdown]
# ### The batch, for the number of GPUs you will launch on
#
# GPT-NeoX reads three batch keys and, once all three are known, asserts (`NeoXArgs.calculate_derived` at
# the commit checked in `bench/results/neox_check.json`)
#
# $$\texttt{train\_batch\_size} = \texttt{train\_micro\_batch\_size\_per\_gpu} \times
# \texttt{gradient\_accumulation\_steps} \times \text{data-parallel GPUs}.$$
#
# It does **not** derive the accumulation from `train_batch_size`: a missing `gradient_accumulation_steps`
# defaults to 1, so a config with only the other two loads on exactly one number of GPUs (the T4 recipe,
# 64 = 32 x 1 x 2, only on two). The export therefore writes all three for the number of GPUs you name
# (`num_gpus`, default 1), and writes `num_gpus` too, which DeepSpeed's launcher reads. Where the course's
# micro-batch does not fit (64 sequences on 8 GPUs leave 8 each), it takes the largest micro-batch that
# divides, which only lowers memory: the global batch, the recipe, stays the same.

# %%
#| export
BATCH_KEYS = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps")

def neox_batch(cfg, num_gpus: int = 1, model_parallel: int = 1,
               pipe_parallel: int = 1) -> tuple[dict, list[str]]:
    "GPT-NeoX's batch keys for the course's global batch on `num_gpus` GPUs of one node, and notes."
    total, micro = cfg.training.global_batch_size, cfg.training.micro_batch_size
    per_replica = model_parallel * max(pipe_parallel, 1)               # GPUs holding one model copy
    if num_gpus < 1 or num_gpus % per_replica or total % (num_gpus // per_replica):
        raise ConfigError(f"num_gpus {num_gpus}: the global batch of {total} sequences must split "
                          f"evenly over the data-parallel GPUs (num_gpus / {per_replica}); use a number "
                          f"that divides it")
    dp = num_gpus // per_replica
    fit = max(m for m in range(1, micro + 1) if total % (m * dp) == 0)  # largest micro-batch that divides
    acc = batch_plan(cfg, dp, fit).gradient_accumulation_steps
    notes = [] if fit == micro else [f"micro-batch {micro} x {dp} GPUs does not divide the global batch "
                                     f"{total}: wrote micro-batch {fit} x accumulation {acc}"]
    return {"train_batch_size": total, "train_micro_batch_size_per_gpu": fit,
            "gradient_accumulation_steps": acc, "num_gpus": num_gpus}, notes


# %% [markdown]
# The T4 recipe (64 sequences, micro-batch 32) on one, two and eight GPUs, and GPT-NeoX's own check on each
# (`calculate_batch_parameters` keeps all three values when all three are given, then asserts the product):

# %%
from neoxcourse.config import project_root
def neox_batch_check(batch: dict, dp_world_size: int) -> bool:
    "GPT-NeoX's `check_batch_parameters`: the global batch is micro-batch x accumulation x GPUs."
    return batch["train_batch_size"] == (batch["train_micro_batch_size_per_gpu"]
                                         * batch["gradient_accumulation_steps"] * dp_world_size)

_t4 = load_config(project_root() / "configs" / "t4.yml")
for n in (1, 2, 8):
    b, why = neox_batch(_t4, n)
    print(f"{n} GPU(s): " + ", ".join(f"{k} {v}" for k, v in b.items())
          + f"; GPT-NeoX accepts: {neox_batch_check(b, n)}", *why)
test_eq([neox_batch(_t4, n)[0]["gradient_accumulation_steps"] for n in (1, 2, 8)], [2, 1, 1])
test_eq([neox_batch(_t4, n)[0]["train_micro_batch_size_per_gpu"] for n in (1, 2, 4, 8, 64)],
        [32, 32, 16, 8, 1])
test_eq(all(neox_batch_check(neox_batch(_t4, n)[0], n) for n in (1, 2, 4, 8, 16, 32, 64)), True)
test_eq(neox_batch_check({"train_batch_size": 64, "train_micro_batch_size_per_gpu": 32,
                          "gradient_accumulation_steps": 1}, 1), False)   # the old export on one GPU
test_eq(neox_batch(_t4, 4, model_parallel=2)[0]["gradient_accumulation_steps"], 1)   # 2 data-parallel copies
test_fail(lambda: neox_batch(_t4, 3), contains="divides it")
test_fail(lambda: neox_batch(_t4, 3, model_parallel=2), contains="num_gpus 3")


# %%
#| export
def neox_config(cfg, train_prefix: str, valid_prefix: str, vocab_file: str, save_dir: str,
                unsupported: str = "error", tokenizer_size: int | None = None,
                num_gpus: int | None = None) -> tuple[dict, list[str]]:
    "The GPT-NeoX config for `cfg` on `num_gpus` GPUs (else the config's, else 1), with paths and notes."
    if unsupported not in ("error", "closest"): raise ValueError("unsupported must be 'error' or 'closest'")
    d = to_neox_dict(cfg, course=False)
    from_config = _pop(d, "num_gpus")                     # `--set num_gpus=8` on the command line
    num_gpus = num_gpus or from_config or 1
    # 1. optimizer and schedule
    d[_find(d, "optimizer")], notes = neox_optimizer(cfg.optimizer)
    style, more = neox_schedule(cfg.schedule.lr_decay_style, unsupported)
    d[_find(d, "lr_decay_style")] = style
    notes += more
    # 2. vocabulary: GPT-NeoX pads the tokenizer's size itself
    _pop(d, "padded_vocab_size")
    if tokenizer_size is not None and pad_vocab(tokenizer_size, 128) != cfg.model.vocab_size:
        notes.append(f"GPT-NeoX pads the tokenizer's {tokenizer_size} ids to {pad_vocab(tokenizer_size, 128)} "
                     f"rows; the course's model has {cfg.model.vocab_size}")
    if cfg.model.intermediate_size == 4 * cfg.model.hidden_size: _pop(d, "intermediate_size")  # GPT-NeoX's default
    # 3. parallelism written out, as GPT-NeoX's own configs do (its checkpoint converter reads both), and the
    #    batch keys for `num_gpus` GPUs: GPT-NeoX asserts global = micro x accumulation x data-parallel GPUs
    for key in ("pipe_parallel_size", "model_parallel_size"):
        if _find(d, key) is None: d[key] = 1
    for key in BATCH_KEYS: _pop(d, key)
    batch, more = neox_batch(cfg, int(num_gpus), d[_find(d, "model_parallel_size")],
                             d[_find(d, "pipe_parallel_size")])
    d.update(batch)
    notes += more
    # 4. checkpoints: DeepSpeed's format, in their own folder
    for key in ("save", "load"): _pop(d, key)
    d["save"] = d["load"] = str(save_dir)
    # 5. data and tokenizer
    d.update({"train_data_paths": [str(train_prefix)], "valid_data_paths": [str(valid_prefix)],
              "test_data_paths": [str(valid_prefix)], "train_data_weights": [1.0], "valid_data_weights": [1.0],
              "test_data_weights": [1.0], "data_impl": "mmap", "tokenizer_type": "HFTokenizer",
              "vocab_file": str(vocab_file)})
    problems = check_neox_config(d)
    if problems: raise ConfigError("the GPT-NeoX config would not load: " + "; ".join(problems))
    return d, notes


# %% [markdown]
# The loaded config, translated with placeholder paths; every key below is one GPT-NeoX defines.

# %%
neox_cfg, notes = neox_config(cfg, "/data/train_text_document", "/data/valid_text_document",
                              "/data/tokenizer.json", "/checkpoints/neox")
print("\n".join(notes))
print(yaml.safe_dump(neox_cfg, sort_keys=False, default_flow_style=None))

# %%
#| hide
test_eq(check_neox_config(neox_cfg), [])
test_eq(all(canonical(k) in neox_arguments() for k in neox_cfg), True)
test_eq(neox_cfg["tokenizer_type"], "HFTokenizer")
test_eq("weight_decay" in neox_cfg["optimizer"]["params"], False)
test_eq(_find(neox_cfg, "padded_vocab_size"), None)
test_eq((neox_cfg["pipe_parallel_size"], neox_cfg["model_parallel_size"]), (1, 1))
test_eq(neox_cfg["train_batch_size"], cfg.training.global_batch_size)
test_eq(neox_batch_check(neox_cfg, neox_cfg["num_gpus"]), True)   # GPT-NeoX's assertion, on the default one GPU
test_eq(neox_config(cfg, "a", "b", "c", "d", num_gpus=2)[0]["num_gpus"], 2)
test_eq(neox_config(load_config(cfg.path, {**overrides, "num_gpus": 2}), "a", "b", "c", "d")[0]["num_gpus"], 2)
_wsd = load_config(cfg.path, {**overrides, "lr-decay-style": "wsd"})
test_fail(lambda: neox_config(_wsd, "a", "b", "c", "d"), contains="not a GPT-NeoX schedule")
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    test_eq(neox_config(_wsd, "a", "b", "c", "d", unsupported="closest")[0]["lr-decay-style"], "cosine")
test_fail(lambda: neox_config(load_config(cfg.path, {**overrides, "optimizer.type": "muon"}), "a", "b", "c", "d"),
          contains="optimizer.type=adamw")


# %% [markdown]
# ### The whole export
#
# `export_neox(cfg, out_dir)` translates the config first (a refusal costs nothing), prepares the data
# (chapter 02 reuses finished work), writes both splits, copies the tokenizer and checks that its
# end-of-text id is the one in the data, then writes `neox.yml` and a summary `export.json`. Paths in
# `neox.yml` are absolute: if you move the folder to a cluster, keep its layout and rewrite the prefix with
# one `sed`. The command line runs the same function: `neoxcourse export-neox CONFIG OUT`.

# %%
#| export
@dataclass
class NeoXExport:
    "What `export_neox` wrote."
    out_dir: Path
    config: Path
    train_prefix: Path
    valid_prefix: Path
    vocab_file: Path
    splits: dict = field(default_factory=dict)   # split -> {documents, tokens, dtype}
    notes: list = field(default_factory=list)

    def __str__(self):
        return (f"{self.config} with " + ", ".join(f"{k} {v['documents']} documents ({v['tokens']:,} tokens)"
                                                  for k, v in self.splits.items()) + f" and {self.vocab_file}")

def launch_command(config_path, num_gpus: int) -> str:
    "The shell line that trains an exported config on `num_gpus` GPUs of one machine, in GPT-NeoX."
    # NeoXArgs counts the GPUs it can see (torch.cuda.device_count()) and asserts the batch against that count
    devices = ",".join(str(i) for i in range(num_gpus))
    return f"CUDA_VISIBLE_DEVICES={devices} python ./deepy.py train.py {config_path}"

def export_neox(cfg, out_dir, unsupported: str = "error", prepared=None,
                num_gpus: int | None = None) -> NeoXExport:
    "Write `neox.yml` for `num_gpus` GPUs, the data as `.bin/.idx` and the tokenizer into `out_dir`."
    from neoxcourse.tokenizer import merges_as_strings
    out = Path(out_dir).expanduser().resolve()
    train_prefix, valid_prefix = out / "data" / "train_text_document", out / "data" / "valid_text_document"
    vocab_file = out / "tokenizer" / "tokenizer.json"
    neox_config(cfg, train_prefix, valid_prefix, vocab_file, out / "checkpoints", unsupported,  # 1. fail early
                num_gpus=num_gpus)
    if prepared is None:                                                                          # 2. data
        from neoxcourse.tokenizer import prepare
        prepared = prepare(cfg)
    tok_dir = Path(prepared.meta.get("tokenizer", {}).get("path") or cfg.resolve(cfg.tokenizer.path))
    if not (tok_dir / "tokenizer.json").exists():
        raise ConfigError(f"{tok_dir}: no tokenizer.json; GPT-NeoX's HFTokenizer reads that file")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))                                     # 3. tokenizer
    eot = tok.token_to_id("<|endoftext|>")
    if eot != prepared.meta["eot_id"]:
        raise ConfigError(f"{tok_dir}: <|endoftext|> is id {eot}, the data was written with {prepared.meta['eot_id']}; "
                          f"prepare the data again with this tokenizer")
    size = tok.get_vocab_size()
    config, notes = neox_config(cfg, train_prefix, valid_prefix, vocab_file, out / "checkpoints",
                                unsupported, size, num_gpus)
    if tok.token_to_id("<|padding|>") is None: notes.append("the tokenizer has no <|padding|> token")
    vocab_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tok_dir / "tokenizer.json", vocab_file)
    merges_as_strings(vocab_file)            # GPT-NeoX pins tokenizers < 0.19: merges as "a b" strings
    splits = {name: write_indexed_dataset(prefix, prepared_documents(prepared, split), size)     # 4. documents
              for name, prefix, split in (("train", train_prefix, "train"), ("valid", valid_prefix, "val"))}
    config_path = out / "neox.yml"                                                                # 5. config last
    config_path.write_text(f"# GPT-NeoX config exported by neoxcourse from {cfg.path or 'a config'}\n"
                           f"# train on {config['num_gpus']} GPU(s), from a GPT-NeoX checkout: "
                           f"{launch_command(config_path, config['num_gpus'])}\n"
                           f"# beside GPT-NeoX's requirements: pip install 'wandb<0.28' (deepy.py calls "
                           f"wandb.util.generate_id); its checkpoint converter needs transformers <= 5.13\n"
                           + yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
    (out / "export.json").write_text(json.dumps({"source_config": str(cfg.path), "data": str(prepared.out_dir),
                                                 "splits": splits, "notes": notes}, indent=1))
    for note in notes: print(f"note: {note}")
    print(f"exported to {out}: neox.yml, " + ", ".join(f"{k} {v['documents']} documents / {v['tokens']:,} tokens "
                                                        f"({v['dtype']})" for k, v in splits.items()))
    return NeoXExport(out, config_path, train_prefix, valid_prefix, vocab_file, splits, notes)


# %% [markdown]
# The export of the loaded config, into the config's data folder:

# %%
t0 = time.time()
exported = export_neox(cfg, cfg.resolve(cfg.data.output_dir) / "neox")
print(f"{time.time() - t0:.1f} s")
for p in sorted(exported.out_dir.rglob("*")):
    if p.is_file(): print(f"{p.relative_to(exported.out_dir)}  {p.stat().st_size:,} bytes")

# %% [markdown]
# Reading the export back: the first train document decodes to the start of a source file, ends with the
# end-of-text id, and the documents together hold every token of `train.bin`.

# %%
from neoxcourse.tokenizer import prepare
from tokenizers import Tokenizer
prepared = prepare(cfg, verbose=False)
ds = IndexedDataset(exported.train_prefix)
tok = Tokenizer.from_file(str(exported.vocab_file))
print(f"{len(ds)} documents; the first has {len(ds[0])} tokens and begins:")
print(tok.decode(ds[0][:40].tolist()))
flat = np.memmap(prepared.train_path, dtype=prepared.meta["dtype"], mode="r")
test_eq(int(ds.sizes.sum()), len(flat))
test_eq(np.array_equal(np.concatenate([ds[i] for i in range(len(ds))]), np.asarray(flat)), True)
test_eq(len(ds), prepared.meta["splits"]["train"]["files"])
test_eq(int(ds[0][-1]), prepared.meta["eot_id"])
test_eq(len(IndexedDataset(exported.valid_prefix)), prepared.meta["splits"]["val"]["files"])

# %%
#| hide
_written = read_yaml(exported.config.read_text())
test_eq(check_neox_config(_written), [])
test_eq(_written["vocab_file"], str(exported.vocab_file))
test_eq(Path(_written["train_data_paths"][0] + ".idx").exists(), True)
test_eq(json.loads((exported.out_dir / "export.json").read_text())["splits"]["train"]["documents"], len(ds))

# %% [markdown]
# ### Training on GPT-NeoX, with W&B
#
# Nothing below runs here (GPT-NeoX needs CUDA, DeepSpeed and a compiler). `bench/neox_check.py` runs
# everything GPT-NeoX does before it launches, with GPT-NeoX's own code at the commit the course's table of
# its arguments was read from: `NeoXArgs` as `deepy.py` and `train.py` load the exported YAML on 1, 2 and 8
# GPUs, its `MMapIndexedDataset` on the data, its `build_tokenizer` on the tokenizer, and its checkpoint
# converter (the results are shown below). On a GPU machine:
#
# ```bash
# git clone https://github.com/EleutherAI/gpt-neox && cd gpt-neox
# pip install -r requirements/requirements.txt -r requirements/requirements-wandb.txt "wandb<0.28"
# python ./megatron/fused_kernels/setup.py install      # optional: fused softmax kernels
# wandb login                                             # or WANDB_API_KEY in the environment
# # one GPU
# neoxcourse export-neox /path/to/neoxcourse/configs/t4.yml /scratch/neox-t4
# CUDA_VISIBLE_DEVICES=0 python ./deepy.py train.py /scratch/neox-t4/neox.yml
# # two GPUs, eight GPUs: name the count when exporting, then expose exactly that many
# neoxcourse export-neox /path/to/neoxcourse/configs/t4.yml /scratch/neox-t4-2 --set num_gpus=2
# CUDA_VISIBLE_DEVICES=0,1 python ./deepy.py train.py /scratch/neox-t4-2/neox.yml
# neoxcourse export-neox /path/to/neoxcourse/configs/t4.yml /scratch/neox-t4-8 --set num_gpus=8
# CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 python ./deepy.py train.py /scratch/neox-t4-8/neox.yml
# ```
#
# Why the GPU count matters: `deepy.py` counts the GPUs it can see (`torch.cuda.device_count()`, or the slots
# of a DeepSpeed hostfile) and asserts `train_batch_size = micro-batch x gradient_accumulation_steps x GPUs`
# with the three values written in the YAML. The export writes them for `num_gpus` (the T4 recipe: 32 x 2 x 1,
# 32 x 1 x 2, 8 x 1 x 8), so the global batch stays the course's; launch the same YAML on another count
# and GPT-NeoX stops at once with `64 != 32 * 2 * 2.0`: export again for that count. `num_gpus` is also
# written into the YAML, which tells DeepSpeed's launcher how many processes to start. For several nodes,
# list them in a DeepSpeed hostfile (`host1 slots=8` per line), add `hostfile: /path/hostfile` (and, with
# Slurm, `launcher: slurm`), and export with `num_gpus` set to the GPUs **per node** (GPT-NeoX multiplies it
# by the number of hosts) after checking the batch keys for the total with `neox_batch(cfg, total)`.
#
# **Versions beside GPT-NeoX.** At that commit GPT-NeoX pins transformers 4.38, hence tokenizers below 0.19,
# and numpy below 2. The exported `tokenizer.json` writes its merges as strings (chapter 03) so that this
# old tokenizers reads it. With `use_wandb: true`, `deepy.py` calls `wandb.util.generate_id`, which wandb
# removed in 0.28: install `wandb<0.28` next to GPT-NeoX (the course itself wants 0.19.9 or later).
#
# The exported config keeps `use_wandb`, `wandb_project` and `wandb_group`, so the GPT-NeoX run lands in the
# course's W&B project, with the metric names the course logs (`train/lm_loss`, `validation/lm_loss`,
# `runtime/tokens_per_sec`): a GPT-NeoX run and a course run overlay in the same W&B panel (appendix A5).
# One difference: `deepy.py` appends **two** random suffixes to the group (`t4_1x2y3z4w_5a6b7c8d`), so select
# its runs with a prefix, e.g. `api_runs(filters={"group": {"$regex": "^t4_"}})` in appendix A5's terms.
# Add `wandb_team: YOUR_ENTITY` for a team project.
#
# ### Reading a GPT-NeoX checkpoint back with `neoxcourse eval`
#
# GPT-NeoX saves DeepSpeed checkpoints in `save` (`global_step1000/`...). Its converter turns one into a
# Hugging Face `GPTNeoXForCausalLM` folder. Run it in GPT-NeoX's environment: it needs a transformers whose
# GPT-NeoX head is still called `embed_out` (GPT-NeoX pins 4.38; 5.14 and later renamed it `lm_head`, and the
# converter's `hf_model.embed_out` fails there):
#
# ```bash
# python ./tools/ckpts/convert_neox_to_hf.py --input_dir /scratch/neox-t4/checkpoints/global_step3200 \
#     --config_file /scratch/neox-t4/neox.yml --output_dir /scratch/neox-t4/hf --architecture neox
# neoxcourse eval configs/t4.yml --checkpoint /scratch/neox-t4/hf
# ```
#
# What it writes, as `bench/neox_check.py` found by running it on a checkpoint in GPT-NeoX's layout (printed
# below from `bench/results/neox_check.json`): the weights with the head named `embed_out`, in **fp16** when
# the YAML enables fp16 (at that commit its `--precision` flag is not passed on); a `config.json` whose
# `eos_token_id` is 2 (GPTNeoXConfig's default, not our end-of-text id 0); and the run's `tokenizer.json`
# with a tokenizer config that names **no** special tokens. A loader that trusted that folder would never
# stop a completion at end of text and would print `<|endoftext|>` as text. The course's
# `evaluation_tokenizer` (chapter 08) gives such a folder the course's ids, `<|endoftext|>` and `<|padding|>`
# from the folder's own `tokenizer.json` (the run's), or the course's tokenizer when the folder has none, and
# says which.

# %%
import torch
from transformers import PreTrainedTokenizerFast
from neoxcourse.config import project_root
from neoxcourse.evaluate import evaluate, evaluation_tokenizer, format_metrics
from neoxcourse.model import GPTNeoX, load_pretrained, save_pretrained
check = project_root() / "bench" / "results" / "neox_check.json"
result = json.loads(check.read_text()) if check.exists() else {}
real = result.get("checkpoint")
if result:
    env = result["neox_environment"]
    print(f"GPT-NeoX {result['gpt_neox_commit'][:8]} with",
          ", ".join(f"{k} {env[k]}" for k in ("transformers", "tokenizers", "deepspeed", "wandb", "torch")))
    loads = result["neox_args"].values()
    print(f"NeoXArgs loaded {sum(v['ok'] for v in loads)} of {len(loads)} exports (smoke and T4 on 1, 2 "
          "and 8 GPUs, counted by hostfile and by device count); all checks passed:", result["ok"])
if real:
    print("GPT-NeoX's converter wrote:", real["files"], f"weights {real['saved_dtype']},",
          f"config eos_token_id {real['config_eos_token_id']}, tokenizer config:",
          real["tokenizer_config_special_tokens"])

# %% [markdown]
# We cannot run GPT-NeoX's converter here, so we build the same layout from a course model: its weights in
# fp16 with the head as `embed_out` (`save_pretrained` names it so), the converter's `eos_token_id: 2`, and
# the exported `tokenizer.json` saved the way the converter saves it. Then we read it back, compare logits
# with the model that wrote it (rounded to fp16 as the converter rounds it), and evaluate it with
# `evaluate(cfg, folder)`, the function `neoxcourse eval` calls (a small evaluation: two validation batches,
# two lines, one HumanEval problem).

# %%
torch.manual_seed(0)
model = GPTNeoX(cfg.model).half().eval()                      # fp16 weights, as the converter stores them
converted = Path(tempfile.mkdtemp(prefix="neox-hf-"))
save_pretrained(model, converted)                             # head `embed_out`, as the converter names it
model.float()
hf_config = json.loads((converted / "config.json").read_text())
(converted / "config.json").write_text(json.dumps({**hf_config, "bos_token_id": 0, "eos_token_id": 2}))
converter_tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(exported.vocab_file))  # no special tokens
converter_tokenizer.save_pretrained(str(converted))
print(sorted(p.name for p in converted.iterdir()))
tokenizer = evaluation_tokenizer(cfg, converted)
back = load_pretrained(converted).float().eval()
first = IndexedDataset(exported.valid_prefix)[0][: cfg.model.seq_length + 1]
val = torch.from_numpy(np.asarray(first, dtype=np.int64))[None]
with torch.no_grad():
    diff = (model(val[:, :-1]) - back(val[:, :-1])).abs().max().item()   # logits (1, T, V)
print(f"largest logit difference after the round trip: {diff:.2e}")
test_close(diff, 0.0, eps=1e-5)
test_eq((tokenizer.eos_token_id, tokenizer.pad_token_id), (0, 1))

# %%
small_eval = {"evaluation.val_batches": 2, "evaluation.line_completion_samples": 2, "evaluation.humaneval_problems": 1,
              "evaluation.humaneval_samples": 1, "evaluation.max_new_tokens": 8, "evaluation.ks": [1]}
metrics = evaluate(load_config(cfg.path, {**overrides, **small_eval}), converted, log=False)
print(format_metrics(metrics))
assert 0 < metrics["bits_per_byte"] < 40 and metrics["tokens"] > 0, metrics
shutil.rmtree(converted)

# %% [markdown]
# An untrained model's bits per byte is about $\log_2 V$ / (bytes per token) and its pass@1 is 0: the numbers
# say the folder loads and scores end to end. With a real GPT-NeoX run, the same command gives numbers to set
# beside the course's own runs.

# %% [markdown]
# ### A larger batch changes the learning rate too
#
# More GPUs make a larger global batch cheap, but a larger batch is not free for the training algorithm. At a
# fixed token budget, 16 times the batch (the T4 recipe's 64 sequences to 1024, as in the exercise below) means 16
# times fewer optimizer steps; each step's gradient is less noisy, so each step may move further, and the
# learning rate must rise for the run to arrive anywhere. The usual starting points, to be checked with a short
# sweep (`configs/sweeps/`, appendix A5) rather than trusted:
#
# - **SGD**: scale the learning rate linearly with the batch (16x), with a warmup (Goyal et al. 2017,
#   *Accurate, Large Minibatch SGD*).
# - **Adam and AdamW**: scale it by the square root of the batch ratio (4x for 16x), which keeps the noise of
#   an update about the same (Malladi et al. 2022, *On the SDEs and Scaling Rules for Adaptive Gradient
#   Algorithms*); keep the warmup at least as many tokens as before.
#
# Neither rule holds past the **critical batch size** (McCandlish et al. 2018, *An Empirical Model of
# Large-Batch Training*): below it, doubling the batch halves the steps a target loss needs; above it, extra
# sequences buy almost nothing, and the same tokens spent on more, smaller steps would have reached a lower loss.
# The critical batch is about the gradient noise scale, the ratio of the gradient's variance to its squared
# mean; it is small early in training and grows as the loss falls (Kaplan et al. 2020 measured it growing from
# about a hundred thousand to a few million tokens over their runs). A small model early in a one-hour budget is
# on the small side of that range, so a million tokens a step may waste much of the budget: compare the tokens
# each batch size needs to reach one validation loss (`tokens_to_reach`, appendix A5) before you keep it.
#

# %% [markdown]
# ## Exercise: the T4 recipe on a node of eight T4s
#
# **Task.** Take `configs/t4.yml` to GPT-NeoX on one node of **8 T4s** (15 GiB usable each) with a
# **global batch of 1024 sequences** of 1024 tokens (a million tokens per step, the usual scale-up
# of batch with GPUs). Start from `exercises/A7_scaling_up/starter.yml` (the export of the T4 recipe with
# placeholder paths), set `num_gpus: 8` and `train_batch_size: 1024`, and choose
# `train_micro_batch_size_per_gpu` and `gradient_accumulation_steps` so that
# micro-batch x accumulation x 8 = 1024 and one GPU's estimated memory (`estimate_memory` of chapter 04, in
# the config's precision) fits in 15 GiB. Fewer accumulation steps are faster: as few as fit.
#
# **How it is checked.** `check_exercise("A7_scaling_up", "my_8xT4.yml")` checks that every key is a
# GPT-NeoX key with an allowed value, that the model is the T4 recipe's, that the batch arithmetic holds for
# 8 data-parallel processes, that the data and tokenizer keys are there, and that the estimate fits;
# it returns `gradient_accumulation_steps` (lower is better), `micro_batch` and `memory_gib`.
# `python starter.py my_8xT4.yml` runs it.
#
# **How to submit.** `python starter.py my_8xT4.yml --submit --name YOUR_NAME`, or
# `submit("A7_scaling_up", "my_8xT4.yml", name="YOUR_NAME")`: a W&B run in group `A7_scaling_up`, ranked on
# the appendix A5 leaderboard.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import warnings
from pathlib import Path

import yaml

from neoxcourse.config import ConfigError, canonical, load_config, read_yaml
from neoxcourse.neox import _find, check_neox_config

SCALE_TARGET = {"num_gpus": 8, "gpu_gib": 15.0, "train_batch_size": 1024, "recipe": "configs/t4.yml"}

def _answer_dict(answer) -> dict:
    if isinstance(answer, dict): return answer
    text = Path(answer).read_text() if Path(str(answer)).suffix in (".yml", ".yaml") else str(answer)
    d = read_yaml(text, str(answer))
    if not isinstance(d, dict): raise ExerciseError("the answer must be a GPT-NeoX YAML mapping")
    return d

def check_scale_out(answer) -> dict:
    "Check exercise A7: a GPT-NeoX YAML for the T4 recipe on 8 T4s with a global batch of 1024 sequences."
    from neoxcourse.config import project_root
    from neoxcourse.model import estimate_memory
    d, target = _answer_dict(answer), SCALE_TARGET
    problems = check_neox_config(d)
    if problems: raise ExerciseError("GPT-NeoX would refuse this config: " + "; ".join(problems))
    get = lambda k, default=None: d.get(_find(d, k), default) if _find(d, k) else default
    missing = [k for k in ("train_data_paths", "valid_data_paths", "test_data_paths", "vocab_file") if not get(k)]
    if missing or get("tokenizer_type") != "HFTokenizer":
        raise ExerciseError(f"keep the exported data and tokenizer keys (missing {missing or 'tokenizer_type: HFTokenizer'})")
    if get("num_gpus") != target["num_gpus"]: raise ExerciseError(f"set num_gpus: {target['num_gpus']}")
    parallel = (get("model_parallel_size", 1) or 1) * max(get("pipe_parallel_size", 0) or 0, 1)
    dp = target["num_gpus"] // parallel
    micro, acc, total = get("train_micro_batch_size_per_gpu"), get("gradient_accumulation_steps"), get("train_batch_size")
    if total != target["train_batch_size"]: raise ExerciseError(f"train_batch_size is {total}; the target is 1024")
    if not all(isinstance(x, int) and x > 0 for x in (micro, acc)):
        raise ExerciseError("set train_micro_batch_size_per_gpu and gradient_accumulation_steps (positive integers)")
    if micro * acc * dp != total:
        raise ExerciseError(f"micro-batch {micro} x accumulation {acc} x {dp} data-parallel GPUs = {micro * acc * dp}, "
                            f"not train_batch_size {total}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = {k: v for k, v in d.items() if canonical(k) != "gradient_accumulation_steps"}  # one process
        try: cfg = load_config(text=yaml.safe_dump(single))
        except ConfigError as e: raise ExerciseError(f"the config does not load: {e}") from None
        recipe = load_config(project_root() / target["recipe"]).model
    for name in ("num_layers", "hidden_size", "num_attention_heads", "seq_length"):
        if getattr(cfg.model, name) != getattr(recipe, name):
            raise ExerciseError(f"{name} is {getattr(cfg.model, name)}; keep the T4 recipe's model ({getattr(recipe, name)})")
    opt = "adamw" if cfg.optimizer.type.lower() == "adam" else cfg.optimizer.type
    gib = estimate_memory(cfg.model, micro, cfg.training.precision, opt)["total"] / 2**30
    if gib > target["gpu_gib"]:
        raise ExerciseError(f"micro-batch {micro} needs about {gib:.1f} GiB per GPU; a T4 has {target['gpu_gib']}: "
                            f"halve it and double the accumulation")
    return {"gradient_accumulation_steps": acc, "micro_batch": micro, "memory_gib": round(gib, 2)}

register_exercise(Exercise("A7_scaling_up", "The T4 recipe on eight T4s", "gradient_accumulation_steps",
                           False, (1, 128), check_scale_out))

# %% [markdown]
# The check at work: the starter (the T4 export as it is) fails with a reason, and an answer with a
# micro-batch too large for a T4 fails with the memory it would need.

# %%
from neoxcourse.config import project_root
starter = project_root() / "exercises" / "A7_scaling_up" / "starter.yml"
test_fail(lambda: check_scale_out(str(starter)), contains="num_gpus")
_too_big = {**read_yaml(starter.read_text()), "num_gpus": 8, "train_batch_size": 1024,
            "train_micro_batch_size_per_gpu": 128, "gradient_accumulation_steps": 1}
test_fail(lambda: check_scale_out(_too_big), contains="GiB per GPU")

# %% [markdown]
# ## Recap
#
# - The global batch is the recipe; the accumulation is derived from it, the micro-batch and the number of
#   processes (`batch_plan`). `torchrun_command` launches the course's loop on one node or several, and
#   two gloo processes gave the gradient of one process to float32 rounding.
# - `export_neox` hands the recipe to GPT-NeoX: a YAML of GPT-NeoX keys only (optimizer and schedule
#   translated or refused, vocabulary padding left to GPT-NeoX, data and tokenizer keys), the corpus as
#   `.bin/.idx` with one document per source file, and the tokenizer as `tokenizer.json`. An independent
#   reader gets every document back.
# - GPT-NeoX asserts global batch = micro-batch x accumulation x GPUs with the values it is given, so the
#   export writes all three for the GPUs you name (`num_gpus`, `--set num_gpus=8`) and the launch line that
#   exposes exactly those GPUs. `bench/neox_check.py` loaded the smoke and T4 exports with GPT-NeoX's own
#   `NeoXArgs` on 1, 2 and 8 GPUs, read every document back with its `MMapIndexedDataset`, got the same ids
#   from its tokenizer, and converted a checkpoint with its converter (`bench/results/neox_check.json`: the
#   commit, the versions beside GPT-NeoX, transformers 4.38 and wandb below 0.28, and every number).
# - A GPT-NeoX checkpoint comes back through its Hugging Face converter into `neoxcourse eval`, with the
#   course's end-of-text and padding ids (the converter names none) and logits equal to the model's.
#
# Chapter 09 runs the whole pipeline in one notebook; appendix A8 collects what goes wrong and how to fix it.
