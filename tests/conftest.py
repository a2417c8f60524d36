import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("NEOXCOURSE_HEADLESS", "1")
# Every `checkpoints/...` path of every config (and the W&B runs beside them) goes to a temporary folder, in
# this process and in the notebook kernels it starts: a test run never touches the learner's checkpoints/.
_SCRATCH = tempfile.mkdtemp(prefix="neoxcourse-test-checkpoints-")
os.environ["NEOXCOURSE_CHECKPOINTS"] = _SCRATCH
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    "W&B in offline mode, writing under tmp_path, with no key anywhere."
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    return tmp_path
