"""The GPT-NeoX export (appendix A7): the data read back by a reader written here from the layout in
FACTS.md (not the library's), document by document against the source files themselves; every config key a
GPT-NeoX key; values GPT-NeoX lacks refused or translated."""
import csv
import json
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoxcourse.config import ConfigError, load_config  # noqa: E402
from neoxcourse.neox import export_neox, neox_config, write_indexed_dataset  # noqa: E402


def read_idx_bin(prefix):
    """An independent reader of GPT-NeoX's mmap indexed dataset: magic (9 bytes), version <Q, dtype code <B,
    sequence count <Q, doc-index length <Q, int32 sizes, int64 byte pointers, int64 doc index."""
    raw = open(f"{prefix}.idx", "rb").read()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    version, code, count, doc_count = struct.unpack_from("<QBQQ", raw, 9)
    assert version == 1
    dtype = {8: np.dtype("<u2"), 4: np.dtype("<i4")}[code]
    offset = 9 + 8 + 1 + 8 + 8
    sizes = struct.unpack_from(f"<{count}i", raw, offset)
    offset += 4 * count
    pointers = struct.unpack_from(f"<{count}q", raw, offset)
    offset += 8 * count
    doc_idx = struct.unpack_from(f"<{doc_count}q", raw, offset)
    assert offset + 8 * doc_count == len(raw), "trailing bytes in the index"
    data = open(f"{prefix}.bin", "rb").read()
    docs = []
    for start_seq, end_seq in zip(doc_idx[:-1], doc_idx[1:]):
        tokens = []
        for s in range(start_seq, end_seq):
            tokens += np.frombuffer(data, dtype, sizes[s], pointers[s]).tolist()
        docs.append(tokens)
    end = pointers[-1] + sizes[-1] * dtype.itemsize if count else 0
    assert end == len(data), "the .bin file holds more than the index describes"
    return code, docs


def neox_keys():
    rows = [l for l in (ROOT / "neoxcourse" / "neox_args.tsv").read_text().splitlines() if not l.startswith("#")]
    return {r["name"]: r for r in csv.DictReader(rows, delimiter="\t")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config(ROOT / "configs" / "smoke.yml")
    out = tmp_path_factory.mktemp("neox")
    return cfg, export_neox(cfg, out)


def test_every_document_reads_back_as_its_source_file(exported):
    from tokenizers import Tokenizer
    from neoxcourse.data import stdlib_root
    cfg, ex = exported
    tok = Tokenizer.from_file(str(ex.vocab_file))
    eot = tok.token_to_id("<|endoftext|>")
    data_dir = Path(json.loads((ex.out_dir / "export.json").read_text())["data"])
    manifest = [json.loads(l) for l in (data_dir / "files.jsonl").read_text().splitlines() if l.strip()]
    for prefix, split in ((ex.train_prefix, "train"), (ex.valid_prefix, "val")):
        code, docs = read_idx_bin(prefix)
        assert code == 8                                   # vocabulary 8192 < 65500: uint16
        files = [m for m in manifest if m["split"] == split]
        assert len(docs) == len(files) > 0
        for doc, meta in zip(docs, files):
            assert doc[-1] == eot and len(doc) == meta["tokens"] + 1
            source = stdlib_root() / meta["origin"].removeprefix("stdlib/")
            text = source.read_bytes().decode("utf-8")
            assert doc[:-1] == tok.encode(text, add_special_tokens=False).ids, meta["origin"]
        flat = np.fromfile(data_dir / f"{split}.bin", dtype=np.uint16).tolist()
        assert sum(docs, []) == flat


def test_every_exported_key_is_a_gpt_neox_key(exported):
    _, ex = exported
    args = neox_keys()
    written = yaml.safe_load(ex.config.read_text())
    unknown = [k for k in written if k.replace("-", "_") not in args]
    assert not unknown, unknown
    assert "neoxcourse" not in written
    assert written["tokenizer_type"] == "HFTokenizer" and written["vocab_file"] == str(ex.vocab_file)
    assert written["lr-decay-style"] in args["lr_decay_style"]["allowed_values"].split("|")
    assert written["optimizer"]["type"].lower() in args["optimizer_type"]["allowed_values"].split("|")
    assert "weight_decay" not in written["optimizer"]["params"]
    for key in ("train_data_paths", "valid_data_paths", "test_data_paths"):
        assert Path(written[key][0] + ".bin").exists() and Path(written[key][0] + ".idx").exists()
    assert written["train_batch_size"] == 8 and written["train_micro_batch_size_per_gpu"] == 4
    assert written["gradient_accumulation_steps"] == 2 and written["num_gpus"] == 1      # 8 = 4 x 2 x 1 GPU
    assert f"CUDA_VISIBLE_DEVICES=0 python ./deepy.py train.py {ex.config}" in ex.config.read_text()
    assert "pip install 'wandb<0.28'" in ex.config.read_text()      # what deepy.py needs beside GPT-NeoX


def neox_derived_batch(d: dict, gpus: int) -> tuple:
    """GPT-NeoX's NeoXArgs.calculate_derived at the commit of neox_args.tsv, restated: gradient_accumulation_steps
    defaults to 1 (deepspeed_args.py), three given values are kept, then their product is asserted."""
    train, micro, acc = d.get("train_batch_size"), d.get("train_micro_batch_size_per_gpu"), d.get("gradient_accumulation_steps", 1)
    mp, pp = d.get("model_parallel_size", 1), max(d.get("pipe_parallel_size", 0), 1)
    dp = gpus / pp / mp
    assert train == micro * acc * dp, f"{train} != {micro} * {acc} * {dp}"
    return train, micro, acc


@pytest.mark.parametrize("config", ["smoke.yml", "t4.yml"])
@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_batch_keys_load_on_the_gpus_named(config, gpus):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config(ROOT / "configs" / config)
        d, notes = neox_config(cfg, "a", "b", "c", "d", num_gpus=gpus)
        from_set = neox_config(load_config(ROOT / "configs" / config, {"num_gpus": gpus}), "a", "b", "c", "d")[0]
    assert from_set == d and d["num_gpus"] == gpus                  # `--set num_gpus=N` says the same
    train, micro, acc = neox_derived_batch(d, gpus)
    assert train == cfg.training.global_batch_size                   # the recipe's batch on every count
    assert micro <= cfg.training.micro_batch_size and (micro < cfg.training.micro_batch_size) == bool(
        [n for n in notes if "micro-batch" in n])
    if gpus != 1:                                                    # the one-GPU export elsewhere fails
        one = neox_config(cfg, "a", "b", "c", "d", num_gpus=1)[0]
        with pytest.raises(AssertionError):
            neox_derived_batch(one, gpus)


def test_t4_recipe_batches():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t4 = load_config(ROOT / "configs" / "t4.yml")
    got = [neox_derived_batch(neox_config(t4, "a", "b", "c", "d", num_gpus=n)[0], n) for n in (1, 2, 8)]
    assert got == [(64, 32, 2), (64, 32, 1), (64, 8, 1)]
    with pytest.raises(ConfigError, match="num_gpus 3"):
        neox_config(t4, "a", "b", "c", "d", num_gpus=3)


def test_exported_merges_are_strings_that_old_and_new_tokenizers_read(exported):
    from tokenizers import Tokenizer
    _, ex = exported
    merges = json.loads(ex.vocab_file.read_text(encoding="utf-8"))["model"]["merges"]
    assert merges and all(isinstance(m, str) and len(m.split(" ")) == 2 for m in merges)
    source = json.loads((ROOT / "tokenizer" / "tokenizer.json").read_text(encoding="utf-8"))["model"]["merges"]
    assert [m.split(" ") if isinstance(m, str) else m for m in source] == [m.split(" ") for m in merges]
    text = (ROOT / "neoxcourse" / "neox.py").read_text()
    assert (Tokenizer.from_file(str(ex.vocab_file)).encode(text).ids
            == Tokenizer.from_file(str(ROOT / "tokenizer" / "tokenizer.json")).encode(text).ids)


def test_int32_when_the_vocabulary_is_large(tmp_path):
    docs = [[70000, 3, 65535], [1], list(range(100))]
    info = write_indexed_dataset(tmp_path / "big_text_document", docs, vocab_size=70001)
    code, back = read_idx_bin(tmp_path / "big_text_document")
    assert code == 4 and back == docs and info["tokens"] == 104


def test_values_gpt_neox_lacks_are_refused_or_translated():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wsd = load_config(ROOT / "configs" / "smoke.yml", {"lr-decay-style": "wsd"})
        muon = load_config(ROOT / "configs" / "smoke.yml", {"optimizer.type": "muon"})
        with pytest.raises(ConfigError, match="not a GPT-NeoX schedule"):
            neox_config(wsd, "a", "b", "c", "d")
        d, notes = neox_config(wsd, "a", "b", "c", "d", unsupported="closest")
    assert d["lr-decay-style"] == "cosine" and any("wsd" in n for n in notes)
    with pytest.raises(ConfigError, match="no GPT-NeoX counterpart"):
        neox_config(muon, "a", "b", "c", "d")


def test_command_line(tmp_path):
    import subprocess
    run = lambda *a: subprocess.run([sys.executable, "-m", "neoxcourse.cli", "export-neox", *a], cwd=ROOT,
                                    capture_output=True, text=True)
    r = run("configs/smoke.yml", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "neox.yml").exists() and "neox.yml" in r.stdout
    r = run("configs/smoke.yml", str(tmp_path / "wsd"), "--set", "lr-decay-style=wsd")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not a GPT-NeoX schedule" in r.stderr
    assert not (tmp_path / "wsd").exists()       # refused before anything was written
