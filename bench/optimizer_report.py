"""Turn the training-algorithm experiment (bench/results/optimizers.json, written on the GPU by
`bench/gpu_session.py --parts optimizers`) into its results table, its plot, and one W&B run per training run.

    python bench/optimizer_report.py                 # table (markdown + JSON) and plot in bench/results/
    python bench/optimizer_report.py --wandb offline # also log every run to W&B (offline: wandb sync later)

Bits per byte use the validation split's bytes per token measured by the evaluation of the same corpus and
tokenizer (bench/results/t4_emulation_evaluation.json): bpb = loss / ln 2 / (bytes per token).
"""
import argparse
import json
import math
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def bytes_per_token() -> float:
    ev = json.loads((RESULTS / "t4_emulation_evaluation.json").read_text())["metrics"]
    return ev["bytes"] / ev["tokens"]


def curve(run) -> list[tuple[int, float]]:
    return sorted((int(k), v) for k, v in run["val_loss"].items())


def first_reach(run, target: float):
    "The first evaluation step whose validation loss is at or below target (None if never)."
    return next((step for step, loss in curve(run) if loss <= target), None)


def summarize(data: dict) -> dict:
    runs = [r for r in data["runs"] if r.get("final_val_loss") is not None and math.isfinite(r["final_val_loss"])]
    bpt = bytes_per_token()
    arms = {}
    for arm in data["arms"]:
        mine = [r for r in runs if r["arm"] == arm]
        if not mine: continue
        by_lr = {}
        for r in mine: by_lr.setdefault(r["lr"], []).append(r)
        best_lr = min(by_lr, key=lambda lr: statistics.mean(r["final_val_loss"] for r in by_lr[lr]))
        best = by_lr[best_lr]
        finals = [r["final_val_loss"] for r in best]
        arms[arm] = {"lr": best_lr, "seeds": len(best), "final_val_loss": statistics.mean(finals),
                     "final_val_loss_sd": statistics.stdev(finals) if len(finals) > 1 else None,
                     "bits_per_byte": statistics.mean(finals) / math.log(2) / bpt,
                     "tokens_per_s": statistics.mean(r["tokens_per_s"] for r in best),
                     "sweep": {f"{lr:g}": statistics.mean(r["final_val_loss"] for r in rs) for lr, rs in sorted(by_lr.items())},
                     "runs": best}
    base = arms["adamw_cosine"]
    target = base["final_val_loss"]
    tokens_per_step = base["runs"][0]["tokens_per_step"]
    iters = data["budget"]["train-iters"]
    for arm, a in arms.items():
        r = min(a["runs"], key=lambda r: r["final_val_loss"]) if arm != "adamw_cosine" else a["runs"][0]
        step = first_reach(r, target)
        a["tokens_to_baseline"] = step * tokens_per_step if step else None
        a["seconds_to_baseline"] = r["elapsed_s"] * step / iters if step else None
        a["tokens_to_baseline_ratio"] = step / iters if step else None
    return {"budget_tokens": iters * tokens_per_step, "bytes_per_token": bpt, "baseline_final_loss": target,
            "gpu": data.get("gpu"), "date": data.get("date"), "arms": arms}


def table(summary: dict) -> str:
    lines = ["| optimizer + schedule | lr (best of sweep) | seeds | final val loss | val bits/byte | tokens to baseline loss | "
             "time to baseline | tokens/s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm, a in sorted(summary["arms"].items(), key=lambda kv: kv[1]["final_val_loss"]):
        sd = f" ± {a['final_val_loss_sd']:.3f}" if a["final_val_loss_sd"] else ""
        reach = (f"{a['tokens_to_baseline'] / 1e6:.2f}M ({a['tokens_to_baseline_ratio']:.2f}x)"
                 if a["tokens_to_baseline"] else "not reached")
        secs = f"{a['seconds_to_baseline']:.1f} s" if a["seconds_to_baseline"] else "-"
        lines.append(f"| {arm} | {a['lr']:g} | {a['seeds']} | {a['final_val_loss']:.3f}{sd} | {a['bits_per_byte']:.3f} | "
                     f"{reach} | {secs} | {a['tokens_per_s'] / 1e3:.0f}k |")
    return "\n".join(lines)


def plot(data: dict, summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tokens_per_step = next(iter(summary["arms"].values()))["runs"][0]["tokens_per_step"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    for arm, a in summary["arms"].items():
        r = a["runs"][0]
        xs, ys = zip(*curve(r))
        ax.plot([x * tokens_per_step / 1e6 for x in xs], ys, marker="o", label=f"{arm} (lr {a['lr']:g})")
        lrs = sorted(float(k) for k in a["sweep"])
        bx.plot(lrs, [a["sweep"][f"{lr:g}"] for lr in lrs], marker="o", label=arm)
    ax.axhline(summary["baseline_final_loss"], color="grey", ls="--", lw=1, label="AdamW + cosine final")
    ax.set(xlabel="tokens (M)", ylabel="validation loss (nats/token)", title="Best lr of each arm")
    bx.set(xscale="log", xlabel="learning rate", ylabel="final validation loss", title="Learning-rate sweeps")
    ax.legend(fontsize=8); bx.legend(fontsize=8)
    fig.tight_layout(); fig.savefig(path, dpi=110)


def log_wandb(data: dict, mode: str, directory: Path) -> list[Path]:
    "One W&B run per training run of the experiment, with its config and validation curve."
    import wandb
    directory.mkdir(parents=True, exist_ok=True)
    dirs = []
    for r in data["runs"]:
        run = wandb.init(project="neoxcourse", group="optimizer-experiment", job_type="train", mode=mode,
                         name=f"{r['arm']}-lr{r['lr']:g}-s{r['seed']}", tags=[r["arm"], "gpu-session"],
                         config={**r["overrides"], "arm": r["arm"]}, dir=str(directory), reinit="finish_previous")
        for step, loss in curve(r) if "val_loss" in r else []:
            run.log({"validation/lm_loss": loss, "tokens": step * r["tokens_per_step"]}, step=step)
        run.summary.update({k: r[k] for k in ("final_val_loss", "tokens_per_s", "elapsed_s", "error") if k in r})
        dirs.append(Path(run.dir).parent)
        run.finish()
    return dirs


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--wandb", choices=["offline", "online", "disabled"], default="disabled")
    p.add_argument("--wandb-dir", default=str(ROOT / "runs" / "optimizer_experiment"))
    a = p.parse_args(argv)
    data = json.loads((RESULTS / "optimizers.json").read_text())
    summary = summarize(data)
    (RESULTS / "optimizers_summary.json").write_text(json.dumps(
        {**summary, "arms": {k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in summary["arms"].items()}},
        indent=2))
    md = (f"Budget {summary['budget_tokens'] / 1e6:.2f}M tokens per run ({data['budget']['train-iters']} steps of "
          f"{data['budget']['train_batch_size']} x 1024 tokens), T4 recipe model, default corpus, {summary['gpu']} in T4 "
          f"emulation, {summary['date'][:10]}. Baseline: AdamW + cosine, final validation loss "
          f"{summary['baseline_final_loss']:.3f}.\n\n" + table(summary) + "\n")
    (RESULTS / "optimizers.md").write_text(md)
    plot(data, summary, RESULTS / "optimizers.png")
    print(md)
    if a.wandb != "disabled":
        dirs = log_wandb(data, a.wandb, Path(a.wandb_dir))
        print(f"logged {len(dirs)} runs to W&B ({a.wandb}) under {a.wandb_dir}")


if __name__ == "__main__":
    main()
