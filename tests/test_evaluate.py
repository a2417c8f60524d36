"""Chapter 08's evaluation on checkpoints the course did not make: a `transformers` GPT-NeoX with a
different (character-level) tokenizer, and a course training checkpoint; W&B offline, read back."""
import math
import random
from fractions import Fraction

import pytest
import torch

from neoxcourse.config import load_config
from neoxcourse.evaluate import (evaluate, exact_pass_at_k, format_metrics, pass_at_k, read_wandb_table,
                                 token_metrics, encode_documents, validation_texts)
from neoxcourse.tracking import read_run

FAST_EVAL = {"evaluation.val_batches": 2, "evaluation.line_completion_samples": 3,
             "evaluation.humaneval_problems": 2, "evaluation.humaneval_samples": 3,
             "evaluation.max_new_tokens": 12, "evaluation.ks": [1, 2, 10], "wandb.mode": "offline"}


def smoke_config(tmp_path, **extra):
    return load_config("configs/smoke.yml", {"save": str(tmp_path / "runs"), **FAST_EVAL, **extra})


@pytest.fixture(autouse=True)
def at_root(monkeypatch, request):
    monkeypatch.chdir(request.config.rootpath)


@pytest.fixture
def foreign_checkpoint(tmp_path):
    """A GPT-NeoX written by transformers itself, with a byte-level character tokenizer."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    from neoxcourse.tokenizer import to_transformers, train_char
    tokenizer = to_transformers(train_char())
    config = GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                           rotary_pct=0.25, use_parallel_residual=True, tie_word_embeddings=False,
                           eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config)
    path = tmp_path / "foreign"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_pass_at_k_equals_the_exact_estimator_on_random_cases():
    rng = random.Random(0)
    for _ in range(3000):
        n = rng.randint(1, 500)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert abs(pass_at_k(n, c, k) - float(exact_pass_at_k(n, c, k))) < 1e-12, (n, c, k)
    assert exact_pass_at_k(200, 1, 100) == Fraction(1, 2)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)                      # k > n: undefined, never reported


def test_canonical_solutions_score_pass_at_1_of_one():
    from neoxcourse.evaluate import humaneval_problems, score_humaneval
    from neoxcourse.sandbox import SandboxLimits
    problems = humaneval_problems()
    canonical = {tid: [p["canonical_solution"]] for tid, p in problems.items()}
    metrics, rows, samples = score_humaneval(problems, canonical, ks=(1, 10), limits=SandboxLimits(timeout=10))
    assert metrics == {"humaneval_pass@1": 1.0, "humaneval_problems": 164, "humaneval_samples_per_problem": 1}
    assert len(rows) == 164 and all(s["passed"] for s in samples)


def test_evaluate_any_hf_checkpoint_logs_offline_and_reads_back(tmp_path, foreign_checkpoint):
    cfg = smoke_config(tmp_path)
    metrics = evaluate(cfg, foreign_checkpoint)
    for name in ["loss", "perplexity", "bits_per_byte", "top1_accuracy", "top5_accuracy",
                 "line_exact_match", "line_edit_similarity", "line_bleu", "humaneval_pass@1",
                 "humaneval_pass@2"]:
        assert name in metrics and math.isfinite(metrics[name]), name
    assert "humaneval_pass@10" not in metrics                  # k = 10 > n = 3
    assert metrics["humaneval_problems"] == 2 and metrics["line_samples"] == 3
    # bits per byte is the summed loss over ln 2 x bytes
    assert metrics["bits_per_byte"] == pytest.approx(
        metrics["loss"] * metrics["tokens"] / (math.log(2) * metrics["bytes"]), rel=1e-12)
    # a character-level tokenizer: (about) one token a byte, so bits per byte ~ loss / ln 2
    assert metrics["bytes"] == pytest.approx(metrics["tokens"], rel=0.05)
    record = read_run(metrics["wandb_run_dir"])
    assert record.summary["eval/bits_per_byte"] == pytest.approx(metrics["bits_per_byte"])
    assert record.summary["eval/humaneval_pass@1"] == metrics["humaneval_pass@1"]
    samples = read_wandb_table(metrics["wandb_run_dir"], "eval_tables/humaneval_samples")
    assert len(samples) == 6 and {"prompt", "completion", "passed"} <= set(samples[0])
    problems = read_wandb_table(metrics["wandb_run_dir"], "eval_tables/humaneval_problems")
    assert [p["task_id"] for p in problems] == ["HumanEval/0", "HumanEval/1"]
    text = format_metrics(metrics)
    assert "bits_per_byte" in text and "humaneval_pass@1" in text


def test_evaluate_a_course_checkpoint_folder(tmp_path):
    from neoxcourse.checkpoint import save_checkpoint
    from neoxcourse.model import GPTNeoX
    cfg = smoke_config(tmp_path)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ckpts", 5, GPTNeoX(cfg.model), {}, cfg)
    metrics = evaluate(cfg, tmp_path / "ckpts", log=False)    # the folder: its latest step_N
    assert metrics["loss"] == pytest.approx(math.log(cfg.model.vocab_size), rel=0.1)  # untrained
    assert "wandb_run_dir" not in metrics


def test_bits_per_byte_across_tokenizers_measure_the_same_text(tmp_path, foreign_checkpoint):
    """The same validation text, two tokenizers: the token counts differ, the byte counts agree."""
    from neoxcourse.evaluate import load_for_evaluation
    cfg = smoke_config(tmp_path)
    texts = validation_texts(cfg)[:1]
    counts = {}
    for name, ckpt in [("char", foreign_checkpoint), ("bpe", None)]:
        if ckpt is None:
            from neoxcourse.model import GPTNeoX
            from neoxcourse.tokenizer import load_tokenizer
            model, tokenizer = GPTNeoX(cfg.model).eval(), load_tokenizer(cfg)
        else:
            model, tokenizer = load_for_evaluation(cfg, ckpt)
        ids = encode_documents(tokenizer, texts)
        seq = 32
        usable = (len(ids) - 1) // seq * seq              # all windows: the whole text is scored
        m = token_metrics(model, tokenizer, ids[:usable + 1], seq, batch_size=8)
        counts[name] = (m["tokens"], m["bytes"])
    assert counts["char"][0] > 2 * counts["bpe"][0]         # BPE tokens hold several bytes
    total = len(texts[0].encode("utf-8"))
    for tokens, nbytes in counts.values():
        assert total - 400 <= nbytes <= total             # minus the tail that fills no window


def test_cli_eval_prints_every_metric_by_name(tmp_path, foreign_checkpoint, capsys):
    from neoxcourse.cli import main
    code = main(["eval", "configs/smoke.yml", "--checkpoint", str(foreign_checkpoint),
                 "--set", f"save={tmp_path / 'runs'}", "--set", "wandb.mode=disabled",
                 "--set", "evaluation.val_batches=1", "--set", "evaluation.line_completion_samples=2",
                 "--set", "evaluation.humaneval_problems=1", "--set", "evaluation.max_new_tokens=8"])
    out = capsys.readouterr().out
    assert code == 0
    for name in ["loss", "perplexity", "bits_per_byte", "top1_accuracy", "top5_accuracy",
                 "line_exact_match", "line_edit_similarity", "line_bleu", "humaneval_pass@1"]:
        assert f"\n{name} " in "\n" + out, name


def test_humaneval_can_be_skipped(tmp_path, foreign_checkpoint):
    cfg = smoke_config(tmp_path, **{"evaluation.humaneval_problems": 0})
    metrics = evaluate(cfg, foreign_checkpoint, log=False)
    assert "humaneval_pass@1" not in metrics and "bits_per_byte" in metrics
