"""Exercise 08: the unbiased pass@k estimator. Edit pass_at_k, then run `python starter.py`.

Submit with `python starter.py --submit --name YOU [--config CONFIG --checkpoint DIR]`.
"""


def pass_at_k(n: int, c: int, k: int) -> float:
    "Probability that at least one of k samples drawn without replacement from n (c correct) is correct."
    # TODO: the probability that k samples drawn without replacement from n include a correct one, in a form
    # that stays exact for n up to 1000 (binomials that large overflow a float).
    raise NotImplementedError("write pass_at_k: see README.md")


def answer():
    return pass_at_k


def evaluation_of(config: str | None, checkpoint: str | None) -> dict:
    "The metrics of your checkpoint (chapter 08's evaluate), to submit with your answer; {} without one."
    if not checkpoint:
        return {}
    from neoxcourse.config import default_config_path, load_config
    from neoxcourse.evaluate import evaluate
    cfg = load_config(config or default_config_path())
    metrics = evaluate(cfg, checkpoint, log=False)
    return {"checkpoint": checkpoint, **{f"eval/{k}": v for k, v in metrics.items()}}


def add_arguments(parser):
    parser.add_argument("--config", help="the config your checkpoint was trained with")
    parser.add_argument("--checkpoint", help="a checkpoint folder to evaluate and submit with the answer")


if __name__ == "__main__":   # python starter.py [--submit --name YOU [--config CONFIG --checkpoint DIR]]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("08_evaluation", lambda args: answer(), add_arguments=add_arguments,
                           submit_config=lambda args: evaluation_of(args.config, args.checkpoint)))
