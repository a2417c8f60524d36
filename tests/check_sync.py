"""Fail when `nbdev_clean` or `nbdev_export` would change a tracked file, or a chapter's script is stale:
notebooks must be committed clean, the library must be the export of the notebooks, and `nbs/py/NN_x.py`
must be the jupytext percent-format script of `nbs/NN_x.ipynb` (a readable diff of every notebook change,
and a way to run a chapter as plain Python). Works in a dirty tree: it compares file contents before and
after, not against git.

    python tests/check_sync.py                   # the check (`make sync`)
    python tests/check_sync.py --write-scripts   # regenerate nbs/py/ from the notebooks, then check
"""
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "nbs" / "py"
SCRIPT_HEADER = ("# Generated from nbs/{name}.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, "
                 "percent format).\n# Edit the notebook, not this file. Run it from nbs/: `python py/{name}.py`.\n")


def snapshot() -> dict:
    files = list((ROOT / "nbs").glob("*.ipynb")) + list((ROOT / "neoxcourse").glob("*.py"))
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def changed(before: dict, after: dict) -> list:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def chapters(nbs: Path = ROOT / "nbs") -> list:
    "The chapter notebooks: numbered (04_model.ipynb, 04a_generation.ipynb) and the appendices (A1_config.ipynb)."
    return sorted(p for p in nbs.glob("[0-9A]*.ipynb"))


def chapter_script(notebook: Path) -> str:
    "The percent-format script of a notebook, as jupytext writes it, under a header naming its source."
    import jupytext
    text = jupytext.writes(jupytext.read(notebook), fmt="py:percent")
    return SCRIPT_HEADER.format(name=notebook.stem) + "\n" + text


def stale_scripts(nbs: Path = ROOT / "nbs", scripts: Path = SCRIPTS) -> list:
    "Scripts that are missing, differ from their notebook, or have no notebook any more."
    wanted = {f"{nb.stem}.py": nb for nb in chapters(nbs)}
    stale = [name for name, nb in wanted.items()
             if not (scripts / name).exists() or (scripts / name).read_text(encoding="utf-8") != chapter_script(nb)]
    orphans = [p.name for p in scripts.glob("*.py") if p.name not in wanted]
    return sorted(stale + orphans)


def write_scripts(nbs: Path = ROOT / "nbs", scripts: Path = SCRIPTS) -> list:
    "Write every chapter's script and delete scripts whose notebook is gone; the names written."
    scripts.mkdir(parents=True, exist_ok=True)
    wanted = {f"{nb.stem}.py": nb for nb in chapters(nbs)}
    for p in scripts.glob("*.py"):
        if p.name not in wanted: p.unlink()
    written = []
    for name, nb in wanted.items():
        text = chapter_script(nb)
        if not (scripts / name).exists() or (scripts / name).read_text(encoding="utf-8") != text:
            (scripts / name).write_text(text, encoding="utf-8")
            written.append(name)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    status = 0
    for command, fix in ((["nbdev_clean"], "run nbdev_clean and commit the cleaned notebooks"),
                         (["nbdev_export"], "run nbdev_export and commit the library")):
        before = snapshot()
        subprocess.run(command, cwd=ROOT, check=True)
        diff = changed(before, snapshot())
        if diff:
            print(f"{' '.join(command)} changed {len(diff)} file(s): {', '.join(diff)}; {fix}")
            status = 1
        else:
            print(f"{' '.join(command)}: no change")
    if "--write-scripts" in argv:
        written = write_scripts()
        print(f"chapter scripts: wrote {len(written)} ({', '.join(written) or 'all were current'})")
    stale = stale_scripts()
    if stale:
        print(f"chapter scripts in nbs/py/ out of date: {', '.join(stale)}; run "
              f"`python tests/check_sync.py --write-scripts` and commit nbs/py/")
        status = 1
    else:
        print(f"chapter scripts: {len(chapters())} current")
    return status


if __name__ == "__main__":
    sys.exit(main())
