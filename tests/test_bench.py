"""The arithmetic behind two committed GPU results: the optimizer experiment's table (tokens to the baseline's
loss, the tuned lr, its speed) and the capstone's T4 estimate; the provenance every result records, and the
README's performance section generated from them. All run on a CPU in a few seconds."""
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import optimizer_experiment as oe  # noqa: E402
import provenance  # noqa: E402
import report  # noqa: E402

RESULTS = sorted((ROOT / "bench" / "results").glob("*.json"))


def run(name, lr, seed, curve, tps=1000.0):
    return dict(name=name, optimizer=name, schedule="cosine", lr=lr, seed=seed, val_curve=curve,
                final_val_loss=curve[max(curve)], final_bits_per_byte=None, tokens_per_step=100,
                tokens_per_sec=tps, diverged=False)


PLAN = [dict(name="base", optimizer="adamw", schedule="cosine", lrs=[1, 2, 3]),
        dict(name="fast", optimizer="muon", schedule="wsd", lrs=[1, 2])]


def test_summary_tunes_lr_and_measures_tokens_on_the_seeds_mean_curve():
    runs = {"b1": run("base", 1, 1, {1: 5.0, 2: 4.5, 3: 4.2}),
            "b2": run("base", 2, 1, {1: 5.0, 2: 4.4, 3: 4.0}),            # tuned lr 2
            "b2s": run("base", 2, 2, {1: 5.2, 2: 4.6, 3: 4.2}),           # second seed: mean final 4.1
            "b3": run("base", 3, 1, {1: 6.0, 2: 5.0, 3: 4.6}),
            "f1": run("fast", 1, 1, {1: 4.5, 2: 4.05, 3: 3.9}),           # tuned lr 1, at the grid's edge
            "f2": run("fast", 2, 1, {1: 4.8, 2: 4.3, 3: 4.0})}
    rows = {r["name"]: r for r in oe.summarize(PLAN, runs, {"base": {"tokens_per_sec": 50.0}})}
    base, fast = rows["base"], rows["fast"]
    assert base["lr"] == 2 and base["seeds"] == 2 and base["val_loss"] == pytest.approx(4.1)
    assert base["tokens_to_baseline"] == 300              # the baseline reaches its own mean at its full budget
    assert base["tokens_per_sec"] == 50.0 and base["seconds_to_baseline"] == pytest.approx(6.0)  # speed pass wins
    assert fast["lr"] == 1 and fast["lr_at_grid_edge"] and not base["lr_at_grid_edge"]
    assert fast["tokens_to_baseline"] == 200               # 4.05 <= 4.1 at step 2
    assert fast["tokens_per_sec"] == 1000.0               # no speed pass for it: its runs' mean
    table = oe.markdown_table(oe.summarize(PLAN, runs))
    assert "| muon | wsd | 1 (grid edge) | 1 | 3.900 |" in table


def test_a_diverged_run_is_skipped_and_a_never_reaching_entry_says_so():
    runs = {"b": run("base", 1, 1, {1: 5.0, 2: 4.0}),
            "f": run("fast", 1, 1, {1: 5.5, 2: 4.5}),
            "x": {**run("fast", 2, 1, {1: 3.0}), "diverged": True}}
    rows = {r["name"]: r for r in oe.summarize(PLAN, runs)}
    assert rows["fast"]["lr"] == 1 and rows["fast"]["tokens_to_baseline"] is None
    assert "not reached" in oe.markdown_table(list(rows.values()))


def test_committed_table_is_reproduced_from_its_runs(tmp_path):
    "bench/results/optimizer_experiment.md is what --report makes of the committed JSON, to the character."
    src = ROOT / "bench" / "results" / "optimizer_experiment.json"
    shutil.copy(src, tmp_path / src.name)
    assert oe.main(["--report", "--out", str(tmp_path / src.name)]) == 0
    assert (tmp_path / "optimizer_experiment.md").read_text() == src.with_suffix(".md").read_text()
    doc = json.loads(src.read_text())
    assert not doc["missing"] and len(doc["runs"]) == 22
    assert doc["passes_over_train_split"] < 1                        # the budget repeats no training file
    best = {r["name"]: r["val_loss"] for r in doc["table"]}
    assert best["muon"] < best["adamw_wsd"] < best["adamw_cosine"]   # the chapter's conclusion, from the data


def test_t4_estimate_from_the_kernel_split():
    import capstone
    speed = {"gpu": "NVIDIA H200", "global_batch": 64, "seq_length": 1024, "mfu": 0.1,
             "flops_per_token": 1e8, "matrix_s_per_step": 0.02, "other_s_per_step": 0.03,
             "matmul_tflops": 206.0, "tokens_per_sec": 1e6}
    est = capstone.t4_estimate(speed)
    matrix = 1e8 * 65536 / 20.6e12                               # the model's FLOPs at a T4's measured rate
    other = 0.03 * 4800 / 320                                     # the rest at the bandwidth ratio
    assert est["t4_step_s"] == pytest.approx(matrix + other)
    assert est["t4_tokens_per_sec_estimate"] == pytest.approx(65536 / (matrix + other))
    assert est["t4_tokens_per_sec_scaled_kernels"] == pytest.approx(65536 / (0.02 * 10 + other))
    assert est["t4_tokens_per_sec_same_mfu"] == pytest.approx(0.1 * 65e12 / 1e8)
    assert est["t4_mfu"] * 65e12 / 1e8 == pytest.approx(est["t4_tokens_per_sec_estimate"])
    # an unknown GPU (no bandwidth on record): the same-MFU rule, said so
    est = capstone.t4_estimate({**speed, "gpu": "Some GPU"})
    assert est["t4_method"] == "same MFU" and est["t4_tokens_per_sec_estimate"] == pytest.approx(65000.0)


def test_kernel_classifier_keeps_layernorm_and_adam_out_of_the_matrix_work():
    "A bare 'mma' once matched LayerNorm's backward (GammaBeta...) and fused Adam (AdamMath...): no longer."
    import capstone
    matrix = ["fmha_cutlassB_f16_aligned_64x64_k64_seqaligned_sm80(PyTorchMemEffAttention::AttentionKernel)",
              "nvjet_sm90_hsh_128x256_64x4_1x2_h_bz_coopA_NNN", "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n",
              "turing_fp16_s1688gemm_fp16_128x128_ldg8_f2f_tn", "void cutlass::Kernel2<cutlass_80_tensorop_f16_gemm>"]
    other = ["void at::native::(anonymous namespace)::GammaBetaBackwardCUDAKernelTemplate<float, float>",
             "void multi_tensor_apply_kernel<TensorListMetadata<4>, FusedAdamMathFunctor<float, 4>>",
             "void at::native::(anonymous namespace)::cunn_SoftMaxForwardReg<float, float, float>",
             "void at::native::vectorized_elementwise_kernel<8, at::native::float16_copy_kernel_cuda>",
             "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>"]
    assert all(capstone.is_matrix_kernel(k) for k in matrix)
    assert not any(capstone.is_matrix_kernel(k) for k in other)


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_result_records_commit_command_machine_and_config(path):
    doc = json.loads(path.read_text())
    missing = [k for k in provenance.FIELDS if not doc.get(k)]
    assert not missing, f"{path.name} lacks {missing}: write it through bench/provenance.py's header()"
    assert re.match(r"[0-9a-f]{7,40}\b", doc["commit"]), f"{path.name}: commit {doc['commit']!r} is no hash"
    assert doc["command"].startswith("python bench/"), doc["command"]
    assert re.fullmatch(r"configs/[\w./-]+\.yml@[0-9a-f]{12}|none \(.*\)", doc["config"]), doc["config"]


def test_every_script_in_run_gpu_sh_exists_and_writes_through_the_header():
    lines = [l.split("#")[0] for l in (ROOT / "bench" / "run_gpu.sh").read_text().splitlines()]
    scripts = set(re.findall(r"python (bench/\w+\.py)", "\n".join(lines)))
    assert len(scripts) == 8, scripts
    for script in scripts:
        assert (ROOT / script).exists(), f"bench/run_gpu.sh runs {script}, which does not exist"
    for script in scripts - {"bench/optimizer_experiment.py", "bench/lab_protocol.py"}:   # the lab's own
        assert "write_result(" in (ROOT / script).read_text(), f"{script} writes no provenance header"


def test_header_names_this_commit_command_and_config_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / "bench_train.py"), "--t4"])
    head = provenance.header("configs/smoke.yml")
    digest = hashlib.sha256((ROOT / "configs" / "smoke.yml").read_bytes()).hexdigest()[:12]
    assert head["config"] == f"configs/smoke.yml@{digest}"
    assert head["command"] == "python bench/bench_train.py --t4"
    assert head["machine"].endswith(f"Python {head['python']}") and "torch" in head["machine"]
    monkeypatch.setenv("NEOXCOURSE_COMMIT", "0" * 40)        # a copy without its own .git names its commit
    assert provenance.header()["commit"] == "0" * 40
    monkeypatch.delenv("NEOXCOURSE_COMMIT")
    (tmp_path / "COMMIT").write_text("abc1234\n")                # or a COMMIT file beside a git-archive snapshot
    assert provenance.git_commit(tmp_path) == "abc1234"
    path = provenance.write_result(tmp_path / "r.json", {**head, "tokens_per_s": 1.0})
    assert json.loads(path.read_text())["tokens_per_s"] == 1.0
    with pytest.raises(ValueError, match="lacks \\['commit', 'command'"):
        provenance.write_result(tmp_path / "bad.json", {"machine": "x", "config": "y"})


def test_readme_performance_section_is_what_report_writes():
    readme = (ROOT / "README.md").read_text()
    section = readme.split(report.BEGIN, 1)[1].split(report.END, 1)[0]
    assert section == "\n" + report.section(), "README.md is stale: run python bench/report.py"
    assert section.count("<sub>Source: `bench/results/") >= 6      # each GPU result names its commit and command


def test_every_result_is_cited_by_a_chapter_the_readme_or_a_config():
    "A result nothing cites is removed (git rm), not kept: each is named, or its script is, where readers look."
    text = "\n".join(p.read_text() for pattern in ("nbs/*.ipynb", "configs/*.yml", "reference/*.md", "README.md",
                                                     "bench/report.py") for p in ROOT.glob(pattern))
    for path in (ROOT / "bench" / "results").iterdir():
        command = json.loads(path.read_text()).get("command", "") if path.suffix == ".json" else ""
        script = command.split()[1] if command.startswith("python ") else None
        assert path.name in text or (script and script in text), \
            f"nothing cites bench/results/{path.name}: cite it where it is used, or git rm it"
