# Generated from nbs/A2_cli.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A2_cli.py`.

# %% [markdown]
# # Appendix A2 · The command line: `neoxcourse`
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A2_cli.ipynb)
#
# > One command, `neoxcourse`, over the same functions the notebooks call: so a run started from a terminal, a
# > W&B sweep agent or CI does exactly what the chapter does.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** which `neoxcourse` command does what, and that each is the same function a chapter calls.
# - **You need:** appendix A1 (configuration); a CPU is enough.
# - **Time:** under a minute on a T4; under a minute on a CPU with the smoke config, as CI runs it.
# - **You should see:** `neoxcourse config check` print the reference recipe's resolved config with status
#   0, and a config with a mistake answered by a non-zero status and one line naming the key; no plot.

# %%
#| default_exp cli

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

# %% [markdown]
# ## The command line
#
# Everything above is also one command, `neoxcourse`. The command line is a thin layer: it parses
# arguments, calls the same functions the notebooks call, and turns a `ConfigError` into one line on standard
# error and exit status 2, never a traceback. `--set key=value` works the same for every command that reads a
# config. Later chapters add their commands here as they are built.

# %%
#| export

import argparse
import sys
import warnings
from pathlib import Path

from neoxcourse.config import ConfigError, describe, load_config, parse_override, save_config, to_neox_dict


# %%
#| export
def _config_from(args) -> "Config":
    "Load the config an argparse namespace names, with its --set overrides."
    overrides = dict(parse_override(item) for item in (args.set or []))
    return load_config(args.config, overrides)

def _cmd_env(args) -> int:
    from neoxcourse.env import environment_report, format_report
    print(format_report(environment_report()))
    return 0

def _cmd_config_check(args) -> int:
    import yaml
    cfg = _config_from(args)
    print(describe(cfg))
    print("---")
    print(yaml.safe_dump(to_neox_dict(cfg), sort_keys=False, default_flow_style=None), end="")
    return 0

def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a GPT-NeoX YAML file, e.g. configs/t4.yml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key (GPT-NeoX spelling, dots for nested keys); repeatable")


# %%
#| export
COMMANDS: dict = {}   # command path -> (help, function adding arguments, handler)

def command(path: str, help: str, add_args=None):
    "Register a sub-command handler under a space-separated path such as 'config check'."
    def wrap(fn):
        COMMANDS[path] = (help, add_args, fn)
        return fn
    return wrap

command("env", "print the environment report (GPU, precision, attention kernels, versions)")(_cmd_env)
command("config check", "validate a config and print it resolved", _add_config_args)(_cmd_config_check)

def build_parser() -> argparse.ArgumentParser:
    "The argparse parser for every registered command."
    parser = argparse.ArgumentParser(prog="neoxcourse", description="Train a GPT-NeoX for Python code "
                                     "completion from scratch, and study training algorithms.")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict = {}
    for path, (help_, add_args, fn) in COMMANDS.items():
        words = path.split()
        target = subs
        for i, w in enumerate(words[:-1]):
            key = " ".join(words[:i + 1])
            if key not in groups:
                g = target.add_parser(w, help=f"{w} commands")
                groups[key] = g.add_subparsers(dest=f"sub{i}", metavar="SUBCOMMAND", required=True)
            target = groups[key]
        p = target.add_parser(words[-1], help=help_, description=help_)
        if add_args: add_args(p)
        p.set_defaults(handler=fn)
    return parser

def main(argv: list[str] | None = None) -> int:
    "Entry point of the `neoxcourse` command."
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and argv[1:]:
        args = argparse.Namespace(bench_args=argv[1:], handler=COMMANDS["bench"][2])
    else: args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(); return 2
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return int(args.handler(args) or 0)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as e:   # the course's own errors (checkpoint, training, data, tokenizer...)
        if not type(e).__module__.startswith("neoxcourse"): raise   # anything else is a bug: keep its traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # output piped into `head`
        return 0


# %% [markdown]
# ## The pipeline's commands
#
# Each command below is the chapter's own function behind two or three lines of argument parsing; the
# chapter named in the help text explains what it does. Imports happen inside the handlers, so `neoxcourse
# config check` never pays for loading `transformers` or the data code.
#
# | command | calls | chapter |
# | --- | --- | --- |
# | `neoxcourse data prepare CONFIG` | `neoxcourse.tokenizer.prepare(cfg)` | 03 |
# | `neoxcourse tokenizer train CONFIG` | `neoxcourse.tokenizer.train_tokenizer(cfg)` | 03 |
# | `neoxcourse complete --checkpoint DIR "prompt"` | `neoxcourse.generate.complete(...)` | 04 |
# | `neoxcourse train CONFIG [--resume]` | `neoxcourse.train.train(cfg, resume)` | 05 |
# | `neoxcourse eval CONFIG --checkpoint DIR` | `neoxcourse.evaluate.evaluate(cfg, DIR)` | 08 |
# | `neoxcourse export-neox CONFIG OUT` | `neoxcourse.neox.export_neox(cfg, OUT)` | 10 |
# | `neoxcourse bench [--t4]` | `bench/bench_train.py` | 05, bench/ |

# %%
#| export
def _cmd_data_prepare(args) -> int:
    from neoxcourse.tokenizer import prepare
    prepared = prepare(_config_from(args), force=args.force)
    print(f"train tokens: {prepared.train_path}\nvalidation tokens: {prepared.val_path}")
    return 0

def _cmd_tokenizer_train(args) -> int:
    from neoxcourse.tokenizer import train_tokenizer
    cfg = _config_from(args)
    train_tokenizer(cfg)
    print(f"tokenizer written to {cfg.resolve(cfg.tokenizer.path)}")
    return 0

def _cmd_train(args) -> int:
    from neoxcourse.train import train
    result = train(_config_from(args), resume=args.resume)
    print(result)
    return 0

def _cmd_eval(args) -> int:
    from neoxcourse.evaluate import evaluate, format_metrics
    metrics = evaluate(_config_from(args), args.checkpoint)
    print(format_metrics(metrics))
    return 0

def _checkpoint_config(path: Path):
    "The config a course checkpoint was trained with (None for a Hugging Face model folder)."
    from neoxcourse.checkpoint import latest_checkpoint
    if (path / "config.json").exists(): return None
    step = path if (path / "config.yml").exists() else latest_checkpoint(path, quiet=True)
    if step is None or not (step / "config.yml").exists():
        raise ConfigError(f"{path}: neither a Hugging Face model folder (config.json) nor a course checkpoint "
                          f"(config.yml), nor a folder of them; pass e.g. checkpoints/smoke")
    return load_config(step / "config.yml")

def _cmd_complete(args) -> int:
    from neoxcourse.evaluate import load_for_evaluation
    from neoxcourse.generate import complete
    path = Path(args.checkpoint)
    if not path.exists(): raise ConfigError(f"{path}: no such checkpoint folder")
    cfg = _checkpoint_config(path)
    if cfg is None and not (path / "tokenizer.json").exists():
        raise ConfigError(f"{path}: this model folder has no tokenizer.json; save it with "
                          f"save_pretrained(model, dir, tokenizer)")
    model, tokenizer = load_for_evaluation(cfg, path)
    print(complete(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
                   temperature=args.temperature, top_k=args.top_k or None, top_p=args.top_p,
                   stop=args.stop))
    return 0

def _cmd_export_neox(args) -> int:
    from neoxcourse.neox import export_neox
    export_neox(_config_from(args), args.out)   # it prints its one success line (what was written, where)
    return 0

def bench_argv(bench_args: list[str], scratch: Path) -> list[str]:
    "The arguments for bench/bench_train.py: the user's as given (a leading `--` dropped), `--out scratch` unless set."
    rest = list(bench_args[1:] if bench_args[:1] == ["--"] else bench_args)
    if any(a == "--out" or a.startswith("--out=") for a in rest) or any(a in ("-h", "--help") for a in rest):
        return rest
    return [*rest, "--out", str(scratch)]   # never over the course's tracked bench/results unless asked

def _cmd_bench(args) -> int:
    import runpy
    from neoxcourse.config import load_config, project_root
    script = project_root() / "bench" / "bench_train.py"
    if not script.exists():
        raise ConfigError(f"{script}: not found; run `neoxcourse bench` from a checkout of the course")
    scratch = load_config(text="", root=project_root()).resolve("checkpoints") / "bench"
    argv = bench_argv(args.bench_args, scratch)
    if argv[-2:] == ["--out", str(scratch)]:
        print(f"results go to {scratch} (pass --out bench/results to update the course's own)")
    sys.argv = [str(script), *argv]
    try: runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e: return int(e.code or 0) if not isinstance(e.code, str) else 2
    return 0


# %%
#| export
def _add_prepare_args(p):
    _add_config_args(p)
    p.add_argument("--force", action="store_true", help="rebuild even if finished output exists")

def _add_train_args(p):
    _add_config_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in `save`")

def _add_eval_args(p):
    _add_config_args(p)
    p.add_argument("--checkpoint", required=True, help="a Hugging Face GPT-NeoX model directory")

def _add_complete_args(p):
    p.add_argument("--checkpoint", required=True,
                   help="a Hugging Face GPT-NeoX model folder with its tokenizer, or a course checkpoint folder")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--stop", default="block", help="line, block (default), text, or a string to stop at")
    p.add_argument("prompt")

def _add_export_args(p):
    _add_config_args(p)
    p.add_argument("out", help="folder for the GPT-NeoX YAML, .bin/.idx data and tokenizer")

def _add_bench_args(p):
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments of bench/bench_train.py (--t4, --out ...)")

command("data prepare", "build the corpus, the tokenizer if asked, and the token files (chapters 02-03)",
        _add_prepare_args)(_cmd_data_prepare)
command("tokenizer train", "train the tokenizer on the train split (chapter 03)", _add_config_args)(_cmd_tokenizer_train)
command("train", "train from scratch, or --resume (chapter 05)", _add_train_args)(_cmd_train)
command("eval", "evaluate a checkpoint: loss, bits per byte, line completion, pass@k (chapter 08)",
        _add_eval_args)(_cmd_eval)
command("complete", "complete code with a checkpoint (chapter 04)", _add_complete_args)(_cmd_complete)
command("export-neox", "write GPT-NeoX config, data and tokenizer files (appendix A7)", _add_export_args)(_cmd_export_neox)
command("bench", "the training-speed benchmark (bench/)", _add_bench_args)(_cmd_bench)

if __name__ == "__main__" and "__file__" in globals():   # `python -m neoxcourse.cli`, not a notebook kernel
    sys.exit(main())

# %% [markdown]
# Try it from a terminal in the project root:
#
# ```
# neoxcourse config check configs/code_completion.yml
# neoxcourse config check configs/t4.yml --set train-iters=20 --set optimizer.type=lion --set save=/tmp/run
# ```
#
# Here we call the same `main` in-process and check what it prints and returns.

# %%
#| hide
from fastcore.test import test_eq

# %%
import contextlib, io
from neoxcourse.cli import main as cli_main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = cli_main(["config", "check", "../configs/code_completion.yml"])
print(out.getvalue().split("---")[0])
test_eq(status, 0)
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = cli_main(["config", "check", "../configs/code_completion.yml", "--set", "hiden-size=3"])
test_eq(status, 2)
test_eq("did you mean 'hidden-size'" in err.getvalue(), True)

# %% [markdown]
# A misspelt optimizer or schedule is caught by `config check` too, because `load_config` checks the names
# as it reads them: one line that names the key and lists what is registered.

# %%
import tempfile
def _check(text: str, *sets: str) -> tuple[int, str]:
    "Run `neoxcourse config check` on a YAML text; return the status and what it wrote to standard error."
    err = io.StringIO()
    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        (Path(d) / "c.yml").write_text(text)
        status = cli_main(["config", "check", str(Path(d) / "c.yml"), *[a for s in sets for a in ("--set", s)]])
    return status, err.getvalue()

status, msg = _check("optimizer: {type: Adamm}\n")
print(msg)
test_eq((status, msg.count("\n")), (2, 1))
test_eq("key 'optimizer.type': unknown optimizer 'Adamm' (did you mean 'adam'?); registered: adafactor, adam" in msg, True)
status, msg = _check("lr-decay-style: cosin\n")
test_eq((status, msg.count("\n")), (2, 1))
test_eq("key 'lr-decay-style': unknown schedule 'cosin'" in msg and "registered: constant, cosine" in msg, True)
test_eq(_check("num-layers: 2\n", "optimizer.type=sgd", "lr-decay-style=wsd")[0], 0)
test_eq(_check("num-layers: 2\n", "optimizer.type=lamb")[0], 2)

# %% [markdown]
# `neoxcourse bench` hands everything after `bench` to `bench/bench_train.py` as written (`--t4`, `--only`,
# `-- --help`), and unless you name `--out` its results go to `checkpoints/bench/`, a folder git ignores: the
# course's own `bench/results/` change only when you ask for it.

# %%
test_eq(bench_argv(["--t4", "--only", "sdpa"], Path("/s")), ["--t4", "--only", "sdpa", "--out", "/s"])
test_eq(bench_argv(["--", "--help"], Path("/s")), ["--help"])
test_eq(bench_argv(["--out", "bench/results"], Path("/s")), ["--out", "bench/results"])

# %% [markdown]
# ## Recap
#
# The command line is a registry of sub-commands, each a few lines that load the config and call the chapter's
# function. A `ConfigError` becomes one line on standard error and exit status 2. Chapters 02 to A7 add their
# commands below as they are built.
