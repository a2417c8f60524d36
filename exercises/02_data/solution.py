"""Reference solution for exercise 02_data: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.

The idea: the share of lines that are only literals.
"""
import re

LITERAL = re.compile(r"[rbuf]{0,2}'(?:\\.|[^'\\\n])*'"   # 'single-quoted', with an optional prefix
                     r'|[rbuf]{0,2}"(?:\\.|[^"\\\n])*"'  # "double-quoted"
                     r"|0x[0-9a-fA-F]+|\d+(?:\.\d+)?")   # 0x1F, 42, 3.14


def is_data_line(line: str) -> bool:
    "A line with a literal and almost nothing else once literals and comments are gone."
    rest = re.sub(r"#.*", "", LITERAL.sub("", line))
    return bool(LITERAL.search(line)) and sum(c.isalnum() for c in rest) <= 4


def is_data_file(text: str, threshold: float = 0.5) -> bool:
    "True when more than `threshold` of the non-comment lines are data lines."
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]
    return bool(lines) and sum(map(is_data_line, lines)) / len(lines) > threshold


def answer():
    return is_data_file


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("02_data", answer))
