"""Exercise 02: a filter for data files.

Edit `is_data_file`, then `python starter.py` to check, or `python starter.py --submit --name YOU`.
"""



def is_data_file(text: str) -> bool:
    "True when `text` is mostly literal data (a table of strings or numbers), not code."
    # A naive first attempt: many quote characters per line. Improve it.
    lines = text.splitlines() or [""]
    return sum(line.count("'") + line.count('"') for line in lines) / len(lines) > 1.5


def answer():
    return is_data_file


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("02_data", answer))
