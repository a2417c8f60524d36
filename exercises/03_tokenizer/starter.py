"""Exercise 03: the best tokenizer at 2,048 tokens.

Edit `answer`, then run `python starter.py` (check) or `python starter.py --submit --name YOU`.
"""

from neoxcourse.config import DataConfig
from neoxcourse.data import build_corpus
from neoxcourse.tokenizer import train_bpe


def answer():
    train = [d.text for d in build_corpus(DataConfig()).train]  # the training split only
    # Your ideas here: another pre-tokenizer, whitespace handling, min_frequency, ...
    return train_bpe(train, vocab_size=2048, whitespace="runs")


if __name__ == "__main__":   # python starter.py [--submit --name YOU]
    import sys
    from neoxcourse.exercises import exercise_main
    sys.exit(exercise_main("03_tokenizer", answer))
