"""Reference solution for exercise A5_experiments: kept here for CI, which runs it against the check (so the check
cannot rot) together with known-wrong answers (tests/test_exercises.py). Try `starter.py` first; reading this
file first skips the exercise. `python solution.py` runs the check on it and prints the result.

The idea: the first crossing, linear between logged rows.
"""


def tokens_to_reach(history, target, tokens_per_step, metric="validation/lm_loss"):
    previous = None                                   # (step, value) of the last row above the target
    for row in history:
        if metric not in row or "_step" not in row:
            continue
        step, value = row["_step"], row[metric]
        if value <= target:
            if previous is None:
                return step * tokens_per_step
            (step0, value0) = previous
            fraction = (value0 - target) / (value0 - value)
            return (step0 + fraction * (step - step0)) * tokens_per_step
        previous = (step, value)
    return None


def answer():
    return tokens_to_reach


if __name__ == "__main__":   # python solution.py: the check, on this reference
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("A5_experiments", answer))
