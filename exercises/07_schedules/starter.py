"""Exercise 07: compare learning-rate schedules. Edit SCHEDULES / OVERRIDES, then run `python starter.py`
(it trains one run per schedule; add `--submit --name YOU` to record the comparison as a W&B run).

The check reads the runs' W&B folders (config and history), not numbers: keep W&B on (offline is fine)."""
from neoxcourse.config import default_config_path, load_config
from neoxcourse.exercises import compare_schedules

# TODO: choose three or more schedules: constant, linear, cosine, exponential, inverse_sqrt, wsd, wsd:linear, ...
SCHEDULES = ("constant", "cosine", "wsd")
# TODO: on a T4 use --config configs/lab.yml; the smoke config is for a quick CPU check.
OVERRIDES = {}


def answer(config_path=None):
    "{schedule: W&B run folder} of one run per schedule, everything else equal."
    cfg = load_config(config_path or default_config_path(), OVERRIDES)
    return compare_schedules(cfg, SCHEDULES, OVERRIDES)


def add_arguments(parser):
    parser.add_argument("--config", default=None, help="the config to train (default: the course's)")


if __name__ == "__main__":   # python starter.py [--config FILE] [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("07_schedules", lambda args: answer(args.config), add_arguments=add_arguments,
                           submit_config=lambda args: {"config": str(args.config or default_config_path()),
                                                       "schedules": list(SCHEDULES)}))
