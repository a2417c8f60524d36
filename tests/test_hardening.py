"""Hardening (issue 19): every bad input a hostile user or a new learner gives is refused through the command
line in a subprocess with a non-zero exit, one line naming the problem and no traceback; a checkpoint save
that fails (full disk, read-only folder, a file in the way) stops the run and keeps every earlier checkpoint;
`--resume` that finds checkpoints but none usable stops; and Colab's Drive and W&B prompt work under a
stand-in of Colab's shell class and `google.colab` modules (the sandbox has its own tests: test_sandbox.py).

Each test prints a `tried/held` line per area (`pytest -s` shows them): the closing note's counts."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.yml"
QUICK = ["--set", "use_wandb=false", "--set", "eval-interval=100", "--set", "log-interval=1"]


def cli(*args, cwd=ROOT, timeout=300, env=None):
    "`neoxcourse ARGS` in a fresh process."
    return subprocess.run([sys.executable, "-m", "neoxcourse.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def refused(r, *words) -> str:
    "Assert a clean refusal: non-zero exit, no traceback, the last line an `error:` naming every word; return it."
    text = r.stdout + r.stderr
    assert r.returncode != 0, f"exit 0 for a bad input:\n{text[-2000:]}"
    assert "Traceback" not in text, f"a traceback for a bad input:\n{text[-3000:]}"
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    assert last.startswith("error: "), f"the last line is not one error line:\n{r.stderr[-2000:]}"
    for w in words: assert w in last, f"{w!r} not in {last!r}"
    return last


# ----------------------------------------------------------------------------------------------- configs
def test_bad_config_files(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
    files = {"latin1.yml": ("wandb_project: caf\xe9\n".encode("latin-1"), "not UTF-8"),
             "bomb.yml": (bomb.encode(), "alias"),
             "empty.yml": (b"# nothing\n", "empty"),
             "big.yml": (b"# " + b"x" * 1_100_000 + b"\n", "is not a config"),
             "list.yml": (b"- 1\n- 2\n", "must be a mapping")}
    for name, (data, says) in files.items():
        (tmp_path / name).write_bytes(data)
        refused(cli("config", "check", tmp_path / name, timeout=60), name, says)
    refused(cli("config", "check", tmp_path), "is a folder")
    print(f"\nconfigs: tried {len(files) + 1}, held {len(files) + 1}")


NUMBER_SWEEP = """
import contextlib, io, json, sys
from neoxcourse.cli import main
from neoxcourse.config import RANGES, in_range
keys = {("model", "num_layers"): "num-layers", ("model", "hidden_size"): "hidden-size",
        ("model", "num_attention_heads"): "num-attention-heads", ("model", "seq_length"): "seq-length",
        ("model", "max_position_embeddings"): "max-position-embeddings",
        ("model", "intermediate_size"): "intermediate-size", ("model", "rotary_pct"): "rotary-pct",
        ("model", "rotary_emb_base"): "rotary-emb-base", ("model", "layernorm_epsilon"): "layernorm-epsilon",
        ("model", "init_method_std"): "init-method-std", ("model", "hidden_dropout"): "hidden-dropout",
        ("model", "attention_dropout"): "attention-dropout", ("training", "train_iters"): "train-iters",
        ("training", "micro_batch_size"): "train_micro_batch_size_per_gpu",
        ("training", "global_batch_size"): "train_batch_size", ("training", "gradient_clipping"): "gradient_clipping",
        ("training", "seed"): "seed", ("training", "eval_interval"): "eval-interval",
        ("training", "eval_iters"): "eval-iters", ("training", "log_interval"): "log-interval",
        ("training", "checkpoint_factor"): "checkpoint-factor",
        ("training", "keep_last_n_checkpoints"): "keep-last-n-checkpoints", ("optimizer", "lr"): "lr",
        ("optimizer", "eps"): "optimizer.params.eps", ("optimizer", "weight_decay"): "weight-decay",
        ("schedule", "warmup"): "warmup", ("schedule", "min_lr"): "min_lr",
        ("schedule", "lr_decay_iters"): "lr-decay-iters"}
for (section, field), spec in RANGES.items():
    if (section, field) not in keys and section in ("data", "tokenizer", "evaluation", "training", "schedule",
                                                    "model"):
        keys[(section, field)] = f"{section}.{field}"
keys[("optimizer", "betas")] = "optimizer.params.betas"
rows = []
for (section, field), key in sorted(keys.items()):
    for value in (0, -1):
        v = [value, 0.95] if field == "betas" else value
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try: rc = main(["config", "check", sys.argv[1], "--set", f"{key}={json.dumps(v)}"])
            except BaseException as e: rc = f"raised {type(e).__name__}: {e}"
        ok = in_range(value, RANGES[section, field]) if (section, field) in RANGES else None
        rows.append(dict(key=key, value=value, rc=rc, err=err.getvalue(), in_range=ok))
print(json.dumps(rows))
"""


def test_zero_and_negative_numbers(tmp_path):
    "Zero and -1 for every numeric key: refused in one line exactly when outside the key's range."
    r = subprocess.run([sys.executable, "-c", NUMBER_SWEEP, str(SMOKE)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    bad = [row for row in rows if row["in_range"] is False]
    for row in bad:
        assert row["rc"] != 0 and isinstance(row["rc"], int), row
        lines = row["err"].strip().splitlines()
        assert lines and lines[-1].startswith("error: ") and "Traceback" not in row["err"], row
        assert row["key"].split(".")[-1].replace("_", "-") in lines[-1].replace("_", "-"), row
    accepted = [row for row in rows if row["in_range"] and row["rc"] != 0]
    for row in accepted:   # in range but refused for another reason: still one clean line (e.g. min_lr > lr)
        assert row["err"].strip().splitlines()[-1].startswith("error: "), row
    print(f"\nnumbers: tried {len(rows)} zero/negative values, {len(bad)} out of range; held {len(bad)} "
          f"(refused in one line), {len(rows) - len(bad)} in range")
    assert len(bad) >= 60
    # the ones the issue names, through the real command
    for key, value in [("num-attention-heads", 0), ("log-interval", 0), ("intermediate-size", -1),
                       ("attention-dropout", -1), ("rotary-emb-base", 0), ("rotary-emb-base", -1),
                       ("layernorm-epsilon", -1), ("optimizer.params.eps", 0), ("keep-last-n-checkpoints", -1),
                       ("keep-last-n-checkpoints", 0)]:
        refused(cli("config", "check", SMOKE, "--set", f"{key}={value}", timeout=60), key.split(".")[-1])


def test_optimizer_switch_takes_its_defaults():
    r = cli("config", "check", SMOKE, "--set", "optimizer.type=lion", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "betas (0.9, 0.99)" in r.stdout and "using lion's defaults betas (0.9, 0.99)" in r.stderr
    r = cli("config", "check", SMOKE, "--set", "optimizer.type=lion", "--set", "optimizer.params.betas=[0.95,0.98]",
            timeout=60)
    assert "betas (0.95, 0.98)" in r.stdout


# ------------------------------------------------------------------------------------------------- data
def test_data_paths(tmp_path):
    one = tmp_path / "one.py"
    one.write_text("import os\n\n\ndef f(x):\n    return os.path.join(x, 'a')\n" * 5)
    loop = tmp_path / "loop"; (loop / "pkg").mkdir(parents=True)
    shutil.copy(one, loop / "pkg" / "only.py")
    os.symlink("..", loop / "pkg" / "back")                   # pkg/back -> loop: a cycle
    tried = 0
    for path, says in [(one, "only 1 file(s) left"), (tmp_path / "loop", "only 1 file(s) left"),
                       (f"{loop}/**/*.py", "only 1 file(s) left"), (tmp_path / "nope", "does not exist")]:
        out = tmp_path / f"out{tried}"
        r = cli("data", "prepare", SMOKE, "--set", "data.source=local", "--set", f"data.path={path}",
                "--set", f"data.output_dir={out}", "--set", "data.max_files=null", timeout=120)
        refused(r, says); tried += 1
    print(f"\ndata: tried {tried}, held {tried}")


# ---------------------------------------------------------------------------- checkpoints, complete, eval
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A course checkpoint of the smoke model (untrained: saving is what matters), with its config and tokenizer."
    d = tmp_path_factory.mktemp("ck")
    code = textwrap.dedent(f"""
        import torch
        from neoxcourse.config import load_config
        from neoxcourse.model import GPTNeoX
        from neoxcourse.checkpoint import save_checkpoint
        cfg = load_config({str(SMOKE)!r})
        torch.manual_seed(0)
        print(save_checkpoint({str(d)!r}, 1, GPTNeoX(cfg.model), {{}}, cfg))
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def damaged(checkpoint: Path, tmp_path: Path, name: str) -> Path:
    c = tmp_path / name / checkpoint.name
    shutil.copytree(checkpoint, c)
    return c


def test_complete_from_another_folder(checkpoint, tmp_path):
    "The checkpoint carries its tokenizer: relative paths never resolve against the current folder."
    r = cli("complete", "--checkpoint", checkpoint, "--max-new-tokens", "4", "def f(x):\n", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (checkpoint / "tokenizer.json").exists()


def reseal(c: Path) -> Path:
    "Rewrite a checkpoint's manifest for the files now in it (as if it had been saved that way)."
    import hashlib
    meta = json.loads((c / "meta.json").read_text())
    meta["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                     for p in sorted(c.iterdir()) if p.name != "meta.json"}
    (c / "meta.json").write_text(json.dumps(meta))
    return c


def test_bad_checkpoints(checkpoint, tmp_path):
    cases = []
    c = damaged(checkpoint, tmp_path, "truncated")
    w = c / "model.safetensors"; w.write_bytes(w.read_bytes()[:1000]); cases.append((c, "truncated or corrupt"))
    c = damaged(checkpoint, tmp_path, "no-meta"); (c / "meta.json").unlink(); cases.append((c, "no meta.json"))
    c = damaged(checkpoint, tmp_path, "meta-list"); (c / "meta.json").write_text("[]")
    cases.append((c, "not a checkpoint manifest"))
    c = damaged(checkpoint, tmp_path, "meta-no-files"); (c / "meta.json").write_text('{"format": 1}')
    cases.append((c, "not a checkpoint manifest"))
    c = damaged(checkpoint, tmp_path, "tok-in-checkpoint")     # the checkpoint's own copy: its manifest catches it
    t = c / "tokenizer.json"; t.write_bytes(t.read_bytes()[:3000]); cases.append((c, "tokenizer.json has 3000 bytes"))
    for name, data, says in [("tok-truncated", None, "not valid UTF-8 JSON"),
                             ("tok-random", os.urandom(4096), "not valid UTF-8 JSON"),
                             ("tok-empty-object", b"{}", "not a Hugging Face tokenizer")]:
        c = damaged(checkpoint, tmp_path, name)                # a damaged tokenizer.json, sealed into the manifest
        t = c / "tokenizer.json"
        t.write_bytes(data if data is not None else t.read_bytes()[:3000])
        cases.append((reseal(c), says))
    for c, says in cases:
        refused(cli("complete", "--checkpoint", c, "--max-new-tokens", "2", "x = ", cwd=tmp_path, timeout=120), says)
    print(f"\ncheckpoints and tokenizers for complete: tried {len(cases)}, held {len(cases)}")


def test_vocabulary_mismatch_refused_both_ways(checkpoint, tmp_path):
    "A 1024-token tokenizer with the 8192-vocabulary model, and the 8192 tokenizer with a 1024-vocabulary model."
    code = textwrap.dedent(f"""
        import json, shutil, torch
        from pathlib import Path
        from neoxcourse.config import load_config
        from neoxcourse.model import GPTNeoX
        from neoxcourse.checkpoint import save_checkpoint
        from neoxcourse.tokenizer import train_bpe, save_tokenizer
        tmp = Path({str(tmp_path)!r})
        texts = [p.read_text() for p in sorted(Path(json.__file__).parent.glob('*.py'))] * 3
        small = save_tokenizer(train_bpe(texts, 1024), tmp / "tok1024")
        cfg = load_config({str(SMOKE)!r}, {{"neoxcourse.tokenizer.vocab_size": 1024}})
        save_checkpoint(tmp / "v1024", 1, GPTNeoX(cfg.model), {{}}, cfg)           # carries the 8192 tokenizer
        big = tmp / "v8192" / "step_00000001"; shutil.copytree({str(checkpoint)!r}, big)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(small / f, big / f)                                       # the 1024 tokenizer
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    reseal(tmp_path / "v8192" / "step_00000001")                 # saved that way: only the vocabulary is wrong
    refused(cli("complete", "--checkpoint", tmp_path / "v1024", "x = ", timeout=120), "vocabulary of 1,024",
            "has 8,192")
    refused(cli("complete", "--checkpoint", tmp_path / "v8192", "x = ", timeout=120), "vocabulary of 8,192",
            "has 1,024")
    refused(cli("eval", SMOKE, "--checkpoint", tmp_path / "v8192", "--set", "use_wandb=false", timeout=300),
            "vocabulary of 8,192", "has 1,024")
    print("\nvocabulary mismatch: tried 3, held 3")


# ----------------------------------------------------------------------------------- saving while training
def root_can_mount(tmp_path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"): return False
    probe = tmp_path / "probe"; probe.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True).returncode == 0
    if ok: subprocess.run(["umount", str(probe)])
    return ok


def test_full_disk_stops_and_keeps_the_earlier_checkpoint(tmp_path):
    save = tmp_path / "fs" / "ck"
    args = ["train", SMOKE, *QUICK, "--set", "train-iters=4", "--set", "checkpoint-factor=2", "--set", f"save={save}"]
    if root_can_mount(tmp_path):           # a real 20 MB file system: one smoke checkpoint fits, two do not
        (tmp_path / "fs").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(tmp_path / "fs")], check=True)
        try:
            last = refused(cli(*args), "disk is full", "step_00000002 is intact")
            left = sorted(p.name for p in save.iterdir())
        finally:
            subprocess.run(["umount", str(tmp_path / "fs")])
        how = "a 20 MB tmpfs"
    else:                                  # no mount here: the error torch.save raises on a full disk, injected
        inject = tmp_path / "inject"; inject.mkdir()
        (inject / "sitecustomize.py").write_text(textwrap.dedent("""
            import torch
            _save, _calls = torch.save, [0]
            def save(obj, f, *a, **k):
                _calls[0] += 1
                if _calls[0] > 1 and "state.pt" in str(f):
                    raise RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed "
                                       "writing file data/0: file write failed")
                return _save(obj, f, *a, **k)
            torch.save = save
        """))
        env = {**os.environ, "PYTHONPATH": f"{inject}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        last = refused(cli(*args, env=env), "disk is full", "step_00000002 is intact")
        left = sorted(p.name for p in save.iterdir())
        how = "torch.save's error injected"
    assert left == ["step_00000002"], left            # no partial .tmp-step_* folder, the earlier one kept
    print(f"\nfull disk ({how}): tried 1, held 1: {last}")


def test_save_folder_unwritable(tmp_path):
    "A file in the way, and a read-only folder (fresh and --resume): stopped before training, nothing lost."
    (tmp_path / "file").write_text("in the way")
    base = ["train", SMOKE, *QUICK, "--set", "train-iters=2", "--set", "checkpoint-factor=1"]
    refused(cli(*base, "--set", f"save={tmp_path / 'file'}"), "a file is in the way")
    refused(cli(*base, "--set", f"save={tmp_path / 'file' / 'sub'}"), "a file is in the way")
    held = 2
    ro = tmp_path / "ro"
    if root_can_mount(tmp_path):
        ro.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(ro)], check=True)
        try:
            (ro / "ck" / "step_00000001").mkdir(parents=True)
            (ro / "ck" / "step_00000001" / "meta.json").write_text("{}")
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
            for extra in ([], ["--resume"]):
                refused(cli(*base, "--set", f"save={ro / 'ck'}", *extra), "read-only")
                held += 1
            assert sorted(p.name for p in (ro / "ck").iterdir()) == ["step_00000001"]
        finally:
            subprocess.run(["umount", str(ro)])
    elif os.geteuid() != 0:
        (ro / "ck").mkdir(parents=True); ro.joinpath("ck").chmod(0o555)
        try:
            refused(cli(*base, "--set", f"save={ro / 'ck'}"), "read-only"); held += 1
        finally: ro.joinpath("ck").chmod(0o755)
    print(f"\nunwritable save folder: tried {held}, held {held}")


def test_resume_stops_instead_of_starting_over(tmp_path):
    save = tmp_path / "ck"
    base = ["train", SMOKE, *QUICK, "--set", "train-iters=2", "--set", "checkpoint-factor=1", "--set", f"save={save}"]
    r = cli(*base)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in save.iterdir()) == ["step_00000001", "step_00000002"]
    # another architecture: refused with the reason, the checkpoints neither moved nor touched
    refused(cli(*base, "--set", "hidden-size=128", "--resume"), "can be continued", "made with another config")
    # every checkpoint damaged
    for p in save.glob("step_*/model.safetensors"): p.write_bytes(p.read_bytes()[:100])
    refused(cli(*base, "--resume"), "can be continued", "truncated or corrupt")
    assert sorted(p.name for p in save.iterdir()) == ["step_00000001", "step_00000002"]
    print("\nresume without a usable checkpoint: tried 2, held 2")


# ------------------------------------------------------------------------------------------- bench, env
def test_bench_passes_options_through(tmp_path):
    r = cli("bench", "--", "--help", timeout=120)
    assert r.returncode == 0 and "--t4" in r.stdout and "--out" in r.stdout, r.stderr[-2000:]
    r = cli("bench", "--help", timeout=120)
    assert r.returncode == 0 and "--cpu-smoke" in r.stdout, r.stderr[-2000:]


def test_env_unreachable_wandb_is_offline_quickly(tmp_path):
    import socket, time
    env = {**os.environ, "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "HOME": str(tmp_path)}
    env.pop("WANDB_MODE", None)
    start = time.perf_counter()
    r = cli("env", env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "W&B           offline" in r.stdout and "cannot be reached" in r.stdout, r.stdout
    with socket.create_server(("127.0.0.1", 0)) as server:      # a reachable stand-in server, and a key: online
        env["WANDB_BASE_URL"] = f"http://127.0.0.1:{server.getsockname()[1]}"
        r = cli("env", env=env, timeout=120)
    assert "W&B           online" in r.stdout, r.stdout


# --------------------------------------------------------------------------------------------- Colab
COLAB = r'''
import json, os, subprocess, sys, types
from pathlib import Path
tmp, mode = Path(sys.argv[1]), sys.argv[2]
report = {}
# --- a stand-in of Colab: its shell class, google.colab.{drive,userdata,_shell} ---
import google.protobuf, wandb      # the real `google` namespace package (protobuf lives there); Colab adds .colab
google, colab = sys.modules["google"], types.ModuleType("google.colab")
shell_mod, drive, userdata = (types.ModuleType(f"google.colab.{n}") for n in ("_shell", "drive", "userdata"))
Shell = type("Shell", (), {"__module__": "google.colab._shell"})     # Colab's kernel class, by name and module
shell_mod.Shell = Shell
mounts = []
def mount(path, *a, **k):
    mounts.append(path)
    if mode != "broken-mount": (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)
drive.mount = mount
def _get(name): raise KeyError(name)                                # no secret: the W&B prompt must be offered
userdata.get = _get
google.colab, colab.drive, colab.userdata, colab._shell = colab, drive, userdata, shell_mod
sys.modules.update({"google.colab": colab, "google.colab.drive": drive,
                    "google.colab.userdata": userdata, "google.colab._shell": shell_mod})
import IPython
IPython.get_ipython = lambda: Shell()

# --- the set-up cell of chapter 09, pointed at tmp/content; the first pip install fails, a re-run retries ---
nb = json.loads((Path(sys.argv[3]) / "nbs" / "09_capstone.ipynb").read_text())
cell = next("".join(c["source"]) for c in nb["cells"] if "In Colab only" in "".join(c["source"]))
cell = cell.replace("/content", str(tmp / "content"))
calls, real_run, real_chdir = [], subprocess.run, os.chdir
def fake_run(cmd, *a, check=False, **k):
    calls.append(cmd[:3])
    if cmd[0] == "git": (Path(cmd[-1]) / ".git").mkdir(parents=True); (Path(cmd[-1]) / "nbs").mkdir()
    installed = (tmp / "installed").exists()
    if "-c" in cmd: return subprocess.CompletedProcess(cmd, 0 if installed else 1)
    if "pip" in cmd:
        if sum("pip" in c for c in calls) == 1:                     # the first install fails (network blip)
            if check: raise subprocess.CalledProcessError(1, cmd)
            return subprocess.CompletedProcess(cmd, 1)
        (tmp / "installed").touch()
    return subprocess.CompletedProcess(cmd, 0)
subprocess.run = fake_run
runs = []
for attempt in range(3):
    try: exec(cell, {"__name__": "__main__"}); runs.append("ok")
    except subprocess.CalledProcessError: runs.append("failed")
subprocess.run = real_run; real_chdir(sys.argv[3])
report["setup_runs"] = runs
report["pip_calls"] = sum("pip" in c for c in calls)

# --- chapter 09's Drive path: its set-up cell (W&B mode, mount_drive), then where its runs write ---
import wandb
prompts = []
wandb.login = lambda *a, **k: prompts.append(k) or False
import neoxcourse.env as env
env.COLAB_DRIVE = tmp / "drive"
report["in_colab"], report["interactive"] = env.in_colab(), env.is_interactive()
from contextlib import nullcontext
cell9 = next("".join(c["source"]) for c in nb["cells"] if c["id"] == "9ebcc28c")
scope = {"timed": lambda name: nullcontext(), "wandb_mode": env.wandb_mode, "mount_drive": env.mount_drive}
try:
    exec(cell9, scope)
    report["drive"] = str(scope["drive"])
except env.DriveError as e:
    report["drive_error"] = str(e)
report["mounts"], report["wandb_prompts"], report["mode"] = mounts, len(prompts), scope.get("mode")
from neoxcourse.config import load_config
from neoxcourse.train import checkpoint_dir
cfg = load_config(sys.argv[3] + "/configs/smoke.yml", {"save": "checkpoints/capstone/adamw-cosine"})
report["checkpoints"] = str(checkpoint_dir(cfg))
print(json.dumps(report))
'''


def run_colab(tmp_path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "PAPERMILL_EXECUTION", "NEOXCOURSE_HEADLESS", "NEOXCOURSE_CHECKPOINTS", "WANDB_MODE",
                        "WANDB_API_KEY")}
    env["HOME"] = str(tmp_path / "home")
    import socket
    with socket.create_server(("127.0.0.1", 0)) as server:    # W&B "reachable": the prompt is worth offering
        env["WANDB_BASE_URL"] = f"http://127.0.0.1:{server.getsockname()[1]}"
        r = subprocess.run([sys.executable, "-c", COLAB, str(tmp_path), mode, str(ROOT)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_colab_standin_mounts_drive_and_offers_wandb(tmp_path):
    rep = run_colab(tmp_path, "ok")
    assert rep["setup_runs"] == ["failed", "ok", "ok"] and rep["pip_calls"] == 2, rep   # retried once, then done
    assert rep["in_colab"] and rep["interactive"], rep
    assert rep["mounts"] == [str(tmp_path / "drive")], rep
    assert rep.get("drive") == str(tmp_path / "drive" / "MyDrive" / "neoxcourse"), rep
    assert rep["wandb_prompts"] == 1, rep                  # the sign-in prompt was offered
    assert rep["checkpoints"].startswith(str(tmp_path / "drive" / "MyDrive" / "neoxcourse")), rep
    print("\nColab stand-in: set-up retried, Drive mounted, W&B prompt offered, checkpoints on Drive")


def test_colab_standin_broken_mount_is_an_error(tmp_path):
    rep = run_colab(tmp_path, "broken-mount")
    assert "did not mount" in rep.get("drive_error", ""), rep
    assert not rep["checkpoints"].startswith(str(tmp_path / "drive")), rep
