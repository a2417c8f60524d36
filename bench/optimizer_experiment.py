"""Chapter 06's experiment: which optimizer and schedule train this code model best for a fixed token budget?

    PYTHONPATH=. python bench/optimizer_experiment.py --workers 4 --deadline 480   # the GPU experiment
    PYTHONPATH=. python bench/optimizer_experiment.py --quick --workers 2          # a CPU check, ~minutes
    python bench/optimizer_experiment.py --wandb offline                          # log the recorded runs to W&B

Every run is `neoxcourse.train.train(cfg)` on one config (default configs/t4.yml, with its licence-filtered
site-packages, which the budget passes over less than once) with the budget overrides below (GPU_OVERRIDES,
the same for every run), `min_lr` a tenth of the peak lr, the entry's own overrides, and its `optimizer.type`,
`lr-decay-style` and `lr`: what `neoxcourse train CONFIG --set KEY=VALUE ...` and the sweeps in
configs/sweeps/ do with the same keys. Each run logs to W&B (group `optimizer-experiment`; offline without a login).

1. For each entry of the plan (optimizer, schedule, lr grid, extra overrides), train at every lr with the
   first seed; the lr with the lowest final validation loss is the entry's tuned lr.
2. The leaders (the baseline and the best `--leaders` others) are trained again with the other seeds.
3. Results (written after every run, so an interrupted experiment resumes where it stopped; runs already
   in the file are not repeated): per run the validation curve, final loss and bits per byte, tokens/s and
   wall-clock; per entry, at its tuned lr and averaged over seeds, the final loss, the tokens and the
   seconds it needed to reach the baseline's (AdamW + cosine) final loss. Plots: validation loss against
   tokens and against wall-clock time, one curve per entry at its tuned lr.

Files: bench/results/optimizer_experiment.json (table, runs, plan, environment), optimizer_experiment.md (the
table) and optimizer_experiment_val_loss.png.
`--plan FILE` reads the plan from YAML instead: a list of {name, optimizer, schedule, lrs, overrides}.

Speed: on a GPU every run is in T4 emulation (15 GiB cap, flash and cuDNN attention off, fp16). A small model
leaves a large GPU idle between kernel launches, so `--workers N` trains N runs at once in separate processes;
their losses are unaffected, but their tokens/s are not each run's own. So before the sweep a speed pass
trains every entry alone for `--speed-steps` steps, and the table's tokens/s and seconds-to-baseline come
from it. `--deadline S` stops starting runs that would end after S seconds (the most important first: every
entry's middle lr, then the other lrs, then the seeds); what did not run is listed as missing.

W&B: every run logs to W&B from the training loop where `wandb` is installed; on a machine without it (the
course's GPU machine) `--wandb offline` afterwards writes one offline W&B run per recorded run (config,
validation and training curves, summary), to sync with `wandb sync`.
"""
import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import header  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from neoxcourse.config import load_config, parse_override  # noqa: E402

# The default plan: the baseline first. `overrides` are config keys as `--set` takes them.
PLAN = [
    dict(name="adamw_cosine", optimizer="adamw", schedule="cosine", lrs=[1e-3, 2e-3, 4e-3], overrides={}),
    dict(name="adamw_wsd", optimizer="adamw", schedule="wsd", lrs=[1e-3, 2e-3, 4e-3],
         overrides={"schedule.decay_shape": "1-sqrt", "schedule.decay_fraction": 0.2}),
    dict(name="lion", optimizer="lion", schedule="cosine", lrs=[2e-4, 4e-4, 8e-4, 1.6e-3],
         overrides={"optimizer.params.betas": [0.9, 0.99], "weight-decay": 0.3}),
    dict(name="muon", optimizer="muon", schedule="wsd", lrs=[0.02, 0.04, 0.08],
         overrides={"optimizer.params.adamw_lr": 3e-3, "min_lr": 0.0}),
    dict(name="schedule_free_adamw", optimizer="schedule_free_adamw", schedule="constant", lrs=[1e-3, 2e-3, 4e-3],
         overrides={}),
    dict(name="sgd", optimizer="sgd", schedule="cosine", lrs=[0.1, 0.3, 1.0],
         overrides={"optimizer.params.momentum": 0.9, "optimizer.params.nesterov": True, "weight-decay": 0.0}),
]
# The token budget: 400 steps of 32 x 1024 tokens (13.1M) a run, a sixth of FACTS.md's anchor (2400 steps,
# 78.6M) so that the sweep fits one 10-minute GPU command; `--set train-iters=2400` is the anchor's budget.
# Data: configs/t4.yml's licence-filtered site-packages (the same prepared folder as the T4 recipe), which the
# budget passes over less than once (the JSON records the fraction).
GPU_OVERRIDES = {"train-iters": 400, "train_micro_batch_size_per_gpu": 32, "train_batch_size": 32,
                 "eval-interval": 50, "eval-iters": 10, "checkpoint-factor": 0, "keep-last-n-checkpoints": 1,
                 "warmup": 0.05}
QUICK_OVERRIDES = {"train-iters": 12, "train_batch_size": 4, "train_micro_batch_size_per_gpu": 4, "seq-length": 64,
                   "eval-interval": 4, "eval-iters": 2, "checkpoint-factor": 0, "neoxcourse.wandb.mode": "disabled"}


def run_key(entry: dict, lr: float, seed: int) -> str:
    return f"{entry['name']}/lr={lr:g}/seed={seed}"


def train_one(config: Path, base: dict, entry: dict, lr: float, seed: int, out_dir: Path) -> dict:
    "One training run through neoxcourse.train.train; its curves and speed."
    import importlib.util
    from neoxcourse.train import train
    over = {**base, "min_lr": lr / 10, **entry.get("overrides", {}), "optimizer.type": entry["optimizer"],
            "lr-decay-style": entry["schedule"], "lr": lr, "seed": seed,
            "wandb_group": "optimizer-experiment", "wandb_run_name": f"{entry['name']}-lr{lr:g}-s{seed}",
            "save": str(out_dir / "checkpoints" / f"{entry['name']}-lr{lr:g}-s{seed}")}
    if importlib.util.find_spec("wandb") is None:   # logged afterwards with --wandb offline
        over["neoxcourse.wandb.mode"] = "disabled"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config(config, over)
    tic = time.perf_counter()
    res = train(cfg)
    wall = time.perf_counter() - tic
    tokens_per_step = cfg.training.global_batch_size * cfg.model.seq_length
    bytes_per_token = _val_bytes_per_token(cfg)
    val = {int(k): float(v) for k, v in res.val_losses.items()}
    final = val[max(val)] if val else float("nan")
    every = max(1, len(res.losses) // 100)
    return dict(name=entry["name"], optimizer=entry["optimizer"], schedule=entry["schedule"], lr=lr, seed=seed,
                overrides=over, val_curve=val, final_val_loss=final,
                train_curve={int(k): float(v) for k, v in res.losses.items() if int(k) % every == 0},
                final_bits_per_byte=final / math.log(2) / bytes_per_token if bytes_per_token else None,
                tokens_per_step=tokens_per_step, iterations=res.iterations, tokens=res.tokens_seen,
                tokens_per_sec=res.tokens_per_sec, train_seconds=res.elapsed, wall_seconds=wall,
                peak_memory_gib=(res.peak_memory_bytes or 0) / 2**30,
                skipped_steps=res.skipped_steps, device=res.device, precision=res.precision,
                wandb_run_id=res.wandb_run_id, diverged=not math.isfinite(final))


def worker(job: dict) -> dict:
    "A run (or, with job['speed'], every entry alone for a few steps) in a fresh process, T4-emulated on a GPU."
    import torch
    if torch.cuda.is_available() and job["t4"]:
        from neoxcourse.device import emulate_t4
        emulate_t4()
    if "speed" in job:
        out = {}
        steps = job["speed"]
        base = {**job["base"], "train-iters": steps, "eval-interval": steps, "eval-iters": 1}
        for entry in [job["entries"][0]] + job["entries"]:     # the first one twice: warm-up
            lr = entry["lrs"][len(entry["lrs"]) // 2]
            r = train_one(Path(job["config"]), base, entry, lr, 1, Path(job["work_dir"]) / "speed")
            out[entry["name"]] = dict(tokens_per_sec=r["tokens_per_sec"], steps=steps, lr=lr,
                                      peak_memory_gib=r["peak_memory_gib"])
        return out
    try:
        return train_one(Path(job["config"]), job["base"], job["entry"], job["lr"], job["seed"], Path(job["work_dir"]))
    except Exception as e:   # a diverged or failed run is a result too; the experiment goes on
        entry = job["entry"]
        return dict(name=entry["name"], optimizer=entry["optimizer"], schedule=entry["schedule"], lr=job["lr"],
                    seed=job["seed"], diverged=True, error=f"{type(e).__name__}: {e}"[:500], val_curve={},
                    final_val_loss=float("nan"))


def _val_bytes_per_token(cfg) -> float | None:
    "UTF-8 bytes per token of the validation split, from the prepared data's meta.json."
    try:
        from neoxcourse.tokenizer import prepare
        return float(prepare(cfg).meta["splits"]["val"]["bytes_per_token"])
    except Exception:
        return None


def tokens_to_reach(run: dict, target: float) -> int | None:
    "Tokens at the first evaluation at or below `target` (None if never)."
    for step in sorted(run["val_curve"]):
        if run["val_curve"][step] <= target: return step * run["tokens_per_step"]
    return None


def summarize(plan: list, runs: dict, speed: dict | None = None) -> list:
    """One row per entry at its tuned lr: mean final loss over seeds, tokens and seconds to the baseline's loss.
    tokens/s is the entry's speed-pass figure (trained alone) when there is one, else its runs' mean."""
    speed = speed or {}
    rows, best = [], {}
    for entry in plan:
        mine = [r for r in runs.values() if r["name"] == entry["name"] and not r["diverged"]]
        if not mine: continue
        by_lr = {}
        for r in mine: by_lr.setdefault(r["lr"], []).append(r)
        lr = min(by_lr, key=lambda x: min(r["final_val_loss"] for r in by_lr[x]))
        best[entry["name"]] = (lr, by_lr[lr])
    base_name = plan[0]["name"]
    target = None
    if base_name in best:
        target = sum(r["final_val_loss"] for r in best[base_name][1]) / len(best[base_name][1])
    for entry in plan:
        if entry["name"] not in best: continue
        lr, rs = best[entry["name"]]
        mean = lambda k: sum(r[k] for r in rs if r[k] is not None) / max(1, sum(r[k] is not None for r in rs))
        # on the seeds' mean curve, so the baseline reaches its own mean final loss at its full budget
        steps = sorted(set.intersection(*(set(r["val_curve"]) for r in rs)))
        mean_curve = {st: sum(r["val_curve"][st] for r in rs) / len(rs) for st in steps}
        tok = (tokens_to_reach(dict(val_curve=mean_curve, tokens_per_step=rs[0]["tokens_per_step"]), target + 1e-9)
               if target is not None else None)
        tps = speed.get(entry["name"], {}).get("tokens_per_sec") or mean("tokens_per_sec")
        tried = sorted({r["lr"] for r in runs.values() if r["name"] == entry["name"]})
        rows.append(dict(optimizer=entry["optimizer"], schedule=entry["schedule"], name=entry["name"], lr=lr,
                         seeds=len(rs), val_loss=mean("final_val_loss"),
                         val_loss_std=_std([r["final_val_loss"] for r in rs]),
                         bits_per_byte=mean("final_bits_per_byte") if any(r["final_bits_per_byte"] for r in rs) else None,
                         tokens_to_baseline=tok, seconds_to_baseline=tok / tps if tok and tps else None,
                         tokens_per_sec=tps, lrs_tried=tried,
                         lr_at_grid_edge=len(tried) > 1 and lr in (tried[0], tried[-1])))
    return rows


def _std(xs: list) -> float | None:
    if len(xs) < 2: return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def plot(rows: list, runs: dict, out: Path) -> list:
    "Validation loss against tokens and against seconds, one curve per entry at its tuned lr (first seed)."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2, figsize=(12, 4))
    for row in rows:
        r = next(r for r in runs.values() if r["name"] == row["name"] and r["lr"] == row["lr"])
        steps = sorted(r["val_curve"])
        tokens = [s * r["tokens_per_step"] for s in steps]
        millions = [t / 1e6 for t in tokens]
        secs = [t / row["tokens_per_sec"] for t in tokens] if row["tokens_per_sec"] else tokens
        label = f"{row['name']} lr {row['lr']:g} ({row['val_loss']:.3f})"
        axs[0].plot(millions, [r["val_curve"][s] for s in steps], marker=".", label=label)
        axs[1].plot(secs, [r["val_curve"][s] for s in steps], marker=".", label=label)
    axs[0].set(xlabel="tokens (M)", ylabel="validation loss (nats/token)", title="validation loss vs tokens")
    axs[1].set(xlabel="seconds of training (tokens / the entry's tokens per second alone)",
               title="validation loss vs wall-clock")
    lows = [row["val_loss"] for row in rows]
    if lows:
        for ax in axs: ax.set_ylim(min(lows) - 0.1, max(lows) + 0.8)
    axs[0].legend(fontsize=7)
    plt.tight_layout()
    path = out.with_name(out.stem + "_val_loss.png")
    fig.savefig(path, dpi=110)
    return [str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)]


def markdown_table(rows: list) -> str:
    "The closing note's table: optimizer, schedule, lr, final val loss, tokens to the baseline's loss, tokens/s."
    lines = ["| optimizer | schedule | lr | seeds | val loss | bits/byte | tokens to baseline loss "
             "| seconds to baseline loss | tokens/s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        t = r["tokens_to_baseline"]
        tok = "not reached" if not t else f"{t / 1e6:.1f}M" if t >= 1e6 else f"{t:,.0f}"
        sec = f"{r['seconds_to_baseline']:,.1f}" if r["seconds_to_baseline"] else "-"
        bpb = f"{r['bits_per_byte']:.3f}" if r["bits_per_byte"] else "-"
        std = f" ± {r['val_loss_std']:.3f}" if r["val_loss_std"] else ""
        edge = " (grid edge)" if r.get("lr_at_grid_edge") else ""
        lines.append(f"| {r['optimizer']} | {r['schedule']} | {r['lr']:g}{edge} | {r['seeds']} | {r['val_loss']:.3f}{std} "
                     f"| {bpb} | {tok} | {sec} | {r['tokens_per_sec']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "t4.yml"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config overrides")
    p.add_argument("--plan", help="YAML list of {name, optimizer, schedule, lrs, overrides}; first is the baseline")
    p.add_argument("--only", help="comma-separated entry names to run (the baseline is always kept)")
    p.add_argument("--seeds", default="1234,1235", help="first seed tunes the lr; the rest rerun the leaders")
    p.add_argument("--leaders", type=int, default=2, help="entries besides the baseline rerun with more seeds")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--deadline", type=float, help="seconds: start no run that would end after this")
    p.add_argument("--speed-steps", type=int, default=60, help="steps of each entry alone, for tokens/s (0: none)")
    p.add_argument("--no-t4", action="store_true", help="on a GPU, use all of it (not a T4 emulation)")
    p.add_argument("--quick", action="store_true", help="a CPU check: smoke config, 12 steps, 2 lrs, 2 seeds")
    p.add_argument("--wandb", choices=["offline", "online"], help="log the recorded runs to W&B and stop")
    p.add_argument("--report", action="store_true", help="rewrite the table and plot from the JSON and stop")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "optimizer_experiment.json"))
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.wandb:
        return log_wandb(json.loads(out.read_text()), args.wandb, ROOT / "runs" / "optimizer_experiment")

    plan = yaml.safe_load(Path(args.plan).read_text()) if args.plan else [dict(e) for e in PLAN]
    if args.only:
        keep = set(args.only.split(",")) | {plan[0]["name"]}
        plan = [e for e in plan if e["name"] in keep]
    seeds = [int(s) for s in args.seeds.split(",")]
    config, base = Path(args.config).resolve(), dict(GPU_OVERRIDES)
    if args.quick:
        config, base, seeds = (ROOT / "configs" / "smoke.yml").resolve(), dict(QUICK_OVERRIDES), seeds[:2]
        args.speed_steps = min(args.speed_steps, 4)
        for e in plan: e["lrs"] = e["lrs"][:2]
    base.update(dict(parse_override(s) for s in args.set))
    out.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(out.read_text()) if out.exists() else {}
    same = str(state.get("config", "")).split("@")[0] == _rel(config) and state.get("base_overrides") == base
    if args.report and not same:
        sys.exit(f"{out} was written with another config or overrides: nothing to report")
    runs = state.get("runs", {}) if same else {}
    for r in runs.values(): r["val_curve"] = {int(k): v for k, v in r["val_curve"].items()}   # JSON keys
    speed = state.get("speed", {}) if same else {}
    work_dir = ROOT / "runs" / ("optimizer_experiment_quick" if args.quick else "optimizer_experiment")
    start = time.perf_counter()
    workers = state.get("workers", []) if same else []
    workers = (workers if isinstance(workers, list) else [workers]) + ([] if args.report else [args.workers])
    if args.report:
        corpus = state["corpus"]
        seeds = state.get("seeds", seeds)
        plan = state.get("plan", plan)
    else:
        corpus = _prepare_once(config, base)              # before any worker: they all reuse it
    print(f"data: {corpus}", flush=True)

    def save():
        rows = summarize(plan, runs, speed)
        planned = [run_key(e, lr, seeds[0]) for e in plan for lr in e["lrs"]]
        prov = ({k: state[k] for k in ("commit", "command", "machine", "config", "reconstructed") if k in state}
                if args.report else header(_rel(config)))   # who wrote it: bench/provenance.py
        doc = dict(**prov, base_overrides=base, plan=plan, seeds=seeds, workers=workers,
                   t4_emulation=not args.no_t4, corpus=corpus, speed=speed, table=rows,
                   markdown=markdown_table(rows), missing=[k for k in planned if k not in runs], runs=runs,
                   seconds=state.get("seconds", 0) if args.report else time.perf_counter() - start,
                   environment=state["environment"] if args.report else
                   dict(python=platform.python_version(), torch=__import__("torch").__version__,
                        device=_device_name(), date=time.strftime("%Y-%m-%d")))
        budget = base.get("train-iters")
        doc["tokens_per_run"] = next((r["tokens"] for r in runs.values() if r.get("tokens")), None)
        if doc["tokens_per_run"] and corpus.get("train_tokens"):
            doc["passes_over_train_split"] = doc["tokens_per_run"] / corpus["train_tokens"]
        doc["plots"] = plot(rows, runs, out) if rows else []
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)
        out.with_suffix(".md").write_text(_md_header(doc, budget) + "\n\n" + doc["markdown"] + "\n")
        return rows

    if args.report:
        save()
        print(out.with_suffix(".md").read_text())
        return 0
    job = dict(config=str(config), base=base, work_dir=str(work_dir), t4=not args.no_t4)
    pool = _pool(args.workers)
    if args.speed_steps and not speed:                    # 0. each entry alone: its tokens/s
        speed.update(pool.submit(worker, {**job, "speed": args.speed_steps, "entries": plan}).result())
        print(f"speed pass: { {k: round(v['tokens_per_sec']) for k, v in speed.items()} }", flush=True)
        save()
    durations = []

    def run_all(todo):
        "Train the runs in `todo` (lr, seed, entry), `--workers` at a time, until the deadline."
        from concurrent.futures import FIRST_COMPLETED, wait
        todo, live = [t for t in todo if run_key(t[2], t[0], t[1]) not in runs], {}
        while todo or live:
            while todo and len(live) < args.workers:
                typical = sorted(durations)[len(durations) // 2] if durations else 0
                if args.deadline and time.perf_counter() - start + typical > args.deadline:
                    print(f"deadline: {len(todo)} runs not started", flush=True)
                    todo = []
                    break
                lr, seed, entry = todo.pop(0)
                print(f"== {run_key(entry, lr, seed)}", flush=True)
                live[pool.submit(worker, {**job, "entry": entry, "lr": lr, "seed": seed})] = (entry, lr, seed,
                                                                                             time.perf_counter())
            if not live: break
            done, _ = wait(live, return_when=FIRST_COMPLETED)
            for f in done:
                entry, lr, seed, t0 = live.pop(f)
                runs[run_key(entry, lr, seed)] = r = f.result()
                durations.append(time.perf_counter() - t0)
                print(f"   {run_key(entry, lr, seed)}: final val loss {r['final_val_loss']:.4f} "
                      f"({durations[-1]:.0f} s){' ' + r['error'] if r.get('error') else ''}", flush=True)
                save()

    # 1. tune the lr with the first seed: every entry's middle lr first, then the others
    order = sorted(((abs(i - len(e["lrs"]) // 2), j, lr, e) for j, e in enumerate(plan) for i, lr in enumerate(e["lrs"])),
                   key=lambda t: (t[0], t[1]))
    run_all([(lr, seeds[0], e) for _, _, lr, e in order])
    rows = save()
    # 2. more seeds for the baseline and the leaders at their tuned lr
    ranked = sorted(rows[1:], key=lambda r: r["val_loss"])[:args.leaders]
    again = [(row["lr"], seed, next(e for e in plan if e["name"] == row["name"]))
             for row in ([rows[0]] if rows and rows[0]["name"] == plan[0]["name"] else []) + ranked for seed in seeds[1:]]
    run_all(again)
    pool.shutdown()
    rows = save()
    print(markdown_table(rows))
    print(f"wrote {out} ({time.perf_counter() - start:.0f} s)")
    return 0


def _rel(path: Path) -> str:
    "A path as the JSON records it: relative to the project when inside it (the same on every machine)."
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _pool(workers: int):
    "Processes that each train one run and exit (fresh CUDA state, memory cap applied per process)."
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=1)


def _prepare_once(config: Path, base: dict) -> dict:
    "Prepare the experiment's data in this process (workers reuse it); its size in tokens."
    from neoxcourse.tokenizer import prepare
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config(config, base)
    tic = time.perf_counter()
    data = prepare(cfg, verbose=False)
    sp = data.meta["splits"]
    return dict(source=cfg.data.source, folder=str(data.out_dir.relative_to(ROOT)) if data.out_dir.is_relative_to(ROOT)
                else str(data.out_dir), train_files=sp["train"]["files"], train_tokens=sp["train"]["tokens"],
                val_files=sp["val"]["files"], val_tokens=sp["val"]["tokens"],
                val_bytes_per_token=sp["val"]["bytes_per_token"], prepare_seconds=time.perf_counter() - tic,
                reused=data.reused)


def _md_header(doc: dict, budget) -> str:
    env, c = doc["environment"], doc["corpus"]
    passes = doc.get("passes_over_train_split")
    return (f"Optimizer experiment (`bench/optimizer_experiment.py`): {Path(doc['config'].split('@')[0]).name} with "
            f"{doc['base_overrides']}; {doc['tokens_per_run'] or 0:,} tokens a run"
            + (f" = {passes:.2f} of the {c['train_tokens']:,}-token training split ({c['source']}, "
               f"{c['train_files']:,} files)" if passes else "")
            + f"; seeds {doc['seeds']}; {env['device']}"
            + (" in T4 emulation" if doc.get("t4_emulation") and "cpu" not in env["device"].lower() else "")
            + f", {' then '.join(map(str, doc['workers']))} runs at a time (one command each); tokens/s from each"
              f" entry trained alone for {next(iter(doc['speed'].values()), {}).get('steps', '?')} steps; {env['date']}."
            + (f" Not run (deadline): {', '.join(doc['missing'])}." if doc["missing"] else ""))


def log_wandb(doc: dict, mode: str, directory: Path) -> int:
    "One W&B run per recorded run (config, curves, summary), job type `train`, group `optimizer-experiment`."
    import wandb
    directory.mkdir(parents=True, exist_ok=True)
    n = 0
    for key, r in doc["runs"].items():
        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "neoxcourse"), group="optimizer-experiment",
                         job_type="train", mode=mode, name=f"{r['name']}-lr{r['lr']:g}-s{r['seed']}",
                         tags=[r["name"], r["optimizer"], r["schedule"]], dir=str(directory),
                         config={**r.get("overrides", {}), "entry": r["name"], "device": doc["environment"]["device"]},
                         reinit="finish_previous")
        steps = sorted({int(s) for s in r.get("train_curve", {})} | {int(s) for s in r["val_curve"]})
        for step in steps:
            row = {"train/tokens_seen": step * r.get("tokens_per_step", 0)}
            if str(step) in r.get("train_curve", {}) or step in r.get("train_curve", {}):
                row["train/lm_loss"] = r["train_curve"].get(str(step), r["train_curve"].get(step))
            if str(step) in r["val_curve"] or step in r["val_curve"]:
                row["validation/lm_loss"] = r["val_curve"].get(str(step), r["val_curve"].get(step))
            run.log(row, step=step)
        run.summary.update({k: r.get(k) for k in ("final_val_loss", "final_bits_per_byte", "tokens_per_sec",
                                                  "train_seconds", "diverged", "error") if r.get(k) is not None})
        run.finish()
        n += 1
    print(f"logged {n} runs to W&B ({mode}) under {directory}")
    return 0


def _device_name() -> str:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"


if __name__ == "__main__":
    sys.exit(main())
