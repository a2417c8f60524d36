"""Check appendix A7's export against EleutherAI GPT-NeoX's own code, and write bench/results/neox_check.json.

    python bench/neox_check.py --neox /path/to/gpt-neox --neox-python /path/to/neox-env/bin/python

`--neox` is a checkout of https://github.com/EleutherAI/gpt-neox (the commit `neoxcourse/neox_args.tsv` was
read from is the one the course is written against); `--neox-python` a Python that has GPT-NeoX's own
requirements (its pinned transformers 4.38 with tokenizers < 0.19, numpy < 2, deepspeed, wandb < 0.28,
sentencepiece). This script runs in the course's environment and starts the other Python for every step that
needs GPT-NeoX's code:

1. exports the smoke recipe (data, tokenizer, YAML) and writes the T4 recipe's YAML, each for 1, 2 and 8 GPUs;
2. loads every YAML with `NeoXArgs.consume_deepy_args` and `get_deepspeed_main_args` (what `deepy.py` does
   before it launches), then with `NeoXArgs.consume_neox_args` + `configure_distributed_args` +
   `build_tokenizer` (what `train.py` does in each process), with the GPU count given two ways: a DeepSpeed
   hostfile of N slots, and `torch.cuda.device_count()` returning N (what CUDA_VISIBLE_DEVICES gives);
3. reads the exported data with GPT-NeoX's `MMapIndexedDataset` and compares every document with the
   course's token files; builds GPT-NeoX's tokenizer (`build_tokenizer`, HFTokenizer) from the exported file
   and compares its ids with the course's on Python snippets;
4. writes a course model in GPT-NeoX's checkpoint layout (pipeline layers, as `pipe_parallel_size: 1` saves),
   converts it with GPT-NeoX's `tools/ckpts/convert_neox_to_hf.py`, loads the result with the course's
   evaluation loader and compares logits; a model whose every next token is end-of-text checks that a
   completion stops there.

What it cannot do on a machine without GPUs (train a step under DeepSpeed) is listed under `not_run`.
"""
import argparse
import base64
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import config_field, header, write_result  # noqa: E402

SNIPPETS = ["def add(a, b):\n    return a + b\n",
            "class Stack:\n\tdef __init__(self):\n\t\tself.items = []  # naïve, ünïcødé 🐍\n",
            "import os\nprint(os.path.join('a', \"b\"))\r\n<|endoftext|>x = {'k': [1, 2.5e-3]}\n",
            "    \n\n        if x is None:  raise ValueError(f'{x!r} bad')\n"]
GPU_COUNTS = (1, 2, 8)

# --- the part that runs inside GPT-NeoX's Python --------------------------------------------------------
INSIDE = r'''
import base64, json, os, sys, io, contextlib, logging
logging.disable(logging.WARNING)
neox, task = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, neox); os.chdir(neox)
import torch
from megatron.neox_arguments import NeoXArgs
out = {}

def derived(a):
    keys = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "global_num_gpus",
            "lr", "min_lr", "lr_decay_style", "train_iters", "lr_decay_iters", "warmup", "optimizer_type", "optimizer",
            "weight_decay", "gradient_clipping", "precision", "fp16", "num_layers", "hidden_size",
            "num_attention_heads", "seq_length", "max_position_embeddings", "pos_emb", "rotary_pct",
            "rotary_emb_base", "gpt_j_residual", "no_weight_tying", "padded_vocab_size", "tokenizer_type",
            "use_wandb", "wandb_project", "wandb_group", "num_gpus", "intermediate_size")
    return {k: getattr(a, k, None) for k in keys}

def load(yml, n, how):
    "deepy.py's steps, then train.py's; `how`: 'hostfile' or 'device_count'."
    argv = ["train.py", yml]
    real_count = torch.cuda.device_count
    if how == "hostfile":
        host = os.path.join(task["work"], f"hostfile{n}")
        open(host, "w").write(f"localhost slots={n}\n")
        argv += ["--hostfile", host]
    else:
        torch.cuda.device_count = lambda: n
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            a = NeoXArgs.consume_deepy_args(argv)                      # deepy.py
            main_args = a.get_deepspeed_main_args()
        i = main_args.index("--megatron_config")
        megatron = json.loads(base64.urlsafe_b64decode(main_args[i + 1]).decode())
        launcher = main_args[:main_args.index("train.py")]
        with contextlib.redirect_stdout(io.StringIO()):
            b = NeoXArgs.consume_neox_args(input_args=["--megatron_config", main_args[i + 1]])   # train.py
            b.configure_distributed_args()
            b.build_tokenizer()
        return {"ok": True, "launcher_args": launcher, "deepy": derived(a), "train": derived(b),
                "megatron_config_keys": len(megatron)}
    except BaseException as e:
        return {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[-400:]}"}
    finally:
        torch.cuda.device_count = real_count

if task["kind"] == "args":
    out = {f"{name} {n} {how}": load(yml, n, how)
           for name, n, yml in task["ymls"] for how in ("hostfile", "device_count")}
elif task["kind"] == "data":
    import numpy as np
    from megatron.data.indexed_dataset import MMapIndexedDataset
    from megatron.tokenizer import build_tokenizer
    for split, prefix in task["prefixes"].items():
        ds = MMapIndexedDataset(prefix, skip_warmup=True)
        ref = np.load(task["course_docs"][split])
        bounds = np.cumsum(np.concatenate([[0], ref["lengths"]]))
        docs = len(ds.doc_idx) - 1
        equal = sum(int(np.array_equal(ds.get(d).astype(np.int64), ref["tokens"][bounds[d]:bounds[d + 1]]))
                    for d in range(min(docs, len(ref["lengths"]))))
        out[split] = {"documents_neox": docs, "documents_course": int(len(ref["lengths"])), "documents_equal": equal,
                      "dtype": str(ds._index.dtype), "tokens": int(ds.sizes.sum())}
    class Args: pass
    args = Args()
    args.rank, args.tokenizer_type, args.vocab_file = 0, "HFTokenizer", task["vocab_file"]
    args.make_vocab_size_divisible_by, args.model_parallel_size = 128, 1
    with contextlib.redirect_stdout(io.StringIO()):
        tok = build_tokenizer(args)
    out["tokenizer"] = {"ids": [tok.tokenize(s) for s in task["snippets"]], "eod": tok.eod,
                        "pad": getattr(tok, "pad_id", None),
                        "vocab_size": tok.vocab_size, "padded_vocab_size": args.padded_vocab_size}
import importlib.metadata as md
out["versions"] = {p: md.version(p) for p in ("torch", "transformers", "tokenizers", "deepspeed", "wandb", "numpy")}
import wandb
out["versions"]["wandb.util.generate_id"] = hasattr(wandb.util, "generate_id")
print("@@RESULT@@" + json.dumps(out, default=str))
'''


def inside(python: str, neox: str, task: dict) -> dict:
    "Run INSIDE with GPT-NeoX's Python; its JSON result."
    r = subprocess.run([python, "-W", "ignore", "-c", INSIDE, neox, json.dumps(task)], capture_output=True, text=True,
                       timeout=1800, env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin", "HOME": "/tmp",
                                          "WANDB_MODE": "offline"})
    marker = [l for l in r.stdout.splitlines() if l.startswith("@@RESULT@@")]
    if r.returncode or not marker:
        raise RuntimeError(f"GPT-NeoX's Python failed ({r.returncode}): {(r.stderr or r.stdout)[-3000:]}")
    return json.loads(marker[-1][len("@@RESULT@@"):])


def neox_commit(neox: Path) -> str:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=neox, capture_output=True, text=True)
    if r.returncode == 0: return r.stdout.strip()
    stamp = neox / "COMMIT"
    return stamp.read_text().strip() if stamp.exists() else "unknown (no .git, no COMMIT file)"


# --- checkpoints in GPT-NeoX's layout ----------------------------------------------------------------------
def write_neox_checkpoint(model, directory: Path) -> Path:
    "The course model as GPT-NeoX saves a pipeline model (`layer_NN-model_00-model_states.pt`, 'new' MLP names)."
    directory.mkdir(parents=True, exist_ok=True)
    s = {k: v.detach().clone() for k, v in model.state_dict().items()}
    L = model.config.num_layers
    save = lambda i, d: torch.save(d, directory / f"layer_{i:02d}-model_00-model_states.pt")
    save(0, {"word_embeddings.weight": s["gpt_neox.embed_in.weight"]})
    names = {"input_layernorm": "input_layernorm", "post_attention_layernorm": "post_attention_layernorm",
             "attention.query_key_value": "attention.query_key_value", "attention.dense": "attention.dense",
             "mlp.linear1": "mlp.dense_h_to_4h", "mlp.linear2": "mlp.dense_4h_to_h"}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        save(i + 2, {f"{neox}.{w}": s[f"{p}{course}.{w}"]
                     for neox, course in names.items() for w in ("weight", "bias")})
    save(L + 3, {"norm.weight": s["gpt_neox.final_layer_norm.weight"],
                 "norm.bias": s["gpt_neox.final_layer_norm.bias"]})
    save(L + 4, {"final_linear.weight": s["lm_head.weight"]})
    return directory


def convert(python: str, neox: str, ckpt: Path, yml: Path, out: Path) -> str:
    r = subprocess.run([python, "-W", "ignore", "tools/ckpts/convert_neox_to_hf.py", "--input_dir", str(ckpt),
                        "--config_file", str(yml), "--output_dir", str(out), "--precision", "fp32",
                        "--architecture", "neox"], cwd=neox, capture_output=True, text=True, timeout=900,
                       env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin", "HOME": "/tmp",
                            "PYTHONPATH": neox})
    if r.returncode: raise RuntimeError(f"convert_neox_to_hf.py failed: {(r.stderr or r.stdout)[-3000:]}")
    return (r.stdout + r.stderr)[-1500:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--neox", required=True, help="a GPT-NeoX checkout")
    ap.add_argument("--neox-python", required=True, help="a Python with GPT-NeoX's requirements")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "neox_check.json"))
    args = ap.parse_args(argv)
    from neoxcourse.config import load_config
    from neoxcourse.tokenizer import prepare
    from neoxcourse.evaluate import load_for_evaluation
    from neoxcourse.generate import complete, generate
    from neoxcourse.model import GPTNeoX
    from neoxcourse.neox import export_neox, neox_config, prepared_documents
    from neoxcourse.tokenizer import load_tokenizer
    neox = str(Path(args.neox).resolve())
    work = Path(tempfile.mkdtemp(prefix="neox-check-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smoke, t4 = load_config(ROOT / "configs" / "smoke.yml"), load_config(ROOT / "configs" / "t4.yml")
    result = {**header("configs/smoke.yml"),
              "configs": [config_field("configs/smoke.yml"), config_field("configs/t4.yml")],
              "gpt_neox_commit": neox_commit(Path(neox)), "not_run": [
                  "training steps under DeepSpeed (no GPU here): deepy.py stops after get_deepspeed_main_args, "
                  "before deepspeed.launcher.runner.main",
                  "DeeperSpeed (GPT-NeoX's pinned fork, from GitHub): deepspeed from PyPI provides the same "
                  "launcher and runner modules NeoXArgs imports"]}
    # 1. exports: the smoke recipe whole (1, 2, 8 GPUs), the T4 recipe's YAML beside the smoke data and tokenizer
    prepared = prepare(smoke, verbose=False)
    ymls = []
    for n in GPU_COUNTS:
        ex = export_neox(smoke, work / f"smoke-{n}gpu", prepared=prepared, num_gpus=n)
        ymls.append(("smoke", n, str(ex.config)))
        d, _ = neox_config(t4, ex.train_prefix, ex.valid_prefix, ex.vocab_file, work / f"t4-{n}gpu" / "checkpoints",
                           tokenizer_size=load_tokenizer(smoke).backend_tokenizer.get_vocab_size(), num_gpus=n)
        t4_yml = work / f"t4-{n}gpu" / "neox.yml"
        t4_yml.parent.mkdir(parents=True, exist_ok=True)
        import yaml
        t4_yml.write_text(yaml.safe_dump(d, sort_keys=False))
        ymls.append(("t4", n, str(t4_yml)))
    ex = export_neox(smoke, work / "smoke-1gpu", prepared=prepared, num_gpus=1)
    # 2. NeoXArgs as deepy.py and train.py load them
    loaded = inside(args.neox_python, neox, {"kind": "args", "ymls": ymls, "work": str(work)})
    versions = loaded.pop("versions")
    result["neox_environment"] = versions
    intended = {"smoke": smoke, "t4": t4}
    checks = {}
    for key, r in loaded.items():
        name, n, how = key.split()
        cfg = intended[name]
        if not r["ok"]:
            checks[key] = r; continue
        t = r["train"]
        want = {"train_batch_size": cfg.training.global_batch_size, "global_num_gpus": int(n),
                "lr": cfg.optimizer.lr, "lr_decay_style": cfg.schedule.lr_decay_style,
                "train_iters": cfg.training.train_iters, "min_lr": cfg.schedule.min_lr,
                "warmup": cfg.schedule.warmup, "lr_decay_iters": cfg.schedule.lr_decay_iters,
                "weight_decay": cfg.optimizer.weight_decay, "gradient_clipping": cfg.training.gradient_clipping,
                "optimizer": {"type": "Adam", "params": {"lr": cfg.optimizer.lr, "betas": list(cfg.optimizer.betas),
                                                         "eps": cfg.optimizer.eps}},
                "rotary_emb_base": cfg.model.rotary_emb_base,
                "max_position_embeddings": cfg.model.max_position_embeddings,
                "num_layers": cfg.model.num_layers, "hidden_size": cfg.model.hidden_size,
                "num_attention_heads": cfg.model.num_attention_heads, "seq_length": cfg.model.seq_length,
                "rotary_pct": cfg.model.rotary_pct, "gpt_j_residual": cfg.model.use_parallel_residual,
                "no_weight_tying": not cfg.model.tie_word_embeddings, "padded_vocab_size": cfg.model.vocab_size,
                "precision": "fp16" if cfg.training.precision == "fp16" else t["precision"]}
        wrong = {k: {"neox": t[k], "course": v} for k, v in want.items() if t[k] != v}
        product = t["train_micro_batch_size_per_gpu"] * t["gradient_accumulation_steps"] * int(n)
        group_suffixes = len(t["wandb_group"].split("_")) - len(cfg.wandb.group.split("_")) if t["use_wandb"] else None
        checks[key] = {"ok": not wrong and product == t["train_batch_size"], "mismatches": wrong,
                       "wandb_group_random_suffixes": group_suffixes,
                       "batch": f"{t['train_batch_size']} = {t['train_micro_batch_size_per_gpu']} x "
                                f"{t['gradient_accumulation_steps']} x {n}",
                       "launcher_args": r["launcher_args"], "derived": t}
    result["neox_args"] = checks
    # 3. data and tokenizer
    docs = {}
    for split, neox_split in (("train", "train"), ("val", "valid")):
        ds = prepared_documents(prepared, split)
        path = work / f"course_{split}.npz"
        np.savez(path, tokens=np.concatenate(ds).astype(np.int64), lengths=np.array([len(d) for d in ds]))
        docs[neox_split] = str(path)
    data = inside(args.neox_python, neox, {"kind": "data", "prefixes": {"train": str(ex.train_prefix),
                                           "valid": str(ex.valid_prefix)}, "course_docs": docs,
                                           "vocab_file": str(ex.vocab_file), "snippets": SNIPPETS})
    data.pop("versions")
    course_tok = load_tokenizer(smoke)
    course_ids = [course_tok(s, add_special_tokens=False)["input_ids"] for s in SNIPPETS]
    neox_tok = data.pop("tokenizer")
    result["data"] = {k: {**v, "ok": v["documents_neox"] == v["documents_course"] == v["documents_equal"]}
                      for k, v in data.items()}
    result["tokenizer"] = {"snippets": len(SNIPPETS), "ids_equal": neox_tok["ids"] == course_ids,
                           "tokens": sum(map(len, course_ids)), "neox_eod": neox_tok["eod"],
                           "neox_pad": neox_tok["pad"],
                           "course_eot": course_tok.eos_token_id, "course_pad": course_tok.pad_token_id,
                           "neox_padded_vocab_size": neox_tok["padded_vocab_size"],
                           "course_vocab_size": smoke.model.vocab_size}
    result["tokenizer"]["ok"] = (result["tokenizer"]["ids_equal"] and neox_tok["eod"] == course_tok.eos_token_id
                                 and neox_tok["padded_vocab_size"] == smoke.model.vocab_size)
    # 4. a checkpoint in GPT-NeoX's layout, converted by GPT-NeoX's converter, read back by the course
    torch.manual_seed(0)
    model = GPTNeoX(smoke.model).eval()
    hf = work / "hf"
    log = convert(args.neox_python, neox, write_neox_checkpoint(model, work / "global_step10"), ex.config, hf)
    back, tok = load_for_evaluation(smoke, hf)
    hf_config = json.loads((hf / "config.json").read_text())
    # the converter casts to fp16 when the YAML enables fp16 (`convert` is not handed --precision at this
    # commit), so the course model's own weights rounded to that dtype are what it must reproduce
    saved = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(hf_config.get("torch_dtype"), torch.float32)
    rounded = GPTNeoX(smoke.model).eval()
    rounded.load_state_dict({k: v.to(saved).float() for k, v in model.state_dict().items()})
    tokens = torch.tensor([course_ids[0] + course_ids[1]])
    with torch.no_grad():
        diff = (rounded(tokens) - back.float()(tokens)).abs().max().item()
        diff_unrounded = (model(tokens) - back.float()(tokens)).abs().max().item()
    tok_file = hf / "tokenizer_config.json"
    tok_config = json.loads(tok_file.read_text()) if tok_file.exists() else {}
    result["checkpoint"] = {"files": sorted(p.name for p in hf.iterdir()),
                            "saved_dtype": hf_config.get("torch_dtype"),
                            "max_abs_logit_diff": diff, "max_abs_logit_diff_to_fp32_weights": diff_unrounded,
                            "config_eos_token_id": hf_config.get("eos_token_id"),
                            "config_bos_token_id": hf_config.get("bos_token_id"),
                            "tokenizer_config_special_tokens": {k: tok_config.get(k) for k in
                                                                ("eos_token", "bos_token", "pad_token", "unk_token")},
                            "evaluation_eos_id": tok.eos_token_id, "evaluation_pad_id": tok.pad_token_id,
                            "converter_log_tail": log[-400:],
                            "ok": diff < 1e-5 and tok.eos_token_id == course_tok.eos_token_id}
    # a model whose every next token is end-of-text: the completion must stop at once (empty), not print it
    with torch.no_grad():
        model.gpt_neox.final_layer_norm.weight.zero_()
        model.gpt_neox.final_layer_norm.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[course_tok.eos_token_id] = 1.0
    hf_eot = work / "hf_eot"
    convert(args.neox_python, neox, write_neox_checkpoint(model, work / "global_step20"), ex.config, hf_eot)
    back, tok = load_for_evaluation(smoke, hf_eot)
    from transformers import AutoTokenizer
    as_converted = AutoTokenizer.from_pretrained(str(hf_eot))          # the folder's tokenizer, unfixed
    prompt = torch.tensor([course_tok("def f(x):\n")["input_ids"]])
    runs = {}
    for name, t in (("evaluation_loader", tok), ("folder_tokenizer_as_converted", as_converted)):
        eos = t.eos_token_id
        out = generate(back.float(), prompt, 8, stop=lambda ids, eos=eos: eos is not None and ids[-1] == eos)
        new_ids = out[0, prompt.shape[1]:].tolist()
        runs[name] = {"eos_id": eos, "new_tokens": len(new_ids), "text": t.decode(new_ids),
                      "complete()": complete(back.float(), t, "def f(x):\n", max_new_tokens=8)}
    result["completion_stops"] = {**runs, "ok": runs["evaluation_loader"]["new_tokens"] == 1
                                  and runs["evaluation_loader"]["complete()"] == ""}
    parts = [c["ok"] for c in checks.values()] + [v["ok"] for v in result["data"].values()] + [
        result["tokenizer"]["ok"], result["checkpoint"]["ok"], result["completion_stops"]["ok"]]
    result["ok"] = all(parts)
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("ok", "gpt_neox_commit", "neox_environment")}, indent=1))
    for key, c in checks.items():
        print(f"{key:22} {'ok' if c['ok'] else 'FAIL'}  {c.get('batch', c.get('error'))}  "
              f"{c.get('mismatches') or ''}")
    print("data", {k: v["ok"] for k, v in result["data"].items()}, "tokenizer", result["tokenizer"]["ok"],
          "checkpoint", result["checkpoint"]["ok"], f"{diff:.1e}", "stops", result["completion_stops"])
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
