"""One source for every number that appears twice: reference/course_facts.json (written by bench/facts.py from
configs/ and bench/results/) is fresh, and no chapter, exercise README, config comment or the README states a
repeated fact with another value."""
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACTS = json.loads((ROOT / "reference" / "course_facts.json").read_text())


def texts(root: Path = ROOT) -> dict:
    "Every text a learner reads: notebooks (markdown and code), exercise READMEs, configs, the README."
    out = {}
    for p in sorted((root / "nbs").glob("*.ipynb")):
        nb = json.loads(p.read_text())
        out[str(p.relative_to(root))] = "\n\n".join(
            c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in nb["cells"])
    for pattern in ("exercises/*/README.md", "configs/*.yml", "README.md"):
        for p in sorted(root.glob(pattern)):
            out[str(p.relative_to(root))] = p.read_text()
    return out


@dataclass
class Rule:
    "A repeated fact: where it is stated (a regex whose group 1 is the number, near a context word) and its value."
    name: str
    pattern: str
    context: str            # a regex that must occur in the `window` characters before the number
    allowed: tuple          # the values the facts file gives (any one of them may be stated)
    tolerance: float = 0.0  # relative
    unless: str = ""        # a regex in the same window that makes it another fact (e.g. an H200 figure)
    window: int = 160

    def problems(self, name: str, text: str) -> list:
        found = []
        for m in re.finditer(self.pattern, text):
            before = text[max(0, m.start() - self.window):m.end() + 40]
            if not re.search(self.context, before): continue
            if self.unless and re.search(self.unless, text[max(0, m.start() - 3 * self.window):m.end() + 40]):
                continue
            value = float(m.group(1).replace(",", ""))
            if any(abs(value - a) <= self.tolerance * abs(a) + 1e-9 for a in self.allowed): continue
            line = text[:m.start()].count("\n") + 1
            found.append(f"{name}:{line}: {self.name}: states {m.group(0)!r}, the facts say "
                         f"{' or '.join(str(a) for a in self.allowed)} (reference/course_facts.json)")
        return found


t4, recipes, capstone = FACTS["t4"], FACTS["recipes"], FACTS["capstone"]
t4_checkpoints = tuple(range(recipes["t4"]["checkpoint_factor"], recipes["t4"]["train_iters"] + 1,
                             recipes["t4"]["checkpoint_factor"]))
RULES = [
    Rule("T4 recipe speed estimate", r"(\d+(?:\.\d+)?)k tokens/s", r"T4",
         (t4["recipe_tokens_per_s_estimate_k"], t4["recipe_tokens_per_s_pessimistic_k"],
          t4["recipe_tokens_per_s_fast_path_estimate_k"]),
         unless=r"H200|emulation|12-layer|[Rr]eported|lab recipe|configs/lab|FLOP rule"),
    Rule("T4 recipe iterations", r"(\d[\d,]*) iterations", r"t4\.yml|T4 recipe",
         (recipes["t4"]["train_iters"], capstone["iterations_per_run"]), window=60,
         unless=r"budget|experiment|lab"),
    Rule("T4 recipe global batch", r"global batch (?:is |of )?(\d+)\b", r"T4",
         (recipes["t4"]["global_batch_sequences"],), unless=r"8 T4s|eight|GPUs"),
    Rule("T4 memory seen by PyTorch on Colab", r"(1[45]\.\d+) GiB", r"T4|Colab",
         (t4["colab_visible_memory_gib"], t4["emulation_memory_cap_gib"]), unless=r"largest_micro_batch"),
    Rule("tokens an hour of T4 trains", r"(\d+)M tokens", r"T4-hour|hour of (?:a )?T4|T4 hour",
         (t4["hour_tokens_millions"], recipes["t4"]["train_tokens_millions"],
          capstone["tokens_per_run_millions"]), tolerance=0.03),
    Rule("a checkpoint of the T4 recipe in GPT-NeoX", r"global_step(\d+)", r"t4|T4",
         t4_checkpoints + (recipes["t4"]["train_iters"],)),
]


def check(all_texts: dict) -> list:
    return [p for name, text in all_texts.items() for rule in RULES for p in rule.problems(name, text)]


def test_facts_file_is_fresh():
    r = subprocess.run([sys.executable, "bench/facts.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


def test_no_text_disagrees_with_the_facts():
    problems = check(texts())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stale", [
    "On a T4 the recipe trains at about 20k tokens/s.",
    "configs/t4.yml trains 6000 iterations.",
    "The T4 global batch is 32 sequences.",
    "Colab's T4 leaves 14.5 GiB to PyTorch.",
    "An hour of T4 trains 490M tokens.",
    "The T4 recipe in GPT-NeoX ends at global_step6000.",
])
def test_a_planted_stale_value_is_caught(stale):
    planted = {**texts(), "nbs/planted.ipynb": "Some prose.\n\n" + stale}
    problems = check(planted)
    assert any(p.startswith("nbs/planted.ipynb") for p in problems), problems
