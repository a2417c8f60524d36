"""Exercise A7: check (or submit) a GPT-NeoX config for 8 T4s: `python starter.py my_8xT4.yml [--submit --name YOU]`."""


def answer(path: str = "my_8xT4.yml"):
    return path


def add_arguments(parser):
    parser.add_argument("config", nargs="?", default="my_8xT4.yml", help="your YAML file")


if __name__ == "__main__":   # python starter.py [my_8xT4.yml] [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("A7_scaling_up", lambda args: answer(args.config), add_arguments=add_arguments))
