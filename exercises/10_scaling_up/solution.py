"""Reference solution for exercise 10: the path of a GPT-NeoX config that passes (CI checks it)."""
from pathlib import Path


def answer():
    return str(Path(__file__).with_name("solution.yml"))
