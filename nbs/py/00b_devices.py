# Generated from nbs/00b_devices.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/00b_devices.py`.

# %% [markdown]
# # 00b · Devices and precision: where a step runs, and in what number format
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/00b_devices.ipynb)
#
# > The small module every training and benchmark script starts from: which device to train on, fp16 or bf16
# > by compute capability, the autocast context, a T4 emulated on a larger GPU, the peak FLOP/s that MFU is
# > measured against, and joining (and leaving) a torchrun process group.

# %% [markdown]
# - **You will learn:** why a T4 trains in fp16 and not bf16, what autocast changes, how a bigger GPU is
#   made to behave like a T4, and what a process group is.
# - **You need:** chapter 00; a CPU is enough.
# - **Time:** under a minute on a T4; under a minute on a CPU with the smoke config, as CI runs it.
# - **You should see:** the device and precision this machine trains in (`cuda` and `fp16` on a T4, `cpu` and
#   `fp32` here), and the peak used for MFU: 65 TFLOP/s for a T4 in fp16; no plot.

# %%
#| default_exp device

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
import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail
from neoxcourse.config import default_config_path, load_config

# %%
cfg = load_config(config_path or default_config_path(), overrides)


# %% [markdown]
# ## 1. The device
#
# The loop trains on GPU `local_rank` when there is a GPU and the config says `device: auto` (under torchrun
# each process has its own local rank, so each takes its own GPU), and on the CPU otherwise. A config may also
# name a device outright (`cpu`, `cuda`, `cuda:1`).

# %%
#| export
def choose_device(requested: str | None = "auto", local_rank: int = 0) -> torch.device:
    "The training device: GPU `local_rank` when there is one and `requested` is 'auto', else the CPU."
    if requested in (None, "auto"):
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and device.index is None: device = torch.device(f"cuda:{local_rank}")
    return device

def device_name(device: torch.device) -> str | None:
    "The GPU's name (e.g. 'Tesla T4'), which the peak-FLOP/s table is keyed by; None on a CPU."
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


# %%
test_eq(choose_device("cpu"), torch.device("cpu"))
test_eq(choose_device("cuda", local_rank=3), torch.device("cuda:3"))   # naming a device does not need one
test_eq(choose_device("auto").type, "cuda" if torch.cuda.is_available() else "cpu")
test_eq(device_name(torch.device("cpu")), None)
print("this machine trains on", choose_device(cfg.training.device))


# %% [markdown]
# ## 2. fp16 or bf16: the compute capability decides
#
# A T4 has fp16 tensor cores (65 TFLOP/s) and no bf16 ones: bf16 there is emulated and about ten times
# slower, although `torch.cuda.is_bf16_supported()` answers `True`. So we decide by the *compute
# capability*: bf16 needs 8.0 (Ampere) or newer. A config that asks for bf16 on a T4 gets fp16 with loss
# scaling instead, and a warning that says so. On a CPU we train in fp32.

# %%
#| export
def choose_precision(requested: str, device: torch.device, capability: tuple | None = None) -> str:
    "What we train in: fp32 on a CPU, bf16 only from compute capability 8.0, else fp16 or fp32 as asked."
    if device.type != "cuda": return "fp32"
    capability = capability or torch.cuda.get_device_capability(device)
    if requested == "bf16" and tuple(capability) < (8, 0):
        major, minor = capability
        warnings.warn(f"bf16 asked, but this GPU (compute capability {major}.{minor}) has no bf16 "
                      "tensor cores: training in fp16 with loss scaling instead.", stacklevel=2)
        return "fp16"
    return requested


# %%
cpu, gpu = torch.device("cpu"), torch.device("cuda:0")
test_eq(choose_precision("fp16", cpu), "fp32")
test_eq(choose_precision("bf16", gpu, capability=(8, 0)), "bf16")   # A100, H100
test_eq(choose_precision("fp16", gpu, capability=(7, 5)), "fp16")   # T4
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    test_eq(choose_precision("bf16", gpu, capability=(7, 5)), "fp16")  # T4: no real bf16
assert "7.5" in str(caught[0].message)


# %% [markdown]
# **Autocast.** The weights and the optimizer state stay fp32; inside `torch.autocast` the matmuls run in
# fp16 (or bf16) and the reductions that need range (softmax, norms) stay fp32. For fp32 training the context
# does nothing. The training step (chapter 05) opens this context around each micro-batch's forward pass.

# %%
#| export
def autocast_context(device: torch.device, precision: str):
    "torch.autocast for fp16/bf16 on a GPU; a no-op context for fp32."
    if precision == "fp32": return nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


# %%
a, b = torch.randn(4, 8), torch.randn(8, 2)
with autocast_context(cpu, "fp32"): test_eq((a @ b).dtype, torch.float32)
with autocast_context(cpu, "bf16"): test_eq((a @ b).dtype, torch.bfloat16)  # the CPU has bf16 autocast too
test_eq(a.dtype, torch.float32)                                               # the inputs are not changed

# %% [markdown]
# ## 3. A T4 on a bigger GPU
#
# The benchmarks in `bench/` run on whatever GPU is at hand (an H200, say) but answer questions about a T4:
# what fits in its memory, which attention kernel runs. `emulate_t4` makes the process behave like one as far
# as that goes: its memory is capped at 15 GiB (`nvidia-smi` reports a T4's memory as 15,360 MiB; of that, PyTorch on
# Colab sees about 14.7 GiB, so the cap is a little generous), and the flash and cuDNN
# attention kernels, which need compute capability 8.0, are switched off, so `scaled_dot_product_attention`
# takes the memory-efficient kernel, as on a T4. Speed is not emulated: an H200 stays faster.

# %%
#| export
T4_MEMORY_GIB = 15.0  # what a 16 GB T4 leaves free for tensors

def emulate_t4(device: int = 0, cap_gib: float = T4_MEMORY_GIB) -> dict:
    "Cap this process's GPU memory at `cap_gib` and turn off the attention kernels a T4 does not have."
    if not torch.cuda.is_available():
        raise RuntimeError("T4 emulation needs a CUDA GPU; this machine has none (run the benchmark on a GPU).")
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total), device)
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)
    return {"memory_cap_gib": cap_gib, "flash_sdp": False, "cudnn_sdp": False, "precision": "fp16"}


# %%
if torch.cuda.is_available():
    flash, cudnn = torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.cudnn_sdp_enabled()
    test_eq(emulate_t4()["memory_cap_gib"], 15.0)
    assert not torch.backends.cuda.flash_sdp_enabled() and not torch.backends.cuda.cudnn_sdp_enabled()
    torch.cuda.set_per_process_memory_fraction(1.0, 0)                  # undo it for the rest of this notebook
    torch.backends.cuda.enable_flash_sdp(flash); torch.backends.cuda.enable_cudnn_sdp(cudnn)
else:
    test_fail(emulate_t4, contains="needs a CUDA GPU")

# %% [markdown]
# ## 4. Peak FLOP/s, for model FLOPs utilisation
#
# **Model FLOPs utilisation** (MFU, from the PaLM paper) is the fraction of the GPU's peak arithmetic that the
# model's own FLOPs use: `tokens/s x FLOPs per token / peak FLOP/s` (appendix A4 logs it). It needs the peak of
# the device, dense (no sparsity), in the precision we train in: a small table, matched by the device's name.

# %%
#| export
# dense fp16/bf16 tensor-core peak, TFLOP/s (no sparsity); fp32 training uses the fp32 column
PEAK_TFLOPS = {  # name fragment: (fp16/bf16, fp32)
    "H200": (989.0, 67.0), "H100": (989.0, 67.0), "A100": (312.0, 19.5), "L4": (121.0, 30.3),
    "V100": (125.0, 15.7), "T4": (65.0, 8.1), "A10G": (125.0, 31.2), "L40S": (362.0, 91.6),
}

def peak_flops(device_name: str | None, precision: str = "fp16") -> float | None:
    "Peak FLOP/s of a GPU from its name (e.g. 'Tesla T4'); None for CPUs and unknown devices."
    if not device_name: return None
    name = device_name.upper()
    for fragment, (half, single) in sorted(PEAK_TFLOPS.items(), key=lambda kv: -len(kv[0])):
        if fragment in name: return 1e12 * (single if precision == "fp32" else half)
    return None


# %%
test_eq(peak_flops("Tesla T4"), 65e12)
test_eq(peak_flops("Tesla T4", "fp32"), 8.1e12)
test_eq(peak_flops("NVIDIA H200"), 989e12)
test_eq(peak_flops("NVIDIA L40S"), 362e12)  # the longer name wins over "L4"
test_eq(peak_flops("cpu"), None)
test_eq(peak_flops(None), None)


# %% [markdown]
# ## 5. Process groups: several GPUs under torchrun
#
# `torchrun --nproc_per_node N` starts N copies of the program and tells each its `RANK`, `LOCAL_RANK` and
# `WORLD_SIZE` through the environment. `init_distributed` reads them and joins the *process group* (NCCL
# between GPUs, gloo between CPU processes) through which DistributedDataParallel averages gradients. Run
# alone, it returns rank 0 of 1 and starts nothing. `close` leaves the group, but only if this call joined
# it (a notebook or a test that set up its own group keeps it).

# %%
#| export
@dataclass
class Distributed:
    "This process's place in a torchrun job (rank 0 of 1 when run alone)."
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started_here: bool = False
    @property
    def main(self) -> bool: return self.rank == 0
    def barrier(self):
        if self.world_size > 1: dist.barrier()
    def close(self):
        "Leave the process group if `init_distributed` joined it."
        if self.started_here and dist.is_initialized(): dist.destroy_process_group()
        self.started_here = False

def init_distributed(device_request: str | None = "auto") -> Distributed:
    "Join the torchrun job described by RANK / WORLD_SIZE / LOCAL_RANK (NCCL on GPUs, gloo on CPUs)."
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1: return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    started = False
    if not dist.is_initialized():
        gpu = torch.cuda.is_available() and device_request in (None, "auto", "cuda")
        if gpu: torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if gpu else "gloo")
        started = True
    return Distributed(rank, world_size, local_rank, started)


# %% [markdown]
# A test with a real group: two gloo processes on this machine join, sum their ranks, and leave. The second
# process is forked by `torch.multiprocessing` and given the environment variables torchrun would set.

# %%
import socket, tempfile
import torch.multiprocessing as mp
from pathlib import Path

def _join_and_sum(rank: int, port: int, out: str):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from neoxcourse.device import init_distributed
    ddp = init_distributed("cpu")
    total = torch.tensor(float(ddp.rank)); dist.all_reduce(total)
    if ddp.main: Path(out).write_text(f"{ddp.world_size} {total.item()} {ddp.started_here}")
    ddp.close()

with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
out = Path(tempfile.mkdtemp()) / "sum.txt"
test_eq(init_distributed(), Distributed())       # alone: rank 0 of 1, no group
if "WORLD_SIZE" not in os.environ:
    mp.start_processes(_join_and_sum, args=(port, str(out)), nprocs=2, start_method="fork")
    test_eq(out.read_text(), "2 1.0 True")

# %% [markdown]
# ## Recap
#
# - `choose_device` and `choose_precision`: a GPU when there is one; bf16 only from compute capability 8.0,
#   so a T4 trains in fp16 with loss scaling; fp32 on a CPU. `autocast_context` wraps the forward pass.
# - `emulate_t4` caps memory at 15 GiB and turns off the flash and cuDNN attention kernels, so the benchmarks
#   answer T4 questions on a bigger GPU.
# - `peak_flops` is the denominator of MFU.
# - `init_distributed` joins a torchrun job; `Distributed.close` leaves it.
#
# Chapter 05 builds the training step and the loop on these.
