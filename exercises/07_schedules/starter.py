"""Exercise 07: compare learning-rate schedules. Edit SCHEDULES / OVERRIDES, then run `python starter.py`
(add `--submit --name YOU` to record the comparison as a W&B run)."""
import argparse
from pathlib import Path

from neoxcourse.config import default_config_path, load_config
from neoxcourse.exercises import compare_schedules

# TODO: choose three or more schedules: constant, linear, cosine, exponential, inverse_sqrt, wsd, wsd:linear, ...
SCHEDULES = ("constant", "cosine", "wsd")
# TODO: on a T4 use configs/t4.yml with {"train-iters": 1000}; the smoke config is for a quick CPU check.
OVERRIDES = {}


def answer(config_path=None):
    cfg = load_config(config_path or default_config_path(), OVERRIDES)
    return compare_schedules(cfg, SCHEDULES, OVERRIDES)


if __name__ == "__main__":
    from neoxcourse.exercises import check_exercise, submit
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    parser.add_argument("--submit", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args()
    results = answer(args.config)
    print(results)
    if args.submit:
        submit("07_schedules", results, name=args.name,
               config={"config": str(args.config or default_config_path()), "overrides": OVERRIDES})
    else:
        check_exercise("07_schedules", results)
