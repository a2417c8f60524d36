"""Every chapter opens the same way: right after its title, four labelled lines say what the learner will learn,
what they need (CPU or T4), how long it takes on a T4 and in CI, and what they should see at the end."""
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if p.stem != "index" and not p.name.startswith("_"))
LABELS = ("You will learn", "You need", "Time", "You should see")


def opening(path: Path) -> str:
    "The markdown a learner reads before the first code cell (the title cell and any markdown right after it)."
    cells = json.loads(path.read_text())["cells"]
    text = []
    for c in cells:
        if c["cell_type"] != "markdown":
            if text: break
            continue
        text.append("".join(c["source"]))
    return "\n\n".join(text)


def opening_problems(path: Path) -> list:
    "What is missing from a notebook's opening, one line each (empty when it opens as every chapter must)."
    text, problems = opening(path), []
    if not re.match(r"#\s+\S", text):
        problems.append(f"{path.name}: the first markdown cell does not start with a '# ' title")
    for label in LABELS:
        m = re.search(rf"^- \*\*{label}:\*\*\s*(\S.*)$", text, re.M)
        if not m:
            problems.append(f"{path.name}: the opening has no line '- **{label}:** ...' (see nbs/01_first_run.ipynb)")
    time_line = re.search(r"^- \*\*Time:\*\*(.*(?:\n  .*)*)", text, re.M)
    if time_line and not ("T4" in time_line.group(1) and "CPU" in time_line.group(1)):
        problems.append(f"{path.name}: the '- **Time:**' line must give the time on a T4 and on a CPU (as CI runs it)")
    need_line = re.search(r"^- \*\*You need:\*\*(.*(?:\n  .*)*)", text, re.M)
    if need_line and not re.search(r"CPU|T4|GPU", need_line.group(1)):
        problems.append(f"{path.name}: the '- **You need:**' line must say whether a CPU is enough or a T4 is needed")
    for old in ("**Prerequisites:**", "**At the end you will have:**"):
        if old in text:
            problems.append(f"{path.name}: the opening still has the older '{old}'; the four lines replace it")
    return problems


def test_there_are_chapters():
    assert len(CHAPTERS) >= 20, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_opens_with_learn_need_time_see(notebook):
    problems = opening_problems(notebook)
    assert not problems, "\n".join(problems)


def _planted(tmp_path: Path, drop: str) -> Path:
    "A copy of chapter 01's first-run notebook, its opening's line with `drop` removed."
    copy = tmp_path / "01_first_run.ipynb"
    shutil.copy(ROOT / "nbs" / "01_first_run.ipynb", copy)
    nb = json.loads(copy.read_text())
    cell = next(c for c in nb["cells"] if "You will learn" in "".join(c["source"]))
    src = "".join(cell["source"])
    kept = re.sub(rf"^- \*\*{drop}:\*\*.*(?:\n  .*)*\n?", "", src, flags=re.M)
    assert kept != src, f"the model opening has no '{drop}' line to remove"
    cell["source"] = kept
    copy.write_text(json.dumps(nb))
    return copy


def test_the_model_opening_passes(tmp_path):
    copy = tmp_path / "01_first_run.ipynb"
    shutil.copy(ROOT / "nbs" / "01_first_run.ipynb", copy)
    assert opening_problems(copy) == []


@pytest.mark.parametrize("label", LABELS)
def test_a_missing_line_is_caught(tmp_path, label):
    problems = opening_problems(_planted(tmp_path, label))
    assert any(f"'- **{label}:** ...'" in p for p in problems), problems


def test_a_time_without_ci_and_an_old_format_are_caught(tmp_path):
    copy = tmp_path / "02_x.ipynb"
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source":
                     "# 02 · X\n\n**Prerequisites:** none.\n\n- **You will learn:** x.\n- **You need:** a T4.\n"
                     "- **Time:** an hour on a T4.\n- **You should see:** a plot."}]}
    copy.write_text(json.dumps(nb))
    problems = opening_problems(copy)
    assert any("on a CPU" in p for p in problems) and any("Prerequisites" in p for p in problems), problems
