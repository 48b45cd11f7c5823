"""The decode benchmark: benchmarks/decode_cpu.py --smoke end to end (rows, bytes, the GroupQueryAttention
check), the GQA baseline against PyTorch, bench --task lm, and the goal checks on a made-up report."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from flurka_export.bench.decode import DecodeSettings, kv_bytes
from flurka_export.bench.decode_report import goals
from flurka_export.bench.gqa import SharedBufferDecoder, gqa_decoder
from flurka_export.cli import main
from flurka_export.models import FlurkaConfig, build_model

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("decode_cpu", ROOT / "benchmarks" / "decode_cpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_rows_bytes_and_gqa_check(tmp_path, capsys):
    pytest.importorskip("transformers", reason="the gpt2-hf baseline needs transformers")
    script = _script()
    out = tmp_path / "decode.json"
    assert script.main(["--smoke", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "per-token decode" in text and "goals" in text and "GroupQueryAttention check at P=16: passed" in text
    report = json.loads(out.read_text())
    s = script.SMOKE
    layers, heads, d = s["layers"], s["heads"], s["hidden"] // s["heads"]
    models = ["kernel-elu", "softmax", "softmax-gqa", "gpt2-hf"]
    assert [(r["model"], r["context"]) for r in report["decode"]] == [(m, p) for p in (16, 64) for m in models]
    assert all(r["p50_ms"] > 0 and r["calls"] >= 1 for r in report["decode"])
    by = {(r["model"], r["context"]): r for r in report["decode"]}
    m = d  # elu's phi keeps the head size
    assert {by[("kernel-elu", p)]["past_bytes"] for p in (16, 64)} == {heads * m * (d + 1) * 4 * layers}
    for model in models[1:]:
        for p in (16, 64):
            assert by[(model, p)]["past_bytes"] == 2 * layers * heads * p * d * 4 == kv_bytes(layers, heads, d, p)
    assert by[("softmax-gqa", 64)]["allocated_bytes"] == kv_bytes(layers, heads, d, 64 + 256)
    check = report["gqa_check"]
    assert check["passed"] and check["shares_buffers"] and check["past_len"] == 16
    assert check["max_abs_diff"] <= check["tolerance"] and check["past_changes_logits_by"] > 100 * check["max_abs_diff"]
    assert [(r["model"], r["tokens"]) for r in report["prefill"]] == [("kernel-elu", 16), ("softmax", 16),
                                                                       ("gpt2-hf", 16)]
    assert report["settings"]["threads"] == 1 and report["skipped"] == {}
    assert [g[0].split(":")[0] for g in goals(report)][:1] == ["kernel-elu per-token time flat"]


@pytest.mark.parametrize("past_len", [0, 1, 37])
def test_gqa_graph_attends_over_the_shared_buffer(past_len):
    """GroupQueryAttention with past and present one buffer gives the PyTorch softmax model's logits over a
    random past of past_len rows, then continues from the row it wrote in place."""
    torch.manual_seed(0)
    config = FlurkaConfig(task="lm", attention="softmax", num_layers=2, hidden_size=32, num_heads=4, vocab_size=50,
                          max_seq_len=64)
    model = build_model(config)
    dec = SharedBufferDecoder(gqa_decoder(model), config, max_len=48, threads=1)
    dec.fill(past_len, seed=3)
    past = [tuple(torch.from_numpy(dec.buffers[f"{i}.{n}"].numpy()[:, :, :past_len].copy()) for n in ("key", "value"))
            for i in range(config.num_layers)]
    with torch.no_grad():
        for step, token in enumerate([7, 11]):
            p = past_len + step
            dec.bind_step(np.array([[token]]), p)
            dec.run()
            assert dec.shares_buffers()
            want, past = model(torch.tensor([[token]]), torch.ones(1, p + 1, dtype=torch.long), torch.tensor([[p]]),
                               past_key_values=past, use_cache=True)
            np.testing.assert_allclose(dec.logits(), want.numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(dec.buffers["1.value"].numpy()[:, :, :past_len + 2], past[1][1].numpy(), atol=1e-5)


def test_gqa_refuses_what_it_cannot_rebuild():
    with pytest.raises(ValueError, match="softmax FlurkaForCausalLM"):
        gqa_decoder(build_model(FlurkaConfig(task="lm", attention="kernel-elu", num_layers=1, hidden_size=16,
                                             num_heads=2, vocab_size=20, max_seq_len=32)))
    config = FlurkaConfig(task="lm", attention="softmax", num_layers=1, hidden_size=16, num_heads=2, vocab_size=20,
                          max_seq_len=32)
    dec = SharedBufferDecoder(gqa_decoder(build_model(config)), config, max_len=8, threads=1)
    with pytest.raises(ValueError, match="exceed the buffers' 8 rows"):
        dec.bind_step(np.array([[1, 2]]), 7)


def test_cli_bench_task_lm(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="pip install matplotlib")
    out_json, out_png = tmp_path / "lm.json", tmp_path / "lm.png"
    assert main(["bench", "--task", "lm", "--seq-lens", "8,24", "--layers", "1", "--hidden", "16", "--heads", "2",
                 "--baselines", "softmax-gqa", "--iters", "2", "--warmup", "0", "--threads", "1", "--no-progress",
                 "--json", str(out_json), "--plot", str(out_png)]) == 0
    assert "per-token decode" in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert {(r["model"], r["context"]) for r in report["decode"]} == {
        (m, p) for m in ("kernel-elu", "softmax", "softmax-gqa") for p in (8, 24)}
    assert report["gqa_check"]["passed"] and out_png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("flags,match", [
    (["--variants", "int8"], "--variants is not used by --task lm"),
    (["--runtimes", "torch"], "--runtimes is not used by --task lm"),
    (["--baselines", "vllm"], "unknown baseline 'vllm'"),
    (["--kinds", "flurka-elu"], "cannot be causal"),
])
def test_cli_bench_task_lm_bad_flags(flags, match, capsys):
    assert main(["bench", "--task", "lm", *flags]) != 0
    assert match in capsys.readouterr().err


def _report(kernel_ms, gqa_ms, softmax_ms, contexts=(256, 16384)):
    def row(model, p, ms, past):
        return {"model": model, "context": p, "p50_ms": ms, "past_bytes": past, "unstable": False}
    decode = []
    for p, k, g, s in zip(contexts, kernel_ms, gqa_ms, softmax_ms, strict=True):
        kv = kv_bytes(6, 8, 64, p)
        decode += [row("kernel-elu", p, k, 6 * 8 * 64 * 65 * 4), row("softmax", p, s, kv), row("softmax-gqa", p, g, kv)]
    return {"decode": decode}


def test_goals_judge_the_issue_targets():
    met = goals(_report(kernel_ms=(1.0, 1.2), gqa_ms=(1.0, 8.0), softmax_ms=(1.5, 13.0)))
    assert [m for _, _, m in met] == [True, True, True, True, True]
    assert met[-1][1] == f"{math.floor(kv_bytes(6, 8, 64, 16384) / (6 * 8 * 64 * 65 * 4))}x"
    missed = goals(_report(kernel_ms=(1.0, 1.4), gqa_ms=(1.0, 6.5), softmax_ms=(1.5, 13.0)))
    assert [m for _, _, m in missed] == [False, False, False, True, True]  # 1.4x; 4.6x; 9.3x
    assert goals({"decode": [r for r in _report((1, 1), (1, 1), (1, 1))["decode"] if r["model"] != "kernel-elu"]}) == []


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="contexts must be positive"):
        DecodeSettings(contexts=[0]).validate()
    with pytest.raises(ValueError, match="not divisible"):
        DecodeSettings(hidden=30, heads=4).validate()
    assert DecodeSettings(contexts=[256, 16384]).max_len == 16640
