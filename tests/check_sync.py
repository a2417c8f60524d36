"""Fail when `nbdev_clean` or `nbdev_export` would change a tracked file: notebooks must be committed clean,
and the library must be the export of the notebooks. Works in a dirty tree: it compares file contents
before and after, not against git."""
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def snapshot() -> dict:
    files = list((ROOT / "nbs").glob("*.ipynb")) + list((ROOT / "neoxcourse").glob("*.py"))
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def changed(before: dict, after: dict) -> list:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def main() -> int:
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
    return status


if __name__ == "__main__":
    sys.exit(main())
