"""The chapters as jupytext percent-format scripts (nbs/py/): the sync check notices a stale, missing or
orphaned script, and a chapter's script runs as plain Python (no Jupyter) with the smoke config."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import check_sync  # noqa: E402

CHAPTER = "04_model"   # the model: its test cells assert logits against transformers, quick on a CPU


def test_sync_check_finds_stale_missing_and_orphaned_scripts(tmp_path):
    nbs, scripts = tmp_path / "nbs", tmp_path / "nbs" / "py"
    nbs.mkdir()
    shutil.copy(ROOT / "nbs" / f"{CHAPTER}.ipynb", nbs)
    assert check_sync.write_scripts(nbs, scripts) == [f"{CHAPTER}.py"]
    assert check_sync.stale_scripts(nbs, scripts) == []
    script = (scripts / f"{CHAPTER}.py").read_text()
    assert script.startswith(f"# Generated from nbs/{CHAPTER}.ipynb") and "# %% [markdown]" in script
    assert 'tags=["parameters"]' in script                      # papermill's tag survives: a reviewer sees it
    nb = json.loads((nbs / f"{CHAPTER}.ipynb").read_text())        # a change made in the notebook only
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "0123abcd", "metadata": {},
                        "outputs": [], "source": ["x = 1"]})
    (nbs / f"{CHAPTER}.ipynb").write_text(json.dumps(nb))
    assert check_sync.stale_scripts(nbs, scripts) == [f"{CHAPTER}.py"]
    check_sync.write_scripts(nbs, scripts)
    assert (scripts / f"{CHAPTER}.py").read_text().rstrip().endswith("x = 1")
    (scripts / "99_gone.py").write_text("# a chapter that was removed\n")
    (scripts / f"{CHAPTER}.py").unlink()
    assert check_sync.stale_scripts(nbs, scripts) == [f"{CHAPTER}.py", "99_gone.py"]


def test_a_chapter_script_runs_as_plain_python(tmp_path):
    script = tmp_path / f"{CHAPTER}.py"
    script.write_text(check_sync.chapter_script(ROOT / "nbs" / f"{CHAPTER}.ipynb"))
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run([sys.executable, str(script)], cwd=ROOT / "nbs", env=env, capture_output=True, text=True,
                       timeout=600)   # no GPU: the parameters cell's default is configs/smoke.yml
    assert r.returncode == 0, r.stderr[-3000:]
    assert "configs/smoke.yml" in r.stdout                          # the parameters cell chose the smoke config
