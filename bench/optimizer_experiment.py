"""Chapter 06's experiment: which optimizer and schedule train this code model best for a fixed token budget?

    PYTHONPATH=. python bench/optimizer_experiment.py                      # the GPU experiment (defaults below)
    PYTHONPATH=. python bench/optimizer_experiment.py --quick              # a CPU check of the machinery, ~minutes

Every run is `neoxcourse.train.train(cfg)` on one config (default configs/t4.yml, with the corpus switched to
the machine's standard library plus licence-filtered site-packages, so the budget repeats no file) with
`optimizer.type`, `lr-decay-style` and `lr` overridden: exactly what `neoxcourse train CONFIG --set ...` and
the sweeps in configs/sweeps/ do. Each run logs to W&B (group `optimizer-experiment`; offline without a login).

1. For each entry of the plan (optimizer, schedule, lr grid, extra overrides), train at every lr with the
   first seed; the lr with the lowest final validation loss is the entry's tuned lr.
2. The leaders (the baseline and the best `--leaders` others) are trained again with the other seeds.
3. Results (written after every run, so an interrupted experiment resumes where it stopped; runs already
   in the file are not repeated): per run the validation curve, final loss and bits per byte, tokens/s and
   wall-clock; per entry, at its tuned lr and averaged over seeds, the final loss, the tokens and the
   seconds it needed to reach the baseline's (AdamW + cosine) final loss. Plots: validation loss against
   tokens and against wall-clock time, one curve per entry at its tuned lr.

Files: bench/results/optimizer_experiment.json (table, runs, plan, environment), optimizer_experiment.md (the
table) and optimizer_experiment_val_loss.png. (bench/gpu_session.py --parts optimizers, with
bench/optimizer_report.py, is the short-budget version whose results are bench/results/optimizers.*.)
`--plan FILE` reads the plan from YAML instead: a list of {name, optimizer, schedule, lrs, overrides}.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from neoxcourse.config import load_config, parse_override  # noqa: E402

# The default plan: the baseline first. `overrides` are config keys as `--set` takes them.
PLAN = [
    dict(name="adamw_cosine", optimizer="adamw", schedule="cosine", lrs=[6e-4, 1e-3, 2e-3, 3e-3], overrides={}),
    dict(name="adamw_wsd", optimizer="adamw", schedule="wsd", lrs=[6e-4, 1e-3, 2e-3, 3e-3],
         overrides={"schedule.decay_shape": "1-sqrt", "schedule.decay_fraction": 0.2}),
    dict(name="lion", optimizer="lion", schedule="cosine", lrs=[1e-4, 2e-4, 3e-4, 5e-4],
         overrides={"optimizer.params.betas": [0.9, 0.99], "weight-decay": 0.3, "min_lr": 1e-5}),
    dict(name="muon", optimizer="muon", schedule="wsd", lrs=[0.01, 0.02, 0.04],
         overrides={"optimizer.params.adamw_lr": 3e-3, "min_lr": 0.0}),
    dict(name="schedule_free_adamw", optimizer="schedule_free_adamw", schedule="constant", lrs=[1e-3, 2e-3, 4e-3],
         overrides={}),
    dict(name="sgd", optimizer="sgd", schedule="cosine", lrs=[0.1, 0.3, 1.0],
         overrides={"optimizer.params.momentum": 0.9, "optimizer.params.nesterov": True, "weight-decay": 0.0,
                    "min_lr": 1e-3}),
]
# The budget of FACTS.md's anchor: 2400 steps of 32 x 1024 tokens (78.6M), on licence-filtered site-packages.
GPU_OVERRIDES = {"data.source": "site-packages", "data.output_dir": "data/optexp", "train-iters": 2400,
                 "eval-interval": 200, "eval-iters": 20, "checkpoint-factor": 0, "warmup": 0.02}
QUICK_OVERRIDES = {"train-iters": 12, "train_batch_size": 4, "train_micro_batch_size_per_gpu": 4, "seq-length": 64,
                   "eval-interval": 4, "eval-iters": 2, "checkpoint-factor": 0, "neoxcourse.wandb.mode": "disabled"}


def run_key(entry: dict, lr: float, seed: int) -> str:
    return f"{entry['name']}/lr={lr:g}/seed={seed}"


def train_one(config: Path, base: dict, entry: dict, lr: float, seed: int, out_dir: Path) -> dict:
    "One training run through neoxcourse.train.train; its curve and speed."
    from neoxcourse.train import train
    over = {**base, **entry.get("overrides", {}), "optimizer.type": entry["optimizer"],
            "lr-decay-style": entry["schedule"], "lr": lr, "seed": seed,
            "wandb_group": "optimizer-experiment", "wandb_run_name": f"{entry['name']}-lr{lr:g}-s{seed}",
            "save": str(out_dir / "checkpoints" / f"{entry['name']}-lr{lr:g}-s{seed}")}
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
    return dict(name=entry["name"], optimizer=entry["optimizer"], schedule=entry["schedule"], lr=lr, seed=seed,
                val_curve=val, final_val_loss=final,
                final_bits_per_byte=final / math.log(2) / bytes_per_token if bytes_per_token else None,
                tokens_per_step=tokens_per_step, iterations=res.iterations, tokens=res.tokens_seen,
                tokens_per_sec=res.tokens_per_sec, train_seconds=res.elapsed, wall_seconds=wall,
                skipped_steps=res.skipped_steps, device=res.device, precision=res.precision,
                wandb_run_id=res.wandb_run_id, diverged=not math.isfinite(final))


def _val_bytes_per_token(cfg) -> float | None:
    "UTF-8 bytes per token of the validation split, from the prepared data's meta.json."
    try:
        from neoxcourse.data import prepare
        return float(prepare(cfg).meta["splits"]["val"]["bytes_per_token"])
    except Exception:
        return None


def tokens_to_reach(run: dict, target: float) -> int | None:
    "Tokens at the first evaluation at or below `target` (None if never)."
    for step in sorted(run["val_curve"]):
        if run["val_curve"][step] <= target: return step * run["tokens_per_step"]
    return None


def summarize(plan: list, runs: dict) -> list:
    "One row per entry at its tuned lr: mean final loss over seeds, tokens and seconds to the baseline's loss."
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
        reach = [tokens_to_reach(r, target) for r in rs] if target is not None else [None]
        reach_ok = [t for t in reach if t is not None]
        tok = sum(reach_ok) / len(reach_ok) if len(reach_ok) == len(reach) and reach_ok else None
        tps = mean("tokens_per_sec")
        rows.append(dict(optimizer=entry["optimizer"], schedule=entry["schedule"], name=entry["name"], lr=lr,
                         seeds=len(rs), val_loss=mean("final_val_loss"),
                         val_loss_std=_std([r["final_val_loss"] for r in rs]),
                         bits_per_byte=mean("final_bits_per_byte") if any(r["final_bits_per_byte"] for r in rs) else None,
                         tokens_to_baseline=tok, seconds_to_baseline=tok / tps if tok and tps else None,
                         tokens_per_sec=tps, lrs_tried=sorted({r["lr"] for r in runs.values() if r["name"] == entry["name"]})))
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
        secs = [t / r["tokens_per_sec"] for t in tokens] if r["tokens_per_sec"] else tokens
        label = f"{row['name']} lr {row['lr']:g} ({row['val_loss']:.3f})"
        axs[0].plot(tokens, [r["val_curve"][s] for s in steps], marker=".", label=label)
        axs[1].plot(secs, [r["val_curve"][s] for s in steps], marker=".", label=label)
    axs[0].set(xlabel="tokens", ylabel="validation loss (nats/token)", title="validation loss vs tokens")
    axs[1].set(xlabel="seconds of training (tokens / tokens per second)", title="validation loss vs wall-clock")
    lows = [row["val_loss"] for row in rows]
    if lows:
        for ax in axs: ax.set_ylim(min(lows) - 0.1, min(lows) + 1.5)
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
        sec = f"{r['seconds_to_baseline']:,.0f}" if r["seconds_to_baseline"] else "-"
        bpb = f"{r['bits_per_byte']:.3f}" if r["bits_per_byte"] else "-"
        std = f" ± {r['val_loss_std']:.3f}" if r["val_loss_std"] else ""
        lines.append(f"| {r['optimizer']} | {r['schedule']} | {r['lr']:g} | {r['seeds']} | {r['val_loss']:.3f}{std} "
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
    p.add_argument("--quick", action="store_true", help="a CPU check: smoke config, 12 steps, 2 lrs, 1 seed")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "optimizer_experiment.json"))
    args = p.parse_args(argv)

    plan = yaml.safe_load(Path(args.plan).read_text()) if args.plan else [dict(e) for e in PLAN]
    if args.only:
        keep = set(args.only.split(",")) | {plan[0]["name"]}
        plan = [e for e in plan if e["name"] in keep]
    seeds = [int(s) for s in args.seeds.split(",")]
    config, base = Path(args.config), dict(GPU_OVERRIDES)
    if args.quick:
        config, base, seeds = ROOT / "configs" / "smoke.yml", dict(QUICK_OVERRIDES), seeds[:1]
        for e in plan: e["lrs"] = e["lrs"][:2]
    base.update(dict(parse_override(s) for s in args.set))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(out.read_text()) if out.exists() else {}
    runs = state.get("runs", {}) if state.get("config") == str(config) and state.get("base_overrides") == base else {}
    work_dir = ROOT / "runs" / "optimizer_experiment"

    def save():
        rows = summarize(plan, runs)
        doc = dict(config=str(config), base_overrides=base, plan=plan, seeds=seeds, table=rows,
                   markdown=markdown_table(rows), runs=runs,
                   environment=dict(python=platform.python_version(), torch=__import__("torch").__version__,
                                    device=_device_name(), date=time.strftime("%Y-%m-%d")))
        doc["plots"] = plot(rows, runs, out) if rows else []
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)
        out.with_suffix(".md").write_text(f"Optimizer experiment: {config.name} with {base}, seeds {seeds}, "
                                          f"{doc['environment']['device']}, {doc['environment']['date']}.\n\n"
                                          + doc["markdown"] + "\n")
        return rows

    def run(entry, lr, seed):
        key = run_key(entry, lr, seed)
        if key in runs: return
        print(f"== {key}", flush=True)
        try:
            runs[key] = train_one(config, base, entry, lr, seed, work_dir)
        except Exception as e:   # a diverged or failed run is a result too; the experiment goes on
            runs[key] = dict(name=entry["name"], optimizer=entry["optimizer"], schedule=entry["schedule"], lr=lr,
                             seed=seed, diverged=True, error=f"{type(e).__name__}: {e}", val_curve={},
                             final_val_loss=float("nan"))
        print(f"   final val loss {runs[key]['final_val_loss']:.4f}", flush=True)
        save()

    for entry in plan:                                     # 1. tune the lr with the first seed
        for lr in entry["lrs"]: run(entry, lr, seeds[0])
    rows = save()
    ranked = sorted(rows[1:], key=lambda r: r["val_loss"])[:args.leaders]
    for row in ([rows[0]] if rows else []) + ranked:          # 2. more seeds for the baseline and leaders
        entry = next(e for e in plan if e["name"] == row["name"])
        for seed in seeds[1:]: run(entry, row["lr"], seed)
    rows = save()
    print(markdown_table(rows))
    print(f"wrote {out}")
    return 0


def _device_name() -> str:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"


if __name__ == "__main__":
    sys.exit(main())
