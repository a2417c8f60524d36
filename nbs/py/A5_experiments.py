# Generated from nbs/A5_experiments.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A5_experiments.py`.

# %% [markdown]
# # Appendix A5 · Experiments: W&B conventions, comparing runs, sweeps, reports, the leaderboard, and GitHub
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A5_experiments.ipynb)
#
# > Run experiments as a team: one W&B project, runs named, grouped and tagged the same way by everyone;
# > runs compared from W&B or from local offline folders; sweeps and reports; exercise submissions ranked
# > on a leaderboard that rejects malformed ones; and a branch and pull request per experiment.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** the team's W&B conventions (names, groups, tags), how to compare runs by the tokens
#   each needs to reach a loss, how sweeps and reports are checked, and a branch and pull request per experiment.
# - **You need:** chapters 05 and 00a; a CPU is enough (W&B runs offline).
# - **Time:** about 3 minutes on a T4; about 2 minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** loss curves of real runs side by side, a comparison table, every sweep in
#   `configs/sweeps/` reported OK, and a leaderboard that rejects a malformed submission.

# %%
#| default_exp experiments

# %%
#| hide
# In Colab only: fetch the course and install it (again, if an earlier install failed). Elsewhere: nothing.
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.exists("/content/neoxcourse/.git"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/neoxcourse/neoxcourse",
                        "/content/neoxcourse"], check=True)
    if subprocess.run([sys.executable, "-c", "import neoxcourse.train"], cwd="/content").returncode != 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/neoxcourse[dev]"], check=True)
    sys.path.insert(0, "/content/neoxcourse")  # an editable install is seen only after a restart
    os.chdir("/content/neoxcourse/nbs")

# %% tags=["parameters"]
config_path = None  # None: configs/t4.yml on a GPU, configs/smoke.yml on a CPU
overrides = {}      # GPT-NeoX keys, dotted for nested ones, e.g. {"train-iters": 50}

# %%
#| export
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from neoxcourse.config import ConfigError, load_config, parse_override, read_yaml
from neoxcourse.exercises import Exercise, get_exercise
from neoxcourse.tracking import RunRecord, read_run

# %%
#| hide
import tempfile
import time

from fastcore.test import test_close, test_eq, test_fail

from neoxcourse.config import default_config_path

_ = os.environ.setdefault("WANDB_SILENT", "true")

# %%
cfg = load_config(config_path or default_config_path(), overrides)

# %% [markdown]
# ## One project, one set of conventions
#
# An experiment is a question ("does Lion beat AdamW on the T4 recipe at equal tokens?") answered by a set
# of runs that differ in one thing. W&B has a field for each level: the **project** holds the course's runs,
# the **group** gathers one experiment's runs (and W&B plots a group as one line with a band), the **name**
# says what a run is at a glance, **tags** let you filter across experiments, and the **job type**
# separates training runs from evaluations and exercise submissions. When everyone fills them the same way,
# a teammate's runs line up with yours without a conversation. These functions are those conventions,
# written once.
#
# Where runs go: a team sets `WANDB_ENTITY` (the team) and `WANDB_PROJECT` once in the environment (on
# Colab, in the notebook's secrets), and they win over the config, so shared configs need no edits; without
# them, the config's `wandb_team` and `wandb_project` decide.

# %%
#| export
DEFAULT_PROJECT = "neoxcourse"

def wandb_target(cfg=None) -> tuple[str | None, str]:
    "(entity, project) for runs: WANDB_ENTITY / WANDB_PROJECT when set, else the config's, else the course's."
    entity = os.environ.get("WANDB_ENTITY") or (cfg.wandb.entity if cfg is not None else None)
    project = os.environ.get("WANDB_PROJECT") or (cfg.wandb.project if cfg is not None else None)
    return entity or None, project or DEFAULT_PROJECT


# %%
#| hide
_env = {k: os.environ.pop(k, None) for k in ("WANDB_ENTITY", "WANDB_PROJECT")}
test_eq(wandb_target(cfg), (cfg.wandb.entity, cfg.wandb.project))
test_eq(wandb_target(None), (None, "neoxcourse"))
os.environ.update({"WANDB_ENTITY": "my-team", "WANDB_PROJECT": "neox-exp"})
test_eq(wandb_target(cfg), ("my-team", "neox-exp"))
for k, v in _env.items():
    if v is None: os.environ.pop(k, None)
    else: os.environ[k] = v


# %% [markdown]
# **Experiment id = group.** Short, lower case, dashes: `lion-vs-adamw`, `wsd-cooldown`. A config sets it
# with `wandb_group`; without one, the config file's name is the group (`smoke`, `t4`).
#
# **Name** = what varies most often, in a fixed order: optimizer, learning rate, schedule, model shape
# (layers x width), global batch and seed: `adamw-lr1e-3-cosine-8x384-b32-s1234`. Two runs with the same
# name in one group are repeats (W&B keeps both; their ids differ).
#
# **Tags** = `key:value` facets for filtering across groups (`opt:lion`, `sched:wsd`, `model:8x384`,
# `data:stdlib`, `prec:fp16`), plus the config's own tags and anything you add, such as `baseline`.
#
# `wandb_init_kwargs` gives them as `wandb.init` arguments; `apply_conventions` writes them into a config,
# so the training loop's own `wandb.init` (chapter 05) uses them.

# %%
#| export
def slug(text: str) -> str:
    "Lower case, dashes: a safe W&B group or branch name."
    return re.sub(r"[^a-z0-9._]+", "-", str(text).lower()).strip("-.") or "run"

def experiment_id(cfg) -> str:
    "The experiment (= W&B group) of a config: `wandb_group`, else the config file's name."
    if cfg.wandb.group: return slug(cfg.wandb.group)
    return slug(Path(cfg.path).stem) if cfg.path else "adhoc"

def short_number(x: float) -> str:
    "3e-3 rather than 0.003: learning rates as people say them."
    if x == 0: return "0"
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}" if not 1e-2 <= abs(x) < 1e3 else f"{x:g}"

def run_name(cfg) -> str:
    "The run's name: the config's `wandb_run_name`, else optimizer-lr-schedule-shape-batch-seed."
    if cfg.wandb.run_name: return cfg.wandb.run_name
    m, t = cfg.model, cfg.training
    return (f"{cfg.optimizer.type.lower()}-lr{short_number(cfg.optimizer.lr)}-{cfg.schedule.lr_decay_style}-"
            f"{m.num_layers}x{m.hidden_size}-b{t.global_batch_size}-s{t.seed}")

def run_tags(cfg, extra=()) -> list[str]:
    "Facet tags (`opt:`, `sched:`, `model:`, `data:`, `prec:`), the config's tags and `extra`; no repeats."
    m = cfg.model
    facets = [f"opt:{cfg.optimizer.type.lower()}", f"sched:{cfg.schedule.lr_decay_style}",
              f"model:{m.num_layers}x{m.hidden_size}", f"data:{cfg.data.source}", f"prec:{cfg.training.precision}"]
    tags = [str(t)[:64] for t in [*facets, *cfg.wandb.tags, *extra]]   # W&B caps a tag at 64 characters
    return list(dict.fromkeys(tags))

def wandb_init_kwargs(cfg, job_type: str = "train") -> dict:
    "The `wandb.init` arguments every course run uses: project, entity, group, name, tags and job type."
    entity, project = wandb_target(cfg)
    return {"project": project, "entity": entity, "group": experiment_id(cfg), "name": run_name(cfg),
            "tags": run_tags(cfg), "job_type": job_type}

def apply_conventions(cfg, extra_tags=()):
    "The config with its W&B group, run name and tags filled in by the conventions (for `train(cfg)`)."
    import dataclasses
    w = dataclasses.replace(cfg.wandb, group=experiment_id(cfg), run_name=run_name(cfg),
                            tags=tuple(run_tags(cfg, extra_tags)))
    return dataclasses.replace(cfg, wandb=w)


# %%
print(wandb_init_kwargs(cfg))

# %%
#| hide
test_eq(short_number(3e-3), "3e-3"); test_eq(short_number(1e-3), "1e-3"); test_eq(short_number(0.02), "0.02")
test_eq(short_number(6e-4), "6e-4"); test_eq(short_number(0.1), "0.1"); test_eq(short_number(0), "0")
test_eq(slug("Lion vs AdamW (T4)"), "lion-vs-adamw-t4")
_c = load_config(text="num-layers: 2\nhidden-size: 64\nnum-attention-heads: 4\ntrain_batch_size: 8\n"
                      "optimizer: {type: Lion, params: {lr: 3.0e-4}}\nwandb_group: Lion vs AdamW\n")
test_eq(run_name(_c), "lion-lr3e-4-cosine-2x64-b8-s1234")
test_eq(experiment_id(_c), "lion-vs-adamw")
test_eq(run_tags(_c, ["baseline", "opt:lion"]),
        ["opt:lion", "sched:cosine", "model:2x64", "data:stdlib", "prec:fp32", "baseline"])
test_eq(experiment_id(load_config(cfg.path, {"wandb_group": None})), slug(Path(cfg.path).stem))
_a = apply_conventions(_c, ["baseline"])
test_eq((_a.wandb.group, _a.wandb.run_name, _a.wandb.tags[-1]), ("lion-vs-adamw", run_name(_c), "baseline"))

# %% [markdown]
# ## Real runs to compare
#
# A small experiment on the loaded config: the same recipe at three learning rates, each a real training
# run with the course's loop, logged to W&B in its own folder (offline unless you are logged in: nothing is
# lost, `wandb sync` uploads it later). `demo_iters` keeps it to seconds on a CPU: short runs, evaluated
# every few steps, with short sample completions. On a T4, set `demo_iters = 600` for a comparison worth
# reading (about ten minutes a run).

# %%
from neoxcourse.train import train
demo_iters = 8
demo = {"train-iters": demo_iters, "eval-interval": max(demo_iters // 2, 1), "log-interval": max(demo_iters // 4, 1),
        "eval-iters": 1, "checkpoint-factor": None, "evaluation.max_new_tokens": 4}
experiment = "lr-sweep-demo"
lrs = [cfg.optimizer.lr / 3, cfg.optimizer.lr, cfg.optimizer.lr * 3]
run_dirs = []
t0 = time.time()
for lr in lrs:
    run_cfg = load_config(cfg.path, {**overrides, **demo, "lr": lr, "wandb_group": experiment,
                                     "save": str(cfg.resolve("checkpoints") / experiment / f"lr{short_number(lr)}")})
    result = train(apply_conventions(run_cfg, ["demo"]))
    run_dirs.append(result.wandb_dir)
    print(f"lr {short_number(lr)}: final train loss {result.losses[result.iterations]:.3f}, run {result.wandb_run_id}")
print(f"{len(lrs)} runs in {time.time() - t0:.0f} s")


# %% [markdown]
# ## Reading runs back
#
# Two sources, one shape: a `RunRecord` (appendix A4) with the run's id, group, job type, tags, config,
# summary and history. **Offline**, appendix A4's `read_run` parses a run folder's `run-<id>.wandb` file,
# waiting for wandb's writer (a separate process that may still be flushing just after `finish()`);
# `load_runs` reads a folder of run folders with it and skips, with a warning, a run torn by a crash. **Online**, `api_runs` asks `wandb.Api()` for a project's runs with a MongoDB-style filter
# (`{"group": "lr-sweep-demo"}`) and converts each; it needs a login, so here it runs only when one exists.

# %%
#| export
def find_run_dirs(root) -> list[Path]:
    "Every W&B run folder under `root` (offline-run-* and run-*), oldest first."
    dirs = {p.parent for p in Path(root).rglob("run-*.wandb")}
    stamp = lambda p: (re.search(r"\d{8}_\d{6}", p.name) or re.search("", "")).group(0)  # 20261129_075302
    return sorted(dirs, key=lambda p: (stamp(p), p.name))

def load_runs(source, wait: float = 20.0) -> list[RunRecord]:
    "RunRecords from a folder of runs, a list of run folders, or RunRecords; unreadable runs are skipped, with a warning."
    if isinstance(source, (str, Path)):
        source = find_run_dirs(source) if not list(Path(source).glob("run-*.wandb")) else [source]
    out = []
    for r in source:
        try: out.append(r if isinstance(r, RunRecord) else read_run(r, wait=wait))
        except ValueError as e: warnings.warn(f"skipped {e}")
    return out

def api_runs(project: str | None = None, entity: str | None = None, filters: dict | None = None,
             samples: int = 1000, cfg=None) -> list[RunRecord]:
    "The runs of a W&B project (online: needs `wandb login`), as RunRecords with up to `samples` history rows."
    import wandb
    default_entity, default_project = wandb_target(cfg)
    path = "/".join(p for p in (entity or default_entity, project or default_project) if p)
    out = []
    for r in wandb.Api().runs(path, filters=filters or {}):
        out.append(RunRecord(id=r.id, project=r.project, group=r.group or "", job_type=r.job_type or "",
                             tags=list(r.tags), config={k: v for k, v in r.config.items() if not k.startswith("_")},
                             summary=dict(r.summary.items()), history=r.history(samples=samples, pandas=False),
                             path=Path(*r.path)))
    return out


# %%
runs = load_runs(run_dirs)
for r in runs:
    print(r.id, r.config.get("wandb-run-name"), r.group, r.job_type, r.tags[:3], f"{len(r.history)} history rows")

# %%
#| hide
test_eq(len(runs), 3)
test_eq({r.group for r in runs}, {experiment})
test_eq([r.config["lr"] for r in runs], lrs)
test_eq(all(r.job_type == "train" for r in runs), True)
test_eq([r.tags[-1] for r in runs], ["demo"] * 3)
test_eq(runs[0].config["wandb-run-name"].startswith(cfg.optimizer.type.lower() + "-lr"), True)
test_eq(len(find_run_dirs(cfg.resolve("checkpoints") / experiment)) >= 3, True)
_crashed = Path(tempfile.mkdtemp()) / "offline-run-20260101_000000-crashed0"
_crashed.mkdir(); (_crashed / "run-crashed0.wandb").write_bytes((run_dirs[0] / f"run-{runs[0].id}.wandb").read_bytes()[:600])
os.utime(_crashed / "run-crashed0.wandb", (time.time() - 3600, time.time() - 3600))   # an hour old, no exit record
_t = time.monotonic()
test_fail(lambda: read_run(_crashed), contains="unreadable W&B run file")            # said at once, not waited for
assert time.monotonic() - _t < 2
with warnings.catch_warnings(record=True) as _w:
    warnings.simplefilter("always")
    test_eq(len(load_runs([_crashed, *run_dirs])), 3)
    assert any("skipped" in str(w.message) for w in _w)

# %%
from neoxcourse.env import wandb_key_available
if wandb_key_available():
    online = api_runs(filters={"group": experiment}, cfg=cfg)
    print(f"{len(online)} runs of group {experiment} in W&B")
else:
    print("not logged in to W&B: comparing the local run folders only")

# %% [markdown]
# ## Comparing runs: a table and the curves
#
# A comparison answers "what differed, and what came out". `config_differences` finds the config keys whose
# values are not the same in every run (the experiment's variables, whatever they are); `compare_runs`
# makes one row a run with those keys and the final value of each metric, best first. Final values come from
# the summary when the run wrote one there, else from the last history row that has the metric.

# %%
#| export
IGNORED_KEYS = ("save", "load", "wandb_run_name", "wandb-run-name")   # differ between runs by construction

def flatten(d: dict, prefix: str = "") -> dict:
    "Nested config {'optimizer': {'type': 'adamw'}} -> {'optimizer.type': 'adamw'}."
    out = {}
    for k, v in d.items():
        if isinstance(v, dict): out.update(flatten(v, f"{prefix}{k}."))
        else: out[f"{prefix}{k}"] = v
    return out

def config_differences(runs: list) -> list[str]:
    "The (flattened) config keys whose values are not the same in all runs."
    flat = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    return [k for k in keys if k.split(".")[-1] not in IGNORED_KEYS and k not in IGNORED_KEYS
            and len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat}) > 1]

def metric_values(run, metric: str, x: str = "_step") -> tuple[list, list]:
    "(x values, metric values) of the history rows that log `metric`."
    rows = [row for row in run.history if isinstance(row.get(metric), (int, float)) and x in row]
    return [row[x] for row in rows], [row[metric] for row in rows]

def final_value(run, metric: str):
    "The run's final `metric`: its summary value, else the last logged one, else None."
    v = run.summary.get(metric)
    if isinstance(v, (int, float)): return v
    return (metric_values(run, metric)[1] or [None])[-1]

def compare_runs(runs: list, metrics=("train/lm_loss", "validation/lm_loss"), keys=None,
                 lower_is_better: bool = True) -> list[dict]:
    "One row a run: id, name, group, the config keys that differ, the final metrics; sorted by the first metric."
    keys = config_differences(runs) if keys is None else list(keys)
    rows = []
    for r in runs:
        flat = flatten(r.config)
        name = flat.get("wandb-run-name") or flat.get("wandb_run_name")
        rows.append({"run": r.id, **({"name": name} if name else {}), "group": r.group,
                     **{k: flat.get(k) for k in keys}, **{m: final_value(r, m) for m in metrics}})
    sign = 1 if lower_is_better else -1
    return sorted(rows, key=lambda row: (row[metrics[0]] is None, sign * (row[metrics[0]] or 0)))

def format_table(rows: list[dict], digits: int = 4) -> str:
    "A Markdown table of dict rows (floats rounded), for notebooks, reports and pull requests."
    if not rows: return "(no runs)"
    cols = list(dict.fromkeys(k for row in rows for k in row))
    cell = lambda v: f"{v:.{digits}g}" if isinstance(v, float) else ("" if v is None else str(v))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(cell(row.get(c)) for c in cols) + " |" for row in rows])


# %%
print(config_differences(runs))
table = compare_runs(runs)
print(format_table(table))

# %%
#| hide
test_eq("lr" in config_differences(runs), True)
test_eq("save" in config_differences(runs), False)
test_eq([row["lr"] for row in table] != [], True)
test_eq(table[0]["train/lm_loss"] == min(row["train/lm_loss"] for row in table), True)
_fake = [RunRecord("a", "p", "g", "train", [], {"lr": 1, "optimizer": {"type": "adamw"}}, {}, [{"_step": 1, "m": 3.0}], Path(".")),
         RunRecord("b", "p", "g", "train", [], {"lr": 2, "optimizer": {"type": "adamw"}}, {"m": 2.0}, [], Path("."))]
test_eq(config_differences(_fake), ["lr"])
test_eq([r["run"] for r in compare_runs(_fake, metrics=("m",))], ["b", "a"])
test_eq([r["run"] for r in compare_runs(_fake, metrics=("m",), lower_is_better=False)], ["a", "b"])
test_eq(format_table([{"a": 1.23456, "b": None}]), "| a | b |\n|---|---|\n| 1.235 |  |")


# %% [markdown]
# The curves say more than the final numbers: whether a run is still improving, diverged, or was simply
# noisier. One line a run, labelled with the keys that differ.

# %%
#| export
def plot_runs(runs: list, metrics=("train/lm_loss", "validation/lm_loss"), x: str = "_step", label_keys=None):
    "Loss curves of several runs, one panel a metric, each run labelled by the config keys that differ."
    import matplotlib.pyplot as plt
    label_keys = config_differences(runs) if label_keys is None else label_keys
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for r in runs:
            xs, ys = metric_values(r, metric, x)
            flat = flatten(r.config)
            label = ", ".join(f"{k}={flat.get(k)}" for k in label_keys) or r.id
            ax.plot(xs, ys, marker="o" if len(xs) < 8 else None, label=label)
        ax.set(xlabel="iteration" if x == "_step" else x, ylabel=metric, title=metric)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# %%
fig = plot_runs(runs)

# %% [markdown]
# Comparing two training algorithms fairly means comparing them **at equal tokens** (and separately at
# equal wall-clock time, since a step of Muon costs more than one of AdamW). A useful single number is the
# speed-up in tokens: how many tokens the baseline needs to reach its final loss, divided by how many the
# other run needs to reach the same loss. `tokens_to_reach` finds the first crossing, interpolating
# linearly between the two logged points around it (validation is logged every few hundred steps, so the
# crossing rarely falls on a logged one).

# %% [markdown]
# ### Exercise first: speed-up in tokens
#
# Write it now, before reading on: the next cell is the library's `tokens_to_reach`.
#
# **Task.** In `exercises/A5_experiments/starter.py`, write `tokens_to_reach(history, target,
# tokens_per_step, metric)`: given a run's history (a list of dicts, one a logged step, each with `_step` and
# maybe `metric`), return the number of tokens seen when `metric` first falls to `target` or below,
# interpolating linearly between the logged step before the crossing and the one at it; return the first
# step's tokens if the very first logged value is already at or below the target, and `None` if the metric
# never gets there. Rows without the metric are skipped. Write it without importing `neoxcourse.experiments`.
#
# **How it is checked.** `check_exercise("A5_experiments", tokens_to_reach)` runs your function on histories
# with hand-computed answers (a crossing between rows, an exact hit, a noisy curve, rows without the metric, a
# target never reached), on 40 hidden random curves drawn afresh at every check, and on a pair of runs shaped like FACTS' AdamW and Muon curves, whose token
# speed-up it reports. It passes when every answer is within 1e-6 (relative) of the expected one (pass/fail, not
# ranked), and returns `max_relative_error` and `speedup`. `python starter.py` runs it.
#
# **How to submit.** `python starter.py --submit --name YOUR_NAME`, or
# `submit("A5_experiments", tokens_to_reach, name="YOUR_NAME")`; `leaderboard("A5_experiments")` lists you.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
import math

import numpy as np

from neoxcourse.exercises import hidden_rng

def _curve(steps, a: float, b: float, c: float, metric: str = "validation/lm_loss") -> list:
    "A history with `metric` = a + b / sqrt(step / c) logged at `steps` (the shape of a loss curve)."
    return [{"_step": s, metric: a + b / math.sqrt(s / c)} for s in steps]

def _exercise_cases() -> list:
    m = "validation/lm_loss"
    h = [{"_step": 10, m: 5.0}, {"_step": 20, m: 4.0}, {"_step": 30, "train/lm_loss": 3.2}, {"_step": 40, m: 3.0}]
    noisy = [{"_step": 1, m: 5.0}, {"_step": 2, m: 4.0}, {"_step": 3, m: 4.5}, {"_step": 4, m: 3.0}]
    return [(h, 4.5, 100, 1500.0), (h, 3.5, 100, 3000.0), (h, 4.0, 100, 2000), (h, 6.0, 100, 1000),
            (h, 2.0, 100, None), (noisy, 4.2, 1000, 1800.0), ([], 1.0, 10, None)]

def _reference_tokens(history, target, tps, m):
    "An independent reference (numpy, not the library's loop): tokens at the first logged crossing of target."
    pts = np.array([(r["_step"], r[m]) for r in history if isinstance(r.get(m), (int, float))], dtype=float)
    below = np.nonzero(pts[:, 1] <= target)[0] if len(pts) else []
    if len(below) == 0: return None
    i = below[0]
    if i == 0 or pts[i - 1, 1] == pts[i, 1]: return float(pts[i, 0] * tps)
    return float(np.interp(target, [pts[i, 1], pts[i - 1, 1]], [pts[i, 0], pts[i - 1, 0]]) * tps)

def _random_cases(rng, n: int = 40) -> list:
    "Hidden cases, new at every check: noisy falling curves, rows without the metric, targets anywhere."
    m, cases = "validation/lm_loss", []
    for _ in range(n):
        steps = sorted(set(int(s) for s in rng.integers(1, 5000, int(rng.integers(2, 30)))))
        values = 2 + 3 * np.exp(-np.asarray(steps) / rng.uniform(300, 3000)) + rng.normal(0, 0.05, len(steps))
        history = [{"_step": s, m: float(v)} if rng.random() < 0.8 else {"_step": s, "train/lm_loss": float(v)}
                   for s, v in zip(steps, values)]
        target, tps = float(rng.uniform(values.min() - 0.1, values.max())), int(rng.integers(1, 10**5))
        cases.append((history, target, tps, _reference_tokens(history, target, tps, m)))
    return cases

def check_speedup_exercise(tokens_to_reach_fn) -> dict:
    "Check exercise A5: the learner's tokens_to_reach on hand-computed and hidden random cases; report the speed-up."
    m, worst = "validation/lm_loss", 0.0
    for i, (history, target, tps, want) in enumerate(_exercise_cases() + _random_cases(hidden_rng())):
        got = tokens_to_reach_fn(history, target, tps, m)
        if (want is None) != (got is None):
            raise ExerciseError(f"case {i}: target {target}: expected {want}, got {got!r}"
                                + (" (never reached: return None)" if want is None else ""))
        if want is None: continue
        err = abs(got - want) / abs(want)
        if err > 1e-6:
            hint = " (interpolate between the row before the crossing and the row at it)" if i in (0, 1, 5) else ""
            raise ExerciseError(f"case {i}: target {target}, tokens_per_step {tps}: expected {want}, got {got}{hint}")
        worst = max(worst, err)
    steps = range(200, 2401, 200)                        # validation every 200 of 2400 steps, as in FACTS' runs
    adamw, muon = _curve(steps, 1.5, 0.2, 2400), _curve(steps, 1.476, 0.2, 2400)  # Muon: AdamW's loss at 0.8x
    target = adamw[-1][m]
    base, cand = tokens_to_reach_fn(adamw, target, 32 * 1024, m), tokens_to_reach_fn(muon, target, 32 * 1024, m)
    if not base or not cand: raise ExerciseError("the AdamW / Muon pair gave no crossing; check the <= test")
    return {"max_relative_error": worst, "speedup": round(base / cand, 4)}

register_exercise(Exercise("A5_experiments", "Speed-up in tokens", "max_relative_error", False, (0.0, 1e-6),
                           check_speedup_exercise))

# %% [markdown]
# The library's own `tokens_to_reach` (defined just below) passes, and a version that forgets to interpolate (returning the
# tokens of the first row at or below the target) fails with a hint.

# %%
from neoxcourse.experiments import tokens_to_reach as library_tokens_to_reach   # the next cell, exported
result = check_speedup_exercise(library_tokens_to_reach)
print(result)
assert result["max_relative_error"] < 1e-12 and abs(result["speedup"] - 1.25) < 0.01, result
def _no_interpolation(history, target, tps, metric):
    return next((r["_step"] * tps for r in history if r.get(metric, math.inf) <= target), None)
test_fail(lambda: check_speedup_exercise(_no_interpolation), contains="interpolate")


# %%
#| export
def tokens_to_reach(history: list, target: float, tokens_per_step: int, metric: str = "validation/lm_loss",
                    x: str = "_step") -> float | None:
    "Tokens seen when `metric` first falls to `target` (linear between logged points); None if it never does."
    prev = None
    for row in history:
        value, step = row.get(metric), row.get(x)
        if not isinstance(value, (int, float)) or step is None: continue
        if value <= target:
            if prev is None or prev[1] == value: return step * tokens_per_step
            frac = (prev[1] - target) / (prev[1] - value)                     # where between the two rows
            return (prev[0] + frac * (step - prev[0])) * tokens_per_step
        prev = (step, value)
    return None

def tokens_per_step(run) -> int:
    "Global batch x sequence length, from a run's (GPT-NeoX-style) config."
    flat = {k.replace("-", "_"): v for k, v in flatten(run.config).items()}
    return int(flat["train_batch_size"]) * int(flat["seq_length"])

def token_speedup(baseline, candidate, metric: str = "validation/lm_loss") -> float | None:
    "Tokens the baseline needs to reach its final `metric` / tokens the candidate needs; > 1: candidate faster."
    target = final_value(baseline, metric)
    base = tokens_to_reach(baseline.history, target, tokens_per_step(baseline), metric)
    cand = tokens_to_reach(candidate.history, target, tokens_per_step(candidate), metric)
    return None if not base or not cand else base / cand


# %%
for r in runs:
    s = token_speedup(runs[1], r, "train/lm_loss")
    print(f"lr {r.config['lr']:.1e}: speed-up over lr {runs[1].config['lr']:.1e} in tokens: "
          + (f"{s:.2f}x" if s else "never reached its final loss"))

# %%
#| hide
_h = [{"_step": 1, "m": 5.0}, {"_step": 2, "m": 4.0}, {"_step": 3, "m": 3.0}]
test_eq(tokens_to_reach(_h, 3.5, 100, "m"), 250.0)
test_eq(tokens_to_reach(_h, 6.0, 100, "m"), 100)
test_eq(tokens_to_reach(_h, 1.0, 100, "m"), None)
test_eq(tokens_to_reach([{"_step": 1, "x": 1}] + _h, 4.0, 10, "m"), 20)
test_close(token_speedup(runs[1], runs[1], "train/lm_loss"), 1.0)

# %% [markdown]
# ## Sweeps
#
# A W&B sweep is a YAML file: a search `method` (`grid`, `random` or `bayes`), the `metric` to optimize with
# its `goal`, the `parameters` and their values or distributions, and the `command` the agent runs for each
# trial. The course's sweeps live in `configs/sweeps/`. Their parameter names are config keys, exactly as
# `--set` takes them (`lr`, `optimizer.type`, `warmup`), so each trial is the base config with overrides:
#
# ```bash
# wandb sweep configs/sweeps/adamw_cosine.yaml   # AdamW's peak lr, 5 values; registers the sweep; prints its id ENTITY/PROJECT/SWEEP_ID
# wandb agent ENTITY/PROJECT/SWEEP_ID        # run trials here; start one agent per GPU (or per Colab)
# wandb agent --count 4 ENTITY/PROJECT/SWEEP_ID
# ```
#
# Sweeps need the W&B server (the controller picks the next trial), so there is no offline sweep; what we
# can do offline is catch the mistakes that would waste a GPU hour: a misspelled method, a parameter that is
# not a config key, a value the config refuses (`lr: "3e-4"` as text), a grid of 400 trials. `validate_sweep`
# checks the structure and loads the base config (the `.yml` in the command, with the command's own
# `--set` overrides) once with each value of each parameter. The course's sweep files call
# `neoxcourse train CONFIG --set ... --set ${args_no_hyphens}`: the agent substitutes `lr=0.001`, which makes
# one more `--set`. That works for exactly one swept parameter (each `--set` takes one `key=value`), and
# `validate_sweep` says so when a file sweeps two that way.

# %%
#| export
SWEEP_METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "q_uniform", "log_uniform",
                 "log_uniform_values", "q_log_uniform", "q_log_uniform_values", "inv_log_uniform",
                 "inv_log_uniform_values", "normal", "q_normal", "log_normal", "q_log_normal", "beta")
ARG_MACROS = ("${args}", "${args_no_hyphens}", "${args_json}", "${args_json_file}")

def load_sweep(path) -> dict:
    "A sweep YAML file as a dict (numbers such as 3e-4 read as numbers)."
    d = read_yaml(Path(path).read_text(), str(path))
    if not isinstance(d, dict): raise ConfigError(f"{path}: a sweep must be a mapping (method, metric, parameters)")
    return d

def sweep_base_config(sweep: dict, root=None) -> Path | None:
    "The config file a sweep's `command` trains (its first .yml/.yaml argument), if any."
    from neoxcourse.config import project_root
    for arg in sweep.get("command") or []:
        if isinstance(arg, str) and arg.endswith((".yml", ".yaml")):
            p = Path(arg)
            return p if p.is_absolute() else Path(root or project_root()) / p
    return None

def command_overrides(sweep: dict) -> dict:
    "The fixed `--set key=value` overrides written in a sweep's command (every trial gets them)."
    args, out = [str(a) for a in sweep.get("command") or []], {}
    for flag, value in zip(args, args[1:]):
        if flag == "--set" and not any(m in value for m in ARG_MACROS): out.update([parse_override(value)])
    return out

def _sample_values(spec: dict) -> list:
    "The values of one parameter worth trying against the config: the list, the one value, or min and max."
    if "values" in spec: return list(spec["values"])
    if "value" in spec: return [spec["value"]]
    return [spec[k] for k in ("min", "max") if k in spec]

def validate_sweep(sweep: dict, base_config=None) -> list[str]:
    "Problems that would make `wandb sweep` or its trials fail; an empty list when the sweep is sound."
    problems = []
    method = sweep.get("method")
    if method not in SWEEP_METHODS: problems.append(f"method {method!r} is not one of {', '.join(SWEEP_METHODS)}")
    metric = sweep.get("metric")
    if metric is not None and (not isinstance(metric, dict) or not metric.get("name")
                               or metric.get("goal", "minimize") not in ("minimize", "maximize")):
        problems.append("metric must be {name: ..., goal: minimize|maximize}")
    if method == "bayes" and not metric: problems.append("a bayes sweep needs a metric to optimize")
    params = sweep.get("parameters")
    if not isinstance(params, dict) or not params: return problems + ["parameters must be a non-empty mapping"]
    for name, spec in params.items():
        if not isinstance(spec, dict): problems.append(f"parameter '{name}' must be a mapping (values, value, or a distribution)"); continue
        kinds = [k for k in ("values", "value", "distribution", "min") if k in spec]
        if not kinds: problems.append(f"parameter '{name}' has none of values, value, min/max, distribution")
        if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
            problems.append(f"parameter '{name}': values must be a non-empty list")
        if "distribution" in spec and spec["distribution"] not in DISTRIBUTIONS:
            problems.append(f"parameter '{name}': unknown distribution {spec['distribution']!r}")
        if ("min" in spec) != ("max" in spec) or ("min" in spec and not spec["min"] < spec["max"]):
            problems.append(f"parameter '{name}': min and max must both be given, min < max")
        if method == "grid" and not ("values" in spec or "value" in spec):
            problems.append(f"parameter '{name}': a grid sweep needs values, not a distribution")
    command = [str(a) for a in sweep.get("command") or []]
    if command and not any(any(m in a for m in ARG_MACROS) for a in command):
        problems.append(f"command passes no parameters to the trial (add one of {', '.join(ARG_MACROS)})")
    if "--set" in command and "${args_no_hyphens}" in command and len(params) > 1 \
            and command[command.index("${args_no_hyphens}") - 1] == "--set":
        problems.append(f"'--set ${{args_no_hyphens}}' passes one parameter (each --set takes one key=value); "
                        f"this sweep has {len(params)}: sweep one, or call sweep_train (appendix A5) with the pairs")
    try: fixed = command_overrides(sweep)
    except ConfigError as e: return problems + [f"command: {e}"]
    base = base_config or sweep_base_config(sweep)
    if base is None: return problems
    if not Path(base).exists(): return problems + [f"the base config {base} does not exist"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, spec in params.items():
            for value in _sample_values(spec) if isinstance(spec, dict) else []:
                try: load_config(base, {**fixed, name: value})
                except ConfigError as e: problems.append(f"parameter '{name}' = {value!r}: {e}")
    return problems

def sweep_size(sweep: dict) -> int | None:
    "Trials in a grid sweep (the product of the value counts); None for random and bayes (unbounded)."
    if sweep.get("method") != "grid": return None
    return math.prod(len(s.get("values", [s.get("value")])) for s in sweep["parameters"].values())


# %% [markdown]
# Every sweep file in `configs/sweeps/`, checked:

# %%
from neoxcourse.config import project_root
sweep_files = sorted((project_root() / "configs" / "sweeps").glob("*.y*ml"))
for path in sweep_files:
    sweep = load_sweep(path)
    problems = validate_sweep(sweep)
    fixed = ", ".join(f"{k}={v}" for k, v in command_overrides(sweep).items() if k != "wandb_group")
    print(f"{path.name}: {sweep.get('method')} over {', '.join(sweep.get('parameters', {}))} "
          f"({sweep_size(sweep) or 'open-ended'} trials) with {fixed or 'the base config'}: "
          + ("OK" if not problems else "; ".join(problems)))
    assert not problems, (path, problems)
if not sweep_files: print("no sweep files yet in configs/sweeps/")

# %%
#| hide
_good = {"method": "grid", "metric": {"name": "validation/lm_loss", "goal": "minimize"},
         "parameters": {"lr": {"values": [1e-3, 3e-3]}, "optimizer.type": {"values": ["adamw", "lion"]}},
         "command": ["${env}", "${interpreter}", "-c", "from neoxcourse.experiments import sweep_train; ...",
                     str(cfg.path.resolve()), "${args_no_hyphens}"]}
test_eq(validate_sweep(_good), [])
test_eq(sweep_size(_good), 4)
_bad = {"method": "gird", "metric": {"name": "x", "goal": "lowest"},
        "parameters": {"lr": {"values": ["fast"]}, "hiden-size": {"values": [64]}, "warmup": {"min": 0.5},
                       "seed": {"distribution": "gaussian", "min": 1, "max": 2}},
        "command": ["python", "train.py", str(cfg.path.resolve())]}
_p = validate_sweep(_bad)
for text in ("method 'gird'", "goal", "'lr' = 'fast'", "hiden-size", "min and max", "gaussian", "passes no parameters"):
    assert any(text in p for p in _p), (text, _p)
_p = validate_sweep({"method": "bayes", "parameters": {"lr": {"min": 1e-5, "max": 1e-2}}}, cfg.path)
test_eq(_p[0], "a bayes sweep needs a metric to optimize")
assert "must be between 0 and lr" in _p[1], _p                  # min_lr 3e-4 of the smoke config > 1e-5
test_eq(validate_sweep({"method": "random", "parameters": {"lr": {"min": 1e-3, "max": 1e-2}}}, cfg.path), [])
_set = {"method": "grid", "parameters": {"lr": {"values": [1e-5]}},
        "command": ["${env}", "neoxcourse", "train", str(cfg.path.resolve()), "--set", "min_lr=0.0", "--set", "${args_no_hyphens}"]}
test_eq(command_overrides(_set), {"min_lr": 0.0})
test_eq(validate_sweep(_set), [])                                # lr 1e-5 is fine once min_lr is 0
_two = {**_set, "parameters": {"lr": {"values": [1e-3]}, "warmup": {"values": [0.05]}}}
assert "passes one parameter" in validate_sweep(_two)[0]


# %% [markdown]
# What the agent runs. For each trial, `wandb agent` sets the sweep's run id in the environment and runs
# the `command`, replacing `${args_no_hyphens}` with the trial's `key=value` pairs; `wandb.init` inside the
# training loop picks the trial's run up from the environment, so its metrics go to the sweep. The course's
# files end their command with `--set ${args_no_hyphens}` (one swept parameter). To sweep several at once,
# `sweep_train` takes any number of pairs as overrides of a base config, and needs no new command:
#
# ```yaml
# command: [${env}, ${interpreter}, -c, "import sys; from neoxcourse.experiments import sweep_train; sweep_train(sys.argv[1], sys.argv[2:])",
#           configs/t4.yml, ${args_no_hyphens}]
# ```

# %%
#| export
def sweep_overrides(args: list[str]) -> dict:
    "`key=value` pairs from `wandb agent` (`${args_no_hyphens}`), as config overrides; `--key=value` too."
    return dict(parse_override(a.lstrip("-")) for a in args)

def sweep_train(config_path, args: list[str] = ()):
    "One sweep trial: the base config with the agent's `key=value` overrides, trained with W&B."
    from neoxcourse.train import train
    cfg = load_config(config_path, sweep_overrides(list(args)))
    return train(cfg)


# %%
test_eq(sweep_overrides(["lr=0.001", "--optimizer.type=lion", "warmup=0.05"]),
        {"lr": 0.001, "optimizer.type": "lion", "warmup": 0.05})


# %% [markdown]
# ## Reports
#
# A W&B report is a page of text, tables and live panels over a set of runs, and the place to write up an
# experiment for the team. The `wandb-workspaces` package builds one from Python (`pip install
# wandb-workspaces`; it is not a course requirement, and it needs a login). `build_report` uses it when it is
# installed and you are online, with a panel grid of the experiment's group and the comparison table;
# otherwise it says why and returns None, and `write_markdown_report` writes the same content, table and
# curves, as a Markdown file with a PNG, which works everywhere and can go into a pull request.

# %%
#| export
def build_report(runs: list, title: str, group: str | None = None, metrics=("train/lm_loss", "validation/lm_loss"),
                 entity: str | None = None, project: str | None = None, cfg=None) -> str | None:
    "A W&B report over `runs` (their group), built with wandb-workspaces; its URL, or None when unavailable."
    try:
        import wandb_workspaces.reports.v2 as wr
        from wandb_workspaces.reports.v2.interface import expr
    except ImportError:
        print("wandb-workspaces is not installed (pip install wandb-workspaces): no W&B report; "
              "use write_markdown_report for a local one")
        return None
    from neoxcourse.env import wandb_key_available
    if not wandb_key_available():
        print("not logged in to W&B: a report needs the server; use write_markdown_report for a local one")
        return None
    default_entity, default_project = wandb_target(cfg)
    group = group or runs[0].group
    report = wr.Report(entity=entity or default_entity, project=project or default_project, title=title,
                       description=f"Experiment {group}: {len(runs)} runs")
    runset = wr.Runset(entity=entity or default_entity, project=project or default_project, name=group,
                       filters=[expr.Metric("Group") == group])
    report.blocks = [wr.H1(title), wr.P(f"Runs of group {group}, compared on {', '.join(metrics)}."),
                     wr.PanelGrid(runsets=[runset], panels=[wr.LinePlot(x="Step", y=[m]) for m in metrics]),
                     wr.MarkdownBlock(format_table(compare_runs(runs, metrics)))]
    report.save()
    return report.url

def write_markdown_report(runs: list, path, title: str, metrics=("train/lm_loss", "validation/lm_loss")) -> Path:
    "The report offline: a Markdown file with the comparison table and a PNG of the curves next to it."
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_runs(runs, metrics)
    png = path.with_suffix(".png"); fig.savefig(png, dpi=100)
    import matplotlib.pyplot as plt; plt.close(fig)
    groups = sorted({r.group for r in runs})
    path.write_text(f"# {title}\n\nGroup(s): {', '.join(groups)}; {len(runs)} runs; varied: "
                    f"{', '.join(config_differences(runs)) or 'nothing'}.\n\n{format_table(compare_runs(runs, metrics))}\n\n"
                    f"![loss curves]({png.name})\n")
    return path


# %%
report = write_markdown_report(runs, cfg.resolve("checkpoints") / experiment / "report.md", "Learning rate, smoke recipe")
print(report.read_text())
url = build_report(runs, "Learning rate, smoke recipe", cfg=cfg)

# %%
#| hide
test_eq(report.with_suffix(".png").exists(), True)
test_eq("| run |" in report.read_text(), True)


# %% [markdown]
# ## Exercise submissions and the leaderboard
#
# `submit` (chapter 00a) turns a passing exercise answer into a W&B run with fixed conventions: job type
# `exercise`, group = the exercise id, the learner's name as a tag and in the summary, `exercise` in the
# config, and the check's result (the exercise's metric first) in the summary. The leaderboard lists the
# runs that claim an exercise (by group, config or summary), checks each one, and ranks the well-formed ones
# by the exercise's metric in the direction the exercise registered. A run is **rejected, with a reason**,
# when its job type is not `exercise`, its group is not the exercise id, it has no config or the config names
# another exercise, the metric is missing or not a finite number, the value lies outside the exercise's
# registered bounds (a bits-per-byte of 40 is a bug, not a record), or it has no learner. By default a
# learner appears once, with their best run; ties share a rank and the earlier submission is listed first.

# %%
#| export
def submission_problem(run, exercise: Exercise) -> str | None:
    "Why a run is not a well-formed submission of `exercise`, or None when it is."
    if run.job_type != "exercise": return f"job type is '{run.job_type}', not 'exercise'"
    if run.group != exercise.id: return f"group is '{run.group}', not the exercise id '{exercise.id}'"
    if not run.config: return "the run has no config"
    if run.config.get("exercise") != exercise.id:
        return f"config names exercise '{run.config.get('exercise')}', not '{exercise.id}'"
    value = run.summary.get(exercise.metric)
    if value is None: return f"no '{exercise.metric}' in the summary"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"'{exercise.metric}' is {value!r}, not a finite number"
    lo, hi = exercise.bounds
    if not lo <= value <= hi: return f"'{exercise.metric}' = {value} is outside the exercise's bounds [{lo}, {hi}]"
    if not learner_of(run): return "no learner name (tag or summary 'learner')"
    return None

def learner_of(run) -> str | None:
    "The learner who submitted a run: the summary's `learner`, else its first tag."
    return run.summary.get("learner") or (run.tags[0] if run.tags else None)

def claims(run, exercise_id: str) -> bool:
    "Does a run say it is a submission of this exercise (group, config or summary)?"
    return exercise_id in (run.group, run.config.get("exercise"), run.summary.get("exercise"))


# %%
#| export
@dataclass
class Leaderboard:
    "The ranked, well-formed submissions of one exercise, and the rejected ones with their reasons."
    exercise: Exercise
    ranked: list = field(default_factory=list)    # dicts: rank, learner, value, run, submitted
    rejected: list = field(default_factory=list)  # dicts: run, learner, reason

    def table(self) -> str:
        "The leaderboard as Markdown, rejected runs listed under it; a pass/fail exercise lists who passed."
        ex, arrow = self.exercise, "higher is better" if self.exercise.higher_is_better else "lower is better"
        if not ex.ranked:
            head = f"### {ex.id}: {ex.title} (pass/fail: not ranked)\n\n"
            body = format_table([{"learner": r["learner"], "passed": "yes", "run": r["run"]} for r in self.ranked]) \
                if self.ranked else "(no passing submissions)"
        else:
            head = f"### {ex.id}: {ex.title} ({ex.metric}, {arrow})\n\n"
            body = format_table([{"rank": r["rank"], "learner": r["learner"], ex.metric: r["value"], "run": r["run"]}
                                 for r in self.ranked]) if self.ranked else "(no well-formed submissions)"
        rej = "".join(f"\n- rejected {r['run']} ({r['learner'] or 'no learner'}): {r['reason']}" for r in self.rejected)
        return head + body + ("\n" + rej if rej else "")

    def __repr__(self): return self.table()

def leaderboard(exercise_id: str, runs=None, best_per_learner: bool = True, wait: float = 20.0, **api):
    "Rank an exercise's submissions (`runs` = a folder of run folders, a list of them or of RunRecords; None: W&B); "
    "'track': the optimization track (TrackBoard)."
    if exercise_id == "track": return track_leaderboard(runs, api.get("track") or TRACK)
    ex = get_exercise(exercise_id)
    if runs is None:
        records = api_runs(filters={"$or": [{"group": exercise_id}, {"config.exercise": exercise_id}]}, **api)
    else: records = load_runs(runs, wait)
    board = Leaderboard(ex)
    good = []
    for r in (r for r in records if claims(r, exercise_id)):
        reason = submission_problem(r, ex)
        if reason: board.rejected.append({"run": r.id, "learner": learner_of(r), "reason": reason})
        else: good.append({"learner": learner_of(r), "value": float(r.summary[ex.metric]), "run": r.id,
                           "submitted": r.summary.get("_timestamp", 0)})
    if not ex.ranked:   # pass/fail: who passed, once each, by name; no ranks
        good = sorted({s["learner"]: s for s in sorted(good, key=lambda s: s["submitted"], reverse=True)}.values()
                      if best_per_learner else good, key=lambda s: (s["learner"], s["submitted"]))
        for s in good: s["rank"] = None
        board.ranked = good
        return board
    sign = -1 if ex.higher_is_better else 1
    good.sort(key=lambda s: (sign * s["value"], s["submitted"], s["learner"]))  # a tie: earlier, then by name
    if best_per_learner: good = [s for i, s in enumerate(good) if s["learner"] not in {g["learner"] for g in good[:i]}]
    for i, s in enumerate(good):   # competition ranking: equal values share a rank (1, 1, 3)
        s["rank"] = good[i - 1]["rank"] if i and s["value"] == good[i - 1]["value"] else i + 1
    board.ranked = good
    return board


# %% [markdown]
# A leaderboard of real submissions: four learners submit answers to appendix A7's exercise (configs for
# eight T4s with different micro-batches) through `submit`, offline, and two runs are malformed on purpose,
# as a hand-made run or an edited one would be: a training run logged into the exercise's group, and a
# submission whose metric lies outside the exercise's bounds. Exercise A7 is pass/fail (its arithmetic has one
# best answer), so its board lists who passed, once each and unranked; only exercises 02 and 03 rank.

# %%
import warnings as _w
import yaml
from neoxcourse.exercises import submit
import neoxcourse.neox  # registers exercise A7
solution = read_yaml((project_root() / "exercises" / "A7_scaling_up" / "solution.yml").read_text())
board_dir = Path(tempfile.mkdtemp(prefix="leaderboard-"))
for learner, micro in (("ada", 64), ("grace", 32), ("alan", 16), ("ada", 32)):
    answer = {**solution, "train_micro_batch_size_per_gpu": micro, "gradient_accumulation_steps": 1024 // (8 * micro)}
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        submit("A7_scaling_up", answer, name=learner, mode="offline", dir=board_dir)

import wandb
def _raw_run(**kwargs):
    run = wandb.init(mode="offline", dir=str(board_dir), project="neoxcourse", reinit="finish_previous",
                     settings=wandb.Settings(quiet=True), **kwargs)
    return run
r = _raw_run(job_type="train", group="A7_scaling_up", tags=["mallory"], config={"exercise": "A7_scaling_up"})
r.summary.update({"gradient_accumulation_steps": 1, "learner": "mallory"}); r.finish()
r = _raw_run(job_type="exercise", group="A7_scaling_up", tags=["eve"], config={"exercise": "A7_scaling_up"})
r.summary.update({"gradient_accumulation_steps": 0.5, "learner": "eve", "exercise": "A7_scaling_up"}); r.finish()

board = leaderboard("A7_scaling_up", runs=board_dir)
print(board.table())

# %%
#| hide
test_eq([(s["rank"], s["learner"]) for s in board.ranked], [(None, "ada"), (None, "alan"), (None, "grace")])  # pass/fail
assert "pass/fail: not ranked" in board.table()
test_eq(sorted(r["learner"] for r in board.rejected), ["eve", "mallory"])
assert any("job type" in r["reason"] for r in board.rejected) and any("bounds" in r["reason"] for r in board.rejected)
test_eq(len(leaderboard("A7_scaling_up", runs=board_dir, best_per_learner=False).ranked), 4)

# %% [markdown]
# Online, the same call without `runs` asks W&B for the project's runs of that exercise:
# `leaderboard("A7_scaling_up")` (with `project=`/`entity=` or `WANDB_PROJECT`/`WANDB_ENTITY` for a team's
# project). Offline submissions join it after `wandb sync`.
#
# ## Working as a team on GitHub
#
# One experiment, one branch, one pull request:
#
# 0. **Propose** it in an issue with the repository's "Experiment proposal" template (question, arms,
#    budget, metric, W&B group), so the team agrees on the comparison before the GPU hours go in.
# 1. **Branch** `exp/<experiment-id>` from `main` (`git switch -c exp/lion-vs-adamw`); the experiment id is
#    the W&B group, so the branch, the runs and the report share one name.
# 2. **Change** what the experiment needs: a config in `configs/` (or a `--set` recorded in the pull
#    request), a sweep in `configs/sweeps/`, or code in a notebook (then `nbdev_export`, `nbdev_clean`).
# 3. **Run** it with `wandb_group` set to the id; the runs name and tag themselves (`run_name`, `run_tags`).
# 4. **Open a pull request** whose description holds the question, the comparison table and links to the
#    runs and the report: `pull_request_body` writes it from the runs, for the "Evidence" part of the
#    repository's pull-request template.
# 5. **CI** (GitHub Actions) runs what `README.md` lists: `nbdev_clean` leaves no diff, `nbdev_export` leaves
#    no diff (library in sync with notebooks), every notebook top to bottom with the smoke config under
#    papermill, the tests (including every exercise's reference solution against its check), all on CPU.
#    It does not train the T4 recipe: the W&B runs linked in the pull request are the evidence for results,
#    and a reviewer reads them next to the diff.

# %% [markdown]
# ## The optimization track
#
# Every other leaderboard of the course is pass/fail or ranks an exercise; **the optimization track** is the one
# that ranks training algorithms, in the spirit of modded-nanogpt's track and CS336's leaderboard. Everything but
# the training algorithm is fixed: the model and the data of the lab recipe (`configs/lab.yml`, about a minute a
# run on a T4), its validation split (identified by the SHA-256 of `val.bin`), and a token budget of 400 x 32 x
# 512 = 6.55M tokens, which fits a free Colab session many times over. You may change only the optimizer and its
# hyper-parameters, the schedule (`lr-decay-style`, `warmup`, `min_lr`, `lr-decay-iters`, WSD's cooldown), clipping,
# weight decay, the seed and the batch size (8 to 128 sequences, with `train-iters` inside the budget).
#
# A submission is what `neoxcourse train configs/lab.yml --set ... --set seed=N` leaves in its `save` folder: the
# W&B run (offline is fine) and the final checkpoint. `leaderboard("track", runs={learner: [folders]})` trusts
# no number in it: it checks the run's config against the rules (and lists every key that changed), the tokens
# against the budget, that the checkpoint is the run's own and final, recomputes the final validation loss from
# the checkpoint exactly as training measured it (it must agree with the logged history and summary), and then
# measures **validation bits per byte** from the checkpoint on fixed windows of the validation split: the
# quantity it ranks by. A record needs at least two seeds of the same recipe; the board shows their mean and
# spread, and the reference baselines from the committed GPU results.

# %%
#| export
import numpy as np

from neoxcourse.tokenizer import prepare

FREE_KEYS = ("lr", "weight-decay", "lr-decay-style", "lr-decay-iters", "warmup", "min-lr", "gradient-clipping",
             "train-batch-size", "train-micro-batch-size-per-gpu", "gradient-accumulation-steps", "train-iters",
             "seed", "optimizer.", "neoxcourse.schedule.")        # the training algorithm: yours to change
RUN_KEYS = ("save", "load", "log-interval", "eval-interval", "checkpoint-factor", "keep-last-n-checkpoints",
            "use-wandb", "wandb", "neoxcourse.wandb.", "neoxcourse.training.compile", "neoxcourse.training.device",
            "neoxcourse.training.find-micro-batch", "neoxcourse.training.time-budget-minutes")  # how, not what

@dataclass(frozen=True)
class Track:
    "The optimization track's fixed recipe: config (+ overrides), token budget, batch limits, evaluation windows."
    config: str = "configs/lab.yml"
    overrides: tuple = ()                 # (key, value) pairs applied to the config (the tests' tiny track)
    token_budget: int = 400 * 32 * 512    # the lab recipe's own: 6.55M tokens
    batch_range: tuple = (8, 128)         # sequences a step
    val_windows: int = 64                 # windows of the validation split for bits per byte
    tolerance: float = 0.02               # |recomputed - logged| / logged, validation loss (fp16 on a GPU vs fp32)
    seeds_for_record: int = 2
    baselines: str = "bench/results/lab_protocol.json"

    def load(self):
        from neoxcourse.config import project_root
        path = Path(self.config)
        return load_config(path if path.is_absolute() else project_root() / path, dict(self.overrides))

TRACK = Track()

class Rejected(ValueError):
    "A track submission that breaks a rule; the message is the reason shown on the board."

def _norm(d: dict) -> dict:
    return {k.replace("_", "-"): v for k, v in flatten(d).items()}

def _kind(key: str) -> str:
    match = lambda keys: any(key == k or (k.endswith(".") and key.startswith(k)) or key.startswith(k + ".")
                             or (k == "wandb" and key.startswith("wandb-")) for k in keys)
    return "free" if match(FREE_KEYS) else "run" if match(RUN_KEYS) else "fixed"

def track_changes(config: dict, reference: dict) -> dict:
    "{key: (reference value, run value)} of every key that differs from the track's recipe; forbidden ones raise."
    got, ref = _norm(config), _norm(reference)
    missing = [k for k in ref if _kind(k) == "fixed" and k not in got]
    if missing: raise Rejected(f"foreign config: no {', '.join(missing[:3])} (submit the run of `neoxcourse train` "
                               f"on the track's config)")
    changed = {k: (ref.get(k), got.get(k)) for k in sorted(set(got) | set(ref))
               if _kind(k) != "run" and json.dumps(got.get(k), default=str) != json.dumps(ref.get(k), default=str)}
    fixed = [k for k in changed if _kind(k) == "fixed"]
    if fixed:
        k = fixed[0]
        raise Rejected(f"changed {k} ({changed[k][0]!r} -> {changed[k][1]!r}): the track fixes the model, data and "
                       f"evaluation; only the training algorithm may change" + (f" ({len(fixed)} such keys)" if len(fixed) > 1 else ""))
    return changed


# %%
#| export
def _sha256(path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""): h.update(block)
    return h.hexdigest()

def _final_logged(run, iters: int) -> float:
    rows = [r for r in run.history if isinstance(r.get("validation/lm_loss"), (int, float))]
    if not rows: raise Rejected("the run logged no validation/lm_loss")
    last = max(rows, key=lambda r: r.get("_step", 0))
    if last.get("_step") != iters: raise Rejected(f"the run stopped at iteration {last.get('_step')} of {iters}")
    summary = run.summary.get("validation/lm_loss")
    if isinstance(summary, (int, float)) and abs(summary - last["validation/lm_loss"]) > 1e-9:
        raise Rejected(f"tampered summary: validation/lm_loss {summary} in the summary, "
                       f"{last['validation/lm_loss']} in the history")
    return float(last["validation/lm_loss"])

def verify_submission(run, checkpoint_dir, track: Track = TRACK, cfg=None, data=None) -> dict:
    "Verify one track submission (a RunRecord and the folder holding its checkpoints); raise Rejected with the reason."
    import contextlib
    import torch
    from neoxcourse.checkpoint import latest_checkpoint, load_checkpoint
    from neoxcourse.data import BatchSampler
    from neoxcourse.evaluate import token_metrics
    from neoxcourse.model import GPTNeoX
    from neoxcourse.tokenizer import load_tokenizer
    from neoxcourse.tracking import config_dict
    from neoxcourse.train import VALIDATION_SEED, evaluate_loss
    cfg = cfg or track.load()
    if not run.config: raise Rejected("the run has no config")
    changed = track_changes(run.config, config_dict(cfg))                        # 1. the rules
    got = _norm(run.config)
    batch, iters = int(got["train-batch-size"]), int(got["train-iters"])
    lo, hi = track.batch_range
    if not lo <= batch <= hi: raise Rejected(f"batch of {batch} sequences; the track allows {lo} to {hi}")
    tokens = batch * cfg.model.seq_length * iters                                 # 2. the budget
    if tokens > track.token_budget:
        raise Rejected(f"{tokens:,} tokens ({iters} x {batch} x {cfg.model.seq_length}) exceed the budget of "
                       f"{track.token_budget:,}: lower train-iters")
    path = latest_checkpoint(checkpoint_dir, quiet=True) if checkpoint_dir else None   # 3. the checkpoint
    if path is None: raise Rejected(f"no checkpoint in {checkpoint_dir}: submit the run's save folder")
    model = GPTNeoX(cfg.model)
    try: state = load_checkpoint(path, model)
    except Exception as e: raise Rejected(f"the checkpoint {path.name} does not load into the track's model: {e}") from None
    if state.get("wandb_run_id") != run.id:
        raise Rejected(f"the checkpoint belongs to run {state.get('wandb_run_id')}, not to run {run.id}")
    if state.get("step") != iters: raise Rejected(f"the checkpoint is from iteration {state.get('step')}, not the final {iters}")
    if state.get("tokens_seen", 0) > track.token_budget: raise Rejected(f"the checkpoint saw {state['tokens_seen']:,} tokens")
    logged = _final_logged(run, iters)                                            # 4. the run's own numbers
    data = data or prepare(cfg, verbose=False)
    model.eval()
    val = BatchSampler(data.val_path, int(state.get("micro_batch_size") or batch), cfg.model.seq_length, VALIDATION_SEED)
    with torch.no_grad():
        again = evaluate_loss(model, val, cfg.training.eval_iters, torch.device("cpu"), contextlib.nullcontext())
    if abs(again - logged) > track.tolerance * abs(logged):
        raise Rejected(f"the checkpoint gives validation loss {again:.4f}, the run logged {logged:.4f}: the "
                       f"checkpoint does not match its run")
    ids = np.memmap(data.val_path, dtype=np.dtype(data.meta["dtype"]), mode="r")  # 5. the ranked quantity
    metrics = token_metrics(model, load_tokenizer(cfg), np.asarray(ids), cfg.model.seq_length, 8,
                            max_windows=track.val_windows)
    return {"run": run.id, "seed": got.get("seed"), "changed": {k: v for k, v in changed.items() if k != "seed"},
            "tokens": tokens, "val_loss_logged": logged, "val_loss_recomputed": again,
            "bits_per_byte": metrics["bits_per_byte"], "val_sha256": _sha256(data.val_path)}


# %%
#| export
def recipe_name(changed: dict) -> str:
    "A recipe as the keys it changes: `lr=0.003, lr-decay-style=wsd` (seed not counted); `baseline` when none."
    return ", ".join(f"{k}={v[1]}" for k, v in sorted(changed.items())) or "baseline"

def track_baselines(track: Track = TRACK) -> list:
    "Reference rows from the committed GPU results of the lab protocol (empty until they are committed)."
    from neoxcourse.config import project_root
    path = project_root() / track.baselines
    if not path.exists(): return []
    doc = json.loads(path.read_text())
    return [{"arm": r.get("arm"), "lr": r.get("lr"), "bits_per_byte": r.get("bits_per_byte"),
             "spread": r.get("bits_per_byte_sd"), "seeds": r.get("seeds")}
            for r in (doc.get("summary") or {}).get("lab", []) if r.get("bits_per_byte") is not None]

@dataclass
class TrackBoard:
    "The optimization track: records (2+ seeds) ranked by recomputed bits per byte, single seeds, rejections, baselines."
    track: Track
    records: list = field(default_factory=list)
    unconfirmed: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    baselines: list = field(default_factory=list)
    val_sha256: str | None = None

    def table(self) -> str:
        "The board as Markdown."
        lines = [f"### Optimization track ({self.track.config}, {self.track.token_budget:,} tokens; validation "
                 f"bits per byte recomputed from each checkpoint, lower is better)", ""]
        lines.append(format_table([{"rank": r["rank"], "learner": r["learner"], "recipe": r["recipe"],
                                    "seeds": r["seeds"], "bits_per_byte": r["mean"], "spread": r["spread"]}
                                   for r in self.records]) if self.records else "(no record yet: a record needs "
                     f"{self.track.seeds_for_record} seeds)")
        lines += [f"\n- not ranked, {r['seeds']} seed (a record needs {self.track.seeds_for_record}): {r['learner']}, "
                  f"{r['recipe']}, {r['mean']:.4f}" for r in self.unconfirmed]
        lines += [f"- rejected {r['run']} ({r['learner']}): {r['reason']}" for r in self.rejected]
        lines += ["", "Baselines (bench/results/lab_protocol.json, GPU: each arm at its tuned lr; bits per byte from the "
                  "logged validation loss and the split's mean bytes per token, not recomputed from checkpoints):",
                  format_table(self.baselines) if self.baselines
                  else f"(none committed yet: {self.track.baselines})"]
        if self.val_sha256: lines.append(f"\nvalidation split sha256 {self.val_sha256[:16]}...")
        return "\n".join(lines)

    def __repr__(self): return self.table()

def _submissions(runs) -> list:
    "(learner, run folder or None, save folder) from {learner: [save folders]}; a folder may hold one run."
    out = []
    for learner, folders in dict(runs).items():
        for folder in ([folders] if isinstance(folders, (str, Path)) else folders):
            found = find_run_dirs(folder)
            out.append((learner, found[-1] if found else None, Path(folder)))
    return out

def track_leaderboard(runs, track: Track = TRACK, wait: float = 20.0) -> TrackBoard:
    "Verify and rank track submissions: `runs` = {learner: [save folders of `neoxcourse train`]}."
    if runs is None: raise ValueError("the track verifies checkpoints: pass runs={learner: [save folders]} "
                                      "(download a W&B run's folder and checkpoint artifact first)")
    cfg = track.load()
    data = prepare(cfg, verbose=False)
    board, good = TrackBoard(track, baselines=track_baselines(track)), {}
    for learner, run_dir, save in _submissions(runs):
        try:
            if run_dir is None: raise Rejected(f"no W&B run in {save}")
            record = read_run(run_dir, wait=wait)
        except (Rejected, ValueError) as e:
            board.rejected.append({"run": str(save), "learner": learner, "reason": str(e)}); continue
        try: entry = verify_submission(record, save, track, cfg, data)
        except Rejected as e:
            board.rejected.append({"run": record.id, "learner": learner, "reason": str(e)}); continue
        board.val_sha256 = entry["val_sha256"]
        good.setdefault((learner, recipe_name(entry["changed"])), []).append(entry)
    for (learner, recipe), entries in good.items():
        bpb = [e["bits_per_byte"] for e in {e["seed"]: e for e in entries}.values()]   # one entry a seed
        row = {"learner": learner, "recipe": recipe, "seeds": len(bpb), "mean": sum(bpb) / len(bpb),
               "spread": max(bpb) - min(bpb), "runs": [e["run"] for e in entries]}
        (board.records if len(bpb) >= track.seeds_for_record else board.unconfirmed).append(row)
    board.records.sort(key=lambda r: (r["mean"], r["learner"]))
    for i, r in enumerate(board.records): r["rank"] = i + 1
    return board


# %% [markdown]
# The rules on plain dictionaries: a learner's changes are listed key by key, and a change to the model or the data
# is refused with the key and both values. `tests/test_track.py` runs the whole path on a tiny track: short smoke
# runs submitted offline, verified end to end and ranked, and each kind of bad submission (changed model, budget
# overrun, a checkpoint of another run, a tampered summary, a foreign config) listed as rejected with its reason.

# %%
_ref = {"hidden-size": 64, "seq-length": 128, "lr": 3e-3, "optimizer": {"type": "adamw"}, "train-iters": 30,
        "seed": 1, "save": "a", "neoxcourse": {"data": {"source": "stdlib"}}}
_mine = {**_ref, "lr": 1e-2, "optimizer": {"type": "lion"}, "seed": 2, "save": "b"}
test_eq(sorted(track_changes(_mine, _ref)), ["lr", "optimizer.type", "seed"])      # every changed key, listed
test_eq(recipe_name({k: v for k, v in track_changes(_mine, _ref).items() if k != "seed"}), "lr=0.01, optimizer.type=lion")
test_fail(lambda: track_changes({**_mine, "hidden-size": 128}, _ref), contains="changed hidden-size (64 -> 128)")
test_fail(lambda: track_changes({**_mine, "neoxcourse": {"data": {"source": "codeparrot"}}}, _ref),
          contains="neoxcourse.data.source")
test_fail(lambda: track_changes({"exercise": "A7_scaling_up"}, _ref), contains="foreign config")


# %%
#| export
def run_url(run, entity: str | None = None, project: str | None = None) -> str:
    "The W&B page of a run (after `wandb sync` for an offline one)."
    default_entity, default_project = wandb_target()
    return f"https://wandb.ai/{entity or default_entity or 'ENTITY'}/{project or run.project or default_project}/runs/{run.id}"

def pull_request_body(runs: list, question: str, metrics=("train/lm_loss", "validation/lm_loss"),
                      entity: str | None = None, report_url: str | None = None) -> str:
    "A pull request description for an experiment: the question, the comparison table, links to every run."
    groups = sorted({r.group for r in runs})
    rows = compare_runs(runs, metrics)
    for row in rows: row["run"] = f"[{row['run']}]({run_url(next(r for r in runs if r.id == row['run']), entity)})"
    lines = [f"## Experiment `{', '.join(groups)}`", "", f"**Question.** {question}", "",
             f"**Varied:** {', '.join(config_differences(runs)) or 'nothing'}", "", format_table(rows), ""]
    if report_url: lines += [f"Report: {report_url}", ""]
    lines += ["Offline runs: `wandb sync <run folder>` before review, so the links resolve.",
              "CI: notebooks headless with the smoke config, nbdev clean/export in sync, tests, exercise solutions."]
    return "\n".join(lines)


# %%
print(pull_request_body(runs, "Which learning rate suits the smoke recipe?"))

# %%
#| hide
_body = pull_request_body(runs, "q?")
test_eq(_body.count("https://wandb.ai/") == 3 and experiment in _body, True)

# %% [markdown]
# ## Recap
#
# - One W&B project per course or team (`WANDB_ENTITY`/`WANDB_PROJECT` over the config), the experiment id
#   as group, names and tags from the config (`run_name`, `run_tags`, `wandb_init_kwargs`).
# - Runs come back from local folders (`load_runs`, which waits for wandb's writer) or from W&B
#   (`api_runs`); `compare_runs` finds what varied and tabulates the outcome, `plot_runs` draws the curves,
#   `token_speedup` compares algorithms at equal tokens.
# - Sweeps are YAML files of config keys; `validate_sweep` catches a bad one before `wandb sweep`.
# - Reports are built with `wandb-workspaces` when it is installed and you are online, and as Markdown
#   otherwise.
# - The leaderboard ranks well-formed exercise submissions and says why the others are rejected.
# - A branch and a pull request per experiment, with the runs linked and CI keeping the notebooks working.
#
# Appendix A7 takes a recipe to several GPUs and to EleutherAI GPT-NeoX.
