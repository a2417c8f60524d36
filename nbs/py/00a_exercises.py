# Generated from nbs/00a_exercises.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/00a_exercises.py`.

# %% [markdown]
# # 00a · Exercises: checks that say what is wrong, and submissions as W&B runs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/00a_exercises.ipynb)
#
# > The small library behind every chapter's exercise: a registry of exercises, a check that explains a wrong
# > answer, and `submit`, which records a passing answer as a Weights & Biases run for the leaderboard.

# %% [markdown]
# - **You will learn:** how every chapter's exercise is checked (a metric, a threshold, a hint that names the
#   mistake) and how a passing answer becomes a W&B run for the leaderboard.
# - **You need:** chapter 00; a CPU is enough.
# - **Time:** under a minute on a T4; under a minute on a CPU with the smoke config, as CI runs it.
# - **You should see:** a check that passes a right answer (score 1.0) and fails a wrong one with a one-line
#   hint, and a submission written as an offline W&B run and read back; no plot.

# %%
#| default_exp exercises

# %%
#| hide
# In Colab only: fetch the course and install it (again, if an earlier install failed). Elsewhere: nothing.
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.exists("/content/neoxcourse/.git"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/neoxcourse/neoxcourse",
                        "/content/neoxcourse"], check=True)
    if subprocess.run([sys.executable, "-c", "import neoxcourse.train"], cwd="/content").returncode != 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/neoxcourse"], check=True)
    sys.path.insert(0, "/content/neoxcourse")  # an editable install is seen only after a restart
    os.chdir("/content/neoxcourse/nbs")

# %% tags=["parameters"]
config_path = None  # None: configs/t4.yml on a GPU, configs/smoke.yml on a CPU
overrides = {}      # GPT-NeoX keys, dotted for nested ones, e.g. {"train-iters": 50}

# %%
#| export
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# %%
#| hide
from fastcore.test import test_eq, test_fail
import json, tempfile


# %% [markdown]
# ## An exercise is a check with a metric
#
# An exercise has an id (`NN_topic`, the name of its folder in `exercises/`), a title, the metric its check
# returns and whether higher is better (the leaderboard sorts by it), and the range a well-formed result lies
# in (a bits-per-byte of 40 is a bug, not a result). The check takes the learner's answer (a function, a file, a
# number) and either returns a dictionary of results or raises `ExerciseError` with a message that says what to fix.
# The registry is the course layer, above the library: no library module (`model`, `train`, ...) imports it.
# Each chapter writes its check in its own notebook, in a cell that begins `#| export exercises`; `nbdev_export`
# appends those cells to this module after the registry, so `import neoxcourse.exercises` registers every
# chapter's exercise (a dictionary insert each) and importing `neoxcourse.model` registers none.

# %%
#| export
class ExerciseError(AssertionError):
    "An exercise answer that does not pass; the message says what is wrong."

@dataclass(frozen=True)
class Exercise:
    "One exercise: its id (`NN_topic`), the metric its check returns, whether higher is better, whether it ranks."
    id: str
    title: str
    metric: str
    higher_is_better: bool
    bounds: tuple[float, float]      # the range a well-formed result lies in
    check: Callable[[Any], dict]     # answer -> {metric: value, ...}; raises ExerciseError
    ranked: bool = False             # False: pass/fail, the leaderboard lists who passed; True: ranked by metric

EXERCISES: dict[str, Exercise] = {}

def register_exercise(exercise: Exercise) -> Exercise:
    "Add an exercise to the registry (each chapter's check registers itself below the registry)."
    EXERCISES[exercise.id] = exercise
    return exercise

def all_exercises() -> dict[str, Exercise]:
    "Every registered exercise, by id."
    return dict(sorted(EXERCISES.items()))

def get_exercise(exercise_id: str) -> Exercise:
    "Look an exercise up by id; an unknown id lists the known ones."
    if exercise_id not in EXERCISES:
        raise ExerciseError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES) or 'none'}")
    return EXERCISES[exercise_id]

def hidden_rng() -> np.random.Generator:
    "A generator seeded from the operating system: the hidden, different-every-time cases of a check."
    return np.random.default_rng(int.from_bytes(os.urandom(8), "little"))


# %% [markdown]
# `check_exercise` runs the check and then checks the check: the metric must be there and inside its sane range.
# `submit` checks again (a failing answer is never submitted) and records the result as a W&B run. The run's
# *job type* is `exercise`, its *group* the exercise id and its *tag* your name: that is how the leaderboard
# finds and groups submissions.

# %%
#| export
def check_exercise(exercise_id: str, answer: Any) -> dict:
    "Run an exercise's check on an answer; return the result, or raise ExerciseError saying what is wrong."
    ex = get_exercise(exercise_id)
    result = ex.check(answer)
    if not isinstance(result, dict) or ex.metric not in result:
        raise ExerciseError(f"{exercise_id}: the check returned no '{ex.metric}' (got {result!r})")
    value = result[ex.metric]
    lo, hi = ex.bounds
    if not (isinstance(value, (int, float)) and lo <= value <= hi):
        raise ExerciseError(f"{exercise_id}: {ex.metric} = {value!r} is outside the sane range [{lo}, {hi}]")
    kind = f"ranked by {ex.metric}" if ex.ranked else "pass/fail"
    print(f"passed {exercise_id} ({ex.title}; {kind}): " + ", ".join(f"{k} = {v}" for k, v in result.items()))
    return result

def submit(exercise_id: str, answer: Any, name: str, config: dict | None = None, mode: str | None = None,
           project: str | None = None, entity: str | None = None, dir: str | Path | None = None) -> Path:
    "Check an answer and record it as a W&B run (job type 'exercise', group = id, tag = your name); return the run folder."
    import wandb
    from neoxcourse.env import wandb_mode
    if not name or not str(name).strip():
        raise ExerciseError("submitting needs your name (or W&B user name): --name YOUR_NAME on the command "
                            "line, name='YOUR_NAME' in Python")
    result = check_exercise(exercise_id, answer)
    run = wandb.init(project=project or os.environ.get("WANDB_PROJECT", "neoxcourse"),
                     entity=entity or os.environ.get("WANDB_ENTITY"), job_type="exercise", group=exercise_id,
                     tags=[str(name)], name=f"{exercise_id}-{name}", config={"exercise": exercise_id, **(config or {})},
                     mode=wandb_mode(mode or "auto"), dir=str(dir) if dir else None, reinit="finish_previous")
    run.summary.update({**result, "exercise": exercise_id, "learner": str(name),
                        "metric": get_exercise(exercise_id).metric})
    run_dir = Path(run.dir).parent
    run.finish()
    print(f"submitted {exercise_id} as W&B run {run.id} ({run_dir})")
    return run_dir


# %% [markdown]
# Every starter file ends the same way: `python starter.py` checks the answer, and
# `python starter.py --submit --name YOU` submits it. `exercise_main` is that ending, written once; a failing
# check prints its message (no traceback) and exits with status 1.

# %%
#| export
def exercise_main(exercise_id: str, answer: Callable, argv: list | None = None,
                  add_arguments: Callable | None = None, submit_config: Callable | None = None) -> int:
    "The command line of a starter or solution file: check `answer()`, or submit it with --submit --name YOU."
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=f"Check (or submit) exercise {exercise_id}.")
    parser.add_argument("--submit", action="store_true", help="record the result as a W&B run")
    parser.add_argument("--name", help="your name or W&B user name (needed with --submit)")
    if add_arguments: add_arguments(parser)      # a starter's own arguments (a config path, a checkpoint)
    args = parser.parse_args(argv)
    if args.submit and not (args.name or "").strip():
        print("not yet: --submit needs --name YOUR_NAME (your name or W&B user name)", file=sys.stderr)
        return 2
    try:
        value = answer(args) if add_arguments else answer()
        if args.submit: submit(exercise_id, value, name=args.name,
                               config=submit_config(args) if submit_config else None)
        else: check_exercise(exercise_id, value)
    except (ExerciseError, NotImplementedError) as e:   # a wrong answer, or a starter not written yet
        print(f"not yet: {e}", file=sys.stderr)
        return 1
    return 0


# %% [markdown]
# ## Reading a run back
#
# A submission is an offline W&B run: a folder `offline-run-<time>-<id>/` holding `run-<id>.wandb`, which
# records everything the run logged. Tests, the leaderboard (appendix A5) and you read it back with the
# library's one reader, `read_run` from appendix A4 (`neoxcourse.tracking`): it returns a `RunRecord` with the
# run's id, group, job type, tags, config, summary and history, and waits for wandb's writer, which may still
# be flushing just after `finish()`.

# %%
#| export
from neoxcourse.tracking import RunRecord, read_run   # the library's W&B reader (appendix A4)


# %% [markdown]
# ## Trying it
#
# A made-up exercise shows the whole cycle: a wrong answer gets a message, a right one a result, and `submit`
# writes an offline W&B run that we read back.

# %%
def _check_square(f):
    if f(3) != 9: raise ExerciseError(f"square(3) returned {f(3)!r}, expected 9")
    return {"score": 1.0}
register_exercise(Exercise("99_demo", "Squares", "score", True, (0.0, 1.0), _check_square))
test_fail(lambda: check_exercise("99_demo", lambda x: 2 * x), contains="expected 9")
test_eq(check_exercise("99_demo", lambda x: x * x), {"score": 1.0})
test_fail(lambda: check_exercise("no_such", None), contains="known:")

# %%
with tempfile.TemporaryDirectory() as d:
    run_dir = submit("99_demo", lambda x: x * x, name="ada", mode="offline", dir=d)
    run = read_run(run_dir)
print(run.job_type, run.group, run.tags, {k: run.summary[k] for k in ("exercise", "learner", "score")})
test_eq((run.summary["exercise"], run.summary["learner"], run.summary["score"]), ("99_demo", "ada", 1.0))
test_eq((run.job_type, run.group, run.tags, run.config["exercise"]), ("exercise", "99_demo", ["ada"], "99_demo"))
test_eq(run_dir.name.startswith("offline-run-"), True)
test_eq(exercise_main("99_demo", lambda: (lambda x: x * x), argv=[]), 0)
test_eq(exercise_main("99_demo", lambda: (lambda x: x + 1), argv=[]), 1)
EXERCISES.pop("99_demo")


# %% [markdown]
# ## Chapter 00's check
#
# Chapter 00 comes before this registry, so its check, for "make a run repeatable", lives here: `make_batch(seed)`
# must give identical draws for equal seeds and different ones otherwise. Every later chapter's check is in its
# own notebook.

# %%
#| export
def _first_draws(seed: int) -> tuple:
    "The first draw of random, NumPy and PyTorch after `seed_everything(seed)`."
    import random
    import torch
    from neoxcourse.env import seed_everything
    seed_everything(seed)
    return random.random(), float(np.random.rand()), float(torch.rand(()))

def check_repeatable(make_batch) -> dict:
    "Check exercise 00: `make_batch(seed)` returns the first draws of random, NumPy and PyTorch seeded with `seed`."
    import random
    import torch
    rng = hidden_rng()
    seeds = [int(s) for s in rng.integers(0, 2**31, 3)]    # hidden seeds, new at every check
    for seed in seeds:
        want = _first_draws(seed)
        other = int(rng.integers(2**31))                    # leave every generator somewhere else first
        random.seed(other); np.random.seed(other); torch.manual_seed(other)
        try: batch = make_batch(seed)
        except Exception as e: raise ExerciseError(f"make_batch({seed}) raised {type(e).__name__}: {e}") from None
        if not isinstance(batch, (tuple, list)) or len(batch) < 3:
            raise ExerciseError("return a tuple of three draws: random's, NumPy's and PyTorch's, in that order")
        try: got = [float(np.asarray(part, dtype=float).ravel()[0]) for part in batch[:3]]
        except (TypeError, ValueError, IndexError):
            raise ExerciseError("each of the three parts must be a number or an array of numbers") from None
        if got == [float(seed)] * 3:
            raise ExerciseError(f"make_batch({seed}) returned the seed itself: return draws from the seeded "
                                f"generators (random.random(), np.random.rand(), torch.rand(()))")
        for name, g, w in zip(("random", "NumPy", "PyTorch"), got, want):
            if abs(g - w) > 1e-7:
                raise ExerciseError(f"make_batch({seed}): the {name} draw is {g!r}, but the first {name} draw "
                                    f"after seeding with {seed} is {w!r}: seed every generator with the seed "
                                    f"you are given, then draw once from each")
    return {"repeatable": 1.0, "seeds_tried": len(seeds)}

register_exercise(Exercise("00_setup", "Make a run repeatable", "repeatable", True, (1.0, 1.0), check_repeatable))

# %%
import random
import torch
from neoxcourse.env import seed_everything
def make_batch(seed):
    seed_everything(seed)
    return random.random(), np.random.rand(2), torch.rand(2)
test_eq(check_exercise("00_setup", make_batch)["repeatable"], 1.0)
test_fail(lambda: check_exercise("00_setup", lambda seed: (seed, seed, seed)), contains="the seed itself")
test_fail(lambda: check_exercise("00_setup", lambda seed: (1.0, 2.0, 3.0)), contains="seed every generator")

# %% [markdown]
# ## Recap
#
# Every chapter's exercise is a folder (`README.md`, `starter.py`, `solution.py`) and a registered check. CI
# checks every `solution.py` so the checks stay right; appendix A5 builds the leaderboard from submitted runs.
