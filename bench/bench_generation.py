"""Generation speed (chapter 04a, the README): greedy decoding of the reference model, batch 1, with and
without the KV cache, against transformers' `generate`, on one CUDA GPU.

    PYTHONPATH=. python bench/bench_generation.py --out bench/results    # writes generation.json
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_train import reference_model_config, time_generation  # noqa: E402
from provenance import header, write_result  # noqa: E402

CONFIG = "configs/code_completion.yml"   # the reference model; bench_train.reference_model_config reads it


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = p.parse_args(argv)
    write_result(Path(a.out) / "generation.json",
                 {**header(CONFIG), "generation": time_generation(reference_model_config())}, indent=2)


if __name__ == "__main__":
    main()
