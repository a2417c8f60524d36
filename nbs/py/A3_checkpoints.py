# Generated from nbs/A3_checkpoints.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A3_checkpoints.py`.

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
# # Appendix A3 · Checkpoints that survive a disconnect
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A3_checkpoints.ipynb)
#
# > Atomic, verified, resumable checkpoints: what the training loop of chapter 05 saves, and how it refuses a
# > broken one.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** what a checkpoint must hold for an exact resume, and how an atomic rename and a
#   verification survive a killed process, a corrupt file and a full disk.
# - **You need:** chapter 05 (or just PyTorch); a CPU is enough.
# - **Time:** about a minute on a T4; about 3 minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** a resumed state equal bit for bit to the saved one, and each damaged folder refused
#   with its reason while the newest good one is used; no plot.

# %%
#| default_exp checkpoint

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
import errno
import hashlib
import json
import os
import random
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from neoxcourse.config import save_config

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

# %%
cfg = load_config(config_path or default_config_path(), overrides)


# %% [markdown]
# A Colab session can vanish at any moment: idle for 90 minutes, twelve hours used, a browser tab closed.
# A checkpoint must therefore hold *everything* that decides what the next step computes, and it must
# never be half-written when the process dies. Everything means: the weights (in `safetensors`, which
# `transformers` reads), the optimizer's moments, the loss scaler, the schedule's position, the step,
# every random number generator (Python, NumPy, torch CPU, CUDA), the data sampler's position, the W&B
# run id (so a resumed run continues the same chart) and the resolved config.
#
# Never half-written means: write into a temporary folder, flush it to disk, and only then `rename` it to
# its final name. A rename inside one file system is atomic: a reader sees either the old set of
# checkpoints or the new one, never a torn folder. A `meta.json` written last lists every file with its
# size and SHA-256, so a file damaged later (a sync conflict on Drive, a full disk) is detected and refused.
#
# Everything in this section is exported to `neoxcourse.checkpoint` (the `#| export` cells).

# %% [markdown]
# The random state first. `torch.random.fork_rng` would *protect* it; to *resume* it we must read it out
# and put it back, for every generator a training step may touch.

# %%
#| export
def rng_state() -> dict:
    "Every random generator's state: Python, NumPy, torch CPU and (when initialised) CUDA."
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state

def set_rng_state(state: dict):
    "Put back what `rng_state` read out."
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# %% [markdown]
# Evaluation, logging and sampling completions must not disturb the training stream: a run that evaluates
# every 10 steps and a resumed run that evaluates at other steps must draw the same random numbers.
# `preserve_rng` puts every generator back as it was.

# %%
#| export
class preserve_rng:
    "Context manager: every random generator is left as it was found."
    def __enter__(self): self.state = rng_state()
    def __exit__(self, *exc): set_rng_state(self.state)


# %%
s = rng_state()
a = (random.random(), np.random.rand(), torch.rand(1).item())
set_rng_state(s)
test_eq((random.random(), np.random.rand(), torch.rand(1).item()), a)
set_rng_state(s)
with preserve_rng(): torch.rand(3), random.random(), np.random.rand()
test_eq((random.random(), np.random.rand(), torch.rand(1).item()), a)  # as if nothing had been drawn


# %% [markdown]
# A model may be wrapped by `DistributedDataParallel` (`.module`) or by `torch.compile` (`._orig_mod`).
# Checkpoints always hold the plain model's parameter names, so a checkpoint written by two GPUs loads on one.

# %%
#| export
def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    "The plain model inside DDP and torch.compile wrappers."
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None: return model
        model = inner

def checkpoint_name(step: int) -> str:
    "Folder name of the checkpoint after `step` iterations (sorts by step)."
    return f"step_{step:08d}"

class CheckpointError(RuntimeError):
    "A checkpoint could not be written or is not usable; the message says why and what to do."


# %% [markdown]
# The writer. Each numbered step is one idea: a temporary folder, the files, `fsync`, the atomic rename,
# then pruning the oldest checkpoints. Any failure removes the temporary folder, so the previous checkpoint is
# untouched, and the error says so in one line with the reason in words: a full disk (`ENOSPC` from Python, but
# a `RuntimeError` "file write failed" from `torch.save`'s zip writer), a read-only folder, a file in the way.
# `check_writable` tries the folder before anything is written, so a training run can call it before its first
# step rather than find out an hour later.

# %%
#| export
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""): h.update(block)
    return h.hexdigest()

def _fsync(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try: os.fsync(fd)
    except OSError: pass  # some file systems (and directories on some OSes) refuse fsync
    finally: os.close(fd)

def _why_not_written(directory: Path, e: BaseException) -> str:
    "The reason a write under `directory` failed, in words, with what to do."
    errnum = getattr(e, "errno", None)
    try: free = shutil.disk_usage(directory if directory.is_dir() else directory.parent).free
    except OSError: free = None
    if errnum == errno.ENOSPC or (free is not None and free < (4 << 20)) or "write failed" in str(e):
        return "the disk is full: free some space or point `save` elsewhere"
    if errnum in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the folder is read-only or not yours: point `save` at a folder you can write"
    if errnum in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way where a folder should be: move it or point `save` elsewhere"
    return (str(e).strip().splitlines() or [type(e).__name__])[0]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

def check_writable(directory) -> Path:
    "Make `directory` (and its parents) and write a probe file in it; a one-line CheckpointError if it cannot be."
    directory = Path(directory)
    probe = directory / f".probe-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"x"); probe.unlink()
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoints to {directory}: {_why_not_written(directory, e)}") from None
    return directory

def save_checkpoint(directory, step: int, model, state: dict, config=None,
                    keep_last_n: int | None = None) -> Path:
    "Write `model` (safetensors) and `state` (torch) atomically to `directory/step_N`; keep the newest N."
    if keep_last_n is not None and keep_last_n < 1:
        raise CheckpointError(f"keep-last-n-checkpoints must be 1 or more (got {keep_last_n}): "
                              f"{keep_last_n} would delete every checkpoint as soon as it is written")
    directory = check_writable(directory)
    final = directory / checkpoint_name(step)
    tmp = directory / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model = unwrap_model(model)
    try:
        tmp.mkdir()
        # 1. the files: weights, everything else, the config that made them
        save_model(model, str(tmp / "model.safetensors"))
        torch.save({**state, "step": step}, tmp / "state.pt")
        if config is not None:
            save_config(config, tmp / "config.yml")
            tok = config.resolve(config.tokenizer.path)           # the tokenizer travels with the weights
            for name in TOKENIZER_FILES:
                if (tok / name).is_file(): shutil.copyfile(tok / name, tmp / name)
        # 2. the manifest, written last: what a complete checkpoint holds
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(tmp.iterdir())}
        meta = {"format": 1, "step": step, "time": time.time(), "files": files, "shapes": shapes}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for p in tmp.iterdir(): _fsync(p)
        # 3. the atomic rename (an older copy of the same step is moved aside first)
        if final.exists(): os.replace(final, directory / f".old-{final.name}-{os.getpid()}")
        os.replace(tmp, final)
        _fsync(directory)
    except Exception as e:   # OSError, and torch.save's RuntimeError on a full disk ("file write failed")
        reason = _why_not_written(directory, e)   # before the clean-up frees the space again
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(directory, quiet=True)
        kept = (f"the previous checkpoint {previous} is intact" if previous
                else "no earlier checkpoint exists")
        raise CheckpointError(f"could not write checkpoint {final} ({reason}); "
                              f"nothing was half-written and {kept}") from e
    for old in directory.glob(f".old-{final.name}-*"): shutil.rmtree(old, ignore_errors=True)
    if keep_last_n: prune_checkpoints(directory, keep_last_n)
    return final


# %% [markdown]
# Pruning and listing. Leftover temporary folders (a process killed while writing) are ignored by the
# reader and removed by the next writer of the same folder.

# %%
#| export
def list_checkpoints(directory) -> list[Path]:
    "Checkpoint folders in `directory` (complete or not), oldest first."
    directory = Path(directory)
    if not directory.is_dir(): return []
    return sorted(p for p in directory.glob("step_*") if p.is_dir())

def prune_checkpoints(directory, keep_last_n: int):
    "Delete all but the newest `keep_last_n` checkpoints and any leftover temporary folders."
    for p in list_checkpoints(directory)[:-keep_last_n]: shutil.rmtree(p, ignore_errors=True)
    for p in Path(directory).glob(".tmp-step_*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid != str(os.getpid()): shutil.rmtree(p, ignore_errors=True)


# %% [markdown]
# The reader refuses anything it cannot trust and says why: a missing manifest (the process died before
# the rename could not cause this, but a manual copy can), a file of the wrong size or checksum, or a
# model whose parameter shapes differ from the checkpoint's (it was made with another config).

# %%
#| export
def verify_checkpoint(path, model=None, full: bool = True) -> str | None:
    "None if the checkpoint at `path` is complete and fits `model`, else the reason it is refused."
    path = Path(path)
    try: meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError: return "no meta.json (incomplete: it was never finished)"
    except (OSError, ValueError) as e: return f"meta.json unreadable ({type(e).__name__}: damaged or truncated)"
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict) or not isinstance(meta.get("shapes"), dict):
        return "meta.json is not a checkpoint manifest (no 'files' and 'shapes' tables)"
    for name, info in meta["files"].items():
        if not isinstance(info, dict) or not {"bytes", "sha256"} <= set(info):
            return f"meta.json's entry for {name} is damaged"
        f = path / name
        if not f.exists(): return f"{name} is missing"
        if f.stat().st_size != info["bytes"]:
            return (f"{name} has {f.stat().st_size} bytes, the manifest says {info['bytes']} "
                    f"(truncated or corrupt)")
        if full and _sha256(f) != info["sha256"]: return f"{name} fails its SHA-256 check (corrupt)"
    if model is not None:
        have = {k: list(v.shape) for k, v in unwrap_model(model).state_dict().items()}
        if set(have) != set(meta["shapes"]):
            missing = sorted(set(meta["shapes"]) ^ set(have))[:3]
            return f"parameter names differ from the model's (e.g. {missing}): made with another model"
        for k, shape in meta["shapes"].items():
            if have[k] != shape:
                return (f"{k} has shape {shape} in the checkpoint, {have[k]} in the model: made with "
                        f"another config")
    return None

def latest_checkpoint(directory, model=None, quiet: bool = False) -> Path | None:
    "The newest checkpoint in `directory` that passes `verify_checkpoint`; others are reported, skipped."
    for path in reversed(list_checkpoints(directory)):
        reason = verify_checkpoint(path, model)
        if reason is None: return path
        if not quiet: warnings.warn(f"skipping checkpoint {path}: {reason}", stacklevel=2)
    return None


# %%
bad = Path(tempfile.mkdtemp())
for name, text in [("list", "[]"), ("no-files", '{"format": 1, "step": 1}'), ("cut", '{"files": {"model.saf')]:
    (bad / name).mkdir(); (bad / name / "meta.json").write_text(text)
test_eq(verify_checkpoint(bad / "list"), "meta.json is not a checkpoint manifest (no 'files' and 'shapes' tables)")
test_eq(verify_checkpoint(bad / "no-files"), "meta.json is not a checkpoint manifest (no 'files' and 'shapes' tables)")
test_eq(verify_checkpoint(bad / "cut"), "meta.json unreadable (JSONDecodeError: damaged or truncated)")


# %% [markdown]
# Loading puts the weights back into the model (in place, onto the model's device) and returns the rest.
# `state.pt` is read with `weights_only=False` because it holds Python and NumPy random states: load only
# checkpoints you made yourself (the weights, in `safetensors`, are safe to share).

# %%
#| export
def load_checkpoint(path, model, optimizer=None, scaler=None) -> dict:
    "Load weights into `model` (and optimizer, scaler); return the saved state (step, rng, sampler, ...)."
    path = Path(path)
    reason = verify_checkpoint(path, model)
    if reason: raise CheckpointError(f"checkpoint {path} refused: {reason}")
    model = unwrap_model(model)
    device = next(model.parameters()).device
    load_model(model, str(path / "model.safetensors"), device=str(device))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"): scaler.load_state_dict(state["scaler"])
    return state


# %% [markdown]
# A round trip on a small stand-in model: save three checkpoints, keep the last two, load the newest and
# compare every weight and the optimizer's moments bit for bit.

# %%
tmpdir = Path(tempfile.mkdtemp())
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
for step in (1, 2, 3):
    net(torch.randn(5, 4)).pow(2).mean().backward(); opt.step(); opt.zero_grad()
    save_checkpoint(tmpdir, step, net, {"optimizer": opt.state_dict(), "rng": rng_state()}, keep_last_n=2)
test_eq([p.name for p in list_checkpoints(tmpdir)], ["step_00000002", "step_00000003"])
net2 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
opt2 = torch.optim.AdamW(net2.parameters(), lr=1e-2)
state = load_checkpoint(latest_checkpoint(tmpdir), net2, opt2)
test_eq(state["step"], 3)
assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
test_eq(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

# %% [markdown]
# Faults. A truncated weight file (what a full disk or a killed copy leaves) is refused with its reason and
# the reader falls back to the newest good checkpoint; so is a model of another shape.

# %%
newest = tmpdir / "step_00000003" / "model.safetensors"
newest.write_bytes(newest.read_bytes()[:100])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    test_eq(latest_checkpoint(tmpdir).name, "step_00000002")
assert "truncated" in str(caught[0].message), caught
wide = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 2))
assert "another config" in verify_checkpoint(tmpdir / "step_00000002", wide)
test_fail(lambda: load_checkpoint(tmpdir / "step_00000003", net2), contains="truncated")


# %% [markdown]
# A full disk during a save. We make `torch.save` hit a real `OSError(ENOSPC)` by handing it an object that
# raises it while being pickled: the new checkpoint is not there, no temporary folder is left, the previous
# checkpoint still loads, and the error message says so.

# %%
class DiskFull:
    def __reduce__(self): raise OSError(errno.ENOSPC, "No space left on device")

try: save_checkpoint(tmpdir, 4, net, {"boom": DiskFull()})
except CheckpointError as e: message = str(e)
assert "disk is full" in message and "step_00000002 is intact" in message, message
test_eq([p.name for p in tmpdir.iterdir() if p.name.startswith(".tmp")], [])
test_eq(latest_checkpoint(tmpdir, quiet=True).name, "step_00000002")
print(message)


# %%
# torch.save on a full disk raises a RuntimeError from its zip writer, not an OSError: the same clean stop
def zip_writer_full(obj, f, *a, **k): raise RuntimeError("[enforce fail at inline_container.cc:595] . "
                                                         "PytorchStreamWriter failed writing file data/0: file write failed")
real_save, torch.save = torch.save, zip_writer_full
try: save_checkpoint(tmpdir, 4, net, {})
except CheckpointError as e: message = str(e)
finally: torch.save = real_save
test_eq("the disk is full" in message and "step_00000002 is intact" in message and "\n" not in message, True)
test_eq(sorted(p.name for p in tmpdir.iterdir()), ["step_00000002", "step_00000003"])   # nothing left, none lost
# a file where the folder should be, and a keep-last-n that would delete everything: refused before writing
(tmpdir / "in_the_way").write_text("not a folder")
test_fail(lambda: save_checkpoint(tmpdir / "in_the_way", 5, net, {}), contains="a file is in the way")
test_fail(lambda: check_writable(tmpdir / "in_the_way" / "sub"), contains="cannot write checkpoints to")
test_fail(lambda: save_checkpoint(tmpdir, 5, net, {}, keep_last_n=-1), contains="must be 1 or more")
test_eq(latest_checkpoint(tmpdir, quiet=True).name, "step_00000002")

# %% [markdown]
# ### On the real model
#
# The chapter's GPT-NeoX (chapter 04), saved with its config and an optimizer that has taken one step. The
# reloaded model must give the same logits bit for bit, and `config.yml` is the resolved config that made
# it: `load_config` reads it back. The tokenizer's files are copied in too (half a megabyte): a checkpoint
# copied to Drive or opened from another folder still finds the tokenizer it was trained with, rather than
# whatever `tokenizer/` the current folder happens to hold.

# %%
from neoxcourse.model import GPTNeoX
torch.manual_seed(0)
model = GPTNeoX(cfg.model)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
tokens = torch.randint(cfg.model.vocab_size, (2, 16))
torch.nn.functional.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten()).backward()
opt.step()
real = Path(tempfile.mkdtemp())
path = save_checkpoint(real, 1, model, {"optimizer": opt.state_dict(), "rng": rng_state()}, config=cfg)
print({p.name: f"{p.stat().st_size / 1e6:.2f} MB" for p in sorted(path.iterdir())})
clone = GPTNeoX(cfg.model)
load_checkpoint(latest_checkpoint(real, clone), clone)
test_eq(torch.equal(model(tokens), clone(tokens)), True)
test_eq(load_config(path / "config.yml").model, cfg.model)
# the tokenizer travels with the weights: `neoxcourse complete` works from any folder, with the right vocabulary
test_eq((path / "tokenizer.json").read_bytes(), (cfg.resolve(cfg.tokenizer.path) / "tokenizer.json").read_bytes())

# %% [markdown]
# ### A process killed while writing
#
# The strongest test is the real one: a separate Python process saves checkpoint 1, starts writing a much
# larger checkpoint 2, and we `SIGKILL` it (no clean-up handler runs) as soon as its temporary folder appears.
# The newest *complete* checkpoint is still 1, and it loads.

# %%
import signal, subprocess, sys, textwrap
killdir = Path(tempfile.mkdtemp())
script = textwrap.dedent(f"""
    import torch
    from neoxcourse.checkpoint import save_checkpoint
    net = torch.nn.Linear(8, 8)
    save_checkpoint({str(killdir)!r}, 1, net, {{}})
    big = torch.nn.Linear(4096, 4096)
    while True: save_checkpoint({str(killdir)!r}, 2, big, {{"pad": torch.zeros(2**26)}})
""")
proc = subprocess.Popen([sys.executable, "-c", script])
deadline = time.time() + 60
while not list(killdir.glob(".tmp-step_00000002-*")) and time.time() < deadline: time.sleep(0.005)
proc.send_signal(signal.SIGKILL); proc.wait()
print("left on disk:", sorted(p.name for p in killdir.iterdir()))
test_eq(latest_checkpoint(killdir).name, "step_00000001")
test_eq(load_checkpoint(latest_checkpoint(killdir), torch.nn.Linear(8, 8))["step"], 1)

# %% [markdown]
# ## Recap
#
# A checkpoint is a folder `step_N/` with `model.safetensors` (weights, readable by anyone),
# `state.pt` (optimizer, scaler, schedule, RNG, sampler, W&B id), `config.yml` and `meta.json` (sizes and
# SHA-256 of the others, written last). It appears by an atomic rename, so a killed process, a disconnect or
# a full disk leave the previous one intact; `latest_checkpoint` refuses damaged or mismatched folders with
# the reason and falls back to the newest good one. A save that fails for any reason (full disk, read-only
# folder, a file in the way) raises one `CheckpointError` line, leaves no partial folder and keeps every earlier
# checkpoint; chapter 05's loop stops on it rather than train on unsaved. Chapter 05's `train(cfg, resume=True)`
# builds on this to resume bit for bit, and stops (rather than start over) when checkpoints are there but none
# of them can be continued. No exercise grades this chapter; to practise it, stop a training cell of chapter 05
# with the ■ button and run it again with `resume=True`, or read appendix A8's staged disconnect (section 5),
# which resumes a run and checks its losses against one that never stopped.
