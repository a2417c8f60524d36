"""Exercise A1: check (or submit) a T4 config: `python starter.py my_t4.yml [--submit --name YOU]`."""


def answer(path: str = "my_t4.yml"):
    return path


def add_arguments(parser):
    parser.add_argument("config", nargs="?", default="my_t4.yml", help="your YAML file")


if __name__ == "__main__":   # python starter.py [my_t4.yml] [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("A1_config", lambda args: answer(args.config), add_arguments=add_arguments))
