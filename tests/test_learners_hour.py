"""Issue 18 (the learner's hour): a run sized by the clock ends within its budget with its schedule decayed and
resumes to the same end; resume says what it does (a stretched schedule, a finished run); the multi-tensor
optimizers equal the per-parameter lessons on the smoke model over many steps and across a resume; batched
evaluation (left-padded prompts) gives the batch-1 completions token for token, greedy and seeded sampling."""
import math
import time
import warnings
from pathlib import Path

import pytest
import torch

from neoxcourse.config import load_config
from neoxcourse.schedules import build_schedule

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.yml"
BUDGET_TOLERANCE_S = 10.0   # a budgeted CPU run may overrun by this much (plus the 5% margin it holds back)


def smoke(save, **overrides):
    return load_config(SMOKE, {"save": str(save), "log-interval": 1, **overrides})


def test_time_budget_ends_in_time_decayed_and_resumes_to_the_same_end(offline_wandb, tmp_path):
    from neoxcourse.train import CALIBRATION_STEPS, train
    minutes = 0.5
    cfg = smoke(tmp_path / "ck", **{"train-iters": 100000, "eval-interval": 20, "checkpoint-factor": 20,
                                    "training.time_budget_minutes": minutes})
    start = time.perf_counter()
    first = train(cfg)
    wall = time.perf_counter() - start
    assert wall <= minutes * 60 + BUDGET_TOLERANCE_S, (wall, first.train_iters_reason)
    end = first.train_iters
    assert CALIBRATION_STEPS < end < 100000 and first.iterations == end, first.train_iters_reason
    assert "time budget 0.5 min" in first.train_iters_reason and f"train-iters {end}" in first.train_iters_reason
    lr_end = build_schedule(cfg.schedule, end, cfg.optimizer.lr)(end - 1)     # the last step's rate
    assert abs(lr_end - cfg.schedule.min_lr) < 0.02 * cfg.optimizer.lr, lr_end   # decayed at its end
    # stopped half-way (a disconnect), the resumed run continues the same schedule to the same end
    half = smoke(tmp_path / "ck2", **{"train-iters": 100000, "eval-interval": 20, "checkpoint-factor": 1,
                                      "training.time_budget_minutes": minutes})
    stop = {}
    def interrupt(step, res):
        if res.train_iters == 0 and step == CALIBRATION_STEPS + 3: stop["at"] = step; raise KeyboardInterrupt
    part = train(half, on_step=interrupt)
    assert part.interrupted and stop["at"] == part.iterations
    resumed = train(half, resume=True)
    assert resumed.iterations == resumed.train_iters == part.train_iters > part.iterations
    assert resumed.train_iters_reason.startswith("time budget")


def test_raising_train_iters_on_resume_warns_with_the_jump_and_a_finished_run_does_nothing(
        offline_wandb, tmp_path, capsys):
    from neoxcourse.train import train
    cfg = smoke(tmp_path / "ck", **{"train-iters": 6, "eval-interval": 6, "checkpoint-factor": 3})
    train(cfg)
    capsys.readouterr()
    again = train(cfg, resume=True)                       # finished: nothing to do
    out = capsys.readouterr().out
    assert "nothing left to do" in out and "no W&B run opened" in out and again.wandb_run_id is None
    assert again.iterations == 6
    longer = smoke(tmp_path / "ck", **{"train-iters": 12, "eval-interval": 6, "checkpoint-factor": 3})
    with pytest.warns(UserWarning, match=r"planned for 6.*learning rate at iteration 6 goes from "
                                         r"0\.0003 to .*--set train-iters=6"):
        res = train(longer, resume=True)
    assert res.iterations == 12


def _smoke_model():
    from neoxcourse.model import GPTNeoX
    cfg = load_config(SMOKE)
    torch.manual_seed(0)
    return cfg, GPTNeoX(cfg.model)


@pytest.mark.parametrize("name", ["sgd", "adamw", "lion", "adafactor", "muon", "schedule_free_adamw"])
def test_foreach_equals_per_parameter_on_the_smoke_model(name):
    from dataclasses import replace
    from neoxcourse.optim import build_optimizer
    cfg, _ = _smoke_model()
    params = {"sgd": {"momentum": 0.9}, "muon": {"ns_dtype": "float32"}}.get(name, {})
    oc = replace(cfg.optimizer, type=name, lr=1e-3, params=params)
    finals = []
    for foreach_from in (None, 0, 10):                    # lesson only; multi-tensor; switch at a checkpoint
        _, model = _smoke_model()
        opt = build_optimizer(model, oc, foreach=foreach_from == 0)
        x = torch.randint(cfg.model.vocab_size, (2, 33), generator=torch.Generator().manual_seed(1))
        for step in range(25):
            if step == foreach_from and foreach_from:
                sd = opt.state_dict()
                opt = build_optimizer(model, oc, foreach=True); opt.load_state_dict(sd)
            loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
            opt.zero_grad(); loss.backward(); opt.step()
        assert type(opt).__name__.startswith("Foreach") == (foreach_from is not None)
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    for other in finals[1:]:
        if name in ("adafactor", "muon"):   # norms kept on the device, batched Newton-Schulz: rounding only,
            # though Adam (Muon's AdamW part) magnifies it in the key biases, whose true gradient is zero
            assert ((other - finals[0]).norm() / finals[0].norm()).item() < 1e-4
        else:
            assert torch.equal(other, finals[0])


def test_batched_completions_equal_batch_one(tmp_path):
    from neoxcourse.evaluate import continue_text, continue_texts
    from neoxcourse.tokenizer import load_tokenizer
    cfg, model = _smoke_model()
    model.eval()
    tok = load_tokenizer(cfg)
    prompts = ["def add(a, b):\n    return", "import os\n", "class Stack:\n    def __init__(self):\n        self.",
               "x = [i for i in range(10)", "for", "    while True:\n        if line.startswith('#'):\n"]
    batched = continue_texts(model, tok, prompts, 1, 12, stops=("\n",), batch_size=4)
    alone = [continue_text(model, tok, p, 1, 12, stops=("\n",)) for p in prompts]
    assert batched == alone
    sampled = continue_texts(model, tok, prompts[:3], 2, 10, 0.8, 0.95, ("\ndef ",), [7, 8, 9], batch_size=4)
    alone = [continue_text(model, tok, p, 2, 10, 0.8, 0.95, ("\ndef ",), 7 + i) for i, p in enumerate(prompts[:3])]
    assert sampled == alone
