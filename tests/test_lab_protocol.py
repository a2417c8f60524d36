"""bench/lab_protocol.py without a GPU: the protocol check (bad input named before any run), the planner's
stages (tuning, edge extension, seeds, lr transfer across budgets), the paired interval, tokens to a target,
and the committed tables rebuilt from the committed JSON. A few seconds on a CPU."""
import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import lab_protocol as lp  # noqa: E402


def protocol():
    return json.loads(json.dumps(lp.PROTOCOL))


@pytest.mark.parametrize("change, words", [
    (lambda p: p["arms"]["lion"].update(optimizer="lyon"), ["unknown optimizer 'lyon'", "adamw", "muon"]),
    (lambda p: p["arms"]["sgd"].update(schedule="cosinus"), ["unknown schedule 'cosinus'", "wsd", "cosine"]),
    (lambda p: p["studies"][0].update(budget=3), ["unknown key 'budget'", "overrides", "seeds"]),
    (lambda p: p["arms"]["lion"]["overrides"].update({"warmupp": 0.1}), ["unknown key 'warmupp'", "warmup"]),
    (lambda p: p["studies"][0]["arms"].update(adam_sine={"grid": [1e-3]}), ["unknown arm 'adam_sine'", "lion"]),
])
def test_bad_protocol_names_the_valid_choices(change, words):
    p = protocol()
    change(p)
    with pytest.raises(lp.ProtocolError) as e:
        lp.check_protocol(p)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_bad_plan_file_stops_before_any_run(tmp_path):
    p = protocol()
    p["arms"]["muon_wsd"]["optimizer"] = "moon"
    plan, out = tmp_path / "plan.yml", tmp_path / "out.json"
    plan.write_text(yaml.safe_dump(p))
    with pytest.raises(SystemExit) as e:
        lp.main(["--plan", str(plan), "--out", str(out)])
    assert "unknown optimizer 'moon'" in str(e.value.code) and not out.exists()


def fake_run(study, arm, lr, seed, loss):
    curve = {10: loss + 1.0, 20: loss}
    return dict(key=lp.run_key(study, arm, lr, seed), study=study, arm=arm, lr=lr, seed=seed, val_curve=curve,
                final_val_loss=loss, final_bits_per_byte=loss / math.log(2) / 3.0, tokens_per_step=100,
                tokens=2000, diverged=not math.isfinite(loss))


def drive(p, loss_of):
    "Run the planner to the end with losses from loss_of(study, arm, lr, seed); the runs it asked for."
    runs = {}
    for _ in range(100):
        ready, _ = lp.Planner(p, runs).jobs()
        if not ready: return runs
        for job in ready:
            runs[lp.run_key(*job)] = fake_run(*job, loss_of(*job))
    raise AssertionError("the planner did not finish")


def test_planner_tunes_extends_seeds_and_transfers_across_budgets():
    p = protocol()
    best = {"adamw_cosine": 4e-3, "adamw_wsd": 2e-3, "muon_wsd": 0.04, "lion": 4e-4,
            "schedule_free_adamw": 2e-3, "sgd": 30.0}
    loss = lambda st, arm, lr, seed: 3.0 + math.log(lr / best[arm]) ** 2 + 0.001 * seed
    runs = drive(p, loss)
    keys = set(runs)
    # t4-320: adamw_cosine's best (4e-3) is the grid's edge: 8e-3 is tried too, and 4e-3 stays tuned
    assert "t4-320/adamw_cosine/lr=0.008/seed=1234" in keys
    assert {f"t4-320/adamw_cosine/lr=0.004/seed={s}" for s in (1235, 1236)} <= keys
    # sgd's best is far above the grid: two extensions (3, 9), then it stops; one seed (not a leader)
    assert {k for k in keys if k.startswith("t4-320/sgd/")} == {
        f"t4-320/sgd/lr={lr:g}/seed=1234" for lr in (0.1, 0.3, 1.0, 3.0, 9.0)}
    # t4-1000 tries the 320-tuned lr, half and twice it; t4-3200 follows the 1000-tuned lr with 2 seeds
    assert {k for k in keys if k.startswith("t4-1000/adamw_wsd/") and k.endswith("1234")} == {
        f"t4-1000/adamw_wsd/lr={lr:g}/seed=1234" for lr in (0.001, 0.002, 0.004)}
    assert {k for k in keys if k.startswith("t4-3200/muon_wsd/")} == {
        f"t4-3200/muon_wsd/lr=0.04/seed={s}" for s in (1234, 1235)}
    assert {k for k in keys if k.startswith("anchor/")} == {
        "anchor/adamw_cosine/lr=0.001/seed=1234", "anchor/muon_wsd/lr=0.02/seed=1234"}
    # lab: 5 grids of 3, 2 more seeds each, and extensions below adamw_wsd's and lion's grids and two above sgd's
    assert sum(k.startswith("lab/") for k in keys) == 5 * 3 + 5 * 2 + 1 + 1 + 2


def test_planner_waits_for_the_tuning_a_later_stage_needs():
    p = protocol()
    runs = {}
    ready, waiting = lp.Planner(p, runs).jobs()
    assert not any(j[0] in ("t4-1000", "t4-3200") for j in ready)
    assert not any(j[3] != 1234 for j in ready)                 # seeds only once an lr is tuned
    assert any("t4-1000/muon_wsd: waits" in w for w in waiting)
    assert ready[0][0] == "lab" and ready[0][2] == 4e-3           # the middle of the grid first


def test_paired_interval_is_the_t_interval_of_the_differences():
    a, b = {1: 1.1, 2: 1.2, 3: 1.3, 4: 9.0}, {1: 1.0, 2: 1.0, 3: 1.0}
    got = lp.paired_interval(a, b)                               # differences 0.1, 0.2, 0.3 (seed 4 unpaired)
    half = 4.303 * 0.1 / math.sqrt(3)
    assert got["pairs"] == 3
    assert got["mean"] == pytest.approx(0.2) and got["low"] == pytest.approx(0.2 - half, abs=1e-9)
    assert got["high"] == pytest.approx(0.2 + half, abs=1e-9)
    assert lp.paired_interval({1: 2.0}, {1: 1.5}) == dict(mean=0.5, low=None, high=None, pairs=1)


def test_tokens_to_reach_interpolates_between_evaluations():
    curve = {10: 5.0, 20: 4.0, 30: 3.0}
    assert lp.tokens_to_reach(curve, 100, 3.5) == pytest.approx(2500)
    assert lp.tokens_to_reach(curve, 100, 5.0) == 1000
    assert lp.tokens_to_reach(curve, 100, 2.0) is None


def test_summary_pairs_each_arm_with_the_baseline_by_seed():
    p = protocol()
    p["studies"] = [p["studies"][0]]
    runs = {}
    for arm, grid in p["studies"][0]["arms"].items():
        for lr in grid["grid"]:
            runs[lp.run_key("lab", arm, lp.lr3(lr), 1234)] = fake_run("lab", arm, lp.lr3(lr), 1234, 3.0 + lr)
    rows = {r["arm"]: r for r in lp.summarize(p, runs, {})["lab"]}
    assert rows["adamw_cosine"]["lr"] == 2e-3 and rows["adamw_cosine"]["lr_at_grid_edge"]
    assert rows["muon_wsd"]["paired_vs_baseline"]["mean"] == pytest.approx((0.02 - 0.002) / math.log(2) / 3.0)


@pytest.mark.skipif(not (ROOT / "bench" / "results" / "lab_protocol.json").exists(), reason="no GPU results yet")
def test_committed_tables_are_rebuilt_from_the_committed_json(tmp_path):
    src = ROOT / "bench" / "results" / "lab_protocol.json"
    shutil.copy(src, tmp_path / "lab_protocol.json")
    assert lp.main(["--report", "--out", str(tmp_path / "lab_protocol.json")]) == 0
    assert (tmp_path / "lab_protocol.md").read_text() == src.with_suffix(".md").read_text()
