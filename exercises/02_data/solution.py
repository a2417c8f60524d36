"""Reference solution for exercise 02: the share of lines that are only literals (CI checks it)."""
import re

# a string literal (with optional prefix), a hex or decimal number
LITERAL = re.compile(r"""[rbuf]{0,2}'(?:\\.|[^'\\\n])*'|[rbuf]{0,2}"(?:\\.|[^"\\\n])*"|0x[0-9a-fA-F]+|\d+(?:\.\d+)?""")


def is_data_line(line: str) -> bool:
    "A line holding at least one literal and almost nothing else once literals and comments are gone."
    rest = re.sub(r"#.*", "", LITERAL.sub("", line))
    return bool(LITERAL.search(line)) and sum(c.isalnum() for c in rest) <= 4


def is_data_file(text: str, threshold: float = 0.5) -> bool:
    "True when more than `threshold` of the non-comment lines are data lines."
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]
    return bool(lines) and sum(map(is_data_line, lines)) / len(lines) > threshold


def answer():
    return is_data_file
