"""Exercise 10: check (or submit) a GPT-NeoX config for 8 T4s: `python starter.py my_8xT4.yml [--submit --name YOU]`."""
import argparse

from neoxcourse.exercises import check_exercise, submit


def answer(path: str = "my_8xT4.yml"):
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config", nargs="?", default="my_8xT4.yml")
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.submit: submit("10_scaling_up", answer(args.config), name=args.name)
    else: check_exercise("10_scaling_up", answer(args.config))
