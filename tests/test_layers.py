"""The library below, the course above: `neoxcourse/` has no import cycle, and importing a library module never
imports the course layer (`exercises`, `experiments`), so grading code never runs inside `import neoxcourse.model`."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neoxcourse"
COURSE = ("exercises", "experiments", "design")                   # the course layer: may import anything
TOP = ("cli",)                                          # the command line: may import the course lazily
LIBRARY = sorted(p.stem for p in PACKAGE.glob("*.py")
                 if not p.stem.startswith("_") and p.stem not in COURSE + TOP)


def imported_modules(path: Path) -> set[str]:
    "The `neoxcourse` modules a file imports, at top level or inside functions (relative or absolute)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1: base = f"neoxcourse.{base}" if base else "neoxcourse"
            if base == "neoxcourse": out |= {a.name for a in node.names}          # from neoxcourse import x
            elif base.startswith("neoxcourse."): out.add(base.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("neoxcourse.")}
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    "Module -> the package's modules it imports (only modules that exist as files)."
    names = {p.stem for p in package.glob("*.py")}
    return {p.stem: (imported_modules(p) & names) - {p.stem} for p in package.glob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "One import cycle as a path [a, b, ..., a], or None."
    state, stack = {}, []
    def visit(m):
        state[m] = "open"; stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open": return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)): return found
        state[m] = "done"; stack.pop()
        return None
    for m in sorted(graph):
        if m not in state and (found := visit(m)): return found
    return None


def test_find_cycle_finds_a_planted_cycle():
    test = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(test) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_imported_modules_sees_lazy_and_relative_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from .config import x\nimport os\ndef f():\n    from neoxcourse.exercises import y\n"
                 "    import neoxcourse.train\n    from neoxcourse import data\n")
    assert imported_modules(f) == {"config", "exercises", "train", "data"}


def test_no_import_cycle():
    graph = import_graph()
    assert {"model", "train", "exercises"} <= set(graph), sorted(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in neoxcourse/: {' -> '.join(cycle)}"


def test_library_imports_nothing_of_the_course_layer_statically():
    graph = import_graph()
    bad = {m: sorted(graph[m] & set(COURSE)) for m in LIBRARY if graph[m] & set(COURSE)}
    assert not bad, f"library modules that import the course layer: {bad}"


@pytest.mark.parametrize("module", LIBRARY)
def test_importing_a_library_module_leaves_the_course_layer_out(module):
    code = (f"import sys, neoxcourse.{module}\n"
            f"print(' '.join(m for m in sys.modules if m in {['neoxcourse.' + c for c in COURSE]!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"import neoxcourse.{module} imported {out.stdout.strip()}"
