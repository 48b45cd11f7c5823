"""import-hf for GPT-2 against small random transformers models (no downloads): logits on a left-padded batch
equal transformers' forward, and the exported ONNX with its KV cache generates transformers' greedy tokens."""

from __future__ import annotations

import json

import pytest
import torch

from flurka_export import export_onnx
from flurka_export.generate import GenerationConfig, OrtDecoder, SamplingOptions, TorchDecoder, generate
from flurka_export.importers.hf import HFImportError, import_hf_checkpoint

T = pytest.importorskip("transformers", reason="the import-hf tests build models with transformers (dev extra)")

GPT2 = dict(vocab_size=64, n_positions=40, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)


def _save(tmp_path, arch: str = "GPT2LMHeadModel", **changes):
    torch.manual_seed(0)
    model = getattr(T, arch)(T.GPT2Config(**dict(GPT2, **changes))).eval()
    with torch.no_grad():  # every tensor random, so a swapped or untransposed weight cannot go unnoticed
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    model.save_pretrained(tmp_path / arch)
    return model, tmp_path / arch


def _left_padded():
    ids = torch.randint(1, 64, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :6] = 0
    return ids.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("arch", ["GPT2LMHeadModel", "GPT2Model"])
def test_logits_equal_transformers_on_a_left_padded_batch(tmp_path, arch):
    theirs, path = _save(tmp_path, arch)
    ours, report = import_hf_checkpoint(path, tmp_path / "ours")
    assert ours.config.task == "lm" and ours.config.attention == "softmax"
    ids, mask = _left_padded()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = theirs(input_ids=ids, attention_mask=mask, position_ids=pos)
        ref = out.logits if arch == "GPT2LMHeadModel" else out.last_hidden_state @ theirs.wte.weight.T
        got = ours(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], ref[real], rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    assert "Conv1D" in report.summary()
    gen = json.loads((tmp_path / "ours" / "generation_config.json").read_text())
    assert gen == {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}


def test_onnx_with_kv_cache_generates_transformers_greedy_tokens(tmp_path):
    theirs, path = _save(tmp_path, eos_token_id=63, bos_token_id=63)
    import_hf_checkpoint(path, tmp_path / "ours")
    onnx_path = export_onnx(tmp_path / "ours", tmp_path / "gpt2.onnx")
    prompts = [[5, 6, 7], [9, 10, 11, 12, 13]]
    with torch.no_grad():
        ref = [theirs.generate(torch.tensor([p]), max_new_tokens=12, do_sample=False, pad_token_id=63)[0, len(p):]
               .tolist() for p in prompts]
    from flurka_export.models import load_config, load_pretrained

    opts, gen = SamplingOptions(max_new_tokens=12), GenerationConfig(eos_token_id=63, pad_token_id=63)
    config = load_config(tmp_path / "ours")
    ort_tokens = generate(OrtDecoder(onnx_path, config), prompts, opts, gen)
    torch_tokens = generate(TorchDecoder(load_pretrained(tmp_path / "ours")), prompts, opts, gen)
    assert ort_tokens == torch_tokens == [r[:len(o)] for r, o in zip(ref, ort_tokens, strict=True)]
    assert all(len(t) == 12 or t[-1] == 63 for t in ort_tokens)


@pytest.mark.parametrize("change,msg", [
    (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    (dict(activation_function="tanh"), "activation_function 'tanh'"),
])
def test_unsupported_gpt2_settings_are_named(tmp_path, change, msg):
    _, path = _save(tmp_path, **change)
    with pytest.raises(HFImportError, match=msg):
        import_hf_checkpoint(path, tmp_path / "ours")
