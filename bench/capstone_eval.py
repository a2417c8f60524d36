"""Evaluate the capstone's two final checkpoints (when bench/capstone.py ran out of time in evaluation).

    PYTHONPATH=. python bench/capstone_eval.py --out bench/results    # one process per run, in parallel
"""
import argparse, json, multiprocessing as mp, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "bench"))
from provenance import header, write_result  # noqa: E402


def one(name, out, prov):
    from neoxcourse.device import emulate_t4
    from neoxcourse.checkpoint import latest_checkpoint
    from neoxcourse.config import load_config
    from neoxcourse.evaluate import evaluate
    emulate_t4()
    ckpt = latest_checkpoint(ROOT / "checkpoints" / "t4" / "capstone" / name)
    cfg = load_config(ROOT / "configs" / "t4.yml", {"wandb.mode": "disabled"})
    tic = time.perf_counter()
    m = evaluate(cfg, ckpt, log=False)
    write_result(Path(out, f"capstone_eval_{name}.json"), {**prov, "checkpoint": str(ckpt.relative_to(ROOT)),
                 "seconds": time.perf_counter() - tic, "metrics": m})


if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = p.parse_args()
    prov = {**header("configs/t4.yml"), "mode": "t4_emulation"}
    ps = [mp.get_context("spawn").Process(target=one, args=(n, a.out, prov)) for n in ("adamw-cosine", "adamw-wsd")]
    for x in ps: x.start()
    for x in ps: x.join()
