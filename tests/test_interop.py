"""Interoperability with the tools the course hands its work to: a course checkpoint loads in the installed
transformers with the same logits; a folder as GPT-NeoX's converter writes it (tokenizer without special
tokens, `eos_token_id: 2`) is evaluated with the course's end-of-text and padding ids; line edit similarity is
CodeXGLUE's `fuzz.ratio` on real lines. The oldest supported versions run the same tests in the `lowest` CI job."""
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoxcourse.config import load_config  # noqa: E402
from neoxcourse.model import GPTNeoX, save_pretrained  # noqa: E402


@pytest.fixture(scope="module")
def smoke():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_config(ROOT / "configs" / "smoke.yml")


@pytest.mark.parametrize("tied", [False, True])
def test_checkpoint_logits_after_auto_from_pretrained(smoke, tmp_path, tied):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    cfg = replace(smoke.model, tie_word_embeddings=tied, num_layers=1)
    torch.manual_seed(0)
    ours = GPTNeoX(cfg).eval()
    save_pretrained(ours, tmp_path)
    names = set(load_file(str(tmp_path / "model.safetensors")))
    assert ("embed_out.weight" in names) is not tied and "lm_head.weight" not in names
    theirs, info = AutoModelForCausalLM.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info   # a random head would be missing
    tokens = torch.randint(0, cfg.vocab_size, (2, 33), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (theirs.eval()(tokens).logits - ours(tokens)).abs().max().item()
    assert diff < 1e-5, diff


def converted_folder(vocab_file: Path, out: Path) -> Path:
    "What GPT-NeoX's convert_neox_to_hf.py saves beside the weights: the run's tokenizer.json, no special tokens."
    from transformers import PreTrainedTokenizerFast
    PreTrainedTokenizerFast(tokenizer_file=str(vocab_file)).save_pretrained(str(out))
    return out


def test_converted_folder_gets_the_course_special_tokens(smoke, tmp_path, capsys):
    from neoxcourse.evaluate import evaluation_tokenizer
    folder = converted_folder(ROOT / "tokenizer" / "tokenizer.json", tmp_path / "hf")
    from transformers import AutoTokenizer
    raw = AutoTokenizer.from_pretrained(str(folder))
    assert raw.eos_token_id is None and raw.pad_token_id is None      # the converter names none
    tok = evaluation_tokenizer(smoke, folder)
    assert (tok.eos_token_id, tok.pad_token_id, tok.bos_token_id) == (0, 1, 0)
    assert "the folder named none" in capsys.readouterr().out
    assert tok.decode([5, 0], skip_special_tokens=True) == raw.decode([5])
    empty = tmp_path / "weights-only"
    empty.mkdir()
    tok = evaluation_tokenizer(smoke, empty)
    assert (tok.eos_token_id, tok.pad_token_id) == (0, 1)
    assert "has no tokenizer.json" in capsys.readouterr().out


def lcs(a: str, b: str) -> int:
    "Length of a longest common subsequence (dynamic programming, one row at a time)."
    row = [0] * (len(b) + 1)
    for ca in a:
        prev_diag, row[0] = 0, 0
        for j, cb in enumerate(b, 1):
            prev_diag, row[j] = row[j], prev_diag + 1 if ca == cb else max(row[j], row[j - 1])
    return max(row)


def real_line_pairs() -> list:
    "Indented references and long lines from the standard library, with predictions a model might give."
    import textwrap
    from neoxcourse.data import stdlib_root
    lines = []
    for name in ("json/decoder.py", "textwrap.py", "argparse.py"):
        text = (stdlib_root() / name).read_text(encoding="utf-8")
        lines += [l for l in text.split("\n") if l.strip()]
    indented = [l for l in lines if l.startswith("        ") and 20 < len(l) < 80][:15]
    topics = (stdlib_root() / "pydoc_data" / "topics.py").read_text(encoding="utf-8").split("\n")
    long = [l for l in topics if len(l) > 110][:5]                     # the help texts: the longest lines
    pairs = [(l.strip(), l) for l in indented]                          # right code, indentation dropped
    pairs += [(l.replace("self", "this"), l) for l in indented]        # a near miss, indentation kept
    pairs += [("  " + l[: len(l) // 2], l) for l in long]              # half of a long line
    pairs += [(long[0], long[1]), (textwrap.dedent(long[2]), long[2])]
    pairs += [("return a + b", "    return a + b"), ("", "x = 1"), ("", "")]
    return pairs


def test_edit_similarity_is_codexglue_fuzz_ratio():
    from thefuzz import fuzz
    from neoxcourse.evaluate import edit_similarity
    pairs = real_line_pairs()
    assert len(pairs) > 30 and max(len(b) for _, b in pairs) > 100
    ours = [edit_similarity(p, r) for p, r in pairs]
    assert ours == [fuzz.ratio(p.strip(), r) for p, r in pairs]        # CodeXGLUE's evaluator, line by line
    by_hand = [100 if p.strip() == r else round(200 * lcs(p.strip(), r) / (len(p.strip()) + len(r)))
               for p, r in pairs]                                       # 2 x LCS / total, rounded
    assert ours == by_hand
    assert edit_similarity("return a + b", "    return a + b") == 86    # the reference is not stripped
    assert any(s < 100 for (p, r), s in zip(pairs, ours) if p.strip() == r.strip())
