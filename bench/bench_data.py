"""Data benchmark (chapters 02 and 03): end-to-end preparation throughput in MB of source a second,
tokenizer encode throughput, tokenizer training time, bytes per token against vocabulary size and
whitespace handling, and the exact round trip on every standard-library file.

    python bench/bench_data.py                  # writes bench/results/data_<host>_<cores>cpu.json
    python bench/bench_data.py --quick          # skips the vocabulary sweep
    python bench/bench_data.py --site-packages  # adds the installed packages as a corpus (minutes)

Every preparation runs cold (force=True) into a temporary folder, so nothing under data/ is touched.
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoxcourse.config import load_config  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
from provenance import header, write_result  # noqa: E402
from neoxcourse.data import build_corpus, decode_text, encode_texts, list_stdlib  # noqa: E402
from neoxcourse.tokenizer import prepare  # noqa: E402
from neoxcourse.tokenizer import (WHITESPACE_MODES, bytes_per_token, load_tokenizer,  # noqa: E402
                                  round_trip_failures, train_bpe, train_char)


def bench_prepare(out: str, include_tests: bool, source: str = "stdlib") -> dict:
    "Cold `prepare` of a source (the default filters, the committed tokenizer)."
    cfg = load_config(ROOT / "configs" / "stdlib.yml",
                      {"data.output_dir": out, "data.include_tests": include_tests,
                       "data.source": source})
    start = time.perf_counter()
    prepared = prepare(cfg, force=True, verbose=False)
    seconds = time.perf_counter() - start
    meta = prepared.meta
    source_mb = meta["steps"][0]["mb_kept"]
    again = time.perf_counter()
    reused = prepare(cfg, verbose=False).reused
    return dict(include_tests=include_tests, seconds=round(seconds, 2), source_mb=source_mb,
                mb_per_s=round(source_mb / seconds, 2), seconds_by_stage=meta["seconds"],
                reuse_seconds=round(time.perf_counter() - again, 2), reused=reused,
                splits=meta["splits"], steps=meta["steps"])


def bench_encode(texts: list[str], tokenizer) -> dict:
    "Encode throughput: batched on all cores (what prepare uses) and one file at a time."
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    start = time.perf_counter()
    ids = encode_texts(tokenizer, texts)
    batched = time.perf_counter() - start
    backend = tokenizer.backend_tokenizer
    start = time.perf_counter()
    for t in texts:
        backend.encode(t, add_special_tokens=False)
    single = time.perf_counter() - start
    tokens = sum(len(a) for a in ids)
    return dict(mb=round(nbytes / 1e6, 2), tokens=tokens,
                batched_mb_per_s=round(nbytes / 1e6 / batched, 2),
                batched_tokens_per_s=round(tokens / batched),
                one_by_one_mb_per_s=round(nbytes / 1e6 / single, 2))


def bench_tokenizers(cfg, quick: bool) -> dict:
    "Training time, bytes per token by vocabulary size and by whitespace mode (default corpus)."
    corpus = build_corpus(cfg.data, cfg.root)
    train, val = [d.text for d in corpus.train], [d.text for d in corpus.val]
    out = dict(train_files=len(train), val_files=len(val),
               train_mb=round(sum(d.nbytes for d in corpus.train) / 1e6, 2),
               val_mb=round(sum(d.nbytes for d in corpus.val) / 1e6, 3))
    start = time.perf_counter()
    tok = train_bpe(train, 8192)
    out["train_seconds_8192"] = round(time.perf_counter() - start, 2)
    out["val_bytes_per_token_8192"] = round(bytes_per_token(tok, val), 3)
    out["whitespace_bytes_per_token_8192"] = {
        mode: round(bytes_per_token(train_bpe(train, 8192, whitespace=mode), val), 3)
        for mode in WHITESPACE_MODES}
    if not quick:
        sweep = {"258 (char)": round(bytes_per_token(train_char(), val), 3)}
        for size in (512, 1024, 2048, 4096, 8192, 16384, 32768):
            sweep[str(size)] = round(bytes_per_token(train_bpe(train, size), val), 3)
        out["val_bytes_per_token_by_vocab"] = sweep
    return out


def bench_round_trip(tokenizer) -> dict:
    "decode(encode(text)) == text on every UTF-8 file of the standard library, tests included."
    texts, skipped = [], 0
    for path, _ in list_stdlib(include_tests=True):
        text = decode_text(path.read_bytes())
        if text is None:
            skipped += 1
        else:
            texts.append(text)
    start = time.perf_counter()
    failures = round_trip_failures(tokenizer, texts)
    return dict(files=len(texts), not_utf8_skipped=skipped, failures=len(failures),
                seconds=round(time.perf_counter() - start, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the vocabulary sweep")
    parser.add_argument("--site-packages", action="store_true",
                        help="also prepare every permissively licensed installed package (minutes)")
    parser.add_argument("--out", default=None,
                        help="results file (default bench/results/data_cpu<N>.json)")
    args = parser.parse_args()
    cfg = load_config(ROOT / "configs" / "stdlib.yml")
    tokenizer = load_tokenizer(cfg)
    result = {**header("configs/stdlib.yml"),
              "host": dict(platform=platform.platform(), python=platform.python_version(),
                           cpus=os.cpu_count(), load_average_start=os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        result["prepare_stdlib"] = bench_prepare(tmp, include_tests=False)
        result["prepare_stdlib_with_tests"] = bench_prepare(tmp, include_tests=True)
        if args.site_packages:
            result["prepare_site_packages"] = bench_prepare(tmp, include_tests=False,
                                                            source="site-packages")
    corpus = build_corpus(cfg.data, cfg.root)
    result["encode"] = bench_encode([d.text for d in corpus.train + corpus.val], tokenizer)
    result["tokenizer"] = bench_tokenizers(cfg, args.quick)
    result["round_trip"] = bench_round_trip(tokenizer)
    result["host"]["load_average_end"] = os.getloadavg()  # a shared machine: read with the load
    out = Path(args.out or ROOT / "bench" / "results" / f"data_cpu{os.cpu_count()}.json")
    write_result(out, result)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("prepare_")}, indent=1))
    for key in ("prepare_stdlib", "prepare_stdlib_with_tests", "prepare_site_packages"):
        if key not in result:
            continue
        r = result[key]
        print(f"{key}: {r['source_mb']} MB in {r['seconds']} s = {r['mb_per_s']} MB/s "
              f"(stages {r['seconds_by_stage']}), reuse {r['reuse_seconds']} s")
    print("wrote", out)


if __name__ == "__main__":
    main()
