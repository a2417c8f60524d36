"""The course's shape: every chapter has its badge, Colab cell and parameters cell; every exercise folder is
complete and its reference solution passes its check; the command line reports mistakes in one line."""
import re
import configparser
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "nbs").glob("[0-9A]*.ipynb"))
EXERCISES = sorted(p for p in (ROOT / "exercises").iterdir() if p.is_dir() and re.match(r"(\d\d[a-z]?|A\d)_", p.name))


def settings() -> configparser.SectionProxy:
    c = configparser.ConfigParser(delimiters=["="])
    c.read(ROOT / "settings.ini")
    return c["DEFAULT"]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_header(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "starts with an H1 title"
    repo = settings()["git_url"].split("github.com/")[1]
    badge = f"https://colab.research.google.com/github/{repo}/blob/main/nbs/{path.name}"
    assert badge in first.source, f"{path.name}: Open in Colab badge must point at {badge}"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any(s.startswith("#| default_exp") for s in code[:2]) or path.stem in ("01_first_run", "09_capstone", "A8_troubleshooting"), \
        "second cell declares the module"
    install = [s for s in code if "google.colab" in s and "pip" in s]
    assert install and settings()["git_url"] in install[0], "a Colab-only install cell from the settings.ini URL"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "config_path" in tagged[0].source, "one papermill parameters cell with config_path"
    prose = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    assert prose > 300, f"{path.name} has only {prose} words of prose: a chapter teaches"


def test_every_chapter_module_is_exported():
    for nb in CHAPTERS:
        src = nbformat.read(nb, as_version=4).cells
        exp = [c.source.split()[-1] for c in src if c.cell_type == "code" and c.source.startswith("#| default_exp")]
        for mod in exp:
            assert (ROOT / "neoxcourse" / f"{mod.replace('.', '/')}.py").exists(), f"{nb.name} -> {mod} not exported"


@pytest.mark.parametrize("folder", EXERCISES, ids=[p.name for p in EXERCISES])
def test_exercise_solution_passes_its_check(folder, monkeypatch):
    from neoxcourse.exercises import all_exercises, check_exercise
    for name in ("README.md", "starter.py"):
        assert (folder / name).exists(), f"{folder.name} lacks {name}"
    readme = (folder / "README.md").read_text()
    for word in ("check", "submit"):
        assert word in readme.lower(), f"{folder.name}/README.md must say how it is {word}ed"
    assert folder.name in all_exercises(), f"no registered exercise {folder.name}"
    solution = folder / "solution.py"
    assert solution.exists(), f"{folder.name} lacks solution.py"
    monkeypatch.chdir(folder)
    spec = importlib.util.spec_from_file_location(f"solution_{folder.name}", solution)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = check_exercise(folder.name, module.answer())
    assert isinstance(result, dict) and result


def test_every_registered_exercise_has_a_folder():
    from neoxcourse.exercises import all_exercises
    names = {p.name for p in EXERCISES}
    missing = [e for e in all_exercises() if e not in names]
    assert not missing, f"exercises without a folder: {missing}"


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "neoxcourse.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_config_check_reference_recipe():
    r = run_cli("config", "check", "configs/code_completion.yml")
    assert r.returncode == 0, r.stderr
    head = r.stdout.split("---")[0]
    for text in ("hidden size 512", "6 layers", "8 heads", "micro-batch 1", "global batch 8 (accumulation 8)",
                 "lr 0.0005", "fp16", "adam", "weight decay 0.01"):
        assert text in head, f"{text!r} not in:\n{head}"


def test_config_check_misspelled_key_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("num-layers: 2\nhiden-size: 64\n")
    r = run_cli("config", "check", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(bad) in lines[0] and "hiden-size" in lines[0] and "did you mean 'hidden-size'" in lines[0]


def test_config_check_overrides_and_bad_values(tmp_path):
    r = run_cli("config", "check", "configs/smoke.yml", "--set", "train-iters=7", "--set", "optimizer.type=lion",
                "--set", f"save={tmp_path}/ck")
    assert r.returncode == 0, r.stderr
    assert "lion" in r.stdout and "7 iterations" in r.stdout and f"{tmp_path}/ck" in r.stdout
    r = run_cli("config", "check", "configs/smoke.yml", "--set", "lr=fast")
    assert r.returncode == 2 and "'lr' must be float" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("config", "check", "configs/smoke.yml", "--set", "hidden-size=65")
    assert r.returncode == 2 and "not divisible" in r.stderr


def test_config_check_missing_file():
    r = run_cli("config", "check", "configs/nope.yml")
    assert r.returncode == 2 and "no such config file" in r.stderr and "Traceback" not in r.stderr


def test_env_command_runs_without_gpu():
    r = run_cli("env")
    assert r.returncode == 0, r.stderr
    assert "device" in r.stdout and "torch" in r.stdout and "attention" in r.stdout


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci, ".ci/run must take its commands from the README"
    assert "pip install -e" in readme and "make test" in readme


def test_cli_train_then_complete_then_resume(tmp_path):
    "The README's main job, shortened: train the smoke config, complete code with its checkpoint, resume it."
    save = tmp_path / "ck"
    common = ["--set", f"save={save}", "--set", "wandb.mode=disabled", "--set", "eval-interval=2"]
    r = run_cli("train", "configs/smoke.yml", "--set", "train-iters=3", "--set", "checkpoint-factor=3", *common)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (save / "step_00000003" / "model.safetensors").exists()
    r = run_cli("complete", "--checkpoint", str(save), "--max-new-tokens", "8", "--stop", "text", "def add(a, b):")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("train", "configs/smoke.yml", "--resume", "--set", "train-iters=5", "--set", "checkpoint-factor=5", *common)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (save / "step_00000005").exists()
    r = run_cli("complete", "--checkpoint", str(tmp_path / "nothing-here"), "x")
    assert r.returncode == 2 and "no such checkpoint" in r.stderr and "Traceback" not in r.stderr


def test_read_run_reads_back_and_refuses_a_torn_file(tmp_path, offline_wandb):
    "An offline run reads back exactly, right after finish(); a file cut off by a crash is a clear error."
    import os
    import shutil
    import time
    import wandb
    from neoxcourse.exercises import read_run
    run = wandb.init(project="neoxcourse", mode="offline", dir=str(tmp_path), config={"lr": 0.001},
                     job_type="train", group="g", tags=["t"])
    for step in range(5): run.log({"train/lm_loss": 5.0 - step}, step=step)
    run.summary["final"] = 1.5
    run_dir = Path(run.dir).parent
    run.finish()
    rec = read_run(run_dir)
    assert (rec.job_type, rec.group, rec.tags, rec.config["lr"]) == ("train", "g", ["t"], 0.001)
    assert [h["train/lm_loss"] for h in rec.history] == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert rec.summary["final"] == 1.5
    torn = tmp_path / "torn" / run_dir.name
    shutil.copytree(run_dir, torn)
    f = next(torn.glob("run-*.wandb"))
    f.write_bytes(f.read_bytes()[:600])
    os.utime(f, (time.time() - 3600, time.time() - 3600))     # an hour old: a crash, not a writer at work
    start = time.monotonic()
    with pytest.raises(ValueError, match="torn record|ends inside a record"):
        read_run(torn)
    assert time.monotonic() - start < 2
