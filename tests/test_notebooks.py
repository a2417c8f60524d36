"""Every notebook, top to bottom, headless through papermill, with the smoke config as its parameters:
one test per notebook, a fresh kernel each, failing on any cell error (as a learner's Colab run would)."""
import os
import time
from pathlib import Path

import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
SMOKE = {"config_path": str(ROOT / "configs" / "smoke.yml"), "overrides": {}}


def has_parameters_cell(path: Path) -> bool:
    import nbformat
    nb = nbformat.read(path, as_version=4)
    return any("parameters" in c.metadata.get("tags", []) for c in nb.cells)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(notebook, tmp_path):
    params = SMOKE if has_parameters_cell(notebook) else {}
    if notebook.name != "index.ipynb":
        assert params, f"{notebook.name} has no cell tagged 'parameters' (papermill needs one)"
    out = tmp_path / notebook.name
    start = time.time()
    env_before = os.environ.get("PAPERMILL_EXECUTION")
    os.environ["PAPERMILL_EXECUTION"] = "1"
    try:
        pm.execute_notebook(str(notebook), str(out), parameters=params, cwd=str(ROOT / "nbs"),
                            kernel_name="python3", language="python", progress_bar=False, execution_timeout=600)
    finally:
        if env_before is None: os.environ.pop("PAPERMILL_EXECUTION", None)
    print(f"{notebook.name}: {time.time() - start:.1f} s")
