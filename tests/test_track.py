"""The optimization track end to end on a tiny track (the smoke model, 4 iterations): offline submissions made here
by `train` are verified from their runs and checkpoints and ranked by recomputed bits per byte; every kind of bad
submission is rejected with its reason."""
import dataclasses
import shutil

import pytest

from neoxcourse.config import load_config, project_root
from neoxcourse.experiments import Rejected, Track, find_run_dirs, leaderboard, verify_submission
from neoxcourse.tracking import read_run
from neoxcourse.train import train

FIXED = (("train-iters", 4), ("train_batch_size", 4), ("train_micro_batch_size_per_gpu", 4), ("eval-interval", 4),
         ("eval-iters", 2), ("log-interval", 2), ("checkpoint-factor", 0))
TINY = Track(config="configs/smoke.yml", overrides=FIXED, token_budget=4 * 4 * 128, batch_range=(2, 8),
             val_windows=4, tolerance=1e-3)


def submit_run(tmp_path, name: str, **changes):
    "A learner's submission: `neoxcourse train` of the track's config with their changes, W&B offline."
    save = tmp_path / name
    train(load_config(project_root() / TINY.config, {**dict(FIXED), "save": str(save),
                                                     "neoxcourse.wandb.mode": "offline", **changes}))
    return save


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    import os
    tmp = tmp_path_factory.mktemp("track")
    old = {k: os.environ.get(k) for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_API_KEY")}
    os.environ.update(WANDB_MODE="offline", WANDB_DIR=str(tmp)); os.environ.pop("WANDB_API_KEY", None)
    try:
        runs = {"ada": [submit_run(tmp, "ada-1", seed=1), submit_run(tmp, "ada-2", seed=2)],
                "grace": [submit_run(tmp, "grace-1", seed=1, lr=3e-4), submit_run(tmp, "grace-2", seed=2, lr=3e-4)]}
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    return tmp, runs


def record(save):
    return read_run(find_run_dirs(save)[-1])


def test_good_submissions_are_verified_and_ranked_by_recomputed_bits_per_byte(submissions):
    tmp, runs = submissions
    entry = verify_submission(record(runs["ada"][0]), runs["ada"][0], TINY)
    assert abs(entry["val_loss_recomputed"] - entry["val_loss_logged"]) < 1e-3 * entry["val_loss_logged"]
    assert 0 < entry["bits_per_byte"] < 20 and len(entry["val_sha256"]) == 64
    board = leaderboard("track", runs=runs, track=TINY)
    assert [r["learner"] for r in board.records] == sorted((r["learner"] for r in board.records),
                                                           key=lambda n: next(x["mean"] for x in board.records
                                                                              if x["learner"] == n))
    assert {r["learner"]: r["seeds"] for r in board.records} == {"ada": 2, "grace": 2}
    assert [r["rank"] for r in board.records] == [1, 2] and not board.rejected
    grace = next(r for r in board.records if r["learner"] == "grace")
    assert "lr=0.0003" in grace["recipe"] and "seed" not in grace["recipe"]
    assert "Optimization track" in board.table() and "spread" in board.table()


def test_one_seed_is_not_a_record(submissions):
    tmp, runs = submissions
    board = leaderboard("track", runs={"ada": runs["ada"][:1]}, track=TINY)
    assert not board.records and board.unconfirmed[0]["seeds"] == 1
    assert "a record needs 2" in board.table()


@pytest.mark.parametrize("kind, change, reason", [
    ("changed model", {"hidden-size": 128}, "changed hidden-size (64 -> 128)"),
    ("changed data", {"neoxcourse": {"data": {"source": "codeparrot"}}}, "neoxcourse.data.source"),
    ("budget overrun", {"train-iters": 8}, "exceed the budget"),
    ("batch out of limits", {"train_batch_size": 64}, "the track allows 2 to 8"),
])
def test_rule_breaking_configs_are_rejected(submissions, kind, change, reason):
    tmp, runs = submissions
    run = record(runs["ada"][0])
    config = {**run.config, **{k: v for k, v in change.items() if k != "neoxcourse"}}
    if "neoxcourse" in change:
        config["neoxcourse"] = {**run.config["neoxcourse"], "data": {**run.config["neoxcourse"]["data"],
                                                                       **change["neoxcourse"]["data"]}}
    with pytest.raises(Rejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        verify_submission(dataclasses.replace(run, config=config), runs["ada"][0], TINY)


def test_foreign_or_missing_config_is_rejected(submissions):
    tmp, runs = submissions
    run = record(runs["ada"][0])
    with pytest.raises(Rejected, match="foreign config"):
        verify_submission(dataclasses.replace(run, config={"exercise": "A7_scaling_up"}), runs["ada"][0], TINY)
    with pytest.raises(Rejected, match="has no config"):
        verify_submission(dataclasses.replace(run, config={}), runs["ada"][0], TINY)


def test_tampered_numbers_are_rejected(submissions):
    tmp, runs = submissions
    run = record(runs["ada"][0])
    lower = lambda rows: [{**r, "validation/lm_loss": r["validation/lm_loss"] - 0.5} if "validation/lm_loss" in r
                          else r for r in rows]
    with pytest.raises(Rejected, match="tampered summary"):
        verify_submission(dataclasses.replace(run, summary={**run.summary, "validation/lm_loss": 0.1}),
                          runs["ada"][0], TINY)
    with pytest.raises(Rejected, match="does not match its run"):   # history and summary edited together
        verify_submission(dataclasses.replace(run, history=lower(run.history), summary={}), runs["ada"][0], TINY)


def test_a_checkpoint_of_another_run_is_listed_as_rejected(submissions):
    tmp, runs = submissions
    mixed = tmp / "mixed"
    shutil.copytree(runs["ada"][0] / "wandb", mixed / "wandb")              # ada's first run ...
    for step in runs["ada"][1].glob("step_*"): shutil.copytree(step, mixed / step.name)   # ... her second's weights
    (tmp / "empty").mkdir(exist_ok=True)
    board = leaderboard("track", runs={"mallory": [mixed, tmp / "empty"]}, track=TINY)
    reasons = [r["reason"] for r in board.rejected]
    assert any("belongs to run" in r for r in reasons) and any("no W&B run" in r for r in reasons), reasons
    assert not board.records and not board.unconfirmed
    assert "rejected" in board.table()
