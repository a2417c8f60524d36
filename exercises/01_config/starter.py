"""Exercise 01: check (or submit) a T4 config: `python starter.py my_t4.yml [--submit --name YOU]`."""
import argparse

from neoxcourse.exercises import check_exercise, submit


def answer(path: str = "my_t4.yml"):
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config", nargs="?", default="my_t4.yml")
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.submit: submit("01_config", answer(args.config), name=args.name)
    else: check_exercise("01_config", answer(args.config))
