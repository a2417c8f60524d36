"""Integration tests of chapter 05's loop on the smoke config (CPU, a few steps each): exact resume after a stop
at an arbitrary step, a SIGKILL while a checkpoint is written, the loss falling, the offline W&B run read back,
and DDP on two gloo processes matching one process at the same global batch."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from neoxcourse.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from neoxcourse.config import load_config
from neoxcourse.tracking import read_run

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.yml"
SHORT = {"train-iters": 8, "eval-interval": 4, "checkpoint-factor": 3, "log-interval": 1}


def smoke(save, **overrides):
    return load_config(SMOKE, {"save": str(save), **overrides})


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    "One full smoke run with W&B offline, shared by the tests that read it."
    from neoxcourse.train import train
    tmp = tmp_path_factory.mktemp("smoke")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline"); mp.delenv("WANDB_API_KEY", raising=False)
    mp.setenv("WANDB_DATA_DIR", str(tmp / "wandb-data"))
    try:
        cfg = smoke(tmp / "ck")
        start = time.time()
        result = train(cfg)
        result.wall = time.time() - start
    finally:
        mp.undo()
    return cfg, result


def test_loss_decreases_on_smoke(smoke_run):
    cfg, r = smoke_run
    assert r.iterations == cfg.training.train_iters == len(r.losses)
    first = r.losses[1]
    assert abs(first - math.log(cfg.model.vocab_size)) < 0.5, first    # an untrained model: ~log(V)
    assert sum(list(r.losses.values())[-5:]) / 5 < first - 1.5, r.losses
    assert r.val_losses[r.iterations] < first - 1.5, r.val_losses
    assert r.skipped_steps == 0 and r.precision == "fp32"
    assert r.checkpoint == latest_checkpoint(cfg.resolve(cfg.training.save))
    t = cfg.training
    saved = sorted(set(range(t.checkpoint_factor, t.train_iters + 1, t.checkpoint_factor)) | {t.train_iters})
    kept = [f"step_{s:08d}" for s in saved[-t.keep_last_n_checkpoints:]]
    assert [p.name for p in list_checkpoints(r.checkpoint.parent)] == kept


def test_offline_wandb_run_holds_config_and_metrics(smoke_run):
    cfg, r = smoke_run
    run = read_run(r.wandb_dir.parent, r.wandb_run_id)
    t, n = cfg.training, cfg.training.train_iters
    assert run.config["train-iters"] == n and run.config["hidden-size"] == cfg.model.hidden_size
    assert run.config["optimizer"]["type"] == cfg.optimizer.type
    loss = run.metric("train/lm_loss")
    assert sorted(loss) == sorted(set(range(t.log_interval, n + 1, t.log_interval)) | {n})
    assert all(loss[k] == r.losses[k] for k in loss)                      # the very floats the loop saw
    assert run.metric("validation/lm_loss") == r.val_losses
    ppl = run.metric("validation/lm_loss_ppl")
    assert abs(ppl[n] - math.exp(r.val_losses[n])) < 1e-6 * ppl[n]
    for key in ("train/learning_rate", "train/grad_norm", "train/tokens_seen", "runtime/tokens_per_sec"):
        assert run.metric(key), key
    assert run.metric("train/tokens_seen")[n] == n * t.global_batch_size * cfg.model.seq_length
    assert run.summary["samples/completions"]["nrows"] == 3            # the completions table at each eval


@pytest.mark.parametrize("stop_at", [5])
def test_resume_is_bitwise_exact(offline_wandb, tmp_path, stop_at):
    "Dropout on, so the random state must come back too; the stop falls between two checkpoints."
    from neoxcourse.train import train
    extra = {**SHORT, "hidden-dropout": 0.1, "attention-dropout": 0.1}
    a = train(smoke(tmp_path / "a", **extra, use_wandb=False))

    def stop(step, res):
        if step == stop_at: raise KeyboardInterrupt
    b1 = train(smoke(tmp_path / "b", **extra), on_step=stop)
    assert b1.interrupted and b1.iterations == stop_at
    assert latest_checkpoint(tmp_path / "b").name == f"step_{stop_at:08d}"
    b2 = train(smoke(tmp_path / "b", **extra), resume=True)
    assert sorted(b2.losses) == list(range(stop_at + 1, 9))
    assert {**b1.losses, **b2.losses} == a.losses                        # bit for bit
    assert b2.val_losses[8] == a.val_losses[8]
    assert b2.wandb_run_id == b1.wandb_run_id is not None                # the same W&B run continues
    run = read_run(tmp_path / "b", b1.wandb_run_id)
    assert run.metric("train/lm_loss") == a.losses                        # both sessions, one history


KILL_SCRIPT = """
import sys
from neoxcourse.config import load_config
from neoxcourse.train import train
cfg = load_config(sys.argv[1], {"save": sys.argv[2], "train-iters": 10000, "checkpoint-factor": 1,
                                "keep-last-n-checkpoints": 3, "eval-interval": 100000, "use_wandb": False})
train(cfg)
"""


def test_sigkill_while_writing_a_checkpoint_leaves_a_loadable_latest(tmp_path):
    from neoxcourse.model import GPTNeoX
    save = tmp_path / "ck"
    log = open(tmp_path / "train.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(SMOKE), str(save)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        # wait for two complete checkpoints, then for the next one to be half-written
        while len(list_checkpoints(save)) < 2 and time.time() < deadline and proc.poll() is None: time.sleep(0.01)
        while not list(save.glob(".tmp-step_*")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.0005)
        assert proc.poll() is None, f"the training process died:\n{(tmp_path / 'train.log').read_text()[-3000:]}"
        assert time.time() < deadline, "the training process never wrote a checkpoint"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill(); proc.wait(); log.close()
    assert list(save.glob(".tmp-step_*")), "killed after the write finished: the test did not hit the window"
    cfg = smoke(save)
    path = latest_checkpoint(save)
    assert path is not None
    state = load_checkpoint(path, GPTNeoX(cfg.model))
    assert state["step"] == int(path.name.split("_")[1]) >= 2


DDP_SCRIPT = """
import json, os, sys
from neoxcourse.config import load_config
from neoxcourse.train import train
save, out, stop, resume = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "resume"
cfg = load_config(sys.argv[1], {"save": save, "train-iters": 6, "eval-interval": 3,
                                "checkpoint-factor": 100, "use_wandb": False})
def interrupt(step, res):
    if step == stop: raise KeyboardInterrupt
r = train(cfg, resume=resume, on_step=interrupt)
if os.environ.get("RANK", "0") == "0":
    json.dump({"losses": r.losses, "val": r.val_losses, "accum": r.gradient_accumulation_steps},
              open(out, "w"))
"""


def test_ddp_two_gloo_processes_match_one(tmp_path):
    "Same global batch of 8: one process accumulates 2 micro-batches of 4, each of two processes 1."
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

    def run(launcher, name, stop=0, resume=False):
        r = subprocess.run([*launcher, str(script), str(SMOKE), str(tmp_path / name), str(tmp_path / f"{name}.json"),
                            str(stop), "resume" if resume else "fresh"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads((tmp_path / f"{name}.json").read_text())

    a, b = run([sys.executable], "one"), run(torchrun, "two")
    t = smoke(tmp_path).training
    assert (a["accum"], b["accum"]) == (t.global_batch_size // t.micro_batch_size,
                                        t.global_batch_size // (2 * t.micro_batch_size))
    assert a["losses"].keys() == b["losses"].keys() and len(a["losses"]) == 6
    for k in a["losses"]:
        assert abs(a["losses"][k] - b["losses"][k]) < 1e-4, (k, a["losses"][k], b["losses"][k])
    for k in a["val"]:
        assert abs(a["val"][k] - b["val"][k]) < 1e-4
    assert list_checkpoints(tmp_path / "two")[-1].name == "step_00000006"  # rank 0 saved, once
    # a checkpoint written by two processes, stopped at step 3, resumes in one process
    run(torchrun, "switch", stop=3)
    c = run([sys.executable], "switch", resume=True)
    assert sorted(c["losses"], key=int) == ["4", "5", "6"]
    for k in c["losses"]:
        assert abs(a["losses"][k] - c["losses"][k]) < 1e-4, (k, a["losses"][k], c["losses"][k])


def test_cli_train_smoke_runs_under_a_minute(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    start = time.time()
    r = subprocess.run([sys.executable, "-m", "neoxcourse.cli", "train", str(SMOKE), "--set", f"save={tmp_path}/ck"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert latest_checkpoint(tmp_path / "ck").name == f"step_{smoke(tmp_path).training.train_iters:08d}"
    print(f"neoxcourse train configs/smoke.yml: {time.time() - start:.1f} s")


def test_validation_windows_do_not_depend_on_the_training_seed(tmp_path, monkeypatch):
    "Runs with different seeds are scored on the same validation text (the optimizer experiment's seeds rely on it)."
    import neoxcourse.train as loop
    seen = []

    class Recording(loop.BatchSampler):
        def __init__(self, path, batch_size, seq_length, seed, *args, **kwargs):
            seen.append((Path(path).name, seed))
            super().__init__(path, batch_size, seq_length, seed, *args, **kwargs)
    monkeypatch.setattr(loop, "BatchSampler", Recording)
    for seed in (11, 12):
        loop.train(smoke(tmp_path / str(seed), **{"train-iters": 2, "eval-interval": 1, "seed": seed,
                                                   "use_wandb": False}))
    val_seeds = {s for name, s in seen if name == "val.bin"}
    train_seeds = [s for name, s in seen if name == "train.bin"]
    assert val_seeds == {loop.VALIDATION_SEED}
    assert len(train_seeds) == 2 and train_seeds[0] != train_seeds[1]   # the training stream does follow the seed
