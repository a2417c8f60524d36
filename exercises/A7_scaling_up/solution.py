"""Reference solution for exercise A7_scaling_up: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.

The answer is the path of a GPT-NeoX config that passes.
"""
from pathlib import Path


def answer():
    return str(Path(__file__).with_name("solution.yml"))


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("A7_scaling_up", answer))
