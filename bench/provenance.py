"""The header every result in bench/results/ starts with: which commit, command, machine and config wrote it.

    from provenance import header, write_result
    write_result(out / "x.json", {**header("configs/t4.yml"), "tokens_per_s": ...})

One definition for every bench script, so a result always says where it came from. Results measured before
this header existed carry the same fields, filled in afterwards from git (the commit that committed the file)
and bench/run_gpu.sh, with a `reconstructed` field that says so.
"""
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FIELDS = ("commit", "command", "machine", "config")   # what every results file must have


def git_commit(root: Path = ROOT) -> str:
    "NEOXCOURSE_COMMIT, else a COMMIT file beside a `git archive` snapshot, else HEAD ('+dirty' if edited)."
    if os.environ.get("NEOXCOURSE_COMMIT"): return os.environ["NEOXCOURSE_COMMIT"]   # a copy with a stale .git
    if (root / "COMMIT").exists(): return (root / "COMMIT").read_text().strip()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git checkout here: set NEOXCOURSE_COMMIT)"


def command_line(argv: list[str] | None = None) -> str:
    "The command as typed from the project root: `python bench/x.py --flag value`."
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    script = script.relative_to(ROOT) if script.is_relative_to(ROOT) else Path(argv[0])
    return shlex.join(["python", str(script), *argv[1:]])


def machine() -> str:
    "The GPU (count x name) or the CPU, with torch, CUDA and Python versions, in one line."
    import torch
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        device = f"{n} x {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"
    else:
        device = f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return f"{device}; torch {torch.__version__}; Python {platform.python_version()}"


def config_hash(path: str | Path) -> str:
    "The first 12 hex digits of the SHA-256 of a config file's bytes."
    return hashlib.sha256(Path(ROOT, path).resolve().read_bytes()).hexdigest()[:12]


def config_field(config: str | Path | None) -> str:
    "A config as `path@hash` (relative to the project root), or what the result measured instead of one."
    if config is None: return "none (no config file: see the script's arguments in command)"
    path = Path(config) if Path(config).is_absolute() else ROOT / config   # relative: to the project root
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{rel}@{config_hash(path)}"


def header(config: str | Path | None = None) -> dict:
    "Provenance of a result written now by this process, and the fields bench/report.py prints."
    import torch
    return {"commit": git_commit(), "command": command_line(), "machine": machine(), "config": config_field(config),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpu_threads": torch.get_num_threads()}


def write_result(path: str | Path, result: dict, indent: int = 1) -> Path:
    "Write a result as JSON; refuse one without the provenance fields."
    missing = [k for k in FIELDS if k not in result]
    if missing:
        raise ValueError(f"{path}: result lacks {missing}; start it with provenance.header(config)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=indent, default=str) + "\n")
    print(f"wrote {path}", flush=True)
    return path

