# Generated from nbs/A4_tracking.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A4_tracking.py`.

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
# # Appendix A4 · Tracking runs with Weights & Biases
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A4_tracking.ipynb)
#
# > What the training loop logs, under GPT-NeoX's metric names, with model FLOPs utilisation, and how to read
# > an offline run back without a server.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** what the loop logs under GPT-NeoX's metric names, how MFU is computed, and how to read
#   an offline W&B run back without a server.
# - **You need:** chapters 00 (W&B sign-in) and 05; a CPU is enough.
# - **Time:** under a minute on a T4; under a minute on a CPU with the smoke config, as CI runs it.
# - **You should see:** an offline run read back with its metrics, and the T4 recipe's estimated MFU of
#   12.9% (the course's 59k tokens/s against 65 TFLOP/s); no plot.

# %%
#| default_exp tracking

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
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from neoxcourse.config import save_config
from neoxcourse.env import wandb_mode

# %%
#| hide
import errno
import random
import tempfile
import warnings
from pathlib import Path
import numpy as np
import torch
from fastcore.test import test_close, test_eq, test_fail
from neoxcourse.config import default_config_path, load_config
from neoxcourse.device import peak_flops

# %%
cfg = load_config(config_path or default_config_path(), overrides)


# %% [markdown]
# A loss printed to a notebook dies with the session. Weights & Biases keeps it, next to the config that
# produced it, so that a team can lay twenty runs on one chart. We log under GPT-NeoX's own metric names
# (`train/lm_loss`, `validation/lm_loss`, `validation/lm_loss_ppl`, `runtime/tokens_per_sec`,
# `runtime/model_flops_utilization`), so a run of this loop and a run of EleutherAI's GPT-NeoX share charts.
#
# **Model FLOPs utilisation** (MFU, from the PaLM paper) is the fraction of the GPU's peak arithmetic that
# the model's own FLOPs use: `tokens/s x FLOPs per token / peak FLOP/s`. It needs the peak of the device,
# dense, in the precision we train in: chapter 00b's `peak_flops` looks it up by the device's name.

# %%
#| export
def model_flops_utilization(tokens_per_sec: float, flops_per_token: float,
                            peak: float | None) -> float | None:
    "MFU: the fraction of `peak` FLOP/s that tokens/s x training FLOPs per token uses (None without a peak)."
    return None if not peak else tokens_per_sec * flops_per_token / peak


# %%
# the FACTS.md anchor: 1.02M tokens/s of a 27.3M-parameter model (6N FLOPs/token + attention) is ~18% on an H200
test_close(model_flops_utilization(1.02e6, 6 * 27.3e6 + 6 * 6 * 1024 * 512, peak_flops("H200")), 0.18, eps=0.01)
test_eq(model_flops_utilization(1e5, 1e9, None), None)   # a CPU has no peak in the table: no MFU


# %% [markdown]
# The run itself. `wandb_mode` (chapter 00) decides: online when you are logged in, offline otherwise
# (everything is written to disk, `wandb sync` uploads it later), disabled only when the config asks.
# The run folder sits next to the checkpoints, and a resumed run passes its saved id, so W&B appends to
# the same run instead of starting a new one. Only rank 0 of a multi-GPU run logs.

# %%
#| export
def config_dict(cfg) -> dict:
    "The resolved config as a plain dict with GPT-NeoX key names (what `save_config` writes)."
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        save_config(cfg, Path(d) / "config.yml")
        return yaml.safe_load((Path(d) / "config.yml").read_text())

class Tracker:
    "A thin wrapper around a W&B run that does nothing when tracking is disabled."
    def __init__(self, run=None, mode: str = "disabled"):
        self.run, self.mode = run, mode
        self.id = run.id if run else None                       # kept after finish()
        self.dir = Path(run.dir).parent if run else None        # the run's folder

    def log(self, metrics: dict, step: int):
        if self.run: self.run.log({k: v for k, v in metrics.items() if v is not None}, step=step)

    def log_samples(self, rows: list, step: int, key: str = "samples/completions"):
        "A table of (prompt, completion) rows."
        if not self.run: return
        import wandb
        self.run.log({key: wandb.Table(columns=["step", "prompt", "completion"],
                                       data=[[step, p, c] for p, c in rows])}, step=step)

    def log_checkpoint(self, path, step: int):
        "Upload a checkpoint folder as a `model` artifact (only when the config asks: they are large)."
        if not self.run: return
        import wandb
        art = wandb.Artifact(f"checkpoint-{self.run.id}", type="model", metadata={"step": step})
        art.add_dir(str(path))
        self.run.log_artifact(art, aliases=["latest", f"step-{step}"])

    def summary(self, values: dict):
        if self.run: self.run.summary.update(values)

    def finish(self):
        if self.run:
            self.run.finish()
            if self.mode == "offline":
                print(f"W&B run saved offline in {self.dir}. Upload it later with:  wandb sync {self.dir}")
            self.run = None


# %%
#| export
def start_tracking(cfg, directory, run_id: str | None = None, rank: int = 0,
                   job_type: str = "train") -> Tracker:
    "Start (given `run_id`: continue) the W&B run of `cfg` in `directory`; a no-op Tracker when disabled."
    wcfg = cfg.wandb
    mode = wandb_mode(wcfg.mode if wcfg.use_wandb else "disabled")
    if rank != 0 or mode == "disabled": return Tracker(None, "disabled")
    import wandb
    directory = Path(directory); directory.mkdir(parents=True, exist_ok=True)
    kwargs = dict(project=wcfg.project, entity=wcfg.entity, group=wcfg.group, name=wcfg.run_name,
                  tags=list(wcfg.tags or []), job_type=job_type, dir=str(directory), config=config_dict(cfg),
                  id=run_id, resume="allow" if run_id else None, settings=wandb.Settings(quiet=True))
    try: run = wandb.init(mode=mode, **kwargs)
    except Exception as e:  # no network, a server error: keep training, write offline
        if mode != "online": raise
        print(f"W&B online failed ({type(e).__name__}: {e}); logging offline instead.")
        mode, run = "offline", wandb.init(mode="offline", **kwargs)
    if mode == "offline":
        print(f"W&B is offline (not logged in, or asked): the run is written to {Path(run.dir).parent}.\n"
              f"Nothing is lost: `wandb login` and then `wandb sync {Path(run.dir).parent}` uploads it.")
    return Tracker(run, mode)


# %% [markdown]
# ### Reading a run back
#
# Tests, the leaderboard of appendix A5, exercise submissions (chapter 00a) and learners without an account all
# need to read an offline run, so the library has one reader. An offline run is a folder
# `offline-run-<time>-<id>/` holding `run-<id>.wandb`, a LevelDB-style log: a 7-byte header (`:W&B`, magic,
# version), then 32 KiB blocks of chunks, each with a 7-byte header (CRC-32, length, type: full, first, middle,
# last), a record split across blocks as FIRST, MIDDLE..., LAST chunks, and each record a protocol-buffer
# `Record` (the messages of `wandb.proto`). We parse it directly (the `datastore` module that once did this is
# gone from wandb 0.31) and keep the run's identity (id, project, group, job type, tags), its config, every
# `history` row, the final `summary` and the logged artifacts. A resumed run writes a second folder with the
# same id: we read them in order.

# %%
#| export
@dataclass
class RunRecord:
    "What one W&B run holds: identity, config, summary, history rows (one dict a logged step), artifacts."
    id: str
    project: str = ""
    group: str = ""
    job_type: str = ""
    tags: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    path: Path | None = None                       # the run's folder (a resumed run: its newest)
    artifacts: list = field(default_factory=list)  # {"name", "type", "aliases"} of logged artifacts

    def metric(self, key: str) -> dict:
        "{step: value} of one metric in the history."
        return {row["_step"]: row[key] for row in self.history if key in row}

def _wandb_records(path: Path):
    "Yield the protobuf records of a `.wandb` run file; a record torn by a crash raises ValueError."
    import struct
    from wandb.proto import wandb_internal_pb2 as pb
    data = Path(path).read_bytes()
    if data[:4] != b":W&B": raise ValueError(f"{path}: not a W&B run file (no ':W&B' header)")
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7: pos += left; continue                      # block trailer padding
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0: continue                                   # zero padding
        if len(chunk) < length:
            raise ValueError(f"{path}: unreadable W&B run file: it ends inside a record (a crash?)")
        buf += chunk
        if kind in (1, 4):                                       # FULL or LAST: a whole record
            record = pb.Record()
            try: record.ParseFromString(buf)
            except Exception as e:
                raise ValueError(f"{path}: unreadable W&B run file: a torn record ({e})") from None
            buf = b""
            yield record

def _items(items) -> dict:
    "Record items as a dict; `nested_key` paths (a table's fields) become nested dicts."
    out = {}
    for i in items:
        *parents, last = [i.key] if i.key else list(i.nested_key)
        d = out
        for k in parents: d = d.setdefault(k, {})
        d[last] = json.loads(i.value_json)
    return out

def _read_file(path: Path, rec: RunRecord) -> bool:
    "Add one .wandb file's records to `rec`; True if the file is finished (has its exit record)."
    finished = False
    for r in _wandb_records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run = r.run
            rec.id, rec.project, rec.group, rec.job_type = run.run_id, run.project, run.run_group, run.job_type
            rec.tags = list(run.tags)
            rec.config.update(_items(run.config.update))
        elif kind == "config": rec.config.update(_items(r.config.update))
        elif kind == "history": rec.history.append(_items(r.history.item))
        elif kind == "summary": rec.summary.update(_items(r.summary.update))
        elif kind == "artifact":
            art = r.artifact
            rec.artifacts.append({"name": art.name, "type": art.type, "aliases": list(art.aliases)})
        elif kind == "exit": finished = True
    return finished

def _run_files(source, run_id: str | None) -> list[Path]:
    "The .wandb files of run `run_id` (default: the newest) in or below `source`, oldest first."
    files = sorted(Path(source).rglob("run-*.wandb"), key=lambda p: p.parent.name)
    if not files:
        raise FileNotFoundError(f"{source}: no W&B run file (run-<id>.wandb) here or below; is it a run folder?")
    run_id = run_id or files[-1].stem.removeprefix("run-")
    files = [f for f in files if f.stem == f"run-{run_id}"]
    if not files: raise FileNotFoundError(f"{source}: no W&B run '{run_id}' here or below")
    return files

def read_run(source, run_id: str | None = None, wait: float = 20.0) -> RunRecord:
    """Read W&B run `run_id` (default: the newest) back from its .wandb files in or below `source`. The writer
    is another process that may still be flushing after `finish()`: a file with no exit record that changed in
    the last `wait` seconds is read again until it has one. A file torn by a crash raises ValueError."""
    files = _run_files(source, run_id)
    deadline = time.monotonic() + wait
    while True:
        busy = time.time() - files[-1].stat().st_mtime < wait and time.monotonic() < deadline
        rec = RunRecord(files[-1].stem.removeprefix("run-"), path=files[-1].parent)
        try:
            if [_read_file(f, rec) for f in files][-1] or not busy: break
        except ValueError:
            if not busy: raise
        time.sleep(0.1)
    rec.config.pop("_wandb", None)
    rec.summary.pop("_wandb", None)
    return rec



# %% [markdown]
# A tiny offline run, written and read back (a second or so):

# %%
import wandb
wbdir = Path(tempfile.mkdtemp())
run = wandb.init(project="neoxcourse-test", mode="offline", dir=str(wbdir), config={"lr": 1e-3},
                 settings=wandb.Settings(quiet=True))
t = Tracker(run, "offline")
for step in (1, 2, 3): t.log({"train/lm_loss": 4.0 / step, "runtime/model_flops_utilization": None}, step)
t.log_samples([("def add(a, b):", "\n    return a + b")], step=3)
t.finish()
back = read_run(wbdir)
test_eq(back.config["lr"], 1e-3)
test_eq(back.metric("train/lm_loss"), {1: 4.0, 2: 2.0, 3: 4.0 / 3})
test_eq(back.summary["samples/completions"]["nrows"], 1)
test_eq((back.id, back.project, back.path), (run.id, "neoxcourse-test", Path(run.dir).parent))

# %%
#| hide
import os, shutil, time
torn = Path(tempfile.mkdtemp()) / back.path.name
shutil.copytree(back.path, torn)
f = next(torn.glob("run-*.wandb")); f.write_bytes(f.read_bytes()[:600])
os.utime(f, (time.time() - 3600, time.time() - 3600))   # an hour old: a crash, not a writer at work
start = time.monotonic()
test_fail(lambda: read_run(torn), contains="unreadable W&B run file")
assert time.monotonic() - start < 2                      # said at once, not waited for
test_fail(lambda: read_run(Path(tempfile.mkdtemp())), contains="no W&B run file")
test_fail(lambda: read_run(wbdir, "nosuchid"), contains="no W&B run 'nosuchid'")

# %% [markdown]
# ### The chapter's config, tracked
#
# `start_tracking` with the config of this notebook (forced offline here, so running the notebook never
# creates runs in your account): the run's config holds the resolved GPT-NeoX keys, and the MFU of a T4
# training the T4 recipe at the course's estimated speed (chapter 00's `course_facts`) comes out of
# the table above.

# %%
from dataclasses import replace
from neoxcourse.model import flops_per_token
from neoxcourse.env import course_facts
t4 = load_config(cfg.root / "configs" / "t4.yml")
t4_tps = course_facts()["t4"]["recipe_tokens_per_s_estimate_k"] * 1000
mfu_t4 = model_flops_utilization(t4_tps, flops_per_token(t4.model), peak_flops("Tesla T4"))
print(f"T4 recipe: {flops_per_token(t4.model) / 1e6:.0f} MFLOPs a token; {t4_tps / 1e3:.0f}k tokens/s would be {mfu_t4:.1%} MFU")
offline = replace(cfg, wandb=replace(cfg.wandb, mode="offline", use_wandb=True))
tracker = start_tracking(offline, Path(tempfile.mkdtemp()))
tracker.log({"train/lm_loss": 9.01, "runtime/model_flops_utilization": mfu_t4}, step=1)
fake_checkpoint = Path(tempfile.mkdtemp()); (fake_checkpoint / "meta.json").write_text("{}")
tracker.log_checkpoint(fake_checkpoint, step=1)  # what `log_checkpoints: true` does after each save
tracker.finish()
back = read_run(tracker.dir)
test_eq(back.config["train-iters"], cfg.training.train_iters)
test_close(back.metric("runtime/model_flops_utilization")[1], mfu_t4, eps=1e-9)
test_eq([(a["type"], sorted(a["aliases"])) for a in back.artifacts], [("model", ["latest", "step-1"])])

# %% [markdown]
# ## Recap
#
# `start_tracking(cfg, folder, run_id)` opens (or continues) the W&B run next to the checkpoints, online
# when you are signed in and offline otherwise; `Tracker.log` uses GPT-NeoX's metric names; MFU is
# `tokens/s x FLOPs/token / peak`, with the peak from chapter 00b's `peak_flops` (65 TFLOP/s on a T4). Offline runs are
# plain files: `wandb sync` uploads them, and `read_run` reads identity, config, history and summary back,
# waiting for wandb's writer: chapter 05's tests check what the loop logged with it, and chapters 00a and A5
# read submissions and experiments with it.
