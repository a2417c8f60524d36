import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("NEOXCOURSE_HEADLESS", "1")


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
