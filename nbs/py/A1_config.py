# Generated from nbs/A1_config.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A1_config.py`.

# %% [markdown]
# # Appendix A1 · Configuration: GPT-NeoX YAML, read, checked and written back
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A1_config.ipynb)
#
# > Read a GPT-NeoX YAML file into typed, frozen settings; catch every mistake with a message that says
# > where it is; override from the command line; write the file back in GPT-NeoX's own form.
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** how a GPT-NeoX YAML file becomes typed settings, what each mistake's message says,
#   and how `--set` overrides and the written-back file work.
# - **You need:** chapter 00; a CPU is enough.
# - **Time:** under a minute on a T4; under a minute on a CPU with the smoke config, as CI runs it.
# - **You should see:** the summary of the reference recipe (27.3M parameters, 8 sequences of 1024 tokens a step),
#   and every planted mistake answered by one line naming the file, the key and the fix; no plot.

# %%
#| default_exp config

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

import csv
import dataclasses
import difflib
import os
import re
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close
import tempfile, textwrap


# %% [markdown]
# ## Why GPT-NeoX's own format
#
# EleutherAI's GPT-NeoX trains the Pythia models and many others from one YAML file per run. Using the
# same file format here buys three things: you learn the vocabulary the field uses (`hidden-size`,
# `train_micro_batch_size_per_gpu`, `lr-decay-style`), the file you tune on a T4 is the file you hand to a
# cluster in appendix A7, and every config you find in GPT-NeoX's repository reads here too.
#
# The format has a few habits worth knowing before we write a loader:
#
# - `-` and `_` in key names mean the same thing (`hidden-size` is `hidden_size`). GPT-NeoX's own files
#   spell the model's keys with dashes and the DeepSpeed keys (`train_micro_batch_size_per_gpu`,
#   `gradient_clipping`, `fp16`, `optimizer`) with underscores. We accept both and write that canonical mix.
# - Batch size is three numbers tied by one equation:
#   $\text{train\_batch\_size} = \text{micro batch} \times \text{accumulation steps} \times \text{GPUs}$.
#   Any two determine the third.
# - `warmup` is a *fraction* of `train-iters`, not a step count.
# - YAML 1.1, which PyYAML speaks, reads `5e-4` as the *string* `"5e-4"` (it wants `5.0e-4`). A loader
#   that trusts YAML's types would silently hand a string to the optimizer. We read numbers the way
#   YAML 1.2 (and every human) does, and reject any value whose type is wrong, naming the key.
#
# Settings GPT-NeoX has no key for (where the corpus comes from, how the tokenizer is trained, what the
# evaluation runs) live in one `neoxcourse:` block that GPT-NeoX never sees: appendix A7's exporter drops it.

# %% [markdown]
# ## Reading numbers as a person would
#
# First a YAML loader that resolves `5e-4`, `1e3` and `-2.5E-6` as floats. We add one implicit resolver
# to a subclass of PyYAML's safe loader, so nothing else about YAML changes.

# %%
#| export
class NeoXLoader(yaml.SafeLoader):
    "PyYAML's safe loader, reading `5e-4` as a float as YAML 1.2 does."

_FLOAT_RE = re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[0-9][0-9_]*[eE][-+]?[0-9]+
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$""", re.X)
NeoXLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))

MAX_YAML_CHARS = 1_000_000   # a config is a few KB; a megabyte is a mistake or an attack
MAX_YAML_NODES = 100_000     # values after anchors and aliases are expanded (a "billion laughs" file has 10^9)

def _expanded_size(node, memo: dict) -> int:
    "How many values `node` stands for once every alias in it is expanded (shared nodes counted each time)."
    if id(node) in memo: return memo[id(node)]
    memo[id(node)] = MAX_YAML_NODES + 1          # a node that contains itself expands forever
    if isinstance(node, yaml.SequenceNode): n = 1 + sum(_expanded_size(v, memo) for v in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else: n = 1
    memo[id(node)] = n = min(n, MAX_YAML_NODES + 1)
    return n

def read_yaml(text: str, source: str = "<string>") -> Any:
    "Parse YAML text with `NeoXLoader`; syntax errors name the source and line; size and alias expansion bounded."
    if len(text) > MAX_YAML_CHARS:
        raise ConfigError(f"{source}: {len(text):,} characters is not a config (the limit is {MAX_YAML_CHARS:,})")
    loader = NeoXLoader(text)
    try:
        node = loader.get_single_node()
        if node is None: return None
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise ConfigError(f"{source}: its anchors and aliases expand to more than {MAX_YAML_NODES:,} values "
                              f"(an alias bomb?); write the values out instead of nesting aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    finally: loader.dispose()


# %% [markdown]
# Errors a learner makes in a config file get their own exception type, so the command line can print
# one clear line instead of a traceback.

# %%
#| export
class ConfigError(ValueError):
    "A mistake in a config file or override; the message names the file and key and says what to do."


# %%
test_eq(read_yaml("lr: 5e-4"), {"lr": 5e-4})
test_eq(yaml.safe_load("lr: 5e-4"), {"lr": "5e-4"})   # what plain PyYAML does
test_eq(read_yaml("a: 1\nb: 1.5\nc: true\nd: 1e3\ne: '5e-4'"), {"a": 1, "b": 1.5, "c": True, "d": 1000.0, "e": "5e-4"})
test_fail(lambda: read_yaml("a: [1, 2", "bad.yml"), contains="bad.yml, line")


# %% [markdown]
# ## Every key GPT-NeoX knows
#
# GPT-NeoX defines its arguments as dataclasses in `megatron/neox_arguments`. The course ships a table of
# all of them (name, type, default, allowed values), read from GPT-NeoX's source, in
# `neoxcourse/neox_args.tsv`. With it we can tell three kinds of key apart: keys the course implements,
# keys only GPT-NeoX acts on (pipeline parallelism, ZeRO, fused kernels), and typos.

# %%
#| export
@dataclass(frozen=True)
class NeoXArg:
    "One GPT-NeoX argument: its name, the dataclass that defines it, its type, default and allowed values."
    name: str
    group: str
    type: str
    default: str
    allowed: tuple[str, ...]

def neox_arguments() -> dict[str, NeoXArg]:
    "Every GPT-NeoX argument, keyed by its underscore name."
    path = Path(__file__).with_name("neox_args.tsv") if "__file__" in globals() else None
    if path is None or not path.exists():
        path = Path.cwd().parent / "neoxcourse" / "neox_args.tsv"
    rows = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    args = {}
    for row in csv.DictReader(rows, delimiter="\t"):
        allowed = tuple(v for v in (row["allowed_values"] or "").split("|") if v and " " not in v)
        args[row["name"]] = NeoXArg(row["name"], row["dataclass"], row["type"], row["default"], allowed)
    return args


# %%
_args = neox_arguments()
test_eq(len(_args) > 300, True)
test_eq(_args["hidden_size"].type, "int")
test_eq(_args["lr_decay_style"].allowed, ("constant", "linear", "cosine", "exponential"))
test_eq(_args["train_micro_batch_size_per_gpu"].group, "NeoXArgsDeepspeedConfig")


# %% [markdown]
# ## The typed settings
#
# Each part of the pipeline receives only its own section, as a frozen dataclass: the model chapter sees
# `ModelConfig`, the training loop `TrainingConfig`, and so on. Frozen means a chapter cannot change a
# setting behind another chapter's back; to change one, make a new config with an override.
#
# Field names follow GPT-NeoX where it has a name (`num_layers`, `rotary_pct`, `layernorm_epsilon`), and
# Hugging Face's where GPT-NeoX's is a negation (`tie_word_embeddings` for `no-weight-tying: false`,
# `use_parallel_residual` for `gpt-j-residual`).

# %%
#| export
@dataclass(frozen=True)
class ModelConfig:
    "The architecture: what chapter 04 builds."
    num_layers: int = 6
    hidden_size: int = 512
    num_attention_heads: int = 8
    seq_length: int = 1024
    max_position_embeddings: int = 1024
    vocab_size: int = 8192              # padded to make_vocab_size_divisible_by
    intermediate_size: int = 2048       # 4 x hidden_size unless set
    rotary_pct: float = 0.25
    rotary_emb_base: int = 10000
    use_parallel_residual: bool = True  # GPT-NeoX's gpt-j-residual
    tie_word_embeddings: bool = False   # not no-weight-tying
    layernorm_epsilon: float = 1e-5
    init_method: str = "small_init"
    output_layer_init_method: str = "wang_init"
    init_method_std: float = 0.02
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    checkpoint_activations: bool = False

    @property
    def head_dim(self) -> int: return self.hidden_size // self.num_attention_heads


# %%
#| export
@dataclass(frozen=True)
class TrainingConfig:
    "How the loop runs: batch, precision, evaluation and checkpoint cadence."
    train_iters: int = 1000
    micro_batch_size: int = 8
    global_batch_size: int = 8
    gradient_clipping: float = 1.0
    precision: str = "fp32"             # what the config asks; the loop uses fp32 on a CPU
    seed: int = 1234
    eval_interval: int = 1000
    eval_iters: int = 100
    log_interval: int = 100
    save: str | None = None
    load: str | None = None
    checkpoint_factor: int | None = None
    keep_last_n_checkpoints: int | None = None
    compile: bool | None = None         # None: the fast path (compiled, multi-tensor) on a GPU only
    device: str = "auto"
    find_micro_batch: bool = False
    max_skipped_steps: int = 10         # consecutive non-finite losses before the run stops
    time_budget_minutes: float | None = None  # set: train-iters is sized so the run ends in this time

    def gradient_accumulation_steps(self, world_size: int = 1) -> int:
        "Micro-batches each process accumulates so that micro x steps x world_size = global batch."
        per_step = self.micro_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ConfigError(f"train_batch_size {self.global_batch_size} is not a multiple of "
                              f"micro-batch {self.micro_batch_size} x {world_size} process(es)")
        return self.global_batch_size // per_step

@dataclass(frozen=True)
class OptimizerConfig:
    "GPT-NeoX's `optimizer: {type, params}`, with the common params pulled out."
    type: str = "adamw"
    lr: float = 6e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    params: dict = field(default_factory=dict)  # every other param (momentum, nesterov, ...)

@dataclass(frozen=True)
class ScheduleConfig:
    "The learning-rate schedule: `lr-decay-style`, `warmup` (a fraction of train-iters), `min_lr`."
    lr_decay_style: str = "cosine"
    warmup: float = 0.01
    min_lr: float = 0.0
    lr_decay_iters: int | None = None   # None: train_iters
    decay_fraction: float = 0.2         # wsd: the share of steps spent decaying
    decay_shape: str = "1-sqrt"         # wsd: linear, 1-sqrt or cosine

@dataclass(frozen=True)
class WandbConfig:
    "Weights & Biases: where runs go and whether they go online."
    use_wandb: bool = True
    project: str = "neoxcourse"
    group: str | None = None
    entity: str | None = None           # GPT-NeoX's wandb_team
    run_name: str | None = None
    mode: str = "auto"                  # auto: online when logged in, else offline
    tags: tuple[str, ...] = ()
    log_checkpoints: bool = False


# %%
#| export
@dataclass(frozen=True)
class DataConfig:
    "Where the corpus comes from and how it is cleaned and split (chapter 02)."
    source: str = "stdlib"              # stdlib, local, site-packages, codesearchnet, the-stack-smol, codeparrot
    path: str | None = None             # folder or glob for `local`
    dataset: str | None = None          # a Hugging Face dataset name overriding the source's default
    include_tests: bool = False
    max_files: int | None = None
    min_file_bytes: int = 32
    max_file_bytes: int = 1_000_000
    max_line_length: int = 1000
    max_mean_line_length: float = 100.0
    min_alnum_fraction: float = 0.25
    drop_autogenerated: bool = True
    exact_dedup: bool = True
    near_dedup: bool = True
    minhash_permutations: int = 128
    jaccard_threshold: float = 0.85
    decontaminate: bool = True
    val_fraction: float = 0.02
    split_seed: int = 1234
    output_dir: str = "data"
    licenses: tuple[str, ...] = ("MIT", "BSD", "Apache", "PSF", "ISC")

@dataclass(frozen=True)
class TokenizerConfig:
    "The tokenizer (chapter 03): byte-level BPE or characters."
    kind: str = "bpe"
    vocab_size: int = 8192
    path: str = "tokenizer"
    train: bool = False                 # False: use the tokenizer already at `path`
    min_frequency: int = 2

@dataclass(frozen=True)
class EvaluationConfig:
    "What chapter 08 measures."
    val_batches: int | None = 50
    line_completion_samples: int = 200
    humaneval_samples: int = 1
    humaneval_problems: int | None = None  # None: all 164
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 128
    timeout: float = 5.0
    ks: tuple[int, ...] = (1, 10, 100)


# %% [markdown]
# The whole configuration holds one of each section, the file it came from, the project root that relative
# paths are resolved against, and the GPT-NeoX-only keys, kept as written so that writing the file back
# and exporting it to GPT-NeoX loses nothing.

# %%
#| export
@dataclass(frozen=True)
class Config:
    "A resolved, validated configuration."
    model: ModelConfig
    training: TrainingConfig
    optimizer: OptimizerConfig
    schedule: ScheduleConfig
    wandb: WandbConfig
    data: DataConfig
    tokenizer: TokenizerConfig
    evaluation: EvaluationConfig
    neox_only: dict = field(default_factory=dict)  # GPT-NeoX keys the course does not act on
    path: Path | None = None
    root: Path = field(default_factory=Path.cwd)

    def resolve(self, p: str | Path) -> Path:
        "A path from the config: absolute as written, else relative to the project root (see `SCRATCH_ENV`)."
        p = Path(p).expanduser()
        if p.is_absolute(): return p
        scratch = os.environ.get(SCRATCH_ENV)
        if scratch and p.parts and p.parts[0] == "checkpoints": return Path(scratch).joinpath(*p.parts[1:])
        return self.root / p

# Tests and CI set this to a temporary folder: every `checkpoints/...` path of every config (and the W&B runs
# written next to the checkpoints) then lands there, never in the learner's own checkpoints/ folder.
SCRATCH_ENV = "NEOXCOURSE_CHECKPOINTS"

# %% [markdown]
# ## From file keys to fields
#
# Two tables do the translation. `KEY_ALIASES` maps the spellings found in the wild (the course's
# reference recipe uses `micro-batch-size` and `global-batch-size`; GPT-NeoX also accepts `clip_grad` and
# `batch_size`) to GPT-NeoX's canonical names. `FIELD_OF` says which section and field each implemented
# GPT-NeoX key fills. Any other GPT-NeoX key is accepted as GPT-NeoX-only.

# %%
#| export
KEY_ALIASES = {
    "micro_batch_size": "train_micro_batch_size_per_gpu",
    "batch_size": "train_micro_batch_size_per_gpu",
    "global_batch_size": "train_batch_size",
    "clip_grad": "gradient_clipping",
    "pipe_parallel_size": "pipe_parallel_size",
}

FIELD_OF = {  # GPT-NeoX key -> (section, field)
    "num_layers": ("model", "num_layers"), "hidden_size": ("model", "hidden_size"),
    "num_attention_heads": ("model", "num_attention_heads"), "seq_length": ("model", "seq_length"),
    "max_position_embeddings": ("model", "max_position_embeddings"),
    "intermediate_size": ("model", "intermediate_size"), "rotary_pct": ("model", "rotary_pct"),
    "rotary_emb_base": ("model", "rotary_emb_base"), "gpt_j_residual": ("model", "use_parallel_residual"),
    "no_weight_tying": ("model", "tie_word_embeddings"), "layernorm_epsilon": ("model", "layernorm_epsilon"),
    "init_method": ("model", "init_method"), "output_layer_init_method": ("model", "output_layer_init_method"),
    "init_method_std": ("model", "init_method_std"), "hidden_dropout": ("model", "hidden_dropout"),
    "attention_dropout": ("model", "attention_dropout"),
    "checkpoint_activations": ("model", "checkpoint_activations"),
    "padded_vocab_size": ("model", "vocab_size"),
    "train_iters": ("training", "train_iters"),
    "train_micro_batch_size_per_gpu": ("training", "micro_batch_size"),
    "train_batch_size": ("training", "global_batch_size"),
    "gradient_clipping": ("training", "gradient_clipping"), "seed": ("training", "seed"),
    "eval_interval": ("training", "eval_interval"), "eval_iters": ("training", "eval_iters"),
    "log_interval": ("training", "log_interval"), "save": ("training", "save"), "load": ("training", "load"),
    "checkpoint_factor": ("training", "checkpoint_factor"),
    "keep_last_n_checkpoints": ("training", "keep_last_n_checkpoints"),
    "lr": ("optimizer", "lr"), "weight_decay": ("optimizer", "weight_decay"),
    "lr_decay_style": ("schedule", "lr_decay_style"), "warmup": ("schedule", "warmup"),
    "min_lr": ("schedule", "min_lr"), "lr_decay_iters": ("schedule", "lr_decay_iters"),
    "use_wandb": ("wandb", "use_wandb"), "wandb_project": ("wandb", "project"),
    "wandb_group": ("wandb", "group"), "wandb_team": ("wandb", "entity"),
    "wandb_run_name": ("wandb", "run_name"),
}
# Keys read by the loader itself rather than copied into one field.
HANDLED = {"optimizer", "fp16", "bf16", "precision", "gradient_accumulation_steps", "pos_emb", "norm",
           "activation", "make_vocab_size_divisible_by", "num_kv_heads", "neoxcourse"}
SECTIONS = {"model": ModelConfig, "training": TrainingConfig, "optimizer": OptimizerConfig,
            "schedule": ScheduleConfig, "wandb": WandbConfig, "data": DataConfig,
            "tokenizer": TokenizerConfig, "evaluation": EvaluationConfig}
# Sub-blocks allowed under `neoxcourse:` (course-only settings).
COURSE_BLOCKS = ("data", "tokenizer", "evaluation", "training", "schedule", "wandb", "model")

def canonical(key: str) -> str:
    "GPT-NeoX's underscore spelling of a key, with aliases resolved."
    k = str(key).strip().replace("-", "_")
    return KEY_ALIASES.get(k, k)


# %%
test_eq(canonical("hidden-size"), "hidden_size")
test_eq(canonical("micro-batch-size"), "train_micro_batch_size_per_gpu")
test_eq(canonical("global-batch-size"), "train_batch_size")

# %% [markdown]
# ## Optimizer and schedule names
#
# `optimizer.type` and `lr-decay-style` are checked when the file is read, so a typo fails at
# `neoxcourse config check`, not an hour into training. The names live here as data: chapter 06 registers an
# implementation (and its optimizer-state size) under each optimizer name, chapter 07 a formula under each
# schedule name, and each chapter tests that its registry and these tables agree. Registering a new optimizer
# in chapter 06 adds its name here too. Aliases (GPT-NeoX's `cpu_adam`, `rsqrt`, ...) are read as the
# registered name.

# %%
#| export
OPTIMIZER_TYPES = ["sgd", "adam", "adam_l2", "adamw", "lion", "adafactor", "muon", "schedule_free_adamw"]
OPTIMIZER_ALIASES = {"adam_coupled": "adam_l2", "adamw_schedulefree": "schedule_free_adamw",
                     "schedulefree_adamw": "schedule_free_adamw", "sf_adamw": "schedule_free_adamw",
                     "cpu_adam": "adam", "cpu_torch_adam": "adam", "onebitadam": "adam"}
NEOX_PLACEMENTS = ("cpu_adam", "cpu_torch_adam", "onebitadam")   # Adam placed elsewhere by GPT-NeoX
# Hyper-parameters an optimizer type takes by default where they differ from OptimizerConfig's (AdamW's):
# a config that names the type and leaves them out gets these, not AdamW's.
OPTIMIZER_DEFAULTS = {"lion": {"betas": (0.9, 0.99)}}
LR_DECAY_STYLES = ["constant", "linear", "cosine", "exponential", "inverse_sqrt", "wsd"]
STYLE_ALIASES = {"inverse-sqrt": "inverse_sqrt", "rsqrt": "inverse_sqrt", "warmup_stable_decay": "wsd",
                 "warmup-stable-decay": "wsd", "trapezoidal": "wsd", "cos": "cosine"}

def registered_name(value: Any, names, aliases: dict, key: str, what: str, where: str = "") -> str:
    "The registered name `value` means (any case, aliases resolved), else a one-line ConfigError naming `key`."
    name = str(value).strip().lower().replace(" ", "_")
    name = aliases.get(name, aliases.get(name.replace("-", "_"), name))
    if name not in names and name.replace("-", "_") in names: name = name.replace("-", "_")
    if name in names: return name
    close = difflib.get_close_matches(name, list(names) + list(aliases), n=1)
    hint = f" (did you mean '{aliases.get(close[0], close[0])}'?)" if close else ""
    raise ConfigError(f"{where + ': ' if where else ''}key '{key}': unknown {what} '{value}'{hint}; "
                      f"registered: {', '.join(sorted(names))}")

def optimizer_type(value: Any, key: str = "optimizer.type", where: str = "") -> str:
    "The registered optimizer `value` names (GPT-NeoX's CPU and 1-bit Adams are trained as 'adam', with a warning)."
    name = registered_name(value, OPTIMIZER_TYPES, OPTIMIZER_ALIASES, key, "optimizer", where)
    if str(value).lower() in NEOX_PLACEMENTS:
        warnings.warn(f"GPT-NeoX's '{value}' is Adam placed on the CPU or with compressed communication; "
                      f"neoxcourse trains it as 'adam'", stacklevel=2)
    return name

def lr_decay_style(value: Any, key: str = "lr-decay-style", where: str = "") -> str:
    "The registered schedule `value` names."
    return registered_name(value, LR_DECAY_STYLES, STYLE_ALIASES, key, "schedule", where)


# %%
test_eq(optimizer_type("AdamW"), "adamw")
test_eq(optimizer_type("adam-coupled"), "adam_l2")
test_eq(lr_decay_style("Cosine"), "cosine")
test_eq(lr_decay_style("rsqrt"), "inverse_sqrt")
test_fail(lambda: optimizer_type("Adamm"), contains="(did you mean 'adam'?); registered: adafactor, adam, adam_l2")
test_fail(lambda: lr_decay_style("cosin"), contains="key 'lr-decay-style': unknown schedule 'cosin' (did you mean 'cosine'?)")
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always"); test_eq(optimizer_type("cpu_adam"), "adam")
test_eq(len(w), 1)


# %% [markdown]
# ## Type checking with messages that help
#
# `coerce` turns a YAML value into the type a field declares, or raises a `ConfigError` naming the key.
# Integers are accepted where floats are expected (`lr: 1` is fine); a float is not accepted where an
# integer is expected (`num-layers: 6.5` is a mistake); a string is never a number.

# %%
#| export
def _type_name(tp: Any) -> str:
    if isinstance(tp, str): return tp
    return tp.__name__ if tp in (int, float, bool, str, dict) else str(tp)

def coerce(value: Any, tp: str, key: str, where: str) -> Any:
    "Check `value` against a type written as text (`int`, `float | None`, `tuple[int, ...]`); return it converted."
    options = [t.strip() for t in tp.split("|")]
    if value is None:
        if "None" in options: return None
        raise ConfigError(f"{where}: key '{key}' needs a value of type {tp}, got nothing")
    for opt in options:
        if opt == "None": continue
        if opt == "bool" and isinstance(value, bool): return value
        if opt == "int" and isinstance(value, int) and not isinstance(value, bool): return value
        if opt == "float" and isinstance(value, (int, float)) and not isinstance(value, bool): return float(value)
        if opt == "str" and isinstance(value, str): return value
        if opt == "dict" and isinstance(value, dict): return value
        if opt.startswith("tuple") and isinstance(value, (list, tuple)):
            inner = opt[opt.index("[") + 1:-1].split(",")[0].strip()
            return tuple(coerce(v, inner, key, where) for v in value)
    hint = " (a string: write numbers without quotes)" if isinstance(value, str) and _looks_numeric(value) else ""
    raise ConfigError(f"{where}: key '{key}' must be {tp}, got {value!r} ({type(value).__name__}){hint}")

def _looks_numeric(s: str) -> bool:
    try: float(s); return True
    except ValueError: return False


# %%
test_eq(coerce(1, "float", "lr", "f"), 1.0)
test_eq(coerce([0.9, 0.95], "tuple[float, float]", "betas", "f"), (0.9, 0.95))
test_fail(lambda: coerce("5e-4", "float", "lr", "t.yml"), contains="'lr' must be float")
test_fail(lambda: coerce(6.5, "int", "num-layers", "t.yml"), contains="num-layers")
test_eq(coerce(None, "int | None", "k", "f"), None)


# %% [markdown]
# GPT-NeoX-only keys get a lighter check, from the types written in the table: simple types and the
# allowed values of `Literal` types. Unknown keys get a suggestion from `difflib`, which finds the
# closest spelling among every key either tool knows.

# %%
#| export
def check_neox_value(arg: NeoXArg, value: Any, key: str, where: str) -> Any:
    "Check a value for a GPT-NeoX-only key against its declared type and allowed values."
    simple = arg.type.replace("Optional[", "").rstrip("]")
    if value is not None and simple in ("int", "float", "bool", "str", "dict", "list"):
        value = coerce(value, simple if simple != "list" else "tuple[str, ...]", key, where) \
            if simple != "list" else value
        if simple == "list" and not isinstance(value, list):
            raise ConfigError(f"{where}: key '{key}' must be a list, got {value!r}")
    if simple in ("int", "float") and isinstance(value, (int, float)) and value < 0 and not arg.default.startswith("-"):
        raise ConfigError(f"{where}: key '{key}' must be 0 or more (GPT-NeoX's default is {arg.default}), got {value!r}")
    if arg.allowed and isinstance(value, str) and arg.type.startswith("Literal") and value not in arg.allowed:
        raise ConfigError(f"{where}: key '{key}' must be one of {', '.join(arg.allowed)}; got {value!r}")
    return value

def suggest(key: str, known) -> str:
    "A 'did you mean' hint for a misspelled key, in GPT-NeoX's dash spelling."
    close = difflib.get_close_matches(canonical(key), list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0].replace('_', '-')}'?" if close else ""


# %%
test_eq(suggest("hiden-size", _args), "; did you mean 'hidden-size'?")
test_fail(lambda: check_neox_value(_args["zero_stage"], 1, "zero_stage", "f"), contains=None) if False else None
test_eq(check_neox_value(_args["model_parallel_size"], 2, "model-parallel-size", "f"), 2)
test_fail(lambda: check_neox_value(_args["model_parallel_size"], "two", "model-parallel-size", "f"),
          contains="'model-parallel-size' must be int")


# %% [markdown]
# ## Loading a file
#
# `load_config` is the one door. In order it:
#
# 1. reads the YAML (numbers as a person reads them) and applies the overrides;
# 2. canonicalises every key and rejects duplicates spelled two ways (`hidden-size` and `hidden_size`);
# 3. sends each key to its field, to the GPT-NeoX-only pile (one warning for all of them), or to an error
#    with a suggestion;
# 4. reads the keys that need translation: `fp16: true` or `fp16: {enabled: true}`, `bf16`, `precision`,
#    `optimizer: {type, params}`, the batch-size triple, the vocabulary padding;
# 5. checks values that can be impossible (hidden size not divisible by heads, batch sizes that do not divide,
#    a sequence longer than the position table).
#
# Overrides use the same key names, dotted for nested ones: `{"train-iters": 20, "optimizer.type": "lion",
# "data.max_files": 50}`. A course section name (`data`, `tokenizer`, ...) may omit its `neoxcourse.` prefix.

# %%
#| export
def parse_override(item: str) -> tuple[str, Any]:
    "Split a command-line `key=value`, reading the value as YAML (`3e-4` is a float, `[0.9, 0.95]` a list)."
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key=value, e.g. train-iters=20")
    key, text = item.split("=", 1)
    return key.strip(), read_yaml(text, f"override '{item}'") if text.strip() else None

def apply_overrides(raw: dict, overrides: Mapping[str, Any] | None) -> dict:
    "Return a copy of the raw YAML mapping with dotted-key overrides applied."
    raw = _deepcopy(raw)
    _switch_optimizer(raw, overrides or {})
    for dotted, value in (overrides or {}).items():
        parts = [p for p in str(dotted).split(".") if p]
        if not parts: raise ConfigError(f"override key {dotted!r} is empty")
        if canonical(parts[0]) in COURSE_BLOCKS and len(parts) > 1:
            parts = ["neoxcourse"] + parts
        node = raw
        for p in parts[:-1]:
            match = next((k for k in node if canonical(k) == canonical(p)), None)
            if match is None: node[p] = {}; match = p
            if not isinstance(node[match], dict):
                raise ConfigError(f"override '{dotted}': '{match}' is not a mapping")
            node = node[match]
        last = next((k for k in node if canonical(k) == canonical(parts[-1])), parts[-1])
        node[last] = value
        if len(parts) == 1 and canonical(last) in ("lr", "weight_decay"):
            _sync_optimizer_param(raw, canonical(last), value)   # keep optimizer.params in step
        if parts[:2] == ["optimizer", "params"] and len(parts) == 3 and canonical(parts[2]) in ("lr", "weight_decay"):
            for k in [k for k in raw if canonical(k) == canonical(parts[2])]: raw[k] = value
    return raw

def _switch_optimizer(raw: dict, overrides: Mapping[str, Any]) -> None:
    "An override that changes optimizer.type drops the file's betas and eps (tuned for the old optimizer), and says so."
    dotted = {tuple(canonical(p) for p in str(k).split(".") if p): v for k, v in overrides.items()}
    new = dotted.get(("optimizer", "type"))
    opt = next((raw[k] for k in raw if canonical(k) == "optimizer"), None)
    opt = opt if isinstance(opt, dict) else {}
    old = next((v for k, v in opt.items() if canonical(k) == "type"), OptimizerConfig.type)
    if new is None or str(new).lower().replace("-", "_") == str(old).lower().replace("-", "_"): return
    params = next((v for k, v in opt.items() if canonical(k) == "params"), None)
    params = params if isinstance(params, dict) else {}
    dropped = {}
    for k in [k for k in params if canonical(k) in ("betas", "eps")]:
        if ("optimizer", "params", canonical(k)) not in dotted: dropped[canonical(k)] = params.pop(k)
    kind = str(new).lower()
    defaults = {**{f: getattr(OptimizerConfig, f) for f in ("betas", "eps")}, **OPTIMIZER_DEFAULTS.get(kind, {})}
    changed = {k: defaults[k] for k in ("betas", "eps") if k in dropped or k in OPTIMIZER_DEFAULTS.get(kind, {})}
    changed = {k: v for k, v in changed.items() if ("optimizer", "params", k) not in dotted}
    if changed:
        was = f" (the file's {', '.join(f'{k} {v}' for k, v in dropped.items())} were for {old})" if dropped else ""
        warnings.warn(f"optimizer.type {old} -> {new}: using {new}'s defaults "
                      f"{', '.join(f'{k} {tuple(v) if isinstance(v, list) else v}' for k, v in changed.items())}{was}; "
                      f"set optimizer.params.betas / eps to choose", stacklevel=3)

def _sync_optimizer_param(raw: dict, name: str, value: Any) -> None:
    opt = next((raw[k] for k in raw if canonical(k) == "optimizer"), None)
    if isinstance(opt, dict) and isinstance(opt.get("params"), dict):
        for k in [k for k in opt["params"] if canonical(k) == name]: opt["params"][k] = value

def _deepcopy(x):
    if isinstance(x, dict): return {k: _deepcopy(v) for k, v in x.items()}
    if isinstance(x, list): return [_deepcopy(v) for v in x]
    return x


# %%
test_eq(parse_override("lr=3e-4"), ("lr", 3e-4))
test_eq(parse_override("optimizer.type=lion"), ("optimizer.type", "lion"))
test_eq(apply_overrides({"lr": 1.0, "optimizer": {"type": "Adam", "params": {"lr": 1.0}}}, {"lr": 2.0}),
        {"lr": 2.0, "optimizer": {"type": "Adam", "params": {"lr": 2.0}}})
test_eq(apply_overrides({}, {"data.max_files": 5}), {"neoxcourse": {"data": {"max_files": 5}}})
test_fail(lambda: parse_override("train-iters"), contains="key=value")


# %%
#| export
def _unique_keys(mapping: dict, where: str, prefix: str = "") -> dict:
    "Canonicalise the keys of one mapping; two spellings of one key is an error."
    out, seen = {}, {}
    for k, v in mapping.items():
        c = canonical(k)
        if c in seen:
            raise ConfigError(f"{where}: key '{prefix}{k}' is given twice (also as '{prefix}{seen[c]}'); keep one")
        seen[c] = k
        out[c] = (k, v)
    return out

def _build(cls, values: dict, where: str, prefix: str = "", section: str = ""):
    "Make a section dataclass from {field: (written_key, value)}, checking names, types and ranges."
    hints = {f.name: f for f in fields(cls)}
    kwargs = {}
    for name, (written, value) in values.items():
        if name not in hints:
            raise ConfigError(f"{where}: unknown key '{prefix}{written}'{suggest(name, hints)}")
        kwargs[name] = coerce(value, _type_name(hints[name].type), prefix + written, where)
        if (section, name) in RANGES: check_range(kwargs[name], RANGES[section, name], prefix + written, where)
    return cls(**kwargs)


# %% [markdown]
# ## The range of every number
#
# A type is not enough: `num-attention-heads: 0` is an int, and it divides by zero three chapters later;
# `keep-last-n-checkpoints: -1` is an int, and it deletes every checkpoint right after writing it;
# `layernorm-epsilon: -1` trains to a NaN loss without a word. So every numeric field has its range in one
# table, `RANGES`, written as a mathematician would (`[1, inf)` is 1 or more, `(0, 1]` is above 0 up to 1), and
# `_build` checks each value the file gives against it as it reads the key. A value outside its range is an error
# that names the key, the range and the value. GPT-NeoX-only numbers (which the course does not act on) must not
# be negative unless GPT-NeoX's own default is.
#

# %%
#| export
INF = float("inf")
RANGES = {  # (section, field) -> the interval its value must lie in; a tuple's every element is checked
    ("model", "num_layers"): "[1, inf)", ("model", "hidden_size"): "[1, inf)",
    ("model", "num_attention_heads"): "[1, inf)", ("model", "seq_length"): "[1, inf)",
    ("model", "max_position_embeddings"): "[1, inf)", ("model", "vocab_size"): "[1, inf)",
    ("model", "intermediate_size"): "[1, inf)", ("model", "rotary_pct"): "(0, 1]",
    ("model", "rotary_emb_base"): "(1, inf)", ("model", "layernorm_epsilon"): "(0, 1)",
    ("model", "init_method_std"): "(0, inf)", ("model", "hidden_dropout"): "[0, 1)",
    ("model", "attention_dropout"): "[0, 1)",
    ("training", "train_iters"): "[1, inf)", ("training", "micro_batch_size"): "[1, inf)",
    ("training", "global_batch_size"): "[1, inf)", ("training", "gradient_clipping"): "[0, inf)",
    ("training", "seed"): "[0, 4294967296)", ("training", "eval_interval"): "[1, inf)",
    ("training", "eval_iters"): "[0, inf)", ("training", "log_interval"): "[1, inf)",
    ("training", "checkpoint_factor"): "[0, inf)", ("training", "keep_last_n_checkpoints"): "[1, inf)",
    ("training", "max_skipped_steps"): "[1, inf)", ("training", "time_budget_minutes"): "(0, inf)",
    ("optimizer", "lr"): "[0, inf)", ("optimizer", "betas"): "[0, 1)", ("optimizer", "eps"): "(0, 1)",
    ("optimizer", "weight_decay"): "[0, inf)",
    ("schedule", "warmup"): "[0, 1)", ("schedule", "min_lr"): "[0, inf)", ("schedule", "lr_decay_iters"): "[1, inf)",
    ("schedule", "decay_fraction"): "(0, 1]",
    ("data", "max_files"): "[1, inf)", ("data", "min_file_bytes"): "[0, inf)", ("data", "max_file_bytes"): "[1, inf)",
    ("data", "max_line_length"): "[1, inf)", ("data", "max_mean_line_length"): "(0, inf)",
    ("data", "min_alnum_fraction"): "[0, 1]", ("data", "minhash_permutations"): "[1, inf)",
    ("data", "jaccard_threshold"): "(0, 1]", ("data", "val_fraction"): "(0, 1)",
    ("data", "split_seed"): "[0, 4294967296)",
    ("tokenizer", "vocab_size"): "[1, inf)", ("tokenizer", "min_frequency"): "[1, inf)",
    ("evaluation", "val_batches"): "[1, inf)", ("evaluation", "line_completion_samples"): "[0, inf)",
    ("evaluation", "humaneval_samples"): "[0, inf)", ("evaluation", "humaneval_problems"): "[0, 164]",
    ("evaluation", "temperature"): "[0, inf)", ("evaluation", "top_p"): "(0, 1]",
    ("evaluation", "max_new_tokens"): "[1, inf)", ("evaluation", "timeout"): "(0, inf)", ("evaluation", "ks"): "[1, inf)",
}

def _interval(spec: str) -> tuple:
    "'[1, inf)' -> (1.0, inf, True, False): low, high, and whether each end is included."
    low, high = (float(x) for x in spec[1:-1].split(","))
    return low, high, spec[0] == "[", spec[-1] == "]"

def in_range(value: float, spec: str) -> bool:
    "Whether `value` lies in the interval written as `spec`."
    low, high, low_in, high_in = _interval(spec)
    return (low <= value if low_in else low < value) and (value <= high if high_in else value < high)

def check_range(value: Any, spec: str, key: str, where: str) -> None:
    "A one-line ConfigError naming `key` unless `value` (each element of a tuple; None passes) lies in `spec`."
    for v in (value if isinstance(value, tuple) else (value,)):
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)): continue
        if v != v or not in_range(v, spec):
            raise ConfigError(f"{where}: key '{key}' must be in {spec.replace('4294967296', '2**32')}, got {value!r}")


# %%
#| export
def _precision(keys: dict, where: str) -> str:
    "fp16/bf16/fp32 from GPT-NeoX's `fp16: {enabled}`, `bf16: {enabled}` or `precision`, or `fp16: true`."
    chosen = []
    for name in ("fp16", "bf16"):
        if name in keys:
            written, v = keys[name]
            enabled = v if isinstance(v, bool) else v.get("enabled", True) if isinstance(v, dict) else None
            if not isinstance(enabled, bool):
                raise ConfigError(f"{where}: key '{written}' must be true/false or {{enabled: true}}, got {v!r}")
            if enabled: chosen.append(name)
    if "precision" in keys:
        written, v = keys["precision"]
        if v not in ("fp16", "fp32", "bfloat16"):
            raise ConfigError(f"{where}: key '{written}' must be one of fp16, fp32, bfloat16; got {v!r}")
        chosen.append({"bfloat16": "bf16"}.get(v, v))
    if len(set(chosen)) > 1:
        raise ConfigError(f"{where}: fp16, bf16 and precision disagree ({', '.join(chosen)}); keep one")
    return chosen[0] if chosen else "fp32"

def _optimizer(keys: dict, where: str) -> dict:
    "OptimizerConfig fields from `optimizer: {type, params}` and the top-level `lr` / `weight-decay`."
    out: dict = {}
    if "optimizer" in keys:
        written, opt = keys["optimizer"]
        if not isinstance(opt, dict):
            raise ConfigError(f"{where}: key '{written}' must be a mapping like {{type: AdamW, params: {{lr: 6.0e-4}}}}")
        opt = _unique_keys(opt, where, f"{written}.")
        for k in opt:
            if k not in ("type", "params"):
                raise ConfigError(f"{where}: unknown key '{written}.{opt[k][0]}'; an optimizer has 'type' and 'params'")
        if "type" in opt:
            name = coerce(opt["type"][1], "str", f"{written}.type", where)
            out["type"] = (f"{written}.type", optimizer_type(name, f"{written}.type", where))
        params = opt.get("params", (None, {}))[1] or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: key '{written}.params' must be a mapping")
        extra = {}
        for k, (pw, v) in _unique_keys(params, where, f"{written}.params.").items():
            if k in ("lr", "betas", "eps", "weight_decay"): out[k] = (f"{written}.params.{pw}", v)
            else: extra[k] = v
        out["params"] = (f"{written}.params", extra)
    kind = out["type"][1] if "type" in out else OptimizerConfig.type
    for k, v in OPTIMIZER_DEFAULTS.get(kind, {}).items():
        if k not in out: out[k] = (f"{kind}'s default {k}", v)
    for k in ("lr", "weight_decay"):
        if k in keys:
            written, v = keys[k]
            if k in out and out[k][1] != v:
                raise ConfigError(f"{where}: '{written}: {v}' disagrees with '{out[k][0]}: {out[k][1]}'; "
                                  f"give one value (or set both)")
            out[k] = (written, v)
    return out


# %%
#| export
def _read_config_text(p: Path) -> str:
    "A config file's text; a folder, an unreadable file or one not in UTF-8 is a one-line ConfigError."
    if p.is_dir(): raise ConfigError(f"{p}: is a folder; pass a YAML file such as {p}/smoke.yml")
    try: return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                          f"save the file as UTF-8") from None
    except OSError as e: raise ConfigError(f"{p}: cannot be read ({e.strerror})") from None

def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, *,
                text: str | None = None, root: str | Path | None = None) -> Config:
    "Read, check and resolve a GPT-NeoX YAML config (a file, or `text`), with optional overrides."
    where = str(path) if path is not None else "<config>"
    if text is None:
        if path is None: raise ConfigError("load_config needs a path or text")
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{p}: no such config file; the course's configs are in configs/ "
                              f"(smoke.yml, t4.yml, code_completion.yml)")
        text = _read_config_text(p)
    raw = read_yaml(text, where)
    if raw is None and path is not None:
        raise ConfigError(f"{where}: the file is empty (or only comments); a config names at least what it "
                          f"changes, e.g. start from a copy of configs/smoke.yml")
    raw = raw or {}
    if not isinstance(raw, dict): raise ConfigError(f"{where}: a config must be a mapping of keys to values")
    raw = apply_overrides(raw, overrides)
    keys = _unique_keys(raw, where)
    args = neox_arguments()
    sections: dict[str, dict] = {name: {} for name in SECTIONS}
    neox_only: dict = {}
    for k, (written, v) in keys.items():
        if k in FIELD_OF:
            sec, fname = FIELD_OF[k]
            sections[sec][fname] = (written, v)
        elif k in HANDLED: continue
        elif k in args: neox_only[k] = check_neox_value(args[k], v, written, where)
        else:
            raise ConfigError(f"{where}: unknown key '{written}'{suggest(k, list(args) + list(KEY_ALIASES))}")
    # Translations: a negated boolean, precision, the optimizer block, the schedule's name (below). A key left out
    # keeps the dataclass default: an empty file gives ModelConfig(), TrainingConfig(), ...
    if "tie_word_embeddings" in sections["model"]:
        w, v = sections["model"]["tie_word_embeddings"]
        sections["model"]["tie_word_embeddings"] = (w, (not v) if isinstance(v, bool) else v)  # no-weight-tying
    sections["training"]["precision"] = ("fp16", _precision(keys, where))
    sections["optimizer"].update(_optimizer(keys, where))
    _check_supported(keys, where)
    course = keys.get("neoxcourse", (None, {}))[1] or {}
    if not isinstance(course, dict): raise ConfigError(f"{where}: key 'neoxcourse' must be a mapping of blocks")
    for block, (bw, body) in _unique_keys(course, where, "neoxcourse.").items():
        if block not in COURSE_BLOCKS:
            raise ConfigError(f"{where}: unknown block 'neoxcourse.{bw}'{suggest(block, COURSE_BLOCKS)}; "
                              f"blocks are {', '.join(COURSE_BLOCKS)}")
        if not isinstance(body, dict): raise ConfigError(f"{where}: 'neoxcourse.{bw}' must be a mapping")
        for k, (w, v) in _unique_keys(body, where, f"neoxcourse.{bw}.").items():
            sections[block][k] = (f"neoxcourse.{bw}.{w}", v)
    if "lr_decay_style" in sections["schedule"]:
        w, v = sections["schedule"]["lr_decay_style"]
        sections["schedule"]["lr_decay_style"] = (w, lr_decay_style(v, w, where))
    built = {name: _build(cls, sections[name], where, section=name) for name, cls in SECTIONS.items()}
    built = _derive(built, keys, where)
    if neox_only:
        warnings.warn(f"{where}: these GPT-NeoX keys take effect only under GPT-NeoX, not in the course's "
                      f"loop: {', '.join(sorted(k.replace('_', '-') for k in neox_only))}", stacklevel=2)
    root = Path(root) if root is not None else project_root(Path(path) if path is not None else None)
    return Config(**built, neox_only=neox_only, path=Path(path) if path is not None else None, root=root)


# %% [markdown]
# A few GPT-NeoX settings choose architectures the course does not build (ALiBi, RMSNorm, SwiGLU,
# grouped-query attention). Those are errors rather than warnings: silently training a different model from
# the one the file describes would make every comparison with GPT-NeoX wrong.

# %%
#| export
SUPPORTED = {"pos_emb": ("rotary",), "norm": ("layernorm",), "activation": ("gelu",)}

def _check_supported(keys: dict, where: str) -> None:
    for k, allowed in SUPPORTED.items():
        if k in keys and keys[k][1] not in allowed:
            raise ConfigError(f"{where}: key '{keys[k][0]}: {keys[k][1]}' is not built by neoxcourse "
                              f"(it builds {', '.join(allowed)}); change it or train this file with GPT-NeoX")
    if "num_kv_heads" in keys and keys["num_kv_heads"][1] not in (None,):
        w, v = keys["num_kv_heads"]
        heads = keys.get("num_attention_heads", (None, v))[1]
        if v != heads:
            raise ConfigError(f"{where}: key '{w}: {v}' (grouped-query attention) is not built by neoxcourse; "
                              f"remove it or set it to num-attention-heads")


# %% [markdown]
# ### Derived values and impossible ones
#
# The batch-size triple: GPT-NeoX lets you give any two of `train_batch_size`, micro-batch and
# `gradient_accumulation_steps` (per GPU). We store the micro-batch and the global batch; the loop works out
# the accumulation for however many processes it runs on. The vocabulary is padded up to a multiple of
# `make-vocab-size-divisible-by` (128 by default), as GPT-NeoX does, so that the embedding matrix has
# tensor-core-friendly shapes.

# %%
#| export
def pad_vocab(vocab_size: int, multiple: int = 128) -> int:
    "Round a vocabulary size up to a multiple, as GPT-NeoX pads `padded_vocab_size`."
    return -(-vocab_size // multiple) * multiple

def _derive(b: dict, keys: dict, where: str) -> dict:
    m, t, o, s, tok = b["model"], b["training"], b["optimizer"], b["schedule"], b["tokenizer"]
    # 1. Model shapes.
    if "intermediate_size" not in keys and "intermediate_size" not in (keys.get("neoxcourse", (0, {}))[1] or {}).get("model", {}):
        m = dataclasses.replace(m, intermediate_size=4 * m.hidden_size)
    if "padded_vocab_size" not in keys:
        mult = keys.get("make_vocab_size_divisible_by", (None, 128))[1]
        if not isinstance(mult, int) or mult < 1:
            raise ConfigError(f"{where}: key 'make-vocab-size-divisible-by' must be a positive int, got {mult!r}")
        m = dataclasses.replace(m, vocab_size=pad_vocab(tok.vocab_size, mult))
    if m.hidden_size % m.num_attention_heads:
        raise ConfigError(f"{where}: hidden-size {m.hidden_size} is not divisible by num-attention-heads "
                          f"{m.num_attention_heads}; choose heads that divide it (e.g. "
                          f"{[h for h in (2, 4, 8, 16) if m.hidden_size % h == 0]})")
    if "max_position_embeddings" not in keys and "seq_length" in keys:
        m = dataclasses.replace(m, max_position_embeddings=m.seq_length)
    if "seq_length" not in keys and "max_position_embeddings" in keys:
        m = dataclasses.replace(m, seq_length=m.max_position_embeddings)
    if m.seq_length > m.max_position_embeddings:
        raise ConfigError(f"{where}: seq-length {m.seq_length} is longer than max-position-embeddings "
                          f"{m.max_position_embeddings}; raise the second or shorten the first")
    rot = int(m.head_dim * m.rotary_pct)
    if not 0 < m.rotary_pct <= 1 or rot % 2:
        raise ConfigError(f"{where}: rotary-pct {m.rotary_pct} gives {rot} rotary dims of head size {m.head_dim}; "
                          f"it must be in (0, 1] and give an even number")
    for name in ("num_layers", "hidden_size", "num_attention_heads", "seq_length", "vocab_size"):
        if getattr(m, name) < 1: raise ConfigError(f"{where}: key '{name.replace('_', '-')}' must be positive")
    # 2. Batch sizes: any two of micro, global, accumulation.
    acc = keys.get("gradient_accumulation_steps", (None, None))[1]
    if acc is not None and (not isinstance(acc, int) or acc < 1):
        raise ConfigError(f"{where}: key 'gradient_accumulation_steps' must be a positive int, got {acc!r}")
    has_micro, has_global = "train_micro_batch_size_per_gpu" in keys, "train_batch_size" in keys
    if acc is not None and has_micro and not has_global:
        t = dataclasses.replace(t, global_batch_size=t.micro_batch_size * acc)
    elif acc is not None and has_global and not has_micro:
        if t.global_batch_size % acc:
            raise ConfigError(f"{where}: train_batch_size {t.global_batch_size} is not divisible by "
                              f"gradient_accumulation_steps {acc}")
        t = dataclasses.replace(t, micro_batch_size=t.global_batch_size // acc)
    elif not has_global and not has_micro and acc is None:
        pass
    elif has_micro and not has_global:
        t = dataclasses.replace(t, global_batch_size=t.micro_batch_size)
    elif has_global and not has_micro:
        t = dataclasses.replace(t, micro_batch_size=t.global_batch_size)
    elif acc is not None and t.micro_batch_size * acc != t.global_batch_size:
        raise ConfigError(f"{where}: train_batch_size {t.global_batch_size} != micro-batch "
                          f"{t.micro_batch_size} x gradient_accumulation_steps {acc}; fix one of the three")
    if t.micro_batch_size < 1 or t.global_batch_size < 1:
        raise ConfigError(f"{where}: batch sizes must be positive")
    t.gradient_accumulation_steps(1)   # the micro-batch must divide the global batch
    if t.train_iters < 1: raise ConfigError(f"{where}: key 'train-iters' must be at least 1")
    if t.eval_interval < 1 or t.eval_iters < 0:
        raise ConfigError(f"{where}: eval-interval must be >= 1 and eval-iters >= 0")
    if t.precision not in ("fp16", "bf16", "fp32"): raise ConfigError(f"{where}: unknown precision {t.precision!r}")
    # 3. Optimizer and schedule ranges, checked here once (their names were checked as they were read).
    if o.lr < 0: raise ConfigError(f"{where}: key 'lr' must be >= 0, got {o.lr}")
    if o.weight_decay < 0: raise ConfigError(f"{where}: key 'weight-decay' must be >= 0, got {o.weight_decay}")
    if o.eps < 0: raise ConfigError(f"{where}: key 'optimizer.params.eps' must be >= 0, got {o.eps}")
    if len(o.betas) != 2 or not all(0 <= x < 1 for x in o.betas):
        raise ConfigError(f"{where}: key 'optimizer.params.betas' must be two numbers in [0, 1), got {list(o.betas)}")
    if not 0 <= s.warmup < 1:
        raise ConfigError(f"{where}: key 'warmup' is a fraction of train-iters and must be in [0, 1), got {s.warmup}")
    if s.min_lr < 0 or s.min_lr > o.lr:
        raise ConfigError(f"{where}: key 'min_lr' ({s.min_lr}) must be between 0 and lr ({o.lr})")
    if not 0 < s.decay_fraction <= 1:
        raise ConfigError(f"{where}: key 'neoxcourse.schedule.decay_fraction' must be in (0, 1], got {s.decay_fraction}")
    if s.decay_shape not in ("linear", "1-sqrt", "cosine"):
        raise ConfigError(f"{where}: key 'neoxcourse.schedule.decay_shape' must be linear, 1-sqrt or cosine")
    decay = s.lr_decay_iters if s.lr_decay_iters is not None else t.train_iters
    if decay < 1: raise ConfigError(f"{where}: key 'lr-decay-iters' must be positive (or left out), got {decay}")
    warm = s.warmup * decay                                  # GPT-NeoX: a fraction of the decay length
    if warm >= t.train_iters or (s.lr_decay_style not in ("constant", "inverse_sqrt") and warm >= decay):
        raise ConfigError(f"{where}: key 'warmup' ({s.warmup}) gives {warm:g} warmup iterations, as long as the run "
                          f"({t.train_iters} iterations, decay over {decay}); warmup is a fraction of "
                          f"lr-decay-iters (train-iters by default), e.g. 0.01")
    if s.lr_decay_style == "wsd" and decay * (1 - s.decay_fraction) < warm:
        raise ConfigError(f"{where}: key 'neoxcourse.schedule.decay_fraction' ({s.decay_fraction}) starts the "
                          f"cooldown inside the warmup ({s.warmup}): the two must add up to 1 or less")
    if b["wandb"].mode not in ("auto", "online", "offline", "disabled"):
        raise ConfigError(f"{where}: key 'neoxcourse.wandb.mode' must be auto, online, offline or disabled")
    return {**b, "model": m, "training": t}


# %% [markdown]
# Relative paths in a config (`save: checkpoints/t4`, the data folder, the tokenizer) are resolved against the
# project root, the folder holding `settings.ini` above the config file, so the command line (run from the
# root) and the notebooks (run from `nbs/`) find the same files. Outside a checkout, the current folder is the root.

# %%
#| export
def project_root(start: Path | None = None) -> Path:
    "The nearest folder at or above `start` (or the current folder) holding settings.ini; else the current folder."
    for base in ([Path(start).resolve().parent] if start is not None else []) + [Path.cwd()]:
        for d in [base, *base.parents]:
            if (d / "settings.ini").exists() and (d / "configs").is_dir(): return d
    return Path.cwd()

def default_config_path() -> Path:
    "configs/t4.yml when a CUDA GPU is present, configs/smoke.yml otherwise (printed, never silent)."
    import torch
    name = "t4.yml" if torch.cuda.is_available() else "smoke.yml"
    path = project_root() / "configs" / name
    print(f"Using {path} ({'a GPU is present' if name == 't4.yml' else 'no GPU: the tiny smoke config'})")
    return path


# %%
_before = os.environ.pop(SCRATCH_ENV, None)                  # tests set it: take it away for a moment
try:
    _c = load_config(text="save: checkpoints/mine", root="/course")
    test_eq(_c.resolve(_c.training.save), Path("/course/checkpoints/mine"))
    os.environ[SCRATCH_ENV] = "/tmp/test-scratch"                # what tests/conftest.py and `make nbtest` set
    test_eq(_c.resolve(_c.training.save), Path("/tmp/test-scratch/mine"))
    test_eq(_c.resolve("data"), Path("/course/data"))           # only checkpoints/ moves
finally:
    os.environ.pop(SCRATCH_ENV, None)
    if _before is not None: os.environ[SCRATCH_ENV] = _before

# %% [markdown]
# Every default lives in one place, the dataclasses: a key the file leaves out keeps its field's default,
# so an empty file gives exactly `ModelConfig()`, `TrainingConfig()` and the rest. (GPT-NeoX's own defaults
# differ in places, e.g. `rotary-pct` 1.0 and a sequential residual; that is why the written-back config
# spells out every key.)

# %%
empty = load_config(text="")
for name, cls in SECTIONS.items(): test_eq(getattr(empty, name), cls())
test_eq(load_config(text="lr-decay-style: WSD").schedule.lr_decay_style, "wsd")   # read as the registered name

# %% [markdown]
# ## The reference recipe
#
# `configs/code_completion.yml` is the recipe this course starts from, written with the spellings of an
# older GPT-NeoX config (`micro-batch-size`, `global-batch-size`, `fp16: true`). Let us read it.

# %%
ref = load_config("../configs/code_completion.yml")
ref.model, ref.training.gradient_accumulation_steps(), ref.optimizer

# %%
test_eq((ref.model.hidden_size, ref.model.num_layers, ref.model.num_attention_heads), (512, 6, 8))
test_eq((ref.training.micro_batch_size, ref.training.global_batch_size), (1, 8))
test_eq(ref.training.gradient_accumulation_steps(), 8)
test_eq(ref.training.gradient_accumulation_steps(world_size=2), 4)
test_eq((ref.optimizer.type, ref.optimizer.lr, ref.optimizer.weight_decay), ("adam", 5e-4, 0.01))
test_eq((ref.training.precision, ref.training.train_iters), ("fp16", 10000))

# %% [markdown]
# What each setting of the reference recipe costs and does:
#
# | setting | value | time and memory | what it does to the model |
# | --- | --- | --- | --- |
# | `hidden-size`, `num-layers`, `num-attention-heads` | 512, 6, 8 | about 27M parameters (chapter 04 counts them); compute per token grows as 6 x parameters | width and depth set capacity; 8 heads of 64 dims each |
# | `seq-length` / `max-position-embeddings` | 1024 | attention memory and compute grow with its square; 1024 tokens is about 3.3 kB of Python | how much of a file the model sees when it completes a line |
# | `micro-batch-size` | 1 | tiny activations, but a GPU mostly idle: the measured anchor is 49.5k tokens/s on an H200 against 1.02M at 32 | none (it only splits the batch) |
# | `global-batch-size` | 8 (accumulation 8) | 8 sequences = 8k tokens per step | a small batch: noisy gradients, many updates |
# | `train-iters` | 10000 | 82M tokens | about 3 tokens per parameter: under-trained by the 20-per-parameter rule |
# | `lr` | 5e-4 | none | a moderate rate for this size; chapter 06 tunes it |
# | `fp16` | true | half the activation memory and tensor cores | needs loss scaling against underflow (chapter 05) |
# | `optimizer` | Adam, weight decay 0.01 | two fp32 moments: 8 bytes per parameter | light regularisation |
#
# The T4 recipe (`configs/t4.yml`) keeps the architecture's family but chooses the micro-batch by
# measurement so a T4 is busy, and sizes the model for about an hour of T4 compute (FACTS: about 17M to 25M
# parameters is compute-optimal there). The smoke recipe (`configs/smoke.yml`) is tiny on purpose: it exists so
# that every notebook runs on a CPU in CI in seconds, and it says so when it is chosen.

# %%
t4 = load_config("../configs/t4.yml")
smoke = load_config("../configs/smoke.yml")
for name, c in (("reference", ref), ("t4", t4), ("smoke", smoke)):
    print(f"{name:9s} hidden {c.model.hidden_size:4d} layers {c.model.num_layers} heads "
          f"{c.model.num_attention_heads:2d} seq {c.model.seq_length:4d} micro {c.training.micro_batch_size:2d} "
          f"global {c.training.global_batch_size:3d} iters {c.training.train_iters:5d} lr {c.optimizer.lr:g} "
          f"{c.training.precision}")

# %%
# The course's two recipes resolve to these values (pinned: a change to the loader must not move them).
test_eq(t4.model, ModelConfig(num_layers=8, hidden_size=384, num_attention_heads=6, intermediate_size=1536))
test_eq((t4.training.micro_batch_size, t4.training.global_batch_size, t4.training.train_iters), (32, 64, 3200))
test_eq((t4.optimizer.type, t4.optimizer.lr, t4.optimizer.betas, t4.optimizer.weight_decay), ("adamw", 1e-3, (0.9, 0.95), 0.1))
test_eq(t4.schedule, ScheduleConfig("cosine", warmup=0.02, min_lr=1e-4))
test_eq(smoke.model, ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=128,
                                 max_position_embeddings=128, intermediate_size=256))
test_eq((smoke.training.micro_batch_size, smoke.training.global_batch_size, smoke.training.train_iters), (4, 8, 30))
test_eq((smoke.optimizer.type, smoke.optimizer.lr, smoke.optimizer.betas), ("adamw", 3e-3, (0.9, 0.95)))
test_eq(smoke.schedule, ScheduleConfig("cosine", warmup=0.1, min_lr=3e-4))


# %% [markdown]
# ## Mistakes, and what they say
#
# Each of these is a mistake learners make. The message names the file and the key, and says what to do.

# %%
def _try(text: str) -> str:
    try: load_config(text=text); return "ok"
    except ConfigError as e: return str(e)

for bad in ["hiden-size: 512", "lr: fast", "num-layers: 6.5", "hidden-size: 500\nnum-attention-heads: 8",
            "micro-batch-size: 3\nglobal-batch-size: 8", "warmup: 100", "pos-emb: alibi",
            "optimizer: {type: Adamm}"]:
    print(f"{bad!r:45} -> {_try(bad)}")

# %%
test_fail(lambda: load_config(text="hiden-size: 512"), contains="did you mean 'hidden-size'")
test_fail(lambda: load_config(text="lr: fast"), contains="'lr' must be float")
test_fail(lambda: load_config(text="hidden-size: 500\nnum-attention-heads: 8"), contains="not divisible")
test_fail(lambda: load_config(text="micro-batch-size: 3\nglobal-batch-size: 8"), contains="multiple of")
test_fail(lambda: load_config(text="hidden-size: 1\nhidden_size: 2"), contains="given twice")
test_fail(lambda: load_config(text="neoxcourse:\n  data:\n    max_filez: 3"), contains="did you mean 'max-files'")
test_fail(lambda: load_config(text="lr: 1.0e-3\noptimizer: {type: adam, params: {lr: 2.0e-3}}"), contains="disagrees")
test_fail(lambda: load_config(text="seq-length: 2048\nmax-position-embeddings: 1024"), contains="longer than")
test_fail(lambda: load_config(text="optimizer: {type: Adamm}"), contains="key 'optimizer.type': unknown optimizer 'Adamm'")
test_fail(lambda: load_config(text="lr-decay-style: cosin"), contains="registered: constant, cosine, exponential")

# %%
test_eq([in_range(v, "[1, inf)") for v in (0, 1, 10**9)], [False, True, True])
test_eq([in_range(v, "(0, 1]") for v in (0, 0.5, 1, 1.01)], [False, True, True, False])
test_fail(lambda: load_config(text="num-attention-heads: 0"), contains="key 'num-attention-heads' must be in [1, inf), got 0")
test_fail(lambda: load_config(text="keep-last-n-checkpoints: -1"), contains="'keep-last-n-checkpoints' must be in [1, inf)")
test_fail(lambda: load_config(text="layernorm-epsilon: -1"), contains="(0, 1)")
test_fail(lambda: load_config(text="optimizer: {type: adamw, params: {eps: 0}}"), contains="'optimizer.params.eps'")
test_fail(lambda: load_config(text="neoxcourse: {data: {val_fraction: 0}}"), contains="'neoxcourse.data.val_fraction'")
test_fail(lambda: load_config(text="seed: -1"), contains="[0, 2**32)")
# every numeric field of every section has a range, and every default lies in it
numeric = [(s, f.name) for s, cls in SECTIONS.items() for f in fields(cls)
           if any(t in str(f.type) for t in ("int", "float")) and (s, f.name) not in
           {("optimizer", "params")}]
test_eq(sorted(set(numeric) - set(RANGES)), [])
for (s, f), spec in RANGES.items():
    d = getattr(SECTIONS[s](), f)
    check_range(d, spec, f, "defaults")

# %% [markdown]
# Files can be wrong in ways a person does not see: saved in another encoding, empty, or (from someone hostile)
# a few lines of YAML anchors and aliases that expand to a billion values. Each is refused in one line before
# anything is built: the text must be UTF-8, an empty file is an error rather than "all defaults", and
# `read_yaml` counts the values the aliases expand to (at most `MAX_YAML_NODES`) before it builds any of them.

# %%
bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))   # 10^9 values in 1 KB
test_fail(lambda: read_yaml(bomb, "bomb.yml"), contains="bomb.yml: its anchors and aliases expand to more than 100,000")
test_eq(read_yaml("a: &a [1, 2]\nb: *a"), {"a": [1, 2], "b": [1, 2]})   # an honest alias still works
with tempfile.TemporaryDirectory() as d:
    (Path(d) / "latin1.yml").write_bytes("wandb_project: caf\xe9\n".encode("latin-1"))
    test_fail(lambda: load_config(Path(d) / "latin1.yml"), contains="not UTF-8 text (byte 0xe9 at offset 18)")
    (Path(d) / "empty.yml").write_text("# nothing yet\n")
    test_fail(lambda: load_config(Path(d) / "empty.yml"), contains="the file is empty")
    test_fail(lambda: load_config(d), contains="is a folder")

# %% [markdown]
# GPT-NeoX-only keys are accepted with a single warning that lists them. Here is the shape of GPT-NeoX's own
# `configs/125M.yml`: parallelism, ZeRO, fused kernels and data keys, all read without complaint, and the
# model keys understood.

# %%
NEOX_125M = textwrap.dedent("""
{
  "pipe_parallel_size": 1, "model_parallel_size": 1,
  "num_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "seq_length": 2048,
  "max_position_embeddings": 2048, "norm": "layernorm", "pos_emb": "rotary", "no_weight_tying": true,
  "gpt_j_residual": false, "output_layer_parallelism": "column",
  "scaled_upper_triang_masked_softmax_fusion": false, "bias_gelu_fusion": false, "rope_fusion": false,
  "layernorm_fusion": false, "init_method": "small_init", "output_layer_init_method": "wang_init",
  "optimizer": {"type": "Adam", "params": {"lr": 0.0006, "betas": [0.9, 0.95], "eps": 1.0e-8}},
  "min_lr": 0.00006,
  "zero_optimization": {"stage": 1, "allgather_partitions": true, "allgather_bucket_size": 500000000,
    "overlap_comm": true, "reduce_scatter": true, "reduce_bucket_size": 500000000, "contiguous_gradients": true},
  "train_micro_batch_size_per_gpu": 4, "data_impl": "mmap", "checkpoint_activations": true,
  "checkpoint_num_layers": 1, "partition_activations": true, "synchronize_each_layer": true,
  "gradient_clipping": 1.0, "weight_decay": 0.1, "hidden_dropout": 0.0, "attention_dropout": 0.0,
  "fp16": {"enabled": true, "loss_scale": 0, "loss_scale_window": 1000, "hysteresis": 2, "min_loss_scale": 1},
  "train_iters": 320000, "lr_decay_iters": 320000, "distributed_backend": "nccl", "lr_decay_style": "cosine",
  "warmup": 0.01, "checkpoint_factor": 10000, "eval_interval": 1000, "eval_iters": 10,
  "log_interval": 100, "steps_per_print": 10, "keep_last_n_checkpoints": 4, "wall_clock_breakdown": true,
  "hostfile": "/mock_path"
}""")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    neox125 = load_config(text=NEOX_125M)
print(caught[0].message)
neox125.model

# %%
test_eq(len(caught), 1)
test_eq((neox125.model.num_layers, neox125.model.hidden_size, neox125.model.use_parallel_residual), (12, 768, False))
test_eq((neox125.training.precision, neox125.schedule.lr_decay_style, neox125.optimizer.betas), ("fp16", "cosine", (0.9, 0.95)))
test_eq(neox125.neox_only["zero_optimization"]["stage"], 1)


# %% [markdown]
# ## Writing it back
#
# `to_neox_dict` writes the resolved config in canonical GPT-NeoX form: every implemented key written out
# explicitly (so GPT-NeoX, whose defaults differ from the course's in places, builds the same model), model
# keys with dashes, DeepSpeed keys with underscores, the GPT-NeoX-only keys as they were, and the course's
# own settings under `neoxcourse:`. Every run saves this next to its checkpoints. It is driven by the tables
# the loader reads with: `FIELD_OF` gives every GPT-NeoX key, and each field that no GPT-NeoX key fills is
# written under `neoxcourse:`, so a field added to a dataclass is read and written back with no other change.

# %%
#| export
def _neox_spelling(key: str, args: dict) -> str:
    "Dashes for Megatron-style keys, underscores for DeepSpeed keys, as GPT-NeoX's own configs spell them."
    group = args[key].group if key in args else ""
    return key if group.startswith("NeoXArgsDeepspeed") or key in ("min_lr", "lr") else key.replace("_", "-")

def _plain(v):
    if isinstance(v, tuple): return [_plain(x) for x in v]
    if isinstance(v, dict): return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, Path): return str(v)
    return v

NEGATED = {"no_weight_tying"}           # GPT-NeoX keys that hold the opposite of their field
BY_LOADER = {("training", "precision"), ("optimizer", "type"), ("optimizer", "betas"), ("optimizer", "eps"),
             ("optimizer", "params")}   # fields the loader fills from fp16/bf16 and the optimizer block

def _course_fields(section: str) -> list[str]:
    "The fields of a section that no GPT-NeoX key fills: they are written under `neoxcourse:`."
    neox = {f for s, f in FIELD_OF.values() if s == section}
    return [f.name for f in fields(SECTIONS[section]) if f.name not in neox and (section, f.name) not in BY_LOADER]

def to_neox_dict(cfg: Config, course: bool = True) -> dict:
    "The config as a GPT-NeoX mapping, canonical spellings; with the `neoxcourse:` block unless `course=False`."
    args = neox_arguments()
    t, o = cfg.training, cfg.optimizer
    d = {}
    for key, (section, name) in FIELD_OF.items():           # the table `load_config` reads with
        value = getattr(getattr(cfg, section), name)
        if value is not None: d[key] = (not value) if key in NEGATED else value
    d.update({k: allowed[0] for k, allowed in SUPPORTED.items()})   # the only architecture built
    d["optimizer"] = {"type": o.type, "params": {"lr": o.lr, "betas": list(o.betas), "eps": o.eps,
                                                 "weight_decay": o.weight_decay, **o.params}}
    d["fp16"], d["bf16"] = {"enabled": t.precision == "fp16"}, {"enabled": t.precision == "bf16"}
    d.update(cfg.neox_only)
    out = {_neox_spelling(k, args): _plain(v) for k, v in d.items()}
    if course:
        blocks = {s: {f: _plain(getattr(getattr(cfg, s), f)) for f in _course_fields(s)} for s in COURSE_BLOCKS}
        out["neoxcourse"] = {s: body for s, body in blocks.items() if body}
    return out

def save_config(cfg: Config, path: str | Path, course: bool = True) -> Path:
    "Write the resolved config as canonical GPT-NeoX YAML (atomically: a temporary file, then a rename)."
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(to_neox_dict(cfg, course), sort_keys=False, default_flow_style=None))
    tmp.replace(path)
    return path


# %% [markdown]
# Writing and reading back gives the same configuration: the round trip is the test of the writer.

# %%
with tempfile.TemporaryDirectory() as d:
    p = save_config(ref, Path(d) / "resolved.yml")
    print(p.read_text()[:600])
    again = load_config(p, root=ref.root)
for sec in SECTIONS: test_eq(getattr(again, sec), getattr(ref, sec))

# %%
#| hide
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as d:
        again125 = load_config(save_config(neox125, Path(d) / "r.yml"))
for sec in SECTIONS: test_eq(getattr(again125, sec), getattr(neox125, sec))
test_eq(again125.neox_only, neox125.neox_only)

# %% [markdown]
# ## Overrides
#
# Overrides are how a sweep or a quick experiment changes one thing without editing the file. On the
# command line they are `--set key=value`; in a notebook (and as a papermill parameter) a dict.

# %%
c = load_config("../configs/code_completion.yml", {"lr": 3e-4, "optimizer.type": "lion", "train-iters": 20,
                                                     "data.max_files": 10})
test_eq((c.optimizer.lr, c.optimizer.type, c.training.train_iters, c.data.max_files), (3e-4, "lion", 20, 10))

# %% [markdown]
# Switching the optimizer by an override switches its hyper-parameters too: the file's `betas` and `eps` were
# tuned for the optimizer it names, so `--set optimizer.type=lion` drops them, takes Lion's own defaults
# (`OPTIMIZER_DEFAULTS`) and says so in a warning. Hyper-parameters given in the same overrides are kept.

# %%
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    lion = load_config(text="optimizer: {type: adamw, params: {lr: 1.0e-3, betas: [0.9, 0.95], eps: 1.0e-8}}",
                       overrides={"optimizer.type": "lion"})
test_eq((lion.optimizer.type, lion.optimizer.betas), ("lion", (0.9, 0.99)))   # Lion's own betas, not AdamW's
test_eq(len(w), 1); test_eq("using lion's defaults betas (0.9, 0.99)" in str(w[0].message), True)
test_eq(load_config(text="optimizer: {type: lion}").optimizer.betas, (0.9, 0.99))
mine = load_config(text="", overrides={"optimizer.type": "lion", "optimizer.params.betas": [0.95, 0.98]})
test_eq(mine.optimizer.betas, (0.95, 0.98))                                   # given: kept, no warning needed
test_eq(load_config(text="").optimizer.betas, (0.9, 0.95))


# %% [markdown]
# ## A summary a person can read
#
# `describe` prints what matters about a config in a few lines: the model, the batch, the optimizer, the
# schedule, where data and checkpoints go. `neoxcourse config check` prints it above the canonical YAML.

# %%
#| export
def describe(cfg: Config) -> str:
    "A few lines naming the settings that matter, with derived values (accumulation, tokens per step)."
    m, t, o, s = cfg.model, cfg.training, cfg.optimizer, cfg.schedule
    acc = t.gradient_accumulation_steps()
    lines = [
        f"model      hidden size {m.hidden_size}, {m.num_layers} layers, {m.num_attention_heads} heads "
        f"(head dim {m.head_dim}), seq {m.seq_length}, vocab {m.vocab_size}, rotary {m.rotary_pct:g}, "
        f"{'parallel' if m.use_parallel_residual else 'sequential'} residual, "
        f"{'tied' if m.tie_word_embeddings else 'untied'} embeddings",
        f"batch      micro-batch {t.micro_batch_size}, global batch {t.global_batch_size} "
        f"(accumulation {acc}), {t.global_batch_size * m.seq_length:,} tokens per step, "
        f"{t.train_iters} iterations = {t.train_iters * t.global_batch_size * m.seq_length:,} tokens",
        f"optimizer  {o.type}, lr {o.lr:g}, betas {tuple(o.betas)}, eps {o.eps:g}, weight decay {o.weight_decay:g}"
        + (f", {o.params}" if o.params else ""),
        f"schedule   {s.lr_decay_style}, warmup {s.warmup:g} of the steps, min_lr {s.min_lr:g}, "
        f"clip {t.gradient_clipping:g}",
        f"precision  {t.precision}, seed {t.seed}",
        f"data       {cfg.data.source}" + (f" ({cfg.data.path})" if cfg.data.path else "")
        + f" -> {cfg.resolve(cfg.data.output_dir)}; tokenizer {cfg.tokenizer.kind} {cfg.tokenizer.vocab_size} "
        f"at {cfg.resolve(cfg.tokenizer.path)}",
        f"runs       checkpoints {cfg.resolve(t.save) if t.save else '(not saved)'}; W&B project "
        f"{cfg.wandb.project}, mode {cfg.wandb.mode if cfg.wandb.use_wandb else 'disabled'}",
    ]
    return "\n".join(lines)


# %%
print(describe(ref))

# %%
test_eq("hidden size 512, 6 layers, 8 heads" in describe(ref), True)
test_eq("micro-batch 1, global batch 8 (accumulation 8)" in describe(ref), True)


# %% [markdown]
# ## Exercise: a config of your own
#
# Write `exercises/A1_config/my_t4.yml`: a GPT-NeoX config for the T4 whose model has between 15 and 25
# million parameters (the compute-optimal size for an hour of T4, FACTS), with `seq-length` 1024, 8 or more
# heads, a global batch of at least 16 sequences reached through gradient accumulation, and fp16. The check
# loads your file through `load_config` (so any mistake comes back as the message you saw above) and reports the
# parameter count and the tokens per optimizer step. `exercises/A1_config/README.md` has the details;
# `submit("A1_config", path, name="your-name")` records it as a W&B run.

# %%
#| export
def approx_parameters(m: ModelConfig) -> int:
    "Parameters of a GPT-NeoX: embeddings (untied: two matrices) plus 12 h^2 + 13 h per layer, plus the final norm."
    h, L, V = m.hidden_size, m.num_layers, m.vocab_size
    per_layer = 4 * h * h + 4 * h + 2 * h * m.intermediate_size + m.intermediate_size + h + 4 * h  # attn, mlp, norms
    return V * h * (1 if m.tie_word_embeddings else 2) + L * per_layer + 2 * h


# %%
from neoxcourse.exercises import Exercise, ExerciseError, register_exercise  # the course layer (00a)

# %%
#| export exercises
from pathlib import Path

from neoxcourse.config import ConfigError, approx_parameters, load_config

def check_t4_config(answer) -> dict:
    "Check the appendix A1 exercise: a config file path (or YAML text) for a 15M-25M parameter T4 model."
    try:
        cfg = load_config(answer) if Path(str(answer)).suffix in (".yml", ".yaml") else load_config(text=str(answer))
    except ConfigError as e:
        raise ExerciseError(f"the config does not load: {e}") from None
    m, t = cfg.model, cfg.training
    n = approx_parameters(m)
    problems = []
    if not 15e6 <= n <= 25e6: problems.append(f"the model has {n / 1e6:.1f}M parameters; aim for 15M to 25M")
    if m.seq_length != 1024: problems.append(f"seq-length is {m.seq_length}; use 1024")
    if m.num_attention_heads < 8: problems.append(f"{m.num_attention_heads} heads; use 8 or more")
    if t.global_batch_size < 16: problems.append(f"global batch {t.global_batch_size}; use at least 16")
    if t.gradient_accumulation_steps() < 2: problems.append("no gradient accumulation; make the global batch "
                                                            "a multiple (>= 2) of the micro-batch")
    if t.precision != "fp16": problems.append(f"precision {t.precision}; a T4 trains in fp16")
    if problems: raise ExerciseError("; ".join(problems))
    return {"parameters_millions": round(n / 1e6, 3), "tokens_per_step": t.global_batch_size * m.seq_length}


# %%
test_eq(approx_parameters(ref.model), 27_303_936)  # 8,388,608 embeddings + 6 x 3,152,384 + 1,024
test_fail(lambda: check_t4_config("../configs/code_completion.yml"), contains="27.3M parameters")
print(check_t4_config("../exercises/A1_config/solution.yml"))

# %%
#| export exercises
register_exercise(Exercise(id="A1_config", title="A T4 config of your own", metric="parameters_millions",
                           higher_is_better=True, bounds=(15.0, 25.0), check=check_t4_config))

# %% [markdown]
# ## Recap
#
# - GPT-NeoX's YAML is the course's format: the same file is read here and by GPT-NeoX (appendix A7).
# - `load_config` reads numbers as people write them, checks every key and type, accepts GPT-NeoX-only keys
#   with one warning, rejects architectures the course does not build, and derives the batch arithmetic.
# - Mistakes come back as one line naming the file and key, with a suggestion; the command line never shows a
#   traceback for them.
# - `save_config` writes canonical GPT-NeoX YAML; every run saves its resolved config next to its checkpoints.
#
# Next, chapter 02 builds the corpus the model will learn from.

# %% [markdown]
# Now the configuration this notebook was started with (the parameters cell at the top: papermill or you set
# `config_path` and `overrides`).

# %%
cfg = load_config(config_path or default_config_path(), overrides)
print(describe(cfg) if "describe" in globals() else cfg.model)
