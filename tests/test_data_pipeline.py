"""Integration tests for chapters 02 and 03 on the whole standard library (too slow for notebook
cells): splits never share a file, duplicates and a planted HumanEval solution are removed, the
committed tokenizer round-trips every file exactly and is reproduced byte for byte, prepare is
idempotent and crash-safe, the hub sources fail fast offline, and the sampler resumes exactly."""
import dataclasses
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neoxcourse.config import load_config
from neoxcourse.data import (HF_SOURCES, BatchSampler, DataError, build_corpus, decode_text,
                             humaneval_problems, iter_source, list_stdlib, read_meta, stdlib_root)
from neoxcourse.tokenizer import load_tokenizer, prepare, round_trip_failures, train_tokenizer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def default():
    return load_config(ROOT / "configs" / "stdlib.yml")  # the default corpus and tokenizer


@pytest.fixture(scope="module")
def full_corpus(default):
    "The whole standard library, tests included (the largest offline corpus)."
    return build_corpus(dataclasses.replace(default.data, include_tests=True), default.root)


def test_full_stdlib_splits_are_disjoint_and_deduplicated(full_corpus):
    train, val = {d.origin for d in full_corpus.train}, {d.origin for d in full_corpus.val}
    assert not train & val
    assert len(train) + len(val) == len(full_corpus.train) + len(full_corpus.val)  # no origin twice
    texts = [d.text for d in full_corpus.train + full_corpus.val]
    assert len(set(texts)) == len(texts), "an exact duplicate survived"
    removed = full_corpus.report.removed
    assert removed["exact_dedup"][0] > 0 and removed["near_dedup"][0] > 0
    assert 0.01 < len(val) / (len(train) + len(val)) < 0.04  # val_fraction 0.02
    assert full_corpus.report.input_files > 1700


def test_split_is_stable_when_files_are_added(default, tmp_path):
    "A file's side depends on its own origin only: adding files never moves the others."
    sample = dataclasses.replace(default.data, max_files=120)
    small = build_corpus(sample, default.root)
    large = build_corpus(dataclasses.replace(sample, max_files=240), default.root)
    side = {d.origin: d.split for d in large.train + large.val}
    moved = [d.origin for d in small.train + small.val
             if d.origin in side and side[d.origin] != d.split]
    assert len(moved) <= 1  # at most the one file forced to val when a tiny corpus draws none


def test_planted_humaneval_and_duplicates_removed(default, tmp_path):
    problems = humaneval_problems()
    for name in ("json/decoder.py", "csv.py", "textwrap.py", "heapq.py"):
        (tmp_path / name.replace("/", "_")).write_text((stdlib_root() / name).read_text())
    (tmp_path / "zz_copy_of_csv.py").write_text((stdlib_root() / "csv.py").read_text())
    (tmp_path / "leak_prompt.py").write_text("import os\n\n" + problems[42]["prompt"] + "  pass\n")
    solution = problems[129]["canonical_solution"]
    leak = "def helper(grid, k):\n" + solution + "\nx = helper()\n"
    (tmp_path / "leak_solution.py").write_text(leak)
    data = dataclasses.replace(default.data, source="local", path=str(tmp_path), max_files=None,
                               min_file_bytes=1)
    corpus = build_corpus(data)
    kept = {d.origin for d in corpus.train + corpus.val}
    assert kept == {"local/json_decoder.py", "local/csv.py", "local/textwrap.py", "local/heapq.py"}
    assert sorted(corpus.report.examples["decontaminate"]) == ["local/leak_prompt.py",
                                                              "local/leak_solution.py"]
    assert corpus.report.examples["exact_dedup"] == ["local/zz_copy_of_csv.py"]


def test_bad_files_are_counted_not_fatal(default, tmp_path):
    good = [f"ok{i}.py" for i in range(30)]  # a corpus needs files enough for a validation split
    for i, name in enumerate(good):
        (tmp_path / name).write_text(f"def f{i}(x):\n    return x + {i}\n" * 3)
    (tmp_path / "binary.py").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "huge.py").write_text("x = 1\n" * 300_000)  # 1.8 MB > max_file_bytes
    (tmp_path / "dangling.py").symlink_to(tmp_path / "missing-target.py")  # no file: the walk skips it
    data = dataclasses.replace(default.data, source="local", path=str(tmp_path), val_fraction=0.2,
                               near_dedup=False)
    corpus = build_corpus(data)
    assert sorted(d.origin for d in corpus.train + corpus.val) == sorted(f"local/{n}" for n in good)
    removed = {k: v[0] for k, v in corpus.report.removed.items() if v[0]}
    assert removed == {"binary": 2, "empty": 1, "size": 1}
    with pytest.raises(DataError, match=r"empty removed 1 .*size removed 31 .*Relax those settings"):
        build_corpus(dataclasses.replace(data, min_file_bytes=10**6))


def test_unknown_source_and_missing_path_name_the_options(default):
    with pytest.raises(DataError, match="choose one of stdlib, local, site-packages, codesearch"):
        list(iter_source(dataclasses.replace(default.data, source="github")))
    with pytest.raises(DataError, match="does not exist"):
        list(iter_source(dataclasses.replace(default.data, source="local", path="/no/such/folder")))


@pytest.mark.parametrize("source", sorted(HF_SOURCES))
def test_hub_sources_fail_fast_offline(default, source, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="Offline sources: stdlib, local, site-packages"):
        list(iter_source(dataclasses.replace(default.data, source=source)))


def test_unreachable_hub_message_within_timeout(default, monkeypatch):
    import time
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.time()
    with pytest.raises(DataError, match="cannot be reached .*Offline sources"):
        list(iter_source(dataclasses.replace(default.data, source="codeparrot-clean")))
    assert time.time() - start < 10


def test_committed_tokenizer_round_trips_every_stdlib_file(default):
    tokenizer = load_tokenizer(default)
    texts = [decode_text(p.read_bytes()) for p, _ in list_stdlib(include_tests=True)]
    texts = [t for t in texts if t is not None]
    assert len(texts) > 1700
    assert round_trip_failures(tokenizer, texts) == []
    for text in texts[::97]:  # the Python-level path a user calls too
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_committed_tokenizer_is_reproduced_byte_for_byte(default, tmp_path):
    "Deterministic training: retraining on the default corpus gives the committed files."
    import platform
    trained_on = json.loads((ROOT / "tokenizer" / "training.json").read_text())["python"]
    if trained_on != platform.python_version():  # the corpus is the interpreter's standard library
        pytest.skip(f"tokenizer/ was trained on Python {trained_on}'s standard library, this is "
                    f"{platform.python_version()}")
    out = train_tokenizer(default, tmp_path / "tok")
    for name in ("tokenizer.json", "tokenizer_config.json", "training.json"):
        assert filecmp.cmp(out / name, ROOT / "tokenizer" / name, shallow=False), name


def test_autotokenizer_loads_the_committed_tokenizer():
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(ROOT / "tokenizer"))
    assert len(tok) == 8192 and tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|padding|>"
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 0


def test_prepare_is_idempotent_and_crash_safe(tmp_path):
    cfg = load_config(ROOT / "configs" / "smoke.yml", {"data.output_dir": str(tmp_path)})
    first = prepare(cfg, verbose=False)
    assert not first.reused and first.meta["dtype"] == "uint16"
    manifest = [json.loads(x) for x in (first.out_dir / "files.jsonl").read_text().splitlines()]
    sides = {}
    for m in manifest:
        sides.setdefault(m["origin"], set()).add(m["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert all(m["license"] == "PSF-2.0" for m in manifest)
    tokens = np.fromfile(first.train_path, dtype=np.uint16)
    assert (tokens == first.meta["eot_id"]).sum() == first.meta["splits"]["train"]["files"]
    assert prepare(cfg, verbose=False).reused
    # a crash before meta.json is written: the folder must not be trusted
    (first.out_dir / "meta.json").unlink()
    (first.out_dir / "train.bin").write_bytes(b"half")
    again = prepare(cfg, verbose=False)
    assert not again.reused and again.train_path.stat().st_size == tokens.nbytes
    # a different filter setting is a different fingerprint, in its own folder
    smaller = {"data.output_dir": str(tmp_path), "data.max_files": 40}
    other = prepare(load_config(ROOT / "configs" / "smoke.yml", smaller), verbose=False)
    assert other.out_dir != first.out_dir and read_meta(first.out_dir) is not None


def test_prepare_can_train_its_tokenizer(tmp_path):
    cfg = load_config(ROOT / "configs" / "smoke.yml",
                      {"data.output_dir": str(tmp_path), "data.max_files": 60,
                       "tokenizer.train": True, "tokenizer.vocab_size": 512,
                       "tokenizer.path": str(tmp_path / "tok")})
    prepared = prepare(cfg, verbose=False)
    assert prepared.meta["vocab_size"] == 512 and (tmp_path / "tok" / "tokenizer.json").exists()
    assert prepare(cfg, verbose=False).reused


def test_sampler_resume_and_ranks(tmp_path):
    path = tmp_path / "train.bin"
    np.arange(5000, dtype=np.uint16).tofile(path)
    a = BatchSampler(path, batch_size=3, seq_length=32, seed=7, dtype="uint16")
    for _ in range(5):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch() for _ in range(4)]
    b = BatchSampler(path, batch_size=3, seq_length=32, seed=0, dtype="uint16")
    b.load_state_dict(torch.load(_save(state, tmp_path), weights_only=False))
    for x, y in expected:
        bx, by = b.next_batch()
        assert torch.equal(x, bx) and torch.equal(y, by)
        assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y - x, torch.ones_like(x))
    ranks = [BatchSampler(path, 3, 32, 11, rank=r, world_size=4, dtype="uint16") for r in range(4)]
    starts = [s.next_batch()[0][:, 0] for s in ranks]
    whole = BatchSampler(path, 12, 32, 11, dtype="uint16").next_batch()[0][:, 0]
    assert torch.equal(torch.cat(starts), whole)


def _save(state, tmp_path):
    path = tmp_path / "state.pt"
    torch.save(state, path)
    return path


def test_cli_data_prepare_and_tokenizer_train(tmp_path):
    "The commands the lead wires: skipped until `neoxcourse data` exists in the CLI."
    help_text = subprocess.run([sys.executable, "-m", "neoxcourse.cli", "--help"],
                               capture_output=True, text=True, cwd=ROOT).stdout
    if " data" not in help_text:
        pytest.skip("`neoxcourse data` is not wired yet")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "neoxcourse.cli", "data", "prepare",
                        "configs/smoke.yml", "--set", f"data.output_dir={tmp_path}"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.glob("stdlib-*/meta.json"))


def test_committed_tokenizer_is_never_overwritten_by_other_settings(tmp_path):
    before = (ROOT / "tokenizer" / "tokenizer.json").read_bytes()
    smoke = load_config(ROOT / "configs" / "smoke.yml", {"data.output_dir": str(tmp_path)})
    with pytest.raises(DataError, match="overwrite the committed default tokenizer.*max_files"):
        train_tokenizer(smoke)
    trained = load_config(ROOT / "configs" / "smoke.yml",
                          {"data.output_dir": str(tmp_path), "tokenizer.train": True,
                           "tokenizer.vocab_size": 512})
    with pytest.raises(DataError, match="vocab_size"):
        prepare(trained, verbose=False)
    assert (ROOT / "tokenizer" / "tokenizer.json").read_bytes() == before
