"""Exercise A5: write tokens_to_reach, then `python starter.py` to check it (`--submit --name YOU` to submit)."""



def tokens_to_reach(history, target, tokens_per_step, metric="validation/lm_loss"):
    "Tokens seen when `metric` first falls to `target` or below (linear between logged rows); None if never."
    raise NotImplementedError("your code here")


def answer():
    return tokens_to_reach


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("A5_experiments", answer))
